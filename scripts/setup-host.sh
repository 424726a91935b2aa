#!/usr/bin/env bash
# Prepare a Debian/Ubuntu host for llmdeploy: container engines, their configuration, the
# Docker daemon, the Podman API socket and (where no registry is reachable) a local base image.
# Idempotent: re-running skips what is already done and says so.
#
# usage: scripts/setup-host.sh [--engines podman,docker] [--no-base-image | --base-image auto|always|never]
#                              [--no-wheelhouse] [--with-chromium] [--with-export-tools]
#                              [--with-registry-tools] [--with-arm64] [--timeout SECONDS]
#
#   --engines LIST     engines to set up (default: podman,docker)
#   --base-image MODE  auto (default): build localhost/llmdeploy-base:bookworm with debootstrap only
#                      when no container registry is reachable; always; never
#   --no-base-image    same as --base-image never
#   --no-wheelhouse    do not pre-download the xllamacpp wheel (image builds then need PyPI)
#   --with-chromium    also install chromium (for browser-based tests)
#   --with-export-tools  also install what checks `llmdeploy export` for real: prometheus
#                      (promtool), docker-compose, podman-compose and kubectl (kustomize)
#   --with-registry-tools  also install what checks `llmdeploy build --push` for real: Debian's
#                      docker-registry (a local OCI registry), skopeo and htpasswd (apache2-utils);
#                      models as OCI artifacts (`models push/pull`) are checked with them too
#   --with-arm64       ARM64 images under emulation: qemu-user-static + binfmt-support (mounts
#                      binfmt_misc and registers qemu-aarch64), the arm64 base image
#                      localhost/llmdeploy-base:bookworm-arm64 (debootstrap, ~3 min, cached) and
#                      the aarch64 xllamacpp wheel in the wheelhouse (binutils-aarch64-linux-gnu
#                      strips it)
#   --timeout S        how long to wait for dockerd / the Podman socket (default 60)
#
# Environment other tools should use afterwards (printed at the end):
#   CONTAINER_HOST=unix:///run/podman/podman.sock   (podman-py, podman --remote)
#   DOCKER_HOST=unix:///var/run/docker.sock         (docker SDK / CLI)
set -euo pipefail

PROG=setup-host
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENGINES=podman,docker
BASE_MODE=auto
WHEELHOUSE=1
CHROMIUM=0
EXPORT_TOOLS=0
REGISTRY_TOOLS=0
ARM64=0
TIMEOUT=60
PODMAN_SOCK=/run/podman/podman.sock            # root; a non-root user gets the rootless socket
DOCKER_SOCK=/var/run/docker.sock
DOCKERD_LOG=/var/log/llmdeploy-dockerd.log
PODMAN_SVC_LOG=/var/log/llmdeploy-podman-service.log
if [ "$(id -u)" -ne 0 ]; then
  PODMAN_SOCK="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/podman/podman.sock"
  PODMAN_SVC_LOG="${XDG_STATE_HOME:-$HOME/.local/state}/llmdeploy/podman-service.log"
fi
CONF=/etc/containers/containers.conf

DONE=()
SKIPPED=()
WARNINGS=()
say()  { printf '%s: %s\n' "$PROG" "$*"; }
did()  { DONE+=("$*"); say "done: $*"; }
skip() { SKIPPED+=("$*"); say "skipped: $*"; }
warn() { WARNINGS+=("$*"); printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
now()  { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }
usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --engines) ENGINES=${2:?--engines needs a value}; shift 2 ;;
    --engines=*) ENGINES=${1#*=}; shift ;;
    --base-image) BASE_MODE=${2:?}; shift 2 ;;
    --base-image=*) BASE_MODE=${1#*=}; shift ;;
    --no-base-image) BASE_MODE=never; shift ;;
    --no-wheelhouse) WHEELHOUSE=0; shift ;;
    --with-chromium) CHROMIUM=1; shift ;;
    --with-export-tools) EXPORT_TOOLS=1; shift ;;
    --with-registry-tools) REGISTRY_TOOLS=1; shift ;;
    --with-arm64) ARM64=1; shift ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --timeout=*) TIMEOUT=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
