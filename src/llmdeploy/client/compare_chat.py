"""Send one prompt to several targets and keep what each answered and how fast.

Fairness: every target gets the same messages and the same :class:`~llmdeploy.client.chat.Sampling`
(the command defaults ``temperature`` to 0 for a comparison). The requests start together
(one thread per target, released by one barrier) unless ``sequential``: then one after
another, in an order shuffled by ``random.Random(order_seed)``, so no target always goes
first (a warm cache or a busy CPU would favour one). The result records the mode, the seed and
the order sent, and every per-request timestamp; every figure derives from those timestamps:

- TTFT: first content chunk - request sent;
- E2E: end of the stream - request sent;
- decode rate (tokens/s): ``(completion_tokens - 1) / (last content chunk - first content
  chunk)``, the tokens generated after the first one over the time they took, i.e. 1/TPOT
  as vLLM's benchmark defines TPOT. It needs the server's ``usage.completion_tokens``: where
  the server reported none it is None ("not reported"), never a guess from chunk counts.

A target that fails keeps its error (an :class:`~llmdeploy.errors.LlmdeployError`) in its
result; the others still answer.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field

from llmdeploy.client.chat import ChatUsage, Message, Sampling, messages_for, stream_messages
from llmdeploy.client.chat_targets import ChatTarget
from llmdeploy.errors import EndpointError, LlmdeployError


@dataclass
class TargetResult:
    """One target's answer. Times are ``time.perf_counter()`` seconds; ``None`` where the
    event did not happen (no first token)."""

    target: ChatTarget
    sent_at: float
    first_token_at: float | None = None
    last_token_at: float | None = None
    ended_at: float = 0.0
    content: str = ""
    chunks: int = 0  # content chunks received (not tokens: a chunk may hold several)
    usage: ChatUsage = field(default_factory=ChatUsage)
    error: LlmdeployError | None = None
    position: int = 1  # 1-based place in the sending order (concurrent: all 1)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def ttft_ms(self) -> float | None:
        if self.first_token_at is None:
            return None
        return (self.first_token_at - self.sent_at) * 1000

    @property
    def e2e_ms(self) -> float:
        return (self.ended_at - self.sent_at) * 1000

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Tokens after the first / time after the first (see the module docstring); None
        without reported completion tokens, with fewer than 2, or with no time between."""
        tokens = self.usage.completion_tokens
        if tokens is None or tokens < 2 or self.first_token_at is None:
            return None
        assert self.last_token_at is not None
        span = self.last_token_at - self.first_token_at
        return (tokens - 1) / span if span > 0 else None


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare` did: the settings, the mode and order, one result per target
    (in the targets' order, not the order sent)."""

    prompt: str
    system: str | None
    sampling: Sampling
    sequential: bool
    order_seed: int | None  # the seed of the shuffled order (sequential only)
    results: tuple[TargetResult, ...]
    started_at: float
    ended_at: float

    @property
    def order(self) -> list[str]:
        """Labels in the order the requests were sent (concurrent: the targets' order)."""
        ranked = sorted(self.results, key=lambda r: r.position)
        return [r.target.label for r in ranked]

    @property
    def failed(self) -> list[TargetResult]:
        return [r for r in self.results if not r.ok]


def ask(
    target: ChatTarget,
    messages: Sequence[Message],
    sampling: Sampling,
    *,
    on_text: Callable[[str], None] | None = None,
    timeout_s: float = 300.0,
    clock: Callable[[], float] = time.perf_counter,
) -> TargetResult:
    """Stream one answer from ``target``, stamping each event with ``clock``.

    Endpoint failures (and an answer without any text) end up in ``result.error``; anything
    else, KeyboardInterrupt included, propagates, after the connection is closed."""
    result = TargetResult(target=target, sent_at=clock())
    pieces: list[str] = []
    try:
        stream = stream_messages(
            target.base_url, target.model, messages, sampling=sampling,
            api_key=target.api_key, timeout_s=timeout_s, usage=result.usage,
        )  # fmt: skip
        with closing(stream):
            for piece in stream:
                now = clock()
                if result.first_token_at is None:
                    result.first_token_at = now
                result.last_token_at = now
                result.chunks += 1
                pieces.append(piece)
                if on_text is not None:
                    on_text(piece)
        if not pieces:
            reported = result.usage.completion_tokens
            raise EndpointError(
                f"{target.base_url} answered without any text (model {target.model!r}, "
                f"{reported if reported is not None else 'no'} completion tokens reported)",
                hint="check `llmdeploy logs` for the server's side; a chat template that renders "
                "nothing or a server out of memory answer like this",
            )
    except LlmdeployError as exc:
        result.error = exc
    finally:
        result.ended_at = clock()
        result.content = "".join(pieces)
    return result


def sending_order(count: int, seed: int) -> list[int]:
    """Indexes ``0..count-1`` shuffled by ``random.Random(seed)`` (the same seed, the same
    order)."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return order


def compare(
    targets: Sequence[ChatTarget],
    prompt: str,
    sampling: Sampling,
    *,
    system: str | None = None,
    sequential: bool = False,
    order_seed: int | None = None,
    timeout_s: float = 300.0,
    on_done: Callable[[TargetResult], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Comparison:
    """Ask every target ``prompt`` with the same ``sampling``; see the module docstring.

    Concurrent (default): one daemon thread per target, all released by one barrier, so the
    requests leave together; Ctrl-C in the caller is not held up by them. ``sequential``
    needs ``order_seed``. ``on_done`` is called (from the target's thread) as each finishes."""
    if sequential and order_seed is None:
        raise ValueError("a sequential comparison needs order_seed")
    messages = messages_for(prompt, system)
    slots: list[TargetResult | BaseException | None] = [None] * len(targets)

    def run(index: int, gate: threading.Barrier | None, position: int) -> None:
        try:
            if gate is not None:
                gate.wait()
            result = ask(targets[index], messages, sampling, timeout_s=timeout_s, clock=clock)
            result.position = position
            slots[index] = result
            if on_done is not None:
                on_done(result)
        except BaseException as exc:  # handed to the caller's thread below
            slots[index] = exc

    started = clock()
    if sequential:
        assert order_seed is not None
        for position, index in enumerate(sending_order(len(targets), order_seed), start=1):
            run(index, None, position)
            _raise_unexpected(slots[index])
    else:
        gate = threading.Barrier(len(targets))
        threads = [
            threading.Thread(target=run, args=(i, gate, 1), daemon=True, name=f"chat-{i}")
            for i in range(len(targets))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():  # a join with a timeout lets Ctrl-C through
                thread.join(0.2)
    results: list[TargetResult] = []
    for slot in slots:
        _raise_unexpected(slot)
        assert isinstance(slot, TargetResult)
        results.append(slot)
    return Comparison(
        prompt=prompt, system=system, sampling=sampling, sequential=sequential,
        order_seed=order_seed if sequential else None, results=tuple(results),
        started_at=started, ended_at=clock(),
    )  # fmt: skip


def _raise_unexpected(slot: TargetResult | BaseException | None) -> None:
    if isinstance(slot, BaseException):
        raise slot
