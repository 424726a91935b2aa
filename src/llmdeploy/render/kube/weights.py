"""The weights on a cluster: a volume filled by an init container, or the model's OCI artifact
mounted as an image volume; never a hostPath or the server's image.

Per reference scheme:

- ``oci://registry/repo:tag``: a Kubernetes image volume (``volumes[].image``, beta and on by
  default since Kubernetes 1.35: kubernetes.io/docs/tasks/configure-pod-container/image-volumes)
  holding the ModelPack artifact, mounted read-only at ``/models``; no init container, no
  claim, nothing to size. The node's runtime pulls it: CRI-O mounts each layer of an OCI
  artifact as a file named by its title or ``org.cncf.model.filepath`` annotation
  (cri-o ``internal/ociartifact/store.go``), which ``models push`` sets; containerd mounts
  container images only (containerd/containerd#11381, open). The reference is pinned to the
  digest the store recorded when the model was pulled here (so every replica serves the bytes
  tried on this machine, and ``pullPolicy: IfNotPresent`` is right); the export refuses an
  ``oci://`` model that was not pulled, because the file the server is given is only known
  from the artifact;
- ``hf://org/repo[@rev]/file.gguf`` (and every part of a split GGUF) and
  ``https://host/file#sha256=HEX``: ``curl`` in a small pinned image (:data:`CURL_IMAGE`),
  checked against the sha256 (the reference's, or the one the Hub announces for its files);
- ``hf://org/repo[@rev]`` (a safetensors snapshot, vLLM): ``huggingface_hub`` in the vLLM server's
  own image (already on the node, and it ships the library), the same top-level files
  llmdeploy's store takes (:data:`HF_SNAPSHOT_PATTERNS`);
- ``ollama://``: no fetch, the Ollama server pulls it into its own volume;
- ``file://``, ``pkg://`` and ``model.convert``: files on, or work done on, this machine: refused
  with a ProfileError naming the field and what to use instead.

The volume holds each reference in its own folder (a short hash of the reference), which the
server mounts read-only at ``/models`` (``subPath``): the server runs the same argv as ``up``,
and a new model version fills a new folder while the old pods keep serving from theirs. The
init container is a no-op once the folder's marker file names the reference.

``kubernetes.weights_volume`` chooses the volume: ``shared``, one ReadWriteMany claim filled
once for every replica on any node; ``per-pod``, a generic ephemeral volume (ReadWriteOnce, any
storage class) filled by each pod. Size: ``kubernetes.weights_size``, else the weights + 20 %.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from urllib.parse import quote

from llmdeploy.constants import ENV_HF_TOKEN, MODEL_MOUNT_DIR
from llmdeploy.core.gguf_split import part_names
from llmdeploy.core.model_formats import HF_SNAPSHOT_PATTERNS
from llmdeploy.core.model_ref import ModelRef
from llmdeploy.core.sizes import GIB, to_bytes
from llmdeploy.errors import ProfileError
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import names
from llmdeploy.render.kube.yamldoc import Doc, storage_quantity

# curl + sha256sum + a POSIX shell (busybox), pinned; override with kustomize `images:`
CURL_IMAGE = "docker.io/curlimages/curl:8.12.1"
FETCH_UID = 10001  # the fetchers' uid and the pod's fsGroup: the volume is theirs to fill
WEIGHTS_VOLUME = "weights"
DATA_VOLUME = "data"
FETCH_SCRATCH_VOLUME = "fetch-tmp"
FETCH_DIR = "/weights"  # the whole volume, in the init container
MARKER = ".llmdeploy-complete"
HEADROOM = 1.2  # volume size over the weights: filesystem overhead, partial files
DATA_EXTRA_BYTES = GIB  # Ollama's store beside its copy of the weights: manifests, keys
_LOCAL_HINT = (
    "reference the model where the cluster can fetch it (profile model.ref): "
    "hf://org/repo[@revision][/file.gguf] or https://host/file.gguf#sha256=HEX; "
    "or run it on this machine: llmdeploy export kube --dialect podman"
)


def refuse_local_model(inputs: ExportInputs) -> None:
    """ProfileError for what only this machine has: a local file, a package, a conversion."""
    ref = inputs.profile.model.ref
    if ref.scheme == "file":
        raise ProfileError(
            f"model.ref {ref}: a path on this machine; the Kubernetes dialect never mounts a "
            "host path (hostPath) for weights, because the cluster's nodes do not have this "
            "machine's files",
            hint=_LOCAL_HINT,
        )
    if ref.scheme == "pkg":
        raise ProfileError(
            f"model.ref {ref}: a file inside a Python package installed on this machine; the "
            "cluster's nodes cannot read it",
            hint=_LOCAL_HINT,
        )
    if inputs.profile.model.convert is not None:
        raise ProfileError(
            f"model.convert: {inputs.profile.model.convert}: the conversion runs on this machine "
            "(torch, transformers), not in the cluster",
            hint="reference the model's Hugging Face folder (hf://org/repo, safetensors), which "
            "vLLM serves directly; or export --dialect podman",
        )
    for path in _hf_files(ref):
        if any(c.isspace() for c in path):
            raise ProfileError(f"model.ref {ref}: a file name with spaces cannot be fetched here")


def volume_key(ref: ModelRef) -> str:
    """The reference's folder in the volume: a readable name and a hash of the reference."""
    leaf = re.sub(r"[^a-z0-9._-]+", "-", ref.leaf.lower()).strip("-.")[:40] or "model"
    return f"{leaf}-{hashlib.sha256(ref.raw.encode()).hexdigest()[:10]}"


