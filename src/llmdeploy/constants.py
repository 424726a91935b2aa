"""Names shared across the project: environment variables, labels, defaults."""

from __future__ import annotations

# Environment variables read by llmdeploy.
ENV_DEBUG = "LLMDEPLOY_DEBUG"
ENV_CONFIG_DIR = "LLMDEPLOY_CONFIG_DIR"
ENV_MODEL_STORE = "LLMDEPLOY_MODEL_STORE"
ENV_ENGINE = "LLMDEPLOY_ENGINE"
ENV_PODMAN_SOCKET = "LLMDEPLOY_PODMAN_SOCKET"
ENV_DOCKER_HOST = "DOCKER_HOST"
ENV_CONTAINER_HOST = "CONTAINER_HOST"  # Podman's remote-client address, honoured as Podman does
ENV_XDG_RUNTIME_DIR = "XDG_RUNTIME_DIR"  # a rootless user's runtime dir (the Podman socket's home)
ENV_XDG_CONFIG_HOME = "XDG_CONFIG_HOME"
ENV_XDG_CACHE_HOME = "XDG_CACHE_HOME"
ENV_XDG_STATE_HOME = "XDG_STATE_HOME"
ENV_HOME = "HOME"
# Hugging Face Hub variables llmdeploy reads on the host (and sets offline in vLLM containers)
ENV_HF_ENDPOINT = "HF_ENDPOINT"
ENV_HF_TOKEN = "HF_TOKEN"
ENV_HF_HUB_OFFLINE = "HF_HUB_OFFLINE"
ENV_TRANSFORMERS_OFFLINE = "TRANSFORMERS_OFFLINE"
ENV_HF_HOME = "HF_HOME"
ENV_HF_HUB_CACHE = "HF_HUB_CACHE"
ENV_CONTAINERS_CONF = "CONTAINERS_CONF"  # Podman reads only this containers.conf when it is set
ENV_BASE_IMAGE = "LLMDEPLOY_BASE_IMAGE"
ENV_WHEELHOUSE = "LLMDEPLOY_WHEELHOUSE"

# Labels every managed container carries.
LABEL_PREFIX = "io.llmdeploy"
LABEL_MANAGED = f"{LABEL_PREFIX}.managed"
LABEL_DEPLOYMENT = f"{LABEL_PREFIX}.deployment"
LABEL_PROFILE = f"{LABEL_PREFIX}.profile"
LABEL_MODEL = f"{LABEL_PREFIX}.model"
LABEL_SERVED_MODEL = f"{LABEL_PREFIX}.served-model"
LABEL_BACKEND = f"{LABEL_PREFIX}.backend"
LABEL_ENDPOINT = f"{LABEL_PREFIX}.endpoint"
LABEL_HEALTH_PATH = f"{LABEL_PREFIX}.health-path"
LABEL_METRICS_PATH = f"{LABEL_PREFIX}.metrics-path"
LABEL_API = f"{LABEL_PREFIX}.api"
LABEL_API_PATH = f"{LABEL_PREFIX}.api-path"
LABEL_SPEC_HASH = f"{LABEL_PREFIX}.spec-hash"
LABEL_ACCELERATOR = f"{LABEL_PREFIX}.accelerator"
# the planner's KV cache figures at creation (labels cannot change later; the server's own
# figure is read from its log by `up` and `status`, see docs/planner.md "Planned vs actual")
LABEL_PLAN_KV_BYTES = f"{LABEL_PREFIX}.plan.kv-cache-bytes"
LABEL_PLAN_KV_TOKENS = f"{LABEL_PREFIX}.plan.kv-cache-tokens"
# Labels of images `llmdeploy build` makes (besides the OCI annotation keys)
# time to ready (deploy/ready_time.py): what `up` knows when it creates the container
LABEL_READY_PREFIX = f"{LABEL_PREFIX}.time-to-ready"
LABEL_BAKED = f"{LABEL_PREFIX}.baked"  # "true": the weights are inside, at the model directory
LABEL_BAKED_FILE = f"{LABEL_PREFIX}.baked.file"  # the model file baked in ("." for a folder)
LABEL_BUILT_BY = f"{LABEL_PREFIX}.built-by"
LABEL_PLATFORM = f"{LABEL_PREFIX}.platform"

DEFAULT_HOST = "127.0.0.1"
CONTAINER_NAME_PREFIX = "llmdeploy-"
MODEL_MOUNT_DIR = "/models"

# Default API addresses of the engines (engines/addresses.py derives every address from these).
PODMAN_ROOTFUL_SOCKET = "/run/podman/podman.sock"
#: A rootless Podman's socket, below the user's runtime dir ($XDG_RUNTIME_DIR, else /run/user/UID).
PODMAN_USER_SOCKET = "podman/podman.sock"
USER_RUNTIME_DIR = "/run/user/{uid}"
DOCKER_DEFAULT_HOST = "unix:///var/run/docker.sock"
