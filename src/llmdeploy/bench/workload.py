"""Request inputs: seeded synthetic prompts, dataset files, one fixed prompt, shared prefixes,
multi-turn conversations (:mod:`llmdeploy.bench.conversations`) or a replayed trace
(:mod:`llmdeploy.bench.traces`).

Synthetic prompts need no tokenizer: they are built from common English words that every
mainstream BPE vocabulary (GPT-2, Llama, Mistral, Qwen, SmolLM) encodes as one token each
when preceded by a space, so *N words ~ N tokens*. The chat template adds a few tokens; the
report shows the prompt tokens the server actually counted.
"""

from __future__ import annotations

import json
import math
import random
from array import array
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from llmdeploy.bench.config import LengthDist, WorkloadSpec
from llmdeploy.bench.conversations import (
    Conversation,
    expected_history_cached,
    load_conversations,
)
from llmdeploy.bench.protocols import Prompt
from llmdeploy.bench.report import RequestRecord
from llmdeploy.bench.text_files import read_text
from llmdeploy.bench.traces import MOONCAKE_BLOCK_TOKENS, TraceEntry, load_trace, window
from llmdeploy.errors import BenchError

__all__ = [
    "PREFLIGHT_MAX_TOKENS",
    "Workload",
    "load_dataset",
    "read_dataset_entries",
    "sample_length",
    "synthetic_text",
]

_WORD_TEXT = """
the of and to in is you that it he was for on are as with his they at be this have from or
one had by word but not what all were we when your can said there use an each which she do
how their if will up other about out many then them these so some her would make like him
into time has look two more write go see number no way could people my than first water been
call who oil its now find long down day did get come made may part over new sound take only
little work know place year live me back give most very after thing our just name good man
think say great where help through much before line right too mean old any same tell boy
follow came want show also around form three small set put end does another well large must
big even such because turn here why ask went men read need land different home us move try
kind hand picture again change off play spell air away animal house point page letter mother
answer found study still learn should world high every near add food between own below
country plant last school father keep tree never start city earth eye light thought head
under story saw left few while along might close something seem next hard open example begin
life always those both paper together got group often run important until children side feet
car mile night walk white sea began grow took river four carry state once book hear stop
without second later miss
"""
_WORDS = tuple(_WORD_TEXT.split())
_TAG_WORDS = 3
_TAG_SPACE = len(_WORDS) ** _TAG_WORDS
PREFLIGHT_MAX_TOKENS = 4  # the pre-flight request's output cap
_POOL_FROM = 4096  # random texts of this many words or more are cut from one seeded text
_TAG_STEP = 7919  # a prime that does not divide len(_WORDS) ** 3: n -> tag is a bijection


def sample_length(dist: LengthDist, rng: random.Random) -> int:
    if dist.kind == "fixed":
        return dist.min
    if dist.kind == "uniform":
        return rng.randint(dist.min, dist.max)
    value = round(rng.gauss(dist.mean, dist.std))
    return min(dist.max, max(dist.min, value))


def synthetic_text(n_tokens: int, rng: random.Random) -> str:
    """About ``n_tokens`` tokens of random common words (seeded, so reproducible)."""
    return " ".join(rng.choices(_WORDS, k=max(1, n_tokens)))


