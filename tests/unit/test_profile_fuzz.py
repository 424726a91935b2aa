"""Fuzz: many broken byte strings through the profile path; a ProfileError or a profile, nothing else.

Seeded (reproducible) mutations of a real profile plus random bytes, truncated UTF-8, NULs,
deep nesting, alias games and huge numbers. Every input goes through ``resolve`` (what every
command calls); the ones it refuses also go through the CLI's ``profiles validate FILE`` and
``up --dry-run -f FILE``, which must exit 3 without a traceback.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmdeploy.errors import ProfileError
from llmdeploy.profiles.loader import resolve

SEED = 7
VALID = """\
# a profile with a bit of everything
name: fuzz
extends: edge-podman
description: "Café ☕ — SmolLM2 on the CPU"
engine: podman
backend:
  kind: llamacpp
  ctx_size: 2048
  extra_args: [--mlock]
env: &env
  MODE: '0755'
  LANG: C.UTF-8
build:
  args: {<<: *env, EXTRA: "x"}
server:
  host: 127.0.0.1
  port: ${PORT:-8080}
resources: {memory: 2g, ulimits: {nofile: "4096:4096"}}
"""
TOKENS = [
    "&a ", "*a", "<<: ", "!!int ", "!!binary ", "!custom ", "? ", "- ", ": ", '"', "'", "|",
    ">", "{", "}", "[", "]", "#", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "---\n", "...\n",
    "\t", "\r\n", "\n", "  ", "on", "no", "0755", "1:30", "~", "null", "1e999", ".nan",
    "2024-02-30", "${X}", "$${", "${X:-", "\\x", "\u00e9", "\U0001f600", "\ufeff", "\x85",
    "\u2028", "\x00", "\x1b", "engine", "name", "env", "backend", "kind", "server", "port",
]


def cases(rng: random.Random) -> Iterator[bytes]:
    valid = VALID.encode()
    for _ in range(80):  # random bytes
        yield bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
    for _ in range(120):  # truncations, often inside a multi-byte character
        yield valid[: rng.randrange(len(valid))]
    for _ in range(250):  # byte-level mutations
        data = bytearray(valid)
        for _ in range(rng.randrange(1, 6)):
            op = rng.randrange(4)
            at = rng.randrange(len(data))
            if op == 0:
                data[at] = rng.randrange(256)
            elif op == 1:
                data[at:at] = bytes([rng.choice([0, 9, 13, 0xC3, 0xFF, 0xEF, 0xBB, 0xBF])])
            elif op == 2:
                del data[at : at + rng.randrange(1, 20)]
            else:
                line = rng.choice(VALID.splitlines(keepends=True)).encode()
                data[at:at] = line  # often a duplicate key
        yield bytes(data)
    for _ in range(250):  # YAML token soup, spliced into the valid profile
        soup = "".join(rng.choice(TOKENS) for _ in range(rng.randrange(1, 25)))
        at = rng.randrange(len(VALID))
        yield (VALID[:at] + soup + VALID[at:]).encode("utf-8", errors="surrogatepass")
    for depth in (10, 63, 64, 65, 500, 5000):  # deep nesting
        yield b"name: x\nv: " + b"[" * depth + b"]" * depth + b"\n"
        yield b"name: x\nv: " + b"{a: " * depth + b"1" + b"}" * depth + b"\n"
        yield b"name: x\nv:\n" + b"".join(b"  " * i + b"- \n" for i in range(min(depth, 2000)))
    for digits in (10, 400, 4300, 4400, 100_000):  # huge numbers
        yield b"name: x\nextends: edge-podman\nserver: {port: " + b"9" * digits + b"}\n"
        yield b"name: x\nextends: edge-podman\nresources: {cpus: 1e" + b"9" * digits + b"}\n"
        yield b"name: x\nextends: edge-podman\nhealth: {timeout_s: 0x" + b"f" * digits + b"}\n"
    yield b"name: x\n" + b"a: &a [" + b"*a, " * 5 + b"]\n"
    yield b"name: x\nextends: edge-podman\ndescription: \"\\ud800\"\n"  # half a surrogate
    yield b"name: x\nextends: edge-podman\nenv: {\"\\udc00\": x}\n"
    yield b"name: x\n" + b"k: v\n" * 5000  # many duplicate keys


def test_every_broken_input_is_a_profile_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMDEPLOY_CONFIG_DIR", str(tmp_path / "no-config"))
    rng = random.Random(SEED)
    path = tmp_path / "fuzz.yaml"
    refused: list[bytes] = []
    accepted = 0
    for index, data in enumerate(cases(rng)):
        path.write_bytes(data)
        try:
            profile = resolve(profile_file=path, cwd=tmp_path, env={}).profile
            profile.model_dump_json().encode()  # what loads can be written out as UTF-8
        except ProfileError as exc:
            assert str(path) in exc.message or "profile" in exc.message, (index, data[:200])
            refused.append(data)
        except Exception as exc:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"case {index} raised {type(exc).__name__}: {exc}\ninput: {data[:300]!r}")
        else:
            accepted += 1
    assert len(refused) > 600  # the generator really produces broken files
    assert accepted > 0  # and a few harmless mutations still load

    from llmdeploy.cli import app as app_module
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLMDEPLOY_DEBUG", raising=False)
    for data in rng.sample(refused, 40):
        path.write_bytes(data)
        for args in (["profiles", "validate", str(path)], ["up", "--dry-run", "-f", str(path)]):
            monkeypatch.setattr(sys, "argv", ["llmdeploy", *args])
            with pytest.raises(SystemExit) as info:
                app_module.main()
            output = capsys.readouterr()
            assert info.value.code == 3, (args, data[:200], output.err)
            assert "Traceback" not in output.out + output.err
            assert "Error:" in output.err
