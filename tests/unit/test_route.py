"""`llmdeploy route`: the LiteLLM configuration (golden files), option validation, the
profile's `fallback:` section, the router's container and `route --run`'s refusals.

The configuration's keys were checked against the pinned LiteLLM by running it
(tests/e2e/test_route_real.py runs the router for real). Regenerate the golden files with
UPDATE_GOLDEN=1 after a deliberate change.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fake_engine import FakeEngine
from llmdeploy.core.route import LITELLM_VERSION, RouteSpec
from llmdeploy.deploy.route import RouteRequest, TargetRequest, route_spec
from llmdeploy.deploy.route_run import router_image_choice, run_route
from llmdeploy.errors import PortInUseError, ProfileError, UsageError
from llmdeploy.render.route_config import litellm_config, render_route, router_run_spec

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "route"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

CASES: dict[str, RouteRequest] = {
    "edge-podman--prod-vllm": RouteRequest(
        edge=TargetRequest(profile="edge-podman"), cloud=TargetRequest(profile="prod-vllm")
    ),
    "edge-podman--url": RouteRequest(
        edge=TargetRequest(profile="edge-podman"),
        cloud=TargetRequest(url="https://llm.example.com/v1/", model="big-model",
                            api_key_env="CLOUD_KEY"),
        name="hybrid", public_model="assistant", port=4100, edge_max_parallel=4,
        edge_timeout_s=20, first_token_timeout_s=3, master_key_env="ROUTER_KEY",
    ),
}


def spec_of(case: str, tmp_path: Path) -> RouteSpec:
    request = CASES[case]
    return route_spec(RouteRequest(**{**request.__dict__, "cwd": tmp_path}))


@pytest.mark.parametrize("case", sorted(CASES))
def test_route_files_match_golden(case: str, tmp_path: Path) -> None:
    for item in render_route(spec_of(case, tmp_path)):
        path = GOLDEN / case / item.path
        if UPDATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(item.content)
        assert path.read_text() == item.content, f"{path} differs (UPDATE_GOLDEN=1)"


def test_the_configuration_says_what_the_route_needs(tmp_path: Path) -> None:
    """Edge first, the cloud on every fallback LiteLLM has, the context and queue limits
    from the profiles, keys by reference only."""
    spec = spec_of("edge-podman--prod-vllm", tmp_path)
    config = litellm_config(spec)
    edge, cloud = config["model_list"]
    assert edge["model_name"] == "smollm2-135m" == spec.public_model
    assert edge["litellm_params"]["api_base"] == "http://127.0.0.1:8080/v1"
    # llama.cpp gives each of its 2 slots ctx_size / parallel = 1024 tokens
    assert edge["model_info"] == {"id": "edge", "max_input_tokens": 1024}
    assert edge["litellm_params"]["max_parallel_requests"] == 2
    assert cloud["litellm_params"]["model"] == "openai/qwen2.5-7b-instruct"
    assert cloud["litellm_params"]["api_key"] == "os.environ/VLLM_API_KEY"
    assert cloud["model_info"]["max_input_tokens"] == 8192
    settings = config["router_settings"]
    assert settings["fallbacks"] == [{"smollm2-135m": ["smollm2-135m-cloud"]}]
    assert settings["context_window_fallbacks"] == settings["fallbacks"]
    assert settings["enable_pre_call_checks"] is True and settings["num_retries"] == 0
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}
    assert spec.secret_envs == ("LITELLM_MASTER_KEY", "VLLM_API_KEY")
    # route --run starts the router on the edge profile's engine unless told otherwise
    assert (spec.edge.engine, spec.cloud.engine) == ("podman", "docker")
    url_side = spec_of("edge-podman--url", tmp_path).cloud
    assert url_side.engine is None


def test_secrets_are_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_KEY", "sk-live-very-secret")
    monkeypatch.setenv("ROUTER_KEY", "sk-router-very-secret")
    text = "".join(f.content for f in render_route(spec_of("edge-podman--url", tmp_path)))
    assert "very-secret" not in text
    assert "os.environ/CLOUD_KEY" in text and "os.environ/ROUTER_KEY" in text


@pytest.mark.parametrize(
    ("request_", "error", "words"),
    [
        (RouteRequest(edge=TargetRequest(profile="edge-podman", url="http://x/v1"),
                      cloud=TargetRequest(profile="prod-vllm")), UsageError, "--edge PROFILE"),
        (RouteRequest(edge=TargetRequest(profile="edge-podman"), cloud=TargetRequest()),
         UsageError, "name the cloud side once"),
        (RouteRequest(edge=TargetRequest(profile="edge-podman"),
                      cloud=TargetRequest(url="http://127.0.0.1:9000/v1")),
         UsageError, "--cloud-url needs --cloud-model"),
        (RouteRequest(edge=TargetRequest(profile="edge-podman"),
                      cloud=TargetRequest(url="ftp://x/v1", model="m")),
         UsageError, "not an http(s):// URL"),
        (RouteRequest(edge=TargetRequest(profile="edge-podman"),
                      cloud=TargetRequest(url="https://u:p@x/v1", model="m")),
         UsageError, "credentials"),
        (RouteRequest(edge=TargetRequest(profile="edge-podman"),
                      cloud=TargetRequest(profile="prod-vllm", model="other")),
         UsageError, "--cloud-model goes with --cloud-url"),
        (RouteRequest(edge=TargetRequest(url="http://127.0.0.1:8080/v1", model="m"),
                      cloud=TargetRequest(profile="prod-vllm")),
         UsageError, "--edge-url needs --edge-context"),
        (RouteRequest(edge=TargetRequest(profile="edge-podman"),
                      cloud=TargetRequest(url="http://x/v1", model="m", api_key_env="sk-123")),
         UsageError, "NAME of an environment variable"),
        (RouteRequest(edge=TargetRequest(profile="edge-podman"),
                      cloud=TargetRequest(profile="prod-vllm"), master_key_env="my key"),
         UsageError, "--master-key-env"),
        (RouteRequest(edge=TargetRequest(profile="edge-podman"),
                      cloud=TargetRequest(profile="prod-vllm"), host="example.com"),
         UsageError, "--host"),
        (RouteRequest(edge=TargetRequest(profile="no-such-profile"),
                      cloud=TargetRequest(profile="prod-vllm")), ProfileError, "no-such-profile"),
        (RouteRequest(edge=TargetRequest(profile="edge-podman"),
                      cloud=TargetRequest(profile="prod-vllm"), name="Bad Name"),
         UsageError, "--name"),
    ],
)
def test_bad_options_are_refused(
    request_: RouteRequest, error: type[Exception], words: str, tmp_path: Path
) -> None:
    with pytest.raises(error, match=None) as caught:
        route_spec(RouteRequest(**{**request_.__dict__, "cwd": tmp_path}))
    assert words in str(caught.value), str(caught.value)


def test_an_edge_without_a_context_length(tmp_path: Path) -> None:
    """vLLM without max_model_len, and a model whose shape is unknown here: no context."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "big-edge.yaml").write_text(
        "name: big-edge\nextends: prod-vllm\nbackend: {kind: vllm, max_model_len: null}\n"
        "model: {ref: 'hf://example/unknown-model'}\n"
    )
    with pytest.raises(ProfileError) as caught:
        route_spec(RouteRequest(edge=TargetRequest(profile="big-edge"),
                                cloud=TargetRequest(url="http://x/v1", model="m"),
                                cwd=tmp_path))
    assert "context length is unknown" in caught.value.message
    assert caught.value.hint is not None and "max_model_len" in caught.value.hint


