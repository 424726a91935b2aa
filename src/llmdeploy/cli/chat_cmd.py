"""`llmdeploy chat PROMPT`: stream a reply from a running deployment."""

from __future__ import annotations

import typer

from llmdeploy.cli.options import DeploymentOpt, JsonOpt, ProfileOpt


def chat(
    prompt: str = typer.Argument(..., help="What to ask"),
    deployment: str | None = DeploymentOpt,
    profile: str | None = ProfileOpt,
    url: str | None = typer.Option(None, "--url", help="OpenAI-compatible base URL (…/v1)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model name at --url."),
    system: str | None = typer.Option(None, "--system", help="System prompt."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Upper bound on the reply."),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="Read a bearer token from this environment variable."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Stream an answer from the running deployment through its OpenAI API."""
    import os
    import sys
    import time

    from llmdeploy.cli.console import print_json
    from llmdeploy.client.chat import ChatUsage, stream_chat

    if url is None:
        from llmdeploy.deploy.discovery import find_deployment

        target = find_deployment(name=deployment, profile=profile)
        base_url = target.api_base_url
        model = model or target.served_model
    else:
        base_url = url
        model = model or "default"
    api_key = os.environ.get(api_key_env) if api_key_env else None
    if api_key_env and not api_key:
        from llmdeploy.errors import UsageError

        raise UsageError(
            f"--api-key-env {api_key_env}: that variable is not set",
            hint=f"export {api_key_env}=... (the key itself is never printed)",
        )
    usage = ChatUsage()
    started = time.monotonic()
    first: float | None = None
    pieces = []
    for piece in stream_chat(
        base_url,
        model,
        prompt,
        system=system,
        max_tokens=max_tokens,
        temperature=temperature,
        api_key=api_key,
        usage=usage,
    ):
        if first is None:
            first = time.monotonic()
        pieces.append(piece)
        if not as_json:
            sys.stdout.write(piece)
            sys.stdout.flush()
    total = time.monotonic() - started
    if not pieces:
        from llmdeploy.errors import EndpointError

        raise EndpointError(
            f"{base_url} answered without any text (model {model!r}, "
            f"{usage.completion_tokens or 0} completion tokens reported)",
            hint="check `llmdeploy logs` for the server's side; a chat template that renders "
            "nothing or a server out of memory answer like this",
        )
    if as_json:
        print_json(
            {
                "model": model,
                "content": "".join(pieces),
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "ttft_s": round(first - started, 4) if first else None,
                "elapsed_s": round(total, 4),
            }
        )
        return
    sys.stdout.write("\n")
    from llmdeploy.cli.console import err

    if usage.completion_tokens:
        rate = usage.completion_tokens / total if total > 0 else 0
        err().print(
            f"[dim]{usage.completion_tokens} tokens in {total:.2f} s ({rate:.1f} tok/s)[/dim]"
        )
