#!/usr/bin/env bash
# The committed reference run: the whole catalog at 5 trials, its report, the suite timings and
# the harness-overhead measurement, then the README's generated blocks. Run on a quiet machine
# (nothing else using the daemon) after `make lab`.
#
#   bash scripts/reference-run.sh            # everything (about an hour on 2 cores)
#   STEPS="quick overhead" bash scripts/reference-run.sh
#
# Steps: `calibration` runs alone first (its time claims need a quiet machine); `full` runs the rest
# of the catalog at TRIALS, except pip-cache (shaped network, its own step) and the HEAVY experiments
# (multi-stage: ten variants of multi-minute builds whose claims are exact sizes and bytes), which run
# at HEAVY_TRIALS. With HEAVY_DOCKER_HOST set (a second engine on this machine with the lab's bases
# loaded), the heavy experiments run on that engine in parallel with `full`; their run file records
# that engine in its fingerprint.
set -euo pipefail
cd "$(dirname "$0")/.."
IB=${IB:-.venv/bin/imagebench}
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-"calibration full pipcache overhead report notebooks readme"}
TRIALS=${TRIALS:-5}
HEAVY=${HEAVY:-multi-stage}
HEAVY_TRIALS=${HEAVY_TRIALS:-3}
mkdir -p results/perf

# A reference run records the harness commit it ran: refuse a tree with uncommitted changes to
# tracked files outside results/ (the run's own output), so the commit in every run file is the code.
if dirty=$(git status --porcelain --untracked-files=no -- . ':(exclude)results') && [ -n "$dirty" ]; then
  echo "reference-run: the working tree has uncommitted changes; commit or stash them first:" >&2
  echo "$dirty" >&2
  exit 3
fi

for step in $STEPS; do
  case $step in
    quick)     # suite cost, one trial each; kept apart from the reference results
      rm -rf results/perf/quick
      $IB --results results/perf/quick run --all --quick --seed 1 || true ;;
    calibration) # alone, at its own n (which --trials cannot lower)
      $IB --results results run calibration --seed 2 || true ;;
    full)      # the reference run itself: the catalog but calibration, pip-cache and the heavy ones
      rest=$($IB list --json | $PY -c 'import json, sys; skip = set(sys.argv[1:]); print(" ".join(e["name"] for e in json.load(sys.stdin) if e["name"] not in skip))' calibration pip-cache $HEAVY)
      heavy_pid=""
      if [ -n "${HEAVY_DOCKER_HOST:-}" ]; then
        DOCKER_HOST=$HEAVY_DOCKER_HOST $IB --results results run $HEAVY --trials "$HEAVY_TRIALS" --seed 2 &
        heavy_pid=$!
      fi
      $IB --results results run $rest --trials "$TRIALS" --seed 2 || true
      if [ -n "$heavy_pid" ]; then wait "$heavy_pid" || true
      else $IB --results results run $HEAVY --trials "$HEAVY_TRIALS" --seed 2 || true; fi ;;
    pipcache)  # pip-cache needs a shaped network: 100 Mbit/s + 20 ms per request, then back to unlimited
      $IB lab up --profile 100mbit
      $IB --results results run pip-cache --seed 3 || true
      $IB lab up --profile unlimited ;;
    overhead)
      $PY scripts/overhead.py --rounds 5 --out results/perf/overhead.json ;;
    report)
      $IB --results results report ;;
    notebooks) # the workshop notebooks with their outputs from this reference
      $PY scripts/notebooks.py ;;
    readme)
      $PY scripts/readme_figures.py ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