def write_profile(folder: Path, fallback: str) -> Path:
    path = folder / "edge-fb.yaml"
    path.write_text(f"name: edge-fb\nextends: edge-podman\nfallback: {fallback}\n")
    return path


@pytest.mark.parametrize(
    ("fallback", "words"),
    [
        ("{profile: prod-vllm, url: 'http://x/v1'}", "one"),
        ("{}", "profile: NAME or as url:"),
        ("{url: 'http://x/v1'}", "url: needs model:"),
        ("{url: 'x.example/v1', model: m}", "not an http(s):// URL"),
        ("{url: 'http://u:p@x/v1', model: m}", "credentials"),
        ("{url: 'http://x/v1', model: m, api_key_env: 'sk-live-1'}", "not an environment"),
        ("{profile: prod-vllm, model: other}", "model applies to url: only"),
        ("{profile: prod-vllm, timeout_s: 0}", "greater than 0"),
        ("{profile: prod-vllm, prot: 4000}", "prot"),
    ],
)
def test_fallback_section_errors_name_the_file_and_field(
    fallback: str, words: str, tmp_path: Path
) -> None:
    from llmdeploy.profiles.loader import resolve

    path = write_profile(tmp_path, fallback)
    with pytest.raises(ProfileError) as caught:
        resolve(profile_file=path, cwd=tmp_path)
    text = caught.value.message + (caught.value.hint or "")
    assert "edge-fb.yaml" in text and "fallback" in text, text
    assert words in text, text


