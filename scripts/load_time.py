#!/usr/bin/env python3
"""Load time of committed run files: the schema libraries side by side, and imagebench's own reader.

Issue 25 picked the run file's model library by this measurement (harness/schemas.py says the
numbers). For the run files under RESULTS (default results/; `<machine>/*.json` as the readers list
them) it prints the median of 5 of:

- json.loads alone, and msgspec.json.decode alone (parse only);
- msgspec: decode with the model as type, and convert of the parsed file to the model;
- pydantic v2 (if installed: `.venv/bin/pip install pydantic`; not a dependency): TypeAdapter over
  the same TypedDicts, validate_json and validate_python, strict;
- `harness.results.scan_runs(RESULTS)`: what every command pays (read, parse, validate).

The model is a plain copy of `harness.schemas.RunFile`'s fields without msgspec's constraints
(pydantic reads `typing_extensions.TypedDict` only on Python < 3.12), so both libraries check the
same structure.

    .venv/bin/python scripts/load_time.py [RESULTS]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NotRequired

import msgspec
from typing_extensions import TypedDict

from harness.results import iter_run_files, scan_runs

Num = int | float


class Base(TypedDict, total=False):
    public: str | None
    lab_tag: str | None
    image_id: str | None
    registry_digest: str | None
    stands_in_for: str | None
    name: str | None
    tag: str | None
    bytes: Num | None
    compressed_bytes: Num | None
    official_compressed_bytes: Num | None


class Profile(TypedDict, total=False):
    name: str | None
    rate_bps: Num | None
    measured_bps: Num | None
    latency_ms: Num | None


class Lab(TypedDict, total=False):
    profile: Profile | None
    bases: list[Base | None] | dict[str, Base | None] | None


class Fingerprint(TypedDict, total=False):
    engine: dict[str, Any] | None
    harness: dict[str, Any] | None
    host: dict[str, Any] | None
    lab: Lab | None


class Variant(TypedDict):
    name: str
    dockerfile: NotRequired[str | None]
    target: NotRequired[str | None]
    description: NotRequired[str | None]
    scenarios: NotRequired[list[str] | None]
    requires: NotRequired[list[str] | None]


class Claim(TypedDict):
    metric: str
    scenario: NotRequired[str | None]
    label: NotRequired[str | None]
    source: NotRequired[str | None]
    value: NotRequired[Num | None]
    tolerance: NotRequired[Num | None]
    tolerance_rel: NotRequired[Num | None]
    primary: NotRequired[bool | None]
    expect: NotRequired[Literal["lower", "higher", "delta"] | None]
    op: NotRequired[str | None]
    baseline: NotRequired[str | None]
    candidate: NotRequired[str | None]
    variant: NotRequired[str | None]


class Definition(TypedDict):
    name: str
    practice: NotRequired[str | None]
    section: NotRequired[str | None]
    claim: NotRequired[str | None]
    article: NotRequired[str | None]
    summary: NotRequired[str | None]
    cannot_show: NotRequired[str | None]
    definition_hash: NotRequired[str | None]
    requires: NotRequired[list[str]]
    probes: NotRequired[list[str]]
    metrics: NotRequired[list[str]]
    not_measured: NotRequired[dict[str, Any]]
    variants: NotRequired[list[Variant]]
    claims: NotRequired[list[Claim]]
    preconditions: NotRequired[list[Claim]]


class Entry(TypedDict):
    experiment: str
    variant: str
    scenario: str
    trial: int


class Step(TypedDict, total=False):
    index: int
    seconds: Num | None
    start_offset: Num | None
    end_offset: Num | None


class Image(TypedDict, total=False):
    id: str | None
    user: str | None
    tag: str | None
    manifest_digest: str | None
    storage_driver: str | None
    bytes: Num | None
    layers: Num | None
    layer_bytes: list[Num] | None
    layer_compressed_bytes: list[Num] | None


class Trial(Entry):
    status: Literal["ok", "failed", "interrupted", "skipped"]
    error: NotRequired[str | None]
    metrics: NotRequired[dict[str, Num | bool | str | None] | None]
    steps: NotRequired[list[Step] | None]
    probe_data: NotRequired[dict[str, Any] | None]
    bases: NotRequired[dict[str, str | None] | None]
    image: NotRequired[Image | None]


class Run(TypedDict):
    schema: Literal["imagebench.run"]
    schema_version: int
    run_id: str
    machine: str
    status: str
    created_at: NotRequired[str | None]
    updated_at: NotRequired[str | None]
    trials: list[Trial]
    plan: list[Entry]
    experiments: dict[str, Definition]
    fingerprint: Fingerprint
    command: NotRequired[list[str] | None]
    warnings: NotRequired[list[str] | None]
    options: NotRequired[dict[str, Any] | None]
    bases: NotRequired[dict[str, Base | None] | None]
    machine_identity: NotRequired[dict[str, Any] | None]
    seed: NotRequired[int | None]


def median_ms(fn: Callable[[], object], n: int = 5) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path("results")
    files = [p for p in iter_run_files(root) if p.is_file()]
    if not files:
        print(f"load_time: error: no run files under {root}", file=sys.stderr)
        return 2
    raw = [p.read_bytes() for p in files]
    parsed = [json.loads(r) for r in raw]
    decoder = msgspec.json.Decoder(Run)
    cases: dict[str, Callable[[], object]] = {
        "json.loads (parse only)": lambda: [json.loads(r) for r in raw],
        "msgspec.json.decode (parse only)": lambda: [msgspec.json.decode(r) for r in raw],
        "msgspec.json.decode(type=Run)": lambda: [decoder.decode(r) for r in raw],
        "msgspec.convert(parsed, Run)": lambda: [msgspec.convert(d, Run) for d in parsed],
    }
    try:
        import pydantic
    except ImportError:
        print("(pydantic not installed: .venv/bin/pip install pydantic to compare)")
    else:
        adapter = pydantic.TypeAdapter(Run)
        cases[f"pydantic {pydantic.VERSION} validate_json(strict)"] = lambda: [
            adapter.validate_json(r, strict=True) for r in raw
        ]
        cases[f"pydantic {pydantic.VERSION} validate_python(parsed, strict)"] = lambda: [
            adapter.validate_python(d, strict=True) for d in parsed
        ]
    cases[f"harness.results.scan_runs({str(root)!r})"] = lambda: scan_runs(root)
    print(f"{len(files)} run files, {sum(map(len, raw))} bytes; median of 5")
    for name, fn in cases.items():
        print(f"{median_ms(fn):8.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
