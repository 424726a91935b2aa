#!/usr/bin/env bash
# Build the local base image localhost/llmdeploy-base:bookworm without any container registry.
#
# debootstrap (--variant=minbase) builds a Debian rootfs from the Debian mirror apt already
# uses, with what the llama.cpp CPU server image needs at run time (python3, python3-venv,
# ca-certificates, libgomp1, libstdc++6). The rootfs tarball is cached under
# ${XDG_CACHE_HOME:-~/.cache}/llmdeploy/base/ and imported into Podman and/or Docker;
# an engine that already has the image is skipped. Safe to re-run.
#
# --arch arm64 (any Debian architecture other than the host's) builds a foreign base under qemu
# user emulation (scripts/setup-host.sh --with-arm64 registers it): debootstrap's second stage
# runs the foreign binaries through binfmt_misc (about 3 minutes for arm64 on two cores). Its
# default tag is localhost/llmdeploy-base:bookworm-arm64 (an engine's store holds one image per
# tag, so each architecture has its own), imported with that architecture recorded.
#
# usage: scripts/make-base-image.sh [--engines podman,docker] [--image NAME] [--suite bookworm]
#                                   [--arch amd64|arm64] [--mirror URL] [--force]
#                                   [--rebuild-rootfs] [--no-check]
set -euo pipefail

PROG=make-base-image
IMAGE=""
SUITE=bookworm
ARCH=
ENGINES=""
MIRROR=${LLMDEPLOY_DEBIAN_MIRROR:-}
FORCE=0
REBUILD=0
CHECK=1
# libgomp1: xllamacpp.abi3.so links libgomp.so.1 (OpenMP); libstdc++6/libgcc-s1 come with minbase.
PACKAGES=python3,python3-venv,ca-certificates,libgomp1,libstdc++6,libnuma1,libtcmalloc-minimal4
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/llmdeploy/base"

say()  { printf '%s: %s\n' "$PROG" "$*"; }
die()  { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
now()  { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --engines) ENGINES=${2:?--engines needs a value}; shift 2 ;;
    --engines=*) ENGINES=${1#*=}; shift ;;
    --image) IMAGE=${2:?}; shift 2 ;;
    --image=*) IMAGE=${1#*=}; shift ;;
    --suite) SUITE=${2:?}; shift 2 ;;
    --suite=*) SUITE=${1#*=}; shift ;;
    --arch) ARCH=${2:?}; shift 2 ;;
    --arch=*) ARCH=${1#*=}; shift ;;
    --mirror) MIRROR=${2:?}; shift 2 ;;
    --mirror=*) MIRROR=${1#*=}; shift ;;
    --force) FORCE=1; shift ;;
    --rebuild-rootfs) REBUILD=1; FORCE=1; shift ;;
    --no-check) CHECK=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

T_ALL=$(now)

# ---------------------------------------------------------------- architecture
# Debian's architecture names; the engines' platform names (linux/amd64, linux/arm64) match them.
case "$(uname -m)" in
  x86_64|amd64) HOST_ARCH=amd64 ;;
  aarch64|arm64) HOST_ARCH=arm64 ;;
  *) HOST_ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m) ;;
esac
ARCH=${ARCH:-$HOST_ARCH}
case "$ARCH" in
  amd64) QEMU=qemu-x86_64 ;;
  arm64) QEMU=qemu-aarch64 ;;
  *) die "--arch $ARCH: use amd64 or arm64" ;;
esac
FOREIGN=0
[ "$ARCH" = "$HOST_ARCH" ] || FOREIGN=1
if [ -z "$IMAGE" ]; then
  IMAGE=localhost/llmdeploy-base:$SUITE
  [ "$FOREIGN" -eq 1 ] && IMAGE="$IMAGE-$ARCH"
