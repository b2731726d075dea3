"""The survey totals of a run directory from reviews: read the run and its sample, match the reviews, estimate."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detector.counting.records import PhotoRecord
from detector.errors import DetectorError
from detector.totals.estimation import TotalsEstimate, estimate_from_sample
from detector.totals.reviews import MatchedReviews, ReviewSourceError, SourceRead, match_reviews, read_review_sources
from detector.totals.sampling import ReviewSample, SampleError

ESTIMATE_CSV = "estimate.csv"
ESTIMATE_COLUMNS = (
    "folder", "class", "photos", "reviewed", "raw_total", "estimate", "se", "ci95_low", "ci95_high", "df", "method",
)  # fmt: skip


@dataclass(frozen=True)
class SurveyTotals:
    """An estimate and the facts a report states about it (matching, model versions, what was not used)."""

    estimate: TotalsEstimate
    matched: MatchedReviews
    run_model: str  # version (sha256[:12]) of the run's counts
    notes: tuple[str, ...]  # the estimate's notes after the matching's


def read_run(run_dir: Path) -> tuple[list[PhotoRecord], dict]:
    """The run's counted photos (one per file, the latest line) and its ``run.json``."""
    from detector.survey.runs import RUN_SETTINGS, RunDirectory

    run_dir = Path(run_dir)
    settings_path = run_dir / RUN_SETTINGS
    if not settings_path.is_file():
        raise DetectorError(f"{run_dir}: not a run directory ({RUN_SETTINGS} missing): count with --run {run_dir}")
    records, _ = RunDirectory(run_dir).outcome()
    if any((record.geo or {}).get("sites") is not None for record in records):  # rasters counted with --sites
        from detector.geo.survey import site_units

        records = site_units(records)  # one unit per raster and site: totals per site polygon
    return records, json.loads(settings_path.read_text(encoding="utf-8"))


def check_frame(sample: ReviewSample, records: Sequence[PhotoRecord], run_dir: Path) -> None:
    """The sample must have been drawn from this run as it is now (same photos, same content)."""
    frame = {p.file: p for p in sample.frame}
    run = {r.file: r for r in records}
    added = sorted(set(run) - set(frame))
    gone = sorted(set(frame) - set(run))
    changed = sorted(f for f in set(run) & set(frame) if frame[f].sha256 and run[f].sha256 != frame[f].sha256)
    if added or gone or changed:
        what = "; ".join(
            f"{len(files)} {label} (e.g. {files[0]})"
            for files, label in (
                (added, "photos counted after the sample"),
                (gone, "photos no longer in the run"),
                (changed, "photos whose content changed"),
            )  # fmt: skip
            if files
        )
        raise SampleError(
            f"{run_dir}: the review sample was drawn from another state of the run ({what}): draw a new sample "
            f"(python -m detector sample {run_dir} --photos N --new)"
        )


def estimate_totals(
    run_dir: Path,
    reviews: Sequence[Path],
    method: str = "difference",
    sample_reviewed: bool = False,
    confidence: float = 0.95,
) -> SurveyTotals:
    """Model-assisted totals of the run in ``run_dir`` from reviewed photos of its review sample.

    ``reviews``: the app's reviews folders and exported files (COCO, dots table, VIAME). ``sample_reviewed``: every
    sampled photo was reviewed, so one that a dots table / VIAME CSV leaves out had no animals.
    """
    records, settings = read_run(run_dir)
    sample = ReviewSample.read(run_dir)
    check_frame(sample, records, Path(run_dir))
    class_names = records[0].result.class_names  # the run's model's classes: what the reviews may name
    sources = read_review_sources([Path(source) for source in reviews], class_names)
    reviewed = [photo for _, photos in sources for photo in photos]
    matched = match_reviews(records, reviewed)
    if not matched.counts:
        looked_at = "; ".join(_why_unmatched(read) for read, _ in sources)
        raise ReviewSourceError(
            f"none of the {len(reviewed)} reviewed photos in {', '.join(map(str, reviews))} is a photo of the run "
            f"{run_dir} (matched by sha256, else by file name). Looked at: {looked_at}. Review the photos listed in "
            f"{Path(run_dir) / 'review-sample.csv'}"
        )
    counts = dict(matched.counts)
    notes = [
        "read " + "; ".join(read.describe() for read, _ in sources),
        f"matched {matched.by_sha256} reviewed photos by sha256, {matched.by_name} by file name",
    ]
    without_rows = [p.file for p in sample.sampled if p.file not in counts]
    if sample_reviewed:
        counts.update({file: dict.fromkeys(class_names, 0) for file in without_rows})
        if without_rows:
            notes.append(
                f"{len(without_rows)} sampled photos without rows in the reviews taken as reviewed, no animals"
            )
    elif matched.needs_empty and without_rows:
        notes.append(
            f"{len(without_rows)} sampled photos have no rows in the reviews (a dots table or VIAME CSV has none for "
            "a photo reviewed as empty): if every sampled photo was reviewed, add --sample-reviewed"
        )
    if matched.unmatched:
        notes.append(f"{len(matched.unmatched)} reviewed photos are not in the run: {', '.join(matched.unmatched[:5])}")
    if matched.replaced:
        notes.append(f"reviewed twice, the last source given used: {', '.join(matched.replaced[:5])}")
    sampled = {p.file for p in sample.sampled}
    outside = [file for file in counts if file not in sampled]
    if outside:
        notes.append(
            f"{len(outside)} reviewed photos outside the review sample not used (not drawn with a known probability; "
            "they would pull the total toward the photos someone chose): "
            + ", ".join(Path(f).name for f in outside[:5])
        )
    model = settings.get("model") or {}
    run_model = f"{model.get('version', '?')} ({str(model.get('sha256', ''))[:12]})"
    other = [v for v in matched.model_versions if v != model.get("version")]
    if other:
        notes.append(
            f"reviews were made on counts of model {', '.join(other)}, the run is {model.get('version', '?')}: "
            "allowed (a review is the photo's true count, whichever model it started from)"
        )
    in_sample = {file: c for file, c in counts.items() if file in sampled}
    model_counts = {r.file: r.result.counts for r in records}
    estimate = estimate_from_sample(sample, model_counts, in_sample, class_names, method, confidence)
    return SurveyTotals(estimate, matched, run_model, (*notes, *estimate.notes))


def _why_unmatched(read: SourceRead) -> str:
    """One source of a failed match, and why none of its photos is a run photo."""
    if read.skipped:
        return read.describe()
    if not read.photos:
        return f"{read.path}: {read.kind}, no photos in it"
    names = ", ".join(read.photos[:3]) + (", …" if len(read.photos) > 3 else "")
    return f"{read.path}: {read.kind} of {len(read.photos)} photos ({names}), none of them a photo of the run"


def write_estimate_csv(path: Path, estimate: TotalsEstimate) -> Path:
    """``estimate.csv``: per folder and ``all``, per class and ``all_classes``."""
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ESTIMATE_COLUMNS)
        for r in estimate.rows:
            writer.writerow(
                [r.folder, r.class_name, r.photos, r.reviewed, r.raw_total, f"{r.estimate:.1f}", f"{r.se:.1f}",
                 f"{r.ci_low:.1f}", f"{r.ci_high:.1f}", f"{r.df:.1f}", estimate.method]
            )  # fmt: skip
    return Path(path)
