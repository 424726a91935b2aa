"""The keyword arguments each SDK adapter sends for a RunSpec (no daemon needed)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from llmdeploy.core.engine_traits import DOCKER, PODMAN, EngineTraits
from llmdeploy.core.run_spec import BindMount, GpuRequest, PortMapping, RunSpec
from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.engines.docker_engine import DockerEngine
from llmdeploy.engines.podman_engine import PodmanEngine
from llmdeploy.engines.sdk_engine import SdkEngine
from llmdeploy.errors import DeploymentError, EngineError, PortInUseError
from llmdeploy.profiles.schema import Profile
from llmdeploy.render.command_line import run_argv

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
    # podman-py maps security_opt to SELinux options: nothing unless the spec disables labels
    assert "security_opt" not in kwargs
    assert {"Name": "nofile", "Soft": 4096, "Hard": 8192} in kwargs["ulimits"]


# --- SELinux: the model mount must be readable without relabelling the user's files ---------


def _selinux_plan(**security: str) -> RunSpec:
    profile = Profile.model_validate(
        {
            "name": "t",
            "backend": {"kind": "llamacpp"},
            "model": {"ref": "file:///m/tiny.gguf"},
            "image": "localhost/img:1",
            "security": security,
        }
    )
    return plan_deployment(profile, model_dir=Path("/store/m"), model_filename="tiny.gguf").run


def test_profiles_disable_selinux_labels_by_default_and_may_opt_back_into_confinement() -> None:
    assert _selinux_plan().label_disable is True
    confined = _selinux_plan(selinux="confined")
    assert confined.label_disable is False
    # whatever the choice, the model mount itself is never relabelled (:z would relabel the
    # user's own file through the store's hard link)
    assert [(m.source, m.read_only) for m in confined.mounts] == [("/store/m", True)]
    with pytest.raises(ValidationError, match="selinux"):
        _selinux_plan(selinux="relabel")


@pytest.mark.parametrize("traits", [PODMAN, DOCKER])
def test_rendered_run_line_disables_selinux_labels_and_never_relabels_the_mount(
    traits: EngineTraits,
) -> None:
    argv = run_argv(_selinux_plan(), traits)
    options = list(itertools.pairwise(argv))
    assert options.count(("--security-opt", "label=disable")) == 1
    assert ("--volume", "/store/m:/models:ro") in options  # no :z / :Z
    confined = run_argv(_selinux_plan(selinux="confined"), traits)
    assert not any("label=" in word for word in confined)
    assert "--volume" in confined and "/store/m:/models:ro" in confined


def test_sdk_security_opt_for_label_disable_per_engine() -> None:
    spec = _selinux_plan()
    docker = DockerEngine(client=object()).create_kwargs(spec)
    assert docker["security_opt"] == ["no-new-privileges", "label=disable"]
    podman = PodmanEngine(client=object()).create_kwargs(spec)
    # podman-py sends security_opt as libpod's selinux_opts, which take the bare option
    assert podman["security_opt"] == ["disable"]
    assert podman["no_new_privileges"] is True
    confined = _selinux_plan(selinux="confined")
    assert DockerEngine(client=object()).create_kwargs(confined)["security_opt"] == [
        "no-new-privileges"
    ]
    assert "security_opt" not in PodmanEngine(client=object()).create_kwargs(confined)


def test_sdk_requests_carry_label_disable_as_each_api_expects() -> None:
    """What each engine's API receives: libpod ``selinux_opts``, Docker ``HostConfig.SecurityOpt``."""
    from docker.models.containers import _create_container_args
    from podman.domain.containers_create import CreateMixin

    spec = _selinux_plan()
    podman_body = CreateMixin._render_payload(PodmanEngine(client=object()).create_kwargs(spec))
    assert podman_body["selinux_opts"] == ["disable"]
    assert podman_body["mounts"][0]["options"] == ["ro"]
    docker_kwargs = {**DockerEngine(client=object()).create_kwargs(spec), "version": "1.41"}
    host_config = _create_container_args(docker_kwargs)["host_config"]
    assert host_config["SecurityOpt"] == ["no-new-privileges", "label=disable"]


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