fi
if [ "$FOREIGN" -eq 1 ] && ! grep -qx enabled "/proc/sys/fs/binfmt_misc/$QEMU" 2>/dev/null; then
  die "--arch $ARCH on a $HOST_ARCH host needs qemu user emulation ($QEMU is not registered in /proc/sys/fs/binfmt_misc): run scripts/setup-host.sh --with-arm64"
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "debootstrap needs root; run as root or install sudo"
  SUDO="sudo"
fi
# Podman runs as the invoking user (a non-root user has its own, rootless, image store: the one
# llmdeploy run by that user sees); Docker through sudo only when the user cannot reach dockerd.
DOCKER=(docker)
if [ -n "$SUDO" ] && command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  DOCKER=(sudo docker)
fi
eng() { local e=$1; shift; if [ "$e" = docker ]; then "${DOCKER[@]}" "$@"; else podman "$@"; fi; }

# ---------------------------------------------------------------- engines
engine_ok() {  # engine answers (docker: daemon running)
  case "$1" in
    podman|docker) command -v "$1" >/dev/null 2>&1 && eng "$1" info >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}
if [ -z "$ENGINES" ]; then
  for e in podman docker; do
    if engine_ok "$e"; then ENGINES="${ENGINES:+$ENGINES,}$e"; fi
  done
  [ -n "$ENGINES" ] || die "neither podman nor a running docker daemon was found; run scripts/setup-host.sh first"
fi
IFS=, read -r -a ENGINE_LIST <<<"$ENGINES"
for e in "${ENGINE_LIST[@]}"; do
  case "$e" in podman|docker) ;; *) die "--engines: unknown engine '$e' (podman, docker)";; esac
done

has_image() {
  case "$1" in
    podman|docker) eng "$1" image inspect "$IMAGE" >/dev/null 2>&1 ;;
  esac
}

TODO=()
for e in "${ENGINE_LIST[@]}"; do
  if [ "$FORCE" -eq 0 ] && has_image "$e"; then
    say "$e: $IMAGE already present, skipped (use --force to re-import)"
  else
    engine_ok "$e" || die "$e is not usable (not installed, or the docker daemon is not running); run scripts/setup-host.sh --engines $e"
    TODO+=("$e")
  fi
done
if [ ${#TODO[@]} -eq 0 ]; then
  say "nothing to do ($(since "$T_ALL"))"
  exit 0
fi

# ---------------------------------------------------------------- rootfs tarball (cached)
if [ -z "$MIRROR" ]; then
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$MIRROR" ] && [ -r /etc/apt/sources.list ]; then
    MIRROR=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^(http|https|file|ftp):/) {print $i; exit}}' /etc/apt/sources.list)
  fi
  # an Ubuntu host's mirror has no Debian suites
  case "$MIRROR" in *ubuntu*|"") MIRROR=http://deb.debian.org/debian ;; esac
fi

# the host's own architecture keeps its historical key (uname -m), so an existing cache still hits
KEY_ARCH=$(uname -m); [ "$FOREIGN" -eq 1 ] && KEY_ARCH=$ARCH
KEY=$(printf '%s|minbase|%s|%s' "$SUITE" "$PACKAGES" "$KEY_ARCH" | sha256sum | cut -c1-12)
TARBALL="$CACHE_DIR/llmdeploy-base-$SUITE-$KEY.tar"
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.lock"
flock 9   # one build at a time (CI jobs, parallel test sessions)

if [ "$REBUILD" -eq 1 ]; then rm -f "$TARBALL"; fi
if [ -s "$TARBALL" ]; then
  say "rootfs: cached $TARBALL ($(du -h "$TARBALL" | cut -f1)), skipped debootstrap"
