"""`up` itemises its time to ready on each real engine, and `status` shows the same figures."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from e2e_helpers import Cli, Deployment

pytestmark = pytest.mark.e2e

PHASES = ["model", "memory_plan", "image", "container_start", "server_load", "first_token"]


def test_up_itemises_its_time_to_ready_and_status_shows_it(
    cli: Cli, deployment: Deployment
) -> None:
    engine, name = deployment.engine, deployment.name
    started = time.monotonic()
    up = cli.json("up", "--profile-file", str(deployment.profile_file), "--warm-up")
    wall_s = time.monotonic() - started
    assert isinstance(up, dict)
    ready = up["time_to_ready"]
    phases = ready["phases_s"]
    assert list(phases) == PHASES
    for phase, seconds in phases.items():  # every phase happened and took a plausible time
        assert isinstance(seconds, float) and 0 <= seconds < 120, (phase, ready)
    assert ready["image_source"] in ("local", "built")
    if ready["image_source"] == "built":
        assert phases["image"] > 1.0, ready
    # the llama.cpp server really loads a model and answers a token: neither is instant
    assert phases["server_load"] > 0.05 and phases["first_token"] > 0.001, ready
    assert phases["container_start"] > 0.01, ready
    total = ready["total_s"]
    # the phases and the rest add up to up's own total, which the process's wall time holds
    assert sum(phases.values()) + ready["other_s"] == pytest.approx(total, abs=0.005)
    assert sum(phases.values()) <= total <= wall_s
    assert wall_s - total < 5.0, (wall_s, ready)  # Python start-up and imports, not a phase
    steps = [(p["name"], p["seconds"]) for p in up["phases"]]
    assert ready["other_s"] < max(1.5, 0.5 * total), (ready, steps)  # nothing big unitemised
    assert up["elapsed_s"] == pytest.approx(total, abs=0.005)

    # what was known at create is on the container
    labels = json.loads(subprocess.run(
        [engine, "inspect", "--format", "{{json .Config.Labels}}", f"llmdeploy-{name}"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout)
    assert float(labels["io.llmdeploy.time-to-ready.model-s"]) == pytest.approx(
        phases["model"], abs=0.001)
    assert float(labels["io.llmdeploy.time-to-ready.image-s"]) == pytest.approx(
        phases["image"], abs=0.001)
    assert float(labels["io.llmdeploy.time-to-ready.memory-plan-s"]) == pytest.approx(
        phases["memory_plan"], abs=0.001)
    assert labels["io.llmdeploy.time-to-ready.image-source"] == ready["image_source"]

    rows = cli.json("status", name)
    assert isinstance(rows, list) and len(rows) == 1
    assert rows[0]["time_to_ready"] == ready
    shown = cli("status", name)
    assert f"{name}: ready in {total:.2f} s: model" in shown.stdout, shown.stdout

    # an unchanged up starts nothing and leaves the record of the up that did
    again = cli.json("up", "--profile-file", str(deployment.profile_file))
    assert isinstance(again, dict) and again["unchanged"] is True
    assert again["time_to_ready"]["phases_s"]["server_load"] is None
    assert cli.json("status", name)[0]["time_to_ready"] == ready  # type: ignore[index]

    state = Path(cli.env["XDG_STATE_HOME"]) / "llmdeploy" / "deployments"
    assert len(list(state.glob("*.json"))) == 1
    cli.json("down", name)
    assert list(state.glob("*.json")) == []  # down removes the record with the container
