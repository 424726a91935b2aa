#!/usr/bin/env bash
# Prepare the wheelhouse of the router image (`llmdeploy route --run`: LiteLLM's proxy,
# src/llmdeploy/render/templates/litellm.Containerfile.j2).
#
#   scripts/make-litellm-wheelhouse.sh [DEST]   # DEST defaults to the wheelhouse root's litellm/
#
# The image installs from DEST with `pip install --no-index --find-links`, so its build needs no
# network (containers here reach PyPI only through a TLS-inspecting proxy; air-gapped hosts:
# run this on a connected machine and copy DEST over). Wheels are fetched for the image's
# Python (CPython 3.11, manylinux x86_64 or aarch64 like this host), whatever python runs pip.
#
# Environment:
#   LITELLM_VERSION  the pinned version (default: llmdeploy's, core/route.py LITELLM_VERSION)
#   PYTHON           interpreter that runs pip (default python3)
#
# Idempotent: a wheelhouse that already holds the litellm wheel is left as it is.
# About 170 MB, 116 wheels, ~1 minute on these machines.
set -euo pipefail

PROG=make-litellm-wheelhouse
PY=${PYTHON:-python3}
ROOT="${LLMDEPLOY_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmdeploy/wheelhouse}"
DEST="${1:-$ROOT/litellm}"
VERSION=${LITELLM_VERSION:-}
die() { echo "$PROG: error: $*" >&2; exit 1; }

if [ -z "$VERSION" ]; then
  VERSION=$("$PY" -c 'from llmdeploy.core.route import LITELLM_VERSION as v; print(v)' 2>/dev/null) \
    || die "llmdeploy is not importable by $PY: set LITELLM_VERSION"
fi
case "$(uname -m)" in
  x86_64|amd64) ARCH=x86_64 ;;
  aarch64|arm64) ARCH=aarch64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac
mkdir -p "$DEST"
if ls "$DEST"/litellm-"$VERSION"-*.whl >/dev/null 2>&1 && ls "$DEST"/async_timeout-*.whl >/dev/null 2>&1; then
  echo "$PROG: $DEST already has litellm $VERSION, download skipped"
  exit 0
fi
start=$(date +%s)
# --only-binary is required with --platform; dependencies resolve for the image's Python, but
# pip evaluates environment markers with the running interpreter: Debian bookworm's python3 is
# 3.11.2, for which redis needs async-timeout (python_full_version < "3.11.3"), so it is named
"$PY" -m pip download --disable-pip-version-check --progress-bar off \
  --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 --abi abi3 --abi none \
  --platform "manylinux_2_17_$ARCH" --platform "manylinux2014_$ARCH" \
  --platform "manylinux_2_28_$ARCH" --platform "manylinux_2_34_$ARCH" --platform any \
  --dest "$DEST" "litellm[proxy]==$VERSION" "async-timeout>=4.0.3" \
  || die "pip download failed (is PyPI reachable? pip honours PIP_INDEX_URL / PIP_CERT)"
echo "$PROG: $(find "$DEST" -maxdepth 1 -name '*.whl' | wc -l) wheels," \
  "$(du -sh "$DEST" | cut -f1) in $DEST, $(( $(date +%s) - start )) s"
