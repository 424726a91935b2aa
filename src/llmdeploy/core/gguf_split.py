"""Split GGUF models: the part names llama.cpp expects and the metadata that must agree.

llama.cpp's ``gguf-split`` (and ``convert_hf_to_gguf.py --split-max-size``, gguf-py's
``GGUFWriter(split_max_tensors=...)``) write one model as ``NAME-00001-of-0000N.gguf`` ...
``NAME-0000N-of-0000N.gguf``. Each part carries the keys

- ``split.no``: the part's 0-based index (uint16), so part ``-00001-`` has ``split.no = 0``;
- ``split.count``: the number of parts (uint16);
- ``split.tensors.count``: the tensors of all parts together (int32).

llama.cpp's loader is given the first part; it refuses any other (``split.no`` must be 0:
"model must be loaded with the first split"), takes ``split.count`` from its metadata, derives
the other names from its own name (``llama_split_prefix``: a name not ending in
``-00001-of-0000N.gguf`` is an "invalid split file name"), and checks each part's
``split.no``. So the store must hold every part beside the first, under the original names.

``read_split_header`` reads those keys without the ``gguf`` package: it walks the metadata
once (strings and arrays are skipped by their lengths), which takes well under a second even
for a part 1 holding a 150,000-token vocabulary.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from llmdeploy.errors import ModelError

SPLIT_NAME_RE = re.compile(r"^(?P<prefix>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")
MERGE_HINT = (
    "merge the parts into one file with llama.cpp's tool: "
    "llama-gguf-split --merge {first} {merged}"
)

_GGUF_MAGIC = b"GGUF"
# GGUF metadata value types: fixed sizes; 8 = string, 9 = array
_FIXED_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_INT_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
_STRING, _ARRAY = 8, 9
_MAX_KV = 1 << 20
_MAX_STRING = 1 << 30
_SPLIT_KEYS = ("split.no", "split.count", "split.tensors.count")


@dataclass(frozen=True)
class SplitName:
    """What a part's file name says: ``prefix-<index>-of-<count>.gguf`` (index 1-based)."""

    prefix: str
    index: int
    count: int

    def part(self, index: int) -> str:
        """The file name of part ``index`` (1-based), as llama.cpp's ``llama_split_path``."""
        return f"{self.prefix}-{index:05d}-of-{self.count:05d}.gguf"

    @property
    def names(self) -> list[str]:
        """Every part's file name, first to last."""
        return [self.part(i) for i in range(1, self.count + 1)]

    @property
    def first(self) -> str:
        return self.part(1)


def parse_split_name(name: str) -> SplitName | None:
    """The split naming of a file name (a basename, or a path whose last segment is used);
    None for a plain name, or a ``-00001-of-00001`` "split" of one part."""
    match = SPLIT_NAME_RE.match(PurePosixPath(name).name)
    if match is None:
        return None
    index, count = int(match.group("index")), int(match.group("count"))
    if count < 2 or not 1 <= index <= count:
        return None
    return SplitName(match.group("prefix"), index, count)


def part_names(name: str) -> list[str]:
    """Every file a model named ``name`` consists of (relative like ``name``): its split
    parts in order, or ``[name]`` itself."""
    split = parse_split_name(name)
    if split is None:
        return [name]
    folder = PurePosixPath(name).parent
    return [(folder / part).as_posix() for part in split.names]


