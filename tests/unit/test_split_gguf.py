"""Split GGUF models (NAME-00001-of-0000N.gguf): the store holds every part, inspect and the
planner count every part, and backends that cannot load split files refuse them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from llmdeploy.core.gguf_split import parse_split_name, part_names, read_split_header
from llmdeploy.core.model_formats import split_backend_problem
from llmdeploy.errors import ModelError, ProfileError
from llmdeploy.models.inspect import inspect_cached, inspect_path
from llmdeploy.models.store import MANIFEST, ModelStore
from llmdeploy.planner.host import model_info_for_ref
from llmdeploy.planner.shape import weight_file_bytes
from llmdeploy.profiles.loader import resolve
from split_gguf import TENSOR_ELEMENTS, write_single, write_split

NAMES = [f"tiny-Q8_0-0000{i}-of-00003.gguf" for i in (1, 2, 3)]


@pytest.fixture
def parts(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "my models"  # a space in the folder name, as users have
    folder.mkdir()
    return write_split(folder / "tiny-Q8_0.gguf", 3)


def _ref(path: Path) -> str:
    return f"file://{path}"


# --- names and metadata -------------------------------------------------------------------


def test_part_names_follow_llama_cpp() -> None:
    split = parse_split_name("sub/Kimi-K2-Q2_K-00002-of-00005.gguf")
    assert split is not None and (split.prefix, split.index, split.count) == ("Kimi-K2-Q2_K", 2, 5)
    assert split.first == "Kimi-K2-Q2_K-00001-of-00005.gguf"
    assert part_names("sub/m-00001-of-00002.gguf") == [
        "sub/m-00001-of-00002.gguf", "sub/m-00002-of-00002.gguf"]
    assert part_names("m.gguf") == ["m.gguf"]
    assert parse_split_name("m-00001-of-00001.gguf") is None  # one part: a plain file
    assert parse_split_name("m-00004-of-00003.gguf") is None


def test_split_keys_are_read_without_the_gguf_package(parts: list[Path]) -> None:
    headers = [read_split_header(p) for p in parts]
    assert [h.split_no for h in headers] == [0, 1, 2]  # 0-based, the names are 1-based
    assert {h.split_count for h in headers} == {3}
    assert headers[0].split_tensors_count == sum(h.tensor_count for h in headers) == 5


# --- file:// into the store ---------------------------------------------------------------


@pytest.mark.parametrize("encode", [False, True], ids=["space", "percent-encoded"])
def test_every_part_is_placed_and_recorded(
    tmp_path: Path, parts: list[Path], encode: bool
) -> None:
    store = ModelStore(tmp_path / "store")
    ref = "file://" + (quote(str(parts[0])) if encode else str(parts[0]))
    stored = store.ensure(ref)
    assert stored.filename == NAMES[0] and stored.files == tuple(NAMES)
    assert sorted(p.name for p in stored.directory.iterdir() if p.suffix == ".gguf") == NAMES
    for part in parts:  # hard links: no copy, and the same bytes the source has
        assert (stored.directory / part.name).stat().st_ino == part.stat().st_ino
    assert stored.size_bytes == sum(p.stat().st_size for p in parts)
    manifest = json.loads((stored.directory / MANIFEST).read_text())
    assert manifest["filename"] == NAMES[0] and manifest["source"] == str(parts[0])
    assert sorted(manifest["files"]) == NAMES
    for part in parts:
        row = manifest["files"][part.name]
        assert (row["size"], row["mtime_ns"], row["inode"]) == (
            part.stat().st_size, part.stat().st_mtime_ns, part.stat().st_ino)
        assert len(row["sha256"]) == 64
    assert manifest["size_bytes"] == stored.size_bytes
    assert [e.complete for e in store.list()] == [True]

    info = inspect_path(stored.directory)  # what `models inspect ENTRY` and the server see
    assert info.parameters == 5 * TENSOR_ELEMENTS
    assert info.file_sizes == {p.name: p.stat().st_size for p in parts}


def test_a_missing_middle_part_is_refused_before_anything_is_written(
    tmp_path: Path, parts: list[Path]
) -> None:
    parts[1].unlink()
    store = ModelStore(tmp_path / "store")
    with pytest.raises(ModelError) as info:
        store.ensure(_ref(parts[0]))
    assert NAMES[1] in info.value.message and NAMES[2] not in info.value.message
    assert "1 of them are missing" in info.value.message
    assert not store.root.exists()


def test_a_reference_to_part_two_is_refused_naming_the_first(
    tmp_path: Path, parts: list[Path]
) -> None:
    store = ModelStore(tmp_path / "store")
    with pytest.raises(ModelError, match="part 2 of 3") as info:
        store.ensure(_ref(parts[1]))
    assert NAMES[0] in (info.value.hint or "")
    assert not store.root.exists()


def test_reuse_stats_every_part_and_reimports_only_changed_ones(
    tmp_path: Path, parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore(tmp_path / "store")
    first = store.ensure(_ref(parts[0]))
    hashed: list[str] = []

    def record(path: Path) -> str:
        hashed.append(path.name)
        return "0" * 64

    monkeypatch.setattr("llmdeploy.models.store.local.sha256_file", record)
    again = store.ensure(_ref(parts[0]))
    assert again.reused and hashed == [] and again.files == first.files

    os.utime(parts[2], ns=(1, 1))  # the last part changed after the import
    changed = store.ensure(_ref(parts[0]))
    assert not changed.reused and hashed == [NAMES[2]]  # only that part was placed again

    hashed.clear()  # part 2 replaced by a copy with the same size and mtime: a new inode
    copy = parts[1].with_name("copy.tmp")
    shutil.copyfile(parts[1], copy)
    os.utime(copy, ns=(parts[1].stat().st_atime_ns, parts[1].stat().st_mtime_ns))
    os.replace(copy, parts[1])
    assert not store.ensure(_ref(parts[0])).reused and hashed == [NAMES[1]]

    hashed.clear()  # a part gone from the entry is placed again
    (first.directory / NAMES[2]).unlink()
    assert not store.ensure(_ref(parts[0])).reused and hashed == [NAMES[2]]
    assert (first.directory / NAMES[2]).stat().st_ino == parts[2].stat().st_ino


def test_split_count_that_disagrees_with_the_names_is_refused(tmp_path: Path) -> None:
    made = write_split(tmp_path / "two.gguf", 2)  # split.count = 2 ...
    named = [tmp_path / f"m-0000{i}-of-00003.gguf" for i in (1, 2, 3)]  # ... named as 3 parts
    for source, target in zip([*made, made[1]], named, strict=True):
        shutil.copyfile(source, target)
    store = ModelStore(tmp_path / "store")
    with pytest.raises(ModelError, match=r"split.count = 2"):
        store.ensure(_ref(named[0]))
    assert not (store.root.exists() and any(store.root.iterdir()))


def test_mixed_up_parts_are_refused(tmp_path: Path, parts: list[Path]) -> None:
    os.replace(parts[1], tmp_path / "swap")
    os.replace(parts[2], parts[1])
    os.replace(tmp_path / "swap", parts[2])
    with pytest.raises(ModelError, match=r"split.no = 2"):
        ModelStore(tmp_path / "store").ensure(_ref(parts[0]))


def test_a_part_of_another_model_is_refused(tmp_path: Path, parts: list[Path]) -> None:
    (tmp_path / "other").mkdir()
    other = write_split(tmp_path / "other" / "tiny-Q8_0.gguf", 3, tensors=6)  # 2 + 2 + 2
    shutil.copyfile(other[2], parts[2])  # same name and split.no, one tensor more
    with pytest.raises(ModelError, match="hold 6 tensors together, but split.tensors.count says 5"):
        ModelStore(tmp_path / "store").ensure(_ref(parts[0]))


def test_a_renamed_first_part_is_refused(tmp_path: Path, parts: list[Path]) -> None:
    renamed = tmp_path / "merged-by-rename.gguf"
    shutil.copyfile(parts[0], renamed)
    with pytest.raises(ModelError, match="-00001-of-00003 ending") as info:
        ModelStore(tmp_path / "store").ensure(_ref(renamed))
    assert "llama-gguf-split --merge" in (info.value.hint or "")


def test_whole_files_named_like_parts_are_refused(tmp_path: Path) -> None:
    first = write_single(tmp_path / "z-00001-of-00002.gguf")
    shutil.copyfile(first, tmp_path / "z-00002-of-00002.gguf")
    with pytest.raises(ModelError, match="no split.count") as info:
        ModelStore(tmp_path / "store").ensure(_ref(first))
    assert "cat z-*-of-00002.gguf > z.gguf" in (info.value.hint or "")


def test_a_plain_gguf_is_still_one_file(tmp_path: Path) -> None:
    single = write_single(tmp_path / "m.gguf")
    stored = ModelStore(tmp_path / "store").ensure(_ref(single))
    assert stored.files == ("m.gguf",) and stored.filename == "m.gguf"


def test_removing_a_split_entry_keeps_every_source(tmp_path: Path, parts: list[Path]) -> None:
    store = ModelStore(tmp_path / "store")
    before = {p: p.read_bytes() for p in parts}
    stored = store.ensure(_ref(parts[0]))
    assert store.remove(_ref(parts[0])) == [stored.directory]
    assert not stored.directory.exists()
    assert {p: p.read_bytes() for p in parts} == before
    assert [p.name for p in store.root.iterdir() if not p.name.startswith(".")] == []


# --- inspect and the planner --------------------------------------------------------------


def test_inspect_any_part_reads_the_whole_model(parts: list[Path]) -> None:
    whole = inspect_path(parts[0])
    assert inspect_path(parts[2]) == whole
    assert whole.architecture == "llama" and whole.layers == 2
    assert whole.parameters == 5 * TENSOR_ELEMENTS
    assert whole.total_size_bytes == sum(p.stat().st_size for p in parts)
    parts[1].unlink()
    with pytest.raises(ModelError, match=NAMES[1]):
        inspect_path(parts[0])


def test_inspect_cache_lives_in_the_store_and_follows_every_part(
    parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = sorted(p.name for p in parts[0].parent.iterdir())
    calls: list[Path] = []
    real = inspect_path

    def counting(path: Path) -> object:
        calls.append(path)
        return real(path)

    monkeypatch.setattr("llmdeploy.models.inspect.inspect_path", counting)
    first = inspect_cached(parts[0])
    assert inspect_cached(parts[0]) == first and len(calls) == 1
    assert sorted(p.name for p in parts[0].parent.iterdir()) == listing  # nothing written there
    os.utime(parts[2], ns=(5, 5))  # a later part changed: asked again
    assert inspect_cached(parts[0]) == first and len(calls) == 2


def test_the_planner_sizes_weights_from_every_part(parts: list[Path]) -> None:
    info, why = model_info_for_ref(_ref(parts[0]))
    assert "inspected" in why
    assert weight_file_bytes(info.file_sizes) == sum(p.stat().st_size for p in parts)
    assert info.parameters == 5 * TENSOR_ELEMENTS


# --- backends that cannot load split files ------------------------------------------------

SPLIT_REF = "hf://org/Kimi-K2-GGUF/Q2_K/Kimi-K2-Q2_K-00001-of-00005.gguf"


def test_split_backend_problem() -> None:
    ollama = split_backend_problem("ollama", SPLIT_REF)
    assert ollama is not None and "ollama/ollama#5245" in ollama
    assert "llama-gguf-split --merge Kimi-K2-Q2_K-00001-of-00005.gguf Kimi-K2-Q2_K.gguf" in ollama
    converted = split_backend_problem("vllm", SPLIT_REF, convert="hf")
    assert converted is not None and "model.convert: hf" in converted
    assert split_backend_problem("llamacpp", SPLIT_REF) is None
    assert split_backend_problem("ollama", "hf://org/repo/m.Q4_K_M.gguf") is None
    second = split_backend_problem("llamacpp", SPLIT_REF.replace("00001-of", "00002-of"))
    assert second is not None and "Kimi-K2-Q2_K-00001-of-00005.gguf" in second


PROFILE = """
name: split
engine: podman
backend: {kind: KIND}
model: {ref: "REF"CONVERT}
image: localhost/x:1
"""


@pytest.mark.parametrize(
    ("kind", "convert", "refused"),
    [("ollama", "", True), ("vllm", ", convert: hf", True), ("llamacpp", "", False)],
)
def test_profiles_refuse_split_models_where_the_backend_cannot_load_them(
    tmp_path: Path, kind: str, convert: str, refused: bool
) -> None:
    text = PROFILE.replace("KIND", kind).replace("CONVERT", convert)
    path = tmp_path / "p.yaml"
    path.write_text(text.replace("REF", "file:///m/x-00001-of-00002.gguf"))
    if not refused:
        assert resolve(profile_file=path, cwd=tmp_path, env={}).profile.backend.kind == kind
        return
    with pytest.raises(ProfileError, match="llama-gguf-split --merge"):
        resolve(profile_file=path, cwd=tmp_path, env={})


# --- https:// siblings through a local server ---------------------------------------------


@dataclass
class Site:
    """A static file server on 127.0.0.1: ``files`` by URL path; honours ``Range``; can cut
    the body of ``drop_path`` after ``drop_after`` bytes ``drops`` times (probes excepted)."""

    files: dict[str, bytes]
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)
    drop_path: str = ""
    drops: int = 0
    drop_after: int = 0
    base: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                requested = self.headers.get("Range")
                site.requests.append((path, requested))
                data = site.files.get(path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start, end = 0, len(data) - 1
                if requested:
                    first, _, last = requested.removeprefix("bytes=").partition("-")
                    start, end = int(first), int(last) if last else len(data) - 1
                body = data[start : end + 1]
                self.send_response(206 if requested else 200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", '"v1"')
                if requested:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if path == site.drop_path and site.drops > 0 and requested != "bytes=0-0":
                    site.drops -= 1
                    self.wfile.write(body[: site.drop_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        return Handler

    def downloads(self) -> list[str]:
        """Paths fetched in full or resumed (not the one-byte probes)."""
        return [p for p, r in self.requests if r != "bytes=0-0"]


@pytest.fixture
def site(parts: list[Path]) -> Iterator[Site]:
    state = Site(files={f"/dl/my%20models/{p.name}": p.read_bytes() for p in parts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), state.handler())
    state.base = f"http://127.0.0.1:{server.server_address[1]}/dl/my%20models"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class _Relay(httpx.SyncByteStream):
    """The body of an upstream response, passed on as it arrives (a cut stays a cut)."""

    def __init__(self, client: httpx.Client, response: httpx.Response) -> None:
        self._client, self._response = client, response

    def __iter__(self) -> Iterator[bytes]:
        yield from self._response.iter_raw()

    def close(self) -> None:
        self._response.close()
        self._client.close()


def _https_store(tmp_path: Path) -> ModelStore:
    """A store whose https:// requests go to the local http:// server (the store's seam)."""

    def relay(request: httpx.Request) -> httpx.Response:
        client = httpx.Client()
        upstream = client.send(
            client.build_request(request.method, request.url.copy_with(scheme="http"),
                                 headers=request.headers),
            stream=True,
        )
        return httpx.Response(upstream.status_code, headers=upstream.headers,
                              stream=_Relay(client, upstream))

    return ModelStore(tmp_path / "store", http_client=httpx.Client(
        transport=httpx.MockTransport(relay)))