def test_a_fallback_section_makes_the_same_route(tmp_path: Path) -> None:
    from llmdeploy.deploy.route import spec_from_fallback
    from llmdeploy.profiles.loader import resolve

    path = write_profile(tmp_path, "{profile: prod-vllm, port: 4000}")
    profile = resolve(profile_file=path, cwd=tmp_path).profile
    from_profile = spec_from_fallback(profile, cwd=tmp_path)
    (tmp_path / "profiles").mkdir()
    path.rename(tmp_path / "profiles" / path.name)
    from_cli = route_spec(RouteRequest(edge=TargetRequest(profile="edge-fb"),
                                       cloud=TargetRequest(profile="prod-vllm"), cwd=tmp_path))
    assert litellm_config(from_profile) == litellm_config(from_cli)
    assert from_profile.name == "edge-fb-route"


def test_route_of_an_edge_with_a_fallback_section_needs_no_cloud(tmp_path: Path) -> None:
    """`route --edge edge-fb` reads the cloud side and the settings from the profile's
    fallback: section, as the exports do; a setting given on the command line wins."""
    from llmdeploy.deploy.route import spec_from_fallback
    from llmdeploy.profiles.loader import resolve

    (tmp_path / "profiles").mkdir()
    path = write_profile(tmp_path / "profiles",
                         "{profile: prod-vllm, port: 4700, timeout_s: 30, max_parallel: 1}")
    declared = spec_from_fallback(resolve(profile_file=path, cwd=tmp_path).profile, cwd=tmp_path)
    plain = route_spec(RouteRequest(edge=TargetRequest(profile="edge-fb"),
                                    cloud=TargetRequest(), cwd=tmp_path))
    assert litellm_config(plain) == litellm_config(declared) and plain.port == 4700
    assert plain.edge.timeout_s == 30 and plain.edge.max_parallel == 1
    mine = route_spec(RouteRequest(edge=TargetRequest(profile="edge-fb"), cloud=TargetRequest(),
                                   port=4999, edge_timeout_s=5, cwd=tmp_path,
                                   given=frozenset({"port", "edge_timeout_s"})))
    assert (mine.port, mine.edge.timeout_s, mine.edge.max_parallel) == (4999, 5, 1)
    assert mine.cloud == declared.cloud
    # through the command line: the options the user typed are the ones that win
    shown = subprocess.run(
        [sys.executable, "-m", "llmdeploy", "route", "--edge", "edge-fb", "--port", "4999",
         "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary["api_base_url"] == "http://127.0.0.1:4999/v1"
    assert summary["edge"]["timeout_s"] == 30.0 and summary["edge"]["max_parallel"] == 1


def test_a_route_named_like_its_own_edge_or_cloud_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="edge deployment's own name"):
        route_spec(RouteRequest(edge=TargetRequest(profile="edge-podman"),
                                cloud=TargetRequest(profile="prod-vllm"), name="edge-podman",
                                cwd=tmp_path))
    with pytest.raises(UsageError, match="cloud deployment's own name"):
        route_spec(RouteRequest(edge=TargetRequest(profile="edge-podman"),
                                cloud=TargetRequest(profile="prod-vllm"), name="prod-vllm",
                                cwd=tmp_path))


def test_the_router_container(tmp_path: Path) -> None:
    spec = spec_of("edge-podman--url", tmp_path)
    run = router_run_spec(spec, "img", str(tmp_path / "cfg"))
    assert run.network_mode == "host" and run.ports == ()
    assert run.args == ("--config", "/etc/litellm/config.yaml", "--host", "127.0.0.1",
                        "--port", "4100")
    assert [(m.target, m.read_only) for m in run.mounts] == [("/etc/litellm", True)]
    assert run.cap_drop == ("ALL",) and run.no_new_privileges
    assert run.secret_env == {"CLOUD_KEY": "CLOUD_KEY", "ROUTER_KEY": "ROUTER_KEY"}
    assert run.labels["io.llmdeploy.backend"] == "litellm"
    assert run.labels["io.llmdeploy.deployment"] == "hybrid"
    assert run.labels["io.llmdeploy.endpoint"] == "http://127.0.0.1:4100"
    choice = router_image_choice("localhost/base:1")
    assert choice.image == choice.build_tag and choice.recipe is not None
    assert choice.image.startswith(f"localhost/llmdeploy/litellm:{LITELLM_VERSION}-")
    assert choice.recipe.wheelhouse == "litellm"


def test_run_refuses_before_touching_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_of("edge-podman--url", tmp_path)
    engine = FakeEngine()
    monkeypatch.delenv("ROUTER_KEY", raising=False)
    monkeypatch.setenv("CLOUD_KEY", "x")
    with pytest.raises(UsageError) as caught:
        run_route(engine, spec, tmp_path / "cfg")
    assert "ROUTER_KEY" in caught.value.message and "not set" in caught.value.message
    assert engine.calls == [] and not (tmp_path / "cfg").exists()

    monkeypatch.setenv("ROUTER_KEY", "sk-x")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        busy = RouteSpec(**{**spec.__dict__, "port": held.getsockname()[1]})
        with pytest.raises(PortInUseError):
            run_route(engine, busy, tmp_path / "cfg")
    assert not [c for c in engine.calls if c.startswith("run ")]


def test_cli_prints_the_config_and_exits_2_on_bad_input(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "llmdeploy", "route", *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})

    shown = cli("--edge", "edge-podman", "--cloud", "prod-vllm")
    assert shown.returncode == 0, shown.stderr
    assert yaml.safe_load(shown.stdout)["model_list"][0]["model_name"] == "smollm2-135m"
    written = cli("--edge", "edge-podman", "--cloud-url", "http://127.0.0.1:9/v1",
                  "--cloud-model", "m", "--output", str(tmp_path / "out"))
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "out" / "config.yaml").is_file()
    assert (tmp_path / "out" / "README.txt").is_file()
    bad = cli("--edge", "edge-podman", "--cloud-url", "http://127.0.0.1:9/v1")
    assert bad.returncode == 2 and "--cloud-model" in bad.stderr
    assert "Traceback" not in bad.stderr
    unknown = cli("--edge", "nope", "--cloud", "prod-vllm")
    assert unknown.returncode == 3 and "nope" in unknown.stderr