def weights_bytes(inputs: ExportInputs) -> int:
    """The weights volume's size in bytes; ProfileError naming kubernetes.weights_size when
    neither it nor the model's size is known."""
    declared = inputs.profile.kubernetes.weights_size
    if declared:
        return to_bytes(declared)
    if inputs.weights_bytes:
        return int(inputs.weights_bytes * HEADROOM)
    ref = inputs.profile.model.ref
    raise ProfileError(
        f"kubernetes.weights_size: the size of {ref} is not known on this machine (not in the "
        "model store, and the reference does not tell), so the weights volume cannot be sized",
        hint="set kubernetes.weights_size (e.g. 20Gi) in the profile, or pull the model first: "
        f"llmdeploy models pull {ref}" if ref.is_remote else "set kubernetes.weights_size "
        "(e.g. 20Gi) in the profile",
    )


def _claim_spec(inputs: ExportInputs, size_bytes: int, access: str) -> Doc:
    spec: Doc = {
        "accessModes": [access],
        "volumeMode": "Filesystem",
        "resources": {"requests": {"storage": storage_quantity(size_bytes)}},
    }
    if inputs.profile.kubernetes.storage_class:
        spec["storageClassName"] = inputs.profile.kubernetes.storage_class
    return spec


def _per_pod(inputs: ExportInputs, name: str, size_bytes: int) -> Doc:
    return {
        "name": name,
        "ephemeral": {
            "volumeClaimTemplate": {
                "metadata": {"labels": names.common_labels(inputs)},
                "spec": _claim_spec(inputs, size_bytes, "ReadWriteOnce"),
            }
        },
    }


def fetches(inputs: ExportInputs) -> bool:
    """Whether the model is fetched into a weights volume by an init container (not pulled
    by the server itself, not an image volume)."""
    return inputs.profile.model.ref.scheme not in ("ollama", "oci")


def image_volume(inputs: ExportInputs) -> bool:
    """Whether the weights are an OCI artifact mounted as an image volume (``oci://``)."""
    return inputs.profile.model.ref.scheme == "oci"


def mounted(inputs: ExportInputs) -> bool:
    """Whether the server mounts weights at /models (everything but ``ollama://``)."""
    return inputs.profile.model.ref.scheme != "ollama"


def image_reference(inputs: ExportInputs) -> str:
    """``registry/repo@sha256:HEX`` of an oci:// model, pinned to the digest the store
    recorded; ProfileError when it was not pulled on this machine."""
    ref = inputs.profile.model.ref
    digest = inputs.model_digest
    if digest is None:
        raise ProfileError(
            f"model.ref {ref}: not pulled on this machine, so the file the server is given "
            "and the digest to pin are not known",
            hint=f"pull it first: llmdeploy models pull {ref} (with --tls-verify / "
            "--creds-env as the registry needs), then export again",
        )
    return f"{ref.registry}/{ref.repo}@{digest}"


def shared(inputs: ExportInputs) -> bool:
    return inputs.profile.kubernetes.weights_volume == "shared"


