"""``llmdeploy export``: the same deployment, rendered for an orchestrator instead of run.

One domain call, :func:`export_files`: plan the deployment as ``up`` would (without fetching
anything), work out the figures the targets need (the planner's weight and memory sizes, a
queue target measured by ``llmdeploy bench``), and hand them to the target's renderer:

- ``kube``: Kubernetes manifests and a kustomization (dialect ``kubernetes``), or one file
  ``podman kube play`` runs on an edge box (dialect ``podman``);
- ``quadlet``: systemd units for Podman (``.container``, ``.volume``);
- ``compose``: a compose file for ``docker compose`` / ``podman-compose``.

What the profile declares decides the output, whatever machine runs the command: a CPU laptop
exports a correct manifest for two NVIDIA GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from llmdeploy.core.launch import RenderedFile
from llmdeploy.deploy.up import plan_without_fetching
from llmdeploy.errors import UsageError
from llmdeploy.profiles.schema import Profile
from llmdeploy.profiles.targets import ScaleSpec
from llmdeploy.render.inputs import ExportInputs

ExportTarget = Literal["kube", "quadlet", "compose"]
KubeDialect = Literal["kubernetes", "podman"]


@dataclass(frozen=True)
class ExportRequest:
    """What a user asks ``export`` for.

    ``replicas``: (min, max) overriding the profile's ``scale``; ``from_bench``: a saved
    ``llmdeploy bench`` report whose sweep sets the autoscaling target.
    """

    profile: Profile
    target: ExportTarget
    base_dir: Path | None = None
    deployment: str | None = None
    dialect: KubeDialect = "kubernetes"
    replicas: tuple[int, int] | None = None
    from_bench: Path | None = None


def parse_replicas(text: str) -> tuple[int, int]:
    """``--replicas 2:8`` -> (2, 8); ``--replicas 3`` -> (3, 3). UsageError otherwise."""
    low, colon, high = text.partition(":")
    try:
        pair = (int(low), int(high if colon else low))
    except ValueError:
        raise UsageError(
            f"--replicas {text!r}: use MIN:MAX (e.g. 2:8) or a fixed count (e.g. 3)"
        ) from None
    if pair[0] < 0 or pair[1] < 1 or pair[0] > pair[1]:
        raise UsageError(f"--replicas {text!r}: need 0 <= MIN <= MAX and MAX >= 1")
    return pair


def export_inputs(request: ExportRequest) -> ExportInputs:
    """The plan and figures the renderers need; nothing is downloaded or started."""
    profile = request.profile
    if request.replicas is not None:
        low, high = request.replicas
        data = profile.scale.model_dump()
        data.update(min_replicas=low, max_replicas=high)
        profile = profile.model_copy(update={"scale": ScaleSpec.model_validate(data)})
    plan = plan_without_fetching(profile, base_dir=request.base_dir, deployment=request.deployment)
    weights, memory = _planned_sizes(profile)
    inputs = ExportInputs(
        plan=plan,
        profile=profile,
        weights_bytes=weights,
        memory_bytes=memory,
        model_digest=_stored_digest(profile),
    )
    if profile.fallback is not None:
        inputs = _with_route(inputs, request.deployment or profile.name)
    if request.from_bench is not None:
        from llmdeploy.bench.capacity import read_capacity

        capacity = read_capacity(request.from_bench)
        inputs = replace(
            inputs,
            queue_target=capacity.per_replica,
            queue_target_source=capacity.source,
            ttft_slo_ms=capacity.ttft_slo_ms,
        )
    return inputs


def _with_route(inputs: ExportInputs, deployment: str) -> ExportInputs:
    """The router of the profile's ``fallback:`` section: as ``route --run`` runs it on this
    host, and with in-cluster Service URLs for its two sides (Kubernetes)."""
    from llmdeploy import __version__
    from llmdeploy.backends.base import DEFAULT_BASE_IMAGE
    from llmdeploy.deploy.route import spec_from_fallback
    from llmdeploy.render.route_config import router_recipe

    profile, plan = inputs.profile, inputs.plan
    spec = replace(spec_from_fallback(profile), name=f"{deployment}-route")
    edge_url = f"http://{plan.run.name}:{plan.launch.container_port}{plan.launch.api_base_path}"
    cloud = spec.cloud
    fallback = profile.fallback
    if fallback is not None and fallback.profile is not None:
        from llmdeploy.profiles.loader import resolve

        other = plan_without_fetching(resolve(fallback.profile).profile)
        cloud = replace(cloud, api_base=f"http://{other.run.name}:"
                        f"{other.launch.container_port}{other.launch.api_base_path}")
    in_cluster = replace(spec, edge=replace(spec.edge, api_base=edge_url), cloud=cloud,
                         host="0.0.0.0")
    recipe = router_recipe(DEFAULT_BASE_IMAGE, __version__)
    return replace(inputs, route=spec, route_in_cluster=in_cluster, route_recipe=recipe)


def route_left_out(request: ExportRequest) -> str | None:
    """What to tell the user when the profile declares a ``fallback:`` router that this
    export does not carry (Quadlet, ``kube --dialect podman``); None when it carries it or
    there is none."""
    if request.profile.fallback is None:
        return None
    if request.target == "compose" or (request.target == "kube" and request.dialect != "podman"):
        return None
    what = "quadlet" if request.target == "quadlet" else "kube --dialect podman"
    name = request.deployment or request.profile.name
    return (
        f"the router of this profile's fallback: section is not part of `export {what}` "
        f"(export compose and export kube carry it); run it beside the deployment with "
        f"`llmdeploy route --edge {name} --run`"
    )


def export_files(request: ExportRequest) -> list[RenderedFile]:
    """The files of the export (paths relative to the output folder)."""
    inputs = export_inputs(request)
    if request.target == "kube":
        from llmdeploy.render.kube import render_kube

        return render_kube(inputs, dialect=request.dialect)
    if request.target == "quadlet":
        from llmdeploy.render.quadlet import render_quadlet

        return render_quadlet(inputs)
    from llmdeploy.render.compose import render_compose

    return render_compose(inputs)


def _stored_digest(profile: Profile) -> str | None:
    """The manifest digest of the pulled copy of an oci:// model (None: not pulled, or
    another scheme): the Kubernetes image volume names the artifact by it."""
    if profile.model.ref.scheme != "oci":
        return None
    from llmdeploy.models.store import ModelStore
    from llmdeploy.paths import model_store_dir

    stored = ModelStore(model_store_dir()).stored(profile.model.ref)
    return stored.digest if stored is not None else None


def _planned_sizes(profile: Profile) -> tuple[int | None, int | None]:
    """(weights on disk, what one replica needs) in bytes, from the planner; None when the
    model cannot be sized without downloading it."""
    from llmdeploy.errors import LlmdeployError
    from llmdeploy.planner import check_profile
    from llmdeploy.planner.host import model_info_for_ref

    try:
        info, _origin = model_info_for_ref(profile.model.ref)
        report = check_profile(profile, info, available_bytes=None)
    except LlmdeployError:
        return None, None
    weights = info.total_size_bytes or report.weights_bytes or None
    return weights, report.total_bytes or None


def write_export(out_dir: Path, files: list[RenderedFile]) -> None:
    """Write the files into ``out_dir`` (created when missing); RenderError naming the folder."""
    from llmdeploy.deploy.images import write_files
    from llmdeploy.errors import RenderError

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_files(out_dir, files)
    except OSError as exc:
        raise RenderError(
            f"--out {out_dir}: cannot write the exported files there: "
            f"{exc.strerror or exc} ({exc.filename or out_dir})",
            hint="choose a directory you can write to (it is created when missing)",
        ) from exc


def as_stream(files: list[RenderedFile]) -> str:
    """The files as one text for ``--stdout``: YAML documents joined with ``---`` (the
    kustomization left out, as ``kubectl apply -f -`` and ``podman kube play -`` take them), other
    files each under a ``# file: NAME`` line (as YAML comments after YAML documents, so the
    stream stays one YAML text: ``export kube``'s README.txt)."""
    yaml_docs = [
        f.content.strip() + "\n"
        for f in files
        if f.path.endswith((".yaml", ".yml")) and f.path != "kustomization.yaml"
    ]
    others = [f for f in files if not f.path.endswith((".yaml", ".yml"))]
    text = "---\n".join(yaml_docs)
    for item in others:
        content = item.content
        if yaml_docs:
            content = "".join(f"# {line}".rstrip() + "\n" for line in content.splitlines())
        text += f"# file: {item.path}\n{content}"
    return text
