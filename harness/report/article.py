"""The article vs measured here: every figure the seed article prints, beside what this lab measured.

One table holds them all, each with the article section it comes from (harness.experiment's
ARTICLE_SECTIONS): the multi-stage sizes (259 -> 156 MB, 969 -> 357 MB), the three base sizes
(1.02 GB, 130 MB, 51.8 MB) and the pairs they make, and the four rule IDs hadolint printed on the
article's example. Each size row has the article's figure, the pair of variants we measure it with
(and what that pair isolates), the bases they ran on (a lab stand-in is named as one), our figure
with its interval, the ratio of ratios (our ratio / the article's) and whether direction and size
agree. A second table sets the bases beside the official images' published compressed sizes
(harness/data/python-tags.csv, the only source of an official size here) and the lab's stand-ins,
compressed against compressed. For the article's multi-stage Dockerfiles it also says what the
builder stage saves in downloads (`*-builder` variants build the builder stage alone).

Pure: works on run dicts and the tidy DataFrame the report already has; no I/O besides the
published data shipped in harness/data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypedDict, TypeVar

from harness import analysis, fmt
from harness.experiment import ARTICLE_SECTIONS
from harness.jsonparts import json_object
from harness.records import BasePin, ClaimResult, ExperimentDef, RunRecord
from harness.report.published import SOURCE as PUBLISHED_SOURCE
from harness.report.published import Snapshot, flavour, latest_published, load_published_history
from harness.verdicts import TrialStatus

if TYPE_CHECKING:
    import pandas as pd

TableT = TypeVar("TableT")
TableMaker = Callable[[list[str], list[list[str]]], TableT]
"""How the view makes a table of headers and rows (`harness.report.model.Table`, which imports this module)."""

SAME_SIZE = 0.10  # our ratio within +/-10 % of the article's counts as the same size of effect
_GROUPS = {"dockerfiles": "Dockerfiles", "images": "Images", "bonus": "Bonus tips"}


@dataclass(frozen=True)
class Figure:
    """One size figure of the article and the pair of variants that measures it here."""

    label: str
    article_text: str
    article_baseline: float  # bytes, as `docker images` printed them (MB = 10^6 B)
    article_candidate: float
    experiment: str
    baseline: str
    candidate: str
    isolates: str
    why: str = ""  # differences between the article's setup and ours that bear on the size of the effect
    metric: str = "image_bytes"
    section: str = "dockerfiles.1"  # ARTICLE_SECTIONS id

    @property
    def article_ratio(self) -> float:
        return self.article_candidate / self.article_baseline

    @property
    def comparison(self) -> analysis.Comparison:
        """The pair the analysis judges for this figure (a lower size expected, as the article found)."""
        return analysis.Comparison(self.experiment, self.baseline, self.candidate, self.metric, "lower")


@dataclass(frozen=True)
class ArticleBase:
    """A base the article sizes: its name as the article prints it, the size `docker images` showed,
    the tag the published data holds for it, and the names the lab may have pinned for it."""

    name: str
    article_bytes: float
    published_tag: str
    candidates: tuple[str, ...]


_WEB_WHY = (
    "our app's requirements differ from the article's (not shown there), and python:3.12.2-slim is the lab's "
    "stand-in for it, not the official image (which Python it has: the report's notes)"
)
_DS_WHY = (
    "the article's single stage ran on python:3.12.2 (bookworm) and its final stage on -slim; here both "
    "are the lab's stand-ins for those tags (their Python: the report's notes), with other package versions"
)
_BASE_WHY = (
    "ours are whole app images (Flask app installed), the article's are bare bases; the lab's bases are "
    "stand-ins built from Debian packages"
)

FIGURES: tuple[Figure, ...] = (
    Figure(
        "web app: multi-stage vs one stage",
        "259 MB → 156 MB",
        259e6,
        156e6,
        "multi-stage",
        "single",
        "web-article",
        "the article's Dockerfile vs our plain single stage: the stage and apt hygiene together",
        _WEB_WHY,
    ),
    Figure(
        "web app: multi-stage vs one stage (stage only)",
        "259 MB → 156 MB",
        259e6,
        156e6,
        "multi-stage",
        "single-clean",
        "web-article",
        "the stage only: same base, gcc with --no-install-recommends and no apt lists on both sides",
        "the stage leaves gcc and its dependencies in the builder; " + _WEB_WHY,
    ),
    Figure(
        "data science: multi-stage vs one stage",
        "969 MB → 357 MB",
        969e6,
        357e6,
        "multi-stage",
        "ds-single",
        "ds-article",
        "as in the article: stage and base change together (full one stage vs slim final stage)",
        _DS_WHY,
    ),
    Figure(
        "data science: multi-stage vs one stage (stage only)",
        "969 MB → 357 MB",
        969e6,
        357e6,
        "multi-stage",
        "ds-single-slim",
        "ds-article",
        "the stage only: both end on the slim base",
        "the article's final stage installs the same packages as one stage on slim would, and also keeps "
        "the wheels it copied (/wheels is never removed), so the stage cannot make it smaller",
    ),
    Figure(
        "data science: slim vs full base, one stage (base only)",
        "969 MB → 357 MB",
        969e6,
        357e6,
        "multi-stage",
        "ds-single",
        "ds-single-slim",
        "the base only, no stages: how much of the article's saving the base alone gives",
        _DS_WHY,
    ),
    Figure(
        "python:3.12.2-slim vs python:3.12.2-bookworm",
        "1.02 GB → 130 MB",
        1.02e9,
        130e6,
        "base-image",
        "full",
        "slim",
        "the same Flask app on the full and the slim base",
        _BASE_WHY,
        section="dockerfiles.3",
    ),
    Figure(
        "python:3.12.2-alpine vs python:3.12.2-bookworm",
        "1.02 GB → 51.8 MB",
        1.02e9,
        51.8e6,
        "base-image",
        "full",
        "alpine",
        "the same Flask app on the full and the Alpine base",
        _BASE_WHY,
        section="dockerfiles.3",
    ),
    Figure(
        "python:3.12.2-alpine vs python:3.12.2-slim",
        "130 MB → 51.8 MB",
        130e6,
        51.8e6,
        "base-image",
        "slim",
        "alpine",
        "the same Flask app on the slim and the Alpine base",
        _BASE_WHY,
        section="dockerfiles.3",
    ),
)

# What the report asks `analysis.analyze` to judge for this view, once per pair.
ARTICLE_COMPARISONS: tuple[analysis.Comparison, ...] = tuple(dict.fromkeys(f.comparison for f in FIGURES))

# The bases the article sizes (`docker images`, uncompressed), in the article's words.
ARTICLE_BASES: tuple[ArticleBase, ...] = (
    ArticleBase(
        "python:3.12.2-bookworm",
        1.02e9,
        "python:3.12",
        ("python:3.12.2-bookworm", "python:3.12.2", "python:3.12", "python:3.13"),
    ),
    ArticleBase(
        "python:3.12.2-slim",
        130e6,
        "python:3.12-slim",
        ("python:3.12.2-slim", "python:3.12-slim", "python:3.13-slim"),
    ),
    ArticleBase(
        "python:3.12.2-alpine",
        51.8e6,
        "python:3.12-alpine",
        ("python:3.12.2-alpine", "python:3.12-alpine", "python:3.13-alpine"),
    ),
)
BASES_EXPERIMENT = "base-image"  # the experiment whose pins size the bases

# The rules hadolint printed on the article's example (images.4), with what each flags, in our words.
LINT_EXPERIMENT, LINT_VARIANT, LINT_SECTION = "lint-and-scan", "bad", "images.4"
LINT_RULES: tuple[tuple[str, str], ...] = (
    ("DL3006", "a FROM image without an explicit tag"),
    ("DL3042", "pip install without --no-cache-dir"),
    ("DL3059", "consecutive RUN instructions that could be one"),
    ("DL3025", "CMD or ENTRYPOINT in shell form instead of JSON"),
)

# (label, article variant, its builder-only variant, the one-stage variant installing the same packages)
DOWNLOAD_PAIRS: tuple[tuple[str, str, str, str], ...] = (
    ("Web", "web-article", "web-article-builder", "single-clean"),
    ("Data science", "ds-article", "ds-article-builder", "ds-single-slim"),
)

HEADERS = [
    "article section",
    "the article's figure",
    "article",
    "measured with",
    "measured here",
    "ours / article",
    "agreement",
]

INTRO = (
    "Every figure the article prints, beside what measures it here, with the article section it comes "
    "from. Sizes are `docker images` sizes (uncompressed) on both sides. *ours / article* is the ratio "
    "of ratios for a pair (our candidate/baseline ratio divided by the article's, ×1 = the same effect) "
    "and the plain size ratio for one base. The bases each row ran on are named: a lab stand-in is not "
    "the official image the article used. The second table sets the bases beside the official images' "
    "published compressed sizes (the one source of an official size in this report), compressed against "
    "compressed. A candidate whose smoke check failed is *smaller but broken*, whatever its size."
)


class LintFound(TypedDict):
    """What hadolint found on the lint experiment's bad variant (`lint_rules_found`)."""

    trials: int  # ok trials that recorded hadolint's findings
    by_rule: dict[str, int]  # {code: trials finding it}
    counts: dict[str, int]  # {code: findings in the last trial}
    hadolint: str  # its version
    base: str | None  # the image's base


