"""Reviewed counts from the sources the product reads, matched to a run's photos (sha256 first, else file name).

Sources: the app's reviews directory (:func:`detector.review_store.load_reviews`, and every export inside it),
COCO JSON and VIAME CSV
(:func:`detector.review_store.read_annotations`), and dots tables (photo, x, y, class: one row per animal, as the
app exports them and ``training.dataset`` reads them; only counts are needed here, and ``detector`` may not import
``training``, so the table is counted with :mod:`csv`).

A dots table or a VIAME CSV lists animals, not photos: a reviewed photo without animals has no rows. With
``sample_reviewed`` every sampled photo of the run is taken as reviewed, and one without rows as empty.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detector.classes import SEA_LION_CLASSES
from detector.counting.records import PhotoRecord
from detector.errors import ReviewSourceError

DOTS_PHOTO_COLUMNS = ("train_id", "photo", "photo_id", "image")  # as training.io reads them


@dataclass(frozen=True)
class ReviewedPhoto:
    """One photo's true counts and where they came from."""

    photo: str  # the name (or path) the source gives
    counts: dict[str, int]
    source: str  # the file or folder it was read from
    sha256: str = ""  # of the photo's bytes, where the source says (the app's reviews)
    model_version: str = ""  # of the count that was reviewed, where the source says
    lists_empty_photos: bool = True  # False for a dots table / VIAME CSV: an empty photo has no rows


