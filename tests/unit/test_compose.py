"""Compose export: golden files, the service compared key by key with the ``docker run`` line of
the same RunSpec, and the file read by the real tools without starting anything:
``docker-compose config`` (1.29: its Compose-Specification schema, interpolation) and
``podman-compose up`` (1.0.3) against a fake ``podman`` that records the ``podman run`` it gets.

Running the file for real is tests/e2e/test_compose_real.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from single_host_exports import EXPORT_CASES, check_golden, export_inputs
from test_quadlet import option_pairs

from llmdeploy.core.engine_traits import DOCKER, PODMAN, EngineTraits
from llmdeploy.core.run_spec import RunSpec
from llmdeploy.render.command_line import run_argv
from llmdeploy.render.compose import COMPOSE_FILE, render_compose
from llmdeploy.render.inputs import ExportInputs

REQUIRE = os.environ.get("LLMDEPLOY_E2E") == "require"
_SECRET_REF = re.compile(r"^\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*):\?[^}]*\}$")


def document(inputs: ExportInputs) -> dict[str, Any]:
    files = {item.path: item.content for item in render_compose(inputs)}
    loaded: dict[str, Any] = yaml.safe_load(files[COMPOSE_FILE])
    return loaded


def service_of(inputs: ExportInputs) -> dict[str, Any]:
    services: dict[str, Any] = document(inputs)["services"]
    return dict(services[inputs.plan.deployment])


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_compose_files_match_golden(case: str) -> None:
    check_golden(case, "compose", render_compose(export_inputs(case)))


# --- the service runs what `up` runs ---------------------------------------------------------


def with_named_volumes(spec: RunSpec, service: dict[str, Any]) -> RunSpec:
    """The RunSpec with each writable bind mount's source replaced by the named volume the
    compose file mounts at the same target (the export's documented choice)."""
    named = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"] if v[0] != "/"}
    mounts = tuple(m if m.read_only else replace(m, source=named[m.target]) for m in spec.mounts)
    assert len(named) == sum(not m.read_only for m in spec.mounts)
    return replace(spec, mounts=mounts)


def expected_pairs(spec: RunSpec, traits: EngineTraits) -> tuple[Counter[tuple[str, str]], list[str]]:
    argv = [str(token) for token in run_argv(spec, traits)]
    at = argv.index(spec.image, 2)
    pairs = option_pairs(argv[2:at])
    del pairs[("--detach", "")]
    for flag, value in list(pairs):  # `--env KEY` / `--env KEY=${HOST}`: read from the host
        key = value.split("=")[0]
        if flag == "--env" and key in spec.secret_env:
            del pairs[(flag, value)]
            pairs[("secret-env", key)] += 1
    return pairs, argv[at:]


def uncompose(text: str) -> str:
    """What compose's interpolation makes of a value that holds no variable: ``$$`` -> ``$``."""
    assert not re.search(r"(?<!\$)\$(?!\$)", text.replace("$$", "")), text
    return text.replace("$$", "$")


def docker_run_pairs(service: dict[str, Any]) -> tuple[Counter[tuple[str, str]], list[str]]:
    """The ``docker run`` options each service key stands for (Compose Specification)."""
    pairs: Counter[tuple[str, str]] = Counter()

    def add(flag: str, value: object) -> None:
        pairs[(flag, uncompose(str(value)))] += 1

    add("--name", service["container_name"])
    for key, value in service.get("labels", {}).items():
        add("--label", f"{key}={value}")
    for flag, key in (("--publish", "ports"), ("--volume", "volumes"), ("--cap-drop", "cap_drop"),
                      ("--cap-add", "cap_add"), ("--security-opt", "security_opt"),
                      ("--group-add", "group_add")):
        for value in service.get(key, []):
            add(flag, value)
    for device in service.get("devices", []):
        host, _, inside = device.partition(":")
        assert host == inside, device
        add("--device", host)
    for flag, key in (("--user", "user"), ("--memory", "mem_limit"), ("--shm-size", "shm_size"),
                      ("--ipc", "ipc"), ("--pids-limit", "pids_limit")):
        if key in service:
            add(flag, service[key])
    if "cpus" in service:
        add("--cpus", f"{service['cpus']:g}")
    if service.get("read_only"):
        add("--read-only", "true")
    for name, limit in service.get("ulimits", {}).items():
        add("--ulimit", f"{name}={limit['soft']}:{limit['hard']}" if isinstance(limit, dict)
            else f"{name}={limit}")
    for request in service.get("deploy", {}).get("resources", {}).get("reservations", {}).get(
        "devices", []
    ):
        assert request["driver"] == "nvidia" and request["capabilities"] == ["gpu"]
        add("--gpus", request["count"])
    for key, value in service.get("environment", {}).items():
        if _SECRET_REF.match(value):
            pairs[("secret-env", key)] += 1
        else:
            add("--env", f"{key}={value}")
    if "entrypoint" in service:
        add("--entrypoint", shlex.join(service["entrypoint"]))
    tail = [uncompose(service["image"]), *(uncompose(a) for a in service.get("command", []))]
    return pairs, tail


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_the_service_starts_the_same_container_as_the_docker_run_line(case: str) -> None:
    """Each compose key, read as the ``docker run`` flag it stands for, gives exactly the options
    of ``docker run`` for the same RunSpec, and the same image and argv."""
    inputs = export_inputs(case)
    service = service_of(inputs)
    spec = with_named_volumes(inputs.plan.run, service)
    expected, expected_tail = expected_pairs(spec, DOCKER)
    got, got_tail = docker_run_pairs(service)
    assert got == expected
    assert got_tail == expected_tail == [spec.image, *spec.args]


@pytest.mark.parametrize(
    "value", ["plain", "100%", "$HOME ${HOME} $$", 'quote " and \'', "back\\slash", "42", "yes", ""]
)
def test_values_survive_yaml_and_interpolation(value: str) -> None:
    inputs = export_inputs(
        "cpu-vllm", {"env": {"ODD": value}, "backend": {"extra_args": ["--odd", value]}}
    )
    service = service_of(inputs)
    assert uncompose(service["environment"]["ODD"]) == value
    assert [uncompose(a) for a in service["command"][-2:]] == ["--odd", value]


def test_what_a_user_relies_on() -> None:
    doc = document(export_inputs("edge-podman"))
    assert "version" not in doc  # the Compose Specification: GPU reservations, every tool
    service = doc["services"]["edge-podman"]
    assert service["container_name"] == "llmdeploy-edge-podman"
    assert service["ports"] == ["127.0.0.1:8080:8080"]
    assert service["volumes"][0].endswith(":/models:ro")
    assert service["cap_drop"] == ["ALL"]
    assert service["security_opt"] == ["no-new-privileges", "label=disable"]
    assert service["ulimits"] == {"nofile": {"soft": 4096, "hard": 4096},
                                  "nproc": {"soft": 4096, "hard": 4096}}
    assert service["restart"] == "unless-stopped"
    assert service["healthcheck"]["test"][0] == "CMD-SHELL"
    assert service["healthcheck"]["start_period"] == "120s"
    assert service["labels"]["io.llmdeploy.managed"] == "true"


def test_secrets_are_references_never_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "sk-never-rendered")
    inputs = export_inputs("prod-vllm")
    assert not any("sk-never-rendered" in f.content for f in render_compose(inputs))
    reference = service_of(inputs)["environment"]["VLLM_API_KEY"]
    match = _SECRET_REF.match(reference)
    assert match and match["var"] == "VLLM_API_KEY"


