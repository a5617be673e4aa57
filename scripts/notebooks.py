#!/usr/bin/env python3
"""Execute the workshop notebooks against the committed reference (results/) and keep their outputs,
so a trainer opening them on a code host sees every plot and table.

    python scripts/notebooks.py            # re-execute notebooks/*.ipynb in place (after `make reference`)
    python scripts/notebooks.py --check    # exit 1 when a committed notebook's outputs are not current

Outputs are deterministic: no timing metadata, execution counts from 1, the reference's own data.
"--check" compares every code cell's text outputs and the number of images with a fresh execution.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
REFERENCE = REPO / "results"
CELL_TIMEOUT = 600


def execute(path: Path, results: Path = REFERENCE):
    """The notebook executed top to bottom against `results` (the file is not written)."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    # Relative to the notebook when inside the checkout, so outputs do not name the clone's path.
    shown = Path(os.path.relpath(results, path.parent)) if results.is_relative_to(REPO) else results
    env = {"IMAGEBENCH_RESULTS": str(shown), "MPLBACKEND": "Agg"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(
            nb,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",
            record_timing=False,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def fingerprint(nb) -> list:
    """What --check compares per code cell: text outputs verbatim, images counted."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        texts, images = [], 0
        for o in cell.outputs:
            if o.output_type == "stream":
                texts.append(("stream", o.get("name"), o.get("text", "")))
            elif o.output_type in ("display_data", "execute_result"):
                data = o.get("data", {})
                images += sum(1 for k in data if k.startswith("image/"))
                for k in ("text/plain", "text/markdown", "text/html"):
                    if k in data and not any(x.startswith("image/") for x in data):
                        texts.append((k, data[k]))
            elif o.output_type == "error":
                texts.append(("error", o.get("ename"), o.get("evalue")))
        out.append((cell.source, texts, images))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when committed outputs are stale")
    args = ap.parse_args()
    import nbformat

    stale = []
    for path in NOTEBOOKS:
        fresh = execute(path)
        if args.check:
            committed = nbformat.read(path, as_version=4)
            if fingerprint(committed) != fingerprint(fresh):
                stale.append(path.name)
            continue
        nbformat.write(copy.deepcopy(fresh), path)
        print(f"wrote {path.relative_to(REPO)}")
    if stale:
        print(
            f"stale notebook outputs: {', '.join(stale)} (run python scripts/notebooks.py)", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
