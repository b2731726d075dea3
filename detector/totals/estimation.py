"""Model-assisted totals from a reviewed probability sample (double sampling): pure arithmetic, no file I/O.

Every photo has the model's count ``x`` (the first phase: the whole run); the reviewed photos of the sample also
have the true count ``y`` (the second phase). In stratum ``h`` (``N`` photos, model total ``X``, ``n`` reviewed):

- **difference** (default): ``Ŷ_h = X + N · mean(y − x)``; variance ``N² (1 − n/N) s²(y − x) / n``.
  Design-unbiased whatever the model's errors are; it corrects the model's bias in animals per photo.
- **ratio**: ``Ŷ_h = X · Σy / Σx``; variance ``N² (1 − n/N) s²(y − R x) / n``. Corrects a bias in proportion
  to the count (nearly unbiased for large ``n``); where the reviewed photos of a stratum have no model count of a
  class the ratio is undefined and that stratum falls back to the difference (said in the notes).

Folders and the whole run add their strata. The 95 % interval uses Student's t with Satterthwaite's degrees of
freedom (the strata's ``n − 1`` weighted by their variance terms); ``(1 − n/N)`` is the finite population
correction, so a stratum reviewed completely adds no variance. The interval never reaches below the animals the
reviewers counted (the total holds at least those).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from detector.errors import DetectorError, TooFewReviews
from detector.totals.sampling import MIN_PER_STRATUM, ReviewSample, is_take_all, photos_for_precision

METHODS = ("difference", "ratio")
ALL = "all"  # the scope (folder column) of the whole run's rows
ALL_CLASSES = "all_classes"  # the class column of the rows that sum every class


@dataclass(frozen=True)
class TotalRow:
    """The estimate of one class's total over one folder (or :data:`ALL` of the run)."""

    folder: str
    class_name: str
    photos: int  # N: photos counted by the model
    reviewed: int  # n: reviewed photos of the sample the estimate rests on
    raw_total: int  # the model's sum
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    df: float  # Satterthwaite degrees of freedom of the t interval (inf: no spread seen)

    @property
    def relative_half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2 / self.estimate if self.estimate > 0 else float("nan")


@dataclass(frozen=True)
class TotalsEstimate:
    """Estimated totals per folder and overall, per class and for all classes together."""

    rows: tuple[TotalRow, ...]
    method: str
    confidence: float
    notes: tuple[str, ...] = ()  # what was used and how, in plain words
    class_names: tuple[str, ...] = ()

    def row(self, folder: str, class_name: str) -> TotalRow:
        for row in self.rows:
            if row.folder == folder and row.class_name == class_name:
                return row
        raise KeyError(f"no estimate for folder {folder!r}, class {class_name!r}")

    @property
    def overall(self) -> list[TotalRow]:
        return [row for row in self.rows if row.folder == ALL]


@dataclass
class _Parts:
    estimate: float = 0.0
    variance_terms: list[tuple[float, int]] = field(default_factory=list)  # (a_h s²_h, n_h − 1) per stratum
    reviewed: int = 0
    photos: int = 0
    raw: int = 0
    seen: int = 0  # animals the reviewers counted: the total is at least this

    def add(self, other: _Parts) -> None:
        self.seen += other.seen
        self.estimate += other.estimate
        self.variance_terms += other.variance_terms
        self.reviewed += other.reviewed
        self.photos += other.photos
        self.raw += other.raw


def _t_quantile(confidence: float, df: float) -> float:
    from scipy import stats  # scipy comes with ultralytics

    return float(stats.norm.ppf(0.5 + confidence / 2) if not np.isfinite(df) else stats.t.ppf(0.5 + confidence / 2, df))


def _row(folder: str, class_name: str, parts: _Parts, confidence: float) -> TotalRow:
    variance = sum(term for term, _ in parts.variance_terms)
    df_sum = sum(df for _, df in parts.variance_terms)
    if variance > 0:
        denominator = sum(term**2 / df for term, df in parts.variance_terms if df > 0 and term > 0)
        df = variance**2 / denominator
    else:
        df = float(df_sum) if df_sum else float("inf")
    se = float(np.sqrt(variance))
    half = _t_quantile(confidence, df) * se if se > 0 else 0.0
    low = max(parts.estimate - half, parts.seen)  # never below the animals the reviewers counted
    return TotalRow(
        folder, class_name, parts.photos, parts.reviewed, parts.raw, parts.estimate, se,
        low, max(parts.estimate + half, low), df,
    )  # fmt: skip


def _stratum(x_all: np.ndarray, x: np.ndarray, y: np.ndarray, method: str) -> tuple[float, float, str]:
    """(estimate, s² of the residuals, method used) of one stratum's total from its reviewed photos."""
    n = len(y)
    if method == "ratio" and x.sum() > 0:
        ratio = y.sum() / x.sum()
        residuals = y - ratio * x
        return float(ratio * x_all.sum()), float(residuals.var(ddof=1)) if n > 1 else 0.0, "ratio"
    d = y - x
    return float(x_all.sum() + len(x_all) * d.mean()), float(d.var(ddof=1)) if n > 1 else 0.0, "difference"