def _https(site: Site, name: str, sha: str | None = None) -> str:
    return site.base.replace("http://", "https://") + f"/{name}" + (f"#sha256={sha}" if sha else "")


def test_https_first_part_brings_its_siblings(
    tmp_path: Path, parts: list[Path], site: Site
) -> None:
    sha1 = hashlib.sha256(parts[0].read_bytes()).hexdigest()
    store = _https_store(tmp_path)
    stored = store.ensure(_https(site, NAMES[0], sha1) + "")
    assert stored.files == tuple(NAMES) and stored.filename == NAMES[0]
    for part in parts:
        assert (stored.directory / part.name).read_bytes() == part.read_bytes()
    # every sibling was checked before the first byte of the model was downloaded
    probes = [p for p, r in site.requests if r == "bytes=0-0"]
    assert probes == [f"/dl/my%20models/{n}" for n in NAMES[1:]]
    assert site.requests.index((probes[-1], "bytes=0-0")) < site.requests.index(
        (f"/dl/my%20models/{NAMES[0]}", None))
    manifest = json.loads((stored.directory / MANIFEST).read_text())
    assert sorted(manifest["files"]) == NAMES and manifest["verified_files"] == [NAMES[0]]
    assert manifest["urls"][NAMES[2]].endswith(f"/dl/my%20models/{NAMES[2]}")
    assert manifest["files"][NAMES[1]]["sha256"] == hashlib.sha256(parts[1].read_bytes()).hexdigest()
    assert len(stored.notes) == 1 and "pins only the first part" in stored.notes[0]
    assert inspect_path(stored.path).parameters == 5 * TENSOR_ELEMENTS

    count = len(site.requests)
    assert store.ensure(_https(site, NAMES[0], sha1)).reused and len(site.requests) == count


