"""Start the real llama.cpp server (the ``xllamacpp`` wheel) on a GGUF with given cache settings
and read the cache sizes it logs.

The server runs in a child process on 127.0.0.1 and a free port, and exits as soon as it has
loaded the model and allocated its caches (``xllamacpp.Server`` returns once it listens). Its
log lines (llama.cpp's own, at verbosity 4):

    llama_kv_cache: size =   45.00 MiB (  1024 cells,  30 layers,  2/2 seqs), K (f16): ...
    llama_memory_recurrent: size =    1.04 MiB (     2 cells,   4 layers,  2 seqs  0 rs_seq), ...

one per cache (an iSWA model logs its full and its sliding-window cache; a hybrid its KV cache
and its recurrent state).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

MiB = 1024 * 1024

_KV_LINE = re.compile(
    r"llama_kv_cache: size =\s*(?P<total>[\d.]+) MiB \(\s*(?P<cells>\d+) cells,\s*(?P<layers>\d+)"
    r" layers,\s*(?P<seqs>\d+)/(?P<streams>\d+) seqs\), K \((?P<k_type>\w+)\):\s*(?P<k>[\d.]+) MiB,"
    r" V \((?P<v_type>\w+)\):\s*(?P<v>[\d.]+) MiB"
)
_RS_LINE = re.compile(
    r"llama_memory_recurrent: size =\s*(?P<total>[\d.]+) MiB \(\s*(?P<cells>\d+) cells,"
    r"\s*(?P<layers>\d+) layers,\s*(?P<seqs>\d+) seqs"
)


@dataclass(frozen=True)
class Settings:
    """llama-server settings that change the caches, with their flag spelling for a profile."""

    ctx_size: int = 4096
    parallel: int = 1
    cache_type_k: str = "f16"
    cache_type_v: str = "f16"
    flash_attn: str = "auto"  # on, off, auto
    kv_unified: bool = False
    swa_full: bool = False
    ubatch: int = 512

    def extra_args(self) -> list[str]:
        """The llama-server flags beyond -c/-np (a profile's ``backend.extra_args``)."""
        args = ["-ctk", self.cache_type_k, "-ctv", self.cache_type_v, "-fa", self.flash_attn]
        if self.kv_unified:
            args.append("--kv-unified")
        if self.swa_full:
            args.append("--swa-full")
        if self.ubatch != 512:
            args += ["-ub", str(self.ubatch), "-b", str(max(self.ubatch, 2048))]
        return args

    def label(self) -> str:
        parts = [f"-c {self.ctx_size} -np {self.parallel}"]
        if (self.cache_type_k, self.cache_type_v) != ("f16", "f16"):
            parts.append(f"K {self.cache_type_k} V {self.cache_type_v}")
        if self.flash_attn != "auto":
            parts.append(f"-fa {self.flash_attn}")
        if self.kv_unified:
            parts.append("--kv-unified")
        if self.swa_full:
            parts.append("--swa-full")
        if self.ubatch != 512:
            parts.append(f"-ub {self.ubatch}")
        return ", ".join(parts)


@dataclass(frozen=True)
class CacheLine:
    """One cache the server logged: ``kind`` ``kv`` or ``recurrent``, sizes in MiB as printed
    (2 decimals), ``cells`` per stream, ``streams`` (KV) or sequences (recurrent)."""

    kind: str
    total_mib: float
    cells: int
    layers: int
    streams: int
    k_mib: float = 0.0
    v_mib: float = 0.0


def parse_cache_lines(log: str) -> list[CacheLine]:
    """Every ``llama_kv_cache: size = ...`` and ``llama_memory_recurrent: size = ...`` line."""
    lines: list[CacheLine] = []
    for text in log.splitlines():
        if match := _KV_LINE.search(text):
            lines.append(CacheLine(
                "kv", float(match["total"]), int(match["cells"]), int(match["layers"]),
                int(match["streams"]), float(match["k"]), float(match["v"]),
            ))  # fmt: skip
        elif match := _RS_LINE.search(text):
            lines.append(CacheLine(
                "recurrent", float(match["total"]), int(match["cells"]), int(match["layers"]),
                int(match["seqs"]),
            ))  # fmt: skip
    return lines


_CHILD = r"""
import json, os, sys, time
import xllamacpp
model, port, s = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
types = {"f16": xllamacpp.ggml_type.GGML_TYPE_F16, "q8_0": xllamacpp.ggml_type.GGML_TYPE_Q8_0,
         "q4_0": xllamacpp.ggml_type.GGML_TYPE_Q4_0, "f32": xllamacpp.ggml_type.GGML_TYPE_F32}
fa = {"auto": xllamacpp.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_AUTO,
      "on": xllamacpp.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_ENABLED,
      "off": xllamacpp.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_DISABLED}
p = xllamacpp.CommonParams()
p.model.path = model
p.hostnames = ["127.0.0.1"]
p.port = port
p.verbosity = 4          # llama.cpp's info lines (the cache sizes)
p.fit_params = False     # the settings as given: no shrinking to fit the host
p.cpuparams.n_threads = 1
p.cpuparams_batch.n_threads = 1
p.n_ctx = s["ctx_size"]
p.n_parallel = s["parallel"]
p.cache_type_k = types[s["cache_type_k"]]
p.cache_type_v = types[s["cache_type_v"]]
p.flash_attn_type = fa[s["flash_attn"]]
p.kv_unified = s["kv_unified"]
p.swa_full = s["swa_full"]
p.n_ubatch = s["ubatch"]
p.n_batch = max(s["ubatch"], 2048)
server = xllamacpp.Server(p)
sys.stderr.write("PROBE: server started\n")
sys.stderr.flush()
time.sleep(0.3)  # llama.cpp logs from a worker thread: let it write its queue out
os._exit(0)  # no shutdown: deleting the server or the interpreter's teardown can hang
"""


class ServerFailed(RuntimeError):
    """The server exited without starting; the message ends with its log."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_cache_log(model: Path, settings: Settings, *, timeout_s: float = 120) -> str:
    """Start llama.cpp's server on ``model`` with ``settings``; its log once it listened.
    Raises ServerFailed (with the log's tail) when it did not start."""
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(model), str(_free_port()), json.dumps(asdict(settings))],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )
    log = child.stdout + child.stderr
    if child.returncode != 0 or "PROBE: server started" not in log:
        raise ServerFailed(f"llama.cpp server exit {child.returncode} on {model.name}:\n{log[-3000:]}")
    if "listening on" not in log:  # its log queue is written in order: the cache lines precede
        raise ServerFailed(f"llama.cpp's log was cut short on {model.name}:\n{log[-3000:]}")
    return log
