"""The Ollama backend without a server: container spec, images, Modelfile rendering, bundle.

The HTTP side (pull, blobs, create, load, chat) is in tests/integration/test_ollama_lifecycle.py,
against a FAKE Ollama server (no Ollama binary can be installed on the test machines).
"""

from __future__ import annotations

import random
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fakes.modelfile_parser import parse_modelfile
from llmdeploy.backends.base import RunningServer
from llmdeploy.backends.ollama import (
    OllamaServer,
    definition_for,
    served_model_name,
)
from llmdeploy.backends.ollama_modelfile import create_body, render_modelfile
from llmdeploy.backends.registry import get_backend
from llmdeploy.core.engine_traits import DOCKER, PODMAN
from llmdeploy.core.launch import ModelMount
from llmdeploy.core.reporting import NullReporter
from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.errors import EndpointError, RenderError
from llmdeploy.profiles.loader import resolve
from llmdeploy.profiles.modelfile_syntax import read_value
from llmdeploy.profiles.schema import Profile
from llmdeploy.render.bundle import render_bundle
from llmdeploy.render.command_line import run_argv

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MOUNT = ModelMount("/models", GGUF)
IMAGE = "docker.io/ollama/ollama:0.32.15"


def profile(backend: dict[str, Any] | None = None, **fields: Any) -> Profile:
    data: dict[str, Any] = {
        "name": "ollama-unit",
        "backend": {"kind": "ollama", **(backend or {})},
        "model": {"ref": f"file:///weights/{GGUF}"},
        "image": IMAGE,
        **fields,
    }
    return Profile.model_validate(data)


def plan(p: Profile, tmp_path: Path) -> Any:
    return plan_deployment(p, model_dir=tmp_path / "store", model_filename=GGUF,
                           data_root=tmp_path / "data")


def modelfile(p: Profile, mount: ModelMount = MOUNT) -> str:
    return render_modelfile(definition_for(p, mount), profile_name=p.name)


# -- container spec --------------------------------------------------------------------------


def test_describe_serves_ollama_on_11434_with_env_from_the_profile() -> None:
    launch = OllamaServer().describe(
        profile({"num_ctx": 8192, "num_parallel": 3, "keep_alive": "1h"}), MOUNT)
    assert launch.args == ("serve",)
    assert launch.container_port == 11434
    assert launch.env == {
        "OLLAMA_HOST": "0.0.0.0:11434",
        "OLLAMA_MODELS": "/root/.ollama/models",
        "OLLAMA_KEEP_ALIVE": "1h",
        "OLLAMA_CONTEXT_LENGTH": "8192",
        "OLLAMA_NUM_PARALLEL": "3",
    }
    assert launch.data_dir == "/root/.ollama"
    assert (launch.health_path, launch.api, launch.api_base_path) == ("/api/version", "ollama", "/v1")
    assert launch.metrics_path is None  # Ollama has no Prometheus endpoint


def test_defaults_leave_parallelism_to_ollama_and_health_path_is_overridable() -> None:
    launch = OllamaServer().describe(profile(health={"path": "/"}), MOUNT)
    assert "OLLAMA_NUM_PARALLEL" not in launch.env
    assert launch.env["OLLAMA_CONTEXT_LENGTH"] == "4096"
    assert launch.health_path == "/"


def test_registry_knows_ollama() -> None:
    assert isinstance(get_backend("ollama"), OllamaServer)


def test_plan_mounts_weights_read_only_and_a_writable_data_dir(tmp_path: Path) -> None:
    result = plan(profile(), tmp_path)
    mounts = {m.target: m for m in result.run.mounts}
    assert mounts["/models"].read_only and mounts["/models"].source == str(tmp_path / "store")
    data = mounts["/root/.ollama"]
    assert not data.read_only
    assert data.source == str(tmp_path / "data" / "ollama-unit" / "ollama")
    assert result.run.image == IMAGE and result.run.args == ("serve",)
    assert result.api_base_url.endswith(":8080/v1")