EXPORTS = {
    # the tiny llama.cpp edge on Podman, the GPU vLLM profile as its fallback
    "compose-edge-fb": ("compose", "name: edge-fb\nextends: edge-podman\n"
                        "fallback: {profile: prod-vllm, timeout_s: 30}\n"),
    # vLLM at the edge of a cluster, a hosted OpenAI-compatible API as its fallback
    "kube-gpu-edge": ("kube", "name: gpu-edge\nextends: prod-vllm\nfallback: {url: "
                      "'https://llm.example.com/v1', model: big-model, api_key_env: CLOUD_KEY}\n"),
}


def export_of(case: str, tmp_path: Path) -> list:  # type: ignore[type-arg]
    from llmdeploy.deploy.export import ExportRequest, export_files
    from llmdeploy.profiles.loader import resolve

    target, text = EXPORTS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    profile = resolve(profile_file=path, cwd=tmp_path, env={}).profile
    return export_files(ExportRequest(profile=profile, target=target))  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(EXPORTS))
def test_exports_with_a_fallback_match_golden(case: str, tmp_path: Path) -> None:
    from llmdeploy.core.launch import RenderedFile

    files = export_of(case, tmp_path)
    route_files = [f for f in files if "route" in f.path or f.path == "README.txt"]
    compose = next((f for f in files if f.path == "compose.yaml"), None)
    if compose is not None:  # the router's service (the edge's names this machine's store)
        service = yaml.safe_load(compose.content)["services"]["edge-fb-route"]
        header = [line for line in compose.content.splitlines() if line.startswith("# ")]
        route_files.append(RenderedFile("compose-router-service.yaml", "\n".join(
            header[-3:]) + "\n" + yaml.safe_dump(service, sort_keys=False, width=4096)))
    assert route_files
    for item in route_files:
        path = GOLDEN / "exports" / case / item.path
        if UPDATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(item.content)
        assert path.read_text() == item.content, f"{path} differs (UPDATE_GOLDEN=1)"


