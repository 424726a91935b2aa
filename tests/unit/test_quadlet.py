"""Quadlet export: golden files, a strict reading of every unit for the oldest and newest Podman
the units claim, and the ``podman run`` Quadlet would generate compared with llmdeploy's own.

Podman 4.3 on these machines predates Quadlet (4.4), so nothing here runs systemd: the strict
parser (tests/fakes/systemd_unit.py) reads the units as Quadlet 4.7 ... 5.8 do, and its
emulation of Quadlet's key -> flag translation is compared with render/command_line.py's line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from single_host_exports import EXPORT_CASES, check_golden, export_inputs

from fakes.systemd_unit import QUADLET_OWN, Unit, parse_unit, quadlet_run_args
from llmdeploy.core.engine_traits import PODMAN
from llmdeploy.core.run_spec import RunSpec
from llmdeploy.errors import RenderError
from llmdeploy.render.command_line import run_argv
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.quadlet import MIN_PODMAN, render_quadlet
from llmdeploy.render.unit_file import UnitFile

OLDEST = tuple(int(part) for part in MIN_PODMAN.split("."))
NEWEST = (5, 8)


def rendered(inputs: ExportInputs) -> dict[str, str]:
    return {item.path: item.content for item in render_quadlet(inputs)}


def container_unit(inputs: ExportInputs, podman: tuple[int, int] = OLDEST) -> Unit:
    files = rendered(inputs)
    (name,) = [path for path in files if path.endswith(".container")]
    return parse_unit(files[name], kind=".container", podman=podman)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_quadlet_files_match_golden(case: str) -> None:
    check_golden(case, "quadlet", render_quadlet(export_inputs(case)))


@pytest.mark.parametrize("podman", [OLDEST, NEWEST], ids=["oldest", "newest"])
@pytest.mark.parametrize("case", EXPORT_CASES)
def test_every_unit_reads_strictly_on_the_podman_versions_claimed(
    case: str, podman: tuple[int, int]
) -> None:
    for path, text in rendered(export_inputs(case)).items():
        kind = Path(path).suffix
        if kind in (".container", ".volume", ".network"):
            parse_unit(text, kind=kind, podman=podman)


def test_a_unit_needing_a_newer_podman_than_claimed_is_caught() -> None:
    """The version check is live: the same unit read as Podman 4.4 (no HealthCmd yet) fails."""
    text = rendered(export_inputs("edge-podman"))["llmdeploy-edge-podman.container"]
    with pytest.raises(ValueError, match="needs Podman 4.5"):
        parse_unit(text, podman=(4, 4))


# --- the unit runs what `up` runs ------------------------------------------------------------

_NO_VALUE = {"--detach", "-d", "--replace", "--rm", "--read-only"}
_ALIASES = {"-v": "--volume", "-d": "--detach"}


def option_pairs(options: list[str]) -> Counter[tuple[str, str]]:
    """``--flag value`` / ``--flag=value`` options as a multiset of canonical pairs."""
    pairs: Counter[tuple[str, str]] = Counter()
    i = 0
    while i < len(options):
        flag, value = options[i], ""
        if "=" in flag and flag.startswith("--"):
            flag, value = flag.split("=", 1)
        elif flag not in _NO_VALUE:
            i += 1
            value = options[i]
        flag = _ALIASES.get(flag, flag)
        if flag in ("--cap-drop", "--cap-add"):
            value = value.upper()
        if flag == "--security-opt":
            value = value.replace("label:", "label=")
        if flag == "--read-only":
            value = value or "true"
        if flag == "--cpus":
            value = f"{float(value):g}"  # 2 and 2.0 are the same limit
        pairs[(flag, value)] += 1
        i += 1
    return pairs


def run_pairs(spec: RunSpec, volumes: dict[str, str]) -> tuple[Counter[tuple[str, str]], list[str]]:
    """`podman run`'s options; a writable bind mount (a backend's state) becomes the named
    volume ``volumes[target]``, as the export decides."""
    mounts = tuple(
        replace(m, source=volumes[m.target]) if not m.read_only else m for m in spec.mounts
    )
    spec = replace(spec, mounts=mounts)
    argv = [str(token) for token in run_argv(spec, PODMAN)]
    at = argv.index(spec.image, 2)
    pairs = option_pairs(argv[2:at])
    for key in spec.secret_env:  # `--env KEY` (read from the host) is a secret for Quadlet
        pairs -= Counter({(k, v): 1 for k, v in pairs if k == "--env" and v.split("=")[0] == key})
        pairs[("secret-env", key)] += 1
    del pairs[("--detach", "")]
    return pairs, argv[at:]


def quadlet_pairs(
    unit: Unit, image: str, volumes: dict[str, str]
) -> tuple[Counter[tuple[str, str]], list[str]]:
    argv = quadlet_run_args(unit, volumes)
    at = argv.index(image, 2)
    pairs = option_pairs(argv[2:at])
    for flag, value in list(pairs):
        if flag.startswith((*QUADLET_OWN, "--health-")) or flag == "--detach":
            del pairs[(flag, value)]
        elif flag == "--secret":
            del pairs[(flag, value)]
            _name, *options = value.split(",")
            assert "type=env" in options, value
            target = next(o.split("=", 1)[1] for o in options if o.startswith("target="))
            pairs[("secret-env", target)] += 1
    return pairs, argv[at:]


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_the_unit_starts_the_same_container_as_the_podman_run_line(case: str) -> None:
    """Each Quadlet key, translated to the flag Quadlet generates for it, gives exactly the
    options of `podman run` for the same RunSpec (labels, port, mounts, hardening, limits, GPU
    devices, environment, secrets), and the same image and argv."""
    inputs = export_inputs(case)
    spec = inputs.plan.run
    unit = container_unit(inputs)
    volume_files = {  # X.volume -> its VolumeName
        path: parse_unit(text, kind=".volume").value("Volume", "VolumeName") or ""
        for path, text in rendered(inputs).items() if path.endswith(".volume")
    }
    by_target = {  # mount target -> the volume's name, from the unit's Volume= lines
        v.split(":")[1]: volume_files[v.split(":")[0]]
        for v in unit.values("Container", "Volume") if v.split(":")[0] in volume_files
    }
    assert len(by_target) == len([m for m in spec.mounts if not m.read_only])
    expected, expected_tail = run_pairs(spec, by_target)
    got, got_tail = quadlet_pairs(unit, spec.image, volume_files)
    assert got == expected
    assert got_tail == expected_tail == [spec.image, *spec.args]


@pytest.mark.parametrize(
    "value",
    ["plain", "with space", "100%", "%h and %n", "$HOME ${HOME} $$", 'quote " and \'', "back\\slash",
     "tab\there", "line\nbreak", "ünïcode", ""],
)
def test_values_reach_the_container_exactly_as_written(value: str) -> None:
    """Environment values, labels and argv words survive unit syntax, Quadlet's splitting,
    systemd's specifiers (%) and variable expansion ($)."""
    inputs = export_inputs(
        "cpu-vllm", {"env": {"ODD": value}, "backend": {"extra_args": ["--odd", value]}}
    )
    unit = container_unit(inputs)
    assert unit.assignments("Container", "Environment")["ODD"] == value
    assert unit.words("Container", "Exec")[-2:] == ["--odd", value]
    assert quadlet_run_args(unit)[-2:] == ["--odd", value]


