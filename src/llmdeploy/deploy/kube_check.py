"""``llmdeploy export kube --check``: are the exported manifests valid, offline?

Three checks, each reported per object:

- every core Kubernetes object against the OpenAPI schemas of the versions asked for, strictly
  (an unknown field is an error), with ``kubernetes-validate`` (default: the three newest
  versions it ships). It stops at the first problem of an object and version; each problem
  names the object (kind/name, file) and the JSON path inside it;
- custom resources (KEDA, the Prometheus Operator) with ``llmdeploy.deploy.crd_check`` against
  their CRDs' schemas, when that module is installed ("not checked" otherwise);
- ``kubectl kustomize`` of the output folder when ``kubectl`` is on PATH (no cluster needed):
  the kustomization builds, and lists every file.

The manifests are the ones a profile renders, or (:func:`read_manifests`) a folder or file the
user wrote or edited by hand: ``llmdeploy export kube --check deploy/``.

:func:`check_manifests` returns a :class:`CheckResult`; ``raise_if_failed`` turns failures into
a RenderError (exit 3). An unknown ``--kube-version`` is a UsageError (exit 2).
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from llmdeploy.core.launch import RenderedFile
from llmdeploy.errors import LlmdeployError, RenderError, UsageError

Status = Literal["ok", "failed", "not checked"]
KUSTOMIZATION = "kustomization.yaml"
KUSTOMIZE_TIMEOUT_S = 60
DEFAULT_VERSION_COUNT = 3
CRD_CHECK = "llmdeploy.deploy.crd_check"


@dataclass(frozen=True)
class Problem:
    """One problem in one object: the Kubernetes version (None: not version-specific), the
    JSON path inside the object (``spec.template.spec.containers[0].image``), the message."""

    path: str
    message: str
    version: str | None = None

    def text(self) -> str:
        where = f"Kubernetes {self.version}: " if self.version else ""
        at = f"{self.path}: " if self.path else ""
        return f"{where}{at}{self.message}"


@dataclass(frozen=True)
class ObjectCheck:
    file: str
    kind: str
    name: str
    status: Status
    checked_by: str
    problems: tuple[Problem, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name} ({self.file})"


@dataclass(frozen=True)
class CheckResult:
    """What ``--check`` found: per object, and for the kustomize build."""

    versions: tuple[str, ...]
    objects: tuple[ObjectCheck, ...]
    kustomize_status: Status
    kustomize_detail: str
    file_problems: tuple[tuple[str, str], ...] = field(default=())  # (file, message)

    @property
    def ok(self) -> bool:
        return (
            not self.file_problems
            and all(o.status != "failed" for o in self.objects)
            and self.kustomize_status != "failed"
        )

    def lines(self) -> list[str]:
        out = [f"Kubernetes versions: {', '.join(self.versions)}"]
        for file, message in self.file_problems:
            out.append(f"FAILED  {file}: {message}")
        for item in self.objects:
            mark = {"ok": "ok     ", "failed": "FAILED ", "not checked": "skipped"}[item.status]
            out.append(f"{mark} {item.label}: {item.checked_by}")
            out += [f"          {problem.text()}" for problem in item.problems]
        mark = {"ok": "ok     ", "failed": "FAILED ", "not checked": "skipped"}[
            self.kustomize_status
        ]
        out.append(f"{mark} kustomize: {self.kustomize_detail}")
        failed = sum(o.status == "failed" for o in self.objects) + len(self.file_problems)
        failed += self.kustomize_status == "failed"
        out.append("all checks passed" if self.ok else f"{failed} check(s) failed")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "versions": list(self.versions),
            "files": [{"file": f, "problem": m} for f, m in self.file_problems],
            "objects": [
                {
                    "file": o.file,
                    "kind": o.kind,
                    "name": o.name,
                    "status": o.status,
                    "checked_by": o.checked_by,
                    "problems": [
                        {"version": p.version, "path": p.path, "message": p.message}
                        for p in o.problems
                    ],
                }
                for o in self.objects
            ],
            "kustomize": {"status": self.kustomize_status, "detail": self.kustomize_detail},
        }

    def raise_if_failed(self) -> None:
        """RenderError (exit 3) naming each failed object, its file and the paths."""
        if self.ok:
            return
        found = [f"{file}: {message}" for file, message in self.file_problems]
        for item in self.objects:
            if item.status == "failed":
                found += [f"{item.label}: {p.text()}" for p in item.problems]
        if self.kustomize_status == "failed":
            found.append(f"kustomize: {self.kustomize_detail}")
        raise RenderError(
            f"{len(found)} problem(s) in the exported manifests:\n  " + "\n  ".join(found),
            hint="a rendered manifest that fails is a bug in llmdeploy: please report it with "
            "the profile; a hand-edited one names the field to fix",
        )


# -- versions ---------------------------------------------------------------------------------


def _validator() -> Any:
    """kubernetes-validate's module; LlmdeployError with the install line when it is missing."""
    try:
        from kubernetes_validate import utils
    except ImportError as exc:
        raise LlmdeployError(
            "export kube --check needs kubernetes-validate (the Kubernetes schemas, offline)",
            hint="pip install 'llmdeploy[kube]'",
        ) from exc
    return utils


