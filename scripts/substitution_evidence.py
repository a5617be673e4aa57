"""Which stand-in runs code written for Python 3.12 best: 3.11 or 3.13?  Measured, for the default rule.

    python scripts/substitution_evidence.py [--method dry-run|install|both] [--libc glibc,musl]
        [--sets scripts/substitution-sets] [--out harness/data/substitution-evidence.json]

The inputs are pinned requirement files of the shapes real projects have (scripts/substitution-sets/,
written for this measurement: web APIs, Django, data science, scrapers, gRPC, ...; most pinned in
2023-2024, a few in 2025), plus the held-in fixtures: the requirement files of the experiments whose
Dockerfiles say `FROM python:3.12*` (experiments/multi-stage).  Each set is tried two ways:

  dry-run  the host's pip resolves the set for another interpreter, wheels only:
           `pip install --isolated --dry-run --ignore-installed --only-binary=:all: --python-version 3.X
           --implementation cp --abi cp3X --platform <the stand-in's platform tags> --index-url <lab index>
           -r SET`.  Cheap (seconds a set), every libc, every minor (3.12 too, which the lab cannot run):
           a set that does not resolve on 3.12 itself is not "written for 3.12" and is left out of the
           3.12 tallies.  It counts an sdist-only package as a failure although a pure-Python sdist
           would build in the image.
  install  the real thing, in the lab's stand-in containers (no compiler, like python:3.X-slim):
           `docker run --rm --network=host <stand-in> pip install --no-cache-dir -r SET` against the
           lab index.  A package without a fitting wheel builds from its sdist, or fails as a build
           in the image would.  Slower (the index mirrors PyPI on first use).

The summary (`results`) counts, per libc and per stand-in minor, the sets that failed, taking the
install method where it ran for that libc and minor and the dry-run otherwise.  harness/pyversions.py
reads `results` for its default rule, `compatible`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.lab.wheelhouse import MUSL_PLATFORMS, PLATFORMS  # noqa: E402

SETS = ROOT / "scripts" / "substitution-sets"
OUT = ROOT / "harness" / "data" / "substitution-evidence.json"
# the experiments' own requirement files used under FROM python:3.12* (the held-in fixtures)
HELD_IN = (
    "experiments/multi-stage/context-web/requirements.txt",
    "experiments/multi-stage/context-ds/requirements.txt",
)
REQUESTED = "3.12"
CANDIDATES = ("3.11", "3.13")
STAND_INS = {
    ("glibc", "3.11"): "imagebench-lab/python:3.11-slim-bookworm",
    ("glibc", "3.13"): "imagebench-lab/python:3.13-slim-trixie",
    ("musl", "3.11"): "imagebench-lab/python:3.11-musl",
    ("musl", "3.13"): "imagebench-lab/python:3.13-musl",
}


def load_sets(folder: Path) -> dict[str, dict]:
    """name -> {path, era, pins}; the era is the first comment's leading word (2024-01)."""
    out = {}
    for f in sorted(folder.glob("*.txt")):
        lines = f.read_text().splitlines()
        era = lines[0].lstrip("# ").split(":", 1)[0] if lines and lines[0].startswith("#") else ""
        pins = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith(("#", "-"))]
        out[f.stem] = {"path": str(f.relative_to(ROOT)), "era": era, "pins": len(pins)}
    for rel in HELD_IN:
        f = ROOT / rel
        if f.exists():
            pins = [
                ln
                for ln in f.read_text().splitlines()
                if ln.strip() and not ln.lstrip().startswith(("#", "-"))
            ]
            out["held-in:" + rel.split("/")[1] + "/" + rel.split("/")[2]] = {
                "path": rel,
                "era": "held-in",
                "pins": len(pins),
            }
    return out


def first_error(text: str) -> str:
    """The line that says why pip failed (its first ERROR/error line), shortened."""
    lines = [ln.strip() for ln in text.splitlines()]
    for key in ("No matching distribution found", "error: subprocess-exited-with-error", "× "):
        at = next((i for i, ln in enumerate(lines) if key in ln), None)
        if at is None:
            continue
        hit = lines[at]
        if key != "No matching distribution found":  # name the package whose build failed
            before = [ln for ln in lines[:at] if ln.startswith(("Collecting ", "Building wheel for "))]
            hit = f"{hit} ({before[-1]})" if before else hit
        return hit[:240]
    for s in lines:
        if s.startswith(("ERROR:", "error:")) and not s.startswith("ERROR: Ignored the following"):
            return s[:240]
    tail = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return tail[-1][:240] if tail else ""


def dry_run(req: Path, python: str, libc: str, index_url: str) -> dict:
    """The host's pip resolving `req` for CPython `python` on `libc`, wheels only."""
    plats = MUSL_PLATFORMS if libc == "musl" else PLATFORMS
    abi = "cp" + python.replace(".", "")
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--isolated",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
    ]
    argv += ["--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--abi", abi]
    for p in plats:
        argv += ["--platform", p]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        argv += ["--index-url", index_url, "--report", str(report), "-r", str(req)]
        t0 = time.perf_counter()
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        secs = round(time.perf_counter() - t0, 1)
        n = (
            len(json.loads(report.read_text()).get("install", []))
            if cp.returncode == 0 and report.exists()
            else None
        )
    return {
        "ok": cp.returncode == 0,
        "seconds": secs,
        "packages": n,
        "error": "" if cp.returncode == 0 else first_error(cp.stderr),
    }


