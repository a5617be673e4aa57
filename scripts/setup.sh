#!/usr/bin/env bash
# Prepare a machine for imagebench: system packages, a Docker Engine (only if none answers),
# and the Python environment in .venv. Idempotent; safe to rerun. Run as root on Debian/Ubuntu.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$1" >&2; exit "${2:-2}"; }

APT_PKGS="mmdebstrap docker-registry apt-cacher-ng iproute2 openssl chromium busybox-static ca-certificates git make"

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=""
  for p in $APT_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
  done
  # Python 3.11+ with venv support (Debian's python3-venv) when the machine has no other Python.
  if ! python3 -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' >/dev/null 2>&1; then
    missing="$missing python3 python3-venv"
  fi
  if [ -n "$missing" ]; then
    log "installing system packages:$missing"
    # No service may start during the install (without systemd, apt-cacher-ng's and docker-registry's
    # init scripts would otherwise start system daemons on 3142/5000, the ports the lab binds).
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
    fi
    rc=0
    apt-get update -qq >/dev/null && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null || rc=$?
    [ "$own_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" -eq 0 ] || die "apt-get install failed for:$missing"
  fi
else
  for tool in mmdebstrap docker-registry apt-cacher-ng; do
    command -v "$tool" >/dev/null 2>&1 || log "warning: $tool missing and cannot be installed without root+apt; the lab needs it"
  done
fi

# Docker Engine + buildx: only installed when no engine answers (Docker Desktop / an existing engine is used).
bash scripts/install-engine.sh

# Optional tools some experiments use (cosign, Compose v2): best effort, never fatal.
if [ -x scripts/install-tools.sh ]; then
  bash scripts/install-tools.sh || log "warning: optional tools not installed; experiments needing them report 'not measured'"
fi

# Python environment.
PY=${PYTHON:-python3}
"$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null || die "Python >= 3.11 needed (found $($PY --version 2>&1))"
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  log "installing imagebench and its test dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  rm -f .venv/.installed-*; touch "$stamp"
fi
log "ready: $(.venv/bin/imagebench --version)"
