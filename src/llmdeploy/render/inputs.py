"""What the exporters (Kubernetes, ``podman kube play``, Quadlet, compose) render from.

One value per export: the deployment plan ``up`` would follow, the profile sections that only
matter past one host (``scale``, ``probes``, ``kubernetes``), and the figures the deploy layer
worked out for them (the planner's sizes, a queue target measured by ``llmdeploy bench``).
Renderers are pure functions of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmdeploy.core.launch import BuildRecipe
from llmdeploy.core.plan import DeploymentPlan
from llmdeploy.core.route import RouteSpec
from llmdeploy.profiles.schema import Profile


@dataclass(frozen=True)
class ExportInputs:
    """Everything an exporter needs, worked out before rendering.

    - ``plan``: the plan of the deployment (RunSpec, launch, labels, health), as ``up`` would
      run it; its host paths (store entry, data dir) are meaningless on a cluster;
    - ``profile``: for ``scale``, ``probes``, ``kubernetes``, ``gpus``, ``resources``;
    - ``weights_bytes``: the model's size on disk (None when unknown: not downloaded and no
      size in the reference), for the weights volume and the startup probe;
    - ``memory_bytes``: what the planner says one replica needs (weights + KV cache +
      overhead), for memory requests (None when the planner could not size it);
    - ``queue_target``: requests in flight per replica that trigger a scale-out, measured by
      ``--from-bench`` (None: the profile's ``scale.target``, else the default);
    - ``queue_target_source``: one line saying where ``queue_target`` came from;
    - ``ttft_slo_ms``: the TTFT p95 (ms) that bench run was held to, the threshold of the
      TTFT alert (None: no ``--from-bench``, or a run without a TTFT SLO or gate);
    - ``model_digest``: an ``oci://`` model's manifest digest (``sha256:HEX``) as the store
      recorded it when the model was pulled; the Kubernetes image volume is pinned to it
      (None: not pulled on this machine, or not an ``oci://`` model);
    - ``route``: the router of the profile's ``fallback:`` section as ``route --run`` runs it
      on this host (compose), ``route_in_cluster`` the same with Service URLs for its edge
      and cloud (Kubernetes), ``route_recipe`` the router image's build (None: no fallback).
    """

    plan: DeploymentPlan
    profile: Profile
    weights_bytes: int | None = None
    memory_bytes: int | None = None
    queue_target: float | None = None
    queue_target_source: str = ""
    ttft_slo_ms: float | None = None
    model_digest: str | None = None
    route: RouteSpec | None = None
    route_in_cluster: RouteSpec | None = None
    route_recipe: BuildRecipe | None = None
