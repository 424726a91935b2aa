"""Typed specification of a benchmark run (what the CLI builds and the report stores).

Parsers of option text (:meth:`LengthDist.parse`, :func:`parse_duration_s`,
:func:`parse_float_list`) raise :class:`~llmdeploy.errors.UsageError` (exit 2).
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmdeploy.errors import UsageError

__all__ = [
    "BenchConfig",
    "LengthDist",
    "LoadSpec",
    "StopSpec",
    "SweepSpec",
    "TargetSpec",
    "WorkloadSpec",
    "parse_duration_s",
    "parse_float_list",
]


MAX_TOKENS = 1_000_000  # the longest prompt or answer a length spec may ask for


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LengthDist(_Model):
    """A token-length distribution: ``fixed``, ``uniform`` [min, max] or clipped ``normal``."""

    kind: Literal["fixed", "uniform", "normal"] = "fixed"
    mean: float = 128
    std: float = 0
    min: int = 1
    max: int = 128

    @classmethod
    def parse(cls, spec: str | int) -> LengthDist:
        """``128`` | ``fixed:128`` | ``uniform:64:256`` | ``normal:MEAN:STD[:MIN:MAX]``."""
        text = str(spec).strip().lower()
        parts = text.split(":")
        try:
            if len(parts) == 1 or parts[0] == "fixed":
                n = int(parts[-1])
                dist = cls(kind="fixed", mean=n, min=n, max=n)
            elif parts[0] == "uniform" and len(parts) == 3:
                lo, hi = int(parts[1]), int(parts[2])
                dist = cls(kind="uniform", mean=(lo + hi) / 2, min=lo, max=hi)
            elif parts[0] == "normal" and len(parts) in (3, 5):
                mean, std = float(parts[1]), float(parts[2])
                lo = int(parts[3]) if len(parts) == 5 else max(1, int(mean - 4 * std))
                hi = int(parts[4]) if len(parts) == 5 else int(mean + 4 * std) + 1
                dist = cls(kind="normal", mean=mean, std=std, min=lo, max=hi)
            else:
                raise ValueError(text)
        except (ValueError, OverflowError) as exc:  # also NaN and infinite numbers
            raise UsageError(
                f"bad token-length spec {spec!r}",
                hint="use N, uniform:MIN:MAX or normal:MEAN:STD[:MIN:MAX]",
            ) from exc
        if dist.min < 1 or dist.max < dist.min or dist.max > MAX_TOKENS:
            raise UsageError(
                f"bad token-length spec {spec!r}: need 1 <= min <= max <= {MAX_TOKENS:,}"
            )
        return dist

    def describe(self) -> str:
        if self.kind == "fixed":
            return str(self.min)
        if self.kind == "uniform":
            return f"uniform:{self.min}:{self.max}"
        return f"normal:{self.mean:g}:{self.std:g}:{self.min}:{self.max}"


ApiSource = Literal["flag", "deployment", "backend", "url", "port", "discovery", "default"]


class TargetSpec(_Model):
    """Where requests go. ``base_url`` is the server root (no ``/v1``).

    ``api_source`` says how the API kind was decided: ``flag`` (``--api``), ``deployment``
    (its labels), ``backend`` (``--backend``'s default), ``url`` (the URL path: ``/v1`` is
    OpenAI's, ``/api`` Ollama's), ``port`` (a guess from Ollama's port 11434), ``discovery``
    (a guess the server's model listing corrected) or ``default``. Guesses (``port``,
    ``default``) are confirmed with the model listing before the first stage.
    ``stream_usage`` asks for the final usage event (OpenAI ``stream_options.include_usage``).
    """

    base_url: str
    api: Literal["openai", "ollama"] = "openai"
    api_source: ApiSource = "default"
    endpoint: Literal["chat", "completions"] = "chat"
    api_prefix: str = "/v1"
    model: str | None = None
    stream: bool = True
    stream_usage: bool = True
    metrics_path: str | None = "/metrics"
    backend: str | None = None
    profile: str | None = None
    api_key: str | None = Field(default=None, exclude=True)  # never written to a report


class WorkloadSpec(_Model):
    """What each request asks for.

    ``seed`` fixes lengths, prompt words, dataset order and arrival times. ``unique_prompts``
    (default): every request starts with words of its own, derived from its number in the run
    and ``prompt_nonce`` (random per run unless set; the report records it), so no request is
    served from the cached prefix of another request of this run or of an earlier run; off,
    request *i* of every stage (and every run with the same seed) sends the same prompt.
    ``shared_prefix_tokens``: every prompt starts with the same seeded text of about that many
    tokens (like a shared system prompt), which a prefix cache may serve; with ``prefixes`` N
    there are N such texts and request *n* starts with text *n mod N* (interleaved).

    ``turns`` > 1: multi-turn conversations; each next turn is sent ``think_time_s`` after the
    previous answer arrived and resends the whole history (the answers as the server gave
    them). ``kind="trace"``: replay ``trace_path`` (``trace_format`` ``mooncake`` or
    ``burstgpt``): arrival offsets and lengths from the trace, only the entries in
    [``trace_start_s``, ``trace_start_s`` + ``trace_duration_s``) of trace time (the speed
    is the ``trace`` stage's :class:`LoadSpec` value; see :mod:`llmdeploy.bench.traces`)."""

    kind: Literal["synthetic", "dataset", "prompt", "trace"] = "synthetic"
    input_tokens: LengthDist = Field(default_factory=lambda: LengthDist.parse(128))
    output_tokens: LengthDist | None = Field(default_factory=lambda: LengthDist.parse(128))
    dataset_path: str | None = None
    dataset_shuffle: bool = True
    prompt: str | None = None
    ignore_eos: bool = True
    unique_prompts: bool = True
    prompt_nonce: int | None = Field(default=None, ge=0)
    shared_prefix_tokens: int = Field(default=0, ge=0)
    prefixes: int = Field(default=1, ge=1)
    turns: int = Field(default=1, ge=1)
    think_time_s: float = Field(default=0.0, ge=0)
    trace_path: str | None = None
    trace_format: Literal["mooncake", "burstgpt"] | None = None
    trace_start_s: float = Field(default=0.0, ge=0)
    trace_duration_s: float | None = Field(default=None, gt=0)
    seed: int = 0
    extra_body: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> WorkloadSpec:
        if self.kind == "dataset" and not self.dataset_path:
            raise ValueError("a dataset workload needs dataset_path")
        if self.kind == "prompt" and not self.prompt:
            raise ValueError("a prompt workload needs prompt")
        if self.kind == "trace" and not (self.trace_path and self.trace_format):
            raise ValueError("a trace workload needs trace_path and trace_format")
        if self.kind == "trace" and self.turns > 1:
            raise ValueError("a trace replay has no conversations (turns must be 1)")
        return self


class LoadSpec(_Model):
    """One stage's load: N concurrent streams, R requests/s (constant or Poisson), or the
    replay of a trace's own arrival times (``trace``; ``value`` is the speed factor).
    With multi-turn conversations, N and R count conversations."""

    mode: Literal["concurrency", "rate", "trace"]
    value: float = Field(gt=0)
    arrivals: Literal["constant", "poisson"] = "constant"
    max_concurrency: int | None = Field(default=None, ge=1)

    @property
    def name(self) -> str:
        if self.mode == "concurrency":
            return f"concurrency={int(self.value)}"
        if self.mode == "trace":
            return f"trace x{self.value:g}"
        return f"rate={self.value:g}/s {self.arrivals}"


class SweepSpec(_Model):
    """Automatic sweep: c=1, then c=max_concurrency, then ``steps`` rates in between."""

    max_concurrency: int = Field(default=32, ge=1)
    steps: int = Field(default=4, ge=0)
    arrivals: Literal["constant", "poisson"] = "poisson"


class StopSpec(_Model):
    requests: int | None = Field(default=None, ge=1)
    duration_s: float | None = Field(default=None, gt=0)
    warmup_requests: int = Field(default=0, ge=0)
    timeout_s: float = Field(default=120.0, gt=0)

    @model_validator(mode="after")
    def _default(self) -> StopSpec:
        if self.requests is None and self.duration_s is None:
            self.requests = 100
        return self


class BenchConfig(_Model):
    target: TargetSpec
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    stages: list[LoadSpec] = Field(default_factory=list)
    sweep: SweepSpec | None = None
    stop: StopSpec = Field(default_factory=StopSpec)
    slo: dict[str, float] = Field(default_factory=dict)
    fail_on: list[str] = Field(default_factory=list)
    scrape_metrics: bool = True
    metrics_interval_s: float = 2.0
    workers: int | None = Field(default=None, ge=1)  # client processes; None: automatic

    @model_validator(mode="after")
    def _stages(self) -> BenchConfig:
        if not self.stages and self.sweep is None:
            self.stages = [LoadSpec(mode="concurrency", value=1)]
        return self


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration_s(text: str) -> float:
    """``60`` / ``60s`` / ``500ms`` / ``2m`` / ``1h`` -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"bad duration {text!r}", hint="use e.g. 30s, 500ms, 2m")
    value = float(m.group(1))
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2) or "s"]
    return value * scale


def parse_float_list(text: str, what: str, *, integer: bool = False) -> list[float]:
    """``1,4,16`` -> [1.0, 4.0, 16.0]; every value finite and > 0 (whole numbers with
    ``integer``)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise UsageError(f"bad {what} list {text!r}", hint="use e.g. 1,4,16") from exc
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        raise UsageError(f"bad {what} list {text!r}: values must be finite and > 0")
    if integer and any(v != int(v) for v in values):
        raise UsageError(f"bad {what} list {text!r}: values must be whole numbers")
    return values
