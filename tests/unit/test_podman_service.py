"""The transient Podman API service: started when no socket answers, stopped on close."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from llmdeploy.engines.podman_service import TransientService, socket_answers


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
def test_transient_service_answers_then_goes_away() -> None:
    service = TransientService()
    try:
        assert socket_answers(service.path)
        args = subprocess.run(["ps", "-o", "args=", "-p", str(service._process.pid)],
                              capture_output=True, text=True, check=False).stdout
        assert "--time=30" in args  # exits by itself if llmdeploy dies before close()
    finally:
        service.close()
    assert not socket_answers(service.path)
    assert service._process.poll() is not None


def test_missing_podman_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmdeploy.errors import EngineUnavailableError

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EngineUnavailableError, match="Podman is not installed"):
        TransientService()


def test_the_first_default_socket_that_answers_is_chosen(tmp_path: object) -> None:
    from fake_engine_api import serve

    from llmdeploy.engines.addresses import ApiAddress
    from llmdeploy.engines.podman_service import first_answering

    dead = ApiAddress(f"unix://{tmp_path}/dead.sock")
    remote = ApiAddress("tcp://127.0.0.1:1")  # only unix sockets are probed
    with serve("podman") as api:
        alive = ApiAddress(api.url)
        assert first_answering([dead, remote, alive]) == alive
    assert first_answering([dead, alive]) is None  # closed again
