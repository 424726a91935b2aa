"""Request inputs: seeded synthetic prompts, dataset files, or one fixed prompt.

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
from pathlib import Path
from typing import Any

from llmdeploy.bench.config import LengthDist, WorkloadSpec
from llmdeploy.bench.protocols import Prompt
from llmdeploy.errors import BenchError

__all__ = ["PREFLIGHT_MAX_TOKENS", "Workload", "load_dataset", "sample_length", "synthetic_text"]

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


def load_dataset(path: str | Path) -> list[Prompt]:
    """JSONL (one prompt, ``{"prompt": ...}`` or ``{"messages": [...]}`` per line) or a
    JSON list (ShareGPT: ``[{"conversations": [{"from": "human", "value": ...}, ...]}]``)."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise BenchError(f"cannot read dataset {p}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise BenchError(
            f"dataset {p} is not UTF-8 text (byte {exc.start}): is it a binary file?",
            hint="a dataset is JSONL or a ShareGPT JSON list",
        ) from exc
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
    prompts: list[Prompt] = []
    for number, entry in enumerate(entries, 1):
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
    requests of a run), so two requests share at most a word or two of prefix beyond
    ``shared_prefix_tokens``, within a run and across runs. Off, the runner numbers requests
    per stage and stages (and runs with the same seed) replay the same prompts.
    """

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec
        self._dataset: list[Prompt] = []
        if spec.kind == "dataset":
            assert spec.dataset_path is not None
            self._dataset = load_dataset(spec.dataset_path)
            if spec.dataset_shuffle:
                random.Random(spec.seed).shuffle(self._dataset)
        self._prefix = ""
        if spec.shared_prefix_tokens:
            prefix_rng = random.Random(f"{spec.seed}/shared-prefix")
            self._prefix = " ".join(prefix_rng.choices(_WORDS, k=spec.shared_prefix_tokens))
        self._pool_text: str | None = None
        self._pool_starts = array("I")
        nonce = spec.prompt_nonce if spec.prompt_nonce is not None else spec.seed
        self._tag_offset = random.Random(f"{nonce}/tags").randrange(_TAG_SPACE)

    def tag(self, n: int) -> list[str]:
        """The words that make request ``n``'s prompt unique: a bijection of ``n`` (mod
        ``len(_WORDS) ** 3``) written in base ``len(_WORDS)``, fastest-changing digit first,
        so requests close in number differ from their first word on."""
        m = (n * _TAG_STEP + self._tag_offset) % _TAG_SPACE
        w = len(_WORDS)
        return [_WORDS[m % w], _WORDS[(m // w) % w], _WORDS[m // (w * w)]]

    def get(self, n: int) -> Prompt:
        spec = self.spec
        rng = random.Random((spec.seed << 40) + n)
        out = spec.output_tokens
        unique = spec.unique_prompts
        if spec.kind == "synthetic":
            n_in = sample_length(spec.input_tokens, rng)
            max_tokens = sample_length(out, rng) if out is not None else None
            if unique:
                tag = self.tag(n)[: min(n_in, _TAG_WORDS)]
                rest = self._random_words(rng, n_in - len(tag))
                text = " ".join(tag) + (" " + rest if rest else "")
            else:
                text = self._random_words(rng, n_in)
            if self._prefix:
                text = f"{self._prefix} {text}"
            return Prompt(text=text, max_tokens=max_tokens)
        lead = " ".join(filter(None, [self._prefix, " ".join(self.tag(n)) if unique else ""]))
        if spec.kind == "prompt":
            assert spec.prompt is not None
            max_tokens = sample_length(out, rng) if out is not None else None
            return Prompt(text=f"{lead}\n{spec.prompt}" if lead else spec.prompt,
                          max_tokens=max_tokens)
        base = self._dataset[n % len(self._dataset)]
        max_tokens = sample_length(out, rng) if out is not None else base.max_tokens
        if not lead:
            return Prompt(text=base.text, messages=base.messages, max_tokens=max_tokens)
        if base.messages is not None:
            first = dict(base.messages[0])
            first["content"] = f"{lead}\n{first.get('content', '')}"
            return Prompt(messages=[first, *base.messages[1:]], max_tokens=max_tokens)
        return Prompt(text=f"{lead}\n{base.text or ''}", max_tokens=max_tokens)

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
