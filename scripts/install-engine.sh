#!/usr/bin/env bash
# Install (only when no engine answers) and start a Docker Engine with buildx, without systemd.
# Recipe: ../shared/lab-facts.md (trixie's engine on bookworm, four packages from trixie).
# Exit codes: 0 engine answers; 2 cannot install here (not root / not Debian-like / no source);
#             3 installed but the daemon did not answer.
set -euo pipefail

log() { printf 'install-engine: %s\n' "$*" >&2; }
die() { printf 'install-engine: error: %s\n' "$1" >&2; exit "${2:-2}"; }

engine_answers() { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }

if engine_answers; then
  log "an engine already answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null)); nothing to install"
  exit 0
fi

# A DOCKER_HOST pointing elsewhere means the user wants that engine: never install a local one behind their back.
if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != "unix:///var/run/docker.sock" ]; then
  die "DOCKER_HOST=${DOCKER_HOST} does not answer; start that engine or unset DOCKER_HOST"
fi

[ "$(id -u)" -eq 0 ] || die "no Docker engine answers and installing one needs root; run as root or start your engine"
[ -r /etc/os-release ] || die "no /etc/os-release: cannot tell the distribution; install Docker Engine >= 26 yourself"
. /etc/os-release
case " ${ID:-} ${ID_LIKE:-} " in
  *" debian "*) ;;
  *) die "not a Debian-like system (${ID:-unknown}); install Docker Engine >= 26 and buildx >= 0.12 yourself" ;;
esac
command -v apt-get >/dev/null 2>&1 || die "apt-get missing on a Debian-like system; install Docker Engine yourself"

need_install=1
if command -v dockerd >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; then
  need_install=0
fi

if [ "$need_install" -eq 1 ]; then
  codename=${VERSION_CODENAME:-}
  if [ "$codename" = "bookworm" ]; then
    # Bookworm's own docker.io is 20.10 (no buildx): take four packages from trixie, keep bookworm as default.
    if [ ! -f /etc/apt/sources.list.d/trixie.sources ]; then
      cat > /etc/apt/sources.list.d/trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    printf 'APT::Default-Release "bookworm";\n' > /etc/apt/apt.conf.d/99default-release
    suffix=/trixie
  else
    suffix=
  fi
  log "updating package lists"
  apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed: no package source reachable; install Docker Engine yourself"
  for p in docker.io docker-buildx containerd; do
    apt-cache show "$p${suffix:+}" >/dev/null 2>&1 || die "package $p not available from the configured sources"
  done
  log "installing docker.io, docker-buildx, containerd${suffix:+ from trixie}"
  # apt-get installs all or nothing: no half-install on failure.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "docker.io$suffix" "docker-cli$suffix" "docker-buildx$suffix" "containerd$suffix" >/dev/null \
      || die "apt-get install of the engine failed; nothing was started"
fi

# Start dockerd without systemd.
if [ -f /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
  log "dockerd (pid $(cat /var/run/docker.pid)) runs but does not answer yet; waiting"
else
  rm -f /var/run/docker.pid
  logdir=${IMAGEBENCH_STATE:-/var/lib/imagebench}
  mkdir -p "$logdir"
  # BuildKit's build history, bounded (why: scripts/engine_config.py); /etc/docker/daemon.json is read, never written.
  conf="$logdir/daemon.json"
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to write $conf"
  python3 "$(dirname "$0")/engine_config.py" /etc/docker/daemon.json "$conf" \
    || die "cannot merge /etc/docker/daemon.json into $conf; fix that file or move it aside"
  log "starting dockerd with $conf (log: $logdir/dockerd.log)"
  nohup dockerd --config-file "$conf" >"$logdir/dockerd.log" 2>&1 </dev/null &
fi
for _ in $(seq 1 60); do
  if engine_answers; then
    log "engine answers: $(docker version --format 'Engine {{.Server.Version}} API {{.Server.APIVersion}}')"
    exit 0
  fi
  sleep 1
done
die "dockerd was started but did not answer within 60 s; see ${IMAGEBENCH_STATE:-/var/lib/imagebench}/dockerd.log" 3
