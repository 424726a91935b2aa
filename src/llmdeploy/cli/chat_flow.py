"""What ``llmdeploy chat`` does with its options: resolve the targets, then one of three
modes.

- one target and a prompt: stream the answer to stdout as it arrives (stats on stderr);
  ``--json`` prints one object (the shape ``chat`` always had, plus fields);
- several targets: the same prompt to each (``client/compare_chat.py``), then the answers
  side by side (``cli/chat_views.py``); ``--json`` prints a list, one object per target;
- one target, no prompt, stdin a terminal: an interactive session (``cli/chat_repl.py``).
  With no prompt and stdin not a terminal, the prompt is read from stdin (one-shot), so
  ``echo question | llmdeploy chat`` works in scripts.

Exit status: 0 when every target answered; otherwise the failure's (``EndpointError``, 7)
after every answer that did come has been shown.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass

from rich.markup import escape

from llmdeploy.cli.console import err, out, print_json, write
from llmdeploy.client.chat import Sampling, list_models, messages_for
from llmdeploy.client.chat_targets import (
    ChatTarget,
    FoundDeployment,
    OptionToken,
    PairedOptions,
    TargetRequest,
    pair_options,
    resolve_targets,
)
from llmdeploy.client.compare_chat import TargetResult, ask, compare
from llmdeploy.errors import EndpointError, UsageError


@dataclass(frozen=True)
class ChatRequest:
    """The ``chat`` options, as typed (``tokens``: the target options in command-line order)."""

    prompt: str | None
    tokens: list[tuple[str, str]]
    profile: str | None = None
    system: str | None = None
    max_tokens: int = 256
    temperature: float | None = None
    seed: int | None = None
    sequential: bool = False
    timeout_s: float = 300.0
    as_json: bool = False


def run_chat(request: ChatRequest) -> None:
    """Run ``chat``; raises UsageError (exit 2) for a bad combination, EndpointError (exit 7)
    when a target failed, DeploymentNotFoundError (exit 6) for a deployment not running."""
    paired = pair_options([OptionToken(kind, value) for kind, value in request.tokens])  # type: ignore[arg-type]
    if not paired.targets:  # no -d, no --url: the one running deployment (of --profile)
        paired = PairedOptions(
            (TargetRequest("deployment", ""),), paired.api_key_env, paired.model
        )
    prompt = request.prompt
    if prompt is not None and not prompt.strip():
        raise UsageError(
            "the prompt is empty",
            hint="give a question, or no prompt at all for an interactive chat",
        )
    interactive = prompt is None and sys.stdin.isatty()
    if interactive and len(paired.targets) > 1:
        raise UsageError(
            "an interactive chat talks to one target",
            hint="give a prompt to compare several: chat -d a,b \"question\"",
        )
    if interactive and request.as_json:
        raise UsageError("--json needs a prompt (an interactive chat has no JSON output)")
    if prompt is None and not interactive:
        prompt = sys.stdin.read().strip()
        if not prompt:
            raise UsageError(
                "no prompt: give one as an argument or on stdin",
                hint="a terminal without a prompt opens an interactive chat",
            )
    targets = resolve_targets(
        paired,
        find_running(paired, request.profile),
        os.environ,
        lambda base_url, key: list_models(base_url, api_key=key),
    )
    if interactive:
        from llmdeploy.cli.chat_repl import run_session
        from llmdeploy.client.chat_session import ChatSession

        sampling = Sampling(request.max_tokens, request.temperature, request.seed)
        run_session(ChatSession(targets[0], sampling, system=request.system,
                                timeout_s=request.timeout_s))  # fmt: skip
        return
    assert prompt is not None
    if len(targets) == 1:
        one_shot(targets[0], prompt, request)
    else:
        side_by_side(targets, prompt, request)


def find_running(paired: PairedOptions, profile: str | None) -> dict[str, FoundDeployment]:
    """Each named deployment (``""``: the only one running) as plain data."""
    names = [t.value for t in paired.targets if t.kind == "deployment"]
    if not names:
        return {}
    from llmdeploy.deploy.discovery import find_deployments

    found = find_deployments([name or None for name in names], profile=profile)
    return {
        name: FoundDeployment(ep.deployment, ep.api_base_url, ep.served_model)
        for name, ep in zip(names, found, strict=True)
    }


def one_shot(target: ChatTarget, prompt: str, request: ChatRequest) -> None:
    """Stream one answer to stdout (or print ``--json``); the stats line goes to stderr."""
    from llmdeploy.cli.chat_views import single_json, stats_line

    sampling = Sampling(request.max_tokens, request.temperature, request.seed)
    result = ask(
        target, messages_for(prompt, request.system), sampling,
        on_text=None if request.as_json else write, timeout_s=request.timeout_s,
    )  # fmt: skip
    if result.content and not request.as_json:
        write("\n")
    if request.as_json:  # a failure too: scripts read `ok` and `error`, the exit code says it
        print_json(single_json(result))
    if result.error is not None:
        raise result.error
    if request.as_json:
        return
    err().print(f"[dim]{stats_line(result)}[/dim]", soft_wrap=True)


def side_by_side(targets: list[ChatTarget], prompt: str, request: ChatRequest) -> None:
    """The same prompt to every target, then the answers side by side (or ``--json``)."""
    from llmdeploy.cli.chat_views import comparison_json, render_comparison

    temperature = 0.0 if request.temperature is None else request.temperature
    sampling = Sampling(request.max_tokens, temperature, request.seed)
    order_seed = None
    if request.sequential:
        order_seed = request.seed
        if order_seed is None:  # a fresh order each run, shown so it can be repeated
            order_seed = random.SystemRandom().randrange(2**31)
    console = err()
    show_progress = console.is_terminal and not request.as_json

    def done(result: TargetResult) -> None:
        if show_progress:
            state = "answered" if result.ok else "[red]failed[/red]"
            seconds = result.e2e_ms / 1000
            console.print(f"[dim]{escape(result.target.label)}: {state} in {seconds:.2f} s[/dim]")

    if show_progress:
        how = "one at a time" if request.sequential else "all at once"
        console.print(f"[dim]asking {len(targets)} targets {how}…[/dim]")
    comparison = compare(
        targets, prompt, sampling, system=request.system, sequential=request.sequential,
        order_seed=order_seed, timeout_s=request.timeout_s, on_done=done,
    )  # fmt: skip
    if request.as_json:
        print_json(comparison_json(comparison))
    else:
        screen = out()
        screen.print(render_comparison(comparison, screen.width))
    failed = comparison.failed
    if failed:
        first = failed[0].error
        assert first is not None
        raise EndpointError(
            f"{len(failed)} of {len(targets)} targets failed: "
            + "; ".join(f"{r.target.label}: {r.error}" for r in failed),
            hint=first.hint or "the other targets' answers are shown above",
        )
