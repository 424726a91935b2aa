"""core/api_url.py: the one check of an API's URL behind chat, bench, route and profiles."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llmdeploy.core.api_url import api_url_problem, shown_url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:8000/v1", None),
        ("https://llm.example.com", None),
        ("ftp://127.0.0.1/v1", "not an http(s):// URL"),
        ("127.0.0.1:8000", "not an http(s):// URL"),
        ("http:///v1", "not an http(s):// URL"),
        ("http://127.0.0.1:99999/v1", "not a valid URL"),
        ("http://127.0.0.1:x/v1", "not a valid URL"),
        ("http://u:secretpw@127.0.0.1/v1", "credentials"),
        ("http://token@127.0.0.1/v1", "credentials"),
    ],
)
def test_api_url_problem(url: str, problem: str | None) -> None:
    found = api_url_problem(url)
    assert (found is None) if problem is None else (found is not None and problem in found)
    assert "secretpw" not in (found or "")


def test_shown_url_masks_the_user_info() -> None:
    assert shown_url("http://u:secretpw@h:1/v1") == "http://***@h:1/v1"
    assert shown_url("http://h:1/v1") == "http://h:1/v1"


@pytest.mark.parametrize(
    "args",
    [
        ["chat", "--url", "http://u:secretpw@127.0.0.1:9/v1", "hi"],
        ["bench", "--url", "http://u:secretpw@127.0.0.1:9/v1", "-n", "1"],
        ["route", "--edge", "edge-podman", "--cloud-url", "http://u:secretpw@127.0.0.1:9/v1",
         "--cloud-model", "m"],
    ],
)
def test_every_command_refuses_a_url_with_credentials_without_printing_them(
    args: list[str],
) -> None:
    done = subprocess.run([sys.executable, "-m", "llmdeploy", *args], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "credentials" in done.stderr and "***@127.0.0.1:9" in done.stderr
    assert "secretpw" not in done.stdout + done.stderr