case "$BASE_MODE" in auto|always|never) ;; *) die "--base-image must be auto, always or never";; esac
WANT_PODMAN=0; WANT_DOCKER=0
IFS=, read -r -a _E <<<"$ENGINES"
for e in "${_E[@]}"; do
  case "$e" in
    podman) WANT_PODMAN=1 ;;
    docker) WANT_DOCKER=1 ;;
    "") ;;
    *) die "--engines: unknown engine '$e' (podman, docker)" ;;
  esac
done
[ $((WANT_PODMAN + WANT_DOCKER)) -gt 0 ] || die "--engines: name at least one of podman, docker"

T_ALL=$(now)
[ "$(uname -s)" = Linux ] || die "Linux only (on macOS/Windows use Podman Desktop or Docker Desktop)"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "run as root (or install sudo): installing packages and starting daemons needs it"
  SUDO="sudo"
  say "not root: using sudo"
fi
# one setup at a time on this host (fd 8 is closed for the daemons started below)
if [ -d /run/lock ] && [ -w /run/lock ]; then LOCK=/run/lock/llmdeploy-setup-host.lock
else LOCK="${TMPDIR:-/tmp}/llmdeploy-setup-host.$(id -u).lock"; fi
exec 8>"$LOCK"
if command -v flock >/dev/null 2>&1 && ! flock -n 8; then
  say "another setup-host run holds $LOCK; waiting for it"
  flock 8
fi

# -------------------------------------------------------------------------------- packages
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

PKGS=()
want_pkg() {  # want_pkg PACKAGE [COMMAND-THAT-ALSO-COUNTS]
  if installed "$1"; then return; fi
  if [ -n "${2:-}" ] && command -v "$2" >/dev/null 2>&1; then
    skip "package $1: '$2' is already on PATH ($(command -v "$2")), not installing it from apt"
    return
  fi
  PKGS+=("$1")
}
if [ "$WANT_PODMAN" -eq 1 ]; then
  want_pkg podman podman
  want_pkg runc runc                       # crun fails on hybrid cgroups; runc works everywhere
  for p in conmon uidmap slirp4netns fuse-overlayfs containernetworking-plugins catatonit iptables; do want_pkg "$p"; done
fi
if [ "$WANT_DOCKER" -eq 1 ]; then
  want_pkg docker.io dockerd               # a docker-ce install (dockerd on PATH) is kept as it is
  [ "$WANT_PODMAN" -eq 1 ] || want_pkg runc runc
fi
want_pkg curl curl
want_pkg ca-certificates
if [ "$BASE_MODE" != never ]; then
  want_pkg debootstrap debootstrap
  want_pkg binutils strip                  # strip: shrinks the xllamacpp wheel ~3x for the image
fi
[ "$CHROMIUM" -eq 1 ] && want_pkg chromium chromium
if [ "$EXPORT_TOOLS" -eq 1 ]; then
  want_pkg prometheus prometheus           # a real Prometheus evaluates every exported PromQL
  want_pkg docker-compose docker-compose   # compose exports run for real on Docker ...
  want_pkg podman-compose podman-compose   # ... and on Podman
  want_pkg kubectl kubectl                 # `kubectl kustomize` builds the Kubernetes export
fi
if [ "$REGISTRY_TOOLS" -eq 1 ]; then
  want_pkg docker-registry docker-registry # a real OCI registry on 127.0.0.1 for build --push
  want_pkg skopeo skopeo                   # inspects what was pushed (skopeo inspect --raw)
  want_pkg apache2-utils htpasswd          # htpasswd -B: the registry's basic-auth users
fi
if [ "$ARM64" -eq 1 ]; then
  want_pkg qemu-user-static                # runs arm64 binaries on this host (binfmt_misc)
  want_pkg binfmt-support update-binfmts   # registers them with the kernel
  [ "$WHEELHOUSE" -eq 1 ] && want_pkg binutils-aarch64-linux-gnu aarch64-linux-gnu-strip
fi

