"""One behaviour suite for the registry seam: the in-memory FakeRegistry and a real
``docker-registry`` (plain HTTP, and with htpasswd basic auth) through oras, so the fake the
push/pull unit tests rely on cannot drift from what a registry does.

The real ones run wherever ``docker-registry`` is installed (CI: scripts/setup-host.sh
--with-export-tools; LLMDEPLOY_E2E=require turns its absence into a failure).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.e2e_helpers import unavailable
from fakes.oci_registry import FakeRegistry
from llmdeploy.core.model_ref import parse_ref
from llmdeploy.errors import RegistryError
from llmdeploy.models.oci.client import Registry, connect
from llmdeploy.models.oci.credentials import RegistryAccess
from llmdeploy.models.oci.modelpack import OCI_MANIFEST, Blob
from registry_helpers import PASSWORD, USER, local_registry, registry_missing


@pytest.fixture(params=["fake", "registry", "registry-auth"])
def registry(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Registry]:
    kind = str(request.param)
    if kind == "fake":
        yield FakeRegistry()
        return
    request.applymarker(pytest.mark.e2e)
    auth = kind == "registry-auth"
    reason = registry_missing(auth)
    if reason:
        unavailable(reason)
    with local_registry(tmp_path / "registry", auth=auth) as local:
        monkeypatch.setenv("CONTRACT_REG", f"{USER}:{PASSWORD}")
        access = RegistryAccess(tls_verify=False, creds_env="CONTRACT_REG" if auth else None)
        yield connect(parse_ref(local.ref("contract/model:t1")), access)


def _blob(tmp_path: Path, data: bytes) -> tuple[Blob, Path]:
    path = tmp_path / hashlib.sha256(data).hexdigest()[:8]
    path.write_bytes(data)
    return Blob("application/vnd.cncf.model.weight.v1.raw",
                "sha256:" + hashlib.sha256(data).hexdigest(), len(data)), path


def test_a_blob_is_there_once_pushed_and_reads_back_the_same(
    registry: Registry, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes: more than one read chunk
    blob, path = _blob(tmp_path, data)
    assert registry.blob_exists(blob) is False
    registry.push_blob(blob, path)
    assert registry.blob_exists(blob) is True
    with registry.read_blob(blob) as chunks:
        assert b"".join(chunks) == data


def test_a_blob_pushed_under_another_digest_is_refused(registry: Registry, tmp_path: Path) -> None:
    blob, path = _blob(tmp_path, b"the real content")
    lying = Blob(blob.media_type, "sha256:" + "0" * 64, blob.size)
    with pytest.raises(RegistryError):
        registry.push_blob(lying, path)
    assert registry.blob_exists(lying) is False


def test_a_manifest_is_found_by_tag_and_by_its_digest(registry: Registry, tmp_path: Path) -> None:
    blob, path = _blob(tmp_path, b"weights")
    registry.push_blob(blob, path)
    config = b'{"descriptor":{},"config":{"format":"gguf"},"modelfs":{"type":"layers","diffIds":[]}}'
    config_blob = Blob("application/vnd.cncf.model.config.v1+json",
                       "sha256:" + hashlib.sha256(config).hexdigest(), len(config))
    registry.push_bytes(config_blob, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.cncf.model.manifest.v1+json",
        "config": config_blob.descriptor(),
        "layers": [blob.descriptor()],
    }).encode()
    digest = registry.put_manifest("t1", manifest, OCI_MANIFEST)
    assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert registry.get_manifest("t1") == (manifest, OCI_MANIFEST)
    assert registry.get_manifest(digest) == (manifest, OCI_MANIFEST)


def test_an_unknown_tag_is_a_registry_error(registry: Registry) -> None:
    with pytest.raises(RegistryError) as caught:
        registry.get_manifest("no-such-tag")
    assert caught.value.exit_code == 14
    assert "no-such-tag" in caught.value.message
