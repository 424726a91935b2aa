"""The keyword arguments each SDK adapter sends for a RunSpec (no daemon needed)."""

from __future__ import annotations

import os

import pytest

from llmdeploy.engines.docker_engine import DockerEngine
from llmdeploy.engines.podman_engine import PodmanEngine
from llmdeploy.engines.sdk_engine import SdkEngine
from llmdeploy.engines.spec import BindMount, GpuRequest, PortMapping, RunSpec
from llmdeploy.errors import DeploymentError, EngineError, PortInUseError

SPEC = RunSpec(
    name="llmdeploy-x",
    image="localhost/img:1",
    args=("--port", "8080"),
    env={"A": "1"},
    labels={"io.llmdeploy.managed": "true"},
    ports=(PortMapping("127.0.0.1", 9000, 8080),),
    mounts=(BindMount("/store/m", "/models", True),),
    cpus=1.5,
    memory="1g",
    shm_size="64m",
    pids_limit=50,
    ulimits={"nofile": "4096:8192", "nproc": "100"},
)


def test_docker_kwargs() -> None:
    kwargs = DockerEngine(client=object()).create_kwargs(SPEC)
    assert kwargs["ports"] == {"8080/tcp": ("127.0.0.1", 9000)}
    (mount,) = kwargs["mounts"]
    assert mount["Source"] == "/store/m" and mount["Target"] == "/models"
    assert mount["ReadOnly"] is True and mount["Type"] == "bind"
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges"]
    assert kwargs["cpu_quota"] == 150_000 and kwargs["cpu_period"] == 100_000
    assert kwargs["mem_limit"] == 1024**3 and kwargs["shm_size"] == 64 * 1024**2
    assert kwargs["pids_limit"] == 50
    limits = {u["Name"]: (u["Soft"], u["Hard"]) for u in kwargs["ulimits"]}
    assert limits == {"nofile": (4096, 8192), "nproc": (100, 100)}
    assert kwargs["environment"] == {"A": "1"}


def test_podman_kwargs() -> None:
    kwargs = PodmanEngine(client=object()).create_kwargs(SPEC)
    assert kwargs["mounts"] == [
        {"type": "bind", "source": "/store/m", "target": "/models", "read_only": True}
    ]
    assert kwargs["no_new_privileges"] is True
    assert "security_opt" not in kwargs  # podman-py maps security_opt to SELinux options
    assert {"Name": "nofile", "Soft": 4096, "Hard": 8192} in kwargs["ulimits"]


def test_gpu_requests_per_engine() -> None:
    from dataclasses import replace

    nvidia = replace(SPEC, gpu=GpuRequest("nvidia"))
    docker = DockerEngine(client=object()).create_kwargs(nvidia)
    (request,) = docker["device_requests"]
    assert request["Count"] == -1 and request["Capabilities"] == [["gpu"]]
    podman = PodmanEngine(client=object()).create_kwargs(nvidia)
    assert podman["devices"] == ["nvidia.com/gpu=all"]
    two = PodmanEngine(client=object()).create_kwargs(replace(SPEC, gpu=GpuRequest("nvidia", 2)))
    assert two["devices"] == ["nvidia.com/gpu=0", "nvidia.com/gpu=1"]
    amd = DockerEngine(client=object()).create_kwargs(replace(SPEC, gpu=GpuRequest("amd")))
    assert amd["devices"] == ["/dev/kfd:/dev/kfd:rwm", "/dev/dri:/dev/dri:rwm"]
    assert amd["group_add"] == ["video"]


def test_secret_env_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    spec = replace(SPEC, secret_env={"LLMDEPLOY_TEST_TOKEN": "LLMDEPLOY_TEST_TOKEN"})
    monkeypatch.delenv("LLMDEPLOY_TEST_TOKEN", raising=False)
    with pytest.raises(DeploymentError, match="LLMDEPLOY_TEST_TOKEN"):
        DockerEngine(client=object()).create_kwargs(spec)
    monkeypatch.setenv("LLMDEPLOY_TEST_TOKEN", "s3cret")
    assert DockerEngine(client=object()).create_kwargs(spec)["environment"][
        "LLMDEPLOY_TEST_TOKEN"] == "s3cret"
    assert os.environ["LLMDEPLOY_TEST_TOKEN"] == "s3cret"


class _ApiError(Exception):
    def __init__(self, explanation: str) -> None:
        super().__init__(explanation)
        self.explanation = explanation


def test_engine_errors_map_to_the_tree() -> None:
    engine = SdkEngine()
    engine.traits = DockerEngine.traits
    port = engine._error("starting x", _ApiError(
        "driver failed programming external connectivity: Bind for 127.0.0.1:8080 failed: "
        "port is already allocated"))
    assert isinstance(port, PortInUseError) and port.hint
    podman_port = engine._error("starting x", _ApiError(
        "rootlessport listen tcp 127.0.0.1:8080: bind: address already in use"))
    assert isinstance(podman_port, PortInUseError)
    other = engine._error("starting x", _ApiError("no such image"))
    assert type(other) is EngineError and "no such image" in other.message
