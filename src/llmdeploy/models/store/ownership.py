"""What the store may write into and remove: only entries it made, one writer at a time.

An entry is llmdeploy's when it is a real directory (never a symbolic link) directly inside
the store that carries a manifest or pending marker (``records``); writing into one requires
that marker to name the same reference (or the directory to be new or empty). Removal renames
the entry aside first, so a half-removed entry never looks complete, and deletes links
without following them.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llmdeploy.constants import ENV_MODEL_STORE
from llmdeploy.core.model_ref import ModelRef
from llmdeploy.errors import ModelError
from llmdeploy.models.store.records import LOCKS_DIR, MANIFEST, read_marker

# hidden names llmdeploy itself leaves in an entry (temporary folders, download state)
OWN_HIDDEN = (".import-", ".cache", ".llmdeploy-")


def foreign(entry: Path, what: str) -> ModelError:
    return ModelError(
        f"{entry} is {what}: llmdeploy did not make it, so it is left alone",
        hint="llmdeploy only writes into and removes store entries it made; move it out of "
        "the model store (or delete it yourself if it is yours to delete)",
    )


def store_error(root: Path, what: Path, exc: OSError) -> ModelError:
    return ModelError(
        f"could not place {what} in the model store {root}: {exc}",
        hint=f"set {ENV_MODEL_STORE} to a writable directory with enough space",
    )


def claim(entry: Path, ref: ModelRef) -> None:
    """Refuse to write into ``entry`` unless llmdeploy made it for ``ref`` (or it is
    absent, or empty)."""
    if entry.is_symlink():
        raise foreign(entry, "a symbolic link")
    if not entry.exists():
        return
    if not entry.is_dir():
        raise foreign(entry, "not a directory")
    marker = read_marker(entry)
    if marker is not None:
        if marker.ref != str(ref):
            raise ModelError(
                f"{entry} in the model store holds {marker.ref!r}, not {ref}; "
                "llmdeploy does not write into it",
                hint="remove that entry (llmdeploy models rm) and run again",
            )
        return
    if any(not child.name.startswith(OWN_HIDDEN) for child in entry.iterdir()):
        raise foreign(entry, "without llmdeploy's manifest")


def check_owned(root: Path, entry: Path, ref: str | None) -> None:
    """Refuse ``entry`` unless llmdeploy made it (and for ``ref``, when given)."""
    if entry.is_symlink():
        raise foreign(entry, "a symbolic link")
    if not entry.is_dir():
        raise foreign(entry, "not a directory")
    if entry.parent.resolve() != root.resolve():
        raise foreign(entry, "outside the model store")
    marker = read_marker(entry)
    if marker is None:
        raise foreign(entry, "without llmdeploy's manifest")
    if ref is not None and marker.ref != ref:
        raise ModelError(
            f"{entry} holds {marker.ref!r}, not {ref}; it was left alone",
            hint="remove it by its entry name (llmdeploy models list shows it)",
        )


@contextmanager
def entry_lock(root: Path, entry: Path, *, wait: bool = True) -> Iterator[None]:
    """One writer per entry at a time, across processes (two `up`s of the same model);
    ``wait=False`` refuses at once when another process holds the entry."""
    locks = root / LOCKS_DIR
    locks.mkdir(parents=True, exist_ok=True)
    fd = os.open(locks / f"{entry.name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "r+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ModelError(
                f"{entry} is being written by another llmdeploy process (a download or import)",
                hint="wait for it to finish, then run again",
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replace_dir(new: Path, entry: Path) -> None:
    """Put ``new`` at ``entry``, moving an older entry aside first (a folder cannot be
    replaced by rename while it has contents)."""
    old: Path | None = None
    if entry.exists():
        old = Path(tempfile.mkdtemp(prefix=".old-", dir=entry.parent)) / entry.name
        os.replace(entry, old)
    os.replace(new, entry)
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)


def delete_entries(root: Path, entries: list[Path]) -> list[Path]:
    """Delete ``entries`` (an entry and the folders derived from it) while holding the first
    one's lock; ModelError when another process is writing it. Returns what was removed."""
    removed: list[Path] = []
    with entry_lock(root, entries[0], wait=False):
        for path in entries:
            _delete_entry(root, path)
            removed.append(path)
    return removed


def _delete_entry(root: Path, path: Path) -> None:
    """Rename ``path`` aside inside the store, then delete it (``rmtree`` removes links, it
    never follows them: a hard-linked or linked-to source stays as it is)."""
    trash = root / f".removing-{path.name}-{secrets.token_hex(4)}"
    try:
        os.replace(path, trash)
    except OSError as exc:
        raise ModelError(f"cannot remove {path}: {exc}") from exc
    try:
        shutil.rmtree(trash)
    except OSError as exc:
        raise ModelError(
            f"removed {path} from the store, but deleting its files failed: {exc}",
            hint=f"delete {trash} by hand",
        ) from exc


def remove_placeholder(entry: Path) -> Path:
    """An ollama:// placeholder: an empty directory llmdeploy made (holding at most its
    manifest); never anything more."""
    if entry.is_symlink() or not entry.is_dir():
        raise foreign(entry, "not a directory")
    try:
        manifest = entry / MANIFEST
        if manifest.is_file() and not manifest.is_symlink():
            others = [p for p in entry.iterdir() if p.name != MANIFEST]
            if not others:
                manifest.unlink()
        entry.rmdir()
    except OSError as exc:
        raise ModelError(
            f"{entry} is not empty: llmdeploy leaves ollama:// placeholders empty, so "
            "what is in it was put there by something else; it was left alone",
            hint="look inside and remove it by hand if it is yours to delete",
        ) from exc
    return entry


def glob_escape(name: str) -> str:
    """``name`` with the characters glob patterns treat specially made literal."""
    return re.sub(r"([*?\[])", r"[\1]", name)