@dataclass
class ArticleView(Generic[TableT]):
    tables: list[TableT] = field(default_factory=list)  # figures, bases
    lines: list[str] = field(default_factory=list)  # what the builder stage saves; notes
    intro: str = INTRO


# --------------------------------------------------------------------------- pure judgements


def section_text(section: str) -> str:
    """'dockerfiles.1' -> 'Dockerfiles 1: Multi-stage builds' (the id itself when it is unknown)."""
    group, _, n = section.partition(".")
    title = ARTICLE_SECTIONS.get(section)
    return f"{_GROUPS.get(group, group)} {n}: {title}" if title else section


def agreement(article_ratio: float, ratio: float | None, low: float | None, high: float | None) -> str:
    """Direction and size of our effect against the article's (both candidate / baseline ratios)."""
    if ratio is None or not ratio > 0:
        return "not measured here"
    low = ratio if low is None else low
    high = ratio if high is None else high
    want_lower = article_ratio < 1
    if (want_lower and high < 1) or (not want_lower and low > 1):
        direction = "same direction"
    elif (want_lower and low > 1) or (not want_lower and high < 1) or low == high == 1:
        direction = "opposite direction"
    else:
        direction = "direction not settled (the interval crosses ×1)"
    if direction != "same direction":
        return f"{direction} (article {fmt.human_ratio(article_ratio)})"
    if low <= article_ratio <= high or abs(ratio / article_ratio - 1) <= SAME_SIZE:
        size = "about the same size"
    elif abs(math.log(ratio)) < abs(math.log(article_ratio)):
        size = "smaller effect here"
    else:
        size = "larger effect here"
    return f"{direction}, {size} ({fmt.human_ratio(ratio)} vs the article's {fmt.human_ratio(article_ratio)})"


