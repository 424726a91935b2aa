"""An in-memory OCI registry behind the ``models.oci.client.Registry`` seam.

It behaves as the distribution spec says a registry does (and as tests/contract checks against
a real ``docker-registry``): an uploaded blob must hash to the digest it is pushed under, a
manifest is found by tag and by the digest of its bytes, an unknown tag is an error. Faults
for the failure tests: ``fail_on_blob`` (the Nth blob upload loses the connection),
``corrupt`` (digests whose bytes are served altered), ``refuse_auth`` (every call is a 401).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from llmdeploy.errors import RegistryAuthError, RegistryError, RegistryUnreachableError
from llmdeploy.models.oci.modelpack import Blob


@dataclass
class FakeRegistry:
    where: str = "registry.test/models/m"
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # digest -> (bytes, type)
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest
    fail_on_blob: int | None = None  # 1-based count of push_blob calls
    corrupt: set[str] = field(default_factory=set)
    refuse_auth: bool = False
    chunk: int = 1 << 16
    calls: list[str] = field(default_factory=list)
    _pushes: int = 0

    def _gate(self, call: str) -> None:
        self.calls.append(call)
        if self.refuse_auth:
            raise RegistryAuthError(f"{call}: HTTP 401 (UNAUTHORIZED: authentication required)")

    def blob_exists(self, blob: Blob) -> bool:
        self._gate(f"HEAD {blob.digest}")
        return blob.digest in self.blobs

    def push_blob(self, blob: Blob, path: Path) -> None:
        self._gate(f"PUSH {blob.digest}")
        self._pushes += 1
        if self.fail_on_blob is not None and self._pushes >= self.fail_on_blob:
            raise RegistryUnreachableError(f"cannot reach the registry {self.where}: Connection reset")
        self._store(blob, path.read_bytes())

    def push_bytes(self, blob: Blob, data: bytes) -> None:
        self._gate(f"PUSH {blob.digest}")
        self._store(blob, data)

    def _store(self, blob: Blob, data: bytes) -> None:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest != blob.digest or len(data) != blob.size:
            raise RegistryError(f"uploading: {self.where} answered DIGEST_INVALID")
        self.blobs[digest] = data

    def put_manifest(self, tag: str, data: bytes, media_type: str) -> str:
        self._gate(f"PUT manifest {tag}")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.manifests[digest] = (data, media_type)
        self.tags[tag] = digest
        return digest

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        self._gate(f"GET manifest {reference}")
        digest = reference if reference.startswith("sha256:") else self.tags.get(reference, "")
        if digest not in self.manifests:
            raise RegistryError(f"{self.where} has no manifest {reference!r} (MANIFEST_UNKNOWN)")
        return self.manifests[digest]

    @contextlib.contextmanager
    def read_blob(self, blob: Blob) -> Iterator[Iterator[bytes]]:
        self._gate(f"GET {blob.digest}")
        if blob.digest not in self.blobs:
            raise RegistryError(f"{self.where} answered BLOB_UNKNOWN")
        data = self.blobs[blob.digest]
        if blob.digest in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        yield iter([data[i : i + self.chunk] for i in range(0, len(data), self.chunk)])