def check_reviews(sample: ReviewSample, reviewed: Mapping[str, object]) -> None:
    """Raise :class:`TooFewReviews` naming every stratum with too few reviewed photos and how many more it needs
    (a stratum reviewed completely needs no more; a take-all stratum needs every photo: they were not drawn at
    random, so the reviewed ones do not stand for the others)."""
    short = []
    for name, members in sample.strata().items():
        done = [p for p in members if p.sampled and p.file in reviewed]
        need = len(members) if is_take_all(name) else min(MIN_PER_STRATUM, len(members))
        if len(done) < need:
            todo = [p for p in members if p.sampled and p.file not in reviewed]
            more = need - len(done)
            names = ", ".join(p.file for p in todo[: more + 2]) or "none left in the sample: draw a new sample"
            short.append(
                f"stratum {sample.describe_stratum(name)}: {len(done)} reviewed, review {more} more of its "
                f"sampled photos ({names})"
            )
    if short:
        raise TooFewReviews(
            f"too few reviewed photos for an estimate with a standard error ({MIN_PER_STRATUM} per stratum needed, "
            "every photo of a take-all stratum):\n  " + "\n  ".join(short)
        )


def estimate_from_sample(
    sample: ReviewSample,
    model_counts: Mapping[str, Mapping[str, int]],
    reviewed: Mapping[str, Mapping[str, int]],
    class_names: Sequence[str],
    method: str = "difference",
    confidence: float = 0.95,
) -> TotalsEstimate:
    """Totals per folder and for the whole run, per class and for all classes.

    ``model_counts``: every frame photo's model counts (file → class → count); ``reviewed``: the true counts of
    reviewed photos (file → class → count). Only reviewed photos of the sample enter the estimate: a photo
    reviewed outside it was not drawn with a known probability. A sampled photo left unreviewed is treated as not
    drawn (the reviewed ones of its stratum are taken as its sample: fine when photos were skipped for reasons
    unrelated to their counts).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    missing = [p.file for p in sample.frame if p.file not in model_counts]
    if missing:
        raise DetectorError(f"{len(missing)} photos of the sample frame have no model count, e.g. {missing[0]}")
    check_reviews(sample, reviewed)
    names = [*class_names, ALL_CLASSES]

    def value(counts: Mapping[str, int], name: str) -> int:
        return sum(counts.get(c, 0) for c in class_names) if name == ALL_CLASSES else int(counts.get(name, 0))

    notes: list[str] = []
    fallbacks: set[str] = set()
    per_folder: dict[tuple[str, str], _Parts] = {}
    overall: dict[str, _Parts] = {name: _Parts() for name in names}
    for stratum, members in sample.strata().items():
        folder = members[0].folder
        done = [p for p in members if p.sampled and p.file in reviewed]
        big_n, n = len(members), len(done)
        for name in names:
            x_all = np.array([value(model_counts[p.file], name) for p in members], dtype=np.float64)
            x = np.array([value(model_counts[p.file], name) for p in done], dtype=np.float64)
            y = np.array([value(reviewed[p.file], name) for p in done], dtype=np.float64)
            total, s2, used = _stratum(x_all, x, y, method)
            if used != method:
                fallbacks.add(f"{stratum}/{name}")
            a = big_n**2 * (1 - n / big_n) / n
            parts = _Parts(total, [(a * s2, n - 1)], n, big_n, int(x_all.sum()), int(y.sum()))
            per_folder.setdefault((folder, name), _Parts()).add(parts)
            overall[name].add(parts)
    folders = sorted({folder for folder, _ in per_folder})
    rows = [_row(f or ".", name, per_folder[(f, name)], confidence) for f in folders for name in names]
    rows += [_row(ALL, name, overall[name], confidence) for name in names]
    if fallbacks:
        notes.append(
            f"ratio undefined (no model count among the reviewed photos) in {', '.join(sorted(fallbacks))}: "
            "the difference estimator was used there"
        )
    skipped = [p.file for p in sample.sampled if p.file not in reviewed]
    if skipped:
        notes.append(
            f"{len(skipped)} of {len(sample.sampled)} sampled photos not reviewed: each stratum's reviewed photos "
            "are taken as its sample (assumes they were skipped for reasons unrelated to their counts)"
        )
    notes.append(_precision_note(sample, model_counts, reviewed, class_names))
    return TotalsEstimate(tuple(rows), method, confidence, tuple(notes), tuple(class_names))


def _precision_note(
    sample: ReviewSample,
    model_counts: Mapping[str, Mapping[str, int]],
    reviewed: Mapping[str, Mapping[str, int]],
    class_names: Sequence[str],
) -> str:
    """How many photos a simple random sample would need for ±10 % / ±20 % on the run's total of all animals,
    from the spread of (truth − model) seen in the reviewed photos (stratification usually needs fewer)."""
    done = [p.file for p in sample.sampled if p.file in reviewed]
    y = np.array([sum(reviewed[f].get(c, 0) for c in class_names) for f in done], dtype=np.float64)
    x = np.array([sum(model_counts[f].get(c, 0) for c in class_names) for f in done], dtype=np.float64)
    mean = y.mean() if len(y) else 0.0
    if len(y) < 2 or mean <= 0:
        return "precision planning: too few reviewed animals to say how many photos a given precision needs"
    cv = float((y - x).std(ddof=1) / mean)
    big_n = len(sample.frame)
    need = {e: photos_for_precision(cv, e, big_n) for e in (0.1, 0.2)}
    spread = f"precision planning: the reviewed photos' (truth − model) spread is {cv:.2f} of the mean count per photo"
    if need[0.2] >= big_n:
        plan = f"even ±20 % needs every one of the run's {big_n} photos reviewed"
    elif need[0.1] >= big_n:
        plan = f"about {need[0.2]} of the run's {big_n} photos give ±20 %; ±10 % needs every one of them reviewed"
    else:
        plan = f"about {need[0.1]} of the run's {big_n} photos give ±10 %, about {need[0.2]} give ±20 %"
    return f"{spread}; for the total of all animals, a simple random sample: {plan}"
