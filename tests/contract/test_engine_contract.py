"""One behaviour suite for every Engine: the in-memory fake and the real Podman and Docker.

The fake engine (tests/fake_engine.py) stands in for the real ones in the fast lifecycle
tests; this suite keeps it honest. Each test runs against the fake and, when the engines are
there (always in CI: LLMDEPLOY_E2E=require), against real Podman and Docker with the same
assertions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.e2e_helpers import BASE_IMAGE, engine_ready, unavailable
from fake_engine import FakeEngine
from llmdeploy.core.run_spec import BindMount, RunSpec
from llmdeploy.engines.base import Engine
from llmdeploy.errors import NameConflictError

LABEL = "io.llmdeploy.contract"


@pytest.fixture(params=["fake", "podman", "docker"])
def engine(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, str]]:
    kind = str(request.param)
    if kind == "fake":
        fake = FakeEngine(images={BASE_IMAGE})
        yield fake, kind  # type: ignore[misc]
        return
    request.applymarker(pytest.mark.e2e)
    reason = engine_ready(kind)
    if reason:
        unavailable(reason)
    from llmdeploy.engines.selection import connect

    real = connect(kind)  # type: ignore[arg-type]
    try:
        yield real, kind
    finally:
        for info in real.list({LABEL: "yes"}):
            real.stop(info.id, timeout_s=0)  # `sleep` as PID 1 ignores SIGTERM: kill at once
            real.remove(info.id)
        real.close()


def spec(name: str, **labels: str) -> RunSpec:
    return RunSpec(
        name=name,
        image=BASE_IMAGE,
        entrypoint=("sleep",),
        args=("300",),
        labels={LABEL: "yes", **labels},
        ulimits={"nofile": "4096:4096", "nproc": "4096:4096"},
    )


def unique(prefix: str) -> str:
    return f"contract-{prefix}-{uuid.uuid4().hex[:8]}"


def test_run_returns_a_running_container_with_its_labels(engine: tuple[Engine, str]) -> None:
    eng, _ = engine
    info = eng.run(spec(unique("run"), role="a"))
    assert info.running and info.id
    assert info.labels[LABEL] == "yes" and info.labels["role"] == "a"
    again = eng.inspect(info.id)
    assert again is not None and again.id == info.id and again.name == info.name


def test_a_taken_name_is_refused_and_the_holder_is_untouched(engine: tuple[Engine, str]) -> None:
    eng, _ = engine
    name = unique("taken")
    first = eng.run(spec(name, owner="someone-else"))
    with pytest.raises(NameConflictError):
        eng.run(spec(name, owner="llmdeploy"))
    still = eng.inspect(name)
    assert still is not None and still.id == first.id and still.running
    assert still.labels["owner"] == "someone-else"


def test_inspect_and_remove_of_an_unknown_container(engine: tuple[Engine, str]) -> None:
    eng, _ = engine
    assert eng.inspect(unique("absent")) is None
    eng.remove(unique("absent"))  # no error: removing what is not there is a no-op


def test_list_filters_on_every_label_given(engine: tuple[Engine, str]) -> None:
    eng, _ = engine
    tag = uuid.uuid4().hex[:8]
    a = eng.run(spec(unique("la"), group=tag, role="a"))
    b = eng.run(spec(unique("lb"), group=tag, role="b"))
    ids = {c.id for c in eng.list({LABEL: "yes", "group": tag})}
    assert ids == {a.id, b.id}
    only_b = eng.list({LABEL: "yes", "group": tag, "role": "b"})
    assert [c.id for c in only_b] == [b.id]


def test_stop_then_remove_by_id(engine: tuple[Engine, str]) -> None:
    eng, _ = engine
    info = eng.run(spec(unique("stop")))
    eng.stop(info.id, timeout_s=1)
    stopped = eng.inspect(info.id)
    assert stopped is not None and not stopped.running
    eng.remove(info.id)
    assert eng.inspect(info.id) is None


def test_read_only_mount_is_reported_read_only(
    engine: tuple[Engine, str], tmp_path: Path
) -> None:
    eng, _ = engine
    folder = tmp_path / "weights"
    folder.mkdir()
    run = spec(unique("mount"))
    run = RunSpec(**{**run.__dict__, "mounts": (BindMount(str(folder), "/models", True),)})
    info = eng.run(run)
    models = [m for m in info.mounts if m.target == "/models"]
    assert models and models[0].read_only


def test_tag_inspect_and_untag_an_image(engine: tuple[Engine, str]) -> None:
    """What `llmdeploy build` relies on: a second name for an image, its facts, and taking
    the name away again without losing the image under its other names."""
    eng, _ = engine
    base = eng.image_info(BASE_IMAGE)
    assert base is not None and base.id and base.size_bytes > 0
    assert base.os == "linux" and base.architecture in ("amd64", "arm64")
    name = f"127.0.0.1:5000/contract/{uuid.uuid4().hex[:8]}:1"
    assert eng.image_info(name) is None
    eng.tag_image(BASE_IMAGE, name)
    try:
        tagged = eng.image_info(name)
        assert tagged is not None and tagged.id == base.id
        assert eng.image_exists(name)
    finally:
        eng.untag_image(name)
    assert eng.image_info(name) is None and not eng.image_exists(name)
    assert eng.image_info(BASE_IMAGE) is not None  # the image itself is still there
    eng.untag_image(name)  # a name that is gone: no error
