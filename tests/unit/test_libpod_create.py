"""libpod's create body from engines/libpod_create.py is the one podman-py renders.

For every built-in profile's run spec, and for each GPU, security, limit and mount variant,
the body ``PodmanEngine`` sends without podman-py must equal what podman-py 5.8's
``containers.create`` would send for the same keyword arguments (``_render_payload``, then
``api.prepare_body``), compared as decoded JSON.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from podman.api import prepare_body
from podman.domain.containers_create import CreateMixin

from llmdeploy.core.run_spec import BindMount, GpuRequest, PortMapping, RunSpec
from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.engines.libpod_create import RENDERED, libpod_create_body
from llmdeploy.engines.podman_engine import PodmanEngine
from llmdeploy.profiles.loader import builtin_sources, resolve

ENGINE = PodmanEngine(client=object())


def builtin_specs() -> dict[str, RunSpec]:
    specs = {}
    for source in builtin_sources():
        profile = resolve(source.name, env={"HF_TOKEN": "x"}).profile
        plan = plan_deployment(profile, model_dir=Path("/store/m"), model_filename="m.gguf",
                               data_root=Path("/store/data"))
        specs[source.name] = plan.run
    return specs


SPECS = builtin_specs()
VARIANTS: dict[str, dict[str, Any]] = {
    "as planned": {},
    "nvidia, all": {"gpu": GpuRequest("nvidia")},
    "nvidia, two": {"gpu": GpuRequest("nvidia", 2)},
    "amd": {"gpu": GpuRequest("amd")},
    "intel": {"gpu": GpuRequest("intel")},
    "confined": {"label_disable": False},
    "label disabled": {"label_disable": True},
    "limits": {"cpus": 1.5, "memory": "1g", "shm_size": "64m", "pids_limit": 50,
               "ulimits": {"nofile": "4096:8192", "nproc": "100"}},
    "no limits": {"cpus": None, "memory": None, "shm_size": None, "pids_limit": None,
                  "ulimits": {}},
    "hardening off": {"cap_drop": (), "cap_add": ("SYS_NICE",), "no_new_privileges": False,
                      "read_only_rootfs": True},
    "entrypoint, user, ipc": {"entrypoint": ("/bin/sh", "-c"), "user": "1000:1000",
                              "ipc_mode": "host"},
    "empty strings": {"user": "", "env": {"EMPTY": ""}, "labels": {}},
    "host network (route --run)": {"network_mode": "host", "ports": ()},
    "mounts and ports": {
        "mounts": (BindMount("/a", "/models", True), BindMount("/b", "/data", False)),
        "ports": (PortMapping("0.0.0.0", 8000, 8080), PortMapping("127.0.0.1", 9000, 9090)),
    },
    "nothing published": {"ports": (), "mounts": (), "args": ()},
}


def podman_py_body(kwargs: dict[str, Any]) -> Any:
    payload = {"image": kwargs["image"], "command": kwargs["command"], **kwargs}
    return json.loads(prepare_body(CreateMixin._render_payload(payload)))


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("profile", list(SPECS))
def test_the_body_is_podman_pys(
    profile: str, variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = replace(SPECS[profile], **VARIANTS[variant])
    for host_var in spec.secret_env.values():  # prod-vllm's API key
        monkeypatch.setenv(host_var, "secret-value")
    kwargs = ENGINE.create_kwargs(spec)
    ours = libpod_create_body(kwargs)
    assert ours is not None, sorted(set(kwargs) - RENDERED)
    assert json.loads(json.dumps(ours)) == podman_py_body(kwargs)


def test_every_built_in_profile_was_compared() -> None:
    assert {"edge-podman", "cpu-docker", "prod-vllm", "local-ollama", "cpu-vllm"} <= set(SPECS)


@pytest.mark.parametrize(
    "change",
    [
        {"network": "slirp4netns"},  # a keyword not rendered here
        {"shm_size": "64m"},  # a size podman-py parses itself
        {"command": "serve"},  # a string command (podman-py wraps it in a list)
        {"mounts": [{"type": "bind", "source": "/a", "target": "/b", "relabel": "Z"}]},
        {"ports": {8080: 9000}},
    ],
)
def test_anything_else_is_left_to_podman_py(change: dict[str, Any]) -> None:
    kwargs = {**ENGINE.create_kwargs(SPECS["edge-podman"]), **change}
    assert libpod_create_body(kwargs) is None


def test_empty_values_are_dropped_as_podman_py_drops_them() -> None:
    """Hand-made arguments create_kwargs does not make today: an empty user (dropped at the
    top), an empty environment value and empty resource groups (kept or dropped below it)."""
    kwargs: dict[str, Any] = {
        "image": "i", "command": [], "name": "n", "user": "", "labels": {},
        "environment": {"EMPTY": ""}, "cap_drop": [], "mounts": [], "ports": {},
        "cpu_period": 0, "cpu_quota": 0, "read_only": False,
    }
    ours = libpod_create_body(kwargs)
    assert ours == podman_py_body(kwargs)
    assert ours is not None and "user" not in ours and ours["env"] == {"EMPTY": ""}
