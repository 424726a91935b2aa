"""What a build made: the images per platform, their sizes, the push, the time it took."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PlatformImage:
    """The image built for one platform. ``size_bytes``: uncompressed, as the engine reports
    it; ``mounted_*``: the variant without weights a baked image was made from (None when
    not baked)."""

    platform: str
    ref: str
    id: str
    size_bytes: int
    mounted_ref: str | None = None
    mounted_id: str | None = None
    mounted_size_bytes: int | None = None

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "platform": self.platform,
            "ref": self.ref,
            "id": self.id,
            "size_bytes": self.size_bytes,
        }
        if self.mounted_ref is not None:
            data["mounted"] = {
                "ref": self.mounted_ref,
                "id": self.mounted_id,
                "size_bytes": self.mounted_size_bytes,
            }
        return data


@dataclass(frozen=True)
class BuildResult:
    """``image``: the primary reference; ``digest``: the registry's digest of what was pushed
    under it (a manifest list's for several platforms; None when not pushed or not reported);
    ``weights_bytes``: the size of the weights a baked image carries; ``duration_s``: seconds."""

    image: str
    engine: str
    tags: tuple[str, ...]
    platforms: tuple[PlatformImage, ...]
    pushed: bool
    digest: str | None
    baked: bool
    weights_bytes: int | None
    labels: dict[str, str]
    duration_s: float
    phase_s: dict[str, float] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        """The image ID when there is one image (one platform), else None (a list)."""
        return self.platforms[0].id if len(self.platforms) == 1 else None

    @property
    def size_bytes(self) -> int:
        """The image's size; for a manifest list the sum over its platforms."""
        return sum(p.size_bytes for p in self.platforms)

    def to_dict(self) -> dict[str, object]:
        return {
            "image": self.image,
            "engine": self.engine,
            "id": self.id,
            "digest": self.digest,
            "tags": list(self.tags),
            "size_bytes": self.size_bytes,
            "platforms": [p.to_dict() for p in self.platforms],
            "pushed": self.pushed,
            "baked": self.baked,
            "weights_bytes": self.weights_bytes,
            "labels": dict(self.labels),
            "duration_s": round(self.duration_s, 3),
            "phase_s": {k: round(v, 3) for k, v in self.phase_s.items()},
        }