def test_a_value_no_unit_file_can_hold_is_an_error_naming_the_key() -> None:
    section = UnitFile().section("Container", reader="exec")
    with pytest.raises(RenderError, match="Volume"):
        section.raw("Volume", "/path/with\nnewline:/models:ro")
    with pytest.raises(RenderError, match="Image"):
        section.raw("Image", "image\\")


# --- what a user relies on -------------------------------------------------------------------


def test_llamacpp_unit_names_files_ports_and_hardening() -> None:
    files = rendered(export_inputs("edge-podman"))
    assert sorted(files) == ["llmdeploy-edge-podman.container"]
    unit = container_unit(export_inputs("edge-podman"))
    c = "Container"
    assert unit.value(c, "ContainerName") == "llmdeploy-edge-podman"
    assert unit.values(c, "PublishPort") == ["127.0.0.1:8080:8080"]
    (volume,) = unit.values(c, "Volume")
    assert volume.endswith(":/models:ro")
    assert unit.values(c, "DropCapability") == ["ALL"]
    assert unit.value(c, "NoNewPrivileges") == "true"
    assert unit.value(c, "SecurityLabelDisable") == "true"
    assert unit.assignments(c, "Label")["io.llmdeploy.deployment"] == "edge-podman"
    assert unit.value("Service", "Restart") == "on-failure"
    assert int(unit.value("Service", "TimeoutStartSec") or 0) >= 600
    assert unit.value("Install", "WantedBy") == "default.target"
    assert unit.value(c, "HealthOnFailure") == "kill"


