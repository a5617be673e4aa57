#!/usr/bin/env bash
# Record real `docker buildx build --progress=rawjson` streams for the event-parser tests
# (tests/unit/test_events.py). Needs the local daemon and no network: every build uses
# the offline base from tests/fixtures/make_busybox_base.sh.
#
#   scripts/record-fixtures.sh [OUTDIR]     # default tests/fixtures/rawjson
#
# Writes OUTDIR/<name>.rawjson (the stderr of the build, byte for byte) and
# OUTDIR/recorded.tsv (name, exit code, buildx version, docker server version).
# Never prunes the builder cache (the daemon is shared); cold recordings use --no-cache.
# Images it tags (imagebench-fixture/*) are removed at the end; the base is kept.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$here/tests/fixtures/rawjson}"
mkdir -p "$out"
base="$("$here/tests/fixtures/make_busybox_base.sh")"
work="$(mktemp -d)"
tags=()
cleanup() {
    for t in "${tags[@]}"; do docker image rm -f "$t" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

buildx_version="$(docker buildx version | awk '{print $2}')"
server_version="$(docker version --format '{{.Server.Version}}')"
printf 'name\trc\tbuildx\tserver\n' >"$out/recorded.tsv"

# record NAME CONTEXT [extra buildx args...]: build CONTEXT, keep stderr as NAME.rawjson.
record() {
    local name="$1" ctx="$2"; shift 2
    local tag="imagebench-fixture/$name:rec" rc=0
    tags+=("$tag")
    docker buildx build --progress=rawjson --network=none -t "$tag" "$@" "$ctx" \
        2>"$out/$name.rawjson" >/dev/null || rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$buildx_version" "$server_version" >>"$out/recorded.tsv"
    echo "recorded $name (rc=$rc, $(wc -c <"$out/$name.rawjson") bytes)" >&2
}

# 1+2. multi-stage: cold (--no-cache) then warm (identical rebuild, all cached).
ms="$work/ms-ctx"; mkdir -p "$ms"
echo "hello from the context" >"$ms/a.txt"
cat >"$ms/Dockerfile" <<DOCKERFILE
FROM $base AS builder
WORKDIR /src
COPY a.txt .
RUN sleep 0.3 && cat a.txt > out.txt && echo built
FROM $base
COPY --from=builder /src/out.txt /out.txt
RUN cat /out.txt
DOCKERFILE
record multistage-cold "$ms" --no-cache
record multistage-warm "$ms"

# 3. a failing RUN: JSON then the plain-text error tail, rc=1.
fail="$work/fail-ctx"; mkdir -p "$fail"
cat >"$fail/Dockerfile" <<DOCKERFILE
FROM $base
RUN echo step-two
RUN sleep 0.2
RUN echo about to fail && exit 3
RUN echo never runs
DOCKERFILE
record fail-run "$fail" --no-cache

# 4. single stage with a cache mount: vertex names get the "stage-0" prefix.
cm="$work/cachemount-ctx"; mkdir -p "$cm"
cat >"$cm/Dockerfile" <<DOCKERFILE
FROM $base
RUN --mount=type=cache,target=/cache echo x > /cache/stamp && ls /cache
DOCKERFILE
record cachemount "$cm" --no-cache

# 5. context with a 1 MiB incompressible file; a fresh basename, so it is really sent.
ctx="$work/ctx1m-$(date +%s%N)"; mkdir -p "$ctx"
head -c 1048576 /dev/urandom >"$ctx/big.bin"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $base
COPY . /ctx/
RUN wc -c /ctx/big.bin
DOCKERFILE
record context-1mib "$ctx" --no-cache

# Derived fixtures, assembled from the real objects recorded above:
#   *.jsonl              the same objects in one-object-per-line framing (buildx >= 0.15)
#   restart-vertex.rawjson  multistage-cold with the "RUN sleep" vertex announced again
#                        without `started` after it completed (must be ignored), then
#                        started twice more: a disjoint run at a whole second (no fraction
#                        in the timestamp) and one overlapping it (merged like progressui).
python3 - "$out" <<'PY'
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

out = Path(sys.argv[1])


def objects(text):
    dec, i, objs = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text) or text[i] != "{":
            return objs, text[i:]
        obj, i = dec.raw_decode(text, i)
        objs.append(obj)


def go_escape(s):  # Go's encoder escapes <, > and & as \u003c, \u003e, \u0026
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def ns(ts):  # RFC3339Nano -> integer nanoseconds since the epoch
    m = re.fullmatch(r"(.{19})(?:\.(\d+))?Z", ts)
    whole = datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(whole.timestamp()) * 10**9 + int((m[2] or "").ljust(9, "0"))


def rfc3339nano(n):  # like Go: trailing zeros trimmed, no fraction when zero
    s, frac = divmod(n, 10**9)
    base = datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    f = f"{frac:09d}".rstrip("0")
    return f"{base}.{f}Z" if f else f"{base}Z"


for name in ("multistage-cold", "fail-run"):
    objs, tail = objects((out / f"{name}.rawjson").read_text())
    lines = [go_escape(json.dumps(o, separators=(",", ":"))) for o in objs]
    (out / f"{name}.jsonl").write_text("".join(line + "\n" for line in lines) + tail)

objs, tail = objects((out / "multistage-cold.rawjson").read_text())
assert not tail
where = last = None
for k, o in enumerate(objs):
    for v in o.get("vertexes") or []:
        if "RUN sleep" in v.get("name", "") and "completed" in v:
            where, last = k, v
assert last is not None, "no completed RUN sleep vertex"
again = {key: last[key] for key in ("digest", "inputs", "name") if key in last}
s2 = (ns(last["completed"]) // 10**9 + 2) * 10**9          # a whole second
runs = [(s2, s2 + 250_000_000), (s2 + 100_000_000, s2 + 300_000_000)]
extra = [{"vertexes": [again]}] + [
    {"vertexes": [{**again, "started": rfc3339nano(a), "completed": rfc3339nano(b)}]} for a, b in runs
]
objs[where + 1 : where + 1] = extra
text = "".join(go_escape(json.dumps(o, indent=2)) + "\n" for o in objs)
(out / "restart-vertex.rawjson").write_text(text)
print("derived multistage-cold.jsonl fail-run.jsonl restart-vertex.rawjson", file=sys.stderr)
PY
