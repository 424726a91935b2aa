"""A GGUF file's header (metadata and tensor descriptions) parsed from its first bytes.

``GGUFReader`` (the ``gguf`` package) maps a whole file and builds every tensor's data view,
so it cannot read a file that is not all there. This reader parses the header only, from a
prefix it asks for as it goes (``read_prefix(n)``: the start of the file, at least ``n`` bytes
and as many more as the source holds, fewer only at the end of the file), so a remote file is
read by HTTP Range requests as far as its header reaches (``models.inspect.ranged``) and no
further.

Layout, from the GGUF specification (ggml-org/ggml ``docs/gguf.md``) and gguf-py's
``gguf/gguf_reader.py``::

    "GGUF" | uint32 version | uint64 tensor_count | uint64 kv_count
    kv_count x      (string key | uint32 value type | value)
    tensor_count x  (string name | uint32 n_dims | n_dims x uint64 | uint32 type | uint64 offset)

    string = uint64 byte length + UTF-8 bytes
    array  = uint32 element type + uint64 count + the elements
    value types (``GGUFValueType``): 0 uint8, 1 int8, 2 uint16, 3 int16, 4 uint32, 5 int32,
    6 float32, 7 bool, 8 string, 9 array, 10 uint64, 11 int64, 12 float64

Little-endian, unless the version reads byte-swapped (a big-endian file, detected the way
gguf-py does). Version 1 (32-bit counts and lengths) is refused: llama.cpp no longer loads it.
Arrays longer than ``KEPT_ARRAY_LENGTH`` (a tokenizer's vocabulary) are skipped over and kept
as ``LongArray`` (their type and length), never decoded.

Errors: ``ModelError`` naming the file for a bad magic, an unsupported version, a value that
cannot be right (a string longer than the limit, more dimensions than ggml has), and for a
file that ends inside its header (a truncated download).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmdeploy.errors import ModelError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
KEPT_ARRAY_LENGTH = 4096  # longer arrays are skipped: no metadata the planner reads is that long
MAX_STRING_BYTES = 64 * 1024**2  # a chat template or a merge list element is far smaller
MAX_COUNT = 2**40  # more key/values, tensors or array elements than any file could hold
GGML_MAX_DIMS = 4  # ggml.h

# value type -> (struct format, size) for the fixed-size types
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("B", 1),
    1: ("b", 1),
    2: ("H", 2),
    3: ("h", 2),
    4: ("I", 4),
    5: ("i", 4),
    6: ("f", 4),
    7: ("?", 1),
    10: ("Q", 8),
    11: ("q", 8),
    12: ("d", 8),
}
STRING, ARRAY = 8, 9

ReadPrefix = Callable[[int], bytes]


@dataclass(frozen=True)
class LongArray:
    """An array of ``count`` elements of value type ``item_type``, skipped over unread."""

    item_type: int
    count: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int  # ``GGMLQuantizationType`` value

    @property
    def elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True)
class GgufHeader:
    """What a GGUF file's header holds; ``header_bytes``: where the header ends."""

    version: int
    fields: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    header_bytes: int

    def get(self, key: str) -> Any:
        """A metadata value (int, float, bool, str, list), ``LongArray``, or None."""
        return self.fields.get(key)

    def array_length(self, key: str) -> int | None:
        value = self.fields.get(key)
        if isinstance(value, LongArray):
            return value.count
        return len(value) if isinstance(value, list) else None

    def tensor_counts(self) -> Counter[str]:
        """Elements (parameters) by tensor type name (``Q4_K``, ``F32``, ...)."""
        counts: Counter[str] = Counter()
        for tensor in self.tensors:
            counts[ggml_type_name(tensor.ggml_type)] += tensor.elements
        return counts


def ggml_type_name(value: int) -> str:
    """The ``GGMLQuantizationType`` name of a tensor type (``TYPE_<n>`` when unknown)."""
    try:
        import gguf

        return str(gguf.GGMLQuantizationType(value).name)
    except (ImportError, ValueError):
        return f"TYPE_{value}"