else
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed: run scripts/setup-host.sh (or: apt-get install -y debootstrap)"
  WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/llmdeploy-rootfs.XXXXXX")
  trap '$SUDO rm -rf --one-file-system "$WORK"' EXIT
  ROOTFS="$WORK/rootfs"
  say "rootfs: debootstrap --arch=$ARCH --variant=minbase $SUITE from $MIRROR (packages: $PACKAGES)$([ "$FOREIGN" -eq 1 ] && echo "; second stage under $QEMU, slow")"
  T=$(now)
  if ! $SUDO debootstrap --arch="$ARCH" --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
    tail -n 30 "$WORK/debootstrap.log" >&2
    [ -f "$ROOTFS/debootstrap/debootstrap.log" ] && tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (log above); check that $MIRROR is reachable (apt-get update works?)"
  fi
  say "rootfs: debootstrap done in $(since "$T")"
  T=$(now)
  # slim it the way debian:*-slim does: no package caches, lists, docs, man pages
  $SUDO rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin \
    "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/*
  $SUDO find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  $SUDO find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
  $SUDO tee "$ROOTFS/etc/dpkg/dpkg.cfg.d/llmdeploy-slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  # apt inside derived images: same mirror, plus security updates
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" | $SUDO tee "$ROOTFS/etc/apt/sources.list" >/dev/null
  : | $SUDO tee "$ROOTFS/etc/hostname" >/dev/null
  $SUDO tar --numeric-owner --xattrs -C "$ROOTFS" -cf "$TARBALL.part" .
  $SUDO chown "$(id -u):$(id -g)" "$TARBALL.part"
  mv "$TARBALL.part" "$TARBALL"
  say "rootfs: packed $TARBALL ($(du -h "$TARBALL" | cut -f1)) in $(since "$T")"
fi

# ---------------------------------------------------------------- import
CHANGES=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'ENV LANG=C.UTF-8'
  --change 'CMD ["/bin/bash"]'
  --change "LABEL org.opencontainers.image.title=\"llmdeploy-base\""
  --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase with python3 and the llama.cpp runtime libraries, made with debootstrap by llmdeploy\""
  --change "LABEL io.llmdeploy.base.suite=\"$SUITE\""
  --change "LABEL io.llmdeploy.base.packages=\"$PACKAGES\""
  --change "LABEL io.llmdeploy.base.arch=\"$ARCH\""
)
# the architecture recorded in the image (an engine runs a foreign one under emulation)
PLATFORM_ARGS=()
if [ "$FOREIGN" -eq 1 ]; then PLATFORM_ARGS=(--platform "linux/$ARCH"); fi
for e in "${TODO[@]}"; do
  T=$(now)
  Q=(); [ "$e" = podman ] && Q=(--quiet)
  IMPORT_ARCH=()
  if [ "$FOREIGN" -eq 1 ]; then
    if [ "$e" = podman ]; then IMPORT_ARCH=(--arch "$ARCH"); else IMPORT_ARCH=(--platform "linux/$ARCH"); fi
  fi
  eng "$e" import "${Q[@]}" "${IMPORT_ARCH[@]}" "${CHANGES[@]}" "$TARBALL" "$IMAGE" >/dev/null \
    || die "$e import of $TARBALL as $IMAGE failed"
  say "$e: imported $IMAGE in $(since "$T")"
  if [ "$CHECK" -eq 1 ]; then
    T=$(now)
    ULIM=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
    RT=()
    [ "$e" = podman ] && command -v runc >/dev/null 2>&1 && RT=(--runtime runc)
    if out=$(eng "$e" run "${RT[@]}" "${ULIM[@]}" "${PLATFORM_ARGS[@]}" --rm --network none "$IMAGE" \
          python3 -c 'import venv, ensurepip, ssl, ctypes, platform; ctypes.CDLL("libgomp.so.1"); ctypes.CDLL("libstdc++.so.6"); import sys; print(sys.version.split()[0], platform.machine())' 2>&1); then
      say "$e: checked $IMAGE: python $out, libgomp, libstdc++, venv, ssl ($(since "$T"))"
    else
      say "warning: $e could not run a check container from $IMAGE (is the engine configured? scripts/setup-host.sh): $out"
    fi
  fi
done
say "done in $(since "$T_ALL")"
