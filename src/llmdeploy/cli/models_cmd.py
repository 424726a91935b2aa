"""`llmdeploy models pull | push | list | inspect | convert | rm`: the host-side model store,
and models as OCI artifacts in a registry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from llmdeploy.cli.options import JsonOpt

if TYPE_CHECKING:
    from llmdeploy.core.model_info import ModelInfo

app = typer.Typer(
    help="Pull, list, inspect and remove models in the local model store.",
    no_args_is_help=True,
)


class RichDownloadProgress:
    """The models.sources Progress protocol as a Rich progress bar on stderr.

    Drawn only when stderr is a terminal, so piped output and ``--json`` stay clean. Sizes and
    speeds use llmdeploy's one byte formatter (binary units).
    """

    def __init__(self) -> None:
        from llmdeploy.cli.console import err

        self._console = err()
        self._bar: Any = None
        self._task: Any = None

    def start(self, total_bytes: int | None, description: str) -> None:
        if not self._console.is_terminal:
            return
        if self._bar is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            from llmdeploy.cli.progress import byte_columns

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                *byte_columns(),
                TimeRemainingColumn(),
                console=self._console,
            )
            self._bar.start()
            self._task = self._bar.add_task(description, total=total_bytes)
        else:  # a restarted transfer
            self._bar.reset(self._task, total=total_bytes, description=description)

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


TlsVerifyOpt = typer.Option(
    "true",
    "--tls-verify",
    metavar="BOOL",
    help="oci:// only: --tls-verify=false allows a plain-HTTP registry or an unverified "
    "certificate (as podman's --tls-verify=false).",
)
CredsEnvOpt = typer.Option(
    None,
    "--creds-env",
    metavar="NAME",
    help="oci:// only: the environment variable holding the registry's user:token (default: "
    "the auth files of Podman and Docker). The value is never printed.",
)


def _registry_access(tls_verify: str, creds_env: str | None):  # type: ignore[no-untyped-def]
    from llmdeploy.core.names import is_env_name
    from llmdeploy.errors import UsageError
    from llmdeploy.models.oci.credentials import RegistryAccess

    value = tls_verify.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise UsageError(f"--tls-verify {tls_verify!r}: use true or false")
    if creds_env is not None and not is_env_name(creds_env):
        raise UsageError(
            f"--creds-env {creds_env!r}: name an environment variable (it holds user:token)"
        )
    return RegistryAccess(tls_verify=value in ("true", "1", "yes"), creds_env=creds_env)


@app.command("pull")
def pull(
    ref: str = typer.Argument(
        ...,
        help="hf://org/repo, hf://org/repo@REV/file.gguf, https://...#sha256=HEX, "
        "oci://registry/repo:tag, file://...",
    ),
    refresh: bool = typer.Option(
        False, "--refresh", help="Check the source again instead of reusing a stored copy."
    ),
    tls_verify: str = TlsVerifyOpt,
    creds_env: str | None = CredsEnvOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Download (or link) a model into the store; a stored, complete copy is reused."""
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.core.model_ref import parse_ref
    from llmdeploy.core.sizes import format_bytes
    from llmdeploy.models.store import ModelStore
    from llmdeploy.paths import model_store_dir

    access = _registry_access(tls_verify, creds_env)
    parsed = parse_ref(ref)
    if parsed.scheme == "ollama":
        message = (
            f"{ref} is pulled by the Ollama server when a deployment starts; "
            "llmdeploy stores nothing for it"
        )
        if as_json:
            print_json({"ref": ref, "stored": False, "reason": message})
        else:
            out().print(message, markup=False, soft_wrap=True)
        return
    stored = ModelStore(model_store_dir()).ensure(
        parsed, progress=RichDownloadProgress(), refresh=refresh, registry=access
    )
    _print_notes(stored.notes)
    if as_json:
        print_json(stored.to_dict())
        return
    state = "already in the store" if stored.reused else "stored"
    unit = "parts" if stored.filename else "files"  # a split GGUF, or a folder's files
    extra = f", {len(stored.files)} {unit}" if len(stored.files) > 1 else ""
    extra += f", commit {stored.revision[:12]}" if stored.revision else ""
    extra += f", {stored.digest[:19]}" if stored.digest else ""
    out().print(
        f"[green]{state}[/green] {stored.ref} ({format_bytes(stored.size_bytes)}{extra})",
        soft_wrap=True,
    )
    out().print(f"  {stored.path}", markup=False, soft_wrap=True)


