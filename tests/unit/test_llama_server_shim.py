"""The `llama-server` shim of the local llama.cpp CPU image: argument parsing only.

The shim (src/llmdeploy/render/templates/llama-server) is a script without a .py suffix that
runs inside the image; it is loaded here from its path. Nothing here starts a server or needs
xllamacpp (one optional test applies the mapping to a real CommonParams when it is installed).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "llmdeploy" / "render" / "templates"
SHIM = TEMPLATES / "llama-server"

# the command line llmdeploy renders for the llama.cpp backend
RENDERED = [
    "-m",
    "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
    "--host",
    "0.0.0.0",
    "--port",
    "8080",
    "-c",
    "2048",
    "-np",
    "2",
    "-t",
    "2",
    "--metrics",
    "-a",
    "smollm2",
]


@pytest.fixture(scope="module")
def shim():
    loader = importlib.machinery.SourceFileLoader("llama_server_shim", str(SHIM))
    spec = importlib.util.spec_from_loader("llama_server_shim", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["llama_server_shim"] = module  # dataclasses resolve annotations through it
    try:
        loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("llama_server_shim", None)


def parse(shim, argv, env=None):
    return shim.parse_args(argv, env or {})


def test_rendered_command_line_maps_to_params(shim):
    opts = parse(shim, RENDERED)
    assert shim.to_param_updates(opts) == {
        "model.path": "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
        "hostnames": ["0.0.0.0"],
        "port": 8080,
        "endpoint_metrics": True,
        "n_ctx": 2048,
        "n_parallel": 2,
        "cpuparams.n_threads": 2,
        "cpuparams_batch.n_threads": 2,
        "model_alias": {"smollm2"},
    }


def test_long_forms_equal_short_forms(shim):
    long = [
        "--model",
        "/m.gguf",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--ctx-size",
        "2048",
        "--parallel",
        "2",
        "--threads",
        "2",
        "--metrics",
        "--alias",
        "smollm2",
    ]
    short = [
        "-m",
        "/m.gguf",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "-c",
        "2048",
        "-np",
        "2",
        "-t",
        "2",
        "--metrics",
        "-a",
        "smollm2",
    ]
    assert parse(shim, long) == parse(shim, short)


def test_equals_and_underscore_spellings(shim):
    # upstream llama-server accepts --ctx_size for --ctx-size
    a = parse(shim, ["--model=/m.gguf", "--ctx_size=512", "--n_gpu_layers", "0", "--port=9000"])
    assert (a.model, a.ctx_size, a.n_gpu_layers, a.port) == ("/m.gguf", 512, 0, 9000)


def test_defaults_match_upstream_and_leave_library_defaults(shim):
    opts = parse(shim, ["-m", "/m.gguf"])
    assert (opts.host, opts.port, opts.metrics) == ("127.0.0.1", 8080, False)
    assert shim.to_param_updates(opts) == {
        "model.path": "/m.gguf",
        "hostnames": ["127.0.0.1"],
        "port": 8080,
        "endpoint_metrics": False,
    }


def test_optional_flags(shim):
    opts = parse(
        shim,
        [
            "-m",
            "/m.gguf",
            "-ngl",
            "99",
            "--jinja",
            "--no-webui",
            "--api-key",
            "k1,k2",
            "-a",
            "one, two",
        ],
    )
    u = shim.to_param_updates(opts)
    assert u["n_gpu_layers"] == 99
    assert u["use_jinja"] is True
    assert u["ui"] is False
    assert u["api_keys"] == ["k1", "k2"]
    assert u["model_alias"] == {"one", "two"}
    assert parse(shim, ["-m", "x", "--gpu-layers", "all"]).n_gpu_layers == -2
    assert parse(shim, ["-m", "x", "--n-gpu-layers", "auto"]).n_gpu_layers == -1
    assert parse(shim, ["-m", "x", "--no-jinja"]).jinja is False


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["-m", "/m.gguf", "--bogus"], "invalid argument: --bogus"),
        (["-m", "/m.gguf", "--flash-attn", "on"], "invalid argument: --flash-attn"),
        (["-m", "/m.gguf", "--met"], "invalid argument: --met"),  # no abbreviations
        (["-m", "/m.gguf", "extra"], "unexpected positional argument: extra"),
        (["-m", "/m.gguf", "--port", "http"], "--port expects an integer"),
        (["-m", "/m.gguf", "--port", "70000"], "between 0 and 65535"),
        (["-m", "/m.gguf", "-np", "0"], "--parallel must be at least 1"),
        (["-m", "/m.gguf", "-ngl", "many"], "'auto' or 'all'"),
        (["-m", "/m.gguf", "--host", "/tmp/x.sock"], "unix sockets"),
        (["--port", "8080"], "-m/--model PATH"),
        (["-m"], "expected one argument"),
    ],
)
def test_rejected_command_lines(shim, argv, needle):
    with pytest.raises(shim.UsageError) as exc:
        parse(shim, argv)
    assert needle in str(exc.value)


def test_unknown_flag_lists_supported_flags(shim):
    with pytest.raises(shim.UsageError) as exc:
        parse(shim, ["-m", "/m.gguf", "--cont-batching"])
    assert "supports only" in str(exc.value) and "--ctx-size" in str(exc.value)


def test_main_returns_2_with_message(shim, capsys):
    assert shim.main(["-m", "/m.gguf", "--bogus"], {}) == 2
    err = capsys.readouterr().err
    assert "error: invalid argument: --bogus" in err
    assert "usage: llama-server" in err


def test_help_and_version_do_not_need_a_model(shim, capsys):
    assert shim.main(["--help"], {}) == 0
    out = capsys.readouterr().out
    for flag in (
        "--model",
        "--ctx-size",
        "--parallel",
        "--threads",
        "--metrics",
        "--alias",
        "--n-gpu-layers",
        "--jinja",
        "--no-webui",
        "--api-key",
        "LLAMA_ARG_CTX_SIZE",
    ):
        assert flag in out
    assert parse(shim, ["--version"]) == "version"


def test_environment_variables(shim):
    env = {
        "LLAMA_ARG_MODEL": "/env.gguf",
        "LLAMA_ARG_HOST": "0.0.0.0",
        "LLAMA_ARG_PORT": "9090",
        "LLAMA_ARG_CTX_SIZE": "1024",
        "LLAMA_ARG_N_PARALLEL": "3",
        "LLAMA_ARG_THREADS": "4",
        "LLAMA_ARG_ENDPOINT_METRICS": "1",
        "LLAMA_ARG_ALIAS": "envmodel",
        "LLAMA_ARG_N_GPU_LAYERS": "0",
        "LLAMA_ARG_JINJA": "true",
        "LLAMA_ARG_NO_WEBUI": "1",
        "LLAMA_API_KEY": "secret",
    }
    opts = parse(shim, [], env)
    assert opts == shim.ServerOptions(
        model="/env.gguf",
        host="0.0.0.0",
        port=9090,
        ctx_size=1024,
        parallel=3,
        threads=4,
        metrics=True,
        aliases=("envmodel",),
        n_gpu_layers=0,
        jinja=True,
        webui=False,
        api_keys=("secret",),
    )


def test_command_line_overrides_environment_with_a_warning(shim):
    opts = parse(
        shim,
        ["-m", "/cli.gguf", "-c", "4096"],
        {"LLAMA_ARG_MODEL": "/env.gguf", "LLAMA_ARG_CTX_SIZE": "1024"},
    )
    assert (opts.model, opts.ctx_size) == ("/cli.gguf", 4096)
    assert any("LLAMA_ARG_CTX_SIZE" in w for w in opts.warnings)


def test_falsey_metrics_env_and_bad_env_values(shim):
    assert parse(shim, ["-m", "x"], {"LLAMA_ARG_ENDPOINT_METRICS": "0"}).metrics is False
    with pytest.raises(shim.UsageError, match="LLAMA_ARG_PORT"):
        parse(shim, ["-m", "x"], {"LLAMA_ARG_PORT": "eighty"})
    with pytest.raises(shim.UsageError, match="LLAMA_ARG_JINJA"):
        parse(shim, ["-m", "x"], {"LLAMA_ARG_JINJA": "maybe"})


def test_apply_param_updates_sets_nested_attributes(shim):
    params = SimpleNamespace(
        model=SimpleNamespace(path=""),
        cpuparams=SimpleNamespace(n_threads=-1),
        cpuparams_batch=SimpleNamespace(n_threads=-1),
        n_ctx=0,
    )
    shim.apply_param_updates(
        params,
        {
            "model.path": "/m.gguf",
            "cpuparams.n_threads": 2,
            "cpuparams_batch.n_threads": 2,
            "n_ctx": 512,
        },
    )
    assert (
        params.model.path,
        params.cpuparams.n_threads,
        params.cpuparams_batch.n_threads,
        params.n_ctx,
    ) == ("/m.gguf", 2, 2, 512)


def test_log_verbosity_flag_and_environment(shim):
    """llmdeploy renders --log-verbosity 4 so llama-server logs its KV cache size."""
    spellings = (["-lv", "4"], ["--verbosity", "4"], ["--log-verbosity", "4"],
                 ["--log-verbosity=4"])
    for flag in spellings:
        opts = parse(shim, ["-m", "/m.gguf", *flag])
        assert opts.verbosity == 4 and shim.to_param_updates(opts)["verbosity"] == 4
    assert parse(shim, ["-m", "/m.gguf"], {"LLAMA_ARG_LOG_VERBOSITY": "2"}).verbosity == 2
    assert "verbosity" not in shim.to_param_updates(parse(shim, ["-m", "/m.gguf"]))
    with pytest.raises(shim.UsageError, match="--log-verbosity expects an integer"):
        parse(shim, ["-m", "/m.gguf", "-lv", "loud"])


def test_mapping_fits_real_common_params(shim):
    xllamacpp = pytest.importorskip("xllamacpp")
    params = xllamacpp.CommonParams()
    opts = parse(shim, [*RENDERED, "-ngl", "0", "--jinja", "--no-webui", "--api-key", "k",
                        "--log-verbosity", "4"])
    shim.apply_param_updates(params, shim.to_param_updates(opts))
    assert params.model.path == "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert list(params.hostnames) == ["0.0.0.0"] and params.port == 8080
    assert (params.n_ctx, params.n_parallel) == (2048, 2)
    assert params.cpuparams.n_threads == 2 and params.cpuparams_batch.n_threads == 2
    assert params.endpoint_metrics is True and set(params.model_alias) == {"smollm2"}
    assert params.n_gpu_layers == 0 and params.use_jinja is True and params.ui is False
    assert list(params.api_keys) == ["k"]
    assert params.verbosity == 4


def test_script_exits_2_on_unknown_flag_without_starting_anything():
    proc = subprocess.run(
        [sys.executable, str(SHIM), "-m", "/m.gguf", "--no-such-flag"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "invalid argument: --no-such-flag" in proc.stderr


def test_script_exits_1_when_the_model_file_is_missing(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SHIM), "-m", str(tmp_path / "none.gguf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "model file not found" in proc.stderr


def test_containerfile_template_uses_exactly_the_documented_variables():
    jinja2 = pytest.importorskip("jinja2")
    from jinja2 import meta

    source = (TEMPLATES / "llamacpp-cpu.Containerfile.j2").read_text()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    assert meta.find_undeclared_variables(env.parse(source)) == {
        "base_image",
        "xllamacpp_version",
        "llmdeploy_version",
    }
    text = env.from_string(source).render(
        base_image="localhost/llmdeploy-base:bookworm",
        xllamacpp_version="1.2.3",
        llmdeploy_version="0.1.0",
    )
    lines = text.splitlines()
    assert "ARG BASE_IMAGE=localhost/llmdeploy-base:bookworm" in lines
    assert "FROM ${BASE_IMAGE} AS runtime" in lines
    assert 'ENTRYPOINT ["llama-server"]' in lines and "EXPOSE 8080" in lines
    assert "USER 10001:10001" in lines
    assert ".gguf" not in text.replace("/models/MODEL.gguf", "")  # no weights in the image
