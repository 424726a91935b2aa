"""Header-only reads: the GGUF header parser, Range reads against a local server (with and
without Range support), hf:// through a fake Hub (HF_ENDPOINT), ollama:// through a fake
registry, and clear errors for truncated, foreign or damaged files."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.errors import ModelError
from llmdeploy.models.inspect import inspect_path
from llmdeploy.models.inspect.gguf import info_from_metadata
from llmdeploy.models.inspect.gguf_header import (
    _SCALARS,
    ARRAY,
    STRING,
    GgufHeader,
    LongArray,
    parse_header,
)
from llmdeploy.models.inspect.hf import header_from_reader
from llmdeploy.models.inspect.ranged import FIRST_BYTES, ReadStats, RemotePrefix, get_json
from llmdeploy.models.inspect.remote import ModelFacts, model_facts
from llmdeploy.models.sources.hf import HubSettings
from model_headers import LlamaShape, gguf_file, hf_repo, safetensors_file
from range_http import FileServer, Sparse, serve
from split_gguf import TENSOR_ELEMENTS, write_split

gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")

COMMIT = "c" * 40
SHAPE = LlamaShape(layers=4, heads=8, kv_heads=2, hidden=256, ffn=512, vocab=20_000, context=8192)


def header_info(header: GgufHeader, sizes: dict[str, int]) -> ModelInfo:
    return info_from_metadata(
        header.get,
        counts=header.tensor_counts(),
        file_sizes=sizes,
        vocab_tokens=header.array_length("tokenizer.ggml.tokens"),
        has_chat_template="tokenizer.chat_template" in header.fields,
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Sparse:
    """A Q4_K_M llama GGUF: its real header (a 20,000-token vocabulary) and 1.5 MiB of weights."""
    return gguf_file(tmp_path_factory.mktemp("gguf") / "m.gguf", SHAPE)


@pytest.fixture
def plain_https(monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    """A client that sends https:// requests to the local plain-HTTP server (the test seam for
    https:// references: same sockets and headers, no TLS)."""

    class Plain(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            request.url = request.url.copy_with(scheme="http")
            return self.inner.handle_request(request)

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with httpx.Client(transport=Plain(), follow_redirects=True) as client:
        yield client


# --- the GGUF header parser ----------------------------------------------------------------


def test_value_types_are_ggufs_own() -> None:
    types = {t.value: t.name for t in gguf.GGUFValueType}
    assert {STRING: "STRING", ARRAY: "ARRAY"}.items() <= types.items()
    assert sorted([*_SCALARS, STRING, ARRAY]) == sorted(types)
    for value, (fmt, size) in _SCALARS.items():
        assert struct.calcsize("<" + fmt) == size, types[value]


@pytest.mark.parametrize("big_endian", [False, True])
def test_the_header_alone_gives_what_gguf_reader_gives(tmp_path: Path, big_endian: bool) -> None:
    """A complete small file: the header parser and ``inspect_path`` (GGUFReader) agree."""
    path = tmp_path / "full.gguf"
    writer = gguf.GGUFWriter(
        str(path), "llama", endianess=gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    )
    writer.add_name("full")
    writer.add_block_count(2)
    writer.add_context_length(2048)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv([2, 1])  # per-layer KV heads: an array value
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_token_list([f"t{i}" for i in range(5000)])  # longer than what is kept
    for block in range(2):
        writer.add_tensor(f"blk.{block}.attn_k.weight", np.ones((32, 64), dtype=np.float16))
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    data = path.read_bytes()
    header = parse_header(lambda n: data, str(path))
    assert header.get("llama.attention.head_count_kv") == [2, 1]
    assert header.get("tokenizer.ggml.tokens") == LongArray(STRING, 5000)
    assert header.header_bytes < len(data)
    assert header.tensor_counts() == {"F16": 2 * 32 * 64, "F32": 64}
    assert header_info(header, {"full.gguf": len(data)}) == inspect_path(path)


def test_a_real_tokenizer_header_is_parsed_and_agrees(model: Sparse, tmp_path: Path) -> None:
    header = parse_header(lambda n: model.head, "m.gguf")
    info = header_info(header, {"m.gguf": model.size})
    assert header.header_bytes == len(model.head)
    assert info.parameters == SHAPE.parameters
    assert (info.layers, info.kv_heads, info.head_dim) == (4, 2, 32)
    assert info.context_length == 8192 and info.vocab_size == 20_000
    assert info.quantization == "Q4_K_M" and info.has_chat_template
    assert info.attention is not None and info.attention.summary() == "4 x full, 2x32"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<html>not found</html>", "not a GGUF file"),
        (b"GGUF" + struct.pack("<I", 1) + bytes(16), "GGUF version 1 is not supported"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**40), "a string of"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"k"
         + struct.pack("<I", 42), "unknown value type 42"),
        (b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", 1) + b"t"
         + struct.pack("<I", 9), "with 9 dimensions"),
        (b"GGUF" + struct.pack("<IQ", 3, 5), "truncated"),
    ],
)
def test_bad_headers_are_clear_model_errors(data: bytes, message: str) -> None:
    with pytest.raises(ModelError, match=message) as caught:
        parse_header(lambda n: data, "https://host/x.gguf")
    assert "https://host/x.gguf" in caught.value.message


