"""Strict validation of the custom resources the Kubernetes export renders (no cluster needed).

The KEDA ScaledObject and the Prometheus Operator's ServiceMonitor and PrometheusRule are
checked against the OpenAPI schemas of their CustomResourceDefinitions, vendored in
``crd_schemas/`` from the upstream repositories at pinned releases (see
``crd_schemas/README.md``; ``scripts/vendor-crd-schemas.py`` refreshes them) and validated with
``jsonschema``, offline. Stricter than the API server, which prunes unknown fields of a custom
resource: an unknown field is a problem here (a typo would otherwise vanish on apply). The CEL
rules of the CRDs (``x-kubernetes-validations``) are not evaluated, except the one that matters
to the export (a ScaledObject's ``minReplicaCount <= maxReplicaCount``), written out here.

``validate_custom_resource(doc)`` returns problems as ``Kind/name: .json.path: message``.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).parent / "crd_schemas"
CUSTOM_KINDS: frozenset[str] = frozenset({"ScaledObject", "ServiceMonitor", "PrometheusRule"})
KNOWN_API_VERSIONS = {
    "ScaledObject": ("keda.sh/v1alpha1",),
    "ServiceMonitor": ("monitoring.coreos.com/v1",),
    "PrometheusRule": ("monitoring.coreos.com/v1",),
}
KEDA_DEFAULT_MAX_REPLICAS = 100

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")

__all__ = ["CUSTOM_KINDS", "KNOWN_API_VERSIONS", "validate_custom_resource"]


def validate_custom_resource(doc: dict[str, Any]) -> list[str]:
    """Problems of one ScaledObject, ServiceMonitor or PrometheusRule, each naming the object
    (``Kind/name``) and the JSON path; [] when it is valid."""
    kind = doc.get("kind")
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    where = f"{kind}/{name or '?'}"
    if kind not in CUSTOM_KINDS:
        return [f"{where}: .kind: not a custom resource llmdeploy checks ({_known_kinds()})"]
    api_version = doc.get("apiVersion")
    if api_version not in KNOWN_API_VERSIONS[kind]:
        known = ", ".join(KNOWN_API_VERSIONS[kind])
        return [f"{where}: .apiVersion: {api_version!r} is not a known version of {kind} "
                f"(known: {known})"]
    group, _, version = str(api_version).partition("/")
    from jsonschema import Draft7Validator

    validator = Draft7Validator(_schema(group, kind, version))
    problems = [
        f"{where}: {path}: {message}"
        for path, message in sorted(
            _describe(error) for error in validator.iter_errors(doc)
        )
    ]
    problems += [f"{where}: {problem}" for problem in _metadata_problems(metadata)]
    problems += [f"{where}: {problem}" for problem in _cel_rules(kind, doc)]
    return problems


@cache
def _schema(group: str, kind: str, version: str) -> dict[str, Any]:
    record = json.loads((SCHEMA_DIR / f"{group}_{kind}_{version}.json").read_text("utf-8"))
    closed: dict[str, Any] = _closed(record["schema"])
    return closed


def _closed(node: Any) -> Any:
    """The schema with unknown fields refused: every object schema that lists its properties
    (and keeps no unknown fields on purpose) gets ``additionalProperties: false``."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {key: _closed(value) for key, value in node.items()}
    if (
        "properties" in closed
        and "additionalProperties" not in closed
        and not closed.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


def _describe(error: Any) -> tuple[str, str]:
    """(JSON path, message) of one jsonschema error; an unknown field is named in the path."""
    path = _json_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        unknown = sorted(key for key in error.instance if key not in allowed)
        if unknown:
            fields = ", ".join(unknown)
            names = sorted(allowed)
            known = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            return f"{path.rstrip('.') or ''}.{unknown[0]}", (
                f"unknown field{'s' if len(unknown) > 1 else ''} {fields} (known here: {known})"
            )
    if error.validator == "required":
        return path, error.message.replace("is a required property", "is required")
    return path, error.message


def _json_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text or "."


def _metadata_problems(metadata: Any) -> list[str]:
    if not isinstance(metadata, dict):
        return [".metadata: is required (an object with a name)"]
    problems = []
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        problems.append(".metadata.name: is required")
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        problems.append(
            f".metadata.name: {name!r} is not a DNS subdomain (lowercase letters, digits, '-' "
            "and '.', at most 253)"
        )
    namespace = metadata.get("namespace")
    if namespace is not None and not (isinstance(namespace, str) and _DNS_LABEL.match(namespace)):
        problems.append(f".metadata.namespace: {namespace!r} is not a DNS label")
    for field in ("labels", "annotations"):
        values = metadata.get(field, {})
        if not isinstance(values, dict):
            problems.append(f".metadata.{field}: must be a map of strings")
            continue
        for key, value in values.items():
            if not isinstance(value, str):
                problems.append(f".metadata.{field}.{key}: {value!r} is not a string")
            elif not _label_key_ok(str(key)):
                problems.append(f".metadata.{field}.{key}: not a valid key")
            elif field == "labels" and not _LABEL_VALUE.match(value):
                problems.append(f".metadata.labels.{key}: {value!r} is not a valid label value")
    return problems


def _label_key_ok(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return bool(_LABEL_NAME.match(name))


def _cel_rules(kind: str, doc: dict[str, Any]) -> list[str]:
    """The CRDs' CEL rules that matter to the export, written out."""
    spec = doc.get("spec")
    if kind != "ScaledObject" or not isinstance(spec, dict):
        return []
    low, high = spec.get("minReplicaCount"), spec.get("maxReplicaCount", KEDA_DEFAULT_MAX_REPLICAS)
    if isinstance(low, int) and isinstance(high, int) and low > high:
        return [f".spec.minReplicaCount: {low} is above maxReplicaCount ({high})"]
    return []


def _known_kinds() -> str:
    return ", ".join(sorted(CUSTOM_KINDS))
