"""The review record: a photo's reviewed annotations, how they differ from the model's, and who reviewed them;
pure (no file I/O, no Gradio, no torch). Their file formats are :mod:`detector.review.formats`.

* :class:`PhotoAnnotations`: one photo's boxes (``xyxy`` in pixels of the photo as uploaded, full resolution) and
  class ids — what a reviewer ends up with, or what another tool exported.
* :func:`match_boxes` / :class:`Edits`: how a review differs from the model's detections. An original detection
  and a reviewed box are the same animal when their IoU is at least :data:`MATCH_IOU` (0.5), paired one to one,
  highest IoU first. Unpaired reviewed boxes were **added**, unpaired detections **removed**, and a pair whose class
  differs was **reclassified** (counted under the model's class). A box dragged so far that it overlaps its old
  place by less than 0.5 counts as one removed and one added.
* :class:`Review`: the reviewed annotations next to the original :class:`~.CountResult`, with who,
  when, the model version and the edits; its corrected-counts CSV row has the batch CSV's columns
  (:func:`detector.counting.records.counts_header`) plus :data:`review_columns`.
* Coordinates are kept to 0.01 px (:func:`coordinate_text`), so export → import is exact in every format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

import numpy as np

from detector.classes import SEA_LION_CLASSES
from detector.counting.metadata import PhotoMetadata
from detector.counting.results import CountResult
from detector.counting.uncertainty import CountUncertainty

MATCH_IOU = 0.5  # an original detection and a reviewed box are the same animal at IoU >= this
DECIMALS = 2  # boxes are kept to 0.01 px: exact through every format
REVIEW_FORMAT = "sealion-review/1"


def coordinate_text(value: float) -> str:
    """A coordinate as text: at most 2 decimals, no trailing zeros (``12``, ``12.5``, ``12.25``)."""
    text = f"{float(value):.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@dataclass(frozen=True, eq=False)
class PhotoAnnotations:
    """One photo's animals: boxes ``xyxy`` (N, 4) in pixels of the photo as uploaded and ``class_id`` (N,).

    ``image_size`` is (width, height), or None where a format does not say (VIAME CSV).
    """

    photo: str
    xyxy: np.ndarray
    class_id: np.ndarray
    class_names: tuple[str, ...] = SEA_LION_CLASSES
    image_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        xyxy = np.round(np.asarray(self.xyxy, dtype=np.float64).reshape(-1, 4), DECIMALS)
        class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if len(xyxy) != len(class_id):
            raise ValueError(f"{self.photo}: {len(xyxy)} boxes but {len(class_id)} classes")
        if not np.isfinite(xyxy).all():
            raise ValueError(f"{self.photo}: box coordinates must be finite numbers")
        bad = np.flatnonzero((xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1]))
        if len(bad):
            raise ValueError(
                f"{self.photo}: box {int(bad[0])} {xyxy[bad[0]].tolist()} has no area (need x2 > x1, y2 > y1)"
            )
        if len(class_id) and (class_id.min() < 0 or class_id.max() >= len(self.class_names)):
            raise ValueError(f"{self.photo}: class id out of range 0..{len(self.class_names) - 1}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "class_id", class_id)
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if self.image_size is not None:
            width, height = (int(v) for v in self.image_size)
            if width <= 0 or height <= 0:
                raise ValueError(f"{self.photo}: image size must be positive, got {self.image_size}")
            object.__setattr__(self, "image_size", (width, height))

    def __len__(self) -> int:
        return len(self.class_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PhotoAnnotations):
            return NotImplemented
        return (
            self.photo == other.photo
            and self.class_names == other.class_names
            and self.image_size == other.image_size
            and np.array_equal(self.xyxy, other.xyxy)
            and np.array_equal(self.class_id, other.class_id)
        )

    __hash__ = None  # type: ignore[assignment] - mutable arrays inside

    def __repr__(self) -> str:
        return f"PhotoAnnotations({self.photo!r}, {len(self)} boxes, counts={self.counts}, size={self.image_size})"

    @property
    def counts(self) -> dict[str, int]:
        per_class = np.bincount(self.class_id, minlength=len(self.class_names))
        return {name: int(per_class[i]) for i, name in enumerate(self.class_names)}

    @property
    def centres(self) -> np.ndarray:
        """(N, 2) box centres, x then y, in pixels of the photo."""
        return (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2

    @classmethod
    def from_result(cls, result: CountResult, photo: str | None = None) -> PhotoAnnotations:
        """The model's detections as annotations (what a review starts from)."""
        return cls(
            photo or result.source or "photo", result.xyxy, result.class_id, result.class_names, result.image_size
        )

    @classmethod
    def from_boxes(
        cls,
        photo: str,
        boxes: Iterable[Mapping[str, Any]],
        class_names: Sequence[str] = SEA_LION_CLASSES,
        image_size: tuple[int, int] | None = None,
    ) -> PhotoAnnotations:
        """From box dicts: ``{"xyxy": [x1, y1, x2, y2], "class_name": name}`` (what :meth:`to_boxes` and the
        ``/count`` JSON's ``detections`` give), or the annotator's ``{"xmin", "ymin", "xmax", "ymax", "label"}``.
        ``class`` and ``label`` are accepted for the class name. Errors name the box and the field."""
        names = tuple(class_names)
        xyxy, class_id = [], []
        for index, box in enumerate(boxes):
            where = f"box {index}"
            if not isinstance(box, Mapping):
                raise ValueError(f"{where}: must be an object with xyxy and class_name, got {box!r}")
            try:
                coords = box["xyxy"] if "xyxy" in box else [box[k] for k in ("xmin", "ymin", "xmax", "ymax")]
                values = [float(v) for v in coords]
            except KeyError as exc:
                raise ValueError(f"{where}: missing field xyxy (or xmin, ymin, xmax, ymax): {exc}") from None
            except (TypeError, ValueError):
                raise ValueError(f"{where}: xyxy must be 4 numbers, got {box.get('xyxy')!r}") from None
            if len(values) != 4:
                raise ValueError(f"{where}: xyxy must be 4 numbers [x1, y1, x2, y2], got {len(values)}")
            name = next((box[k] for k in ("class_name", "class", "label") if box.get(k) not in (None, "")), None)
            if name is None and "class_id" in box:
                name = names[int(box["class_id"])] if 0 <= int(box["class_id"]) < len(names) else box["class_id"]
            if name not in names:
                raise ValueError(f"{where}: class_name {name!r} is not one of {', '.join(names)}")
            x1, y1, x2, y2 = values
            xyxy.append([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)])
            class_id.append(names.index(name))
        result = cls(photo, np.array(xyxy, dtype=np.float64).reshape(-1, 4), np.array(class_id), names, image_size)
        if image_size is not None and len(result):
            width, height = result.image_size
            outside = np.flatnonzero(
                (result.xyxy[:, 2] <= 0)
                | (result.xyxy[:, 3] <= 0)
                | (result.xyxy[:, 0] >= width)
                | (result.xyxy[:, 1] >= height)
            )
            if len(outside):
                raise ValueError(
                    f"box {int(outside[0])}: {result.xyxy[outside[0]].tolist()} lies outside the {width}x{height} photo"
                )
        return result

    def to_boxes(self) -> list[dict[str, Any]]:
        """Box dicts ``{"xyxy": [...], "class_name": ...}`` (what :meth:`from_boxes` reads)."""
        return [
            {"xyxy": [float(v) for v in box], "class_name": self.class_names[int(cid)]}
            for box, cid in zip(self.xyxy, self.class_id, strict=True)
        ]

    def dots_rows(self, photo_scale: float = 1.0) -> list[dict[str, Any]]:
        """One row per animal: photo, x, y (the box centre), class, in survey-original pixels.

        The photo's pixels are divided by ``photo_scale`` (1.0 for a survey original, 0.25 for a copy downsampled
        4x), with the pixel-centre convention of ``training.dots.Dots.scaled``: a table made this way, given to
        ``training.dataset.discover(root, photo_scale=photo_scale)``, puts each dot back at the box centre.
        """
        if photo_scale <= 0:
            raise ValueError(f"photo_scale must be positive, got {photo_scale}")
        full = (self.centres + 0.5) / photo_scale - 0.5
        return [
            {
                "photo": self.photo,
                "x": coordinate_text(x),
                "y": coordinate_text(y),
                "class": self.class_names[int(c)],
                "photo_scale": f"{photo_scale:g}",
            }
            for (x, y), c in zip(full, self.class_id, strict=True)
        ]