def ratio_of_ratios(article_ratio: float, ratio: float | None, low: float | None, high: float | None) -> str:
    """Our ratio / the article's, with the interval's ends divided the same way ('–' when unmeasured)."""
    if ratio is None or not ratio > 0 or not article_ratio > 0:
        return "–"
    text = fmt.human_ratio(ratio / article_ratio)
    if low is not None and high is not None and low != high and low > 0:
        text += f" ({fmt.human_ratio(low / article_ratio)}–{fmt.human_ratio(high / article_ratio)})"
    return f"{text}: ours {fmt.human_ratio(ratio)} / the article's {fmt.human_ratio(article_ratio)}"


def size_agreement(ours: float, article: float) -> str:
    """One size against the article's: within SAME_SIZE, or how much smaller or larger."""
    r = ours / article
    if abs(r - 1) <= SAME_SIZE:
        return f"about the same size (within {fmt.human_percent(SAME_SIZE)})"
    return f"{fmt.human_percent(abs(r - 1))} {'smaller' if r < 1 else 'larger'} here"


def smoke_state(
    df: pd.DataFrame, machine: str, experiment: str, variant: str, definition: ExperimentDef
) -> str | None:
    """None when the variant passed every smoke check (or has none), else 'broken: <last line>'."""
    sel = df[
        (df["machine"] == machine)
        & (df["experiment"] == experiment)
        & (df["variant"] == variant)
        & (df["metric"] == "smoke_ok")
    ]
    if sel.empty or bool((sel["value"] == 1).all()):
        return None
    last = (definition.get("smoke_failures") or {}).get(variant) or "(output kept in the trial record)"
    return f"{int((sel['value'] != 1).sum())} of {len(sel)} smoke checks failed: {last}"