def test_the_compose_router_is_the_route_run_container(tmp_path: Path) -> None:
    files = {f.path: f.content for f in export_of("compose-edge-fb", tmp_path)}
    document = yaml.safe_load(files["compose.yaml"])
    router = document["services"]["edge-fb-route"]
    assert router["network_mode"] == "host" and "ports" not in router
    assert router["volumes"] == ["./route:/etc/litellm:ro"] and router["cap_drop"] == ["ALL"]
    assert router["command"] == ["--config", "/etc/litellm/config.yaml", "--host", "127.0.0.1",
                                 "--port", "4000"]
    assert router["environment"]["LITELLM_MASTER_KEY"].startswith("${LITELLM_MASTER_KEY:?")
    assert router["labels"]["io.llmdeploy.backend"] == "litellm"
    config = yaml.safe_load(files["route/config.yaml"])
    # the edge where compose publishes it, the fallback where its profile answers
    assert config["model_list"][0]["litellm_params"]["api_base"] == "http://127.0.0.1:8080/v1"
    assert config["model_list"][0]["litellm_params"]["timeout"] == 30.0
    assert config["model_list"][1]["litellm_params"]["api_base"] == "http://127.0.0.1:8000/v1"
    assert "FROM ${BASE_IMAGE}" in files["route-image/Containerfile"]