@pytest.mark.parametrize(("accelerator", "tag"), [("cpu", "0.32.15"), ("cuda", "0.32.15"),
                                                   ("rocm", "0.32.15-rocm")])
def test_official_image_tags(accelerator: str, tag: str) -> None:
    p = profile(accelerator=accelerator)
    assert OllamaServer().default_image(p) == f"docker.io/ollama/ollama:{tag}"


def test_builtin_profile_uses_the_pinned_cpu_image() -> None:
    p = resolve("local-ollama", env={}).profile
    assert p.image == OllamaServer().default_image(p)
    assert p.backend.kind == "ollama" and p.backend.num_ctx == 2048
    assert (p.server.host, p.server.port, p.engine) == ("127.0.0.1", 11434, "auto")
    assert served_model_name(p) == "smollm2-135m"


def test_gpu_requests_per_engine(tmp_path: Path) -> None:
    cuda = plan(profile(accelerator="cuda"), tmp_path)
    assert "nvidia.com/gpu=0" in run_argv(cuda.run, PODMAN)  # gpus defaults to 1
    docker = run_argv(cuda.run, DOCKER)
    assert docker[docker.index("--gpus") + 1] == "1"
    rocm_profile = profile(accelerator="rocm")
    rocm_profile = rocm_profile.model_copy(
        update={"image": OllamaServer().default_image(rocm_profile)})
    argv = run_argv(plan(rocm_profile, tmp_path).run, PODMAN)
    assert "/dev/kfd" in argv and "/dev/dri" in argv
    assert "docker.io/ollama/ollama:0.32.15-rocm" in argv
    assert "--gpus" not in run_argv(plan(profile(), tmp_path).run, DOCKER)


def test_no_local_build_of_ollama(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="llmdeploy does not build ollama images") as info:
        profile(build={"base_image": "localhost/base:1"})
    assert "official ollama/ollama image" in str(info.value)


# -- model references and names ----------------------------------------------------------------


def test_ollama_refs_are_rejected_on_llamacpp_at_validation() -> None:
    with pytest.raises(ValidationError, match="backend.kind: ollama"):
        Profile.model_validate({"name": "x", "backend": {"kind": "llamacpp"},
                                "model": {"ref": "ollama://llama3.2:1b"}, "image": "i"})


def test_safetensors_are_rejected_on_ollama_at_validation() -> None:
    with pytest.raises(ValidationError, match="Ollama imports GGUF"):
        profile(model={"ref": "hf://org/repo"})


def test_served_model_names() -> None:
    assert served_model_name(profile()) == "smollm2-135m-instruct.q4_1"
    assert served_model_name(profile(model={"ref": "ollama://llama3.2"})) == "llama3.2:latest"
    assert served_model_name(profile(model={"ref": "ollama://library/llama3.2:1b"})) == "library/llama3.2:1b"
    assert served_model_name(profile(model={"ref": "ollama://reg.example:5000/team/m:q4"})) == "reg.example:5000/team/m:q4"
    assert served_model_name(profile(model={"ref": "ollama://x:1", "name": "mine"})) == "mine"
    with pytest.raises(ValidationError, match="model.name: not an Ollama model name"):
        profile(model={"ref": f"file:///w/{GGUF}", "name": "bad/na/me/x"})


# -- Modelfile ---------------------------------------------------------------------------------


def test_num_ctx_is_always_set_explicitly() -> None:
    text = modelfile(profile())
    assert "PARAMETER num_ctx 4096\n" in text
    assert text.splitlines()[-1] == "PARAMETER num_ctx 4096"
    assert parse_modelfile(text).create_request()["parameters"] == {"num_ctx": 4096}
    pulled = modelfile(profile(model={"ref": "ollama://llama3.2:1b"}))
    assert "FROM llama3.2:1b\nPARAMETER num_ctx 4096\n" in pulled


