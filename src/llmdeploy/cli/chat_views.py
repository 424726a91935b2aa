"""How ``chat`` shows answers: pure functions from results to Rich renderables, text and JSON.

Side by side: one column per target when the terminal gives each at least
:data:`MIN_COLUMN_WIDTH` characters (``(width - LABEL_WIDTH) / targets``), else one target
after another. Both show, per target, TTFT, the decode rate (tokens/s), the prompt and
completion tokens the server reported ("not reported" where it sent no usage), the finish
reason and the end-to-end time, under a line stating the sampling settings and the order in
which the requests were sent.
"""

from __future__ import annotations

from typing import Any, Literal

from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from llmdeploy.client.compare_chat import Comparison, TargetResult

MIN_COLUMN_WIDTH = 40  # characters of answer per target before the columns stack up
LABEL_WIDTH = 20  # the metric names' column and the table's borders
NOT_REPORTED = "not reported"
RATE_NOTE = (
    "tokens/s: decode rate = (completion tokens - 1) / (last token - first token); "
    "TTFT and E2E from the request's send time"
)


def layout_for(width: int, targets: int) -> Literal["columns", "stacked"]:
    """``columns`` when each target gets at least MIN_COLUMN_WIDTH characters."""
    return "columns" if (width - LABEL_WIDTH) // max(targets, 1) >= MIN_COLUMN_WIDTH else "stacked"


def _count(value: int | None) -> str:
    return NOT_REPORTED if value is None else str(value)


def metrics(result: TargetResult) -> list[tuple[str, str]]:
    """(name, value) rows for one target, in the order every view shows them."""
    ttft = result.ttft_ms
    rate = result.decode_tokens_per_s
    if rate is not None:
        rate_text = f"{rate:.1f}"
    elif result.usage.completion_tokens is None:
        rate_text = NOT_REPORTED  # no completion tokens from the server: nothing to divide
    else:
        rate_text = "n/a (under 2 tokens)"
    return [
        ("TTFT", f"{ttft:.0f} ms" if ttft is not None else "no token"),
        ("tokens/s", rate_text),
        ("prompt tokens", _count(result.usage.prompt_tokens)),
        ("completion tokens", _count(result.usage.completion_tokens)),
        ("finish", result.usage.finish_reason or NOT_REPORTED),
        ("E2E", f"{result.e2e_ms / 1000:.2f} s"),
    ]


def settings_line(comparison: Comparison) -> str:
    """What every target got and how the requests were sent, in one sentence."""
    sampling = comparison.sampling
    seed = "not set" if sampling.seed is None else str(sampling.seed)
    parts = [
        f"Same prompt to {len(comparison.results)} targets",
        f"temperature {sampling.temperature:g}" if sampling.temperature is not None
        else "temperature: server default",
        f"max_tokens {sampling.max_tokens}",
        f"seed {seed}",
    ]  # fmt: skip
    if comparison.system:
        parts.append("same system prompt")
    if comparison.sequential:
        order = " → ".join(comparison.order)
        sent = f"sent one at a time in shuffled order {order} (order seed {comparison.order_seed})"
    else:
        sent = "sent concurrently (all requests started together)"
    return ", ".join(parts) + "; " + sent + "."


def _answer(result: TargetResult) -> Text:
    text = Text(result.content)
    if result.error is not None:
        if result.content:
            text.append("\n")
        text.append_text(Text.from_markup(f"[red]error:[/red] {escape(result.error.message)}"))
    return text


def _title(result: TargetResult) -> str:
    target = result.target
    return f"{target.label} · {target.model}"


def render_comparison(comparison: Comparison, width: int) -> RenderableType:
    """The side-by-side view for a terminal ``width`` characters wide."""
    results = comparison.results
    head = Text(settings_line(comparison), style="bold")
    foot = Text(RATE_NOTE, style="dim")
    if layout_for(width, len(results)) == "columns":
        table = Table(box=box.ROUNDED, expand=True)  # equal columns (ratio 1)
        table.add_column("", style="dim", no_wrap=True)
        for result in results:
            table.add_column(_title(result), overflow="fold", ratio=1)
        table.add_row("answer", *(_answer(r) for r in results), end_section=True)
        rows = [metrics(r) for r in results]
        for index, (name, _) in enumerate(rows[0]):
            table.add_row(name, *(row[index][1] for row in rows))
        return Group(head, table, foot)
    parts: list[RenderableType] = [head]
    for result in results:
        parts.append(Text(""))
        parts.append(Rule(_title(result), align="left"))
        parts.append(_answer(result))
        parts.append(Text(" · ".join(f"{k} {v}" for k, v in metrics(result)), style="dim"))
    parts.extend([Text(""), foot])
    return Group(*parts)


def stats_line(result: TargetResult) -> str:
    """One line after an answer: tokens, TTFT, decode rate, finish reason (plain text)."""
    values = dict(metrics(result))
    tokens = result.usage.completion_tokens
    counted = f"{tokens} tokens" if tokens is not None else "tokens not reported"
    rate = values["tokens/s"]
    rate_part = f"{rate} tok/s" if result.decode_tokens_per_s is not None else f"tok/s {rate}"
    return (
        f"{counted} · TTFT {values['TTFT']} · {rate_part} · prompt {values['prompt tokens']}"
        f" · finish {values['finish']} · {values['E2E']}"
    )


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def result_json(result: TargetResult, comparison: Comparison | None = None) -> dict[str, Any]:
    """One target's result for scripts; the key is named by its variable, never shown."""
    target = result.target
    error = result.error
    data: dict[str, Any] = {
        "target": target.label,
        "kind": target.kind,
        "url": target.base_url,
        "model": target.model,
        "model_source": target.model_source,
        "api_key_env": target.api_key_env,
        "ok": error is None,
        "content": result.content,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "usage_reported": result.usage.completion_tokens is not None,
        "finish_reason": result.usage.finish_reason,
        "ttft_ms": _round(result.ttft_ms, 2),
        "e2e_ms": round(result.e2e_ms, 2),
        "decode_tokens_per_s": _round(result.decode_tokens_per_s, 2),
        "content_chunks": result.chunks,
        "error": None if error is None else {
            "message": error.message, "exit_code": error.exit_code, "hint": error.hint,
        },
    }  # fmt: skip
    if comparison is not None:
        sampling = comparison.sampling
        data["sent_offset_ms"] = round((result.sent_at - comparison.started_at) * 1000, 2)
        data["position"] = result.position
        data["settings"] = {
            "temperature": sampling.temperature,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed,
            "mode": "sequential" if comparison.sequential else "concurrent",
            "order": comparison.order,
            "order_seed": comparison.order_seed,
        }
    return data


def comparison_json(comparison: Comparison) -> list[dict[str, Any]]:
    """``chat --json`` with several targets: one object per target, in the targets' order."""
    return [result_json(r, comparison) for r in comparison.results]


def single_json(result: TargetResult) -> dict[str, Any]:
    """``chat --json`` with one target: the object ``chat`` always printed (model, content,
    prompt_tokens, completion_tokens, ttft_s, elapsed_s), then the newer fields of
    :func:`result_json` (``ok`` and ``error`` included: a failure is printed too)."""
    ttft = result.ttft_ms
    return {
        "model": result.target.model,
        "content": result.content,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "ttft_s": round(ttft / 1000, 4) if ttft is not None else None,
        "elapsed_s": round(result.e2e_ms / 1000, 4),
        **{k: v for k, v in result_json(result).items() if k not in ("model", "content",
           "prompt_tokens", "completion_tokens")},
    }  # fmt: skip
