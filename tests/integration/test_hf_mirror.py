"""hf:// through the real huggingface_hub code path, against a local Hub mirror (HF_ENDPOINT).

The server below answers the requests huggingface_hub makes, the way the Hub does:

- ``GET /api/models/{repo}[/revision/{rev}]`` (``model_info``; ``?blobs=true`` adds sizes and LFS
  sha256s to ``siblings``);
- ``GET /api/models/{repo}/tree/{rev}?recursive=...`` (``list_repo_tree``, used by
  ``snapshot_download``);
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag`` (git blob sha1,
  or the sha256 for LFS files), ``X-Linked-Etag``/``X-Linked-Size`` for LFS files,
  ``Content-Length``, ``Accept-Ranges`` and ``Range`` support;
- errors with ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) and 401 for a
  private repository without the right ``Authorization: Bearer`` token.

Its repositories hold a synthetic GGUF written with ``gguf.GGUFWriter`` (real metadata keys)
at two commits (branch ``main`` and tag ``v1``), and a small Hugging Face folder (config.json,
tokenizer files, a hand-written safetensors file). Nothing here reaches the real Hub.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from llmdeploy.errors import ModelError
from llmdeploy.models.inspect import inspect_path
from llmdeploy.models.store import MANIFEST, ModelStore
from split_gguf import TENSOR_ELEMENTS, write_split

gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")
pytest.importorskip("huggingface_hub")

TOKEN = "hf_llmdeploy_test_secret_0123456789"
GGUF_REPO = "llmdeploy-test/tiny-gguf"
HF_REPO = "llmdeploy-test/tiny-hf"
PRIVATE_REPO = "llmdeploy-test/private-gguf"
GGUF_FILE = "tiny-llama.F16.gguf"
COMMIT_V1 = "1" * 40
COMMIT_V2 = "2" * 40
COMMIT_HF = "a" * 40
COMMIT_PRIVATE = "b" * 40


# --- repository content -----------------------------------------------------------------


def tiny_gguf(path: Path, *, name: str, context: int) -> Path:
    """A 2-layer llama-architecture GGUF with real metadata keys (F16 weights, F32 norms)."""
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name(name)
    writer.add_block_count(2)
    writer.add_context_length(context)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_vocab_size(32)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tensor("token_embd.weight", np.zeros((32, 64), dtype=np.float16))
    for block in range(2):
        for part, shape in (("attn_q", (64, 64)), ("attn_k", (32, 64)), ("attn_v", (32, 64)),
                            ("attn_output", (64, 64)), ("ffn_up", (128, 64)),
                            ("ffn_gate", (128, 64)), ("ffn_down", (64, 128))):
            writer.add_tensor(f"blk.{block}.{part}.weight", np.full(shape, block, dtype=np.float16))
        writer.add_tensor(f"blk.{block}.attn_norm.weight", np.ones(64, dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


TINY_GGUF_PARAMS = 32 * 64 + 2 * (64 * 64 * 2 + 32 * 64 * 2 + 128 * 64 * 3 + 64) + 64


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    """A valid safetensors file of zeros: 8-byte header length, JSON header, data."""
    sizes = {"BF16": 2, "F16": 2, "F32": 4}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for dim in shape:
            n *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


HF_TENSORS = {
    "model.embed_tokens.weight": ("BF16", [100, 32]),
    "model.layers.0.self_attn.q_proj.weight": ("BF16", [32, 32]),
    "model.layers.0.self_attn.k_proj.weight": ("BF16", [16, 32]),
    "model.norm.weight": ("F32", [32]),
}
HF_PARAMS = 100 * 32 + 32 * 32 + 16 * 32 + 32


def hf_folder_files() -> dict[str, bytes]:
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_size": 32,
        "max_position_embeddings": 512,
        "vocab_size": 100,
        "torch_dtype": "bfloat16",
    }
    return {
        "config.json": json.dumps(config).encode(),
        "generation_config.json": b'{"do_sample": false}',
        "tokenizer.json": b'{"version": "1.0", "model": {"type": "BPE"}}',
        "tokenizer_config.json": json.dumps({"chat_template": "{{ messages }}"}).encode(),
        "model.safetensors": safetensors_bytes(HF_TENSORS),
        "README.md": b"# tiny\n",
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "original/consolidated.safetensors": safetensors_bytes(HF_TENSORS),
        "onnx/model.onnx": b"not wanted",
    }


# --- the mirror ---------------------------------------------------------------------------


def _is_lfs(path: str) -> bool:
    return path.endswith((".gguf", ".safetensors", ".onnx"))


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]]  # commit -> path -> content
    refs: dict[str, str]  # branch/tag -> commit
    token: str | None = None  # private: this Bearer token is required
    corrupt: set[str] = field(default_factory=set)  # served with flipped bytes

    def resolve(self, rev: str) -> str | None:
        return rev if rev in self.commits else self.refs.get(rev)


@dataclass
class Mirror:
    url: str
    repos: dict[str, Repo]
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def paths(self) -> list[str]:
        return [f"{r['method']} {r['path']}" for r in self.requests]


def _handler(mirror: Mirror) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._route(send_body=False)

        def do_GET(self) -> None:
            self._route(send_body=True)

        # routing ------------------------------------------------------------------------
        def _route(self, send_body: bool) -> None:
            split = urlsplit(self.path)
            mirror.requests.append(
                {
                    "method": self.command,
                    "path": split.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
            )
            parts = [unquote(p) for p in split.path.strip("/").split("/")]
            query = parse_qs(split.query)
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                repo_id = "/".join(parts[2:4])
                rest = parts[4:]
                if not rest:
                    return self._model_info(repo_id, "main", query)
                if rest[0] == "revision" and len(rest) == 2:
                    return self._model_info(repo_id, rest[1], query)
                if rest[0] == "tree" and len(rest) >= 2:
                    return self._tree(repo_id, rest[1])
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]), send_body)
            self._error(404, "RepoNotFound", "not found")

        def _repo_at(self, repo_id: str, rev: str) -> tuple[Repo, str] | None:
            repo = mirror.repos.get(repo_id)
            if repo is None or (
                repo.token and self.headers.get("Authorization") != f"Bearer {repo.token}"
            ):
                self._error(401, "RepoNotFound", "Repository not found")
                return None
            commit = repo.resolve(rev)
            if commit is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                return None
            return repo, commit

        # answers ------------------------------------------------------------------------
        def _model_info(self, repo_id: str, rev: str, query: dict[str, list[str]]) -> None:
            found = self._repo_at(repo_id, rev)
            if found is None:
                return
            repo, commit = found
            blobs = query.get("blobs") == ["true"]
            siblings = []
            for path, data in sorted(repo.commits[commit].items()):
                sibling: dict[str, Any] = {"rfilename": path}
                if blobs:
                    sibling.update(size=len(data), blobId=_git_blob_sha1(data))
                    if _is_lfs(path):
                        sibling["lfs"] = {
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "size": len(data),
                            "pointerSize": 134,
                        }
                siblings.append(sibling)
            body = {
                "_id": "0" * 24,
                "id": repo_id,
                "modelId": repo_id,
                "sha": commit,
                "private": repo.token is not None,
                "gated": False,
                "disabled": False,
                "tags": ["gguf"],
                "siblings": siblings,
                "lastModified": "2025-01-01T00:00:00.000Z",
            }
            self._json(body)

        def _tree(self, repo_id: str, rev: str) -> None:
            found = self._repo_at(repo_id, rev)
            if found is None:
                return
            repo, commit = found
            entries: list[dict[str, Any]] = []
            folders = sorted({p.rsplit("/", 1)[0] for p in repo.commits[commit] if "/" in p})
            for folder in folders:
                entries.append({"type": "directory", "oid": "f" * 40, "size": 0, "path": folder})
            for path, data in sorted(repo.commits[commit].items()):
                item: dict[str, Any] = {
                    "type": "file",
                    "oid": _git_blob_sha1(data),
                    "size": len(data),
                    "path": path,
                }
                if _is_lfs(path):
                    item["lfs"] = {
                        "oid": hashlib.sha256(data).hexdigest(),
                        "size": len(data),
                        "pointerSize": 134,
                    }
                entries.append(item)
            self._json(entries)

        def _resolve(self, repo_id: str, rev: str, path: str, send_body: bool) -> None:
            found = self._repo_at(repo_id, rev)
            if found is None:
                return
            repo, commit = found
            data = repo.commits[commit].get(path)
            if data is None:
                self._error(404, "EntryNotFound", f"{path} does not exist on {rev}", commit)
                return
            etag = hashlib.sha256(data).hexdigest() if _is_lfs(path) else _git_blob_sha1(data)
            start = 0
            status = 200
            rng = self.headers.get("Range")
            if send_body and rng and rng.startswith("bytes="):
                start = int(rng[len("bytes="):].split("-")[0])
                status = 206
            if path in repo.corrupt:
                data = bytes(b ^ 0xFF for b in data)  # same size, other content
            body = data[start:]
            self.send_response(status)
            self.send_header("X-Repo-Commit", commit)
            self.send_header("ETag", f'"{etag}"')
            if _is_lfs(path):
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def _json(self, data: Any) -> None:
            raw = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(raw)

        def _error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
            raw = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            if commit:
                self.send_header("X-Repo-Commit", commit)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(raw)

    return Handler


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    base = tmp_path_factory.mktemp("hub-content")
    return {
        "v1": tiny_gguf(base / "v1.gguf", name="tiny v1", context=128).read_bytes(),
        "v2": tiny_gguf(base / "v2.gguf", name="tiny v2", context=256).read_bytes(),
    }


@pytest.fixture
def mirror(content: dict[str, bytes], monkeypatch: pytest.MonkeyPatch,
           tmp_path: Path) -> Iterator[Mirror]:
    readme = b"# tiny gguf\n"
    repos = {
        GGUF_REPO: Repo(
            commits={
                COMMIT_V1: {GGUF_FILE: content["v1"], "README.md": readme},
                COMMIT_V2: {GGUF_FILE: content["v2"], "README.md": readme, "other.Q8_0.gguf": b"x"},
            },
            refs={"main": COMMIT_V2, "v1": COMMIT_V1},
        ),
        HF_REPO: Repo(commits={COMMIT_HF: hf_folder_files()}, refs={"main": COMMIT_HF}),
        PRIVATE_REPO: Repo(
            commits={COMMIT_PRIVATE: {GGUF_FILE: content["v2"]}},
            refs={"main": COMMIT_PRIVATE},
            token=TOKEN,
        ),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    result = Mirror(url=f"http://127.0.0.1:{server.server_address[1]}", repos=repos, server=server)
    server.RequestHandlerClass = _handler(result)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", result.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # never the user's HF cache
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield result
    result.stop()
    thread.join(timeout=5)


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "store")


class Recorder:
    def __init__(self) -> None:
        self.total: int | None = None
        self.advanced = 0
        self.finished = False

    def start(self, total_bytes: int | None, description: str) -> None:
        self.total = total_bytes

    def advance(self, n: int) -> None:
        self.advanced += n

    def finish(self) -> None:
        self.finished = True


# --- tests -------------------------------------------------------------------------------


def test_single_file_pull_then_reuse_without_network(
    mirror: Mirror, store: ModelStore, content: dict[str, bytes]
) -> None:
    ref = f"hf://{GGUF_REPO}/{GGUF_FILE}"
    progress = Recorder()
    stored = store.ensure(ref, progress=progress)
    assert not stored.reused
    assert stored.filename == GGUF_FILE
    assert stored.path.read_bytes() == content["v2"]  # main is the second commit
    assert stored.revision == COMMIT_V2
    assert stored.sha256 == hashlib.sha256(content["v2"]).hexdigest()
    # a real directory the engine can bind-mount: the file itself, no symlink into a cache
    assert stored.path.is_file() and not stored.path.is_symlink()
    assert progress.total == len(content["v2"]) and progress.advanced == len(content["v2"])
    assert progress.finished
    manifest = json.loads((stored.directory / MANIFEST).read_text())
    assert manifest["commit"] == COMMIT_V2 and manifest["revision"] == "main"
    assert manifest["files"] == {
        GGUF_FILE: {"size": len(content["v2"]), "sha256": stored.sha256}
    }
    # only the requested file was fetched, not the rest of the repository
    assert not (stored.directory / "README.md").exists()
    assert any(p.startswith("HEAD /" + GGUF_REPO + "/resolve/" + COMMIT_V2) for p in mirror.paths())

    mirror.stop()  # the second call must not need the network at all
    again = store.ensure(ref)
    assert again.reused and again.path == stored.path and again.revision == COMMIT_V2
    assert store.locate(ref) == (stored.directory, GGUF_FILE)


def test_revision_pinning_fetches_that_commit(
    mirror: Mirror, store: ModelStore, content: dict[str, bytes]
) -> None:
    pinned = store.ensure(f"hf://{GGUF_REPO}@v1/{GGUF_FILE}")
    latest = store.ensure(f"hf://{GGUF_REPO}/{GGUF_FILE}")
    assert pinned.revision == COMMIT_V1 and latest.revision == COMMIT_V2
    assert pinned.directory != latest.directory
    assert pinned.path.read_bytes() == content["v1"]
    assert inspect_path(pinned.path).context_length == 128
    assert inspect_path(latest.path).context_length == 256
    # a commit sha works as the revision too
    by_commit = store.ensure(f"hf://{GGUF_REPO}@{COMMIT_V1}/{GGUF_FILE}")
    assert by_commit.revision == COMMIT_V1 and by_commit.path.read_bytes() == content["v1"]


def test_refresh_follows_a_moved_branch_and_plain_ensure_does_not(
    mirror: Mirror, store: ModelStore, content: dict[str, bytes]
) -> None:
    ref = f"hf://{GGUF_REPO}/{GGUF_FILE}"
    assert store.ensure(ref).revision == COMMIT_V2
    mirror.repos[GGUF_REPO].refs["main"] = COMMIT_V1  # upstream moves main
    assert store.ensure(ref).revision == COMMIT_V2  # the stored copy, no network
    refreshed = store.ensure(ref, refresh=True)
    assert not refreshed.reused and refreshed.revision == COMMIT_V1
    assert refreshed.path.read_bytes() == content["v1"]


@pytest.fixture(scope="module")
def split_parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A real 3-part split GGUF (gguf-split naming and split.* keys) under ``big/``."""
    made = write_split(tmp_path_factory.mktemp("split") / "model.gguf", 3)
    return {f"big/{p.name}": p.read_bytes() for p in made}


