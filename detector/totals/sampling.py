"""Draw the review sample of a survey run: a stratified probability sample, and the doubt-first list apart.

Strata: in each site folder, the photos whose model count is so large that a sample drawn in proportion to the
count would take them for sure (``x ≥ X / m``, applied repeatedly; :func:`take_all`) form a take-all stratum,
reviewed completely; the rest of the folder is split by the model's count of all animals per photo into up to
``strata`` groups of near-equal size (sorted by model count, then file). The photos to review are shared between
folders in proportion to their size, and inside a folder between its count groups by Neyman allocation on the
model's counts (a group of dense colonies, whose counts vary most, gets more reviews); every group gets at least
:data:`MIN_PER_STRATUM` (all of a smaller one), so that its spread can be estimated. Each group is then a simple
random sample without replacement, so a photo's inclusion probability is ``sampled / photos`` of its group (1 in
the take-all stratum), recorded in the sample files.

Files written into the run directory:

- ``review-sample.csv``: the photos to review (file, sha256, folder, stratum, model_total, inclusion_probability);
- ``review-frame.csv``: every photo of the run with its stratum, what :mod:`detector.totals.estimation` needs;
- ``review-sample.json``: how the sample was drawn (seed, photos asked, strata per folder, the run's model).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from detector.counting.records import PhotoRecord
from detector.errors import SampleError

SAMPLE_CSV = "review-sample.csv"
FRAME_CSV = "review-frame.csv"
SAMPLE_JSON = "review-sample.json"
DOUBT_CSV = "review-doubt.csv"
FRAME_COLUMNS = ("file", "sha256", "folder", "stratum", "model_total", "inclusion_probability", "sampled")
MIN_PER_STRATUM = 3  # reviews per stratum: two give a spread of one degree of freedom, zero whenever both photos have
# the same error (common with whole-animal counts), and intervals that cover too rarely (docs/survey.md)
DEFAULT_STRATA = 3  # count groups per folder (besides its take-all stratum)
TAKE_ALL = "take-all"  # the name of a folder's stratum of photos reviewed for sure (``site-A:take-all``)
DOUBT_MARGIN = 0.15  # a detection this close above its class threshold is borderline (the doubt-first list)


def take_all_stratum(folder: str) -> str:
    """The name of ``folder``'s take-all stratum (``site-A:take-all``)."""
    return f"{folder or '.'}:{TAKE_ALL}"


def is_take_all(stratum: str) -> bool:
    """Whether ``stratum`` is a folder's take-all stratum (every photo reviewed, none drawn at random)."""
    return stratum.endswith(f":{TAKE_ALL}")


@dataclass(frozen=True)
class FramePhoto:
    """One photo of the run as the design sees it: its stratum, the model's total count, and whether it was drawn."""

    file: str
    sha256: str
    folder: str
    stratum: str
    model_total: int
    inclusion_probability: float
    sampled: bool

    def row(self) -> list[str]:
        return [
            self.file, self.sha256, self.folder, self.stratum, str(self.model_total),
            f"{self.inclusion_probability:.6g}", "1" if self.sampled else "0",
        ]  # fmt: skip


