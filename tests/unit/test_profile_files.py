"""Every way a profile file can be bad ends in a ProfileError naming the file (and line)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from llmdeploy.errors import ProfileError
from llmdeploy.profiles import file_text
from llmdeploy.profiles.loader import discover, resolve

GOOD = """\
name: good
extends: edge-podman
server:
  port: 9100
"""


def write(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def error_of(path: Path, tmp: Path) -> ProfileError:
    with pytest.raises(ProfileError) as info:
        resolve(profile_file=path, cwd=tmp, env={})
    return info.value


# --- bytes and text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ":3:1: contains NUL bytes: this is a binary file"),
        (b"name: caf\xe9\n", ":1:10: not UTF-8 text (byte 0xe9)"),
        (b"name: x\nport: \xc3", ":2:7: not UTF-8 text (byte 0xc3)"),  # truncated UTF-8
        (GOOD.encode("utf-16"), ": the file is UTF-16; a profile must be UTF-8"),
        (GOOD.encode("utf-16-le"), ": the file is UTF-16; a profile must be UTF-8"),
        (GOOD.encode("utf-16-be"), ": the file is UTF-16; a profile must be UTF-8"),
        (GOOD.encode("utf-32"), ": the file is UTF-32; a profile must be UTF-8"),
        (b"name: x\x07\n", ":1:8: control character U+0007 is not allowed in YAML"),
        (b"name: x\n\x00", ":2:1: contains NUL bytes"),
    ],
)
def test_files_that_are_not_utf8_text_say_what_they_are(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = write(tmp_path, "p.yaml", content)
    assert f"{path}{expected}" in error_of(path, tmp_path).message


def test_a_utf8_bom_and_crlf_line_endings_are_accepted(tmp_path: Path) -> None:
    text = GOOD.replace("\n", "\r\n")
    path = write(tmp_path, "p.yaml", b"\xef\xbb\xbf" + text.encode())
    assert resolve(profile_file=path, cwd=tmp_path, env={}).profile.server.port == 9100
    # and lines are still counted right in errors
    bad = write(tmp_path, "bad.yaml", text.replace("port: 9100", "port: high").encode())
    assert f"{bad}:4: server.port: Input should be a valid integer" in error_of(
        bad, tmp_path
    ).message


def test_missing_path_directory_and_special_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert "profile file not found" in error_of(missing, tmp_path).message
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    assert f"{folder}: is a directory, not a profile file" in error_of(folder, tmp_path).message
    dangling = tmp_path / "link.yaml"
    dangling.symlink_to(tmp_path / "gone.yaml")
    assert f"{dangling}: a symbolic link to a missing file" in error_of(dangling, tmp_path).message
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # must be refused before it is opened (opening a FIFO would block)
    assert f"{fifo}: not a regular file" in error_of(fifo, tmp_path).message


def test_an_unreadable_file_says_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "p.yaml", GOOD)
    real_open = Path.open

    def deny(self: Path, *args: object, **kwargs: object) -> object:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", deny)
    error = error_of(path, tmp_path)
    assert f"{path}: cannot read the profile: permission denied" in error.message


def test_a_huge_file_is_refused_without_parsing_it(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", GOOD + "#" * (file_text.MAX_BYTES + 10) + "\n")
    assert f"{path}: too large for a profile (more than 1024 KiB)" in error_of(
        path, tmp_path
    ).message


# --- YAML structure ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ": the file is empty; a profile is a YAML mapping"),
        ("# only a comment\n\n", ": the file is empty"),
        ("---\n", ": the file is empty"),
        ("- name: a\n- name: b\n", ":1: a profile must be a YAML mapping (`key: value` lines); "
         "this file holds a list"),
        ("just text\n", ":1: a profile must be a YAML mapping (`key: value` lines); "
         "this file holds a single value"),
        ("name: a\n---\nname: b\n", ":2:1: not valid YAML: a second YAML document (`---`)"),
        ("name: [unclosed\n", ":2:1: not valid YAML:"),
        ("name: a\nserver:\n\tport: 1\n", ":3:1: not valid YAML: found character '\\t'"),
        ("name: a\nbackend: !custom {kind: x}\n", ":2:10: not valid YAML: could not determine "
         "a constructor for the tag '!custom'"),
        ("name: a\nx: !!python/object/apply:os.system [id]\n", ":2:4: not valid YAML: could not"),
        ("name: a\nport: " + "9" * 5000 + "\n", ":2:7: not valid YAML: cannot read `99999"),
        ("name: a\nwhen: 2024-13-45\n", ":2:7: not valid YAML: cannot read `2024-13-45`: month"),
        ("name: a\nport: 0x" + "f" * 5000 + "\n", ":2:7: not valid YAML: `0xfffff"),
        ('name: a\ndescription: "\\ud800"\n', ":2:14: not valid YAML: a \\u escape of half a "
         "UTF-16 surrogate pair is not a character"),
        ("name: a\n? [x, y]\n: 1\n", ":2: <top level>: a key must be text"),
        ("name: a\nx: &a [1, *a]\n", ":2: an alias refers to a value that contains it"),
        ("name: a\nx: " + "[" * 200 + "]" * 200 + "\n", ":2: too complex for a profile: nested "
         "more than 64 deep"),
        ("name: a\nenv: {<<: 5}\n", ":2: `<<` (merge) takes a mapping or a list of mappings"),
    ],
)
def test_yaml_problems_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "p.yaml", text)
    assert f"{path}{expected}" in error_of(path, tmp_path).message


def test_tabs_get_a_hint_about_spaces(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "name: a\nserver:\n\tport: 1\n")
    assert "use spaces" in (error_of(path, tmp_path).hint or "")


def test_an_alias_bomb_is_refused_not_expanded(tmp_path: Path) -> None:
    lines = ["name: bomb", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):  # 8**10 values if expanded
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 8) + "]")
    path = write(tmp_path, "p.yaml", "\n".join(lines) + "\n")
    error = error_of(path, tmp_path)
    assert "too complex for a profile: more than 10000 values once its aliases are expanded" in (
        error.message
    )


def test_anchors_and_merge_keys_within_limits_work(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", GOOD + "env: &e {A: '1', B: '2'}\n"
                 "build: {args: {<<: *e, B: '3'}}\n")
    profile = resolve(profile_file=path, cwd=tmp_path, env={}).profile
    assert profile.env == {"A": "1", "B": "2"}
    assert profile.build is not None and profile.build.args == {"A": "1", "B": "3"}


# --- duplicate keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: a\nengine: podman\nimage: x\nengine: docker\n",
         ":4: engine: duplicate key (first at line 2, again at line 4)"),
        ("name: a\nenv:\n  MODE: x\n  OTHER: y\n  MODE: z\n",
         ":5: env.MODE: duplicate key (first at line 3, again at line 5)"),
        ("name: a\nbackend:\n  kind: llamacpp\n  ctx_size: 1\n  kind: vllm\n",
         ":5: backend.kind: duplicate key (first at line 3, again at line 5)"),
        ("name: a\nbackend: {kind: llamacpp, kind: vllm}\n",
         ":2: backend.kind: duplicate key (first at line 2 column 11, again at column 27)"),
        ("name: a\nenv: {A: '1', 'A': '2'}\n", ":2: env.A: duplicate key"),
        ("name: a\non: 1\n'on': 2\n", ":3: on: duplicate key (first at line 2, again at line 3)"),
        ("name: a\nbackend:\n  extra_args: []\n  kind: llamacpp\nname: b\n",
         ":5: name: duplicate key (first at line 1, again at line 5)"),
    ],
)
def test_duplicate_keys_are_refused_with_both_lines(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, "p.yaml", text)
    error = error_of(path, tmp_path)
    assert f"{path}{expected}" in error.message
    assert "a key may appear once" in (error.hint or "")


def test_a_duplicate_key_in_a_parent_is_reported_through_extends(tmp_path: Path) -> None:
    parent = write(tmp_path, "profiles/base.yaml",
                   "name: base\nextends: edge-podman\nengine: podman\nengine: docker\n")
    child = write(tmp_path, "profiles/child.yaml", "name: child\nextends: base\n")
    with pytest.raises(ProfileError) as info:
        resolve("child", cwd=tmp_path, env={})
    message = info.value.message
    assert f"{child}: extends: 'base' is {parent}, which cannot be read" in message
    assert f"{parent}:4: engine: duplicate key (first at line 3, again at line 4)" in message


# --- broken files next to the one asked for ----------------------------------------------------


def test_a_broken_file_does_not_stop_another_profile(tmp_path: Path) -> None:
    write(tmp_path, "profiles/good.yaml", GOOD)
    broken = write(tmp_path, "profiles/zz-broken.yaml", b"\xff\xfe garbage")
    resolved = resolve("good", cwd=tmp_path, env={})
    assert resolved.profile.server.port == 9100
    assert [s.location for s in resolved.broken] == [str(broken)]
    assert resolve("edge-podman", cwd=tmp_path, env={}).profile.name == "edge-podman"


def test_asking_for_the_broken_profile_raises_its_error(tmp_path: Path) -> None:
    # found by its `name:` line although the YAML is broken further down
    path = write(tmp_path, "profiles/mine.yaml", "name: mine\nserver:\n\tport: 1\n")
    with pytest.raises(ProfileError) as info:
        resolve("mine", cwd=tmp_path, env={})
    assert f"{path}:3:1: not valid YAML" in info.value.message
    crlf = write(tmp_path, "profiles/crlf.yaml", b"name: windows\r\nengine: a\r\nengine: b\r\n")
    with pytest.raises(ProfileError) as info:
        resolve("windows", cwd=tmp_path, env={})
    assert f"{crlf}:3: engine: duplicate key" in info.value.message
    # found by its file stem when nothing else is readable
    stem = write(tmp_path, "profiles/other.yaml", b"\x00\x01")
    with pytest.raises(ProfileError) as info:
        resolve("other", cwd=tmp_path, env={})
    assert f"{stem}:1:1: contains NUL bytes" in info.value.message


def test_a_broken_override_of_a_builtin_is_not_silently_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "profiles/edge-podman.yaml",
                 "name: edge-podman\nextends: edge-podman\nengine: podman\nengine: docker\n")
    with pytest.raises(ProfileError) as info:
        resolve("edge-podman", cwd=tmp_path, env={})
    assert f"{path}:4: engine: duplicate key" in info.value.message


def test_an_unknown_name_lists_the_files_that_could_not_be_read(tmp_path: Path) -> None:
    broken = write(tmp_path, "profiles/x.yaml", "- a list\n")
    with pytest.raises(ProfileError) as info:
        resolve("nothing-like-this", cwd=tmp_path, env={})
    assert f"these profile files cannot be read: {broken}" in (info.value.hint or "")


def test_a_broken_project_file_is_reported_when_it_is_the_default(tmp_path: Path) -> None:
    path = write(tmp_path, "llmdeploy.yaml", "name: p\nname: q\n")
    with pytest.raises(ProfileError) as info:
        resolve(cwd=tmp_path, env={})
    assert f"{path}:2: name: duplicate key" in info.value.message


def test_discover_keeps_broken_files_with_their_error(tmp_path: Path) -> None:
    write(tmp_path, "profiles/a.yaml", "")
    write(tmp_path, "profiles/b.yaml", GOOD)
    sources = {Path(s.location).name: s for s in discover(tmp_path) if s.origin == "project"}
    assert sources["a.yaml"].error is not None and sources["a.yaml"].name == "a"
    assert sources["b.yaml"].error is None and sources["b.yaml"].name == "good"


def test_every_builtin_reads_through_the_same_reader() -> None:
    from llmdeploy.profiles.loader import builtin_sources

    sources = list(builtin_sources())
    assert sources and all(s.error is None and s.positions for s in sources)


# --- the CLI: every command that reads a profile, exit 3, no traceback -------------------------


def run_cli(
    args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    from llmdeploy.cli import app as app_module

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["llmdeploy", *args])
    monkeypatch.delenv("LLMDEPLOY_DEBUG", raising=False)
    code = 0
    try:
        app_module.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDEPLOY_CONFIG_DIR", "/nonexistent-llmdeploy-config")


@pytest.mark.parametrize(
    "command",
    [
        ["profiles", "validate", "{file}"],
        ["up", "--dry-run", "-f", "{file}"],
        ["render", "-f", "{file}"],
        ["plan", "-f", "{file}"],
        ["profiles", "show", "bad"],
        ["up", "--dry-run", "--profile", "bad"],
    ],
)
def test_every_command_reports_a_bad_file_with_exit_3(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    path = write(tmp_path, "profiles/bad.yaml", b"name: bad\nengine: podman\nengine: \xff\n")
    args = [part.format(file=path) for part in command]
    code, output = run_cli(args, tmp_path, monkeypatch, capsys)
    assert code == 3, output
    assert "Traceback" not in output
    assert "bad.yaml:3:9: not UTF-8 text (byte 0xff)" in output


def test_profiles_list_flags_a_broken_file_and_lists_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    write(tmp_path, "profiles/good.yaml", GOOD)
    write(tmp_path, "profiles/broken.yaml", "name: broken\nengine: a\nengine: b\n")
    code, output = run_cli(["profiles", "list", "--json"], tmp_path, monkeypatch, capsys)
    assert code == 0, output
    rows = {row["name"]: row for row in json.loads(output)}
    assert rows["good"]["valid"] is True
    assert rows["broken"]["valid"] is False
    assert "engine: duplicate key (first at line 2, again at line 3)" in rows["broken"][
        "description"
    ]
    assert "edge-podman" in rows


def test_validate_a_directory_is_a_profile_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "d").mkdir()
    code, output = run_cli(["profiles", "validate", "d"], tmp_path, monkeypatch, capsys)
    assert code == 3 and "d: is a directory, not a profile file" in output


def test_the_ascii_fast_path_refuses_exactly_what_yamls_printable_set_refuses() -> None:
    """file_text checks ASCII text with a small class and compiles the full Unicode one only
    for other text: both must agree on every ASCII character, alone and inside text."""
    import re

    from llmdeploy.profiles import file_text

    full = re.compile(file_text._NON_PRINTABLE_FULL)
    for code in range(128):
        text = f"model:\n  ref: a{chr(code)}b\n"
        fast = file_text._first_non_printable(text)
        slow = full.search(text)
        assert (fast and fast.start()) == (slow and slow.start()), code
    for text in ("caf\u00e9: ok\n", "x: \u0085\n", "x: \u0080\n", "x: \ufffe\n", "x: \U0001f600\n"):
        fast = file_text._first_non_printable(text)
        slow = full.search(text)
        assert (fast and fast.start()) == (slow and slow.start()), text
