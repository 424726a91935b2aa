#!/usr/bin/env bash
# Download the xllamacpp wheel (and its dependencies, if any) for the container's Python into a
# wheelhouse, so that building the llama.cpp CPU image needs no network (pip --no-index).
#
# The container is Debian bookworm: CPython 3.11, manylinux x86_64 (or aarch64 on arm hosts);
# --arch aarch64 on an x86_64 host fetches the ARM64 wheel as well (for `llmdeploy build
# --platform linux/arm64`): wheels of several architectures share one wheelhouse (their file
# names differ) and each build copies only the wheels of its platform.
# The version is pinned to the one installed on this host (pip show xllamacpp) unless given.
# By default the wheel's debug info is stripped (strip --strip-debug: ~106 MB -> ~30 MB for the
# shared library; RECORD is rewritten and the dist-info gets an LLMDEPLOY_STRIPPED note with the
# original wheel's sha256); a foreign wheel needs that architecture's strip
# (aarch64-linux-gnu-strip, apt package binutils-aarch64-linux-gnu). Safe to re-run: a wheel
# already there is kept.
#
# usage: scripts/make-wheelhouse.sh [--dest DIR] [--version V] [--python-version 3.11]
#                                   [--arch x86_64|aarch64] [--no-strip]
#        prints the wheelhouse path on the last line of stdout
set -euo pipefail

PROG=make-wheelhouse
DEST="${LLMDEPLOY_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmdeploy/wheelhouse}"
VERSION=${XLLAMACPP_VERSION:-}
PYVER=3.11
STRIP=1
PY=${PYTHON:-python3}
ARCH=""

say()  { printf '%s: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
now()  { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dest) DEST=${2:?}; shift 2 ;;
    --dest=*) DEST=${1#*=}; shift ;;
    --version) VERSION=${2:?}; shift 2 ;;
    --version=*) VERSION=${1#*=}; shift ;;
    --python-version) PYVER=${2:?}; shift 2 ;;
    --python-version=*) PYVER=${1#*=}; shift ;;
    --arch) ARCH=${2:?}; shift 2 ;;
    --arch=*) ARCH=${1#*=}; shift ;;
    --no-strip) STRIP=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

T_ALL=$(now)
command -v "$PY" >/dev/null 2>&1 || die "$PY not found"
"$PY" -m pip --version >/dev/null 2>&1 || die "pip is not available for $PY"

if [ -z "$VERSION" ]; then
  VERSION=$("$PY" -m pip show xllamacpp 2>/dev/null | awk '/^Version:/{print $2}')
  [ -n "$VERSION" ] || die "xllamacpp is not installed on this host; pass --version V (or set XLLAMACPP_VERSION)"
  say "pinning xllamacpp==$VERSION (the version installed on this host)"
fi

case "$(uname -m)" in
  x86_64|amd64) HOST_ARCH=x86_64 ;;
  aarch64|arm64) HOST_ARCH=aarch64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac
case "${ARCH:-$HOST_ARCH}" in
  x86_64|amd64) ARCH=x86_64 ;;
  aarch64|arm64) ARCH=aarch64 ;;
  *) die "--arch $ARCH: use x86_64 or aarch64" ;;
esac
STRIP_TOOL=strip
[ "$ARCH" = "$HOST_ARCH" ] || STRIP_TOOL="$ARCH-linux-gnu-strip"
PYTAG=cp${PYVER/./}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)

exec 9>"$DEST/.lock"
flock 9

existing=$(ls "$DEST"/xllamacpp-"$VERSION"-*_"$ARCH".whl 2>/dev/null | head -n1 || true)
if [ -n "$existing" ]; then
  say "present: $(basename "$existing"), download skipped"
else
  T=$(now)
  say "pip download xllamacpp==$VERSION for CPython $PYVER manylinux $ARCH -> $DEST"
  # --only-binary is required with --platform; dependencies are resolved for the target too
  "$PY" -m pip download --disable-pip-version-check --progress-bar off \
      --only-binary=:all: --implementation cp --python-version "$PYVER" --abi "$PYTAG" --abi abi3 --abi none \
      --platform "manylinux_2_17_$ARCH" --platform "manylinux2014_$ARCH" --platform "manylinux_2_28_$ARCH" \
      --platform "manylinux_2_34_$ARCH" --platform any \
      -d "$DEST" "xllamacpp==$VERSION" >&2 \
    || die "pip download failed (is PyPI reachable? pip honours PIP_INDEX_URL / PIP_CERT)"
  say "downloaded in $(since "$T")"
  existing=$(ls "$DEST"/xllamacpp-"$VERSION"-*_"$ARCH".whl 2>/dev/null | head -n1 || true)
  [ -n "$existing" ] || die "no xllamacpp-$VERSION $ARCH wheel in $DEST after pip download"
fi

if [ "$STRIP" -eq 1 ]; then
  if ! command -v "$STRIP_TOOL" >/dev/null 2>&1; then
    say "$STRIP_TOOL not found: wheel kept unstripped (image ~75 MB larger)"
  else
    T=$(now)
    "$PY" - "$existing" "$STRIP_TOOL" <<'PYEOF' >&2
import base64, hashlib, os, subprocess, sys, tempfile, zipfile
whl, strip_tool = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    names = z.namelist()
    distinfo = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
    marker = f"{distinfo}/LLMDEPLOY_STRIPPED"
    if marker in names:
        print(f"make-wheelhouse: {os.path.basename(whl)} already stripped, skipped")
        sys.exit(0)
    orig_sha = hashlib.sha256(open(whl, "rb").read()).hexdigest()
    before = os.path.getsize(whl)
    with tempfile.TemporaryDirectory() as tmp:
        z.extractall(tmp)
        infos = {i.filename: i for i in z.infolist()}
        for n in names:
            if n.endswith(".so") or ".so." in n:
                subprocess.run([strip_tool, "--strip-debug", os.path.join(tmp, n)], check=True)
        with open(os.path.join(tmp, marker), "w") as f:
            f.write(f"debug info stripped by llmdeploy scripts/make-wheelhouse.sh ({strip_tool} --strip-debug)\n"
                    f"original wheel: {os.path.basename(whl)} sha256={orig_sha}\n")
        record = f"{distinfo}/RECORD"
        lines = []
        for n in names + [marker]:
            if n == record or n.endswith("/"):
                continue
            data = open(os.path.join(tmp, n), "rb").read()
            h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            lines.append(f"{n},sha256={h},{len(data)}")
        lines.append(f"{record},,")
        with open(os.path.join(tmp, record), "w") as f:
            f.write("\n".join(lines) + "\n")
        out = whl + ".part"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zo:
            for n in [x for x in names if x != record] + [marker, record]:
                if n.endswith("/"):
                    continue
                zi = zipfile.ZipInfo(n, date_time=infos[n].date_time if n in infos else (2020, 1, 1, 0, 0, 0))
                zi.external_attr = infos[n].external_attr if n in infos else (0o644 << 16)
                zi.compress_type = zipfile.ZIP_DEFLATED
                with open(os.path.join(tmp, n), "rb") as src:
                    zo.writestr(zi, src.read())
        os.replace(out, whl)
print(f"make-wheelhouse: stripped debug info: {os.path.basename(whl)} {before/1e6:.1f} MB -> {os.path.getsize(whl)/1e6:.1f} MB")
PYEOF
    say "strip step took $(since "$T")"
  fi
fi

say "wheelhouse ready in $(since "$T_ALL"):"
ls -l "$DEST"/*.whl >&2
echo "$DEST"