@app.command("push")
def push(
    source: str = typer.Argument(
        ...,
        help="The model: a .gguf file (the first part of a split one) or a Hugging Face "
        "folder, as a path or a file://, pkg://, or pulled hf:// / https:// / oci:// reference.",
    ),
    target: str = typer.Argument(
        ..., help="Where to push: oci://REGISTRY[:PORT]/REPOSITORY:TAG."
    ),
    name: str | None = typer.Option(
        None, "--name", help="The model's name in the artifact's config (default: the file's)."
    ),
    tls_verify: str = TlsVerifyOpt,
    creds_env: str | None = CredsEnvOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Push a model to a registry as a CNCF ModelPack OCI artifact (Docker Model Runner and
    Kubernetes image volumes read it). The tag moves only once every blob is uploaded."""
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.core.model_ref import parse_ref
    from llmdeploy.core.sizes import format_bytes
    from llmdeploy.models.oci.push import push as push_model
    from llmdeploy.models.oci.push import require_tag
    from llmdeploy.models.store import ModelStore
    from llmdeploy.paths import model_store_dir

    access = _registry_access(tls_verify, creds_env)
    destination = parse_ref(target)
    require_tag(destination)  # before reading (and hashing) the source
    path = ModelStore(model_store_dir()).model_path(source)
    result = push_model(path, destination, access, name=name, progress=RichDownloadProgress())
    _print_notes(result.notes)
    if as_json:
        print_json(result.to_dict())
        return
    out().print(
        f"[green]pushed[/green] {result.reference} ({format_bytes(result.size_bytes)}, "
        f"{len(result.layers)} layers, {format_bytes(result.uploaded_bytes)} uploaded)",
        soft_wrap=True,
    )
    out().print(f"  digest {result.digest}", markup=False, soft_wrap=True)
    for layer in result.layers:
        state = "uploaded" if layer.uploaded else "already there"
        out().print(
            f"  {layer.media_type}  {layer.name}  {format_bytes(layer.size)}  ({state})",
            markup=False,
            soft_wrap=True,
        )


@app.command("list")
def list_models(as_json: bool = JsonOpt) -> None:
    """List the models in the store (unfinished downloads are marked)."""
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.models.store import ModelStore
    from llmdeploy.paths import model_store_dir

    store = ModelStore(model_store_dir())
    entries = store.list()
    if as_json:
        print_json([entry.to_json() for entry in entries])
        return
    if not entries:
        out().print(f"no models in {store.root}")
        return
    from rich.table import Column, Table

    from llmdeploy.core.sizes import format_bytes

    table = Table(Column("ref", overflow="fold"), "size", "version", "state", "entry")
    for entry in entries:
        table.add_row(
            entry.ref,
            format_bytes(entry.size_bytes),
            entry.version[:12],
            "placeholder (Ollama pulls the model itself)"
            if entry.placeholder
            else "complete"
            if entry.complete
            else "[yellow]incomplete[/yellow]",
            entry.name,
        )
    out().print(table)
    out().print(f"[dim]store: {store.root}[/dim]")


@app.command("inspect")
def inspect_model(
    ref_or_path: str = typer.Argument(..., help="A model reference or a file/folder path."),
    as_json: bool = JsonOpt,
) -> None:
    """Show a model's architecture: layers, heads, KV heads, context, quantization, sizes."""
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.models.inspect import inspect_path
    from llmdeploy.models.store import ModelStore
    from llmdeploy.paths import model_store_dir

    path = ModelStore(model_store_dir()).model_path(ref_or_path)
    info = inspect_path(path)
    if as_json:
        print_json({"path": str(path), **info.to_dict()})
        return
    _print_info(path, info, out())


def _print_notes(notes: tuple[str, ...]) -> None:
    """What the user should know about a pulled or converted model, on stderr."""
    from rich.markup import escape

    from llmdeploy.cli.console import err

    for note in notes:
        err().print(f"[yellow]Note:[/yellow] {escape(note)}", soft_wrap=True)


def _print_info(path: Path, info: ModelInfo, console: Any) -> None:
    from rich.table import Table

    from llmdeploy.core.sizes import format_bytes

    def show(value: object) -> str:
        return "?" if value is None else str(value)

    params = f"{info.parameters / 1e6:,.1f} M ({info.parameters:,})" if info.parameters else "?"
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("path", str(path)),
        ("format", info.format),
        ("name", show(info.name)),
        ("architecture", show(info.architecture)),
        ("parameters", params),
        ("layers", show(info.layers)),
        ("attention heads", show(info.attention_heads)),
        ("KV heads", show(info.kv_heads)),
        ("head dim", show(info.head_dim)),
        ("hidden size", show(info.hidden_size)),
        ("context length", show(info.context_length)),
        ("vocab size", show(info.vocab_size)),
        ("quantization", show(info.quantization)),
    ]
    if info.torch_dtype:
        rows.append(("dtype", info.torch_dtype))
    if info.attention is not None:
        rows.append((f"cache per layer ({info.attention.source})", info.attention.summary()))
        rows += [("note", note) for note in info.attention.notes]
    if info.tensor_types:
        rows.append(
            ("tensor types", ", ".join(f"{k} {v:,}" for k, v in info.tensor_types.items()))
        )
    if info.has_chat_template is not None:
        rows.append(("chat template", "yes" if info.has_chat_template else "no"))
    for name, size in info.file_sizes.items():
        rows.append(("file", f"{name}  {format_bytes(size)} ({size:,} bytes)"))
    if len(info.file_sizes) > 1:
        rows.append(("total size", format_bytes(info.total_size_bytes)))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