def test_selinux_confined_keeps_the_label() -> None:
    unit = container_unit(export_inputs("edge-podman", {"security": {"selinux": "confined"}}))
    assert unit.value("Container", "SecurityLabelDisable") is None


def test_published_address_follows_the_profile() -> None:
    unit = container_unit(export_inputs("edge-podman", {"server": {"host": "::1", "port": 9001}}))
    assert unit.values("Container", "PublishPort") == ["[::1]:9001:8080"]


def test_secrets_are_podman_secrets_by_name_never_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "sk-never-rendered")
    files = rendered(export_inputs("prod-vllm"))
    assert not any("sk-never-rendered" in text for text in files.values())
    unit = container_unit(export_inputs("prod-vllm"))
    assert unit.words("Container", "Secret") == ["VLLM_API_KEY,type=env,target=VLLM_API_KEY"]
    assert "VLLM_API_KEY" not in unit.assignments("Container", "Environment")
    assert "podman secret create VLLM_API_KEY -" in files["llmdeploy-prod-vllm.container"]


@pytest.mark.parametrize(
    ("overrides", "devices", "extra"),
    [
        ({"accelerator": "cuda", "gpus": 2, "build": None}, ["nvidia.com/gpu=0", "nvidia.com/gpu=1"], []),
        ({"accelerator": "rocm"}, ["/dev/kfd", "/dev/dri"], ["--group-add", "video"]),
    ],
)
def test_gpus_are_the_devices_podman_run_gets(
    overrides: dict[str, object], devices: list[str], extra: list[str]
) -> None:
    case = "prod-vllm" if overrides["accelerator"] == "rocm" else "llamacpp-cuda"
    unit = container_unit(export_inputs(case, {k: v for k, v in overrides.items() if v}))
    assert unit.words("Container", "AddDevice") == devices
    assert unit.words("Container", "PodmanArgs")[: len(extra)] == extra


def test_ollama_state_is_a_named_volume_and_the_model_steps_are_printed() -> None:
    files = rendered(export_inputs("local-ollama"))
    assert sorted(files) == [
        "Modelfile", "llmdeploy-local-ollama-data-1.volume", "llmdeploy-local-ollama.container"
    ]
    volume = parse_unit(files["llmdeploy-local-ollama-data-1.volume"], kind=".volume")
    assert volume.value("Volume", "VolumeName") == "llmdeploy-local-ollama-data-1"
    unit = parse_unit(files["llmdeploy-local-ollama.container"])
    mounts = unit.values("Container", "Volume")
    assert "llmdeploy-local-ollama-data-1.volume:/root/.ollama:rw" in mounts
    assert "podman exec -i llmdeploy-local-ollama ollama create" in files[
        "llmdeploy-local-ollama.container"
    ]


def test_health_check_waits_for_a_cold_start_then_counts() -> None:
    small = container_unit(export_inputs("edge-podman"))
    assert small.value("Container", "HealthStartPeriod") == "120s"  # up's own patience
    slow = container_unit(export_inputs("edge-podman", {"probes": {"startup_timeout_s": 1234}}))
    assert slow.value("Container", "HealthStartPeriod") == "1234s"
    assert "http://127.0.0.1:8080/health" in (small.value("Container", "HealthCmd") or "")
