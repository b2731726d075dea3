"""What the training steps read and hand each other: photos, official counts, dots tables, and the dataset record
(``photos.json``) that ``training.dataset`` writes and ``train``, ``evaluate`` and ``publish`` read.

One reader each, shared by every step (and the benchmarks), so they cannot drift apart.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from detector.classes import SEA_LION_CLASSES
from training.errors import TrainingError

DATASET_RECORD = "photos.json"
DOTS_FOLDER = "dots"  # dots/<photo id>.csv: each animal's position (x,y,class) at the ground scale
DOTS_PHOTO_COLUMNS = ("train_id", "photo", "photo_id", "image")


def write_photo_dots(dataset: Path, photo_id: str, xy: np.ndarray, class_names: Sequence[str]) -> Path:
    """Write one photo's animals (x, y at the ground scale, class name) for matching detections to them later."""
    folder = Path(dataset) / DOTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "x,y,class",
        *(f"{x:.1f},{y:.1f},{name}" for (x, y), name in zip(np.asarray(xy).reshape(-1, 2), class_names, strict=True)),
    ]
    path = folder / f"{photo_id}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def read_rgb(path: Path) -> np.ndarray:
    """A photo as RGB uint8, decoded exactly as the detector decodes it (EXIF rotation, 16-bit, any format)."""
    from detector.counting.images import load_image
    from detector.errors import ImageLoadError

    try:
        return load_image(Path(path))
    except ImageLoadError as exc:
        raise TrainingError(str(exc)) from None


def read_counts(path: Path) -> dict[str, dict[str, int]]:
    """Official per-photo counts (Kaggle ``train.csv`` / ``counts.csv``: ``train_id`` + the five class columns)."""
    path = Path(path)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("train_id", *SEA_LION_CLASSES) if c not in (reader.fieldnames or [])]
        if missing:
            raise TrainingError(f"{path}: a counts table needs the columns train_id and {', '.join(SEA_LION_CLASSES)}")
        try:
            return {str(row["train_id"]): {name: int(row[name]) for name in SEA_LION_CLASSES} for row in reader}
        except ValueError as exc:
            raise TrainingError(f"{path}, line {reader.line_num}: counts must be whole numbers ({exc})") from None


def read_dots_table(path: Path) -> dict[str, Dots]:
    """A dots table: one row per animal (photo, x, y, class; full-resolution pixels) → the dots of each photo id.

    The photo column is ``train_id`` (the NOAA ``dot-coordinates.csv``), ``photo``, ``photo_id`` or ``image`` (a
    file name is reduced to its stem); ``class`` is a class name of :data:`SEA_LION_CLASSES`.
    """
    path = Path(path)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        photo_column = next((c for c in DOTS_PHOTO_COLUMNS if c in columns), None)
        missing = [c for c in ("x", "y", "class") if c not in columns]
        if photo_column is None or missing:
            raise TrainingError(
                f"{path}: a dots table needs the columns photo (one of {', '.join(DOTS_PHOTO_COLUMNS)}), x, y, class; "
                f"found {', '.join(columns) or 'none'}"
            )
        rows: dict[str, tuple[list[tuple[float, float]], list[int]]] = {}
        for line, row in enumerate(reader, start=2):
            name = row["class"].strip()
            if name not in SEA_LION_CLASSES:
                raise TrainingError(
                    f"{path}, line {line}: unknown class {name!r} (known: {', '.join(SEA_LION_CLASSES)})"
                )
            try:
                xy = (float(row["x"]), float(row["y"]))
            except (TypeError, ValueError):
                raise TrainingError(
                    f"{path}, line {line}: x and y must be numbers, got {row['x']!r}, {row['y']!r}"
                ) from None
            points, classes = rows.setdefault(Path(row[photo_column].strip()).stem, ([], []))
            points.append(xy)
            classes.append(SEA_LION_CLASSES.index(name))
    return {key: Dots(np.array(points), np.array(classes)) for key, (points, classes) in rows.items()}