# --- Range reads --------------------------------------------------------------------------


def test_only_the_header_is_fetched_growing_the_range(model: Sparse) -> None:
    big = Sparse(model.head, 6 * 1024**3)  # a 6 GiB file: only its header may be read
    with serve(FileServer(files={"m.gguf": big})) as server, httpx.Client() as client:
        stats = ReadStats()
        with RemotePrefix(client, server.file_url("m.gguf"), stats, first_bytes=64 * 1024) as p:
            header = parse_header(p, p.label)
            assert p.size == big.size
    needed = header.header_bytes
    assert needed == len(model.head) > 64 * 1024
    assert needed <= stats.bytes_read < 2 * needed  # doubling: never twice the header
    assert stats.bytes_read == server.sent and stats.ranged and not stats.notes
    ranges = [r for _, _, r in server.requests]
    assert stats.requests == len(ranges) >= 3 and all(ranges), ranges
    assert ranges[0] == "bytes=0-65535"


def test_a_server_without_range_support_is_read_only_as_far_as_the_header(model: Sparse) -> None:
    big = Sparse(model.head, 2 * 1024**3)
    with serve(FileServer(files={"m.gguf": big}, ranges=False)) as server, httpx.Client() as c:
        stats = ReadStats()
        with RemotePrefix(c, server.file_url("m.gguf"), stats) as prefix:
            header = parse_header(prefix, prefix.label)
    assert header_info(header, {}).parameters == SHAPE.parameters
    assert not stats.ranged and stats.requests == 1
    assert "ignores HTTP Range requests" in stats.notes[0]
    assert stats.bytes_read < len(model.head) + FIRST_BYTES
    assert server.sent < 64 * 1024**2  # the connection was closed: not 2 GiB


