"""The OCI annotations of a built image: where it comes from and what it serves.

Keys: the OCI image-spec's pre-defined annotations (image-spec ``annotations.md``:
``org.opencontainers.image.source``, ``.revision``, ``.created`` (RFC 3339), ``.version``,
``.title``), set as image labels, plus llmdeploy's own ``io.llmdeploy.*`` (backend,
accelerator, profile, model reference, baked or not). Never the weights, never a secret: a
URL's user-info (``https://user:token@host/…``) and query string are dropped before it
becomes a label, and no environment variable's value is read except the CI systems'
well-known, public ones.

Source and revision: the CI system's variables when set (GitHub Actions: ``GITHUB_SERVER_URL``
/ ``GITHUB_REPOSITORY`` / ``GITHUB_SHA``; GitLab CI: ``CI_PROJECT_URL`` / ``CI_COMMIT_SHA``),
else the git checkout the profile lives in (``git remote get-url origin``, ``git rev-parse
HEAD``; git is run as a program, read-only, and its absence is fine).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from llmdeploy.constants import (
    LABEL_ACCELERATOR,
    LABEL_BACKEND,
    LABEL_BAKED,
    LABEL_BUILT_BY,
    LABEL_MODEL,
    LABEL_PROFILE,
    LABEL_SERVED_MODEL,
)
from llmdeploy.core.model_ref import ModelRef

OCI = "org.opencontainers.image"


@dataclass(frozen=True)
class Provenance:
    """Where an image comes from: the source repository URL, the commit, the build time."""

    source: str | None
    revision: str | None
    created: str  # RFC 3339, UTC

    @classmethod
    def detect(
        cls,
        directory: Path | None,
        environ: Mapping[str, str],
        *,
        source: str | None = None,
        revision: str | None = None,
        now: datetime | None = None,
    ) -> Provenance:
        """``source`` / ``revision`` when given, else the CI's variables, else git's answer."""
        moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        created = moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
        ci_source, ci_revision = _from_ci(environ)
        found_source = source or ci_source or _git(directory, "remote", "get-url", "origin")
        found_revision = revision or ci_revision or _git(directory, "rev-parse", "HEAD")
        return cls(
            source=public_url(found_source) if found_source else None,
            revision=found_revision,
            created=created,
        )


def _from_ci(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    if environ.get("GITHUB_REPOSITORY"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"{server}/{environ['GITHUB_REPOSITORY']}", environ.get("GITHUB_SHA") or None
    if environ.get("CI_PROJECT_URL"):
        return environ["CI_PROJECT_URL"], environ.get("CI_COMMIT_SHA") or None
    return None, None


def _git(directory: Path | None, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory or Path.cwd()), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and value else None


def public_url(url: str) -> str:
    """``url`` without user-info, query or fragment (an SSH remote ``git@host:org/repo`` is
    kept, it holds no secret)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def public_model_ref(ref: ModelRef) -> str:
    """The model reference as a label may show it: an https:// URL loses user-info and query
    (the ``#sha256=`` checksum stays: it is what the weights must hash to)."""
    if ref.scheme != "https":
        return ref.raw
    text = public_url(ref.url or ref.location)
    return f"{text}#sha256={ref.sha256}" if ref.sha256 else text


@dataclass(frozen=True)
class ImageDescription:
    """What the labels say about the image's contents."""

    title: str
    version: str
    profile: str
    backend: str
    accelerator: str
    model_ref: str  # public form (public_model_ref)
    served_model: str
    built_by: str


def image_labels(
    description: ImageDescription, provenance: Provenance, *, baked: bool
) -> dict[str, str]:
    """The labels of one built image (every value a string; absent facts left out)."""
    labels = {
        f"{OCI}.created": provenance.created,
        f"{OCI}.title": description.title,
        f"{OCI}.version": description.version,
        LABEL_PROFILE: description.profile,
        LABEL_BACKEND: description.backend,
        LABEL_ACCELERATOR: description.accelerator,
        LABEL_MODEL: description.model_ref,
        LABEL_SERVED_MODEL: description.served_model,
        LABEL_BAKED: "true" if baked else "false",
        LABEL_BUILT_BY: description.built_by,
    }
    if provenance.source:
        labels[f"{OCI}.source"] = provenance.source
    if provenance.revision:
        labels[f"{OCI}.revision"] = provenance.revision
    return labels