def _dots_table_counts(path: Path, columns: Sequence[str], class_names: Sequence[str]) -> list[ReviewedPhoto]:
    photo_column = next((c for c in DOTS_PHOTO_COLUMNS if c in columns), None)
    counts: dict[str, dict[str, int]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            name = (row.get("class") or "").strip()
            if name not in class_names:
                raise ReviewSourceError(
                    f"{path}, line {line}: class {name!r} is not a class of the run's model ({', '.join(class_names)})"
                )
            photo = counts.setdefault(row[photo_column].strip(), dict.fromkeys(class_names, 0))
            photo[name] += 1
    return [ReviewedPhoto(p, c, str(path), lists_empty_photos=False) for p, c in counts.items()]


@dataclass(frozen=True)
class SourceRead:
    """One file or folder looked at for reviews: what it was read as and the photos it names, or why it was not."""

    path: str
    kind: str = ""  # "the app's reviews", "dots table", "COCO JSON", "VIAME CSV"; "" when not read
    photos: tuple[str, ...] = ()
    skipped: str = ""  # why it was not read

    def describe(self) -> str:
        if self.skipped:
            return f"{self.path}: not read ({self.skipped})"
        return f"{self.path}: {self.kind}, {len(self.photos)} photos"


REVIEW_FILE_SUFFIXES = (".csv", ".json")
NOT_A_REVIEW_SOURCE = "a review source is the app's reviews folder, a COCO .json, a dots table or a VIAME .csv"


def read_review_source(source: Path, class_names: Sequence[str] = SEA_LION_CLASSES) -> list[ReviewedPhoto]:
    """The reviewed photos of one source: a folder (the app's saved reviews and every dots table, COCO ``.json`` and
    VIAME CSV directly inside it), a COCO ``.json``, a dots table or a VIAME CSV."""
    return [photo for _, photos in read_review_sources([source], class_names) for photo in photos]


def read_review_sources(
    sources: Sequence[Path], class_names: Sequence[str] = SEA_LION_CLASSES
) -> list[tuple[SourceRead, list[ReviewedPhoto]]]:
    """Each file read, in order (a folder: its app reviews, then its files by name), with its reviewed photos.
    ``class_names``: the run's model's classes (the classes the exports may name).

    A file named on its own that cannot be read is an error; one found in a folder is listed as not read, with why.
    """
    read: list[tuple[SourceRead, list[ReviewedPhoto]]] = []
    for source in map(Path, sources):
        if source.is_dir():
            from detector.review.store import load_reviews

            start = len(read)
            try:
                reviews = load_reviews(source)
            except (ValueError, KeyError, json.JSONDecodeError) as exc:
                raise ReviewSourceError(f"{source}: a saved review cannot be read ({exc})") from None
            photos = [ReviewedPhoto(r.photo, r.counts, str(source), r.photo_sha256, r.model_version) for r in reviews]
            if photos:
                read.append((SourceRead(f"{source}/", "the app's reviews", tuple(p.photo for p in photos)), photos))
            for path in sorted(p for p in source.iterdir() if p.is_file()):
                if path.suffix.lower() not in REVIEW_FILE_SUFFIXES:
                    read.append((SourceRead(str(path), skipped=f"not a .csv or .json file; {NOT_A_REVIEW_SOURCE}"), []))
                    continue
                try:
                    read.append(_read_file(path, class_names))
                except ReviewSourceError as exc:
                    read.append((SourceRead(str(path), skipped=str(exc)), []))
            if len(read) == start:
                read.append((SourceRead(f"{source}/", skipped="empty: no saved reviews and no files in it"), []))
        elif source.is_file():
            read.append(_read_file(source, class_names))
        else:
            raise ReviewSourceError(f"{source}: no such file or folder (give the app's reviews folder or an export)")
    return read


def _read_file(source: Path, class_names: Sequence[str]) -> tuple[SourceRead, list[ReviewedPhoto]]:
    """One export: a dots table, a COCO ``.json`` or a VIAME CSV."""
    from detector.review.store import read_annotations

    if source.suffix.lower() == ".csv":
        with source.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
        if {"x", "y", "class"} <= set(header) and any(c in header for c in DOTS_PHOTO_COLUMNS):
            photos = _dots_table_counts(source, header, class_names)
            return SourceRead(str(source), "dots table", tuple(p.photo for p in photos)), photos
    try:
        annotations = read_annotations(source, tuple(class_names))
    except ValueError as exc:
        raise ReviewSourceError(f"{exc} ({NOT_A_REVIEW_SOURCE})") from None
    version = ""
    coco = source.suffix.lower() == ".json"
    if coco:  # the app's COCO export names the model versions reviewed
        versions = (json.loads(source.read_text(encoding="utf-8-sig")).get("info") or {}).get("model_versions") or []
        version = ",".join(versions)
    # COCO lists every image; VIAME only lines of animals
    photos = [ReviewedPhoto(a.photo, a.counts, str(source), "", version, coco) for a in annotations]
    kind = "COCO JSON" if coco else "VIAME CSV"
    return SourceRead(str(source), kind, tuple(p.photo for p in photos)), photos


@dataclass(frozen=True)
class MatchedReviews:
    """Reviewed counts per run photo (its ``file``) and what the matching found."""

    counts: dict[str, dict[str, int]]
    by_sha256: int
    by_name: int
    unmatched: tuple[str, ...]  # reviewed photos that are not in the run
    model_versions: tuple[str, ...]  # model versions the reviews were made on, where known
    replaced: tuple[str, ...] = ()  # run photos reviewed more than once: the last source given wins
    needs_empty: bool = False  # some sources (dots table, VIAME) cannot list photos reviewed as empty


def _name_keys(photo: str) -> list[str]:
    path = Path(photo.replace("\\", "/"))
    return [path.as_posix(), path.name, path.stem]


def match_reviews(records: Sequence[PhotoRecord], reviews: Sequence[ReviewedPhoto]) -> MatchedReviews:
    """Match each review to a run photo by sha256, else by file name (a path ending, the name, or the stem — a dots
    table names photos by stem). A name that fits several photos of the run is an error naming them."""
    by_sha = {r.sha256: r.file for r in records if r.sha256}
    by_key: dict[str, list[str]] = {}
    for record in records:
        for key in {Path(record.file).name, Path(record.file).stem}:
            by_key.setdefault(key, []).append(record.file)
    counts: dict[str, dict[str, int]] = {}
    sources: dict[str, str] = {}
    replaced, unmatched = [], []
    sha_hits = name_hits = 0
    for review in reviews:
        file = by_sha.get(review.sha256) if review.sha256 else None
        if file:
            sha_hits += 1
        else:
            path = review.photo.replace("\\", "/")
            candidates = [r.file for r in records if r.file.replace("\\", "/").endswith("/" + path.lstrip("/"))]
            if not candidates:
                candidates = next((by_key[k] for k in _name_keys(review.photo)[1:] if k in by_key), [])
            if len(candidates) > 1:
                raise ReviewSourceError(
                    f"{review.source}: photo {review.photo!r} fits {len(candidates)} photos of the run "
                    f"({', '.join(candidates[:4])}): name it by its path relative to the survey, or review it in the "
                    "app (its reviews carry the photo's sha256)"
                )
            if not candidates:
                unmatched.append(f"{review.photo} ({Path(review.source).name})")
                continue
            file = candidates[0]
            name_hits += 1
        if file in counts:
            replaced.append(f"{Path(file).name} ({Path(sources[file]).name} → {Path(review.source).name})")
        counts[file], sources[file] = dict(review.counts), review.source
    versions = tuple(sorted({v for r in reviews for v in r.model_version.split(",") if v}))
    needs_empty = any(not r.lists_empty_photos for r in reviews)
    return MatchedReviews(counts, sha_hits, name_hits, tuple(unmatched), versions, tuple(replaced), needs_empty)
