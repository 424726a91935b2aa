"""Synthetic model files for header-only reads: real GGUF headers written by ``gguf.GGUFWriter``
(real metadata keys, a tokenizer vocabulary, tensor descriptions) and safetensors headers, each
with the size its weights would have, served as ``range_http.Sparse`` files.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from range_http import Sparse


@dataclass(frozen=True)
class LlamaShape:
    """A llama-architecture model's shape (the figures a GGUF header and config.json hold)."""

    layers: int = 4
    heads: int = 8
    kv_heads: int = 2
    hidden: int = 256
    ffn: int = 512
    vocab: int = 1000
    context: int = 4096

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of every tensor, as llama.cpp names them."""
        kv = self.kv_heads * self.head_dim
        found: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (self.vocab, self.hidden))]
        for block in range(self.layers):
            for part, shape in (
                ("attn_q", (self.hidden, self.hidden)),
                ("attn_k", (kv, self.hidden)),
                ("attn_v", (kv, self.hidden)),
                ("attn_output", (self.hidden, self.hidden)),
                ("ffn_gate", (self.ffn, self.hidden)),
                ("ffn_up", (self.ffn, self.hidden)),
                ("ffn_down", (self.hidden, self.ffn)),
            ):
                found.append((f"blk.{block}.{part}.weight", shape))
            found.append((f"blk.{block}.attn_norm.weight", (self.hidden,)))
        found.append(("output_norm.weight", (self.hidden,)))
        found.append(("output.weight", (self.vocab, self.hidden)))
        return found

    @property
    def parameters(self) -> int:
        return sum(int(np.prod(shape)) for _, shape in self.tensors())

    @property
    def kv_bytes_per_token_f16(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * 2


def gguf_file(
    path: Path,
    shape: LlamaShape,
    *,
    quant: gguf.GGMLQuantizationType = gguf.GGMLQuantizationType.Q4_K,
    file_type: gguf.LlamaFileType = gguf.LlamaFileType.MOSTLY_Q4_K_M,
    name: str = "synthetic llama",
    big_endian: bool = False,
) -> Sparse:
    """A GGUF model: its real header (written to ``path``) and the size its tensors would
    add, as a ``Sparse`` file. 2-D weights are ``quant``, norms F32."""
    endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    writer = gguf.GGUFWriter(str(path), arch="llama", endianess=endian)
    writer.add_name(name)
    writer.add_block_count(shape.layers)
    writer.add_context_length(shape.context)
    writer.add_embedding_length(shape.hidden)
    writer.add_feed_forward_length(shape.ffn)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_rope_dimension_count(shape.head_dim)
    writer.add_file_type(file_type)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"tok{i:06d}" for i in range(shape.vocab)])
    writer.add_token_types([1] * shape.vocab)
    writer.add_token_merges([f"t{i} o{i}" for i in range(shape.vocab)])
    writer.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    block, type_size = gguf.GGML_QUANT_SIZES[quant]
    data = 0
    for tensor_name, tensor_shape in shape.tensors():
        elements = int(np.prod(tensor_shape))
        if len(tensor_shape) == 1:
            writer.add_tensor_info(tensor_name, tensor_shape, np.dtype(np.float32), elements * 4)
            data += elements * 4
        else:
            nbytes = elements // block * type_size
            writer.add_tensor_info(tensor_name, tensor_shape, np.dtype(np.float32), nbytes, quant)
            data += nbytes
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    head = path.read_bytes()
    return Sparse(head, len(head) + data)


def safetensors_file(tensors: dict[str, tuple[str, list[int]]]) -> Sparse:
    """A safetensors file: its real header (8-byte length, JSON) and zeros for the data."""
    sizes = {"BF16": 2, "F16": 2, "F32": 4, "F8_E4M3": 1}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype] * int(np.prod(shape))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    head = struct.pack("<Q", len(raw)) + raw
    return Sparse(head, len(head) + offset)


def hf_repo(shape: LlamaShape, shards: int = 2) -> dict[str, Any]:
    """A Hugging Face repository: config.json, an index and ``shards`` BF16 safetensors."""
    names = [
        name.replace("blk.", "model.layers.").replace("token_embd", "model.embed_tokens")
        for name, _ in shape.tensors()
    ]
    shapes = [list(s) for _, s in shape.tensors()]
    per_shard = -(-len(names) // shards)
    files: dict[str, Any] = {}
    weight_map = {}
    for index in range(shards):
        file = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        chunk = range(index * per_shard, min(len(names), (index + 1) * per_shard))
        files[file] = safetensors_file({names[i]: ("BF16", shapes[i]) for i in chunk})
        weight_map.update({names[i]: file for i in chunk})
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "hidden_size": shape.hidden,
        "intermediate_size": shape.ffn,
        "max_position_embeddings": shape.context,
        "vocab_size": shape.vocab,
        "torch_dtype": "bfloat16",
    }
    files["config.json"] = json.dumps(config).encode()
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    files["model.safetensors.index.json"] = json.dumps(index).encode()
    files["tokenizer.json"] = b'{"model": {"type": "BPE"}}'
    files["README.md"] = b"# synthetic\n"
    return files
