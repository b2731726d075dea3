"""Saved reviews and their exported files (I/O over :mod:`detector.review.record`).

Layout of a reviews directory: one folder per photo, ``<photo stem>-<sha256[:12]>/``, holding for every save a pair
``<UTC time>.count.json`` (the model's original :class:`~detector.counting.results.CountResult` JSON) and
``<UTC time>.review.json`` (:meth:`Review.to_dict`, which embeds the original too). Files are written to a temporary
name and renamed, and a save never replaces an earlier one: a saved review is never lost or half written.

Exports (:func:`write_exports`): the corrected-counts CSV, the dots table, COCO JSON and VIAME CSV.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from detector.classes import SEA_LION_CLASSES, animals_described
from detector.files import write_atomic
from detector.review.formats import dots_csv, from_coco, from_viame_csv, reviewed_counts_csv, to_coco, to_viame_csv
from detector.review.record import PhotoAnnotations, Review

REVIEW_SUFFIX = ".review.json"
COUNT_SUFFIX = ".count.json"


def photo_folder(reviews_dir: Path, review: Review) -> Path:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(review.photo).stem).strip("._") or "photo"
    return Path(reviews_dir) / (f"{stem}-{review.photo_sha256[:12]}" if review.photo_sha256 else stem)


@dataclass(frozen=True)
class SavedReview:
    review_json: Path
    count_json: Path


def save_review(reviews_dir: Path, review: Review) -> SavedReview:
    """Store the review and the original count it was made from; an earlier save is never replaced."""
    folder = photo_folder(reviews_dir, review)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    base, n = stamp, 1
    while (folder / f"{base}{REVIEW_SUFFIX}").exists() or (folder / f"{base}{COUNT_SUFFIX}").exists():
        n += 1
        base = f"{stamp}-{n}"
    count_json = write_atomic(folder / f"{base}{COUNT_SUFFIX}", review.original.to_json(indent=1))
    review_json = write_atomic(folder / f"{base}{REVIEW_SUFFIX}", json.dumps(review.to_dict(), indent=1))
    return SavedReview(review_json, count_json)


def load_reviews(reviews_dir: Path, latest_only: bool = True) -> list[Review]:
    """The saved reviews, oldest first; ``latest_only``: the last save of each photo folder."""
    reviews = []
    for folder in sorted(p for p in Path(reviews_dir).iterdir() if p.is_dir()) if Path(reviews_dir).is_dir() else []:
        saved = sorted(folder.glob(f"*{REVIEW_SUFFIX}"))
        for path in saved[-1:] if latest_only else saved:
            reviews.append(Review.from_dict(json.loads(path.read_text(encoding="utf-8"))))
    return reviews


@dataclass(frozen=True)
class ExportFiles:
    counts_csv: Path  # the batch CSV's columns + reviewed, reviewer, reviewed_at and the edit counts
    dots_csv: Path  # photo, x, y, class, photo_scale: what training.dataset reads
    coco_json: Path
    viame_csv: Path

    def paths(self) -> list[Path]:
        return [self.counts_csv, self.dots_csv, self.coco_json, self.viame_csv]


def write_exports(folder: Path, reviews: list[Review], stem: str = "reviewed") -> ExportFiles:
    """The four exports of ``reviews`` in ``folder``: ``<stem>_counts.csv``, ``<stem>_dots.csv``,
    ``<stem>_coco.json``, ``<stem>_viame.csv``."""
    folder = Path(folder)
    annotations = [review.annotations for review in reviews]
    info = {
        "description": f"{animals_described(annotations[0].class_names if annotations else SEA_LION_CLASSES)} "
        "annotations reviewed in the sea lion counter",
        "reviewers": sorted({review.reviewer for review in reviews}),
        "date_created": max((review.reviewed_at for review in reviews), default=""),
        "model_versions": sorted({review.model_version for review in reviews if review.model_version}),
    }
    return ExportFiles(
        counts_csv=write_atomic(folder / f"{stem}_counts.csv", reviewed_counts_csv(reviews)),
        dots_csv=write_atomic(folder / f"{stem}_dots.csv", dots_csv(reviews)),
        coco_json=write_atomic(folder / f"{stem}_coco.json", json.dumps(to_coco(annotations, info), indent=1)),
        viame_csv=write_atomic(folder / f"{stem}_viame.csv", to_viame_csv(annotations)),
    )


def read_annotations(
    path: Path,
    class_names: tuple[str, ...] = SEA_LION_CLASSES,
    image_sizes: dict[str, tuple[int, int]] | None = None,
) -> list[PhotoAnnotations]:
    """Annotations from a file another tool wrote: COCO JSON (``.json``) or VIAME CSV (anything else)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name}: cannot read the file ({exc})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path.name}: not valid JSON ({exc})") from None
        return from_coco(data, class_names, source=path.name)
    return from_viame_csv(text, class_names, image_sizes, source=path.name)
