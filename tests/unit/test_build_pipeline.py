"""`llmdeploy build` over the fake engine: checks before building, labels, tags, manifest
lists, bake, push, and nothing left tagged after a failure."""

from __future__ import annotations

import socket
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fake_engine import FakeEngine
from llmdeploy.build.pipeline import build_image, variant
from llmdeploy.build.provenance import Provenance, public_url
from llmdeploy.build.request import BuildImageRequest
from llmdeploy.core.engine_traits import DOCKER
from llmdeploy.core.image_ref import parse_image_ref
from llmdeploy.core.platforms import SUPPORTED, host_platform
from llmdeploy.engines.selection import EngineChoice
from llmdeploy.errors import (
    ImageBuildError,
    ProfileError,
    RegistryAuthError,
    RegistryUnreachableError,
    UsageError,
)
from llmdeploy.profiles.schema import Profile

AMD64, ARM64 = SUPPORTED["linux/amd64"], SUPPORTED["linux/arm64"]
PROVENANCE = Provenance(source="https://git.example/org/app", revision="abc123",
                        created="2026-01-02T03:04:05Z")


@pytest.fixture
def registry() -> object:
    """A listening socket standing in for a registry's port (the pre-build reachability check)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()


def profile(gguf: Path, *, build: bool = True) -> Profile:
    data: dict[str, object] = {
        "name": "edge-ci",
        "backend": {"kind": "llamacpp"},
        "model": {"ref": f"file://{gguf}", "name": "tiny"},
    }
    if build:
        data["build"] = {"base_image": "localhost/base:1"}
    return Profile.model_validate(data)


def request(gguf: Path, *tags: str, **options: object) -> BuildImageRequest:
    return BuildImageRequest(
        profile=options.pop("profile", None) or profile(gguf),  # type: ignore[arg-type]
        engine=EngineChoice("podman", "--engine"),
        provenance=PROVENANCE,
        tags=tuple(parse_image_ref(t) for t in tags),
        **options,  # type: ignore[arg-type]
    )


def test_one_platform_is_built_labelled_tagged_and_pushed(
    tiny_gguf: Path, registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = FakeEngine(images={"localhost/base:1"})
    first, second = f"{registry}/llm/edge:1.2", f"{registry}/llm/edge:latest"
    monkeypatch.setenv("REGCREDS", "ci-bot:tok")
    result = build_image(
        request(tiny_gguf, first, second, push=True, tls_verify=False, creds_env="REGCREDS"),
        engine=engine,
    )
    (built,) = engine.builds
    assert built.tag == first and built.platform is None
    assert built.build_args["BASE_IMAGE"] == "localhost/base:1"
    labels = built.labels
    assert labels["org.opencontainers.image.source"] == "https://git.example/org/app"
    assert labels["org.opencontainers.image.revision"] == "abc123"
    assert labels["org.opencontainers.image.created"] == "2026-01-02T03:04:05Z"
    assert labels["org.opencontainers.image.version"] == "1.2"
    assert labels["io.llmdeploy.model"] == f"file://{tiny_gguf}"
    assert labels["io.llmdeploy.backend"] == "llamacpp" and labels["io.llmdeploy.baked"] == "false"
    assert "tok" not in str(labels)
    # the context is the rendered one (Containerfile + the shim + wheels/)
    assert "Containerfile" in engine.contexts[0] and "llama-server" in engine.contexts[0]
    assert set(engine.pushed) == {first, second}
    access = engine.pushed[first]
    assert access.tls_verify is False and access.credentials is not None
    assert access.credentials.username == "ci-bot"
    assert result.tags == (first, second) and result.pushed and result.digest
    assert result.id == engine.image_info(first).id  # type: ignore[union-attr]
    assert [p.platform for p in result.platforms] == [str(host_platform())]
    assert set(result.phase_s) == {"build", "push"}


def test_push_needs_a_registry_in_every_tag_before_anything_is_built(tiny_gguf: Path) -> None:
    engine = FakeEngine()
    for tag in ("llm/edge:1", "localhost/llm/edge:1"):
        with pytest.raises(UsageError, match="names no registry") as raised:
            build_image(request(tiny_gguf, tag, push=True), engine=engine)
        assert raised.value.hint and "registry.example" in raised.value.hint
    with pytest.raises(UsageError, match="names no registry"):
        build_image(request(tiny_gguf, push=True), engine=engine)  # the default local tag
    assert engine.builds == [] and engine.calls == []


def test_a_registry_that_is_down_is_reported_before_building(tiny_gguf: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    engine = FakeEngine()
    with pytest.raises(RegistryUnreachableError, match=f"127.0.0.1:{closed}") as raised:
        build_image(request(tiny_gguf, f"127.0.0.1:{closed}/llm/x:1", push=True), engine=engine)
    assert raised.value.exit_code == 13 and engine.builds == []


def test_a_refused_push_takes_the_tags_back(tiny_gguf: Path, registry: str) -> None:
    engine = FakeEngine(fail_push=RegistryAuthError("unauthorized: authentication required"))
    first, second = f"{registry}/llm/edge:1", f"{registry}/llm/edge:stable"
    with pytest.raises(RegistryAuthError) as raised:
        build_image(request(tiny_gguf, first, second, push=True), engine=engine)
    assert raised.value.exit_code == 12
    assert first not in engine.images and second not in engine.images
    assert engine.calls[-2:] == [f"untag {second}", f"untag {first}"]


def test_a_failed_platform_build_leaves_no_tag_of_the_others(tiny_gguf: Path) -> None:
    tag = "registry.example/llm/edge:1"
    engine = FakeEngine(fail_build={f"{tag}-arm64"})
    with pytest.raises(ImageBuildError):
        build_image(request(tiny_gguf, tag, platforms=(AMD64, ARM64),
                            base_images={"linux/arm64": "localhost/base-arm64:1"}),
                    engine=engine)
    assert f"{tag}-amd64" not in engine.images and not engine.lists


def test_several_platforms_make_a_manifest_list_and_push_it(tiny_gguf: Path, registry: str
                                                            ) -> None:
    tag = f"{registry}/llm/edge:1"
    engine = FakeEngine(images={"localhost/base:1", "localhost/base-arm64:1"},
                        image_arch={"localhost/base-arm64:1": "arm64"})
    result = build_image(
        request(tiny_gguf, tag, platforms=(AMD64, ARM64), push=True,
                base_images={"linux/arm64": "localhost/base-arm64:1"}),
        engine=engine,
    )
    foreign = next(b for b in engine.builds if b.tag.endswith("-arm64"))
    assert foreign.platform == "linux/arm64"
    assert foreign.build_args["BASE_IMAGE"] == "localhost/base-arm64:1"
    native = next(b for b in engine.builds if b.tag.endswith("-amd64"))
    assert native.platform == "linux/amd64"  # named, as every platform of a list
    assert native.build_args["BASE_IMAGE"] == "localhost/base:1"
    assert engine.lists[tag] == [f"{tag}-amd64", f"{tag}-arm64"]
    assert f"push-list {tag}" in engine.calls and tag in engine.pushed
    assert result.id is None and [p.platform for p in result.platforms] == [
        "linux/amd64", "linux/arm64"]
    # each platform's wheels only: the arm64 context got no x86_64 wheel (none here at all)
    assert all("wheels" not in name or name.endswith(".whl") for name in engine.contexts[1])


def test_a_local_base_image_of_another_architecture_is_refused(tiny_gguf: Path) -> None:
    engine = FakeEngine(images={"localhost/base:1"})  # amd64
    with pytest.raises(UsageError, match="is linux/amd64, not linux/arm64") as raised:
        build_image(request(tiny_gguf, "r.example/x:1", platforms=(ARM64,)), engine=engine)
    assert raised.value.hint and "--base-image linux/arm64=" in raised.value.hint
    assert engine.builds == []


def test_a_registry_base_image_is_left_to_the_engine_to_pull_per_platform(tiny_gguf: Path
                                                                          ) -> None:
    """python:3.11-slim is multi-platform: its local copy being amd64 says nothing about
    whether the build can get the arm64 one."""
    base = "docker.io/library/python:3.11-slim-bookworm"
    engine = FakeEngine(images={base})  # the amd64 copy
    gguf_profile = Profile.model_validate({
        "name": "edge-ci", "backend": {"kind": "llamacpp"},
        "model": {"ref": f"file://{tiny_gguf}"}, "build": {"base_image": base},
    })
    build_image(request(tiny_gguf, "r.example/x:1", platforms=(AMD64, ARM64),
                        profile=gguf_profile), engine=engine)
    assert [b.platform for b in engine.builds] == ["linux/amd64", "linux/arm64"]
    assert {b.build_args["BASE_IMAGE"] for b in engine.builds} == {base}


def test_engine_capabilities_decide_platforms_not_names(tiny_gguf: Path) -> None:
    docker_like = FakeEngine()
    docker_like.traits = DOCKER  # type: ignore[misc]
    with pytest.raises(UsageError, match="manifest"):
        build_image(request(tiny_gguf, "r.example/x:1", platforms=(AMD64, ARM64)),
                    engine=docker_like)
    foreign = ARM64 if host_platform() == AMD64 else AMD64
    with pytest.raises(UsageError, match="builds for this host's platform"):
        build_image(request(tiny_gguf, "r.example/x:1", platforms=(foreign,)), engine=docker_like)
    assert docker_like.builds == []


def test_bake_puts_the_weights_into_an_image_from_the_mounted_one(tiny_gguf: Path) -> None:
    engine = FakeEngine(images={"localhost/base:1"})
    tag = "registry.example/llm/edge:1-baked"
    result = build_image(request(tiny_gguf, tag, bake=True), engine=engine)
    mounted, baked = engine.builds
    assert mounted.tag == f"{tag}-mounted" and mounted.labels["io.llmdeploy.baked"] == "false"
    assert baked.tag == tag and baked.build_args == {"BASE_IMAGE": f"{tag}-mounted"}
    assert baked.labels["io.llmdeploy.baked"] == "true"
    assert baked.labels["io.llmdeploy.baked.file"] == tiny_gguf.name
    assert engine.contexts[1] == ["Containerfile", f"model/{tiny_gguf.name}"]  # no store records
    assert result.baked and result.weights_bytes == tiny_gguf.stat().st_size
    (image,) = result.platforms
    assert image.mounted_ref == f"{tag}-mounted" and image.ref == tag
    assert result.labels["io.llmdeploy.baked"] == "true"
    assert result.labels["io.llmdeploy.baked.file"] == tiny_gguf.name


def test_a_profile_without_a_build_section_has_nothing_to_build(tiny_gguf: Path) -> None:
    with pytest.raises(ProfileError, match="no build: section"):
        build_image(request(tiny_gguf, profile=profile(tiny_gguf, build=False)),
                    engine=FakeEngine())


def test_variant_names() -> None:
    ref = parse_image_ref("r.example/llm/edge:1.2")
    assert str(variant(ref, mounted=True, platform=None)) == "r.example/llm/edge:1.2-mounted"
    assert str(variant(ref, mounted=True, platform=ARM64)) == "r.example/llm/edge:1.2-mounted-arm64"
    assert str(variant(parse_image_ref("r.example/x"), mounted=False, platform=AMD64)) == (
        "r.example/x:latest-amd64")


def test_provenance_from_ci_variables_then_git_without_credentials(tmp_path: Path) -> None:
    now = datetime(2026, 5, 6, 7, 8, 9, 123, tzinfo=timezone.utc)
    github = Provenance.detect(tmp_path, {"GITHUB_REPOSITORY": "org/app", "GITHUB_SHA": "f00"},
                               now=now)
    assert (github.source, github.revision, github.created) == (
        "https://github.com/org/app", "f00", "2026-05-06T07:08:09Z")
    gitlab = Provenance.detect(tmp_path, {"CI_PROJECT_URL": "https://gl.example/g/p",
                                          "CI_COMMIT_SHA": "b4r"}, now=now)
    assert (gitlab.source, gitlab.revision) == ("https://gl.example/g/p", "b4r")
    given = Provenance.detect(tmp_path, {}, source="https://u:tok@git.example/o/r.git?x=1",
                              revision="r1", now=now)
    assert given.source == "https://git.example/o/r.git" and given.revision == "r1"
    assert public_url("git@github.com:org/app.git") == "git@github.com:org/app.git"
    assert public_url("https://user:pw@host:8443/a") == "https://host:8443/a"


def test_without_a_tag_the_local_build_tag_and_its_baked_variant(tiny_gguf: Path) -> None:
    engine = FakeEngine(images={"localhost/base:1"})
    plain = build_image(request(tiny_gguf), engine=engine)
    assert plain.image.startswith("localhost/llmdeploy/llamacpp-cpu:")
    baked = build_image(request(tiny_gguf, bake=True), engine=engine)
    assert baked.image == f"{plain.image}-baked"  # the local build tag keeps mounted weights
    assert engine.image_labels[plain.image]["io.llmdeploy.baked"] == "false"
    with pytest.raises(UsageError, match="name it with --tag"):
        build_image(request(tiny_gguf, platforms=(AMD64, ARM64)), engine=engine)

