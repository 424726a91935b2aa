"""DockerEngine through the real ``docker`` SDK against a fake Docker Engine API (no daemon).

Asserts the HTTP requests our adapter makes for a RunSpec and each lifecycle call, as Docker's
API receives them (see fake_engine_api.py for where the answers' shapes come from).
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
from llmdeploy.engines.docker_engine import DockerEngine

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
    with serve("docker") as fake:
        fake.add_image(IMAGE)
        yield fake


@pytest.fixture
def engine(api: FakeEngineApi) -> Iterator[DockerEngine]:
    docker = DockerEngine(base_url=api.url)
    api.forget()
    yield docker
    docker.close()


def test_connecting_pings_and_the_version_is_asked_only_when_wanted(api: FakeEngineApi) -> None:
    docker = DockerEngine(base_url=api.url)
    assert [(r.method, r.path) for r in api.requests] == [("GET", "/_ping")]
    assert docker.version() == "20.10.24+dfsg1"
    assert docker.version() == "20.10.24+dfsg1"  # asked once
    assert [(r.method, r.path) for r in api.requests] == [("GET", "/_ping"), ("GET", "/version")]
    docker.close()


def test_calls_use_the_api_version_the_ping_stated_without_loading_docker_py(
    api: FakeEngineApi,
) -> None:
    import subprocess
    import sys

    # in a fresh interpreter: inspect, list and logs go over the standard library only
    code = (
        "import sys\n"
        "from llmdeploy.engines.docker_engine import DockerEngine\n"
        f"engine = DockerEngine(base_url={api.url!r})\n"
        "assert engine.inspect('nothing-here') is None\n"
        "assert engine.list({'io.llmdeploy.managed': 'true'}) == []\n"
        "engine.close()\n"
        "print(sorted(m for m in ('docker', 'requests', 'urllib3') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stderr
    paths = [r.raw_path for r in api.requests if r.path == "/containers/json"]
    assert paths and all(p.startswith("/v1.41/containers/json") for p in paths), paths


def test_run_creates_starts_and_inspects_one_container(
    api: FakeEngineApi, engine: DockerEngine
) -> None:
    info = engine.run(SPEC)
    cid = info.id
    assert api.calls() == [
        ("POST", "/containers/create"),
        ("GET", f"/containers/{cid}/json"),
        ("POST", f"/containers/{cid}/start"),
        ("GET", f"/containers/{cid}/json"),
    ]
    assert info.running and info.name == "llmdeploy-x" and info.labels == SPEC.labels
    assert [(m.source, m.target, m.read_only) for m in info.mounts] == [
        ("/store/m", "/models", True)
    ]


def test_create_request_carries_the_spec_as_docker_api_fields(
    api: FakeEngineApi, engine: DockerEngine
) -> None:
    engine.run(SPEC)
    create = api.last("POST", "/containers/create")
    assert create.query == {"name": "llmdeploy-x"}
    body = create.body
    assert body["Image"] == IMAGE and body["Cmd"] == ["--port", "8080"]
    assert body["Env"] == ["A=1"] and body["Labels"] == SPEC.labels
    assert body["ExposedPorts"] == {"8080/tcp": {}}
    host = body["HostConfig"]
    # published on loopback only
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}]}
    # the model mount is read-only and never relabelled
    assert host["Mounts"] == [
        {"Target": "/models", "Source": "/store/m", "Type": "bind", "ReadOnly": True}
    ]
    assert "Binds" not in host
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges", "label=disable"]
    assert host["Ulimits"] == [
        {"Name": "nofile", "Soft": 4096, "Hard": 8192},
        {"Name": "nproc", "Soft": 100, "Hard": 100},
    ]
    assert (host["CpuPeriod"], host["CpuQuota"]) == (100_000, 150_000)
    assert (host["Memory"], host["ShmSize"], host["PidsLimit"]) == (1024**3, 64 * 1024**2, 50)
    assert host["ReadonlyRootfs"] is False
    assert "DeviceRequests" not in host and "Devices" not in host


def test_gpu_requests_reach_docker_as_device_requests_or_devices(
    api: FakeEngineApi, engine: DockerEngine
) -> None:
    engine.run(replace(SPEC, name="all", ports=(), gpu=GpuRequest("nvidia")))
    (request,) = api.last("POST", "/containers/create").body["HostConfig"]["DeviceRequests"]
    assert request["Count"] == -1 and request["Capabilities"] == [["gpu"]]
    assert request["Driver"] == ""
    engine.run(replace(SPEC, name="two", ports=(), gpu=GpuRequest("nvidia", 2)))
    (request,) = api.last("POST", "/containers/create").body["HostConfig"]["DeviceRequests"]
    assert request["Count"] == 2
    engine.run(replace(SPEC, name="amd", ports=(), gpu=GpuRequest("amd")))
    host = api.last("POST", "/containers/create").body["HostConfig"]
    assert [d["PathOnHost"] for d in host["Devices"]] == ["/dev/kfd", "/dev/dri"]
    assert all(d["CgroupPermissions"] == "rwm" for d in host["Devices"])
    assert host["GroupAdd"] == ["video"]


def test_a_confined_spec_sends_no_label_option(api: FakeEngineApi, engine: DockerEngine) -> None:
    engine.run(replace(SPEC, label_disable=False))
    assert api.last("POST", "/containers/create").body["HostConfig"]["SecurityOpt"] == [
        "no-new-privileges"
    ]


def test_list_filters_by_label_on_the_server(api: FakeEngineApi, engine: DockerEngine) -> None:
    ours = engine.run(SPEC)
    api.add_container("someone-else", IMAGE, labels={"io.llmdeploy.deployment": "other"})
    api.forget()

    found = engine.list({"io.llmdeploy.deployment": "x", "io.llmdeploy.managed": ""})

    assert [info.id for info in found] == [ours.id]
    listing = api.requests[0]
    assert (listing.method, listing.path) == ("GET", "/containers/json")
    assert listing.query["all"] in ("1", "true")
    assert listing.json_query("filters") == {
        "label": ["io.llmdeploy.deployment=x", "io.llmdeploy.managed"]
    }


def test_stop_and_remove_send_the_timeout_and_force(
    api: FakeEngineApi, engine: DockerEngine
) -> None:
    cid = engine.run(SPEC).id
    api.forget()
    engine.stop(cid, timeout_s=7)
    engine.remove(cid)
    assert api.last("POST", f"/containers/{cid}/stop").query == {"t": "7"}
    assert api.last("DELETE", f"/containers/{cid}").query["force"] == "1"
    assert engine.inspect(cid) is None


def test_a_missing_container_is_none_and_stop_or_remove_of_it_is_quiet(
    api: FakeEngineApi, engine: DockerEngine
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
    api: FakeEngineApi, engine: DockerEngine
) -> None:
    cid = engine.run(SPEC).id
    assert list(engine.logs(cid)) == ["hello", "err", "partial"]
    assert list(engine.logs(cid, tail=2)) == ["err", "partial"]
    query = api.last("GET", f"/containers/{cid}/logs").query
    assert query["tail"] == "2" and query["stdout"] == "1" and query["stderr"] == "1"
    assert query["follow"] == "0"


def test_image_exists_asks_for_the_image(api: FakeEngineApi, engine: DockerEngine) -> None:
    assert engine.image_exists(IMAGE) is True
    assert engine.image_exists("localhost/other:2") is False
    assert api.calls() == [
        ("GET", f"/images/{IMAGE}/json"),
        ("GET", "/images/localhost/other:2/json"),
    ]


def test_pull_sends_repository_and_tag_then_checks_the_image(
    api: FakeEngineApi, engine: DockerEngine
) -> None:
    api.pullable.add("localhost/new:3")
    engine.pull("localhost/new:3")
    pull = api.last("POST", "/images/create")
    assert pull.query["fromImage"] == "localhost/new" and pull.query["tag"] == "3"
    assert api.calls()[-1] == ("GET", "/images/localhost/new:3/json")


def _context(tmp_path: Path) -> BuildRequest:
    (tmp_path / "Containerfile").write_text("FROM localhost/base:1\nLABEL a=b\n")
    return BuildRequest(
        context_dir=str(tmp_path),
        containerfile="Containerfile",
        tag="localhost/built:1",
        build_args={"VERSION": "1"},
        labels={"io.llmdeploy.managed": "true"},
    )


def test_build_sends_the_context_as_a_tar_with_tag_args_and_labels(
    api: FakeEngineApi, engine: DockerEngine, tmp_path: Path
) -> None:
    lines = engine.build(_context(tmp_path))
    build = api.last("POST", "/build")
    assert build.query["t"] == "localhost/built:1"
    assert build.query["dockerfile"] == "Containerfile"
    assert build.json_query("buildargs") == {"VERSION": "1"}
    assert build.json_query("labels") == {"io.llmdeploy.managed": "true"}
    assert build.query["rm"] in ("1", "True") and build.query["forcerm"] in ("1", "True")
    with tarfile.open(fileobj=io.BytesIO(build.body)) as tar:
        assert "Containerfile" in tar.getnames()
    assert "Successfully tagged localhost/built:1" in lines
    assert engine.image_exists("localhost/built:1")
