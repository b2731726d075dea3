"""Dotted survey photos → an ultralytics YOLO dataset of overlapping chips, split by photo.

Streams one photo at a time (the full Kaggle set is 948 photos, ~96 GB), so memory stays at one photo.

Run ``python -m training.dataset --help``. Layout written under ``--out``::

    photos/<id>.jpg            the whole training image of each photo at the ground scale (for evaluation)
    images/<id>/<chip>.jpg     chips; labels/<id>/<chip>.txt  YOLO labels (class cx cy w h, normalised)
    photos.json                per photo: how its dots were found, dot counts, official counts, chips
    splits/<name>/{train,val}.txt + data.yaml    photo-level splits (one per CV fold, plus "all")
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import random
import shlex
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from detector.classes import SEA_LION_CLASSES
from detector.images import rescale
from detector.slicing import tile_grid
from training.dots import (
    Dots,
    PairMismatchError,
    align_pair,
    dots_by_colour,
    dots_by_difference,
    exclusion_mask,
    paint_out_dots,
)

logger = logging.getLogger(__name__)

# Typical body length at full survey resolution (data README); a label box is a square of this side, scaled to
# the ground scale (animals lie in any direction seen from above, so a square covers them all).
BODY_LENGTH_PX: dict[str, int] = {
    "adult_males": 120,
    "subadult_males": 100,
    "adult_females": 80,
    "juveniles": 60,
    "pups": 40,
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


@dataclass(frozen=True)
class PhotoSpec:
    """Where one survey photo's files are, and at which scale (relative to native resolution) each is."""

    photo_id: str
    dotted: Path
    dotted_scale: float = 1.0
    raw: Path | None = None
    raw_scale: float = 1.0
    official_counts: dict[str, int] | None = None