def supported_versions() -> list[str]:
    """The Kubernetes versions kubernetes-validate ships schemas for (``1.35``...), oldest first."""
    kv = _validator()
    return list(dict.fromkeys(kv.major_minor(v) for v in kv.all_versions()))


def resolve_versions(asked: Sequence[str]) -> tuple[str, ...]:
    """``1.36``, ``v1.36`` or ``1.36.2`` -> ``1.36``; none asked: the newest three.
    UsageError naming ``--kube-version`` for a version without schemas."""
    known = supported_versions()
    if not asked:
        return tuple(known[-DEFAULT_VERSION_COUNT:])
    chosen: list[str] = []
    for text in asked:
        parts = text.strip().removeprefix("v").split(".")
        version = ".".join(parts[:2])
        if len(parts) < 2 or not all(p.isdigit() for p in parts) or version not in known:
            raise UsageError(
                f"--kube-version {text!r}: no schemas for it in kubernetes-validate",
                hint=f"use one of {known[0]} .. {known[-1]} (e.g. --kube-version {known[-1]})",
            )
        chosen.append(version)
    return tuple(dict.fromkeys(chosen))


# -- the checks -------------------------------------------------------------------------------

CustomValidator = Callable[[dict[str, Any]], list[str]]


def _custom_validator() -> tuple[frozenset[str], CustomValidator | None]:
    """(the kinds crd_check validates, its validator); none when it is not installed."""
    try:
        module = importlib.import_module(CRD_CHECK)
    except ModuleNotFoundError as exc:
        if exc.name != CRD_CHECK:
            raise
        return frozenset(), None
    return frozenset(module.CUSTOM_KINDS), module.validate_custom_resource


def _core_group(api_version: str) -> bool:
    """Whether the API group is Kubernetes' own (``v1``, ``apps/v1``, ``*.k8s.io/...``)."""
    group = api_version.rpartition("/")[0]
    return not group or "." not in group or group.endswith(".k8s.io")


def _json_path(parts: Sequence[object]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _check_core(doc: dict[str, Any], versions: Sequence[str]) -> tuple[Status, list[Problem]]:
    """Every problem of one object against each version's strict schema; a problem found in
    several versions is reported once, naming them all (``Kubernetes 1.35, 1.36: ...``)."""
    found: dict[tuple[str, str], list[str]] = {}
    for version in versions:
        errors = _schema_errors(doc, version)
        if errors is None:
            return "failed", [
                Problem(
                    "apiVersion",
                    f"no Kubernetes {version} schema for {doc.get('kind')} "
                    f"{doc.get('apiVersion')} (an unknown kind, or an API version the cluster "
                    "no longer serves)",
                    version,
                )
            ]
        for key in errors:
            found.setdefault(key, []).append(version)
    problems = [Problem(path, message, ", ".join(vs)) for (path, message), vs in found.items()]
    return ("failed" if problems else "ok"), problems


def _schema_errors(doc: dict[str, Any], version: str) -> list[tuple[str, str]] | None:
    """(JSON path, message) of every schema error of ``doc`` in ``version``, in document order;
    None when the version has no schema for its kind.

    kubernetes-validate's ``validate`` stops at the first error; to show a hand-edited
    manifest's problems all at once this runs its validator (the same strict schema, found by
    ``validate``'s own lookup) with ``iter_errors``. Where that lookup cannot be reproduced (a
    newer kubernetes-validate), it falls back to ``validate``'s first error.
    """
    kv = _validator()
    try:
        kv.validate(doc, version, strict=True)
    except kv.SchemaNotFoundError:
        return None
    except kv.ValidationError as exc:
        validator = _jsonschema_validator(kv, doc, version)
        if validator is None:
            return [(_json_path(list(exc.path)), exc.message)]
        errors = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.path])
        return list(dict.fromkeys((_json_path(list(e.path)), e.message) for e in errors))
    return []


