"""A bad option value or combination exits 2 on every command, as click's own usage errors do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BAD = {
    "up --pull": ["up", "--profile", "edge-podman", "--pull", "sometimes"],
    "up --engine": ["up", "--profile", "edge-podman", "--engine", "lxc"],
    "down --timeout": ["down", "x", "--timeout", "-1"],
    "logs --tail": ["logs", "x", "--tail", "-3"],
    "plan --memory": ["plan", "--profile", "edge-podman", "--memory", "lots"],
    "plan --arch": ["plan", "--arch", "no-such-arch", "--context", "4096"],
    "plan --quant": ["plan", "--arch", "llama-2-7b", "--quant", "Q9_Z", "--context", "4096"],
    "plan --gpu-memory on cpu": ["plan", "--profile", "edge-podman", "--gpu-memory", "24GiB"],
    "plan --context": ["plan", "--profile", "edge-podman", "--context", "0"],
    "plan --kv-cache-dtype": ["plan", "--profile", "edge-podman", "--kv-cache-dtype", "q7"],
    "chat --max-tokens": ["chat", "--url", "http://127.0.0.1:9/v1", "--max-tokens", "0", "hi"],
    "chat --api-key-env": ["chat", "--url", "http://127.0.0.1:9/v1", "--api-key-env",
                           "LLMDEPLOY_TEST_UNSET_KEY", "hi"],
    "render --engine": ["render", "--profile", "edge-podman", "--engine", "dokker"],
    "doctor --engine": ["doctor", "--engine", "dokker"],
    "up --tls-verify": ["up", "--profile", "edge-podman", "--tls-verify", "maybe"],
    "up --creds-env": ["up", "--profile", "edge-podman", "--creds-env",
                       "LLMDEPLOY_TEST_UNSET_KEY"],
    "build --platform": ["build", "--profile", "edge-podman", "--platform", "linux/s390x"],
    "build --tag": ["build", "--profile", "edge-podman", "--tag", "Bad Tag:1"],
    "build --tag digest": ["build", "--profile", "edge-podman", "--tag",
                           "r.example/x@sha256:" + "a" * 64],
    "build --push without a registry": ["build", "--profile", "edge-podman", "--push"],
    "build --tls-verify": ["build", "--profile", "edge-podman", "--tls-verify", "maybe"],
    "build --creds-env": ["build", "--profile", "edge-podman", "--tag", "r.example/x:1",
                          "--creds-env", "LLMDEPLOY_TEST_UNSET_KEY"],
    "build --base-image": ["build", "--profile", "edge-podman", "--base-image",
                           "linux/arm64=localhost/x:1"],
    "unknown option": ["status", "--no-such-option"],
    "unknown command": ["deploy-everything"],
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_usage_errors_exit_2_without_a_traceback(case: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LLMDEPLOY_TEST_UNSET_KEY"}
    result = subprocess.run([sys.executable, "-m", "llmdeploy", *BAD[case]], capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 2, (result.returncode, result.stdout + result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip(), "a usage error says what is wrong"