def local_parts(first: Path, what: str) -> list[Path]:
    """``first``, or every part of the split GGUF whose first part it is, in order.

    Raises ModelError (``what`` names the model) listing the parts missing beside ``first``.
    """
    paths = [first.with_name(PurePosixPath(name).name) for name in part_names(first.name)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise ModelError(
            f"{what}: {first.name} is the first of {len(paths)} parts of a split GGUF model, "
            f"and {len(missing)} of them are missing from {first.parent}: {', '.join(missing)}",
            hint="put every part beside the first one (llama.cpp loads them from its folder)",
        )
    return paths


def require_first_part(name: str, what: str) -> None:
    """Refuse a reference to part 2..N: llama.cpp loads a split model from its first part."""
    split = parse_split_name(name)
    if split is not None and split.index != 1:
        raise ModelError(
            f"{what} names part {split.index} of {split.count} of a split GGUF model; "
            f"a split model is loaded from its first part",
            hint=f"name the first part, {split.first}, in the reference (the other parts "
            "are brought along with it)",
        )


# --- metadata -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitHeader:
    """The split keys of one GGUF file (None where absent) and its own tensor count."""

    tensor_count: int
    split_no: int | None
    split_count: int | None
    split_tensors_count: int | None


def read_split_header(path: Path) -> SplitHeader:
    """Read ``split.*`` and the tensor count from ``path``'s GGUF header (no ``gguf`` package).

    Raises ValueError when the file is not a GGUF file this reader understands (version 2 or
    3, little-endian), OSError when it cannot be read.
    """
    with path.open("rb") as handle:
        if handle.read(4) != _GGUF_MAGIC:
            raise ValueError("no GGUF magic")
        (version,) = _unpack(handle, "<I")
        if version not in (2, 3):
            raise ValueError(f"unsupported GGUF version {version}")
        tensor_count, kv_count = _unpack(handle, "<QQ")
        if kv_count > _MAX_KV:
            raise ValueError(f"implausible metadata count {kv_count}")
        found: dict[str, int] = {}
        for _ in range(kv_count):
            key = _read_string(handle)
            (value_type,) = _unpack(handle, "<I")
            if key in _SPLIT_KEYS and value_type in _INT_FORMATS:
                (found[key],) = _unpack(handle, _INT_FORMATS[value_type])
            else:
                _skip_value(handle, value_type)
    return SplitHeader(
        tensor_count=tensor_count,
        split_no=found.get("split.no"),
        split_count=found.get("split.count"),
        split_tensors_count=found.get("split.tensors.count"),
    )


def _unpack(handle: BinaryIO, fmt: str) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    raw = handle.read(size)
    if len(raw) != size:
        raise ValueError("the GGUF header ends early")
    return struct.unpack(fmt, raw)


def _read_string(handle: BinaryIO) -> str:
    (length,) = _unpack(handle, "<Q")
    if length > _MAX_STRING:
        raise ValueError(f"implausible string length {length}")
    raw = handle.read(length)
    if len(raw) != length:
        raise ValueError("the GGUF header ends early")
    return raw.decode("utf-8", errors="replace")


def _skip_value(handle: BinaryIO, value_type: int) -> None:
    if value_type in _FIXED_SIZES:
        handle.seek(_FIXED_SIZES[value_type], 1)
    elif value_type == _STRING:
        (length,) = _unpack(handle, "<Q")
        if length > _MAX_STRING:
            raise ValueError(f"implausible string length {length}")
        handle.seek(length, 1)
    elif value_type == _ARRAY:
        item_type, count = _unpack(handle, "<IQ")
        if item_type in _FIXED_SIZES:
            handle.seek(_FIXED_SIZES[item_type] * count, 1)
        elif item_type == _STRING:
            for _ in range(count):
                (length,) = _unpack(handle, "<Q")
                if length > _MAX_STRING:
                    raise ValueError(f"implausible string length {length}")
                handle.seek(length, 1)
        else:
            raise ValueError(f"unsupported GGUF array item type {item_type}")
    else:
        raise ValueError(f"unknown GGUF value type {value_type}")


def check_parts(paths: Sequence[Path]) -> None:
    """Check that ``paths`` (a model's files, first part first) agree with what llama.cpp
    will read from them; ModelError naming the disagreement otherwise.

    One plain file: refused only when its metadata says it is one part of a split (llama.cpp
    would look for siblings by a name it does not have). Split parts: every part must be a
    readable GGUF whose ``split.no`` is its position, whose ``split.count`` matches the count
    in the names, and whose tensors add up to ``split.tensors.count`` when that is stated.
    """
    first = paths[0]
    split = parse_split_name(first.name)
    if split is None:
        try:
            header = read_split_header(first)
        except (OSError, ValueError):
            return  # not a GGUF file this reader knows: nothing split about it to check
        if header.split_count is not None and header.split_count > 1:
            raise ModelError(
                f"{first.name} is part {(header.split_no or 0) + 1} of {header.split_count} of "
                "a split GGUF model (its split.count metadata), but its name lacks the "
                f"-00001-of-{header.split_count:05d} ending llama.cpp finds the other parts by",
                hint="give the parts their original names (NAME-00001-of-0000N.gguf ...) and "
                "name the first one, or merge them: llama-gguf-split --merge FIRST MERGED.gguf",
            )
        return
    if len(paths) != split.count:
        raise ModelError(f"{first.name} is one of {split.count} parts, {len(paths)} were given")
    headers: list[SplitHeader] = []
    for index, path in enumerate(paths, start=1):
        try:
            header = read_split_header(path)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"{path.name} (part {index} of {split.count}) is not a readable GGUF file: {exc}",
                hint="pull the model again; if a part was cut short, its download is incomplete",
            ) from exc
        if header.split_count is None:
            raise ModelError(
                f"{path.name} is named as part {index} of {split.count}, but it carries no "
                "split.count metadata: it is not a part written by gguf-split, and llama.cpp "
                "would load it alone",
                hint="if the parts are byte-wise pieces of one file, join them "
                f"(cat {split.prefix}-*-of-{split.count:05d}.gguf > {split.prefix}.gguf) and "
                "use the joined file",
            )
        if header.split_count != split.count:
            raise ModelError(
                f"{path.name} is named as one of {split.count} parts, but its GGUF metadata "
                f"says split.count = {header.split_count}; llama.cpp derives the other parts' "
                "names from split.count and would not find them",
                hint="give each part the name gguf-split gave it, or merge them: "
                "llama-gguf-split --merge FIRST MERGED.gguf",
            )
        if header.split_no != index - 1:
            raise ModelError(
                f"{path.name} is named as part {index}, but its GGUF metadata says it is part "
                f"{(header.split_no if header.split_no is not None else -1) + 1} "
                f"(split.no = {header.split_no}); the parts are mixed up",
                hint="give each part the name gguf-split gave it",
            )
        headers.append(header)
    stated = headers[0].split_tensors_count
    found = sum(h.tensor_count for h in headers)
    if stated is not None and stated != found:
        raise ModelError(
            f"the {split.count} parts of {split.first} hold {found} tensors together, but "
            f"split.tensors.count says {stated}: parts of different models (or quantizations) "
            "are mixed",
            hint="take every part from the same download",
        )