def test_modelfile_lines_and_the_create_body_say_the_same() -> None:
    p = profile({
        "num_ctx": 2048, "temperature": 0.7, "stop": ["<|im_end|>", 'say "stop"', " lead"],
        "parameters": {"top_k": 20, "top_p": "0.9", "use_mmap": False, "seed": 42},
        "template": '{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
                    '<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n',
        "system": 'You are "terse".\nAnswer in one line.',
    })
    text = modelfile(p)
    lines = text.splitlines()
    assert lines[4] == f"FROM /models/{GGUF}"
    assert lines[5:9] == ["PARAMETER num_ctx 2048", "PARAMETER temperature 0.7",
                          "PARAMETER seed 42", "PARAMETER top_k 20"]
    assert 'PARAMETER stop "<|im_end|>"' in lines
    assert 'PARAMETER stop "say "stop""' in lines
    assert 'PARAMETER stop " lead"' in lines
    assert 'SYSTEM """You are "terse".' in lines
    definition = definition_for(p, MOUNT)
    body = create_body(definition, {GGUF: "sha256:" + "0" * 64})
    parsed = parse_modelfile(text).create_request()
    assert parsed.pop("from") == f"/models/{GGUF}"
    assert body.pop("files") == {GGUF: "sha256:" + "0" * 64}
    assert body.pop("model") == "smollm2-135m-instruct.q4_1"
    assert parsed["parameters"]["use_mmap"] is False and body["parameters"]["top_p"] == 0.9
    assert parsed == body  # what Ollama reads from the Modelfile == what llmdeploy sends


def test_create_body_builds_on_a_pulled_model() -> None:
    definition = definition_for(profile({"num_ctx": 1024}, model={"ref": "ollama://qwen3:0.6b"}),
                                MOUNT)
    assert create_body(definition, None) == {
        "model": "qwen3:0.6b", "from": "qwen3:0.6b", "parameters": {"num_ctx": 1024}}


@pytest.mark.parametrize("text", [
    'He said "hi"',
    '"quoted at both ends"',
    '""',
    'ends with a quote"',
    "  spaces around  ",
    "line one\nline two",
    'line "one"\n"line two"',
    'a """triple""" inside',
    '"""',
    "{{ .Prompt }}\n",
    "\nleading newline",
    "tab\tinside",
    "ünïcödé ✓ 中文",
])
def test_template_and_system_text_round_trips_through_ollamas_parser(text: str) -> None:
    p = profile({"template": text, "system": text, "stop": [text.strip() or "x"]})
    parsed = parse_modelfile(modelfile(p)).create_request()
    assert parsed["template"] == text
    assert parsed["system"] == text
    assert parsed["parameters"]["stop"] == [text.strip() or "x"]


def test_text_no_modelfile_can_carry_is_refused_not_mangled() -> None:
    # refused by the schema, so `profiles validate` says so before anything renders or starts
    with pytest.raises(ValidationError, match="ends in \"\"\""):
        profile({"template": 'first line """\nsecond line'})
    with pytest.raises(ValidationError, match="character"):
        profile({"system": "bell \x07"})
    with pytest.raises(ValidationError, match="backend.ollama.stop"):
        profile({"stop": ['x"""\ny']})
    # the renderer still refuses a definition built in code rather than write it wrong
    definition = definition_for(profile(), MOUNT)
    with pytest.raises(RenderError, match="ends in"):
        render_modelfile(replace(definition, template='x"""\ny'), profile_name="p")


def test_rendering_either_round_trips_or_refuses() -> None:
    rng = random.Random(4)
    alphabet = ['"', '"', "\n", " ", "\t", "a", "{", "}", "#", "é"]
    refused = 0
    for _ in range(600):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        try:
            rendered = modelfile(profile({"template": text}))
        except ValidationError:
            refused += 1
            continue
        assert parse_modelfile(rendered).create_request()["template"] == text
    assert refused < 200


