"""What the gate decides: one `Check` per compared cell or claim, the `GateResult` that holds them
with its exit code, and the constants and shapes the gate's modules share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

import numpy as np

from harness.errors import ExitStatus, UsageError
from harness.records import ExperimentDef, JSONObject, RunRecord

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

KEY = ["machine", "experiment", "variant", "scenario", "metric"]


LAYER_METRICS = ("layers", "own_layers")


POOLED = "(pooled)"


N_BOOT = 2000


SEED = 0


EXIT_CLAIM_LOST = 6


#: whole-image sizes and the own-layer metric each one is split into
ATTRIBUTED = {"image_bytes": "own_bytes", "image_bytes_compressed": "own_bytes_compressed"}


BASE_METRICS = {"image_bytes": "base_bytes", "image_bytes_compressed": "base_bytes_compressed"}


Cell: TypeAlias = tuple[str, str, str, str]
"""(machine, experiment, variant, scenario)."""
Key: TypeAlias = tuple[str, str, str, str, str]
"""(machine, experiment, variant, scenario, metric): one compared cell's metric (`KEY`)."""
Side: TypeAlias = "tuple[list[RunRecord], pd.DataFrame, dict[str, ExperimentDef]]"
"""One side of the gate: its runs, the tidy table of the rows compared, {experiment: definition}."""
Bases: TypeAlias = dict[str, dict[Cell, list[str]]]
"""{"baseline" | "current": {cell: sorted base image ids of its compared trials}}."""


class Limits(TypedDict):
    """What a measured value may move by before it fails (`gate`'s thresholds without `conf`)."""

    size_bytes: int
    size_pct: float | None
    layers: int
    time_ratio: float


class Thresholds(Limits):
    """The thresholds a gate ran with, as its result records them."""

    conf: float
    across_machines: bool
    whole_image: bool


class GateJSON(TypedDict):
    """`GateResult.to_dict`: what `imagebench gate --json` prints (schema imagebench.gate v2)."""

    schema: str
    schema_version: int
    passed: bool
    exit_code: int
    baseline: str
    current: str
    thresholds: Thresholds
    machines: dict[str, list[str]]
    notes: list[str]
    base_changes: list[JSONObject]
    failures: list[JSONObject]
    checks: list[JSONObject]


Values: TypeAlias = "npt.NDArray[Any]"
"""One cell's values over one side's trials."""
Groups: TypeAlias = dict[Key, Values]
"""{(machine, experiment, variant, scenario, metric): values} of one side (`groups`)."""
Allowance: TypeAlias = tuple[float, str]
"""(bytes, why) a size may move without being a regression."""
Allowances: TypeAlias = dict[tuple[str, str, str], Allowance]
"""{(experiment, variant, metric): allowance} the experiments declare (`inputs.declared_allowances`)."""


class Where(TypedDict):
    """What every check of one metric cell names: the cell, its metric and each side's trial count."""

    machine: str
    experiment: str
    variant: str
    scenario: str
    metric: str
    n_baseline: int
    n_current: int


def median(values: Values) -> float:
    """One side's values of a cell as the gate compares them: their median."""
    return float(np.median(values))


class GateRefused(UsageError):
    """The two sides cannot be compared as asked (e.g. different machines without --across-machines)."""


@dataclass
class Check:
    kind: str  # size | layers | time | verdict | exact | base | attributed
    machine: str
    experiment: str
    variant: str
    scenario: str
    metric: str
    status: str  # fail | pass | improved | skipped | changed | nondeterministic | inputs-changed
    baseline: float | str | None = None  # a value, or a verdict word
    current: float | str | None = None
    delta: float | None = None
    pct: float | None = None
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    n_baseline: int = 0
    n_current: int = 0
    message: str = ""

    @property
    def where(self) -> str:
        return f"{self.experiment}/{self.variant}/{self.scenario}"


@dataclass
class GateResult:
    baseline_dir: str
    current_dir: str
    thresholds: Thresholds
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machines: dict[str, list[str]] = field(default_factory=dict)  # baseline, current, compared
    bases: Bases = field(default_factory=dict)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def improvements(self) -> list[Check]:
        return [c for c in self.checks if c.status == "improved"]

    @property
    def nondeterministic(self) -> list[Check]:
        """Sizes that grew past the threshold but within their known nondeterminism (not failed)."""
        return [c for c in self.checks if c.status == "nondeterministic"]

    @property
    def inputs_changed(self) -> list[Check]:
        """Sizes that grew where the two sides' package inputs differ (the index cutoff): not failed."""
        return [c for c in self.checks if c.status == "inputs-changed"]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def claims_lost(self) -> list[Check]:
        return [c for c in self.failures if c.kind == "verdict"]

    @property
    def base_changes(self) -> list[Check]:
        return [c for c in self.checks if c.kind in ("base", "attributed") and c.status == "changed"]

    @property
    def exit_code(self) -> int:
        if self.passed:
            return int(ExitStatus.OK)
        return EXIT_CLAIM_LOST if self.claims_lost else int(ExitStatus.FAILURE)

    def to_dict(self) -> GateJSON:
        return {
            "schema": "imagebench.gate",
            "schema_version": 2,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "baseline": self.baseline_dir,
            "current": self.current_dir,
            "thresholds": self.thresholds,
            "machines": self.machines,
            "notes": self.notes,
            "base_changes": [asdict(c) for c in self.base_changes],
            "failures": [asdict(c) for c in self.failures],
            "checks": [asdict(c) for c in self.checks],
        }