def test_https_missing_sibling_is_refused_before_downloading(
    tmp_path: Path, site: Site
) -> None:
    del site.files[f"/dl/my%20models/{NAMES[1]}"]
    with pytest.raises(ModelError) as info:
        _https_store(tmp_path).ensure(_https(site, NAMES[0]))
    assert f"/dl/my%20models/{NAMES[1]}" in info.value.message
    assert NAMES[2] not in info.value.message and site.downloads() == []


def test_https_interrupted_split_resumes_without_fetching_finished_parts(
    tmp_path: Path, parts: list[Path], site: Site
) -> None:
    last = f"/dl/my%20models/{NAMES[2]}"
    site.drop_path, site.drops, site.drop_after = last, 3, 100  # more than one run's retries
    store = _https_store(tmp_path)
    with pytest.raises(ModelError, match="interrupted"):
        store.ensure(_https(site, NAMES[0]))
    assert [e.complete for e in store.list()] == [False]
    site.requests.clear()
    stored = store.ensure(_https(site, NAMES[0]))
    assert site.downloads() == [last]  # parts 1 and 2 were not fetched again
    assert [r for p, r in site.requests if p == last and r != "bytes=0-0"] == ["bytes=300-"]
    assert (stored.directory / NAMES[2]).read_bytes() == parts[2].read_bytes()