def weights_claim(inputs: ExportInputs) -> Doc:
    """The shared ReadWriteMany claim (``weights_volume: shared``)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": names.metadata(inputs, names.weights_claim_name(inputs)),
        "spec": _claim_spec(inputs, weights_bytes(inputs), "ReadWriteMany"),
    }


def pod_volumes(inputs: ExportInputs) -> list[Doc]:
    """The weights volume (when fetched), the server's data volume (Ollama's store), and the
    fetcher's scratch space."""
    volumes: list[Doc] = []
    if image_volume(inputs):
        source = {"reference": image_reference(inputs), "pullPolicy": "IfNotPresent"}
        volumes.append({"name": WEIGHTS_VOLUME, "image": source})
    elif fetches(inputs):
        if shared(inputs):
            claim = {"claimName": names.weights_claim_name(inputs)}
            volumes.append({"name": WEIGHTS_VOLUME, "persistentVolumeClaim": claim})
        else:
            volumes.append(_per_pod(inputs, WEIGHTS_VOLUME, weights_bytes(inputs)))
        volumes.append({"name": FETCH_SCRATCH_VOLUME, "emptyDir": {}})
    if inputs.plan.launch.data_dir is not None:
        # the server's own store (Ollama: blobs, manifests, keys) is per pod: two servers
        # writing one store would race; it holds a copy of the weights (or the pull)
        volumes.append(_per_pod(inputs, DATA_VOLUME, weights_bytes(inputs) + DATA_EXTRA_BYTES))
    return volumes


def server_mounts(inputs: ExportInputs) -> list[Doc]:
    mounts: list[Doc] = []
    if image_volume(inputs):  # the artifact's files are the volume's top level
        mounts.append({"name": WEIGHTS_VOLUME, "mountPath": MODEL_MOUNT_DIR, "readOnly": True})
    elif fetches(inputs):
        mounts.append(
            {
                "name": WEIGHTS_VOLUME,
                "mountPath": MODEL_MOUNT_DIR,
                "subPath": volume_key(inputs.profile.model.ref),
                "readOnly": True,
            }
        )
    if inputs.plan.launch.data_dir is not None:
        mounts.append({"name": DATA_VOLUME, "mountPath": inputs.plan.launch.data_dir})
    return mounts


def fetch_container(inputs: ExportInputs) -> Doc | None:
    """The init container that fills the weights folder; None when the server pulls itself."""
    if not fetches(inputs):
        return None
    ref = inputs.profile.model.ref
    env: list[Doc] = [
        {"name": "LLMDEPLOY_MODEL_REF", "value": ref.raw},
        {"name": "LLMDEPLOY_DEST", "value": f"{FETCH_DIR}/{volume_key(ref)}"},
    ]
    if ref.scheme == "hf" and not ref.path:
        image = inputs.plan.run.image
        command = ["python3", "-c", _script("kube-fetch-hf-snapshot.py")]
        env += [
            {"name": "LLMDEPLOY_HF_REPO", "value": ref.repo},
            {"name": "LLMDEPLOY_HF_REVISION", "value": ref.revision},
            {"name": "LLMDEPLOY_HF_PATTERNS", "value": " ".join(HF_SNAPSHOT_PATTERNS)},
            {"name": "HOME", "value": "/tmp"},
            {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
        ]
    else:
        image = CURL_IMAGE
        command = ["/bin/sh", "-c", _script("kube-fetch-weights.sh")]
        env.append({"name": "LLMDEPLOY_FILES", "value": _file_lines(ref)})
    if ref.scheme == "hf":  # optional: public models need none
        env.append(_secret_env(inputs, ENV_HF_TOKEN, optional=True))
    return {
        "name": "fetch-weights",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "env": env,
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "2Gi"},
        },
        "volumeMounts": [
            {"name": WEIGHTS_VOLUME, "mountPath": FETCH_DIR},
            {"name": FETCH_SCRATCH_VOLUME, "mountPath": "/tmp"},
        ],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": FETCH_UID,
            "runAsGroup": FETCH_UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _secret_env(inputs: ExportInputs, name: str, *, optional: bool = False) -> Doc:
    ref: Doc = {"name": names.secret_name(inputs), "key": name}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def secret_env(inputs: ExportInputs, name: str) -> Doc:
    """An environment variable read from the Secret the user creates (a required key)."""
    return _secret_env(inputs, name)


def _hf_files(ref: ModelRef) -> list[str]:
    return part_names(ref.path) if ref.scheme == "hf" and ref.path else []


def _file_lines(ref: ModelRef) -> str:
    """``PATH URL SHA256`` lines for the curl fetcher."""
    if ref.scheme == "https":
        return f"{ref.filename} {ref.url} {ref.sha256 or '-'}"
    revision = quote(ref.revision or "main", safe="")
    return "\n".join(
        f"{path} hf:{ref.repo}/resolve/{revision}/{quote(path)} -" for path in _hf_files(ref)
    )


def _script(name: str) -> str:
    return resources.files("llmdeploy.render").joinpath("templates", name).read_text("utf-8")