def _median(df: pd.DataFrame, machine: str, experiment: str, variant: str, metric: str) -> float | None:
    sel = df[
        (df["machine"] == machine)
        & (df["experiment"] == experiment)
        & (df["variant"] == variant)
        & (df["metric"] == metric)
        & (df["scenario"] == "cold")
    ]
    return float(sel["value"].median()) if len(sel) else None


def base_text(name: str, pin: BasePin | None) -> str:
    """What a pinned base name ran as: a lab stand-in named as one (with its Python), a local image
    as found, or the name itself when the run recorded no pin for it."""
    if not pin:
        return name
    prov = pin.get("provenance") or {}
    lab = pin.get("lab_tag") or name
    if prov.get("stands_in_for"):
        py = f", Python {prov['python']}" if prov.get("python") else ""
        return f"{name} ran on the lab's stand-in {lab} (for {prov['stands_in_for']}{py}), not the official image"
    if prov.get("source") == "local image":
        return f"{name} ran on a local image, used as found"
    return name if lab == name else f"{name} ran on {lab}"


def bases_used(run: RunRecord | None, experiment: str, variants: tuple[str, ...]) -> str:
    """The bases the ok trials of `variants` ran on, each as `base_text` says it ('' when none recorded)."""
    if not run:
        return ""
    names: dict[str, None] = {}
    for t in run.get("trials") or []:
        if (
            t.get("experiment") == experiment
            and t.get("variant") in variants
            and t.get("status") == TrialStatus.OK.value
        ):
            names.update(dict.fromkeys(t.get("bases") or {}))
    pins = run.get("bases") or {}
    return "; ".join(base_text(n, pins.get(n) if isinstance(pins.get(n), dict) else None) for n in names)


def lint_rules_found(run: RunRecord | None) -> LintFound | None:
    """{"trials": n ok trials of the lint experiment's bad variant, "by_rule": {code: trials finding it},
    "counts": {code: findings in the last trial}, "hadolint": version, "base": the image's base} or None."""
    if not run:
        return None
    trials = [
        t
        for t in run.get("trials") or []
        if t.get("experiment") == LINT_EXPERIMENT
        and t.get("variant") == LINT_VARIANT
        and t.get("status") == TrialStatus.OK.value
    ]
    lint = [(json_object(json_object(t.get("probe_data")).get("lint")), t) for t in trials]
    lint = [(d, t) for d, t in lint if isinstance(d.get("by_rule"), dict)]
    if not lint:
        return None
    by_rule: dict[str, int] = {}
    for d, _ in lint:
        for code, n in json_object(d["by_rule"]).items():
            if n:
                by_rule[code] = by_rule.get(code, 0) + 1
    last, t = lint[-1]
    counts = json_object(last["by_rule"])
    return {
        "trials": len(lint),
        "by_rule": by_rule,
        "counts": {k: int(v) for k, v in counts.items() if v and isinstance(v, int | float | str)},
        "hadolint": str(last.get("hadolint") or "hadolint"),
        "base": (t.get("image") or {}).get("base"),
    }


# --------------------------------------------------------------------------- the view


