"""A manifest list for linux/amd64 + linux/arm64 through a real registry, and the ARM64 image
served under qemu user emulation (Podman).

Slow by nature (the arm64 build's RUN steps and the server run under emulation: about a
token per second), so it is marked ``emulated`` and runs after every other end-to-end test
(tests/e2e/conftest.py). Prerequisites, from ``scripts/setup-host.sh --with-arm64``: qemu-aarch64
registered in binfmt_misc, the base image localhost/llmdeploy-base:bookworm-arm64 (built once
per machine, cached as a tarball), the aarch64 xllamacpp wheel in the wheelhouse.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import cli_in, engine_ready, free_port, leftovers, unavailable
from local_registry import LocalRegistry, local_registry

pytestmark = [pytest.mark.e2e, pytest.mark.emulated]

ARM64_BASE = os.environ.get(
    "LLMDEPLOY_TEST_ARM64_BASE_IMAGE", "localhost/llmdeploy-base:bookworm-arm64"
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def _wheelhouse() -> Path:
    override = os.environ.get("LLMDEPLOY_WHEELHOUSE")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(override) if override else cache / "llmdeploy" / "wheelhouse"


def _prerequisites() -> str | None:
    reason = engine_ready("podman")
    if reason:
        return reason
    binfmt = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    if os.uname().machine != "aarch64" and (
        not binfmt.exists() or "enabled" not in binfmt.read_text()
    ):
        return "qemu-aarch64 is not registered in binfmt_misc (scripts/setup-host.sh --with-arm64)"
    probe = subprocess.run(["podman", "image", "inspect", ARM64_BASE], capture_output=True,
                           timeout=60)
    if probe.returncode != 0:
        return f"{ARM64_BASE} is missing (scripts/setup-host.sh --with-arm64)"
    if not list(_wheelhouse().glob("xllamacpp-*_aarch64.whl")):
        return f"no aarch64 xllamacpp wheel in {_wheelhouse()} (scripts/setup-host.sh --with-arm64)"
    return None


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    with local_registry(tmp_path_factory.mktemp("registry-multi")) as running:
        yield running


def test_manifest_list_has_both_platforms_and_the_arm64_image_serves_emulated(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    reason = _prerequisites()
    if reason:
        unavailable(reason)
    cli = cli_in(tmp_path)
    repo = f"llm/multi-{uuid.uuid4().hex[:6]}"
    tag = registry.ref(repo, "1")
    build_profile = tmp_path / "edge-multi.yaml"
    build_profile.write_text("name: edge-multi\nextends: edge-podman\n")

    started = time.monotonic()
    built = cli("build", "--profile-file", str(build_profile), "--engine", "podman",
                "--platform", "linux/amd64,linux/arm64",
                "--base-image", f"linux/arm64={ARM64_BASE}",
                "--tag", tag, "--push", "--tls-verify=false", "--json", timeout=1800)
    build_s = time.monotonic() - started
    assert built.returncode == 0, built.stderr + built.stdout
    result = json.loads(built.stdout)
    sizes = {p["platform"]: p["size_bytes"] for p in result["platforms"]}
    print(f"e2e-build: multi-platform build+push {build_s:.1f} s, phases {result['phase_s']}, "
          + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items()))
    assert set(sizes) == {"linux/amd64", "linux/arm64"}
    assert result["id"] is None and result["pushed"] is True

    # the registry holds one index with both platforms, under the digest build reported
    raw = registry.raw_manifest(tag)
    assert raw is not None
    assert result["digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    index = json.loads(raw)
    assert index["mediaType"] in INDEX_TYPES
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
                 for m in index["manifests"]}
    assert set(platforms) == {"linux/amd64", "linux/arm64"}
    arm64 = f"{registry.address}/{repo}@{platforms['linux/arm64']}"
    assert registry.raw_manifest(arm64) is not None

    # forget the local images, so that up really pulls the ARM64 one from the registry
    subprocess.run(["podman", "manifest", "rm", tag], capture_output=True, timeout=60)
    for local in (f"{tag}-amd64", f"{tag}-arm64"):
        subprocess.run(["podman", "rmi", local], capture_output=True, timeout=60)

    name = f"e2e-arm64-{uuid.uuid4().hex[:6]}"
    profile = tmp_path / f"{name}.yaml"
    profile.write_text(
        f"name: {name}\nextends: edge-podman\nimage: {arm64}\n"
        f"server: {{port: {free_port()}}}\n"
        # emulated: loading takes seconds, a short prompt tens of seconds
        "backend: {kind: llamacpp, ctx_size: 512, parallel: 1, threads: 2}\n"
        "health: {timeout_s: 600}\n"
    )
    try:
        up_started = time.monotonic()
        started_up = cli("up", "--profile-file", str(profile), "--tls-verify=false", "--json",
                         timeout=900)
        assert started_up.returncode == 0, started_up.stderr + started_up.stdout
        up = json.loads(started_up.stdout)
        assert up["image_source"] == "pulled" and up["image"] == arm64
        machine = subprocess.run(["podman", "exec", f"llmdeploy-{name}", "uname", "-m"],
                                 capture_output=True, text=True, timeout=60)
        assert machine.stdout.strip() == "aarch64", machine.stderr
        reply = cli.json("chat", "--deployment", name, "--max-tokens", "4", "Hi", timeout=600)
        assert isinstance(reply, dict) and reply["completion_tokens"] and reply["content"].strip()
        decode_s = reply["elapsed_s"] - (reply["ttft_s"] or 0)
        rate = (reply["completion_tokens"] - 1) / decode_s if decode_s > 0 else 0.0
        steps = ", ".join(f"{p['name']} {p['seconds']:.1f} s" for p in up["phases"])
        print(f"e2e-build: arm64 emulated: up {time.monotonic() - up_started:.1f} s "
              f"({steps}), chat {reply['completion_tokens']} tokens in "
              f"{reply['elapsed_s']:.1f} s, first token {reply['ttft_s']:.1f} s, "
              f"decode {rate:.2f} tokens/s")
    finally:
        cli("down", name)
        subprocess.run(["podman", "rmi", arm64], capture_output=True, timeout=120)
    assert leftovers("podman", name) == []
