"""How each engine's API errors reach llmdeploy's exception tree (docs/errors.md).

Both adapters run their real SDK against the fake API (fake_engine_api.py), which answers
with each engine's own status codes and messages: Docker refuses a taken name with 409,
Podman with 500; Docker reports a taken port as "port is already allocated", Podman as
"address already in use"; a failed pull is a 500 from Docker and a 200 with an error line
from libpod.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_engine_api import BuildOutcome, FakeEngineApi, Flavor, serve

from llmdeploy.core.run_spec import BuildRequest, PortMapping, RunSpec
from llmdeploy.engines.docker_engine import DockerEngine
from llmdeploy.engines.podman_engine import PodmanEngine
from llmdeploy.engines.sdk_engine import SdkEngine
from llmdeploy.errors import (
    EngineError,
    EngineUnavailableError,
    ImageError,
    NameConflictError,
    PortInUseError,
    RegistryUnreachableError,
)

IMAGE = "localhost/img:1"
SPEC = RunSpec(
    name="llmdeploy-x",
    image=IMAGE,
    labels={"io.llmdeploy.managed": "true"},
    ports=(PortMapping("127.0.0.1", 9000, 8080),),
)


@pytest.fixture(params=["docker", "podman"])
def api(request: pytest.FixtureRequest) -> Iterator[FakeEngineApi]:
    flavor: Flavor = request.param
    with serve(flavor) as fake:
        fake.add_image(IMAGE)
        yield fake


@pytest.fixture
def engine(api: FakeEngineApi) -> Iterator[SdkEngine]:
    adapter: SdkEngine = (
        DockerEngine(base_url=api.url)
        if api.flavor == "docker"
        else PodmanEngine(socket_path=api.socket_path)
    )
    api.forget()
    yield adapter
    adapter.close()


def test_a_taken_name_is_a_name_conflict_and_the_holder_is_left_alone(
    api: FakeEngineApi, engine: SdkEngine
) -> None:
    holder = api.add_container("llmdeploy-x", IMAGE, labels={"owner": "someone-else"})

    with pytest.raises(NameConflictError) as raised:
        engine.run(SPEC)

    assert "already in use" in raised.value.message and raised.value.hint
    assert api.calls() == [("POST", "/containers/create")]  # nothing stopped or removed
    assert api.containers[holder.id].status == "running"


def test_a_taken_port_is_port_in_use_and_the_new_container_is_removed(
    api: FakeEngineApi, engine: SdkEngine
) -> None:
    holder = api.add_container("other", IMAGE, host_ports=(("127.0.0.1", 9000),))

    with pytest.raises(PortInUseError) as raised:
        engine.run(SPEC)

    assert "9000" in raised.value.message and raised.value.hint
    # the container created for the failed start is removed again; the holder is untouched
    assert [c.name for c in api.containers.values()] == ["other"]
    removed = [path for method, path in api.calls() if method == "DELETE"]
    assert len(removed) == 1 and holder.id not in removed[0]
    assert api.containers[holder.id].status == "running"


def test_creating_from_a_missing_image_is_an_image_error(
    api: FakeEngineApi, engine: SdkEngine
) -> None:
    api.images.clear()
    with pytest.raises(ImageError, match=IMAGE):
        engine.run(SPEC)
    assert api.containers == {}


def test_a_failed_pull_is_a_registry_error_with_the_engines_reason(
    api: FakeEngineApi, engine: SdkEngine
) -> None:
    # Docker answers 500; libpod answers 200 with an error line and podman-py returns no image;
    # "connection refused" classifies as the registry being unreachable (exit 13)
    with pytest.raises(RegistryUnreachableError) as raised:
        engine.pull("localhost/nope:1")
    assert raised.value.exit_code == 13
    assert "localhost/nope:1" in raised.value.message
    assert "connection refused" in raised.value.message
    assert raised.value.hint and "load" in raised.value.hint


def test_a_failed_build_is_an_image_error_with_the_log_tail(
    api: FakeEngineApi, engine: SdkEngine, tmp_path: Path
) -> None:
    (tmp_path / "Containerfile").write_text("FROM localhost/base:1\nRUN false\n")
    api.build_outcome = BuildOutcome(
        lines=("STEP 1/2: FROM localhost/base:1\n", "STEP 2/2: RUN false\n"),
        error='building at STEP "RUN false": while running runtime: exit status 1\n',
    )
    request = BuildRequest(str(tmp_path), "Containerfile", "localhost/built:1")

    with pytest.raises(ImageError) as raised:
        engine.build(request)

    assert "localhost/built:1" in raised.value.message
    assert "STEP 2/2: RUN false" in raised.value.log_tail
    assert any("exit status 1" in line for line in raised.value.log_tail)
    assert not engine.image_exists("localhost/built:1")


def test_a_missing_image_or_container_is_an_answer_not_an_error(
    api: FakeEngineApi, engine: SdkEngine
) -> None:
    assert engine.image_exists("localhost/absent:1") is False
    assert engine.inspect("absent") is None


def test_any_other_api_error_is_an_engine_error_with_the_servers_explanation(
    api: FakeEngineApi, engine: SdkEngine
) -> None:
    api.failures[("GET", "/containers/[^/]+/json")] = (500, "storage is corrupt")
    with pytest.raises(EngineError) as raised:
        engine.inspect("anything")
    assert type(raised.value) is EngineError
    assert "storage is corrupt" in raised.value.message


def test_a_dead_docker_host_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/dead.sock")
    with pytest.raises(EngineUnavailableError) as raised:
        DockerEngine()
    assert "$DOCKER_HOST" in raised.value.message and "dead.sock" in raised.value.message
    assert raised.value.hint and "unset it" in raised.value.hint