# --- matching a review against the model's detections -------------------------------------------------------------


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of two sets of xyxy boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    left_top = np.maximum(a[:, None, :2], b[None, :, :2])
    right_bottom = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(right_bottom - left_top, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_boxes(original: np.ndarray, reviewed: np.ndarray, min_iou: float = MATCH_IOU) -> list[tuple[int, int]]:
    """Pairs (original index, reviewed index) of the same animal: IoU >= ``min_iou``, one to one, highest IoU first."""
    iou = box_iou(original, reviewed)
    rows, cols = np.nonzero(iou >= min_iou)
    order = np.lexsort((cols, rows, -iou[rows, cols]))  # highest IoU first; ties by index, so the result is stable
    used_original: set[int] = set()
    used_reviewed: set[int] = set()
    pairs = []
    for k in order:
        i, j = int(rows[k]), int(cols[k])
        if i not in used_original and j not in used_reviewed:
            used_original.add(i)
            used_reviewed.add(j)
            pairs.append((i, j))
    return sorted(pairs)


@dataclass(frozen=True)
class Edits:
    """What the reviewer changed, per class: ``added`` (missed animals, by the reviewer's class), ``removed`` (false
    detections, by the model's class), ``reclassified`` (kept animals whose class changed, by the model's class)."""

    added: dict[str, int]
    removed: dict[str, int]
    reclassified: dict[str, int]

    @classmethod
    def between(cls, original: PhotoAnnotations, reviewed: PhotoAnnotations, min_iou: float = MATCH_IOU) -> Edits:
        names = original.class_names
        pairs = match_boxes(original.xyxy, reviewed.xyxy, min_iou)
        matched_original = {i for i, _ in pairs}
        matched_reviewed = {j for _, j in pairs}
        added = {n: 0 for n in names}
        removed = {n: 0 for n in names}
        reclassified = {n: 0 for n in names}
        for j, cid in enumerate(reviewed.class_id):
            if j not in matched_reviewed:
                added[names[int(cid)]] += 1
        for i, cid in enumerate(original.class_id):
            if i not in matched_original:
                removed[names[int(cid)]] += 1
        for i, j in pairs:
            if original.class_id[i] != reviewed.class_id[j]:
                reclassified[names[int(original.class_id[i])]] += 1
        return cls(added, removed, reclassified)

    @property
    def totals(self) -> dict[str, int]:
        return {
            "added": sum(self.added.values()),
            "removed": sum(self.removed.values()),
            "reclassified": sum(self.reclassified.values()),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.totals,
            "per_class": {"added": self.added, "removed": self.removed, "reclassified": self.reclassified},
        }

    def describe(self) -> str:
        """``2 added, 1 removed, 1 reclassified`` (or ``no edits``)."""
        totals = self.totals
        if not any(totals.values()):
            return "no edits"
        return ", ".join(f"{n} {kind}" for kind, n in totals.items())


def review_columns(class_names: Sequence[str]) -> list[str]:
    """Columns a corrected-counts CSV adds to the batch CSV's (:func:`detector.counting.records.counts_header`)."""
    return [
        "reviewed",
        "reviewer",
        "reviewed_at",
        "added",
        "removed",
        "reclassified",
        *(f"added_{n}" for n in class_names),
        *(f"removed_{n}" for n in class_names),
        *(f"reclassified_{n}" for n in class_names),
    ]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, eq=False)
