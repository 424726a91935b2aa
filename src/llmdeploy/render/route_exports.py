"""The router of a profile's ``fallback:`` section in the exports: a compose service, and a
Kubernetes Deployment + Service + ConfigMap. Pure, like the other renderers.

- compose: the same container ``route --run`` starts (``route_config.router_run_spec``):
  LiteLLM on the host's network bound to the route's address, reaching the edge where its
  port is published (the profile's 127.0.0.1:PORT), the configuration in ``route/`` mounted
  read-only, every capability dropped, secrets as ``${VAR:?...}`` references; its image is
  built from ``route-image/`` (the Containerfile ``route --run`` builds) when missing.
- kube: the configuration in a ConfigMap whose edge is the deployment's Service
  (``http://llmdeploy-NAME:PORT/v1``) and whose cloud is the fallback profile's Service in the
  same namespace (or the fallback URL); the router's keys from the Secret
  ``llmdeploy-NAME-route-secrets`` (``secretKeyRef``, never rendered), LiteLLM bound to
  0.0.0.0 in its pod, behind its own ClusterIP Service, probed on its liveness and readiness
  paths, non-root on a read-only root filesystem with every capability dropped.
"""

from __future__ import annotations

from typing import Any

from llmdeploy.core.launch import BuildRecipe, RenderedFile
from llmdeploy.core.route import (
    ROUTER_CONFIG_DIR,
    ROUTER_CONFIG_FILE,
    ROUTER_KIND,
    ROUTER_LIVE_PATH,
    ROUTER_READY_PATH,
    RouteSpec,
)
from llmdeploy.render.compose import escape_interpolation, hardening, secret_reference
from llmdeploy.render.containerfile import render_build_context
from llmdeploy.render.route_config import config_text, router_run_spec, with_spec_hash

COMPOSE_CONFIG_DIR = "route"
COMPOSE_IMAGE_DIR = "route-image"
ROUTER_UID = 10001  # the image's user (litellm.Containerfile.j2)


def compose_router(
    spec: RouteSpec, recipe: BuildRecipe, edge_service: str
) -> tuple[dict[str, Any], list[RenderedFile]]:
    """The router's compose service and the files it needs beside the compose file."""
    config = config_text(spec)
    run = with_spec_hash(router_run_spec(spec, recipe.default_tag, f"./{COMPOSE_CONFIG_DIR}"),
                         config)
    # as the deployment's own service (render/compose.py): values escaped, keys by reference
    environment: dict[str, str] = escape_interpolation(dict(sorted(run.env.items())))
    for key, host_var in sorted(run.secret_env.items()):
        environment[key] = secret_reference(host_var)
    live = f"http://{_loopback(spec.host)}:{spec.port}{ROUTER_LIVE_PATH}"
    service: dict[str, Any] = {
        "image": recipe.default_tag,
        "build": {
            "context": f"./{COMPOSE_IMAGE_DIR}",
            "dockerfile": "Containerfile",
            "args": {"BASE_IMAGE": recipe.variables["base_image"]},
        },
        "container_name": run.name,
        "command": escape_interpolation(list(run.args)),
        "network_mode": "host",
        "environment": environment,
        "volumes": [f"./{COMPOSE_CONFIG_DIR}:{ROUTER_CONFIG_DIR}:ro"],
        **hardening(run),
        "depends_on": [edge_service],
        "healthcheck": {
            "test": ["CMD", "python3", "-c",
                     f"import urllib.request; urllib.request.urlopen({live!r}, timeout=4)"],
            "interval": "10s",
            "timeout": "5s",
            "retries": 3,
            "start_period": "30s",
        },
        "restart": "unless-stopped",
        "labels": escape_interpolation(dict(sorted(run.labels.items()))),
    }
    files = [RenderedFile(f"{COMPOSE_CONFIG_DIR}/{ROUTER_CONFIG_FILE}", config)]
    files += [RenderedFile(f"{COMPOSE_IMAGE_DIR}/{f.path}", f.content, f.executable)
              for f in render_build_context(recipe)]
    files.append(RenderedFile(
        f"{COMPOSE_IMAGE_DIR}/wheels/README.txt",
        "Put the router's wheelhouse here for an offline build:\n"
        f"  scripts/make-litellm-wheelhouse.sh {COMPOSE_IMAGE_DIR}/wheels\n"
        "Left without wheels, the build installs LiteLLM from the package index.\n",
    ))
    return service, files


def compose_header(spec: RouteSpec) -> list[str]:
    return [
        f"Router {spec.name}: {spec.api_base_url}, model {spec.public_model}, the edge first and",
        f"{spec.cloud.api_base} ({spec.cloud.source}) as its fallback (docs/route.md);",
        f"it needs {', '.join(spec.secret_envs)} (clients send ${spec.master_key_env}).",
    ]


def _loopback(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def kube_router_files(
    spec: RouteSpec, image: str, meta: dict[str, Any], selector: dict[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """(file name, object) for the router's ConfigMap, Deployment and Service.

    ``spec``: the in-cluster route (its edge and cloud are Service URLs, host 0.0.0.0);
    ``meta``: the metadata of the deployment's objects (labels, namespace) to start from;
    ``selector``: the deployment's selector labels (the router's name its own instance).
    """
    name = f"llmdeploy-{spec.name}"
    router_selector = {**selector, "app.kubernetes.io/instance": spec.name}
    labels = {
        **meta.get("labels", {}),
        **router_selector,
        "app.kubernetes.io/component": "router",
        "io.llmdeploy.deployment": spec.name,
        "io.llmdeploy.backend": ROUTER_KIND,
        "io.llmdeploy.accelerator": "cpu",
    }

    def metadata(object_name: str) -> dict[str, Any]:
        found = {**meta, "name": object_name, "labels": labels}
        return found

    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(f"{name}-config"),
        "data": {ROUTER_CONFIG_FILE: config_text(spec)},
    }
    secret = f"{name}-secrets"
    env: list[dict[str, Any]] = [
        {"name": k, "value": v} for k, v in sorted(router_run_spec(spec, image, "").env.items())
    ]
    env += [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": var}}}
        for var in spec.secret_envs
    ]

    def probe(path: str, period_s: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period_s,
                "timeoutSeconds": 5, "failureThreshold": failures}

    container = {
        "name": "router",
        "image": image,
        "args": ["--config", f"{ROUTER_CONFIG_DIR}/{ROUTER_CONFIG_FILE}", "--host", "0.0.0.0",
                 "--port", str(spec.port)],
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "env": env,
        "volumeMounts": [
            {"name": "config", "mountPath": ROUTER_CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "startupProbe": probe(ROUTER_LIVE_PATH, 2, 60),
        "livenessProbe": probe(ROUTER_LIVE_PATH, 10, 3),
        "readinessProbe": probe(ROUTER_READY_PATH, 5, 3),
        "resources": {"requests": {"cpu": "100m", "memory": "512Mi"},
                      "limits": {"memory": "2Gi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": ROUTER_UID,
            "runAsGroup": ROUTER_UID,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": router_selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": f"{name}-config"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name),
        "spec": {
            "type": "ClusterIP",
            "selector": router_selector,
            "ports": [{"name": "http", "port": spec.port, "targetPort": "http",
                       "protocol": "TCP"}],
        },
    }
    return [("route-configmap.yaml", config_map), ("route-deployment.yaml", deployment),
            ("route-service.yaml", service)]
