"""The labels a deployment's container carries, as one typed record.

Deployment state lives in these labels, not in a local database: ``status``, ``chat``, ``logs``,
``down`` and ``bench`` read them back with :meth:`DeploymentLabels.from_labels`, so every reader
gets the same typed fields (and the same defaults for containers made by older versions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llmdeploy.constants import (
    LABEL_ACCELERATOR,
    LABEL_API,
    LABEL_API_PATH,
    LABEL_BACKEND,
    LABEL_DEPLOYMENT,
    LABEL_ENDPOINT,
    LABEL_HEALTH_PATH,
    LABEL_MANAGED,
    LABEL_METRICS_PATH,
    LABEL_MODEL,
    LABEL_PLAN_KV_BYTES,
    LABEL_PLAN_KV_TOKENS,
    LABEL_PROFILE,
    LABEL_SERVED_MODEL,
    LABEL_SPEC_HASH,
)
from llmdeploy.core.kv_report import PlannedKv

DEFAULT_API_PATH = "/v1"  # containers labelled before api-path existed served OpenAI at /v1


@dataclass(frozen=True)
class DeploymentLabels:
    """What llmdeploy records on a container: who it belongs to and how to talk to it.

    ``endpoint`` is ``http://host:port``; ``api_path`` the OpenAI-compatible API's base path on
    it (``/v1``); ``api`` the server's own API kind (``openai`` or ``ollama``).
    ``planned_kv``: the planner's KV cache figures when the container was made (None when the
    model could not be sized, or for containers made before they were recorded); they are not
    part of the spec hash, so a planner that changes its figures does not replace a server.
    """

    deployment: str
    profile: str
    model: str  # the model reference, as written
    served_model: str
    backend: str
    accelerator: str
    endpoint: str
    health_path: str
    api: str
    api_path: str = DEFAULT_API_PATH
    metrics_path: str | None = None
    spec_hash: str = ""
    planned_kv: PlannedKv | None = None

    @property
    def api_base_url(self) -> str:
        """``http://host:port/v1``: where OpenAI-compatible clients send requests."""
        return self.endpoint + self.api_path

    @property
    def health_url(self) -> str:
        return self.endpoint + self.health_path

    def to_labels(self) -> dict[str, str]:
        labels = {
            LABEL_MANAGED: "true",
            LABEL_DEPLOYMENT: self.deployment,
            LABEL_PROFILE: self.profile,
            LABEL_MODEL: self.model,
            LABEL_SERVED_MODEL: self.served_model,
            LABEL_BACKEND: self.backend,
            LABEL_ACCELERATOR: self.accelerator,
            LABEL_ENDPOINT: self.endpoint,
            LABEL_HEALTH_PATH: self.health_path,
            LABEL_API: self.api,
            LABEL_API_PATH: self.api_path,
        }
        if self.metrics_path:
            labels[LABEL_METRICS_PATH] = self.metrics_path
        if self.spec_hash:
            labels[LABEL_SPEC_HASH] = self.spec_hash
        planned = self.planned_kv
        for key, value in (
            (LABEL_PLAN_KV_BYTES, planned.bytes if planned else None),
            (LABEL_PLAN_KV_TOKENS, planned.tokens if planned else None),
        ):
            if value is not None:
                labels[key] = str(value)
        return labels

    @staticmethod
    def selector(
        *, deployment: str | None = None, profile: str | None = None, backend: str | None = None
    ) -> dict[str, str]:
        """The label filter that finds llmdeploy's containers (of a deployment, profile or
        backend when given), for ``Engine.list``."""
        wanted = {LABEL_MANAGED: "true"}
        for key, value in (
            (LABEL_DEPLOYMENT, deployment),
            (LABEL_PROFILE, profile),
            (LABEL_BACKEND, backend),
        ):
            if value:
                wanted[key] = value
        return wanted

    @classmethod
    def from_labels(cls, labels: Mapping[str, str], *, name: str = "") -> DeploymentLabels | None:
        """The record of a container llmdeploy manages; None for any other container.

        ``name`` (the container's) stands in for a missing deployment label.
        """
        if labels.get(LABEL_MANAGED) != "true":
            return None
        return cls(
            deployment=labels.get(LABEL_DEPLOYMENT, name),
            profile=labels.get(LABEL_PROFILE, ""),
            model=labels.get(LABEL_MODEL, ""),
            served_model=labels.get(LABEL_SERVED_MODEL, ""),
            backend=labels.get(LABEL_BACKEND, ""),
            accelerator=labels.get(LABEL_ACCELERATOR, ""),
            endpoint=labels.get(LABEL_ENDPOINT, ""),
            health_path=labels.get(LABEL_HEALTH_PATH, "/health"),
            api=labels.get(LABEL_API, "openai"),
            api_path=labels.get(LABEL_API_PATH, DEFAULT_API_PATH),
            metrics_path=labels.get(LABEL_METRICS_PATH),
            spec_hash=labels.get(LABEL_SPEC_HASH, ""),
            planned_kv=_planned_kv(labels),
        )


def _planned_kv(labels: Mapping[str, str]) -> PlannedKv | None:
    """The planned KV figures of a container's labels; a missing or unreadable one is None
    (labels can be set by hand on a container started from a rendered command line)."""
    found = {key: _count(labels.get(key)) for key in (LABEL_PLAN_KV_BYTES, LABEL_PLAN_KV_TOKENS)}
    if all(value is None for value in found.values()):
        return None
    return PlannedKv(bytes=found[LABEL_PLAN_KV_BYTES], tokens=found[LABEL_PLAN_KV_TOKENS])


def _count(text: str | None) -> int | None:
    if text is None or not text.strip().isdigit():
        return None
    return int(text.strip())