@dataclass(frozen=True)
class Dots:
    """Dots found in one photo: centres in pixels of that photo and class indices into SEA_LION_CLASSES."""

    xy: np.ndarray  # (N, 2) float32, x then y
    class_id: np.ndarray  # (N,) int64

    def __post_init__(self) -> None:
        object.__setattr__(self, "xy", np.asarray(self.xy, dtype=np.float32).reshape(-1, 2))
        object.__setattr__(self, "class_id", np.asarray(self.class_id, dtype=np.int64).reshape(-1))
        if len(self.xy) != len(self.class_id):
            raise ValueError(f"{len(self.xy)} dot centres but {len(self.class_id)} classes")

    def __len__(self) -> int:
        return len(self.class_id)

    def counts(self) -> dict[str, int]:
        """Dots per class, zeros included, in the fixed class order."""
        found = np.bincount(self.class_id, minlength=len(SEA_LION_CLASSES))
        return {name: int(found[i]) for i, name in enumerate(SEA_LION_CLASSES)}

    def scaled(self, factor: float) -> Dots:
        """The same dots on the photo resized by ``factor`` (pixel centres stay centres)."""
        return Dots((self.xy + 0.5) * factor - 0.5, self.class_id)

    def rotated_180(self, width: int, height: int) -> Dots:
        """The same dots on the photo rotated by 180 degrees."""
        return Dots(np.array([width - 1, height - 1], dtype=np.float32) - self.xy, self.class_id)

    def outside(self, mask: np.ndarray) -> Dots:
        """Only the dots whose centre is not in ``mask`` (True = excluded)."""
        if not len(self):
            return self
        h, w = mask.shape
        xi = np.clip(np.round(self.xy[:, 0]).astype(int), 0, w - 1)
        yi = np.clip(np.round(self.xy[:, 1]).astype(int), 0, h - 1)
        keep = ~mask[yi, xi]
        return Dots(self.xy[keep], self.class_id[keep])

    @classmethod
    def empty(cls) -> Dots:
        return cls(np.zeros((0, 2)), np.zeros(0))


@dataclass(frozen=True)
class PhotoEntry:
    """One photo of a built dataset: where its training image is, how its labels were found, its chips."""

    photo_id: str
    image: str  # relative to the dataset folder
    size: tuple[int, int]
    method: str
    dot_counts: Mapping[str, int]
    official_counts: Mapping[str, int] | None = None
    image_source: str = "raw"
    excluded_share: float = 0.0
    notes: tuple[str, ...] = ()
    chips: int = 0
    positive_chips: int = 0
    empty_chips: int = 0


@dataclass(frozen=True)
class DatasetRecord:
    """``photos.json``: what ``training.dataset`` built, and how (read by the later steps)."""

    source: str
    ground_scale: float
    chip_size: int
    chip_options: Mapping[str, Any]
    photos: tuple[PhotoEntry, ...]
    splits: Mapping[str, str]  # split name → data.yaml
    dots_table: str | None = None
    command: str = ""
    body_length_px: Mapping[str, float] = field(default_factory=dict)
    class_names: tuple[str, ...] = SEA_LION_CLASSES
    seed: int = 0
    refused: tuple[Mapping[str, str], ...] = ()

    @property
    def by_id(self) -> dict[str, PhotoEntry]:
        return {photo.photo_id: photo for photo in self.photos}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("chip_size")  # stored once, in chip_options
        return data

    def write(self, folder: Path) -> Path:
        path = Path(folder) / DATASET_RECORD
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetRecord:
        known = {f.name for f in fields(PhotoEntry)}
        photos = tuple(
            PhotoEntry(**{k: (tuple(v) if k in {"size", "notes"} else v) for k, v in p.items() if k in known})
            for p in data["photos"]
        )
        return cls(
            source=str(data["source"]),
            ground_scale=float(data["ground_scale"]),
            chip_size=int(data["chip_options"]["size"]),
            chip_options=dict(data["chip_options"]),
            photos=photos,
            splits=dict(data.get("splits") or {}),
            dots_table=data.get("dots_table"),
            command=str(data.get("command", "")),
            body_length_px=dict(data.get("body_length_px") or {}),
            class_names=tuple(data.get("class_names") or SEA_LION_CLASSES),
            seed=int(data.get("seed", 0)),
            refused=tuple(data.get("refused") or ()),
        )

    @classmethod
    def read(cls, folder: Path) -> DatasetRecord:
        """The record of a dataset folder; a missing or unreadable one is a :class:`TrainingError` naming it."""
        path = Path(folder) / DATASET_RECORD
        if not path.is_file():
            raise TrainingError(f"{path} not found: build the dataset with python -m training.dataset first")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise TrainingError(f"{path} is not a dataset record ({type(exc).__name__}: {exc})") from None