def test_the_kube_router_validates_and_keeps_secrets_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmdeploy.deploy.kube_check import check_manifests

    monkeypatch.setenv("CLOUD_KEY", "sk-never-in-a-file")
    files = export_of("kube-gpu-edge", tmp_path)
    assert all("sk-never-in-a-file" not in f.content for f in files)
    result = check_manifests(files, versions=("1.37",))
    assert result.ok, result.lines()
    assert any("route-deployment.yaml" in line and line.startswith("ok") for line in result.lines())
    by_path = {f.path: yaml.safe_load(f.content) for f in files if f.path.endswith(".yaml")}
    pod = by_path["route-deployment.yaml"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["CLOUD_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "llmdeploy-gpu-edge-route-secrets", "key": "CLOUD_KEY"}
    config = yaml.safe_load(by_path["route-configmap.yaml"]["data"]["config.yaml"])
    assert config["model_list"][0]["litellm_params"]["api_base"] == (
        "http://llmdeploy-gpu-edge:8000/v1")  # the edge's Service in the cluster
    assert by_path["route-service.yaml"]["spec"]["selector"] == {
        "app.kubernetes.io/name": "llmdeploy", "app.kubernetes.io/instance": "gpu-edge-route"}
    kustomization = by_path["kustomization.yaml"]["resources"]
    assert {"route-configmap.yaml", "route-deployment.yaml", "route-service.yaml"} <= set(
        kustomization)


def test_docker_compose_reads_the_router_service(tmp_path: Path) -> None:
    """docker-compose validates the file against the Compose Specification and interpolates:
    the router's keys come from the environment, the rest as written."""
    import shutil

    compose = shutil.which("docker-compose")
    if compose is None:
        if os.environ.get("LLMDEPLOY_E2E") == "require":
            pytest.fail("docker-compose is not installed (LLMDEPLOY_E2E=require)")
        pytest.skip("docker-compose is not installed (scripts/setup-host.sh --with-export-tools)")
    out = tmp_path / "out"
    for item in export_of("compose-edge-fb", tmp_path):
        path = out / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(item.content)
    env = {**os.environ, "VLLM_API_KEY": "v-from-env", "LITELLM_MASTER_KEY": "sk-from-env",
           "DOCKER_HOST": "unix:///nonexistent"}
    result = subprocess.run([compose, "-f", str(out / "compose.yaml"), "-p", "check", "config"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    router = yaml.safe_load(result.stdout)["services"]["edge-fb-route"]
    assert router["environment"]["LITELLM_MASTER_KEY"] == "sk-from-env"
    assert router["network_mode"] == "host"
    assert router["build"]["context"] == str(out / "route-image")
    unset = {k: v for k, v in env.items() if k != "LITELLM_MASTER_KEY"}
    refused = subprocess.run([compose, "-f", str(out / "compose.yaml"), "config"],
                             capture_output=True, text=True, env=unset, timeout=120)
    assert refused.returncode != 0 and "set LITELLM_MASTER_KEY" in refused.stderr


def test_run_never_replaces_a_model_deployment_of_the_same_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmdeploy.core.run_spec import ContainerInfo
    from llmdeploy.errors import NameConflictError

    spec = spec_of("edge-podman--url", tmp_path)  # the route "hybrid"
    monkeypatch.setenv("ROUTER_KEY", "sk-x")
    monkeypatch.setenv("CLOUD_KEY", "x")
    engine = FakeEngine()
    engine.containers["model-id"] = ContainerInfo(
        id="model-id", name="llmdeploy-hybrid", image="localhost/llama:1", state="running",
        exit_code=None, started_at=None, labels={
            "io.llmdeploy.managed": "true", "io.llmdeploy.deployment": "hybrid",
            "io.llmdeploy.backend": "llamacpp"})
    with pytest.raises(NameConflictError) as caught:
        run_route(engine, spec, tmp_path / "cfg")
    assert "is a model server (llamacpp)" in caught.value.message
    assert caught.value.hint and "--name hybrid-2" in caught.value.hint
    assert engine.containers["model-id"].running
    assert not [c for c in engine.calls if c.startswith(("remove", "run"))]


def test_a_taken_router_port_names_our_deployment_that_holds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `up` does: the port check says which of our deployments listens there."""
    from llmdeploy.core.labels import DeploymentLabels
    from llmdeploy.core.run_spec import ContainerInfo
    from llmdeploy.deploy import route_run

    spec = spec_of("edge-podman--url", tmp_path)
    monkeypatch.setenv("ROUTER_KEY", "sk-x")
    monkeypatch.setenv("CLOUD_KEY", "x")
    monkeypatch.setattr(route_run, "port_is_free", lambda host, port: False)
    engine = FakeEngine()
    labels = DeploymentLabels(
        deployment="old-route", profile="", model="", served_model="assistant",
        backend="litellm", accelerator="cpu", endpoint=spec.endpoint,
        health_path="/health/liveliness", api="openai").to_labels()
    engine.containers["old"] = ContainerInfo("old", "llmdeploy-old-route", "img", "running",
                                             None, labels, None)
    with pytest.raises(PortInUseError) as caught:
        run_route(engine, spec, tmp_path / "cfg")
    assert caught.value.hint == "deployment 'old-route' uses it: `llmdeploy down old-route`"
    assert not [c for c in engine.calls if c.startswith(("remove", "run"))]


def test_down_of_a_router_forgets_only_the_configuration_llmdeploy_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmdeploy.core.run_spec import ContainerInfo, MountInfo
    from llmdeploy.deploy import route_files

    monkeypatch.setattr(route_files, "cache_dir", lambda: tmp_path / "cache")
    kept = route_files.default_config_dir("r1")
    kept.mkdir(parents=True)
    (kept / "config.yaml").write_text("x")
    mine = tmp_path / "my-route"
    mine.mkdir()

    def router(source: Path, backend: str = "litellm") -> ContainerInfo:
        return ContainerInfo("id", "llmdeploy-r1", "img", "exited", 0,
                             {"io.llmdeploy.backend": backend}, None,
                             mounts=(MountInfo(str(source), "/etc/litellm", True),))

    assert route_files.forget_cached_config(router(mine)) == []  # --output DIR: the user's
    assert route_files.forget_cached_config(router(kept, "llamacpp")) == []  # not a router
    assert mine.is_dir() and kept.is_dir()
    assert route_files.forget_cached_config(router(kept)) == [kept.resolve()]
    assert not kept.exists()


def test_an_export_without_the_router_says_so(tmp_path: Path) -> None:
    from llmdeploy.deploy.export import ExportRequest, route_left_out
    from llmdeploy.profiles.loader import resolve

    path = write_profile(tmp_path, "{profile: prod-vllm}")
    profile = resolve(profile_file=path, cwd=tmp_path, env={}).profile
    plain = resolve("edge-podman", cwd=tmp_path).profile

    def note(target: str, dialect: str = "kubernetes", of: object = profile) -> str | None:
        return route_left_out(ExportRequest(profile=of, target=target, dialect=dialect))  # type: ignore[arg-type]

    assert note("compose") is None and note("kube") is None  # they carry it
    assert note("quadlet") and "route --edge edge-fb --run" in note("quadlet")  # type: ignore[operator]
    assert note("kube", "podman") and "kube --dialect podman" in note("kube", "podman")  # type: ignore[operator]
    assert note("quadlet", of=plain) is None  # no fallback: nothing to say


def test_a_route_that_cannot_do_its_job_is_warned_about(tmp_path: Path) -> None:
    from llmdeploy.deploy.route import route_warnings

    assert route_warnings(spec_of("edge-podman--prod-vllm", tmp_path)) == []
    same = route_spec(RouteRequest(edge=TargetRequest(profile="edge-podman"),
                                   cloud=TargetRequest(profile="edge-podman"), name="x",
                                   cwd=tmp_path))
    warned = route_warnings(same)
    assert len(warned) == 2
    assert "one server" in warned[0] and "nowhere to go" in warned[1]


def test_a_router_interrupted_inside_create_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after the engine created the router but before run() returned its ID: the
    container under the name, carrying exactly the labels being created, is removed."""
    from llmdeploy.errors import InterruptedByUser

    monkeypatch.setenv("ROUTER_KEY", "sk-x")
    monkeypatch.setenv("CLOUD_KEY", "x")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = RouteSpec(**{**spec_of("edge-podman--url", tmp_path).__dict__, "port": port})
    engine = FakeEngine(images={router_image_choice().image})
    real_run = engine.run

    def interrupted_run(run):  # type: ignore[no-untyped-def]
        real_run(run)
        raise KeyboardInterrupt

    engine.run = interrupted_run  # type: ignore[method-assign]
    with pytest.raises(InterruptedByUser):
        run_route(engine, spec, tmp_path / "cfg")
    assert engine.containers == {}