@dataclass
class PreparedPhoto:
    """One photo ready for chipping: the training image (RGB, ground scale), its dots and excluded regions."""

    photo_id: str
    image: np.ndarray
    dots: Dots
    excluded: np.ndarray  # bool, True = blacked out by the biologists (filled black in ``image``)
    method: str
    notes: list[str] = field(default_factory=list)


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    small = cv2.resize(mask.astype(np.uint8) * 255, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return small >= 128


def read_counts(path: Path) -> dict[str, dict[str, int]]:
    """Official per-photo counts (Kaggle train.csv / counts.csv: train_id + the five class columns)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {str(row["train_id"]): {name: int(row[name]) for name in SEA_LION_CLASSES} for row in rows}


def _images_by_stem(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _id_key(photo_id: str) -> tuple[int, str]:
    return (int(photo_id), "") if photo_id.isdigit() else (sys.maxsize, photo_id)


def discover(root: Path, photo_scale: float = 1.0) -> list[PhotoSpec]:
    """The photos under ``root`` in one of two layouts.

    * The NOAA sample: ``downsampled/Train``, ``downsampled/TrainDotted`` (4x downsampled) and
      ``fullres-dotted/`` (full resolution, preferred for dots where present), plus ``counts.csv``.
    * The Kaggle layout: ``Train/`` and ``TrainDotted/`` at ``photo_scale`` (1.0 for the original files)
      plus ``train.csv`` or ``counts.csv``.
    """
    root = Path(root)
    counts_file = next((root / n for n in ("counts.csv", "train.csv") if (root / n).is_file()), None)
    counts = read_counts(counts_file) if counts_file else {}
    if (root / "downsampled").is_dir():
        raws = _images_by_stem(root / "downsampled" / "Train")
        dotted_small = _images_by_stem(root / "downsampled" / "TrainDotted")
        dotted_full = _images_by_stem(root / "fullres-dotted")
        specs = []
        for photo_id in sorted(set(dotted_small) | set(dotted_full), key=_id_key):
            full = dotted_full.get(photo_id)
            specs.append(
                PhotoSpec(
                    photo_id=photo_id,
                    dotted=full or dotted_small[photo_id],
                    dotted_scale=1.0 if full else 0.25,
                    raw=raws.get(photo_id),
                    raw_scale=0.25,
                    official_counts=counts.get(photo_id),
                )
            )
        return specs
    raws = _images_by_stem(root / "Train")
    dotted = _images_by_stem(root / "TrainDotted")
    if not dotted:
        raise FileNotFoundError(f"no dotted photos under {root} (expected TrainDotted/ or downsampled/TrainDotted/)")
    return [
        PhotoSpec(photo_id, path, photo_scale, raws.get(photo_id), photo_scale, counts.get(photo_id))
        for photo_id, path in sorted(dotted.items(), key=lambda item: _id_key(item[0]))
    ]


def prepare_photo(spec: PhotoSpec, ground_scale: float) -> PreparedPhoto:
    """Find the dots (before any downsampling) and build the training image at ``ground_scale``.

    * Crisp dots (dotted copy at >= 0.5 scale): dots by colour. The training image is the raw photo when it
      is the same photograph (checked; a 180-degree rotation is fixed), else the dotted copy with the dots
      painted out (inpainting at full resolution, then downsampling).
    * Blurred dots (a downsampled pair): dots by difference; a pair that is not the same photograph raises
      :class:`PairMismatchError`.

    Blacked-out regions are filled black in the training image too, so the model never sees an animal there
    without a label (it learns "black = nothing", which costs nothing on real survey photos).
    """
    notes: list[str] = []
    dotted = read_rgb(spec.dotted)
    label = f"photo {spec.photo_id}"
    if spec.dotted_scale >= 0.5:
        dots = dots_by_colour(dotted)
        excluded = exclusion_mask(dotted, None, spec.dotted_scale)
        dots = dots.outside(excluded)
        factor = ground_scale / spec.dotted_scale
        image = None
        if spec.raw is not None:
            raw = rescale(read_rgb(spec.raw), ground_scale / spec.raw_scale)
            dotted_small = rescale(dotted, factor)
            try:
                alignment = align_pair(raw, dotted_small, label)
            except PairMismatchError as exc:
                notes.append(f"raw photo not used: {exc}")
            else:
                image = raw
                method = "colour dots on the full-resolution dotted copy; raw photo as training image"
                if alignment.rotated_180:
                    dots = dots.rotated_180(dotted.shape[1], dotted.shape[0])
                    excluded = excluded[::-1, ::-1]
                    notes.append("dotted copy was rotated 180 degrees; fixed")
        if image is None:
            image = rescale(paint_out_dots(dotted), factor)
            method = "colour dots; dots painted out of the full-resolution dotted copy, then downsampled"
        dots = dots.scaled(factor)
    else:
        if spec.raw is None:
            raise PairMismatchError(f"{label}: a downsampled dotted copy needs its raw photo to find the dots")
        raw = rescale(read_rgb(spec.raw), spec.dotted_scale / spec.raw_scale)
        alignment = align_pair(raw, dotted, label)
        if alignment.rotated_180:
            dotted = np.ascontiguousarray(dotted[::-1, ::-1])
            notes.append("dotted copy was rotated 180 degrees; fixed")
        dots = dots_by_difference(raw, dotted, spec.dotted_scale)
        excluded = exclusion_mask(dotted, raw, spec.dotted_scale)
        factor = ground_scale / spec.dotted_scale
        image = rescale(raw, factor)
        dots = dots.scaled(factor)
        method = "difference of the raw/dotted pair"
    excluded = resize_mask(excluded, image.shape[:2])
    image = image.copy()
    image[excluded] = 0
    return PreparedPhoto(spec.photo_id, image, dots, excluded, method, notes)


def dot_boxes(dots: Dots, ground_scale: float, image_size: tuple[int, int]) -> np.ndarray:
    """Square boxes (x1, y1, x2, y2) of each class's typical body length at ``ground_scale``, clipped."""
    half = np.array([BODY_LENGTH_PX[SEA_LION_CLASSES[c]] for c in dots.class_id], dtype=np.float32) * ground_scale / 2
    boxes = np.concatenate([dots.xy - half[:, None], dots.xy + half[:, None]], axis=1).reshape(-1, 4)
    width, height = image_size
    return np.clip(boxes, 0, [width, height, width, height])


@dataclass(frozen=True)
class ChipOptions:
    size: int = 320
    overlap: float = 0.25
    min_visible: float = 0.4  # a box cut by a chip edge keeps a label only if this share of it is inside
    min_side: float = 3.0  # ...and it is at least this many pixels wide and high
    empty_share: float = 0.1  # at most this share of a photo's chips have no animals (negatives)
    max_excluded: float = 0.75  # chips more blacked out than this are skipped
    jpeg_quality: int = 95


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


def write_chips(photo: PreparedPhoto, out: Path, ground_scale: float, options: ChipOptions, seed: int) -> dict:
    """Cut one photo into chips with labels; returns counts of chips written."""
    height, width = photo.image.shape[:2]
    boxes = dot_boxes(photo.dots, ground_scale, (width, height))
    image_dir, label_dir = out / "images" / photo.photo_id, out / "labels" / photo.photo_id
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    positives, negatives = [], []
    for tile in tile_grid(width, height, options.size, options.overlap):
        x1, y1, x2, y2 = (int(v) for v in tile)
        if photo.excluded[y1:y2, x1:x2].mean() > options.max_excluded:
            continue
        lines = chip_labels(boxes, photo.dots.class_id, tile, options)
        (positives if lines else negatives).append((tile, lines))
    # Keep a controlled share of empty chips, chosen reproducibly per photo.
    room = math.ceil(options.empty_share / max(1e-6, 1 - options.empty_share) * len(positives))
    room = max(room, 1 if not positives else 0)
    rng = random.Random(f"{seed}-{photo.photo_id}")
    negatives = rng.sample(negatives, min(room, len(negatives)))
    bgr = photo.image[:, :, ::-1]
    for tile, lines in positives + negatives:
        x1, y1, x2, y2 = (int(v) for v in tile)
        name = f"{photo.photo_id}_x{x1}_y{y1}"
        cv2.imwrite(str(image_dir / f"{name}.jpg"), bgr[y1:y2, x1:x2], [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality])
        (label_dir / f"{name}.txt").write_text("".join(line + "\n" for line in lines))
    return {"chips": len(positives) + len(negatives), "positive_chips": len(positives), "empty_chips": len(negatives)}


def iter_prepared(
    specs: Iterable[PhotoSpec], ground_scale: float
) -> Iterator[tuple[PhotoSpec, PreparedPhoto | None, str]]:
    """Prepare photos one at a time (streaming); a refused photo yields ``None`` and the reason."""
    for spec in specs:
        try:
            yield spec, prepare_photo(spec, ground_scale), ""
        except (PairMismatchError, ValueError) as exc:
            yield spec, None, str(exc)


def make_folds(photo_ids: Sequence[str], folds: int, seed: int = 0) -> list[list[str]]:
    """Photo ids split into ``folds`` validation groups (shuffled reproducibly, sizes differ by at most 1)."""
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if len(photo_ids) < folds:
        raise ValueError(f"{len(photo_ids)} photos cannot make {folds} folds")
    ids = sorted(photo_ids, key=_id_key)
    random.Random(seed).shuffle(ids)
    return [sorted(ids[i::folds], key=_id_key) for i in range(folds)]


def write_split(
    out: Path, name: str, train_ids: Sequence[str], val_ids: Sequence[str], monitor_only: bool = False
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
    data = {
        "path": str(out.resolve()),
        "train": f"{name}_train.txt",
        "val": f"{name}_val.txt",
        "names": dict(enumerate(SEA_LION_CLASSES)),
        "train_photos": list(train_ids),
        "val_photos": list(val_ids),
        "val_is_training_data": bool(overlap) or monitor_only,
    }
    path = split_dir / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class BuildOptions:
    ground_scale: float = 0.25
    chips: ChipOptions = field(default_factory=ChipOptions)
    folds: int = 4
    seed: int = 0
    val_ids: tuple[str, ...] = ()
    photo_ids: tuple[str, ...] = ()  # only these photos (all when empty)


def build_dataset(root: Path, out: Path, options: BuildOptions, photo_scale: float = 1.0, command: str = "") -> dict:
    """Build the whole dataset (chips, whole photos, splits); returns the summary also written to photos.json."""
    out = Path(out)
    specs = discover(Path(root), photo_scale)
    if options.photo_ids:
        specs = [s for s in specs if s.photo_id in set(options.photo_ids)]
    (out / "photos").mkdir(parents=True, exist_ok=True)
    records, refused = [], []
    started = time.perf_counter()
    for spec, photo, reason in iter_prepared(specs, options.ground_scale):
        if photo is None:
            logger.warning("photo %s refused: %s", spec.photo_id, reason)
            refused.append({"photo_id": spec.photo_id, "reason": reason})
            started = time.perf_counter()
            continue
        whole = out / "photos" / f"{photo.photo_id}.jpg"
        cv2.imwrite(str(whole), photo.image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, options.chips.jpeg_quality])
        chips = write_chips(photo, out, options.ground_scale, options.chips, options.seed)
        record = {
            "photo_id": photo.photo_id,
            "image": f"photos/{photo.photo_id}.jpg",
            "size": [int(photo.image.shape[1]), int(photo.image.shape[0])],
            "method": photo.method,
            "notes": photo.notes,
            "dot_counts": photo.dots.counts(),
            "official_counts": spec.official_counts,
            "excluded_share": round(float(photo.excluded.mean()), 4),
            **chips,
        }
        records.append(record)
        logger.info(
            "photo %s: %d dots, %d chips (%d empty), %.1fs — %s",
            photo.photo_id, len(photo.dots), chips["chips"], chips["empty_chips"], time.perf_counter() - started,
            photo.method,
        )  # fmt: skip
        del photo  # one photo in memory at a time
        started = time.perf_counter()
    ids = [r["photo_id"] for r in records]
    # "all": the final model trains on every photo; a few of them are its (in-sample) progress monitor.
    splits = {"all": str(write_split(out, "all", ids, list(options.val_ids) or ids[:1], monitor_only=True))}
    if options.val_ids:
        train_ids = [i for i in ids if i not in set(options.val_ids)]
        splits["holdout"] = str(write_split(out, "holdout", train_ids, list(options.val_ids)))
    if options.folds >= 2 and len(ids) >= options.folds:
        for k, val in enumerate(make_folds(ids, options.folds, options.seed)):
            train_ids = [i for i in ids if i not in set(val)]
            splits[f"fold{k}"] = str(write_split(out, f"fold{k}", train_ids, val))
    summary = {
        "source": str(Path(root).resolve()),
        "command": command,
        "ground_scale": options.ground_scale,
        "chip_options": asdict(options.chips),
        "body_length_px": BODY_LENGTH_PX,
        "class_names": list(SEA_LION_CLASSES),
        "seed": options.seed,
        "photos": records,
        "refused": refused,
        "splits": splits,
    }
    (out / "photos.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.dataset", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="NOAA sample or Kaggle layout folder")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    parser.add_argument("--ground-scale", type=float, default=0.25, help="scale the model sees, relative to native")
    parser.add_argument("--photo-scale", type=float, default=1.0, help="scale of Train/TrainDotted (Kaggle layout)")
    parser.add_argument("--chip", type=int, default=320, help="chip size in pixels (= training imgsz)")
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--empty-share", type=float, default=0.1, help="max share of chips without animals")
    parser.add_argument("--folds", type=int, default=4, help="cross-validation folds over photos (0: none)")
    parser.add_argument("--val-ids", default="", help="comma-separated photo ids for a fixed holdout split")
    parser.add_argument("--photos", default="", help="comma-separated photo ids to use (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    split = lambda text: tuple(t.strip() for t in text.split(",") if t.strip())  # noqa: E731
    options = BuildOptions(
        ground_scale=args.ground_scale,
        chips=ChipOptions(size=args.chip, overlap=args.overlap, empty_share=args.empty_share),
        folds=args.folds,
        seed=args.seed,
        val_ids=split(args.val_ids),
        photo_ids=split(args.photos),
    )
    started = time.perf_counter()
    command = "python -m training.dataset " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    summary = build_dataset(args.data, args.out, options, args.photo_scale, command)
    print(f"{'photo':>6} {'chips':>6} {'empty':>6}  dots per class {list(SEA_LION_CLASSES)}  method")
    for r in summary["photos"]:
        counts = [r["dot_counts"][n] for n in SEA_LION_CLASSES]
        print(f"{r['photo_id']:>6} {r['chips']:>6} {r['empty_chips']:>6}  {counts}  {r['method']}")
    for r in summary["refused"]:
        print(f"{r['photo_id']:>6} refused: {r['reason']}")
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f}s; splits: {', '.join(summary['splits'])}")
    return 0 if summary["photos"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