@dataclass(frozen=True)
class ReviewSample:
    """The sampling frame (every photo of the run, each in one stratum) and which photos were drawn."""

    frame: tuple[FramePhoto, ...]
    seed: int | None = None
    strata_per_folder: int = DEFAULT_STRATA

    @property
    def sampled(self) -> list[FramePhoto]:
        return [photo for photo in self.frame if photo.sampled]

    def strata(self) -> dict[str, list[FramePhoto]]:
        """Stratum name → its photos (in frame order)."""
        groups: dict[str, list[FramePhoto]] = {}
        for photo in self.frame:
            groups.setdefault(photo.stratum, []).append(photo)
        return groups

    def describe_stratum(self, name: str) -> str:
        """``site-A:2 (model counts 14-80, 12 photos)``; a take-all stratum says that all of it is reviewed."""
        members = self.strata()[name]
        totals = [p.model_total for p in members]
        dense = ", the densest: every one reviewed" if is_take_all(name) else ""
        return f"{name} (model counts {min(totals)}-{max(totals)}, {len(members)} photos{dense})"

    def write(self, run_dir: Path, info: Mapping[str, object]) -> Path:
        """``review-sample.csv``, ``review-frame.csv`` and ``review-sample.json`` in ``run_dir``."""
        for name, photos in ((FRAME_CSV, self.frame), (SAMPLE_CSV, self.sampled)):
            with (Path(run_dir) / name).open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(FRAME_COLUMNS)
                writer.writerows(photo.row() for photo in photos)
        meta = {"seed": self.seed, "strata_per_folder": self.strata_per_folder, "photos": len(self.sampled), **info}
        (Path(run_dir) / SAMPLE_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return Path(run_dir) / SAMPLE_CSV

    @classmethod
    def read(cls, run_dir: Path) -> ReviewSample:
        """The sample drawn into ``run_dir`` by :func:`draw_sample` (``python -m detector sample``)."""
        path = Path(run_dir) / FRAME_CSV
        if not path.is_file():
            raise SampleError(
                f"{run_dir}: no review sample drawn yet ({FRAME_CSV} missing): run "
                f"`python -m detector sample {run_dir} --photos N` first, then review those photos"
            )
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = sorted(set(FRAME_COLUMNS) - set(reader.fieldnames or ()))
            if missing:
                raise SampleError(f"{path}: missing columns {', '.join(missing)}; draw the sample again")
            frame = tuple(
                FramePhoto(
                    row["file"],
                    row["sha256"],
                    row["folder"],
                    row["stratum"],
                    int(row["model_total"]),
                    float(row["inclusion_probability"]),
                    row["sampled"] == "1",
                )  # fmt: skip
                for row in reader
            )
        meta_path = Path(run_dir) / SAMPLE_JSON
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        return cls(frame, meta.get("seed"), int(meta.get("strata_per_folder") or DEFAULT_STRATA))


def allocate(photos: int, sizes: Sequence[int], spreads: Sequence[float]) -> list[int]:
    """Share ``photos`` between strata of ``sizes``: at least :data:`MIN_PER_STRATUM` each (all of a smaller one),
    the rest one at a time to the stratum whose variance term ``N²S²/n`` falls most (Neyman allocation in whole
    photos), never more than a stratum holds."""
    counts = [min(MIN_PER_STRATUM, size) for size in sizes]
    if sum(counts) > photos:
        raise SampleError(f"{photos} photos are too few: {len(sizes)} strata need at least {sum(counts)}")
    for _ in range(min(photos, sum(sizes)) - sum(counts)):
        gains = [
            (size * spread) ** 2 / (n * (n + 1)) if n < size else -1.0
            for size, spread, n in zip(sizes, spreads, counts, strict=True)
        ]
        counts[int(np.argmax(gains))] += 1
    return counts


def take_all(model_totals: Sequence[int], reviews: int) -> list[int]:
    """The photos (indices into ``model_totals``) to review for sure: the standard rule for a skewed population, where
    a few dense colonies hold most of the animals (and most of the model's error). With ``reviews`` photos left to
    draw and a model total ``X`` over the photos not yet taken, a photo with ``x ≥ X / reviews`` would be drawn with
    probability 1 or more by a sample in proportion to the count: it is taken, and the rule applied again to the
    rest. Never every photo, and never a photo the model counts as empty."""
    order = sorted(range(len(model_totals)), key=lambda i: (-model_totals[i], i))
    taken: list[int] = []
    left = sum(model_totals)
    while reviews > 0 and len(taken) < len(order) - 1:
        top = order[len(taken)]
        if model_totals[top] <= 0 or model_totals[top] * reviews < left:
            break
        taken.append(top)
        left -= model_totals[top]
        reviews -= 1
    return taken


def _proportional(photos: int, sizes: Sequence[int]) -> list[int]:
    """``photos`` shared in proportion to ``sizes`` (largest remainder), at least two each (all of a smaller one)."""
    return allocate(photos, sizes, [1.0] * len(sizes))


def draw_sample(
    records: Sequence[PhotoRecord], photos: int, seed: int = 0, strata: int = DEFAULT_STRATA
) -> ReviewSample:
    """A stratified random sample of ``photos`` of the run's ``records`` (folder x model-count strata)."""
    if not records:
        raise SampleError("the run has no counted photos to sample from")
    if photos < 1 or strata < 1:
        raise SampleError(f"--photos and --strata must be at least 1, got {photos} and {strata}")
    by_folder: dict[str, list[PhotoRecord]] = {}
    for record in records:
        by_folder.setdefault(record.folder, []).append(record)
    folders = sorted(by_folder)
    try:
        per_folder = _proportional(photos, [len(by_folder[f]) for f in folders])
    except SampleError:
        need = sum(min(MIN_PER_STRATUM, len(by_folder[f])) for f in folders)
        raise SampleError(
            f"--photos {photos} is too few for {len(folders)} folders: each needs {MIN_PER_STRATUM} reviewed photos "
            f"(all of a folder with fewer); ask for at least {need}"
        ) from None
    rng = np.random.default_rng(seed)
    frame: list[FramePhoto] = []
    for folder, n_folder in zip(folders, per_folder, strict=True):
        members = sorted(by_folder[folder], key=lambda r: (r.result.total, r.file))
        certain: set[int] = set()
        if n_folder < len(members):  # keep MIN_PER_STRATUM reviews for the random part
            certain = set(take_all([r.result.total for r in members], n_folder - MIN_PER_STRATUM))
        if certain:
            name = take_all_stratum(folder)
            frame += [FramePhoto(r.file, r.sha256, r.folder, name, r.result.total, 1.0, True)
                      for i, r in enumerate(members) if i in certain]  # fmt: skip
            members = [r for i, r in enumerate(members) if i not in certain]
            n_folder -= len(certain)
        groups = max(1, min(strata, n_folder // MIN_PER_STRATUM))
        bounds = np.linspace(0, len(members), groups + 1).round().astype(int)
        parts = [members[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
        spreads = [float(np.std([r.result.total for r in part], ddof=0)) + 1.0 for part in parts]  # +1: a group
        # the model counts as all-equal (often all zero) can still hold animals the model missed
        for k, (part, n_h) in enumerate(zip(parts, allocate(n_folder, [len(p) for p in parts], spreads), strict=True)):
            chosen = set(rng.choice(len(part), size=n_h, replace=False).tolist())
            name = f"{folder or '.'}:{k + 1}"
            frame += [
                FramePhoto(r.file, r.sha256, r.folder, name, r.result.total, n_h / len(part), i in chosen)
                for i, r in enumerate(part)
            ]
    return ReviewSample(tuple(frame), seed, strata)


def copy_sample(sample: ReviewSample, folder: Path) -> list[Path]:
    """Copy the sampled photos into ``folder`` (ready to upload to the Review tab); names that repeat across site
    folders get the site folder as a prefix."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [Path(photo.file).name for photo in sample.sampled]
    copied = []
    for photo, name in zip(sample.sampled, names, strict=True):
        if names.count(name) > 1:
            name = f"{photo.folder.replace('/', '_')}_{name}"
        copied.append(Path(shutil.copy2(photo.file, folder / name)))
    return copied


@dataclass(frozen=True)
class Doubt:
    """A photo of the doubt-first list: borderline detections (confidence less than :data:`DOUBT_MARGIN` above its
    class threshold) and the count's warnings."""

    record: PhotoRecord
    borderline: int

    @property
    def score(self) -> tuple[int, int]:
        return (self.borderline, len(self.record.result.warnings))


def doubt_list(records: Sequence[PhotoRecord], limit: int) -> list[Doubt]:
    """The ``limit`` photos the model is least sure of, most borderline detections first. For choosing photos to
    add to training, never for the estimate: a list chosen by doubt is not a probability sample."""
    doubts = []
    for record in records:
        result = record.result
        thresholds = np.array([result.conf.get(name, 0.0) for name in result.class_names])
        above = result.confidence - thresholds[result.class_id] if len(result) else np.zeros(0)
        doubts.append(Doubt(record, int(np.count_nonzero(above < DOUBT_MARGIN))))
    return sorted(doubts, key=lambda d: (-d.score[0], -d.score[1], d.record.file))[: max(0, limit)]


def write_doubt_csv(path: Path, doubts: Sequence[Doubt]) -> Path:
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "sha256", "folder", "model_total", "borderline_detections", "warnings"])
        for d in doubts:
            r = d.record
            writer.writerow([r.file, r.sha256, r.folder, r.result.total, d.borderline, " | ".join(r.result.warnings)])
    return Path(path)


def drawn_at() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def photos_for_precision(cv_of_differences: float, relative_error: float, population: int) -> int:
    """Photos to review so that the 95 % interval's half-width is ``relative_error`` of the total, for a simple
    random sample whose per-photo difference (truth − model) has coefficient of variation ``cv_of_differences``
    relative to the mean count: n0 = (1.96 · cv / e)², with the finite population correction n0 / (1 + n0 / N)."""
    n0 = (1.96 * cv_of_differences / relative_error) ** 2
    return min(population, max(MIN_PER_STRATUM, math.ceil(n0 / (1 + n0 / population))))
