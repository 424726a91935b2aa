"""Kubernetes manifests, and the ``podman kube play`` file, of one deployment.

:func:`render_kube` is the entry point ``llmdeploy export kube`` calls. Dialect
``kubernetes`` (files relative to the output folder)::

    deployment.yaml            Deployment: the server (cluster.py, workload.py, probes.py),
                               the weights fetcher (weights.py), Ollama's post-start (poststart.py)
    service.yaml               Service
    poddisruptionbudget.yaml   PodDisruptionBudget
    weights-pvc.yaml           the shared weights claim (kubernetes.weights_volume: shared)
    files-configmap.yaml       the backend's extra files (Ollama's Modelfile)
    ...                        the add-ons' files: autoscaling (ScaledObject or HPA) and
                               observability (ServiceMonitor, PrometheusRule, dashboard)
    kustomization.yaml         every file above, and the namespace: ``kubectl apply -k``
    README.txt                 how to apply, the Secret to create, what each file needs

Dialect ``podman``: ``pod.yaml`` (podman.py). Manifests are data dumped with PyYAML
(yamldoc.py); names and labels are shared with the add-ons (names.py).

The add-ons are other modules of this package with one function each, ``(ExportInputs) ->
list[RenderedFile]``: ``autoscaling.autoscaling_files`` and ``observability.observability_files``
``render_kube(..., addons=())`` renders the workload alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from llmdeploy.core.launch import RenderedFile
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import cluster, names, poststart, weights
from llmdeploy.render.kube.yamldoc import Doc, dump

Addon = Callable[[ExportInputs], list[RenderedFile]]
KUSTOMIZATION = "kustomization.yaml"


def _addons() -> tuple[Addon, ...]:
    from llmdeploy.render.kube.autoscaling import autoscaling_files
    from llmdeploy.render.kube.observability import observability_files

    return (autoscaling_files, observability_files)


def render_kube(
    inputs: ExportInputs,
    *,
    dialect: Literal["kubernetes", "podman"],
    addons: Sequence[Addon] | None = None,
) -> list[RenderedFile]:
    """The files of the export, paths relative to the output folder.

    ``addons``: renderers whose files join the kustomization (default: autoscaling and
    observability).
    Raises ProfileError naming the field for what the target cannot run: a model only this
    machine has (file://, pkg://, model.convert) on Kubernetes, a weights volume that cannot be
    sized, a non-numeric ``security.user``.
    """
    if dialect == "podman":
        from llmdeploy.render.kube.podman import render_podman

        return render_podman(inputs)
    weights.refuse_local_model(inputs)
    files = workload_files(inputs)
    for addon in _addons() if addons is None else addons:
        files += addon(inputs)
    from llmdeploy.render.kube.readme import readme

    notes = readme(inputs, files)
    return [*files, kustomization(inputs, files), notes]


def workload_files(inputs: ExportInputs) -> list[RenderedFile]:
    """The Deployment, Service, PodDisruptionBudget and the objects they use."""
    docs: list[tuple[str, Doc]] = [
        ("deployment.yaml", cluster.deployment(inputs)),
        ("service.yaml", cluster.service(inputs)),
        ("poddisruptionbudget.yaml", cluster.disruption_budget(inputs)),
    ]
    if weights.fetches(inputs) and weights.shared(inputs):
        docs.append(("weights-pvc.yaml", weights.weights_claim(inputs)))
    config = poststart.files_config_map(inputs)
    if config is not None:
        docs.append(("files-configmap.yaml", config))
    if inputs.route_in_cluster is not None and inputs.route_recipe is not None:
        from llmdeploy.render.route_exports import kube_router_files

        base = names.metadata(inputs, names.base_name(inputs))
        docs += kube_router_files(inputs.route_in_cluster, inputs.route_recipe.default_tag,
                                  base, names.selector_labels(inputs))
    return [RenderedFile(path, dump([doc])) for path, doc in docs]


def kustomization(inputs: ExportInputs, files: list[RenderedFile]) -> RenderedFile:
    doc: Doc = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    if names.namespace(inputs):
        doc["namespace"] = names.namespace(inputs)
    doc["resources"] = [f.path for f in files if f.path.endswith((".yaml", ".yml"))]
    header = [
        f"llmdeploy export kube: deployment {inputs.plan.deployment} "
        f"(profile {inputs.plan.profile_name})",
        "apply: kubectl apply -k .   (README.txt: the Secret to create, what each file needs)",
    ]
    return RenderedFile(KUSTOMIZATION, dump([doc], header=header))
