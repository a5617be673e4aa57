"""The article vs measured here: every figure the seed article gives, beside what this lab measured.

For each figure: the article's sizes and ratio, the pair of variants we measure it with (and what
that pair isolates), our ratio with its 95 % interval, and whether direction and size of the effect
agree. The bases the article names are set beside the official images' published sizes
(harness/data/python-tags.csv) and the lab's stand-ins, compressed against compressed. For the
article's multi-stage Dockerfiles it also says what the builder stage saves in downloads (the lab
index counts the bytes it serves; `*-builder` variants build the builder stage alone).

Pure: works on run dicts and the tidy DataFrame the report already has; no I/O besides the
published data shipped in harness/data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from harness import analysis, fmt
from harness.report.published import SOURCE as PUBLISHED_SOURCE
from harness.report.published import latest_published, load_published_history

SAME_SIZE = 0.10  # our ratio within +/-10 % of the article's counts as the same size of effect


@dataclass(frozen=True)
class Figure:
    """One figure of the article and the pair of variants that measures it here."""

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

    @property
    def article_ratio(self) -> float:
        return self.article_candidate / self.article_baseline


_WEB_WHY = (
    "our app's requirements differ from the article's (not shown there) and the lab's slim stand-in "
    "is Python 3.13 on trixie, not python:3.12.2-slim"
)
_DS_WHY = (
    "the article's single stage ran on python:3.12.2 (bookworm) and its final stage on -slim; here both "
    "are the lab's Python 3.13 trixie stand-ins, with other package versions"
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
        "python:3.12-slim vs python:3.12",
        "1.02 GB → 130 MB",
        1.02e9,
        130e6,
        "base-image",
        "full",
        "slim",
        "the same Flask app on the full and the slim base",
        _BASE_WHY,
    ),
    Figure(
        "python:3.12-alpine vs python:3.12",
        "1.02 GB → 51.8 MB",
        1.02e9,
        51.8e6,
        "base-image",
        "full",
        "alpine",
        "the same Flask app on the full and the Alpine base",
        _BASE_WHY,
    ),
    Figure(
        "python:3.12-alpine vs python:3.12-slim",
        "130 MB → 51.8 MB",
        130e6,
        51.8e6,
        "base-image",
        "slim",
        "alpine",
        "the same Flask app on the slim and the Alpine base",
        _BASE_WHY,
    ),
)

# The bases the article sizes (`docker images`, uncompressed) and the public names the lab may have pinned for them.
ARTICLE_BASES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("python:3.12", 1.02e9, ("python:3.12.2", "python:3.12", "python:3.13")),
    ("python:3.12-slim", 130e6, ("python:3.12.2-slim", "python:3.12-slim", "python:3.13-slim")),
    ("python:3.12-alpine", 51.8e6, ("python:3.12-alpine", "python:3.13-alpine")),
)

# (label, article variant, its builder-only variant, the one-stage variant installing the same packages)
DOWNLOAD_PAIRS: tuple[tuple[str, str, str, str], ...] = (
    ("Web", "web-article", "web-article-builder", "single-clean"),
    ("Data science", "ds-article", "ds-article-builder", "ds-single-slim"),
)


INTRO = (
    "Every figure the article gives, beside the pair of variants that measures it here. The article's "
    "sizes are `docker images` output (uncompressed); so are ours in the first table. The second table "
    "sets the bases the article sizes beside the official images' published sizes and the lab's "
    "stand-ins, compressed against compressed. A candidate whose smoke check failed is "
    "*smaller but broken*, whatever its size."
)


@dataclass
class ArticleView:
    tables: list[Any] = field(default_factory=list)  # harness.report.model.Table: figures, bases
    lines: list[str] = field(default_factory=list)  # what the builder stage saves; notes
    intro: str = INTRO


# --------------------------------------------------------------------------- pure judgements


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


def smoke_state(df, machine: str, experiment: str, variant: str, definition: dict) -> str | None:
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


def _median(df, machine: str, experiment: str, variant: str, metric: str) -> float | None:
    sel = df[
        (df["machine"] == machine)
        & (df["experiment"] == experiment)
        & (df["variant"] == variant)
        & (df["metric"] == metric)
        & (df["scenario"] == "cold")
    ]
    return float(sel["value"].median()) if len(sel) else None


# --------------------------------------------------------------------------- the view


def build_article_view(
    runs: list[dict], df, defs: dict[str, dict[str, dict]], table_cls: Any
) -> ArticleView | None:
    """The article-vs-measured view over the latest runs (None when no figure's experiment is in them)."""
    machines = sorted(m for m in defs if any(f.experiment in defs[m] for f in FIGURES))
    if not machines:
        return None
    multi = len(machines) > 1
    view = ArticleView()
    rows = []
    for machine in machines:
        mdf = df[df["machine"] == machine]
        for f in FIGURES:
            definition = defs[machine].get(f.experiment)
            if definition is None:
                continue
            res = _evaluate(mdf, machine, definition, f)
            broken = smoke_state(mdf, machine, f.experiment, f.candidate, definition)
            if res["verdict"] == analysis.NOT_MEASURED:
                ours, agree = f"not measured here: {res['reason']}", "–"
            else:
                ours = res["figure"]
                agree = agreement(f.article_ratio, res["ratio"], res["low"], res["high"])
                if broken:
                    agree = f"smaller but broken ({f.candidate}: {broken}); " + agree
                elif "same size" not in agree and f.why:
                    agree += f"; differences that bear on it: {f.why}"
            rows.append(
                [
                    *([machine] if multi else []),
                    f.label,
                    f"{f.article_text} ({fmt.human_ratio(f.article_ratio)})",
                    f"{f.experiment}: {f.candidate} vs {f.baseline}. Isolates {f.isolates}",
                    ours,
                    agree,
                ]
            )
    view.tables.append(
        table_cls(
            [
                *(["machine"] if multi else []),
                "the article's figure",
                "article (docker images, uncompressed)",
                "measured with",
                "measured here (image bytes, uncompressed; 95 % interval)",
                "agreement",
            ],
            rows,
        )
    )
    view.tables.append(_bases_table(runs, machines, multi, table_cls))
    for machine in machines:
        mdf = df[df["machine"] == machine]
        view.lines += _download_lines(mdf, machine, multi)
    return view


def _evaluate(mdf, machine: str, definition: dict, f: Figure) -> dict:
    claim = {"metric": f.metric, "expect": "lower", "baseline": f.baseline, "candidate": f.candidate}
    known = {v.get("name") for v in definition.get("variants", [])}
    if f.baseline not in known or f.candidate not in known:
        missing = [v for v in (f.baseline, f.candidate) if v not in known]
        return {
            "verdict": analysis.NOT_MEASURED,
            "reason": f"experiment {f.experiment} has no variant {', '.join(missing)} in this run",
        }
    return analysis.evaluate_claim(mdf, machine, definition, -1, claim, with_p=False)


def _bases_table(runs: list[dict], machines: list[str], multi: bool, table_cls: Any):
    history = load_published_history()
    rows = []
    for machine in machines:
        mine = [r for r in runs if r["machine"] == machine]
        pins: dict[str, dict] = {}
        for r in sorted(mine, key=lambda r: r["run_id"]):
            pins.update({k: v for k, v in (r.get("bases") or {}).items() if isinstance(v, dict)})
        compressed = _lab_base_compressed(mine, pins)
        for public, article_bytes, candidates in ARTICLE_BASES:
            pub = latest_published(history, public)
            official = (
                f"{fmt.human_bytes(pub['compressed_bytes'])} ({str(pub['observed_at'])[:10]}, "
                f"Python {pub['python_version']}, {pub['base_distro']})"
                if pub
                else "not in the published data"
            )
            pin_name = next((c for c in candidates if c in pins), None)
            pin = pins.get(pin_name) if pin_name else None
            lab_c = compressed.get(pin["image_id"]) if pin else None
            rows.append(
                [
                    *([machine] if multi else []),
                    public,
                    fmt.human_bytes(article_bytes),
                    official,
                    f"{pin['lab_tag']} (pinned as {pin_name})" if pin else "no stand-in pinned in these runs",
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


def _lab_base_compressed(runs: list[dict], pins: dict[str, dict]) -> dict[str, int]:
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
            if t.get("status") != "ok" or len(ids) != 1 or not packed or not raw:
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


def _download_lines(mdf, machine: str, multi: bool) -> list[str]:
    where = f" on {machine}" if multi else ""
    lines = []
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