def build_article_view(
    result: analysis.Analysis, table_cls: TableMaker[TableT]
) -> ArticleView[TableT] | None:
    """The article-vs-measured view of an analysis (`analysis.analyze` with `ARTICLE_COMPARISONS`; None
    when none of its experiments is in the runs). It judges nothing itself: each figure's pair is one of
    the analysis' comparisons."""
    runs, df, defs, chosen = result.runs, result.table, result.definitions, result.chosen
    wanted = {f.experiment for f in FIGURES} | {BASES_EXPERIMENT, LINT_EXPERIMENT}
    machines = sorted(m for m in defs if wanted & set(defs[m]))
    if not machines:
        return None
    multi = len(machines) > 1
    by_id = {r["run_id"]: r for r in runs}
    view: ArticleView[TableT] = ArticleView()
    rows: list[list[str]] = []
    for machine in machines:
        mdf = df[df["machine"] == machine]
        mine = [r for r in runs if r["machine"] == machine]
        run_of = {e: by_id.get(chosen.get((machine, e), "")) for e in wanted}
        prefix = [machine] if multi else []
        judged = {c: res for (m, c), res in result.comparisons.items() if m == machine}
        rows += [
            prefix + r for r in _figure_rows(mdf, machine, defs[machine], run_of, judged, "dockerfiles.1")
        ]
        if BASES_EXPERIMENT in defs[machine]:
            rows += [prefix + r for r in _base_size_rows(mine, run_of.get(BASES_EXPERIMENT))]
        rows += [
            prefix + r for r in _figure_rows(mdf, machine, defs[machine], run_of, judged, "dockerfiles.3")
        ]
        if LINT_EXPERIMENT in defs[machine]:
            found = lint_rules_found(run_of.get(LINT_EXPERIMENT))
            rows += [prefix + r for r in _lint_rows(found)]
            view.lines += _lint_lines(found, machine if multi else "")
    view.tables.append(table_cls([*(["machine"] if multi else []), *HEADERS], rows))
    view.tables.append(_bases_table(runs, machines, multi, table_cls, chosen))
    for machine in machines:
        mdf = df[df["machine"] == machine]
        view.lines += _download_lines(mdf, machine, multi)
    return view


def _figure_rows(
    mdf: pd.DataFrame,
    machine: str,
    mdefs: Mapping[str, ExperimentDef],
    run_of: Mapping[str, RunRecord | None],
    judged: Mapping[analysis.Comparison, ClaimResult],
    section: str,
) -> list[list[str]]:
    rows: list[list[str]] = []
    for f in (f for f in FIGURES if f.section == section):
        definition = mdefs.get(f.experiment)
        if definition is None:
            continue
        res = judged[f.comparison]
        broken = smoke_state(mdf, machine, f.experiment, f.candidate, definition)
        if res["verdict"] == analysis.NOT_MEASURED:
            ours, rr, agree = f"not measured here: {res['reason']}", "–", "–"
        else:
            ours = res["figure"]
            rr = ratio_of_ratios(f.article_ratio, res.get("ratio"), res.get("low"), res.get("high"))
            agree = agreement(f.article_ratio, res.get("ratio"), res.get("low"), res.get("high"))
            if broken:
                agree = f"smaller but broken ({f.candidate}: {broken}); " + agree
            elif "same size" not in agree and f.why:
                agree += f"; differences that bear on it: {f.why}"
        bases = bases_used(run_of.get(f.experiment), f.experiment, (f.baseline, f.candidate))
        rows.append(
            [
                section_text(f.section),
                f.label,
                f"{f.article_text} ({fmt.human_ratio(f.article_ratio)})",
                f"{f.experiment}: {f.candidate} vs {f.baseline}. Isolates {f.isolates}"
                + (f". Bases: {bases}" if bases else ""),
                ours,
                rr,
                agree,
            ]
        )
    return rows


def _pins(runs: list[RunRecord]) -> dict[str, BasePin]:
    """{pinned name: pin} over `runs`, the latest run's pin winning."""
    pins: dict[str, BasePin] = {}
    for r in sorted(runs, key=lambda r: r["run_id"]):
        pins.update({k: v for k, v in (r.get("bases") or {}).items() if isinstance(v, dict)})
    return pins


def base_pin(
    b: ArticleBase, runs: list[RunRecord], base_run: RunRecord | None
) -> tuple[str | None, BasePin | None]:
    """(pinned name, pin) standing for the article's base `b`: the one the base-image run used when it
    pinned one, else the latest pin of any run, so every table sizes a base from the same pin."""
    for pins in (_pins([base_run]) if base_run else {}, _pins(runs)):
        name = next((c for c in b.candidates if c in pins), None)
        if name:
            return name, pins[name]
    return None, None


def _base_size_rows(runs: list[RunRecord], base_run: RunRecord | None) -> list[list[str]]:
    rows: list[list[str]] = []
    for b in ARTICLE_BASES:
        pin_name, pin = base_pin(b, runs, base_run)
        size = pin.get("bytes") if pin else None
        if pin_name and pin and size:
            ours, rr = (
                f"{fmt.human_bytes(size)} (the stand-in as the engine sizes it, uncompressed)",
                (f"{fmt.human_ratio(size / b.article_bytes)}: size, ours / the article's"),
            )
            agree = size_agreement(size, b.article_bytes) + "; " + _stand_in_why(b, pin)
            with_ = f"{BASES_EXPERIMENT}: {base_text(pin_name, pin)}"
        else:
            ours, rr, agree = "not measured here: no base pinned for it in these runs", "–", "–"
            with_ = f"{BASES_EXPERIMENT}: –"
        rows.append(
            [
                section_text("dockerfiles.3"),
                f"{b.name} (`docker images`)",
                fmt.human_bytes(b.article_bytes),
                with_,
                ours,
                rr,
                agree,
            ]
        )
    return rows