SPLIT_FIRST = "big/model-00001-of-00003.gguf"


def test_a_split_gguf_brings_all_its_parts(
    mirror: Mirror, store: ModelStore, split_parts: dict[str, bytes]
) -> None:
    mirror.repos[GGUF_REPO].commits[COMMIT_V2].update(split_parts)
    stored = store.ensure(f"hf://{GGUF_REPO}/{SPLIT_FIRST}")
    assert stored.filename == SPLIT_FIRST and stored.files == tuple(sorted(split_parts))
    for name, data in split_parts.items():
        assert (stored.directory / name).read_bytes() == data
    assert stored.size_bytes == sum(len(d) for d in split_parts.values())
    manifest = json.loads((stored.directory / MANIFEST).read_text())
    assert manifest["files"] == {  # every part, each with the Hub's (LFS) sha256
        name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in split_parts.items()
    }
    assert manifest["commit"] == COMMIT_V2  # all parts from the same commit
    resolved = [p for p in mirror.paths() if "/resolve/" in p and p.startswith("GET")]
    assert resolved and all(f"/resolve/{COMMIT_V2}/big/" in p for p in resolved)
    info = inspect_path(stored.path)
    assert info.parameters == 5 * TENSOR_ELEMENTS and len(info.file_sizes) == 3

    mirror.stop()  # reuse checks every part, without the network
    assert store.ensure(f"hf://{GGUF_REPO}/{SPLIT_FIRST}").reused
    (stored.directory / "big/model-00003-of-00003.gguf").unlink()
    assert store.stored(f"hf://{GGUF_REPO}/{SPLIT_FIRST}") is None  # incomplete: not reused