if ! command -v apt-get >/dev/null 2>&1; then
  if [ ${#PKGS[@]} -gt 0 ]; then
    die "no apt-get (not Debian/Ubuntu): install these yourself, then re-run: ${PKGS[*]}"
  fi
elif [ ${#PKGS[@]} -eq 0 ]; then
  skip "apt: every package needed is already installed"
else
  T=$(now)
  say "apt: installing ${PKGS[*]} (waits for a running apt/dpkg to finish)"
  APT=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=900)
  [ -n "$SUDO" ] && APT=(sudo "${APT[@]}")
  "${APT[@]}" update >/tmp/llmdeploy-apt.log 2>&1 || { tail -n 20 /tmp/llmdeploy-apt.log >&2; die "apt-get update failed (log: /tmp/llmdeploy-apt.log)"; }
  "${APT[@]}" install --no-install-recommends "${PKGS[@]}" >>/tmp/llmdeploy-apt.log 2>&1 \
    || { tail -n 30 /tmp/llmdeploy-apt.log >&2; die "apt-get install failed (log: /tmp/llmdeploy-apt.log)"; }
  did "apt: installed ${PKGS[*]} in $(since "$T")"
fi

# -------------------------------------------------------------------------------- host facts
cgroup_mode() {
  if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then echo v2
  elif [ -d /sys/fs/cgroup/unified ] && [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then echo hybrid
  else echo v1; fi
}
CGROUPS=$(cgroup_mode)
# rootful Podman raises RLIMIT_NOFILE to 1048576 in every container; Docker's containers inherit
# dockerd's limits. Without CAP_SYS_RESOURCE (some VMs, WSL2, nested containers) that fails.
if $SUDO bash -c 'ulimit -Hn 1048576' 2>/dev/null; then RLIMITS_OK=1; else RLIMITS_OK=0; fi
if [ "$RLIMITS_OK" -eq 1 ]; then RL_NOTE="allowed"; else RL_NOTE="NOT allowed (hard nofile limit $(ulimit -Hn))"; fi
say "host: cgroups $CGROUPS; raising rlimits: $RL_NOTE"

# -------------------------------------------------------------------------------- podman config
conf_has() { [ -f "$CONF" ] && grep -Eq "^[[:space:]]*$1[[:space:]]*=" "$CONF"; }
conf_set() {  # conf_set SECTION 'key = value'
  local section=$1 line=$2
  $SUDO mkdir -p "$(dirname "$CONF")"
  if [ -f "$CONF" ] && [ ! -f "$CONF.llmdeploy.bak" ]; then $SUDO cp -p "$CONF" "$CONF.llmdeploy.bak"; fi
  if [ -f "$CONF" ] && grep -Eq "^[[:space:]]*\[$section\][[:space:]]*$" "$CONF"; then
    $SUDO sed -i -E "/^[[:space:]]*\[$section\][[:space:]]*$/a $line  # added by llmdeploy setup-host" "$CONF"
  else
    printf '\n[%s]\n%s  # added by llmdeploy setup-host\n' "$section" "$line" | $SUDO tee -a "$CONF" >/dev/null
  fi
}
if [ "$WANT_PODMAN" -eq 1 ]; then
  command -v podman >/dev/null 2>&1 || die "podman is not installed"
  PODMAN_RT=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null || echo unknown)
  if [ -n "$SUDO" ] && ! grep -q "^$(id -un):" /etc/subuid 2>/dev/null; then
    warn "podman (rootless): no /etc/subuid entry for $(id -un); fix: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $(id -un)"
  fi
  if [ "$CGROUPS" != v2 ]; then
    if conf_has runtime; then
      skip "podman: $CONF already sets the OCI runtime ($(grep -Em1 '^[[:space:]]*runtime[[:space:]]*=' "$CONF" | sed 's/#.*//;s/[[:space:]]*$//'))"
    elif command -v runc >/dev/null 2>&1; then
      conf_set engine 'runtime = "runc"'
      did "podman: runtime = \"runc\" in $CONF (cgroups are $CGROUPS; crun refuses hybrid cgroups; podman used: $PODMAN_RT)"
    else
      warn "podman: cgroups are $CGROUPS and runc is missing; crun may fail ('cgroups in hybrid mode not supported')"
    fi
  else
    skip "podman: cgroups v2, default OCI runtime ($PODMAN_RT) kept"
  fi
  if [ "$RLIMITS_OK" -eq 0 ]; then
    if conf_has default_ulimits; then
      skip "podman: $CONF already sets default_ulimits ($(grep -Em1 '^[[:space:]]*default_ulimits' "$CONF" | sed 's/#.*//;s/[[:space:]]*$//'))"
    else
      conf_set containers 'default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]'
      did "podman: default_ulimits nofile=4096:4096 nproc=4096:4096 in $CONF (this host may not raise rlimits)"
    fi
  else
    skip "podman: rlimits can be raised here, default ulimits kept"
  fi
fi

# -------------------------------------------------------------------------------- dockerd
has_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
WAIT_PID=""   # set to the pid of a process just started: waiting stops early if it dies
wait_for() {  # wait_for WHAT LOG COMMAND...
  local what=$1 log=$2; shift 2
  local t0 i=0 why=""; t0=$(now)
  until "$@" >/dev/null 2>&1; do
    sleep 0.25; i=$((i + 1))
    if [ -n "$WAIT_PID" ] && ! kill -0 "$WAIT_PID" 2>/dev/null; then
      why="exited before answering"
    elif [ "$i" -ge $((TIMEOUT * 4)) ]; then
      why="did not answer within ${TIMEOUT}s"
    fi
    if [ -n "$why" ]; then
      printf '%s: error: %s %s; last lines of %s:\n' "$PROG" "$what" "$why" "$log" >&2
      $SUDO tail -n 25 "$log" >&2 || true
      exit 1
    fi
  done
  WAIT_PID=""
  WAITED=$(since "$t0")
}
if [ "$WANT_DOCKER" -eq 1 ]; then
  command -v dockerd >/dev/null 2>&1 || die "dockerd is not installed"
  if $SUDO env DOCKER_HOST="unix://$DOCKER_SOCK" docker info >/dev/null 2>&1; then
    skip "docker: dockerd already answers on $DOCKER_SOCK"
  elif has_systemd && systemctl list-unit-files docker.service 2>/dev/null | grep -q docker.service \
       && [ "$RLIMITS_OK" -eq 1 ]; then
    $SUDO systemctl enable --now docker >/dev/null 2>&1 || $SUDO systemctl start docker
    wait_for dockerd "journalctl -u docker" $SUDO env DOCKER_HOST="unix://$DOCKER_SOCK" docker info
    did "docker: started docker.service (systemd), answering after $WAITED"
  else
    if pgrep -x dockerd >/dev/null 2>&1; then
      die "docker: a dockerd process runs (pid $(pgrep -x dockerd | tr '\n' ' ')) but $DOCKER_SOCK does not answer; starting another would clash: stop or fix it, then re-run"
    fi
    ULIM_ARGS=()
    [ "$RLIMITS_OK" -eq 0 ] && ULIM_ARGS=(--default-ulimit nofile=4096:4096 --default-ulimit nproc=4096:4096)
    T=$(now)
    $SUDO mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid: dockerd outlives this shell and its terminal
    $SUDO setsid dockerd --host "unix://$DOCKER_SOCK" "${ULIM_ARGS[@]}" >"$DOCKERD_LOG" 2>&1 </dev/null 8>&- &
    WAIT_PID=$!
    wait_for dockerd "$DOCKERD_LOG" $SUDO env DOCKER_HOST="unix://$DOCKER_SOCK" docker info
    did "docker: started dockerd ${ULIM_ARGS[*]} (log $DOCKERD_LOG), answering after $WAITED"
  fi
  DV=$($SUDO env DOCKER_HOST="unix://$DOCKER_SOCK" docker version --format '{{.Client.Version}} / {{.Server.Version}}' 2>/dev/null || true)
  say "docker: client / server $DV ($(command -v docker))"
fi

# -------------------------------------------------------------------------------- podman API socket
podman_ping() { curl -sf --max-time 2 --unix-socket "$PODMAN_SOCK" http://d/_ping 2>/dev/null | grep -q OK; }
SYSTEMCTL=(systemctl)
[ -n "$SUDO" ] && SYSTEMCTL=(systemctl --user)
if [ "$WANT_PODMAN" -eq 1 ]; then
  if podman_ping; then
    skip "podman: API socket $PODMAN_SOCK already answers"
  elif has_systemd && "${SYSTEMCTL[@]}" list-unit-files podman.socket 2>/dev/null | grep -q podman.socket; then
    "${SYSTEMCTL[@]}" enable --now podman.socket >/dev/null 2>&1 || "${SYSTEMCTL[@]}" start podman.socket
    wait_for "podman API" "journalctl -u podman.socket" podman_ping
    did "podman: enabled podman.socket (${SYSTEMCTL[*]}), $PODMAN_SOCK answering after $WAITED"
  else
    mkdir -p "$(dirname "$PODMAN_SOCK")" "$(dirname "$PODMAN_SVC_LOG")"
    if [ -S "$PODMAN_SOCK" ]; then rm -f "$PODMAN_SOCK"; fi   # stale: nobody answers on it
    setsid podman system service --time=0 "unix://$PODMAN_SOCK" >"$PODMAN_SVC_LOG" 2>&1 </dev/null 8>&- &
    WAIT_PID=$!
    wait_for "podman API" "$PODMAN_SVC_LOG" podman_ping
    did "podman: started 'podman system service --time=0 unix://$PODMAN_SOCK' (log $PODMAN_SVC_LOG), answering after $WAITED"
  fi
fi

# -------------------------------------------------------------------------------- arm64 emulation
BINFMT=/proc/sys/fs/binfmt_misc
if [ "$ARM64" -eq 1 ]; then
  if [ "$(uname -m)" = aarch64 ]; then
    skip "arm64: this host is arm64, no emulation needed"
  elif grep -qx enabled "$BINFMT/qemu-aarch64" 2>/dev/null; then
    skip "arm64: qemu-aarch64 is already registered in $BINFMT"
  else
    # the kernel's binfmt_misc file system is not mounted everywhere (containers, minimal VMs)
    if [ ! -e "$BINFMT/register" ]; then
      $SUDO mount -t binfmt_misc binfmt_misc "$BINFMT" \
        || die "arm64: cannot mount binfmt_misc on $BINFMT (a container without privileges?)"
    fi
    $SUDO update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    grep -qx enabled "$BINFMT/qemu-aarch64" 2>/dev/null \
      || die "arm64: qemu-aarch64 is not registered in $BINFMT after update-binfmts --enable"
    did "arm64: qemu-aarch64 registered ($(sed -n 's/^flags: /flags /p' "$BINFMT/qemu-aarch64"))"
  fi
fi

# -------------------------------------------------------------------------------- base image + wheelhouse
registry_reachable() {
  # the Docker Hub registry answers 401 (auth required) when it is reachable at all
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 https://registry-1.docker.io/v2/ 2>/dev/null || true)
  [ "$code" = 401 ] || [ "$code" = 200 ]
}
ENGINES_UP=()
[ "$WANT_PODMAN" -eq 1 ] && ENGINES_UP+=(podman)
[ "$WANT_DOCKER" -eq 1 ] && ENGINES_UP+=(docker)
ENGINES_CSV=$(IFS=,; echo "${ENGINES_UP[*]}")
BUILD_BASE=0
case "$BASE_MODE" in
  never) skip "base image: --no-base-image" ;;
  always) BUILD_BASE=1 ;;
  auto)
    if registry_reachable; then
      skip "base image: a container registry is reachable; builds can start FROM docker.io/library/debian:bookworm-slim (use --base-image always to build the local one anyway)"
    else
      say "base image: no container registry reachable, building the local one"
      BUILD_BASE=1
    fi ;;
esac
if [ "$BUILD_BASE" -eq 1 ]; then
  T=$(now)
  OUT=$(bash "$HERE/make-base-image.sh" --engines "$ENGINES_CSV" 2>&1 | tee >(cat >&2)) \
    || die "base image: scripts/make-base-image.sh failed (output above)"
  if grep -q 'nothing to do' <<<"$OUT"; then
    skip "base image: localhost/llmdeploy-base:bookworm already in $ENGINES_CSV"
  else
    did "base image: localhost/llmdeploy-base:bookworm ready for $ENGINES_CSV ($(since "$T"))"
  fi
  if [ "$ARM64" -eq 1 ] && [ "$(uname -m)" != aarch64 ]; then
    # arm64 images are built and run with Podman here (Docker has no manifest lists without buildx)
    T=$(now)
    OUT=$(bash "$HERE/make-base-image.sh" --engines podman --arch arm64 2>&1 | tee >(cat >&2)) \
      || die "base image (arm64): scripts/make-base-image.sh --arch arm64 failed (output above)"
    if grep -q 'nothing to do' <<<"$OUT"; then
      skip "base image: localhost/llmdeploy-base:bookworm-arm64 already in podman"
    else
      did "base image: localhost/llmdeploy-base:bookworm-arm64 ready for podman ($(since "$T"))"
    fi
  fi
fi
if [ "$WHEELHOUSE" -eq 1 ]; then
  if [ -n "${XLLAMACPP_VERSION:-}" ] || python3 -m pip show xllamacpp >/dev/null 2>&1; then
    T=$(now)
    if OUT=$(bash "$HERE/make-wheelhouse.sh" 2>&1 | tee >(cat >&2)); then
      WH=$(tail -n1 <<<"$OUT")
      if grep -q 'download skipped' <<<"$OUT" && ! grep -q 'stripped debug info' <<<"$OUT"; then
        skip "wheelhouse: $WH already has the xllamacpp wheel"
      else
        did "wheelhouse: $WH ($(since "$T"))"
      fi
    else
      warn "wheelhouse: make-wheelhouse.sh failed; image builds will install xllamacpp from PyPI"
    fi
    if [ "$ARM64" -eq 1 ] && [ "$(uname -m)" != aarch64 ]; then
      T=$(now)
      if OUT=$(bash "$HERE/make-wheelhouse.sh" --arch aarch64 2>&1 | tee >(cat >&2)); then
        if grep -q 'download skipped' <<<"$OUT" && ! grep -q 'stripped debug info' <<<"$OUT"; then
          skip "wheelhouse: already has the aarch64 xllamacpp wheel"
        else
          did "wheelhouse: aarch64 xllamacpp wheel ($(since "$T"))"
        fi
      else
        warn "wheelhouse: the aarch64 wheel could not be fetched; arm64 builds will need PyPI"
      fi
    fi
  else
    skip "wheelhouse: xllamacpp is not installed on this host and XLLAMACPP_VERSION is unset (pip install -e . first, or run scripts/make-wheelhouse.sh --version V)"
  fi
fi

# -------------------------------------------------------------------------------- self-check
if [ "$BUILD_BASE" -eq 1 ]; then
  for e in "${ENGINES_UP[@]}"; do
    RUN=("$e"); [ "$e" = docker ] && [ -n "$SUDO" ] && ! docker info >/dev/null 2>&1 && RUN=(sudo docker)
    if out=$("${RUN[@]}" run --rm --network none localhost/llmdeploy-base:bookworm true 2>&1); then
      say "check: '$e run' of the base image works with this host's defaults"
    else
      warn "check: '$e run --rm localhost/llmdeploy-base:bookworm true' failed: $out"
    fi
  done
fi

echo
say "finished in $(since "$T_ALL"): ${#DONE[@]} done, ${#SKIPPED[@]} skipped, ${#WARNINGS[@]} warnings"
for w in "${WARNINGS[@]+"${WARNINGS[@]}"}"; do say "  warning: $w"; done
echo
echo "Use from other tools:"
[ "$WANT_PODMAN" -eq 1 ] && echo "  export CONTAINER_HOST=unix://$PODMAN_SOCK    # podman-py / podman --remote"
[ "$WANT_DOCKER" -eq 1 ] && echo "  export DOCKER_HOST=unix://$DOCKER_SOCK       # docker SDK / CLI"
if [ "$WANT_DOCKER" -eq 1 ] && ! docker buildx version >/dev/null 2>&1; then
  echo "  export DOCKER_BUILDKIT=0                          # no buildx plugin: use the classic builder for docker build"
fi
exit 0
