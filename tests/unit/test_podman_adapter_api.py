"""PodmanEngine through the real podman-py against a fake libpod API (no Podman service).

Asserts the libpod requests our adapter makes for a RunSpec and each lifecycle call, and how
it finds the API (see fake_engine_api.py for where the answers' shapes come from).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fake_engine_api import FakeEngineApi, serve

from llmdeploy.core.run_spec import BindMount, BuildRequest, GpuRequest, PortMapping, RunSpec
from llmdeploy.engines.podman_engine import PodmanEngine
from llmdeploy.errors import EngineUnavailableError

IMAGE = "localhost/img:1"
SPEC = RunSpec(
    name="llmdeploy-x",
    image=IMAGE,
    args=("--port", "8080"),
    env={"A": "1"},
    labels={"io.llmdeploy.managed": "true", "io.llmdeploy.deployment": "x"},
    ports=(PortMapping("127.0.0.1", 9000, 8080),),
    mounts=(BindMount("/store/m", "/models", True),),
    cpus=1.5,
    memory="1g",
    shm_size="64m",
    pids_limit=50,
    ulimits={"nofile": "4096:8192", "nproc": "100"},
    label_disable=True,
)


@pytest.fixture
def api() -> Iterator[FakeEngineApi]:
    with serve("podman") as fake:
        fake.add_image(IMAGE)
        yield fake


@pytest.fixture
def engine(api: FakeEngineApi) -> Iterator[PodmanEngine]:
    podman = PodmanEngine(socket_path=api.socket_path)
    api.forget()
    yield podman
    podman.close()


def test_run_creates_starts_and_inspects_one_container_through_libpod(
    api: FakeEngineApi, engine: PodmanEngine
) -> None:
    info = engine.run(SPEC)
    cid = info.id
    # created over the standard-library client (engines/libpod_create.py): no podman-py, and
    # no inspect between create and start (podman-py's create() reads the container back)
    assert api.calls() == [
        ("POST", "/containers/create"),
        ("POST", f"/containers/{cid}/start"),
        ("GET", f"/containers/{cid}/json"),
    ]
    assert engine._client is None
    assert all(recorded.libpod for recorded in api.requests)
    assert info.running and info.name == "llmdeploy-x" and info.labels == SPEC.labels
    assert [(m.source, m.target, m.read_only) for m in info.mounts] == [
        ("/store/m", "/models", True)
    ]


def test_create_request_carries_the_spec_as_libpod_fields(
    api: FakeEngineApi, engine: PodmanEngine
) -> None:
    engine.run(SPEC)
    body = api.last("POST", "/containers/create").body
    assert body["name"] == "llmdeploy-x" and body["image"] == IMAGE
    assert body["command"] == ["--port", "8080"] and body["env"] == {"A": "1"}
    assert body["labels"] == SPEC.labels
    assert body["portmappings"] == [
        {"container_port": 8080, "host_ip": "127.0.0.1", "host_port": 9000, "protocol": "tcp"}
    ]
    # read-only, and no relabelling option (:z / :Z) on the user's model files
    assert body["mounts"] == [
        {"destination": "/models", "options": ["ro"], "source": "/store/m", "type": "bind"}
    ]
    assert body["cap_drop"] == ["ALL"]
    assert body["no_new_privileges"] is True
    # libpod's selinux_opts take the bare option (`podman run` strips the "label=" itself)
    assert body["selinux_opts"] == ["disable"]
    assert body["r_limits"] == [
        {"hard": 8192, "soft": 4096, "type": "nofile"},
        {"hard": 100, "soft": 100, "type": "nproc"},
    ]
    assert body["resource_limits"] == {
        "cpu": {"period": 100_000, "quota": 150_000},
        "memory": {"limit": 1024**3},
        "pids": {"limit": 50},
    }
    assert body["shm_size"] == 64 * 1024**2
    assert body["read_only_filesystem"] is False
    assert "devices" not in body


def test_gpu_requests_reach_libpod_as_cdi_or_host_devices(
    api: FakeEngineApi, engine: PodmanEngine
) -> None:
    engine.run(replace(SPEC, name="all", ports=(), gpu=GpuRequest("nvidia")))
    assert api.last("POST", "/containers/create").body["devices"] == [
        {"path": "nvidia.com/gpu=all"}
    ]
    engine.run(replace(SPEC, name="two", ports=(), gpu=GpuRequest("nvidia", 2)))
    assert api.last("POST", "/containers/create").body["devices"] == [
        {"path": "nvidia.com/gpu=0"},
        {"path": "nvidia.com/gpu=1"},
    ]
    engine.run(replace(SPEC, name="amd", ports=(), gpu=GpuRequest("amd")))
    body = api.last("POST", "/containers/create").body
    assert body["devices"] == [{"path": "/dev/kfd"}, {"path": "/dev/dri"}]
    assert body["groups"] == ["video"]


def test_a_confined_spec_sends_no_selinux_option(api: FakeEngineApi, engine: PodmanEngine) -> None:
    engine.run(replace(SPEC, label_disable=False))
    body = api.last("POST", "/containers/create").body
    assert not body.get("selinux_opts") and body["no_new_privileges"] is True


def test_list_sends_label_filters_libpod_matches(api: FakeEngineApi, engine: PodmanEngine) -> None:
    ours = engine.run(SPEC)
    api.add_container("someone-else", IMAGE, labels={"io.llmdeploy.deployment": "other"})
    api.forget()

    found = engine.list({"io.llmdeploy.deployment": "x", "io.llmdeploy.managed": ""})

    assert [info.id for info in found] == [ours.id]
    listing = api.requests[0]
    assert (listing.method, listing.path) == ("GET", "/containers/json")
    assert listing.query["all"] in ("1", "true", "True")
    assert listing.json_query("filters") == {
        "label": ["io.llmdeploy.deployment=x", "io.llmdeploy.managed"]
    }


def test_stop_and_remove_send_the_timeout_and_force(
    api: FakeEngineApi, engine: PodmanEngine
) -> None:
    cid = engine.run(SPEC).id
    api.forget()
    engine.stop(cid, timeout_s=7)
    engine.remove(cid)
    assert api.last("POST", f"/containers/{cid}/stop").query["timeout"] == "7"
    assert api.last("DELETE", f"/containers/{cid}").query["force"] in ("True", "true")
    assert engine.inspect(cid) is None


def test_a_missing_container_is_none_and_stop_or_remove_of_it_is_quiet(
    api: FakeEngineApi, engine: PodmanEngine
) -> None:
    assert engine.inspect("gone") is None
    engine.stop("gone")
    engine.remove("gone")
    assert list(engine.logs("gone")) == []
    # each call is answered "no such container" and ends quietly; nothing else is touched
    assert api.calls() == [
        ("GET", "/containers/gone/json"),
        ("POST", "/containers/gone/stop"),
        ("DELETE", "/containers/gone"),
        ("GET", "/containers/gone/logs"),
    ]


def test_logs_are_demultiplexed_into_lines_and_tail_is_sent(
    api: FakeEngineApi, engine: PodmanEngine
) -> None:
    cid = engine.run(SPEC).id
    assert list(engine.logs(cid)) == ["hello", "err", "partial"]
    assert list(engine.logs(cid, tail=2)) == ["err", "partial"]
    query = api.last("GET", f"/containers/{cid}/logs").query
    assert query["tail"] == "2" and query["stdout"] in ("True", "true")
    assert query["stderr"] in ("True", "true")


def test_image_exists_and_pull_through_libpod(api: FakeEngineApi, engine: PodmanEngine) -> None:
    assert engine.image_exists(IMAGE) and not engine.image_exists("localhost/new:3")
    api.pullable.add("localhost/new:3")
    engine.pull("localhost/new:3")
    pull = api.last("POST", "/images/pull")
    assert pull.libpod and pull.query["reference"] == "localhost/new:3"
    assert api.calls()[-1] == ("GET", "/images/localhost/new:3/json")


def test_build_sends_the_context_as_a_tar_with_tag_args_and_labels(
    api: FakeEngineApi, engine: PodmanEngine, tmp_path: Path
) -> None:
    (tmp_path / "Containerfile").write_text("FROM localhost/base:1\nLABEL a=b\n")
    request = BuildRequest(
        context_dir=str(tmp_path),
        containerfile="Containerfile",
        tag="localhost/built:1",
        build_args={"VERSION": "1"},
        labels={"io.llmdeploy.managed": "true"},
    )
    lines = engine.build(request)
    build = api.last("POST", "/build")
    assert build.libpod and build.query["t"] == "localhost/built:1"
    assert build.query["dockerfile"] == "Containerfile"
    assert build.json_query("buildargs") == {"VERSION": "1"}
    assert build.json_query("labels") == {"io.llmdeploy.managed": "true"}
    with tarfile.open(fileobj=io.BytesIO(build.body)) as tar:
        assert "Containerfile" in tar.getnames()
    assert "STEP 2/2: LABEL a=b" in lines and "Successfully tagged localhost/built:1" in lines


# --- finding the API: the addresses engines/addresses.py computes -------------------------


def test_a_configured_socket_is_used(api: FakeEngineApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDEPLOY_PODMAN_SOCKET", api.socket_path)
    monkeypatch.setenv("CONTAINER_HOST", "unix:///nonexistent/other.sock")  # loses to ours
    podman = PodmanEngine()
    try:
        assert podman.version() == "4.3.1" and not podman.transient
        assert podman.socket_path == api.socket_path
    finally:
        podman.close()


def test_a_dead_container_host_is_an_error_naming_it_never_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMDEPLOY_PODMAN_SOCKET", raising=False)
    monkeypatch.setenv("CONTAINER_HOST", f"unix://{tmp_path}/dead.sock")
    with pytest.raises(EngineUnavailableError) as raised:
        PodmanEngine()
    assert "$CONTAINER_HOST" in raised.value.message and "dead.sock" in raised.value.message
    assert raised.value.hint and "unset CONTAINER_HOST" in raised.value.hint


def test_the_first_answering_default_socket_is_used(
    api: FakeEngineApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime_dir = Path(api.socket_path).parent
    (runtime_dir / "podman").mkdir()
    (runtime_dir / "podman" / "podman.sock").symlink_to(api.socket_path)
    for name in ("LLMDEPLOY_PODMAN_SOCKET", "CONTAINER_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime_dir))
    monkeypatch.setattr("os.geteuid", lambda: 1000)  # rootless: the runtime dir's socket
    podman = PodmanEngine()
    try:
        assert podman.socket_path == f"{runtime_dir}/podman/podman.sock"
        assert not podman.transient
    finally:
        podman.close()