def _stand_in_why(b: ArticleBase, pin: BasePin) -> str:
    """Why a stand-in's size may differ from the official base's the article sized."""
    prov = pin.get("provenance") or {}
    how = f", built with {prov['built_with']}" if prov.get("built_with") else ""
    py = f" with Python {prov['python']}" if prov.get("python") else ""
    return f"differences that bear on it: the lab's stand-in{py}{how}, not the official {b.name}"


def _lint_rows(found: LintFound | None) -> list[list[str]]:
    rows: list[list[str]] = []
    for code, meaning in LINT_RULES:
        if found is None:
            with_ = f"{LINT_EXPERIMENT}: hadolint on the `{LINT_VARIANT}` variant's Dockerfile"
            ours, agree = "not measured here: no ok trial of it recorded hadolint's findings", "–"
        else:
            n, k = found["trials"], found["by_rule"].get(code, 0)
            with_ = (
                f"{LINT_EXPERIMENT}: {found['hadolint']} on the `{LINT_VARIANT}` variant's Dockerfile "
                "(the article's mistakes in one file)"
            )
            if k:
                count = found["counts"].get(code, 0)
                ours = f"found in {k} of {n} trial(s)" + (
                    f" ({count} finding(s) in the last)" if count else ""
                )
                agree = "the same rule fires here" if k == n else "fires in some trials only"
            else:
                ours = f"not found (0 of {n} trial(s))"
                agree = "not reproduced here"
                base = found.get("base")
                if code == "DL3006" and base and ":" in str(base).rsplit("/", 1)[-1]:
                    agree += f": the `{LINT_VARIANT}` variant's base is tagged ({base})"
        rows.append(
            [
                section_text(LINT_SECTION),
                f"hadolint {code}: {meaning}",
                f"{code} printed on the article's example",
                with_,
                ours,
                "–",
                agree,
            ]
        )
    return rows


def _lint_lines(found: LintFound | None, machine: str) -> list[str]:
    if not found:
        return []
    theirs = {code for code, _ in LINT_RULES}
    more = sorted(c for c in found["counts"] if c not in theirs)
    if not more:
        return []
    where = f" on {machine}" if machine else ""
    return [
        f"hadolint{where} also flags on `{LINT_VARIANT}` (rules the article's output does not show): "
        + ", ".join(f"{c} ({found['counts'][c]})" for c in more)
        + "."
    ]


def published_official(public: str, history: pd.DataFrame | None = None) -> Snapshot | None:
    """The published snapshot that stands for `public` in this report: its own tag's latest, else the
    latest of the tag the article's base of the same flavour is published as (so python:3.13-slim and
    python:3.12.2-slim both read python:3.12-slim's). None when neither is in the data. One source
    for an official size: every table that shows one should take it from here."""
    history = load_published_history() if history is None else history
    pub = latest_published(history, public)
    if pub is not None:
        return pub
    base = _article_base_for(public)
    return latest_published(history, base.published_tag) if base else None


def official_size_text(pub: Snapshot | None) -> str:
    """'46.2 MB (python:3.12-slim, 2026-09-01, Python 3.12.14, trixie)' for a published snapshot."""
    if not pub:
        return "not in the published data"
    return (
        f"{fmt.human_bytes(pub['compressed_bytes'])} (python:{pub['tag']}, {str(pub['observed_at'])[:10]}, "
        f"Python {pub['python_version']}, {pub['base_distro']})"
    )


def _article_base_for(public: str) -> ArticleBase | None:
    """The article's base a python image stands for: by name, else by flavour (full, slim, alpine)."""
    for b in ARTICLE_BASES:
        if public in b.candidates:
            return b
    name, _, tag = str(public).rpartition(":")
    if name.split("/")[-1] != "python" or not tag:
        return None
    return {"full": ARTICLE_BASES[0], "slim": ARTICLE_BASES[1], "alpine": ARTICLE_BASES[2]}[flavour(tag)]