def _estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate used only for dataset answers: ~4 characters per token."""
    return max(1, math.ceil(len(text) / 4))


def _sharegpt_prompt(conversations: list[Any]) -> Prompt | None:
    human = next(
        (c for c in conversations if isinstance(c, dict) and c.get("from") in ("human", "user")),
        None,
    )
    if human is None or not str(human.get("value", "")).strip():
        return None
    idx = conversations.index(human)
    answer = next(
        (
            c
            for c in conversations[idx + 1 :]
            if isinstance(c, dict) and c.get("from") in ("gpt", "assistant")
        ),
        None,
    )
    max_tokens = _estimate_tokens(str(answer.get("value", ""))) if answer else None
    return Prompt(text=str(human["value"]), max_tokens=max_tokens)


def _entry_to_prompt(entry: Any) -> Prompt | None:
    if isinstance(entry, str):
        return Prompt(text=entry) if entry.strip() else None
    if not isinstance(entry, dict):
        return None
    raw = entry.get("output_tokens", entry.get("max_tokens"))
    max_tokens: int | None = None
    if raw is not None:
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise ValueError(f"output_tokens must be a whole number, not {raw!r}")
        try:
            max_tokens = int(raw)
        except (ValueError, OverflowError):
            raise ValueError(f"output_tokens must be a whole number, not {raw!r}") from None
        if max_tokens < 1:
            raise ValueError(f"output_tokens must be at least 1, not {raw!r}")
    if isinstance(entry.get("conversations"), list):
        p = _sharegpt_prompt(entry["conversations"])
        if p is not None and max_tokens is not None:
            p.max_tokens = max_tokens
        return p
    if isinstance(entry.get("messages"), list):
        msgs = [
            {"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
            for m in entry["messages"]
            if isinstance(m, dict)
        ]
        return Prompt(messages=msgs, max_tokens=max_tokens) if msgs else None
    for key in ("prompt", "text", "input", "question"):
        if isinstance(entry.get(key), str) and entry[key].strip():
            return Prompt(text=entry[key], max_tokens=max_tokens)
    return None


def read_dataset_entries(path: str | Path) -> list[Any]:
    """The entries of a dataset file: one per JSONL line, or the items of a JSON list.
    BenchError (naming the file and line) when it cannot be read or parsed."""
    p = Path(path)
    text = read_text(p, "dataset", "a dataset is JSONL or a ShareGPT JSON list")
    entries: list[Any]
    stripped = text.lstrip()
    if p.suffix == ".jsonl" or not stripped.startswith("["):
        entries = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except (ValueError, RecursionError) as exc:
                raise BenchError(
                    f"dataset {p} line {lineno} is not JSON: {exc}",
                    hint="JSONL needs one JSON value per line",
                ) from exc
    else:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise BenchError(f"dataset {p} is not JSON: {exc}") from exc
        entries = data if isinstance(data, list) else [data]
    return entries


def load_dataset(path: str | Path) -> list[Prompt]:
    """JSONL (one prompt, ``{"prompt": ...}`` or ``{"messages": [...]}`` per line) or a
    JSON list (ShareGPT: ``[{"conversations": [{"from": "human", "value": ...}, ...]}]``)."""
    p = Path(path)
    prompts: list[Prompt] = []
    for number, entry in enumerate(read_dataset_entries(p), 1):
        try:
            prompt = _entry_to_prompt(entry)
        except ValueError as exc:
            raise BenchError(f"dataset {p} entry {number}: {exc}") from exc
        if prompt is not None:
            prompts.append(prompt)
    if not prompts:
        raise BenchError(
            f"dataset {p} has no usable prompts",
            hint='expected "prompt", "messages" or ShareGPT "conversations" entries',
        )
    return prompts


class Workload:
    """Seeded prompts: :meth:`get` ``(n)`` is the prompt of request number ``n``.

    The same seed and ``n`` give the same lengths and words in every run, whatever order
    requests are made in (each request draws from its own generator, seeded by the run seed
    and ``n``). The runner numbers requests across the whole run when ``unique_prompts`` is on,
    so no two requests of a run share a prompt; then every prompt also begins with three words
    that encode ``n`` and the run's ``prompt_nonce`` (distinct for the first ~20 million
    requests of a run), so two requests share at most a word or two of prefix beyond the
    shared prefixes, within a run and across runs. Off, the runner numbers requests per stage
    and stages (and runs with the same seed) replay the same prompts.

    Sharing on purpose: with ``shared_prefix_tokens`` P and ``prefixes`` N, request ``n``
    starts with prefix ``n mod N`` (interleaved, so each prefix comes back every N requests:
    the most cache pressure N prefixes can make); each prefix also starts with three words
    of its own from the nonce, so a run never finds its prefixes in an earlier run's cache.
    Trace replay (Mooncake) builds each prompt from blocks of
    :data:`~llmdeploy.bench.traces.MOONCAKE_BLOCK_TOKENS` words, one per hash id, seeded by
    the nonce and the id: requests with the same id share that block's text.
    :meth:`expected_cached` says how many prompt tokens of a stage this sharing makes
    cacheable.
    """

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec
        self._dataset: list[Prompt] = []
        self._conversations: list[list[Prompt]] = []
        if spec.kind == "dataset":
            assert spec.dataset_path is not None
            if spec.turns > 1:
                entries = read_dataset_entries(spec.dataset_path)
                self._conversations = load_conversations(
                    entries, spec.dataset_path, spec.turns
                )
                if spec.dataset_shuffle:
                    random.Random(spec.seed).shuffle(self._conversations)
            else:
                self._dataset = load_dataset(spec.dataset_path)
                if spec.dataset_shuffle:
                    random.Random(spec.seed).shuffle(self._dataset)
        self._pool_text: str | None = None
        self._pool_starts = array("I")
        nonce = spec.prompt_nonce if spec.prompt_nonce is not None else spec.seed
        self._nonce = nonce
        self._tag_offset = random.Random(f"{nonce}/tags").randrange(_TAG_SPACE)
        self._prefix_tag_offset = random.Random(f"{nonce}/prefix-tags").randrange(_TAG_SPACE)
        self._prefixes: list[str] = []
        if spec.shared_prefix_tokens:
            self._prefixes = [self._prefix(k) for k in range(spec.prefixes)]
        self._trace: list[tuple[float, TraceEntry]] = []
        if spec.kind == "trace":
            assert spec.trace_path is not None and spec.trace_format is not None
            trace = load_trace(spec.trace_path, spec.trace_format)
            self._trace = window(trace, spec.trace_start_s, spec.trace_duration_s)
            if not self._trace:
                raise BenchError(
                    f"trace {spec.trace_path} has no request in the window of "
                    f"{spec.trace_start_s:g} s + {spec.trace_duration_s or 'the rest'} s "
                    f"(it spans {trace.entries[-1].timestamp_s - trace.entries[0].timestamp_s:g}"
                    " s)",
                    hint="move --trace-start / --trace-duration into the trace",
                )

    def _tag_words(self, n: int, offset: int) -> list[str]:
        m = (n * _TAG_STEP + offset) % _TAG_SPACE
        w = len(_WORDS)
        return [_WORDS[m % w], _WORDS[(m // w) % w], _WORDS[m // (w * w)]]

    def tag(self, n: int) -> list[str]:
        """The words that make request ``n``'s prompt unique: a bijection of ``n`` (mod
        ``len(_WORDS) ** 3``) written in base ``len(_WORDS)``, fastest-changing digit first,
        so requests close in number differ from their first word on."""
        return self._tag_words(n, self._tag_offset)

    def _prefix(self, k: int) -> str:
        """Shared prefix ``k``: ``shared_prefix_tokens`` words, the first three of them its
        own (from the nonce) when prompts are unique."""
        spec = self.spec
        size = spec.shared_prefix_tokens
        rng = random.Random(f"{spec.seed}/shared-prefix/{k}")
        lead = self._tag_words(k, self._prefix_tag_offset)[:size] if spec.unique_prompts else []
        return " ".join(lead + rng.choices(_WORDS, k=size - len(lead)))

    # prompts ------------------------------------------------------------------------------
    @property
    def trace_length(self) -> int:
        """Requests in the replayed window of the trace (0 without a trace)."""
        return len(self._trace)

    def trace_offsets(self, speed: float = 1.0) -> list[float]:
        """Send offsets (seconds after the stage starts) of the trace's requests, in order,
        replayed ``speed`` times as fast as recorded."""
        return [offset / speed for offset, _ in self._trace]

    def get(self, n: int, *, with_prefix: bool = True, prefix_index: int | None = None) -> Prompt:
        """Request ``n``'s prompt (``with_prefix=False``: without the shared prefix, for a
        conversation's later turns). The shared prefix is number ``prefix_index mod N``
        (default ``n mod N``; a conversation passes its own number, so conversations, not
        requests, are dealt the prefixes in turn)."""
        spec = self.spec
        rng = random.Random((spec.seed << 40) + n)
        out = spec.output_tokens
        unique = spec.unique_prompts
        pick = n if prefix_index is None else prefix_index
        shared = self._prefixes if with_prefix else []
        prefix = shared[pick % len(shared)] if shared else ""
        if spec.kind == "trace":
            return self._trace_prompt(n, rng)
        if spec.kind == "synthetic":
            n_in = sample_length(spec.input_tokens, rng)
            max_tokens = sample_length(out, rng) if out is not None else None
            return Prompt(text=self._words(n, n_in, rng, prefix), max_tokens=max_tokens)
        lead = " ".join(filter(None, [prefix, " ".join(self.tag(n)) if unique else ""]))
        if spec.kind == "prompt":
            assert spec.prompt is not None
            max_tokens = sample_length(out, rng) if out is not None else None
            return Prompt(text=f"{lead}\n{spec.prompt}" if lead else spec.prompt,
                          max_tokens=max_tokens)
        if self._conversations:  # multi-turn dataset: request n is a conversation's first turn
            first = self._conversations[n % len(self._conversations)][0]
            base = Prompt(text=first.text, max_tokens=first.max_tokens)
        else:
            base = self._dataset[n % len(self._dataset)]
        max_tokens = sample_length(out, rng) if out is not None else base.max_tokens
        if not lead:
            return Prompt(text=base.text, messages=base.messages, max_tokens=max_tokens)
        if base.messages is not None:
            first_msg = dict(base.messages[0])
            first_msg["content"] = f"{lead}\n{first_msg.get('content', '')}"
            return Prompt(messages=[first_msg, *base.messages[1:]], max_tokens=max_tokens)
        return Prompt(text=f"{lead}\n{base.text or ''}", max_tokens=max_tokens)

    def _words(self, n: int, n_in: int, rng: random.Random, prefix: str = "") -> str:
        """``n_in`` seeded words for request ``n`` (unique: starting with its tag), after
        ``prefix``."""
        if self.spec.unique_prompts:
            tag = self.tag(n)[: min(n_in, _TAG_WORDS)]
            rest = self._random_words(rng, n_in - len(tag))
            text = " ".join(tag) + (" " + rest if rest else "")
        else:
            text = self._random_words(rng, n_in)
        return f"{prefix} {text}" if prefix else text

    def _trace_prompt(self, n: int, rng: random.Random) -> Prompt:
        entry = self._trace[n][1]
        size = entry.input_tokens
        if not entry.hash_ids:
            return Prompt(text=self._words(n, size, rng), max_tokens=entry.output_tokens)
        words: list[str] = []
        for h in entry.hash_ids:
            need = min(MOONCAKE_BLOCK_TOKENS, size - len(words))
            if need <= 0:
                break
            words.extend(_block_words(self._nonce, h)[:need])
        if len(words) < size:  # more prompt than the blocks cover: the rest is its own
            words.extend(self.tag(n) + rng.choices(_WORDS, k=max(0, size - len(words) - 3)))
            del words[size:]
        return Prompt(text=" ".join(words), max_tokens=entry.output_tokens)

    def conversation(self, n: int, number: int) -> Conversation:
        """Conversation ``number`` whose first request is number ``n`` (its turn ``t`` uses
        request number ``n + t``): seeded synthetic user turns, or a dataset conversation's
        human turns (its first turn led by the shared prefix and the unique tag)."""
        turns = self.spec.turns
        if not self._conversations:
            return Conversation(
                number,
                [self.get(n + t, with_prefix=t == 0, prefix_index=number) for t in range(turns)],
            )
        source = self._conversations[n % len(self._conversations)]
        first = self.get(n, prefix_index=number)
        rest = [Prompt(text=p.text, max_tokens=self._cap(n + t, p.max_tokens))
                for t, p in enumerate(source[1:], 1)]
        return Conversation(number, [first, *rest])

    def _cap(self, n: int, dataset_cap: int | None) -> int | None:
        out = self.spec.output_tokens
        if out is None:
            return dataset_cap
        return sample_length(out, random.Random((self.spec.seed << 40) + n))

    def _random_words(self, rng: random.Random, k: int) -> str:
        """``k`` random words. Up to ``_POOL_FROM`` words, drawn one by one; longer texts
        (a 100K-token prompt costs ~10 ms drawn word by word, which stalls the event loop
        that stamps arriving tokens) are a window at a seeded random offset of one seeded
        text of random words, cut by one string slice."""
        if k <= 0:
            return ""
        if k < _POOL_FROM:
            return " ".join(rng.choices(_WORDS, k=k))
        text, starts = self._pool(k)
        first = rng.randrange(len(starts) - k)
        return text[starts[first] : starts[first + k] - 1]

    def _pool(self, k: int) -> tuple[str, array[int]]:
        """A seeded text of at least ``2 k`` random words and its word start offsets
        (one more at the end): built once per run, grown when a longer prompt needs it."""
        if self._pool_text is None or len(self._pool_starts) - 1 < 2 * k:
            words = random.Random(f"{self.spec.seed}/pool").choices(_WORDS, k=max(2 * k, 65536))
            starts = array("I", [0])
            offset = 0
            for w in words:
                offset += len(w) + 1
                starts.append(offset)
            self._pool_text = " ".join(words) + " "
            self._pool_starts = starts
        return self._pool_text, self._pool_starts

    def preflight_prompt(self) -> Prompt:
        """A short prompt shared with no request of the run (for the pre-flight check)."""
        rng = random.Random(f"{self.spec.seed}/preflight")
        return Prompt(text=" ".join(rng.choices(_WORDS, k=8)), max_tokens=PREFLIGHT_MAX_TOKENS)

    # what sharing makes cacheable --------------------------------------------------------
    def expected_cached(self, records: Sequence[RequestRecord], base: int) -> int | None:
        """Prompt tokens of the measured successful ``records`` (numbered from ``base`` in
        the run) that this workload shares on purpose with an earlier request of the run:
        a shared prefix already sent (interleaved: request ``n >= N``), a conversation's
        history, or Mooncake blocks whose ids came earlier (counted from the first block,
        as a prefix cache matches). None when the workload shares nothing on purpose.
        Counted in words for prefixes and blocks (~ tokens), in the server's tokens for
        histories."""
        spec = self.spec
        if spec.turns > 1:
            history = expected_history_cached(records)
            if not self._prefixes:
                return history
            # first turns of conversations after the first N find their prefix cached
            size, count = spec.shared_prefix_tokens, len(self._prefixes)
            return history + sum(size for r in records if r.ok and not r.warmup
                                 and r.turn == 0 and (r.conversation or 0) >= count)
        if spec.kind == "trace" and any(e.hash_ids for _, e in self._trace):
            return self._trace_cached(records)
        if self._prefixes:
            size, count = spec.shared_prefix_tokens, len(self._prefixes)
            return sum(size for r in records
                       if r.ok and not r.warmup and base + r.index >= count)
        return None

    def _trace_cached(self, records: Sequence[RequestRecord]) -> int:
        """Mooncake: per wanted request, its leading blocks as far as earlier requests sent
        them (a block an earlier request sent only in part is served that far)."""
        wanted = {r.index for r in records if r.ok and not r.warmup}
        sent: dict[int, int] = {}  # hash id -> words of its block sent so far
        total = 0
        for i, (_, entry) in enumerate(self._trace):
            left = entry.input_tokens
            hits = 0
            reuse = True
            for h in entry.hash_ids:
                need = min(MOONCAKE_BLOCK_TOKENS, left)
                if need <= 0:
                    break
                if reuse:
                    have = min(need, sent.get(h, 0))
                    hits += have
                    reuse = have == need
                sent[h] = max(sent.get(h, 0), need)
                left -= need
            if i in wanted:
                total += hits
        return total


@lru_cache(maxsize=2048)
def _block_words(nonce: int, hash_id: int) -> tuple[str, ...]:
    """The text of Mooncake block ``hash_id`` in a run with ``nonce``."""
    return tuple(random.Random(f"{nonce}/block/{hash_id}").choices(_WORDS,
                                                                   k=MOONCAKE_BLOCK_TOKENS))