def test_read_value_follows_ollamas_rules() -> None:
    # no escapes: a value that starts with a quote runs on until a line ends with one
    assert read_value('"a" b\n') is None
    assert read_value('"a" b"\n') == ('a" b', 6)
    assert read_value('a "b"\n') == ('a "b"', 5)
    assert read_value('"""x\n"""\n') == ("x\n", 8)
    assert read_value('"unterminated\n') is None


def test_parameters_are_checked_against_ollamas_names_and_types() -> None:
    with pytest.raises(ValidationError, match="unknown Ollama parameter 'num_ctxx'"):
        profile({"parameters": {"num_ctxx": 1}})
    with pytest.raises(ValidationError, match="backend.num_ctx"):
        profile({"parameters": {"num_ctx": 1}})
    with pytest.raises(ValidationError, match="must be int"):
        profile({"parameters": {"top_k": "many"}})
    with pytest.raises(ValidationError, match="empty stop"):
        profile({"stop": [""]})


# -- render bundle -----------------------------------------------------------------------------


def test_render_bundle_has_modelfile_and_ollama_create_but_no_build(tmp_path: Path) -> None:
    p = resolve("local-ollama", env={}).profile
    result = plan_deployment(p, model_dir=tmp_path / "store", model_filename=GGUF,
                             data_root=tmp_path / "data")
    files = {f.path: f for f in render_bundle(result, PODMAN)}
    assert set(files) == {"commands.sh", "run-spec.json", "Modelfile"}
    assert files["Modelfile"].content == modelfile(p)
    # wrapped options (" \\" + newline) joined back into one line per command
    commands = files["commands.sh"].content.replace(" \\\n    ", " ").splitlines()
    run = next(line for line in commands if line.startswith("podman run"))
    assert run.endswith("docker.io/ollama/ollama:0.32.15 serve")
    assert f"--volume {tmp_path}/data/local-ollama/ollama:/root/.ollama:rw" in run
    assert "until curl -fsS http://127.0.0.1:11434/api/version" in commands[-2]
    assert commands[-1] == ("podman exec -i llmdeploy-local-ollama ollama create smollm2-135m "
                            "-f /dev/stdin < Modelfile")
    script = tmp_path / "commands.sh"
    script.write_text(files["commands.sh"].content)
    subprocess.run(["sh", "-n", str(script)], check=True)


def test_render_bundle_pulls_ollama_refs(tmp_path: Path) -> None:
    p = profile(model={"ref": "ollama://llama3.2:1b"})
    result = plan_deployment(p, model_dir=tmp_path, model_filename="", data_root=tmp_path)
    files = {f.path: f.content for f in render_bundle(result, DOCKER)}
    lines = files["commands.sh"].splitlines()
    assert lines[-2] == "docker exec llmdeploy-ollama-unit ollama pull llama3.2:1b"
    assert "FROM llama3.2:1b\n" in files["Modelfile"]


# -- after_healthy without a server ------------------------------------------------------------


def test_unreachable_server_is_an_endpoint_error(tiny_gguf: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    prof = profile(server={"port": port})
    planned = plan_deployment(prof, model_dir=tiny_gguf.parent, model_filename=tiny_gguf.name,
                              data_root=tiny_gguf.parent / "data")
    server = RunningServer(plan=planned, options=prof.backend)
    with pytest.raises(EndpointError, match="could not reach Ollama") as info:
        OllamaServer().after_healthy(server, NullReporter())
    assert info.value.hint and "llmdeploy logs" in info.value.hint


def test_the_cli_reporter_draws_byte_progress_between_phases(capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    from llmdeploy.cli.progress import RichReporter

    reporter = RichReporter(enabled=True)
    reporter.phase("pull", "Pulling llama3.2:1b")
    reporter.progress("pulling 74701a8c35f6", 0, 1000)
    reporter.progress("pulling 74701a8c35f6", 1000, 1000)
    reporter.phase("create", "Creating the Ollama model")
    reporter.progress("uploading m.gguf", 5, 10)
    reporter.finish(success=True)
    err = capsys.readouterr().err
    assert "pulling 74701a8c35f6" in err and "Pulling llama3.2:1b" in err