def test_cli_pull_shows_every_part_and_rm_keeps_the_sources(
    tmp_path: Path, parts: list[Path]
) -> None:
    env = {**os.environ, "LLMDEPLOY_MODEL_STORE": str(tmp_path / "cli-store")}

    def models(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "llmdeploy", "models", *args],
                              capture_output=True, text=True, env=env, timeout=120)

    pulled = models("pull", _ref(parts[0]))
    assert pulled.returncode == 0, pulled.stderr
    assert "3 parts" in pulled.stdout
    data = json.loads(models("pull", _ref(parts[0]), "--json").stdout)
    assert data["files"] == NAMES and data["reused"] is True
    shown = json.loads(models("inspect", data["directory"], "--json").stdout)
    assert shown["total_size_bytes"] == sum(p.stat().st_size for p in parts)
    second = models("pull", _ref(parts[1]))  # part 2 named: refused, naming part 1
    assert second.returncode == 4 and NAMES[0] in second.stderr
    assert "Traceback" not in second.stderr
    removed = models("rm", _ref(parts[0]))
    assert removed.returncode == 0 and all(p.is_file() for p in parts)
    foreign = Path(tmp_path / "cli-store" / "not-ours")
    foreign.mkdir()
    refused = models("rm", "not-ours")
    assert refused.returncode == 4 and "left alone" in refused.stderr and foreign.is_dir()


def test_the_planner_counts_every_part_even_when_metadata_cannot_be_read(
    parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(path: Path) -> object:
        raise ModelError("reading GGUF metadata needs the gguf package")

    monkeypatch.setattr("llmdeploy.models.inspect.inspect_cached", unreadable)
    info, why = model_info_for_ref(_ref(parts[0]))
    assert "metadata unreadable" in why
    assert weight_file_bytes(info.file_sizes) == sum(p.stat().st_size for p in parts)
