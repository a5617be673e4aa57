#!/usr/bin/env bash
# Issue 11, gunicorn-heartbeat precondition: can this host produce the heartbeat stall at all?
# Runs the experiment's own heartbeat program (experiments/gunicorn-heartbeat/context/heartbeat.py)
# on the container layer (/tmp) and on tmpfs (/dev/shm) while its O_DSYNC writer fills the layer,
# first unthrottled, then with the container's writes to the root disk limited by the cgroup
# (docker run --device-write-bps DEV:RATE). Prints one JSON line per case. Run under the docker lock:
#   flock /tmp/imagebench-docker.lock bash scripts/heartbeat_pressure.sh [RATE ...]
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=${DEV:-$(df --output=source /var/lib/docker | tail -1)}  # the disk under the container layers
TAG=imagebench-i11/heartbeat:probe
BASE=$(.venv/bin/python -c 'import json,glob; r=json.load(open(sorted(glob.glob("results/vm/*.json"))[0])); print(r["bases"]["python:3.13-slim"]["lab_tag"])')
trap 'docker rmi -f "$TAG" >/dev/null 2>&1 || true' EXIT
docker buildx build -q --load -t "$TAG" --build-context "python:3.13-slim=docker-image://$BASE" \
  experiments/gunicorn-heartbeat/context -f experiments/gunicorn-heartbeat/Dockerfile >/dev/null
run() {  # label, docker flags..., -- heartbeat args
  local label=$1; shift
  local flags=()
  while [ "$1" != "--" ]; do flags+=("$1"); shift; done; shift
  printf '{"case": "%s", "result": %s}\n' "$label" \
    "$(docker run --rm "${flags[@]}" "$TAG" python /app/heartbeat.py "$@" --seconds 5 --writer-dir /var/tmp)"
}
run "tmp, unthrottled, 64 MiB chunks" -- /tmp --writer-mib 64
for rate in "${@:-1mb 256kb}"; do
  for r in $rate; do
    run "tmp, writes limited to $r/s on $DEV, 4 MiB chunks" --device-write-bps "$DEV:$r" -- /tmp --writer-mib 4
    run "shm, writes limited to $r/s on $DEV, 4 MiB chunks" --device-write-bps "$DEV:$r" -- /dev/shm --writer-mib 4
  done
done