def _bases_table(
    runs: list[RunRecord],
    machines: list[str],
    multi: bool,
    table_cls: TableMaker[TableT],
    chosen: Mapping[tuple[str, str], str],
) -> TableT:
    history = load_published_history()
    rows: list[list[str]] = []
    for machine in machines:
        mine = [r for r in runs if r["machine"] == machine]
        pins = _pins(mine)
        base_run = next((r for r in mine if r["run_id"] == chosen.get((machine, BASES_EXPERIMENT))), None)
        compressed = _lab_base_compressed(mine, {**pins, **(_pins([base_run]) if base_run else {})})
        for b in ARTICLE_BASES:
            pub = published_official(b.published_tag, history)
            pin_name, pin = base_pin(b, mine, base_run)
            lab_c = compressed.get(pin["image_id"]) if pin else None
            rows.append(
                [
                    *([machine] if multi else []),
                    b.name,
                    fmt.human_bytes(b.article_bytes),
                    official_size_text(pub),
                    base_text(pin_name, pin) if pin_name and pin else "no stand-in pinned in these runs",
                    fmt.human_bytes(pin["bytes"]) if pin and pin.get("bytes") else "–",
                    fmt.human_bytes(lab_c) if lab_c else "–",
                    fmt.human_ratio(lab_c / pub["compressed_bytes"]) if (lab_c and pub) else "–",
                ]
            )
    return table_cls(
        [
            *(["machine"] if multi else []),
            "base the article sizes",
            "article (uncompressed)",
            f"official, compressed (latest published: {PUBLISHED_SOURCE})",
            "lab stand-in",
            "lab, uncompressed",
            "lab, compressed (its layers as pushed)",
            "lab / official, compressed",
        ],
        rows,
    )


def _lab_base_compressed(runs: list[RunRecord], pins: Mapping[str, BasePin]) -> dict[str, int]:
    """{base image id: compressed bytes}: in ok trials built on one base, the pushed sizes of the
    image's first k layers, k being the fewest whose uncompressed sizes add up to the base's size
    (within 1 %): those layers are the base's. (`layer_bytes` leaves out empty layers; a base's
    layers come first and are not empty, so the two lists agree on them.)"""
    size_of = {p["image_id"]: p.get("bytes") for p in pins.values() if p.get("image_id")}
    out: dict[str, int] = {}
    for r in runs:
        for t in r["trials"]:
            ids = set((t.get("bases") or {}).values())
            image = t.get("image") or {}
            packed, raw = image.get("layer_compressed_bytes") or [], image.get("layer_bytes") or []
            if t.get("status") != TrialStatus.OK.value or len(ids) != 1 or not packed or not raw:
                continue
            base = next(iter(ids))
            want = size_of.get(base)
            if not want or base in out:
                continue
            total = 0
            for k, n in enumerate(raw, start=1):
                total += n
                if abs(total - want) <= 0.01 * want and k <= len(packed):
                    out[base] = int(sum(packed[:k]))
                    break
    return out


def _download_lines(mdf: pd.DataFrame, machine: str, multi: bool) -> list[str]:
    where = f" on {machine}" if multi else ""
    lines: list[str] = []
    for label, article, builder, single in DOWNLOAD_PAIRS:
        total = _median(mdf, machine, "multi-stage", article, "download_bytes")
        built = _median(mdf, machine, "multi-stage", builder, "download_bytes")
        one = _median(mdf, machine, "multi-stage", single, "download_bytes")
        if total is None or built is None:
            continue
        final = max(total - built, 0.0)
        text = (
            f"{label}{where}: the article's builder stage downloads {fmt.human_bytes(built)} from the package "
            f"index (`{builder}`); its final stage still downloads {fmt.human_bytes(final)} "
            f"(`{article}` {fmt.human_bytes(total)} minus its builder)"
        )
        if one is not None and one > 0:
            text += (
                f"; one stage installing the same packages (`{single}`) downloads {fmt.human_bytes(one)}, so "
                f"with the builder the final stage downloads {fmt.human_percent(final / one)} of that"
            )
        lines.append(text + " (medians of `download_bytes`, bytes the lab index served).")
    return lines