def test_a_split_gguf_with_a_missing_part_is_refused_before_downloading(
    mirror: Mirror, store: ModelStore, split_parts: dict[str, bytes]
) -> None:
    partial = {k: v for k, v in split_parts.items() if "00002-of" not in k}
    mirror.repos[GGUF_REPO].commits[COMMIT_V2].update(partial)
    with pytest.raises(ModelError, match="big/model-00002-of-00003.gguf") as info:
        store.ensure(f"hf://{GGUF_REPO}/{SPLIT_FIRST}")
    assert "lacks 1 of them" in info.value.message
    assert not any("/resolve/" in p for p in mirror.paths())  # nothing was downloaded
    count = len(mirror.requests)
    with pytest.raises(ModelError, match="part 2 of 3") as second:
        store.ensure(f"hf://{GGUF_REPO}/big/model-00002-of-00003.gguf")
    assert SPLIT_FIRST.removeprefix("big/") in (second.value.hint or "")
    assert len(mirror.requests) == count  # refused before asking the Hub anything


def test_a_corrupted_download_fails_the_lfs_checksum(mirror: Mirror, store: ModelStore) -> None:
    mirror.repos[GGUF_REPO].corrupt.add(GGUF_FILE)
    with pytest.raises(ModelError, match="checksum mismatch"):
        store.ensure(f"hf://{GGUF_REPO}/{GGUF_FILE}")
    entry, filename = store.locate(f"hf://{GGUF_REPO}/{GGUF_FILE}")
    assert not (entry / filename).exists() and not (entry / MANIFEST).exists()
    mirror.repos[GGUF_REPO].corrupt.clear()
    assert store.ensure(f"hf://{GGUF_REPO}/{GGUF_FILE}").path.is_file()  # a retry works


