#!/usr/bin/env bash
# The committed reference: what one `make reference` produces on an idle machine, and nothing else.
#
#   make reference                      # = make lab, then this script (the longest target: the README perf
#                                       # block shows the run times of the last reference)
#   STEPS="report notebooks readme" bash scripts/reference-run.sh   # re-render from results/ only
#
# Steps, one after another, never two at once:
#   clear     remove the previous reference's run files (results/<machine>/*.json) and report; git keeps them
#   catalog   ONE `imagebench run --all` of every experiment that needs no shaped network, each at its own
#             default n (experiment.toml's `trials`: tests/unit/test_pooling.py checks it is never below what
#             the report needs to judge each claim), the full calibration included in the same run
#   pipcache  the experiments that require a shaped network (pip-cache), at the 100mbit profile, in a
#             second run right after the first; the profile goes back to unlimited afterwards
#   overhead  the harness's own cost per trial (results/perf/overhead.json)
#   report    `imagebench report` of results/ (no --pool: the runs above share one commit and engine and
#             never overlap, so nothing is pooled; the report says so if that ever fails)
#   notebooks the workshop notebooks with their outputs from this reference
#   readme    the README's generated blocks
#   check     the acceptance rules of a reference (scripts/reference_check.py): one commit, clean tree,
#             complete runs, disjoint times, the commands this script ran, calibration passed
# Every run file records the command this script ran (`command`) and the commit (`fingerprint.harness`).
set -euo pipefail
cd "$(dirname "$0")/.."
IB=${IB:-.venv/bin/imagebench}
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-"clear catalog pipcache overhead report notebooks readme check"}
SEED=${SEED:-2}
mkdir -p results/perf

# A reference run records the harness commit it ran: refuse a tree with uncommitted changes to
# tracked files outside results/ (the run's own output), so the commit in every run file is the code.
if dirty=$(git status --porcelain --untracked-files=no -- . ':(exclude)results') && [ -n "$dirty" ]; then
  echo "reference-run: the working tree has uncommitted changes; commit or stash them first:" >&2
  echo "$dirty" >&2
  exit 3
fi

# experiments by whether they need a shaped network, from the catalog itself
split() {  # $1 = shaped|plain
  $IB list --json | $PY -c '
import json, sys
want = sys.argv[1] == "shaped"
print(" ".join(e["name"] for e in json.load(sys.stdin) if ("shaped-network" in (e.get("requires") or [])) == want))' "$1"
}

for step in $STEPS; do
  echo "reference-run: step $step at $(date -u +%H:%M:%S) (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  case $step in
    clear)
      find results -mindepth 2 -maxdepth 2 -path 'results/*/*.json' -not -path 'results/perf/*' \
        -not -path 'results/drift/*' -print -delete >&2 || true
      find results -mindepth 1 -maxdepth 1 -type d -empty -delete ;;
    catalog)
      # shellcheck disable=SC2046  # one word per experiment
      $IB --results results run $(split plain) --seed "$SEED" || true ;;
    pipcache)
      shaped=$(split shaped)
      if [ -n "$shaped" ]; then
        $IB lab up --profile 100mbit
        # shellcheck disable=SC2086
        $IB --results results run $shaped --seed "$SEED" || true
        $IB lab up --profile unlimited
      fi ;;
    overhead)
      $PY scripts/overhead.py --rounds 5 --out results/perf/overhead.json ;;
    report)
      $IB --results results report ;;
    notebooks) # the workshop notebooks with their outputs from this reference
      $PY scripts/notebooks.py ;;
    readme)
      $PY scripts/readme_figures.py ;;
    check)
      $PY scripts/reference_check.py results ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