def test_gpus_in_compose_words() -> None:
    nvidia = service_of(export_inputs("llamacpp-cuda", {"gpus": 2}))
    assert nvidia["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "capabilities": ["gpu"], "count": 2}
    ]
    amd = service_of(export_inputs("vllm-rocm"))
    assert amd["devices"] == ["/dev/kfd:/dev/kfd", "/dev/dri:/dev/dri"]
    assert amd["group_add"] == ["video"]
    assert "deploy" not in amd


def test_ollama_state_is_a_named_volume() -> None:
    doc = document(export_inputs("local-ollama"))
    assert doc["services"]["local-ollama"]["volumes"][1] == "data-1:/root/.ollama:rw"
    assert doc["volumes"]["data-1"]["labels"]["io.llmdeploy.deployment"] == "local-ollama"


# --- the real tools read it ------------------------------------------------------------------


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if REQUIRE:
            pytest.fail(f"{name} is not installed (LLMDEPLOY_E2E=require)")
        pytest.skip(f"{name} is not installed (scripts/setup-host.sh --with-export-tools)")
    return path


def write_export(tmp_path: Path, inputs: ExportInputs) -> Path:
    for item in render_compose(inputs):
        (tmp_path / item.path).write_text(item.content)
    return tmp_path / COMPOSE_FILE


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_docker_compose_reads_the_file(case: str, tmp_path: Path) -> None:
    """docker-compose 1.29 validates against its Compose Specification schema and interpolates;
    what it resolves is the service as written (secrets filled from the environment)."""
    inputs = export_inputs(case, {"env": {"ODD": "$HOME 100%"}})
    path = write_export(tmp_path, inputs)
    env = {**os.environ, "VLLM_API_KEY": "from-the-environment", "DOCKER_HOST": "unix:///nonexistent"}
    result = subprocess.run(
        [tool("docker-compose"), "-f", str(path), "-p", "check", "config"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"][inputs.plan.deployment]
    assert uncompose(resolved["environment"]["ODD"]) == "$HOME 100%"
    if inputs.plan.run.secret_env:
        assert resolved["environment"]["VLLM_API_KEY"] == "from-the-environment"
    assert resolved["command"] == list(inputs.plan.run.args)
    assert resolved["ports"] == [p + "/tcp" for p in service_of(inputs)["ports"]]


def test_docker_compose_refuses_to_start_without_the_secret(tmp_path: Path) -> None:
    path = write_export(tmp_path, export_inputs("prod-vllm"))
    env = {k: v for k, v in os.environ.items() if k != "VLLM_API_KEY"}
    result = subprocess.run([tool("docker-compose"), "-f", str(path), "config"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    assert "set VLLM_API_KEY" in result.stderr


FAKE_PODMAN = """#!{python}
import json, os, sys
with open(os.environ["FAKE_PODMAN_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:2] == ["--version"]:
    print("podman version 4.3.1")
elif "inspect" in sys.argv:
    print("[{{}}]")
"""
# what podman-compose 1.0.3 does not pass on (compose.py's header says so), and what it adds
PODMAN_COMPOSE_GAPS = ("--pids-limit", "--ipc", "--group-add")
NVIDIA_CDI = "nvidia.com/gpu="  # podman-compose >= 1.2 turns the GPU reservation into these
PODMAN_COMPOSE_OWN = ("--net", "--network-alias", "--restart", "--healthcheck-", "--detach")


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_podman_compose_runs_the_podman_run_line(case: str, tmp_path: Path) -> None:
    """podman-compose 1.0.3 `up -d` with a fake podman: the `podman run` it would execute has
    the options of llmdeploy's `podman run` line, but for the gaps the file's header names."""
    inputs = export_inputs(case)
    path = write_export(tmp_path, inputs)
    fake = tmp_path / "podman"
    fake.write_text(FAKE_PODMAN.format(python=sys.executable))
    fake.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    env = {**os.environ, "FAKE_PODMAN_LOG": str(log), "VLLM_API_KEY": "x"}
    result = subprocess.run(
        [tool("podman-compose"), "--podman-path", str(fake), "-f", str(path), "-p", "fake",
         "up", "-d"],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    (run,) = [call for call in calls if call[:1] == ["run"]]
    service = service_of(inputs)
    named = {v.split(":")[0]: f"fake_{v.split(':')[0]}" for v in service["volumes"] if v[0] != "/"}
    spec = with_named_volumes(inputs.plan.run, service)
    spec = replace(spec, mounts=tuple(replace(m, source=named.get(m.source, m.source))
                                      for m in spec.mounts))
    expected, tail = expected_pairs(spec, PODMAN)
    at = run.index(spec.image)
    got = option_pairs([_LONG.get(a, a) for a in run[1:at]])
    got = Counter({(k, v): n for (k, v), n in got.items()
                   if not k.startswith(PODMAN_COMPOSE_OWN) and not v.startswith(_COMPOSE_LABELS)})
    for key in spec.secret_env:  # filled in from the environment by interpolation
        del got[("--env", f"{key}=x")]
        got[("secret-env", key)] += 1
    got = Counter({(k, v.split(":")[0] if k == "--device" else v): n for (k, v), n in got.items()})
    expected = Counter({(k, v): n for (k, v), n in expected.items()
                        if k not in PODMAN_COMPOSE_GAPS and not v.startswith(NVIDIA_CDI)})
    assert got == expected
    assert run[at:] == tail


_LONG = {"-e": "--env", "-v": "--volume", "-p": "--publish", "-m": "--memory"}
_COMPOSE_LABELS = ("io.podman.compose.", "com.docker.compose.")
