"""Time to ready, itemised: where a cold start's seconds went.

``up`` measures six phases (seconds, wall clock, ``time.monotonic``):

- ``model``: the model placed in the store (a hard link, a copy or a download; near zero when
  it is already there);
- ``memory_plan``: the memory check before anything starts (the model's header read, the KV
  cache planned against the host or the container limit; on a fresh install this includes
  Python compiling the GGUF reader and numpy once);
- ``image``: the image made ready in the engine: looked up, else pulled or built
  (``image_source`` says which: local, pulled, built);
- ``container_start``: the container created and started by the engine (until its API
  answers the start);
- ``server_load``: from the start to the server's first healthy answer (the weights loaded,
  the server listening), to within one poll gap (``deploy.health``);
- ``first_token``: the time to first token (TTFT) of a one-token chat request sent after the
  server is healthy, only with ``up --warm-up`` (None otherwise).

``total_s`` is ``up``'s own wall time from the model phase to the end (not the Python start
before it); ``other_s`` is the rest of it: connecting to the engine, the port check, the
KV cache comparison.

Where the figures are kept (docs/lifecycle.md explains the choice): what is known when the
container is created (``model``, ``memory_plan``, ``image``, the image's source) goes into
its labels, like every other fact of a deployment; labels cannot change once a container
exists, so the whole record is also written under the user's state directory, keyed by
container ID (:mod:`llmdeploy.deploy.ready_record`), for ``status`` to show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llmdeploy.constants import LABEL_READY_PREFIX

PHASES = ("model", "memory_plan", "image", "container_start", "server_load", "first_token")
LABEL_IMAGE_S = f"{LABEL_READY_PREFIX}.image-s"
LABEL_MODEL_S = f"{LABEL_READY_PREFIX}.model-s"
LABEL_MEMORY_PLAN_S = f"{LABEL_READY_PREFIX}.memory-plan-s"
LABEL_IMAGE_SOURCE = f"{LABEL_READY_PREFIX}.image-source"


@dataclass(frozen=True)
class TimeToReady:
    """One ``up``'s time to ready in seconds; None for a phase that did not happen (an
    unchanged deployment starts nothing; ``first_token`` needs ``--warm-up``)."""

    total_s: float | None = None
    image_s: float | None = None
    model_s: float | None = None
    memory_plan_s: float | None = None
    container_start_s: float | None = None
    server_load_s: float | None = None
    first_token_s: float | None = None
    image_source: str | None = None

    def phases(self) -> dict[str, float | None]:
        """``{"model": s, "memory_plan": s, "image": s, "container_start": s,
        "server_load": s, "first_token": s}``, in the order they happen."""
        return {name: getattr(self, f"{name}_s") for name in PHASES}

    @property
    def other_s(self) -> float | None:
        """``total_s`` less the phases (never below 0: rounding)."""
        if self.total_s is None:
            return None
        return max(0.0, self.total_s - sum(v for v in self.phases().values() if v is not None))

    def rounded(self) -> TimeToReady:
        """The figures to the millisecond, as recorded and shown (so ``other_s`` computed
        from them is the same wherever they are read back)."""
        return TimeToReady(
            total_s=_rounded(self.total_s),
            image_source=self.image_source,
            **{f"{name}_s": _rounded(value) for name, value in self.phases().items()},
        )

    def to_dict(self) -> dict[str, object]:
        """The ``time_to_ready`` object of ``up --json`` and ``status --json``."""
        shown = self.rounded()
        return {
            "total_s": shown.total_s,
            "phases_s": shown.phases(),
            "other_s": _rounded(shown.other_s),
            "image_source": self.image_source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> TimeToReady:
        """The inverse of :meth:`to_dict` (a value that is not a number is None)."""
        phases = data.get("phases_s")
        found = phases if isinstance(phases, Mapping) else {}
        source = data.get("image_source")
        return cls(
            total_s=_number(data.get("total_s")),
            image_source=source if isinstance(source, str) else None,
            **{f"{name}_s": _number(found.get(name)) for name in PHASES},
        )

    def create_labels(self) -> dict[str, str]:
        """The labels of what is known when the container is created (model, memory plan,
        image)."""
        labels = {}
        for key, value in ((LABEL_IMAGE_S, self.image_s), (LABEL_MODEL_S, self.model_s),
                           (LABEL_MEMORY_PLAN_S, self.memory_plan_s)):
            if value is not None:
                labels[key] = f"{value:.3f}"
        if self.image_source:
            labels[LABEL_IMAGE_SOURCE] = self.image_source
        return labels

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> TimeToReady | None:
        """What a container's labels say (None when it has none: made by hand or by an
        older llmdeploy)."""
        if not any(key.startswith(LABEL_READY_PREFIX) for key in labels):
            return None
        return cls(
            image_s=_number(labels.get(LABEL_IMAGE_S)),
            model_s=_number(labels.get(LABEL_MODEL_S)),
            memory_plan_s=_number(labels.get(LABEL_MEMORY_PLAN_S)),
            image_source=labels.get(LABEL_IMAGE_SOURCE),
        )

    def summary(self) -> str:
        """``1.08 s: model 0.00 s, memory plan 0.05 s, image 0.01 s, container start 0.27 s,
        server load 0.52 s, first token -, other 0.23 s`` (one line for the console)."""
        shown = self.rounded()
        parts = [
            f"{name.replace('_', ' ')} {_shown(value)}" for name, value in shown.phases().items()
        ]
        parts.append(f"other {_shown(shown.other_s)}")
        return f"{_shown(shown.total_s)}: " + ", ".join(parts)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