def install(req: Path, image: str) -> dict:
    """A real `pip install -r` in the stand-in (its pip.conf points at the lab index)."""
    argv = [
        "docker",
        "run",
        "--rm",
        "--network=host",
        "-v",
        f"{req.resolve()}:/tmp/requirements.txt:ro",
        image,
    ]
    argv += ["pip", "install", "--no-cache-dir", "--disable-pip-version-check", "-r", "/tmp/requirements.txt"]
    t0 = time.perf_counter()
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=1200, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "seconds": 1200.0, "error": "timed out after 1200 s"}
    secs = round(time.perf_counter() - t0, 1)
    return {
        "ok": cp.returncode == 0,
        "seconds": secs,
        "error": "" if cp.returncode == 0 else first_error(cp.stdout + cp.stderr),
    }


def image_present(tag: str) -> bool:
    return (
        subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode == 0
    )


def summarize(sets: dict, runs: dict) -> dict:
    """results[libc][REQUESTED][minor] = {failed, sets, failed_sets, method, install_check}, from the dry-run
    over every set that resolves on 3.12 (one method for every minor); install_check says on how many of
    them the real installs that ran agree with it."""
    out: dict = {}
    for libc in ("glibc", "musl"):
        dry = runs.get("dry-run", {}).get(libc, {})
        for_312 = [s for s in sets if (dry.get(REQUESTED) or {}).get(s, {}).get("ok")]
        table = {}
        for minor in CANDIDATES:
            rows = dry.get(minor) or {}
            if not for_312 or not all(s in rows for s in for_312):
                continue
            failed = [s for s in for_312 if not rows[s]["ok"]]
            inst = runs.get("install", {}).get(libc, {}).get(minor) or {}
            tried = [s for s in for_312 if s in inst]
            disagree = [s for s in tried if inst[s]["ok"] != rows[s]["ok"]]
            table[minor] = {
                "failed": len(failed),
                "sets": len(for_312),
                "failed_sets": failed,
                "method": "dry-run",
                "install_check": {
                    "sets": len(tried),
                    "agree": len(tried) - len(disagree),
                    "disagree": disagree,
                },
            }
        if table:
            out[libc] = {REQUESTED: table}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=("dry-run", "install", "both"), default="both")
    ap.add_argument("--libc", default="glibc,musl", help="comma-separated: glibc, musl")
    ap.add_argument("--sets", type=Path, default=SETS)
    ap.add_argument(
        "--index-url", default="http://127.0.0.1:3141/simple/", help="the lab index (mirrors PyPI)"
    )
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--resume", action="store_true", help="keep the rows --out already has; try only the others"
    )
    ap.add_argument(
        "--only", default="", help="comma-separated set names (file stems) the install method tries"
    )
    args = ap.parse_args(argv)
    libcs = [x for x in args.libc.split(",") if x]
    only = {x for x in args.only.split(",") if x}
    sets = load_sets(args.sets)
    if not sets:
        print(f"no requirement sets in {args.sets}", file=sys.stderr)
        return 2
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs: dict = old.get("runs", {})
    commands: dict = old.get("commands", {})
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    command = "python scripts/substitution_evidence.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    for m in ("dry-run", "install") if args.method == "both" else (args.method,):
        prev = commands.get(m)
        runs_of_m = prev if isinstance(prev, list) else ([prev] if prev else [])
        commands[m] = [*runs_of_m, {"command": command.strip(), "started": started, "libc": libcs}]

    def save() -> dict:
        """The file as it stands (rewritten after every set: an interrupted measurement keeps what it has)."""
        results = summarize(sets, runs)
        data = {
            "schema": 1,
            "question": f"which stand-in minor installs the pinned requirements of code written for Python {REQUESTED}",
            "label": "pinned requirement sets",
            "commands": commands,
            "index": args.index_url,
            "sets": sets,
            "runs": runs,
            "results": results,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        tmp.replace(args.out)
        return results

    if args.method in ("dry-run", "both"):
        for libc in libcs:
            for py in (REQUESTED, *CANDIDATES):
                rows = runs.setdefault("dry-run", {}).setdefault(libc, {}).setdefault(py, {})
                for name, s in sets.items():
                    if args.resume and name in rows:
                        continue
                    rows[name] = dry_run(ROOT / s["path"], py, libc, args.index_url)
                    print(
                        f"dry-run {libc} {py} {name}: {'ok' if rows[name]['ok'] else rows[name]['error']}",
                        flush=True,
                    )
                    save()
    if args.method in ("install", "both"):
        for libc in libcs:
            for py in CANDIDATES:
                image = STAND_INS[(libc, py)]
                if not image_present(image):
                    print(f"install {libc} {py}: {image} is not built: skipped", flush=True)
                    continue
                rows = runs.setdefault("install", {}).setdefault(libc, {}).setdefault(py, {})
                for name, s in sets.items():
                    if (args.resume and name in rows) or (only and name not in only):
                        continue
                    rows[name] = {"image": image, **install(ROOT / s["path"], image)}
                    print(
                        f"install {libc} {py} {name}: {'ok' if rows[name]['ok'] else rows[name]['error']}",
                        flush=True,
                    )
                    save()
    results = save()
    for libc, t in results.items():
        for minor, row in t[REQUESTED].items():
            chk = row["install_check"]
            print(
                f"{libc}: {row['failed']} of {row['sets']} sets failed on {minor} ({row['method']}; real installs "
                f"agree on {chk['agree']} of {chk['sets']}): {', '.join(row['failed_sets'])}"
            )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