@app.command("convert")
def convert(
    gguf: str = typer.Argument(
        ..., help="The .gguf file: a path, or a file://, pkg:// or pulled hf:// / https:// ref."
    ),
    out_dir: Path = typer.Argument(..., metavar="OUT", help="The output folder (created)."),
    dtype: str = typer.Option("bfloat16", "--dtype", help="bfloat16, float16 or float32."),
    force: bool = typer.Option(
        False, "--force", help="Convert even when up to date; replace a folder of other files."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Generate a few tokens from the result with transformers."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Convert a GGUF model into a Hugging Face folder (safetensors) that vLLM loads on the CPU.

    Needs torch (CPU), transformers, accelerate, safetensors and gguf. A complete conversion
    of the same file and dtype is reused.
    """
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.errors import UsageError
    from llmdeploy.models.convert_gguf import SUPPORTED_DTYPES, convert_gguf_to_hf
    from llmdeploy.models.store import ModelStore
    from llmdeploy.paths import model_store_dir

    if dtype not in SUPPORTED_DTYPES:
        raise UsageError(f"--dtype {dtype!r}: use one of {', '.join(SUPPORTED_DTYPES)}")
    source = ModelStore(model_store_dir()).model_path(gguf)
    result = convert_gguf_to_hf(source, out_dir, dtype=dtype, force=force, verify=verify)
    _print_notes(result.notes)
    if as_json:
        print_json(result.to_dict())
        return
    state = "up to date" if result.reused else "converted"
    out().print(f"{state}: {result.directory}", markup=False, soft_wrap=True)
    if result.sample is not None:
        out().print(f"verify: {result.sample!r}", markup=False, soft_wrap=True)


@app.command("rm")
def remove(
    ref_or_dir: str = typer.Argument(..., help="A model reference, or an entry directory/name."),
    force: bool = typer.Option(
        False, "--force", help="Remove it even when a deployment mounts it."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Remove a model from the store (a file:// source itself is never touched).

    Only entries llmdeploy made (they carry its manifest) are removed; anything else in the
    store directory is refused and left alone, and so is a model a deployment mounts (unless
    --force: that deployment then cannot restart until `up` places the model again).
    """
    from llmdeploy.cli.console import out, print_json, warn
    from llmdeploy.deploy.discovery import refuse_if_mounted
    from llmdeploy.models.store import ModelStore
    from llmdeploy.paths import model_store_dir

    def guard(folders: list[Path]) -> None:
        for line in refuse_if_mounted(folders):
            warn(line)

    removed = ModelStore(model_store_dir()).remove(ref_or_dir, guard=None if force else guard)
    if as_json:
        print_json({"removed": [str(p) for p in removed]})
        return
    for path in removed:
        out().print(f"removed {path}", markup=False, soft_wrap=True)