def test_a_truncated_file_and_a_missing_one_are_model_errors(model: Sparse) -> None:
    files = {"cut.gguf": model.head[: len(model.head) // 2]}
    with serve(FileServer(files=files)) as server, httpx.Client() as client:
        with pytest.raises(ModelError, match="truncated") as cut, RemotePrefix(
            client, server.file_url("cut.gguf"), ReadStats()
        ) as prefix:
            parse_header(prefix, prefix.label)
        assert "cut.gguf" in cut.value.message and "ends at byte" in cut.value.message
        with pytest.raises(ModelError, match="not found"), RemotePrefix(
            client, server.file_url("nope.gguf"), ReadStats()
        ) as prefix:
            parse_header(prefix, prefix.label)


def test_a_header_larger_than_the_limit_is_refused(model: Sparse) -> None:
    with serve(FileServer(files={"m.gguf": model})) as server, httpx.Client() as client:
        stats = ReadStats()
        with pytest.raises(ModelError, match="more than"), RemotePrefix(
            client, server.file_url("m.gguf"), stats, first_bytes=4096, max_bytes=100_000
        ) as prefix:
            parse_header(prefix, prefix.label)
    assert stats.bytes_read <= 100_000


def test_no_server_is_a_model_error() -> None:
    with httpx.Client() as client, pytest.raises(ModelError, match="cannot read"):
        RemotePrefix(client, "http://127.0.0.1:9/m.gguf", ReadStats())(10)


def test_safetensors_headers_by_range_and_their_errors() -> None:
    shard = safetensors_file({"w": ("BF16", [4096, 4096]), "n": ("F32", [4096])})
    raw = struct.pack("<Q", 50) + b'{"a": 1'
    files = {"ok.safetensors": shard, "cut.safetensors": raw, "big.safetensors":
             struct.pack("<Q", 2**40) + b"{}", "list.safetensors": struct.pack("<Q", 2) + b"[]"}
    with serve(FileServer(files=files)) as server, httpx.Client() as client:
        stats = ReadStats()
        with RemotePrefix(client, server.file_url("ok.safetensors"), stats, first_bytes=16) as p:
            header = header_from_reader(p.read, p.label)
        assert header["w"]["shape"] == [4096, 4096]
        assert stats.requests == 2 and stats.bytes_read == len(shard.head)
        for name, message in (("cut", "truncated"), ("big", "implausible"),
                              ("list", "not a JSON object")):
            with pytest.raises(ModelError, match=message), RemotePrefix(
                client, server.file_url(f"{name}.safetensors"), ReadStats()
            ) as p:
                header_from_reader(p.read, p.label)
        with pytest.raises(ModelError, match="not valid JSON"):
            get_json(client, server.file_url("cut.safetensors"), ReadStats())


# --- references -----------------------------------------------------------------------------


def test_https_split_gguf_reads_every_parts_header(tmp_path: Path, plain_https: httpx.Client) -> None:
    parts = write_split(tmp_path / "tiny.gguf", parts=3)
    files = {f"models/{p.name}": p.read_bytes() for p in parts}
    with serve(FileServer(files=files)) as server:
        host = server.url.removeprefix("http://")
        facts = model_facts(f"https://{host}/files/models/{parts[0].name}", client=plain_https)
    assert facts.info.parameters == 5 * TENSOR_ELEMENTS
    assert facts.info.file_sizes == {p.name: p.stat().st_size for p in parts}
    assert facts.stats is not None and facts.stats.requests == 3 and facts.stats.ranged
    assert facts.origin.startswith("GGUF header of https://")


def test_https_refuses_what_it_cannot_read_by_header(plain_https: httpx.Client) -> None:
    with pytest.raises(ModelError, match="only GGUF files"):
        model_facts("https://host.invalid/weights.bin", client=plain_https)
    with pytest.raises(ModelError, match="part 2 of 3"):
        model_facts("https://host.invalid/m-00002-of-00003.gguf", client=plain_https)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: Sparse) -> Iterator[FileServer]:
    repo = hf_repo(SHAPE, shards=3)
    repo["m.Q4_K_M.gguf"] = model
    repo["original/consolidated.safetensors"] = b"not read"
    repos = {"org/tiny": {COMMIT: repo}, "org/ggufs": {COMMIT: {"a.gguf": model, "b.gguf": model}}}
    with serve(FileServer(repos=repos)) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield server


def test_hf_gguf_through_the_hub_api_and_range_requests(hub: FileServer, model: Sparse) -> None:
    facts = model_facts("hf://org/tiny/m.Q4_K_M.gguf")
    assert facts.info.parameters == SHAPE.parameters and facts.info.format == "gguf"
    assert facts.info.file_sizes == {"m.Q4_K_M.gguf": model.size}
    # (huggingface_hub may also ask for /api/agent-harnesses: its own user-agent telemetry)
    paths = [path for _, path, _ in hub.requests if path != "/api/agent-harnesses"]
    assert paths[0] == "/api/models/org/tiny/revision/main"
    assert set(paths[1:]) == {f"/org/tiny/resolve/{COMMIT}/m.Q4_K_M.gguf"}  # pinned commit
    assert facts.stats is not None and facts.stats.bytes_read < 2 * len(model.head)


def test_hf_snapshot_reads_config_and_each_shard_header(hub: FileServer) -> None:
    facts = model_facts("hf://org/tiny")
    info = facts.info
    assert info.format == "safetensors" and info.parameters == SHAPE.parameters
    assert (info.layers, info.kv_heads, info.head_dim, info.context_length) == (4, 2, 32, 8192)
    shards = {p for p in info.file_sizes if p.endswith(".safetensors")}
    assert shards == {f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)}
    assert "m.Q4_K_M.gguf" not in info.file_sizes  # not part of the model vLLM loads
    ranged = [(p, r) for _, p, r in hub.requests if r]
    assert len(ranged) == 3 and all(r == "bytes=0-65535" for _, r in ranged)
    assert not any("consolidated" in p or p.endswith(".gguf") for _, p, _ in hub.requests)
    assert facts.stats is not None and facts.stats.ranged
    assert facts.file_bytes is not None and facts.stats.bytes_read < facts.file_bytes / 50


