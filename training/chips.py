"""Chips of a training image and photo-level splits: the part of a dataset that dots and box labels share.

Pure file writing on arrays (no label source here): ``training.dataset`` (dots) and ``training.boxes`` (box labels)
both cut their training images with :func:`write_chips_of` and write splits with :func:`write_split`.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detector.classes import SEA_LION_CLASSES
from detector.counting.slicing import tile_grid
from training.errors import TrainingError
from training.records import DataSplit


def _id_key(photo_id: str) -> tuple[int, str]:
    return (int(photo_id), "") if photo_id.isdigit() else (sys.maxsize, photo_id)


# YOLOv5's largest stride: ultralytics trains and predicts at a multiple of it and silently resizes any other size.
MODEL_STRIDE = 32


@dataclass(frozen=True)
class ChipOptions:
    size: int = 320
    overlap: float = 0.25
    min_visible: float = 0.4  # a box cut by a chip edge keeps a label only if this share of it is inside
    min_side: float = 3.0  # ...and it is at least this many pixels wide and high
    empty_share: float = 0.1  # at most this share of a photo's chips have no animals (negatives)
    max_excluded: float = 0.75  # chips more blacked out than this are skipped
    jpeg_quality: int = 95

    def check_trainable(self) -> None:
        """Raise a :class:`TrainingError` unless the chips can be trained at their own size (a dataset's chips are
        its training imgsz; the geometry alone takes any size)."""
        if self.size <= 0 or self.size % MODEL_STRIDE:
            lower = max(MODEL_STRIDE, self.size // MODEL_STRIDE * MODEL_STRIDE)
            raise TrainingError(
                f"chip size (--chip) {self.size} is not a positive multiple of {MODEL_STRIDE}: ultralytics would "
                f"silently train at another size; use {lower} or {lower + MODEL_STRIDE}"
            )


def chip_labels(boxes: np.ndarray, class_id: np.ndarray, tile: np.ndarray, options: ChipOptions) -> list[str]:
    """YOLO label lines of the boxes inside one chip (clipped; slivers dropped)."""
    x1, y1, x2, y2 = (float(v) for v in tile)
    w, h = x2 - x1, y2 - y1
    clipped = np.clip(boxes, [x1, y1, x1, y1], [x2, y2, x2, y2])
    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = (cw >= options.min_side) & (ch >= options.min_side) & (cw * ch >= options.min_visible * area)
    lines = []
    for box, cls in zip(clipped[keep], class_id[keep], strict=True):
        cx, cy = (box[0] + box[2]) / 2 - x1, (box[1] + box[3]) / 2 - y1
        bw, bh = box[2] - box[0], box[3] - box[1]
        lines.append(f"{int(cls)} {cx / w:.6f} {cy / h:.6f} {bw / w:.6f} {bh / h:.6f}")
    return lines


def write_chips_of(
    photo_id: str,
    image: np.ndarray,
    boxes: np.ndarray,
    class_id: np.ndarray,
    excluded: np.ndarray,
    out: Path,
    options: ChipOptions,
    seed: int,
) -> dict:
    """Cut one training image (RGB, ground scale) with its label boxes into chips; returns counts of chips written.

    Shared by dots (square boxes of each class's length) and box labels (``training.boxes``).
    """
    height, width = image.shape[:2]
    image_dir, label_dir = out / "images" / photo_id, out / "labels" / photo_id
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    positives, negatives = [], []
    for tile in tile_grid(width, height, options.size, options.overlap):
        x1, y1, x2, y2 = (int(v) for v in tile)
        if excluded[y1:y2, x1:x2].mean() > options.max_excluded:
            continue
        lines = chip_labels(boxes, class_id, tile, options)
        (positives if lines else negatives).append((tile, lines))
    # Keep a controlled share of empty chips, chosen reproducibly per photo.
    room = math.ceil(options.empty_share / max(1e-6, 1 - options.empty_share) * len(positives))
    room = max(room, 1 if not positives else 0)
    rng = random.Random(f"{seed}-{photo_id}")
    negatives = rng.sample(negatives, min(room, len(negatives)))
    bgr = image[:, :, ::-1]
    for tile, lines in positives + negatives:
        x1, y1, x2, y2 = (int(v) for v in tile)
        name = f"{photo_id}_x{x1}_y{y1}"
        cv2.imwrite(str(image_dir / f"{name}.jpg"), bgr[y1:y2, x1:x2], [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality])
        (label_dir / f"{name}.txt").write_text("".join(line + "\n" for line in lines))
    return {"chips": len(positives) + len(negatives), "positive_chips": len(positives), "empty_chips": len(negatives)}


def make_folds(photo_ids: Sequence[str], folds: int, seed: int = 0) -> list[list[str]]:
    """Photo ids split into ``folds`` validation groups (shuffled reproducibly, sizes differ by at most 1)."""
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if len(photo_ids) < folds:
        raise ValueError(f"{len(photo_ids)} photos cannot make {folds} folds")
    ids = sorted(photo_ids, key=_id_key)
    random.Random(seed).shuffle(ids)
    return [sorted(ids[i::folds], key=_id_key) for i in range(folds)]


def folds_holding(counts: Mapping[str, Mapping[str, int]], folds: int, classes: Sequence[str]) -> list[list[str]]:
    """Photo ids in ``folds`` validation groups such that the rarest classes are spread over every fold.

    Photos go largest first (by ``classes`` in order, e.g. pups then juveniles) to the fold, among those not yet
    full (sizes differ by at most 1), that holds the fewest animals of the first of ``classes`` the photo has (the
    fewest photos when it has none, then the lowest fold number): deterministic, and a fold gets a photo with pups
    before any fold gets a second one, as long as there are at least as many such photos as folds.
    """
    ids = sorted(counts, key=_id_key)
    if folds < 2 or len(ids) < folds:
        raise ValueError(f"{len(ids)} photos cannot make {folds} folds")
    cap = math.ceil(len(ids) / folds)
    groups: list[list[str]] = [[] for _ in range(folds)]
    held = [dict.fromkeys(classes, 0) for _ in range(folds)]
    order = sorted(ids, key=lambda i: (*(-counts[i].get(c, 0) for c in classes), _id_key(i)))
    for photo in order:
        first = next((c for c in classes if counts[photo].get(c, 0) > 0), None)
        open_folds = [f for f in range(folds) if len(groups[f]) < cap]
        best = min(open_folds, key=lambda f: (held[f][first] if first else 0, len(groups[f]), f))
        groups[best].append(photo)
        for c in classes:
            held[best][c] += counts[photo].get(c, 0)
    return [sorted(g, key=_id_key) for g in groups]


def write_split(
    out: Path,
    name: str,
    train_ids: Sequence[str],
    val_ids: Sequence[str],
    monitor_only: bool = False,
    class_names: Sequence[str] = SEA_LION_CLASSES,
) -> Path:
    """Write image lists and ``data.yaml`` for one photo-level split; returns the data.yaml path.

    ``monitor_only``: the val photos are also training photos (the final model trains on every photo; its val
    numbers only show progress, the honest estimate is cross-validation).
    """
    overlap = set(train_ids) & set(val_ids)
    if overlap and not monitor_only:
        raise ValueError(f"split {name}: photos {sorted(overlap)} are in both train and val")
    split_dir = out / "splits" / name
    split_dir.mkdir(parents=True, exist_ok=True)

    def listing(ids: Sequence[str], file: Path) -> None:
        lines = [
            f"./{p.relative_to(out).as_posix()}" for pid in ids for p in sorted((out / "images" / pid).glob("*.jpg"))
        ]
        # ultralytics resolves "./" against the list file's folder: keep the lists at the dataset root.
        file.write_text("".join(line + "\n" for line in lines))

    listing(train_ids, out / f"{name}_train.txt")
    listing(val_ids, out / f"{name}_val.txt")
    split = DataSplit(
        path=str(out.resolve()),
        train=f"{name}_train.txt",
        val=f"{name}_val.txt",
        names=dict(enumerate(class_names)),
        train_photos=list(train_ids),
        val_photos=list(val_ids),
        val_is_training_data=bool(overlap) or monitor_only,
    )
    return split.write(split_dir / "data.yaml")
