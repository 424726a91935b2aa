"""`export kube` against golden files, every object validated, the kustomization built.

Every built-in profile and three variants (NVIDIA x2 with every ``kubernetes:`` setting, AMD,
an ``ollama://`` model) in both dialects: ``tests/golden/<case>/kube/`` (Kubernetes) and
``tests/golden/<case>/kube-podman/`` (``podman kube play``). Regenerate with UPDATE_GOLDEN=1
after a deliberate change, and review the diff by hand.

Each Kubernetes object is validated strictly against the three newest Kubernetes versions
kubernetes-validate ships, and ``kubectl kustomize`` must build each Kubernetes output folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from kube_cases import CASES, case_inputs

from llmdeploy.deploy.kube_check import check_manifests
from llmdeploy.render.kube import render_kube

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
FOLDERS = {"kubernetes": "kube", "podman": "kube-podman"}


def rendered(case: str, dialect: str):  # type: ignore[no-untyped-def]
    return render_kube(case_inputs(case, dialect), dialect=dialect, addons=())  # type: ignore[arg-type]


@pytest.mark.parametrize("dialect", sorted(FOLDERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_file_matches_golden(case: str, dialect: str) -> None:
    folder = GOLDEN / case / FOLDERS[dialect]
    files = rendered(case, dialect)
    if UPDATE:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for item in files:
            (folder / item.path).write_text(item.content)
    on_disk = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    assert on_disk == sorted(f.path for f in files), f"{folder}: run with UPDATE_GOLDEN=1"
    for item in files:
        assert (folder / item.path).read_text() == item.content, f"{folder / item.path} differs"


@pytest.mark.parametrize("dialect", sorted(FOLDERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_object_validates_strictly(case: str, dialect: str) -> None:
    result = check_manifests(rendered(case, dialect), versions=())
    assert len(result.versions) == 3
    failed = [line for line in result.lines() if line.startswith(("FAILED", "          "))]
    assert result.ok, "\n".join(failed)
    assert result.objects and all(o.status == "ok" for o in result.objects)


@pytest.mark.parametrize("case", sorted(CASES))
def test_kubectl_kustomize_builds_the_folder(case: str, tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (scripts/setup-host.sh --with-export-tools)")
    files = rendered(case, "kubernetes")
    for item in files:
        (tmp_path / item.path).write_text(item.content)
    built = subprocess.run(
        [kubectl, "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert built.returncode == 0, built.stderr
    objects = [d for d in yaml.safe_load_all(built.stdout) if d]
    listed = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())["resources"]
    assert len(objects) == len(listed)
    namespace = case_inputs(case, "kubernetes").profile.kubernetes.namespace
    if namespace:
        assert {o["metadata"].get("namespace") for o in objects} == {namespace}