class Review:
    """A reviewed photo: the reviewer's annotations next to the model's original detections.

    ``annotations`` are in pixels of the photo as uploaded; ``original`` is the count that was reviewed (its
    ``model`` says which version and weights produced it). ``reviewed_at`` is ISO 8601 UTC.
    """

    annotations: PhotoAnnotations
    original: CountResult
    reviewer: str
    reviewed_at: str = field(default_factory=utc_now)
    photo_sha256: str = ""
    metadata: PhotoMetadata = field(default_factory=PhotoMetadata)
    min_iou: float = MATCH_IOU

    def __post_init__(self) -> None:
        if not self.reviewer.strip():
            raise ValueError("reviewer: give the reviewer's name (who checked these counts)")
        object.__setattr__(self, "reviewer", self.reviewer.strip())
        if self.annotations.class_names != self.original.class_names:
            raise ValueError(
                f"{self.photo}: the annotations' classes {list(self.annotations.class_names)} are not the model's "
                f"{list(self.original.class_names)}"
            )
        if self.annotations.image_size is None:
            object.__setattr__(self, "annotations", replace(self.annotations, image_size=self.original.image_size))
        elif self.annotations.image_size != self.original.image_size:
            raise ValueError(
                f"{self.photo}: annotations are for a photo of {self.annotations.image_size} px (width, height) "
                f"but the count was of one of {self.original.image_size} px"
            )

    @property
    def photo(self) -> str:
        return self.annotations.photo

    @property
    def model_version(self) -> str:
        return self.original.model.version if self.original.model else ""

    @property
    def model_sha256(self) -> str:
        return self.original.model.sha256 if self.original.model else ""

    @property
    def photo_scale(self) -> float:
        """The photo's scale relative to a survey original, as the count used it (1.0 when it did not say)."""
        return self.original.photo_scale or 1.0

    @cached_property
    def edits(self) -> Edits:
        return Edits.between(PhotoAnnotations.from_result(self.original, self.photo), self.annotations, self.min_iou)

    @property
    def counts(self) -> dict[str, int]:
        return self.annotations.counts

    @property
    def total(self) -> int:
        return len(self.annotations)

    def result(self) -> CountResult:
        """The corrected count: the original's settings and model, the reviewed boxes (confidence 1)."""
        return replace(
            self.original,
            xyxy=self.annotations.xyxy.astype(np.float32),
            class_id=self.annotations.class_id,
            confidence=np.ones(len(self.annotations), dtype=np.float32),
            source=self.photo,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REVIEW_FORMAT,
            "photo": self.photo,
            "photo_sha256": self.photo_sha256,
            "image_size": {"width": self.annotations.image_size[0], "height": self.annotations.image_size[1]},
            "class_names": list(self.annotations.class_names),
            "reviewer": self.reviewer,
            "reviewed_at": self.reviewed_at,
            "model_version": self.model_version,
            "model_sha256": self.model_sha256,
            "photo_scale": self.photo_scale,
            "counts": self.counts,
            "total": self.total,
            "original_counts": self.original.counts,
            "original_total": self.original.total,
            "edits": self.edits.to_dict(),
            "match_iou": self.min_iou,
            "annotations": self.annotations.to_boxes(),
            "metadata": self.metadata.to_dict(),
            "original": self.original.to_dict(include_boxes=True),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Review:
        if data.get("format") != REVIEW_FORMAT:
            raise ValueError(f"not a saved review (format {data.get('format')!r}, expected {REVIEW_FORMAT!r})")
        original = CountResult.from_dict(data["original"])
        size = data["image_size"]
        annotations = PhotoAnnotations.from_boxes(
            data["photo"], data["annotations"], data["class_names"], (size["width"], size["height"])
        )
        return cls(
            annotations,
            original,
            reviewer=data["reviewer"],
            reviewed_at=data["reviewed_at"],
            photo_sha256=data.get("photo_sha256") or "",
            metadata=PhotoMetadata.from_dict(data.get("metadata")),
            min_iou=float(data.get("match_iou", MATCH_IOU)),
        )

    def csv_row(self) -> list[Any]:
        """The batch CSV's row of the corrected count (error empty; the model's typical errors empty too: a
        reviewed count is a person's) and the :func:`review_columns`."""
        edits, totals = self.edits, self.edits.totals
        result = self.result()
        return [
            *result.csv_row(),
            *CountUncertainty().photo_row(result.class_names),
            *self.metadata.csv_row(),
            self.photo_sha256,
            "",
            "true",
            self.reviewer,
            self.reviewed_at,
            totals["added"],
            totals["removed"],
            totals["reclassified"],
            *edits.added.values(),
            *edits.removed.values(),
            *edits.reclassified.values(),
        ]

    def dots_rows(self) -> list[dict[str, Any]]:
        return self.annotations.dots_rows(self.photo_scale)