def test_hf_errors_say_what_to_do(hub: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="not found, or private"):
        model_facts("hf://org/missing")
    with pytest.raises(ModelError, match="no config.json") as only_ggufs:
        model_facts("hf://org/ggufs")
    assert only_ggufs.value.hint == "name one of its GGUF files: hf://org/ggufs/a.gguf (or one of 1 others)"
    with pytest.raises(ModelError, match="has no file") as missing:
        model_facts("hf://org/ggufs/c.gguf")
    assert "hf://org/ggufs/a.gguf" in (missing.value.hint or "")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):
        model_facts("hf://org/tiny/m.Q4_K_M.gguf")


def test_hf_settings_are_read_at_call_time(hub: FileServer) -> None:
    settings = HubSettings.from_env()
    assert settings.endpoint == hub.url


def test_ollama_reads_the_model_layer_of_the_registry_manifest(model: Sparse) -> None:
    with serve(FileServer(ollama={"library/tiny:q4": model})) as server, httpx.Client() as c:
        facts = model_facts("ollama://tiny:q4", client=c, ollama_registry=server.url)
        with pytest.raises(ModelError, match="not found"):
            model_facts("ollama://other", client=c, ollama_registry=server.url)
    assert facts.info.parameters == SHAPE.parameters
    assert server.requests[0][1] == "/v2/library/tiny/manifests/q4"
    assert server.requests[1][1].startswith("/v2/library/tiny/blobs/sha256:")


def test_local_and_stored_models_are_inspected_not_fetched(tmp_path: Path) -> None:
    parts = write_split(tmp_path / "tiny.gguf", parts=2)
    for ref in (str(parts[0]), f"file://{parts[0]}"):
        facts = model_facts(ref, client=httpx.Client(transport=httpx.MockTransport(_no_network)))
        assert facts.stats is None and facts.origin == f"inspected {parts[0]}"
        assert facts.info.parameters == 3 * TENSOR_ELEMENTS
    assert ModelFacts(facts.info, "x").read_summary()["header_only"] is False
    with pytest.raises(ModelError, match="no such model") as repo_like:
        model_facts("Qwen/Qwen2.5-7B-Instruct")
    assert repo_like.value.hint == "for the Hugging Face repository, write hf://Qwen/Qwen2.5-7B-Instruct"


def test_a_pulled_remote_model_is_read_from_the_store(
    tmp_path: Path, plain_https: httpx.Client
) -> None:
    from llmdeploy.models.store import ModelStore
    from llmdeploy.paths import model_store_dir
    from split_gguf import write_single

    data = write_single(tmp_path / "one.gguf").read_bytes()
    with serve(FileServer(files={"one.gguf": data})) as server:
        ref = f"https://{server.url.removeprefix('http://')}/files/one.gguf"
        ModelStore(model_store_dir(), http_client=plain_https).ensure(ref)
        before = len(server.requests)
        facts = model_facts(ref, client=httpx.Client(transport=httpx.MockTransport(_no_network)))
        assert len(server.requests) == before
    assert facts.stats is None and facts.origin.startswith("the stored copy")
    assert facts.info.parameters == TENSOR_ELEMENTS


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected: {request.url}")