def _jsonschema_validator(kv: Any, doc: dict[str, Any], version: str) -> Any:
    """The jsonschema validator ``kubernetes_validate.validate`` builds for ``doc`` in
    ``version`` (strict), or None where its schema layout is not the one known here."""
    import re

    import jsonschema
    from referencing import Registry, Resource

    shipped = [v for v in kv.all_versions() if kv.major_minor(v) <= version]
    if not shipped:
        return None
    folder = f"kubernetes-json-schema/v{shipped[-1]}-local-strict"
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", str(doc["apiVersion"]))
    try:
        schema = kv.schema_contents(f"{folder}/{str(doc['kind']).lower()}-{api}.json", version)
        definitions = kv.schema_contents(f"{folder}/_definitions.json", version)
    except (OSError, ValueError, kv.InvalidSchemaError, kv.VersionNotSupportedError):
        # a changed layout: fall back to the first error
        return None
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _check_object(
    file: str,
    doc: dict[str, Any],
    versions: Sequence[str],
    custom: tuple[frozenset[str], CustomValidator | None],
) -> ObjectCheck:
    kind = str(doc.get("kind") or "?")
    metadata = doc.get("metadata")
    name = str(metadata.get("name") or "?") if isinstance(metadata, dict) else "?"
    if not doc.get("apiVersion") or kind == "?":
        problem = Problem("", "not a Kubernetes object (no apiVersion or kind)")
        return ObjectCheck(file, kind, name, "failed", "-", (problem,))
    custom_kinds, validator = custom
    if validator is not None and kind in custom_kinds:
        prefix = f"{kind}/{name}: "
        problems = tuple(
            Problem("", message.removeprefix(prefix)) for message in validator(doc)
        )
        return ObjectCheck(
            file, kind, name, "failed" if problems else "ok", "its CRD's schema", problems
        )
    if not _core_group(str(doc["apiVersion"])):
        why = "no CRD checker installed" if validator is None else "no schema for this kind"
        return ObjectCheck(file, kind, name, "not checked", f"a custom resource: {why}")
    status, found = _check_core(doc, versions)
    return ObjectCheck(file, kind, name, status, "Kubernetes OpenAPI schema (strict)", tuple(found))


def _kustomize(files: Sequence[RenderedFile], folder: Path | None) -> tuple[Status, str]:
    """Build the kustomization: in ``folder`` when the files were read from there (its
    references to other folders then resolve), else in a temporary copy of ``files``."""
    if not any(f.path == KUSTOMIZATION for f in files):
        return "not checked", "no kustomization.yaml (dialect podman, or none in the folder)"
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return "not checked", "kubectl is not on PATH"
    if folder is not None:
        return _run_kustomize(kubectl, folder, shown=str(folder))
    with tempfile.TemporaryDirectory(prefix="llmdeploy-kustomize-") as tmp:
        for item in files:
            target = Path(tmp) / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(item.content, encoding="utf-8")
        return _run_kustomize(kubectl, Path(tmp), shown=".")


def _run_kustomize(kubectl: str, folder: Path, *, shown: str) -> tuple[Status, str]:
    try:
        done = subprocess.run(
            [kubectl, "kustomize", str(folder)],
            capture_output=True,
            text=True,
            timeout=KUSTOMIZE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "failed", f"kubectl kustomize did not finish in {KUSTOMIZE_TIMEOUT_S} s"
    if done.returncode != 0:
        return "failed", (done.stderr.strip() or done.stdout.strip()).replace(str(folder), shown)
    built = [d for d in yaml.safe_load_all(done.stdout) if isinstance(d, dict)]
    return "ok", f"kubectl kustomize builds {len(built)} objects"


def read_manifests(path: Path) -> tuple[list[RenderedFile], Path | None]:
    """The YAML files under ``path`` (a folder, searched recursively, or one file) as
    RenderedFiles relative to it, and the folder to run kustomize in (None for a single file).

    Raises UsageError naming ``path`` when it does not exist, holds no ``.yaml``/``.yml`` file,
    or a file cannot be read as UTF-8 text.
    """
    if not path.exists():
        raise UsageError(f"--check {path}: no such file or folder")
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))
        base, folder = path, path
    else:
        found, base, folder = [path], path.parent, None
    if not found:
        raise UsageError(
            f"--check {path}: no .yaml or .yml file in it",
            hint="give the folder `llmdeploy export kube --out` wrote, or one manifest file",
        )
    files: list[RenderedFile] = []
    for item in found:
        try:
            content = item.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--check {item}: cannot read it as UTF-8 text ({exc})") from exc
        files.append(RenderedFile(item.relative_to(base).as_posix(), content))
    return files, folder


def check_manifests(
    files: list[RenderedFile], *, versions: tuple[str, ...], folder: Path | None = None
) -> CheckResult:
    """Validate the YAML files among ``files`` (see the module docstring).

    ``versions``: Kubernetes versions (``1.36``); empty: the three newest known. ``folder``: where
    ``files`` were read from (kustomize builds there); None: a temporary copy. Raises
    UsageError for a version without schemas; never raises for an invalid manifest (the result
    says what failed).
    """
    chosen = resolve_versions(versions)
    custom = _custom_validator()
    objects: list[ObjectCheck] = []
    file_problems: list[tuple[str, str]] = []
    for item in files:
        if not item.path.endswith((".yaml", ".yml")) or item.path == KUSTOMIZATION:
            continue
        try:
            docs = list(yaml.safe_load_all(item.content))
        except yaml.YAMLError as exc:
            file_problems.append((item.path, f"not valid YAML: {exc}"))
            continue
        for doc in docs:
            if doc is None:
                continue
            if not isinstance(doc, dict):
                file_problems.append((item.path, "a document that is not a mapping"))
                continue
            objects.append(_check_object(item.path, doc, chosen, custom))
    status, detail = _kustomize(files, folder)
    return CheckResult(chosen, tuple(objects), status, detail, tuple(file_problems))