class _Cursor:
    """Reads values from a prefix that grows on demand."""

    def __init__(self, read_prefix: ReadPrefix, label: str) -> None:
        self._read = read_prefix
        self._label = label
        self._data = b""
        self.pos = 0
        self.order = "<"

    def take(self, size: int) -> bytes | memoryview:
        end = self.pos + size
        if end > len(self._data):
            self._data = self._read(end)
            if end > len(self._data):
                raise ModelError(
                    f"{self._label} is truncated: the file ends at byte {len(self._data):,}, "
                    f"inside its GGUF header (at byte {self.pos:,}, {size:,} more bytes needed)",
                    hint="the file is incomplete or not a GGUF model: check the URL or download",
                )
        view = memoryview(self._data)[self.pos : end]
        self.pos = end
        return view

    def unpack(self, fmt: str, size: int) -> Any:
        return struct.unpack(self.order + fmt, self.take(size))[0]

    def count(self, what: str) -> int:
        value = int(self.unpack("Q", 8))
        if value > MAX_COUNT:
            raise self.corrupt(f"{what} {value:,}")
        return value

    def string(self) -> str:
        length = int(self.unpack("Q", 8))
        if length > MAX_STRING_BYTES:
            raise self.corrupt(f"a string of {length:,} bytes")
        return bytes(self.take(length)).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = int(self.unpack("Q", 8))
        if length > MAX_STRING_BYTES:
            raise self.corrupt(f"a string of {length:,} bytes")
        self.take(length)

    def corrupt(self, what: str) -> ModelError:
        return ModelError(
            f"{self._label} is not a readable GGUF file: {what} at byte {self.pos:,}",
            hint="the file is damaged or not a GGUF model",
        )


def parse_header(read_prefix: ReadPrefix, label: str) -> GgufHeader:
    """Parse the header of the GGUF file whose first bytes ``read_prefix`` returns; ``label``
    names the file in errors (a path or URL). Raises ModelError (see the module docstring)."""
    cursor = _Cursor(read_prefix, label)
    magic = bytes(cursor.take(4))
    if magic != MAGIC:
        raise ModelError(
            f"{label} is not a GGUF file (it starts with {magic!r}, not {MAGIC!r})",
            hint="check the URL: it should name a .gguf file",
        )
    version = int(cursor.unpack("I", 4))
    if version & 0xFFFF == 0:  # byte-swapped: a big-endian file
        cursor.order = ">"
        version = int(struct.unpack(">I", struct.pack("<I", version))[0])
    if version not in SUPPORTED_VERSIONS:
        raise ModelError(
            f"{label}: GGUF version {version} is not supported (versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))} are)",
            hint="re-convert the model with a current llama.cpp",
        )
    tensor_count = cursor.count("a tensor count of")
    kv_count = cursor.count("a key/value count of")
    fields: dict[str, Any] = {}
    for _ in range(kv_count):
        key = cursor.string()
        fields[key] = _value(cursor, int(cursor.unpack("I", 4)))
    tensors = []
    for _ in range(tensor_count):
        name = cursor.string()
        n_dims = int(cursor.unpack("I", 4))
        if n_dims > GGML_MAX_DIMS:
            raise cursor.corrupt(f"tensor {name!r} with {n_dims} dimensions")
        shape = tuple(int(cursor.unpack("Q", 8)) for _ in range(n_dims))
        ggml_type = int(cursor.unpack("I", 4))
        cursor.unpack("Q", 8)  # the data offset: not needed
        tensors.append(TensorInfo(name, shape, ggml_type))
    return GgufHeader(version, fields, tuple(tensors), cursor.pos)


def _value(cursor: _Cursor, kind: int) -> Any:
    if kind in _SCALARS:
        return cursor.unpack(*_SCALARS[kind])
    if kind == STRING:
        return cursor.string()
    if kind == ARRAY:
        item = int(cursor.unpack("I", 4))
        count = cursor.count("an array of")
        if count > KEPT_ARRAY_LENGTH:
            _skip_array(cursor, item, count)
            return LongArray(item, count)
        return [_value(cursor, item) for _ in range(count)]
    raise cursor.corrupt(f"unknown value type {kind}")


def _skip_array(cursor: _Cursor, item: int, count: int) -> None:
    if item in _SCALARS:
        cursor.take(_SCALARS[item][1] * count)
    elif item == STRING:
        for _ in range(count):
            cursor.skip_string()
    elif item == ARRAY:
        for _ in range(count):
            _value(cursor, ARRAY)
    else:
        raise cursor.corrupt(f"an array of unknown value type {item}")
