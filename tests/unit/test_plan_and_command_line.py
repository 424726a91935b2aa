from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from llmdeploy.constants import LABEL_DEPLOYMENT, LABEL_MANAGED, LABEL_SPEC_HASH
from llmdeploy.core.engine_traits import DOCKER, PODMAN
from llmdeploy.core.run_spec import GpuRequest
from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.profiles.loader import resolve
from llmdeploy.profiles.schema import Profile
from llmdeploy.render.command_line import run_argv

STORE = Path("/var/lib/store/smollm2-abc")


def profile(**overrides: object) -> Profile:
    data: dict[str, object] = {
        "name": "t",
        "engine": "podman",
        "backend": {"kind": "llamacpp", "ctx_size": 2048, "parallel": 2},
        "model": {"ref": "file:///m/tiny.gguf", "name": "tiny"},
        "image": "localhost/img:1",
    }
    data.update(overrides)
    return Profile.model_validate(data)


def plan(p: Profile):  # type: ignore[no-untyped-def]
    return plan_deployment(p, model_dir=STORE, model_filename="tiny.gguf")


def test_llamacpp_argv_and_hardening() -> None:
    result = plan(profile())
    run = result.run
    assert run.args == (
        "--model", "/models/tiny.gguf", "--host", "0.0.0.0", "--port", "8080",
        "--ctx-size", "2048", "--parallel", "2", "--alias", "tiny", "--metrics",
        "--log-verbosity", "4",  # llama_kv_cache size lines, compared with the plan by up
    )  # fmt: skip
    assert run.cap_drop == ("ALL",) and run.cap_add == ()
    assert run.no_new_privileges
    assert [(m.source, m.target, m.read_only) for m in run.mounts] == [
        (str(STORE), "/models", True)
    ]
    assert [(p.host_ip, p.host_port, p.container_port) for p in run.ports] == [
        ("127.0.0.1", 8080, 8080)
    ]
    assert run.labels[LABEL_MANAGED] == "true"
    assert run.labels[LABEL_DEPLOYMENT] == "t"
    assert result.endpoint == "http://127.0.0.1:8080"
    assert result.api_base_url == "http://127.0.0.1:8080/v1"


def test_spec_hash_changes_with_the_profile_only() -> None:
    a, b = plan(profile()), plan(profile())
    assert a.spec_hash == b.spec_hash == a.run.labels[LABEL_SPEC_HASH]
    c = plan(profile(backend={"kind": "llamacpp", "ctx_size": 4096}))
    assert c.spec_hash != a.spec_hash


def test_gpu_accelerators_offload_layers_and_request_devices() -> None:
    cuda = plan(profile(accelerator="cuda"))
    assert cuda.run.gpu == GpuRequest(vendor="nvidia", count=1)  # gpus defaults to 1
    assert "--n-gpu-layers" in cuda.run.args
    podman = run_argv(cuda.run, PODMAN)
    docker = run_argv(cuda.run, DOCKER)
    assert "nvidia.com/gpu=0" in podman and "--gpus" not in podman
    assert docker[docker.index("--gpus") + 1] == "1"
    rocm = run_argv(plan(profile(accelerator="rocm")).run, PODMAN)
    assert "/dev/kfd" in rocm and "/dev/dri" in rocm


def test_gpu_layers_on_cpu_is_refused_by_the_schema() -> None:
    with pytest.raises(ValidationError, match="gpu_layers"):
        profile(backend={"kind": "llamacpp", "gpu_layers": 10})


def test_run_argv_is_the_exact_command_line() -> None:
    p = profile(
        env={"LLAMA_LOG": "1"},
        secret_env=["LLAMA_API_KEY"],
        resources={"cpus": 1.5, "memory": "1g", "pids_limit": 100,
                   "ulimits": {"nofile": "4096:4096"}},
    )
    argv = run_argv(plan(p).run, PODMAN)
    line = " ".join(argv)
    assert argv[:4] == ["podman", "run", "--detach", "--name"]
    assert "--publish 127.0.0.1:8080:8080" in line
    assert f"--volume {STORE}:/models:ro" in line
    assert "--cap-drop ALL" in line
    assert "--security-opt no-new-privileges" in line
    assert "--cpus 1.5 --memory 1g" in line
    assert "--pids-limit 100" in line
    assert "--ulimit nofile=4096:4096" in line
    assert "--env LLAMA_LOG=1" in line
    # the secret is passed through by name only
    assert argv[argv.index("LLAMA_API_KEY") - 1] == "--env"
    assert "LLAMA_API_KEY=" not in line
    assert argv.index("localhost/img:1") < argv.index("--model")


def test_host_other_than_loopback_only_when_asked() -> None:
    open_plan = plan(profile(server={"host": "0.0.0.0", "port": 9000}))
    assert "0.0.0.0:9000:8080" in " ".join(run_argv(open_plan.run, DOCKER))
    assert open_plan.endpoint == "http://127.0.0.1:9000"


def test_builtin_profile_prefers_upstream_image_and_builds_locally() -> None:
    p = resolve("edge-podman", env={}).profile
    result = plan(p)
    assert result.images.image == "ghcr.io/ggml-org/llama.cpp:server"
    assert result.images.build_tag is not None
    assert result.images.build_tag.startswith("localhost/llmdeploy/llamacpp-cpu:")
    assert result.images.build_args["BASE_IMAGE"].endswith("python:3.11-slim-bookworm")


@pytest.mark.parametrize(("host", "published"), [
    ("::1", "[::1]:8090:8080"),
    ("[::1]", "[::1]:8090:8080"),
    ("127.0.0.1", "127.0.0.1:8090:8080"),
])
def test_ipv6_addresses_are_bracketed_in_the_published_port(host: str, published: str) -> None:
    argv = run_argv(plan(profile(server={"host": host, "port": 8090})).run, PODMAN)
    assert argv[argv.index("--publish") + 1] == published
