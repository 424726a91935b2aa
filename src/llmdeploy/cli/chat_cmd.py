"""`llmdeploy chat`: one prompt to one target or to several side by side, or an interactive
session. The options are read here; ``cli/chat_flow.py`` does the rest (imported when the
command runs)."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand

from llmdeploy.cli.options import JsonOpt, ProfileOpt

# the target options whose order on the command line matters (an --api-key-env or --model
# belongs to the --url before it): recorded by ChatCommand under this ctx.meta key
ORDER_KEY = "llmdeploy.chat.option_order"
ORDERED = {"deployment": "deployment", "url": "url", "api_key_env": "api_key_env", "model": "model"}


class ChatCommand(TyperCommand):
    """The ``chat`` command, which also keeps the order of its target options.

    Click collects a repeated option into one list per option and forgets how the options
    were interleaved. Before the usual parsing, this runs the command's own click parser
    once more over the same arguments: its third result lists the parameters in the order
    they appeared, one entry per occurrence, which with the per-option value lists gives
    ``[(kind, value), ...]`` in command-line order (``ctx.meta[ORDER_KEY]``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            opts, _, order = self.make_parser(ctx).parse_args(args=list(args))
        except Exception:  # the real parse below reports the same error, properly
            opts, order = {}, []
        remaining = {name: list(opts.get(name) or []) for name in ORDERED}
        tokens: list[tuple[str, str]] = []
        for param in order:
            name = getattr(param, "name", None)
            if name is not None and remaining.get(name):
                tokens.append((ORDERED[name], str(remaining[name].pop(0))))
        ctx.meta[ORDER_KEY] = tokens
        return list(super().parse_args(ctx, args))


def chat(
    ctx: typer.Context,
    prompt: str | None = typer.Argument(
        None,
        help="What to ask. Without it: an interactive session on a terminal, else the prompt "
        "is read from stdin.",
    ),
    deployment: list[str] | None = typer.Option(
        None,
        "--deployment",
        "--deployments",
        "-d",
        metavar="NAME",
        help="A running deployment; repeat it or give a comma list (a,b) to compare.",
    ),
    profile: str | None = ProfileOpt,
    url: list[str] | None = typer.Option(
        None,
        "--url",
        metavar="URL",
        help="An OpenAI-compatible base URL (…/v1; a server root gets /v1). Repeat to compare.",
    ),
    api_key_env: list[str] | None = typer.Option(
        None,
        "--api-key-env",
        metavar="VAR",
        help="Send the key in environment variable VAR, for the --url just before it (before "
        "any --url: for every target). The key is never printed.",
    ),
    model: list[str] | None = typer.Option(
        None,
        "--model",
        "-m",
        metavar="NAME",
        help="Model name, for the --url just before it (before any --url: for every target). "
        "Default: the deployment's, or the first the server lists.",
    ),
    system: str | None = typer.Option(None, "--system", help="System prompt."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Upper bound on the reply."),
    temperature: float | None = typer.Option(
        None, "--temperature", min=0.0, help="Default: 0 when comparing, else the server's."
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        help="Sampling seed sent to every target; with --sequential it also shuffles the order.",
    ),
    sequential: bool = typer.Option(
        False,
        "--sequential",
        help="Compare one target at a time, in a shuffled order, instead of all at once.",
    ),
    timeout_s: float = typer.Option(
        300.0, "--timeout", min=1.0, help="Seconds to wait for each answer."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Chat with deployments or OpenAI-compatible URLs: one, several side by side, or a session.

    One prompt to several targets shows their answers side by side with TTFT, tokens/s and
    token counts. No prompt on a terminal opens an interactive session (/help inside).
    """
    from llmdeploy.cli.chat_flow import ChatRequest, run_chat

    run_chat(
        ChatRequest(
            prompt=prompt,
            tokens=ctx.meta.get(ORDER_KEY) or unordered(deployment, url, api_key_env, model),
            profile=profile,
            system=system,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            sequential=sequential,
            timeout_s=timeout_s,
            as_json=as_json,
        )
    )


def unordered(
    deployments: list[str] | None,
    urls: list[str] | None,
    keys: list[str] | None,
    models: list[str] | None,
) -> list[tuple[str, str]]:
    """The target options without their order (a command built without ChatCommand): keys
    and models apply to every target, as they did before several targets existed."""
    return [
        *(("api_key_env", v) for v in keys or []),
        *(("model", v) for v in models or []),
        *(("deployment", v) for v in deployments or []),
        *(("url", v) for v in urls or []),
    ]


chat.command_class = ChatCommand  # type: ignore[attr-defined]  # read by cli/commands.build
