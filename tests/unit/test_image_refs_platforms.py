"""Image references and build platforms are parsed once, with errors naming the bad part."""

from __future__ import annotations

import pytest

from llmdeploy.core.image_ref import ImageRef, parse_image_ref
from llmdeploy.core.platforms import SUPPORTED, host_platform, parse_platforms, wheel_matches


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), [
    ("ghcr.io/ggml-org/llama.cpp:server", "ghcr.io", "ggml-org/llama.cpp", "server", None),
    ("127.0.0.1:5000/llm/edge:1.2", "127.0.0.1:5000", "llm/edge", "1.2", None),
    ("localhost:5000/a/b", "localhost:5000", "a/b", None, None),
    ("localhost/llmdeploy/llamacpp-cpu:0.1.0", "localhost", "llmdeploy/llamacpp-cpu", "0.1.0",
     None),
    ("python:3.11-slim-bookworm", None, "python", "3.11-slim-bookworm", None),
    ("library/python", None, "library/python", None, None),
    ("registry.example/team/app@sha256:" + "a" * 64, "registry.example", "team/app", None,
     "sha256:" + "a" * 64),
    ("[::1]:5000/x/y:t", "[::1]:5000", "x/y", "t", None),
])
def test_references_split_into_registry_repository_tag_digest(
    text: str, registry: str | None, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_image_ref(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag,
                                                                    digest)
    assert str(ref) == text


def test_only_a_registry_host_is_pushable() -> None:
    assert parse_image_ref("127.0.0.1:5000/llm/edge:1").pushable
    assert parse_image_ref("registry.example/llm/edge:1").pushable
    assert not parse_image_ref("llm/edge:1").pushable  # Docker Hub implied: refuse to guess
    assert not parse_image_ref("localhost/llmdeploy/x:1").pushable  # Podman's local names
    assert parse_image_ref("localhost:5000/x:1").pushable


def test_host_port_and_retagging() -> None:
    ref = parse_image_ref("127.0.0.1:5000/llm/edge:1.2")
    assert (ref.host, ref.port) == ("127.0.0.1", 5000)
    assert parse_image_ref("ghcr.io/a/b").port is None
    assert parse_image_ref("nginx").host == "docker.io"
    assert str(ref.with_tag("1.2-arm64")) == "127.0.0.1:5000/llm/edge:1.2-arm64"
    assert ImageRef("r.example", "a", "1", "sha256:" + "b" * 64).with_tag("2").digest is None


@pytest.mark.parametrize(("text", "part"), [
    ("", "empty"),
    ("Team/App:1", "repository"),
    ("r.example/app:-bad", "tag"),
    ("r.example/app@md5:1234", "digest"),
    ("r.example/app: 1", "spaces"),
    ("bad_host.example:99999999/app", "registry host"),
])
def test_bad_references_name_the_bad_part(text: str, part: str) -> None:
    with pytest.raises(ValueError, match=part):
        parse_image_ref(text)


def test_platforms_keep_order_drop_repeats_and_accept_aliases() -> None:
    parsed = parse_platforms("linux/arm64, linux/amd64,linux/arm64/v8")
    assert [str(p) for p in parsed] == ["linux/arm64", "linux/amd64"]
    assert parsed[0].wheel_arch == "aarch64" and parsed[1].wheel_arch == "x86_64"


@pytest.mark.parametrize("text", ["linux/s390x", "windows/amd64", "arm64", ",", ""])
def test_unknown_platforms_are_refused_with_the_supported_ones(text: str) -> None:
    with pytest.raises(ValueError, match="linux/amd64"):
        parse_platforms(text)


def test_host_platform_from_the_machine_name() -> None:
    assert host_platform("x86_64") == SUPPORTED["linux/amd64"]
    assert host_platform("aarch64") == SUPPORTED["linux/arm64"]


def test_wheels_are_chosen_by_their_platform_tag() -> None:
    amd64, arm64 = SUPPORTED["linux/amd64"], SUPPORTED["linux/arm64"]
    x86 = "xllamacpp-2026.10.11549-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
    arm = "xllamacpp-2026.10.11549-cp310-abi3-manylinux2014_aarch64.manylinux_2_17_aarch64.whl"
    pure = "tqdm-4.67.1-py3-none-any.whl"
    assert wheel_matches(x86, amd64) and not wheel_matches(x86, arm64)
    assert wheel_matches(arm, arm64) and not wheel_matches(arm, amd64)
    assert wheel_matches(pure, amd64) and wheel_matches(pure, arm64)
    assert not wheel_matches("xllamacpp-1.tar.gz", amd64)
