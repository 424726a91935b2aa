"""Names shared across the project: environment variables, labels, defaults."""

from __future__ import annotations

# Environment variables read by llmdeploy.
ENV_DEBUG = "LLMDEPLOY_DEBUG"
ENV_CONFIG_DIR = "LLMDEPLOY_CONFIG_DIR"
ENV_MODEL_STORE = "LLMDEPLOY_MODEL_STORE"
ENV_ENGINE = "LLMDEPLOY_ENGINE"
ENV_PODMAN_SOCKET = "LLMDEPLOY_PODMAN_SOCKET"
ENV_DOCKER_HOST = "DOCKER_HOST"
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

DEFAULT_HOST = "127.0.0.1"
CONTAINER_NAME_PREFIX = "llmdeploy-"
MODEL_MOUNT_DIR = "/models"

# Default API addresses of the engines (doctor reports on them).
PODMAN_ROOTFUL_SOCKET = "/run/podman/podman.sock"
DOCKER_DEFAULT_HOST = "unix:///var/run/docker.sock"