def test_snapshot_pull_takes_top_level_weights_config_and_tokenizer(
    mirror: Mirror, store: ModelStore
) -> None:
    stored = store.ensure(f"hf://{HF_REPO}")
    assert stored.filename == "" and stored.path == stored.directory
    assert stored.revision == COMMIT_HF
    names = sorted(p.name for p in stored.directory.iterdir() if not p.name.startswith("."))
    assert names == [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    for path in stored.directory.iterdir():
        assert not path.is_symlink()
    manifest = json.loads((stored.directory / MANIFEST).read_text())
    files = hf_folder_files()
    assert manifest["files"]["model.safetensors"] == {
        "size": len(files["model.safetensors"]),
        "sha256": hashlib.sha256(files["model.safetensors"]).hexdigest(),  # the Hub's LFS oid
    }
    assert stored.size_bytes == sum(len(files[n]) for n in names)
    info = inspect_path(stored.path)
    assert (info.layers, info.attention_heads, info.kv_heads, info.head_dim) == (1, 4, 2, 8)
    assert info.parameters == HF_PARAMS and info.quantization == "BF16"
    assert info.has_chat_template is True

    mirror.stop()
    assert store.ensure(f"hf://{HF_REPO}").reused


def test_offline_uses_the_store_and_fails_clearly_without_it(
    mirror: Mirror, store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = f"hf://{GGUF_REPO}/{GGUF_FILE}"
    stored = store.ensure(ref)
    count = len(mirror.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert store.ensure(ref).reused
    refreshed = store.ensure(ref, refresh=True)  # offline: no check possible, say so
    assert refreshed.path == stored.path and any("HF_HUB_OFFLINE" in n for n in refreshed.notes)
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE") as info:
        store.ensure(f"hf://{HF_REPO}")
    assert "pull it" in (info.value.hint or "")
    assert len(mirror.requests) == count  # offline means no request at all
    assert [e.ref for e in store.list()] == [ref]  # and no half-made entry


def test_token_is_sent_as_a_header_and_never_written(
    mirror: Mirror, store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = f"hf://{PRIVATE_REPO}/{GGUF_FILE}"
    with pytest.raises(ModelError, match="not found, or private") as denied:
        store.ensure(ref)
    assert "HF_TOKEN" in (denied.value.hint or "")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    stored = store.ensure(ref)
    assert stored.revision == COMMIT_PRIVATE
    auth = [r["headers"].get("authorization") for r in mirror.requests]
    assert f"Bearer {TOKEN}" in auth
    for path in stored.directory.rglob("*"):
        if path.is_file() and path.stat().st_size < 1_000_000:
            assert TOKEN.encode() not in path.read_bytes(), path
    assert TOKEN not in repr(store.list())


def test_missing_file_revision_and_repository_are_model_errors(
    mirror: Mirror, store: ModelStore
) -> None:
    with pytest.raises(ModelError, match="has no file 'nope.gguf'") as info:
        store.ensure(f"hf://{GGUF_REPO}/nope.gguf")
    assert GGUF_FILE in (info.value.hint or "")  # lists the GGUF files it does have
    with pytest.raises(ModelError, match="revision 'v9' not found"):
        store.ensure(f"hf://{GGUF_REPO}@v9/{GGUF_FILE}")
    with pytest.raises(ModelError, match="no top-level .safetensors") as info:
        store.ensure(f"hf://{GGUF_REPO}")
    assert f"hf://{GGUF_REPO}/" in (info.value.hint or "")
    with pytest.raises(ModelError, match="not found"):
        store.ensure("hf://llmdeploy-test/does-not-exist/x.gguf")


def test_unreachable_endpoint_is_a_model_error(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ModelError, match="cannot reach"):
        store.ensure(f"hf://{GGUF_REPO}/{GGUF_FILE}")


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmdeploy", "models", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_pull_list_inspect_rm_through_the_mirror(mirror: Mirror, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LLMDEPLOY_MODEL_STORE": str(tmp_path / "cli-store"),
        "HF_TOKEN": TOKEN,
    }
    ref = f"hf://{GGUF_REPO}@v1/{GGUF_FILE}"
    pulled = _cli("pull", ref, "--json", env=env)
    assert pulled.returncode == 0, pulled.stderr
    data = json.loads(pulled.stdout)
    assert data["revision"] == COMMIT_V1 and data["reused"] is False
    assert TOKEN not in pulled.stdout + pulled.stderr

    listed = json.loads(_cli("list", "--json", env=env).stdout)
    assert [(e["ref"], e["commit"], e["complete"]) for e in listed] == [(ref, COMMIT_V1, True)]

    inspected = _cli("inspect", ref, "--json", env=env)
    assert inspected.returncode == 0, inspected.stderr
    info = json.loads(inspected.stdout)
    assert info["architecture"] == "llama" and info["context_length"] == 128
    assert info["parameters"] == TINY_GGUF_PARAMS and info["quantization"] == "F16"

    human = _cli("inspect", ref, env=env)
    assert "KV heads" in human.stdout and "F16" in human.stdout

    removed = _cli("rm", ref, "--json", env=env)
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["removed"] == [data["directory"]]
    assert json.loads(_cli("list", "--json", env=env).stdout) == []

    missing = _cli("inspect", ref, env=env)
    assert missing.returncode == 4 and "models pull" in missing.stderr
