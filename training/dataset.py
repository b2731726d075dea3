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
import logging
import shlex
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from detector.classes import BODY_LENGTH_PX, SEA_LION_CLASSES
from detector.counting.images import rescale
from detector.settings import default_of
from training.chips import (  # noqa: F401 - re-exported: the dataset's chips and splits live in training.chips
    ChipOptions,
    _id_key,
    chip_labels,
    folds_holding,
    make_folds,
    write_chips_of,
    write_split,
)
from training.dots import (
    PairMismatchError,
    align_pair,
    dots_by_colour,
    dots_by_difference,
    exclusion_mask,
    paint_out_dots,
)
from training.io import (
    DatasetRecord,
    Dots,
    PhotoEntry,
    TrainingError,
    read_counts,
    read_dots_table,
    read_rgb,
    write_photo_dots,
)

logger = logging.getLogger(__name__)

# A label box is a square of the class's body length (detector.classes.BODY_LENGTH_PX), scaled to the ground scale:
# animals lie in any direction seen from above, so a square covers them all.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


@dataclass(frozen=True)
class PhotoSpec:
    """Where one survey photo's files are, and at which scale (relative to native resolution) each is.

    ``dots``: the photo's animals from a dots table (full-resolution pixels), the best label source when present.
    """

    photo_id: str
    dotted: Path | None
    dotted_scale: float = 1.0
    raw: Path | None = None
    raw_scale: float = 1.0
    official_counts: dict[str, int] | None = None
    dots: Dots | None = None
    dots_source: str = ""


@dataclass
class PreparedPhoto:
    """One photo ready for chipping: the training image (RGB, ground scale), its dots and excluded regions."""

    photo_id: str
    image: np.ndarray
    dots: Dots
    excluded: np.ndarray  # bool, True = blacked out by the biologists (filled black in ``image``)
    method: str
    image_source: str = "raw"  # "raw": the raw photo; "painted": the dotted copy with its dots painted out
    notes: list[str] = field(default_factory=list)


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    small = cv2.resize(mask.astype(np.uint8) * 255, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return small >= 128


def _images_by_stem(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def default_dots_table(root: Path) -> Path | None:
    """``root/dot-coordinates.csv`` (the NOAA sample's dots table) when it exists."""
    path = Path(root) / "dot-coordinates.csv"
    return path if path.is_file() else None


def discover(root: Path, photo_scale: float = 1.0, dots_table: Path | None = None) -> list[PhotoSpec]:
    """The photos under ``root`` in one of two layouts, with the best label source of each.

    * The NOAA sample: ``downsampled/Train``, ``downsampled/TrainDotted`` (4x downsampled), ``fullres-dotted/`` and
      ``fullres-raw/`` (full resolution, preferred where present), ``counts.csv`` and ``dot-coordinates.csv``.
    * The Kaggle layout: ``Train/`` and ``TrainDotted/`` at ``photo_scale`` (1.0 for the original files)
      plus ``train.csv`` or ``counts.csv``.

    ``dots_table`` (default: ``root/dot-coordinates.csv`` when present) gives exact dots; a photo listed there
    needs only a raw photo (a reviewed survey photo, say), not a dotted copy.
    """
    root = Path(root)
    counts_file = next((root / n for n in ("counts.csv", "train.csv") if (root / n).is_file()), None)
    counts = read_counts(counts_file) if counts_file else {}
    dots_table = dots_table or default_dots_table(root)
    table = read_dots_table(dots_table) if dots_table else {}
    source = f"dots table {Path(dots_table).name}" if dots_table else ""
    if (root / "downsampled").is_dir() or (root / "fullres-dotted").is_dir() or (root / "fullres-raw").is_dir():
        dotted_small = _images_by_stem(root / "downsampled" / "TrainDotted")
        dotted_full = _images_by_stem(root / "fullres-dotted")
        raw_small = _images_by_stem(root / "downsampled" / "Train")
        raw_full = _images_by_stem(root / "fullres-raw")
        dotted = {**{k: (p, 0.25) for k, p in dotted_small.items()}, **{k: (p, 1.0) for k, p in dotted_full.items()}}
        raws = {**{k: (p, 0.25) for k, p in raw_small.items()}, **{k: (p, 1.0) for k, p in raw_full.items()}}
    else:
        dotted = {k: (p, photo_scale) for k, p in _images_by_stem(root / "TrainDotted").items()}
        raws = {k: (p, photo_scale) for k, p in _images_by_stem(root / "Train").items()}
    ids = set(dotted) | (set(table) & set(raws))
    if not ids:
        raise FileNotFoundError(
            f"no dotted photos under {root} (expected TrainDotted/ or downsampled/TrainDotted/), "
            "and no raw photos listed in a dots table"
        )
    specs = []
    for photo_id in sorted(ids, key=_id_key):
        dotted_path, dotted_scale = dotted.get(photo_id, (None, 1.0))
        raw_path, raw_scale = raws.get(photo_id, (None, 1.0))
        specs.append(
            PhotoSpec(
                photo_id=photo_id,
                dotted=dotted_path,
                dotted_scale=dotted_scale,
                raw=raw_path,
                raw_scale=raw_scale,
                official_counts=counts.get(photo_id),
                dots=table.get(photo_id),
                dots_source=source if photo_id in table else "",
            )
        )
    return specs


def prepare_photo(spec: PhotoSpec, ground_scale: float, prefer_painted: bool = False) -> PreparedPhoto:
    """Find the labels (best source first) and build the training image at ``ground_scale``.

    Labels: the dots table where it lists the photo; else dots by colour on a dotted copy at >= 0.5 scale (found
    before any downsampling); else the difference of a downsampled raw/dotted pair.
    Training image: the raw photo when it is the same photograph as the dotted copy (checked; a 180-degree
    rotation is fixed) and at least as sharp as the ground scale needs (or nothing sharper exists); else the
    dotted copy with its dots painted out (inpainting at full resolution, then downsampling). ``prefer_painted``
    uses the painted-out copy even where a raw photo exists (to check that it is a fair stand-in).

    Blacked-out regions are filled black in the training image too, so the model never sees an animal there
    without a label (it learns "black = nothing", which costs nothing on real survey photos).
    """
    notes: list[str] = []
    label = f"photo {spec.photo_id}"
    if spec.dotted is None and (spec.raw is None or spec.dots is None):
        raise PairMismatchError(f"{label}: needs a dotted copy, or a raw photo and rows in a dots table")
    raw = read_rgb(spec.raw) if spec.raw is not None else None
    dotted = read_rgb(spec.dotted) if spec.dotted is not None else None
    scale = spec.dotted_scale if dotted is not None else spec.raw_scale  # the scale labels are found at
    raw_aligned = None  # the raw photo at the dotted copy's scale, when it is the same photograph
    turned = False  # the dotted copy was rotated 180 degrees against the raw photo (and has been turned back)
    if raw is not None and dotted is not None:
        check = min(spec.dotted_scale, spec.raw_scale, 0.25)  # compare small: fast, and blind to dot pixels
        try:
            alignment = align_pair(
                rescale(raw, check / spec.raw_scale), rescale(dotted, check / spec.dotted_scale), label
            )
        except PairMismatchError as exc:
            notes.append(f"raw photo not used: {exc}")
        else:
            dotted, turned = alignment.upright(dotted), alignment.rotated_180
            if turned:
                notes.append("dotted copy was rotated 180 degrees; fixed")
            raw_aligned = rescale(raw, spec.dotted_scale / spec.raw_scale)
    elif raw is not None:
        raw_aligned = raw

    if spec.dots is not None:
        dots = spec.dots.scaled(scale)
        labels = spec.dots_source or "dots table"
        if turned:  # table rows are positions on the dotted copy they were marked on: turn them with it
            dots = dots.rotated_180(dotted.shape[1], dotted.shape[0])
            notes.append("dots table positions turned with the dotted copy")
    elif dotted is not None and spec.dotted_scale >= 0.5:
        dots = dots_by_colour(dotted)
        labels = "colour dots on the dotted copy"
    elif dotted is not None and raw_aligned is not None:
        dots = dots_by_difference(raw_aligned, dotted, spec.dotted_scale)
        labels = "difference of the raw/dotted pair"
    else:
        raise PairMismatchError(f"{label}: a downsampled dotted copy needs its raw photo to find the dots")
    if dotted is not None:
        excluded = exclusion_mask(dotted, raw_aligned, scale)
        dots = dots.outside(excluded)
    else:
        excluded = np.zeros(raw.shape[:2], dtype=bool)

    sharp_enough = raw is not None and spec.raw_scale >= ground_scale
    can_paint = dotted is not None and spec.dotted_scale >= min(0.5, ground_scale)
    if raw_aligned is not None and (sharp_enough or not can_paint) and not (prefer_painted and can_paint):
        image = rescale(raw, ground_scale / spec.raw_scale)
        source, image_source = "raw photo", "raw"
        if spec.raw_scale < ground_scale:
            notes.append(f"raw photo upsampled {ground_scale / spec.raw_scale:g}x (nothing sharper exists)")
    elif can_paint:
        image = rescale(paint_out_dots(dotted), ground_scale / spec.dotted_scale)
        source, image_source = "dotted copy with the dots painted out", "painted"
    else:
        raise PairMismatchError(f"{label}: no usable training image (the raw photo does not match the dotted copy)")
    dots = dots.scaled(ground_scale / scale)
    excluded = resize_mask(excluded, image.shape[:2])
    image = image.copy()
    image[excluded] = 0
    method = f"labels: {labels}; image: {source}"
    return PreparedPhoto(spec.photo_id, image, dots, excluded, method, image_source, notes)


def dot_boxes(dots: Dots, ground_scale: float, image_size: tuple[int, int]) -> np.ndarray:
    """Square boxes (x1, y1, x2, y2) of each class's typical body length at ``ground_scale``, clipped."""
    half = np.array([BODY_LENGTH_PX[SEA_LION_CLASSES[c]] for c in dots.class_id], dtype=np.float32) * ground_scale / 2
    boxes = np.concatenate([dots.xy - half[:, None], dots.xy + half[:, None]], axis=1).reshape(-1, 4)
    width, height = image_size
    return np.clip(boxes, 0, [width, height, width, height])


def write_chips(photo: PreparedPhoto, out: Path, ground_scale: float, options: ChipOptions, seed: int) -> dict:
    """Cut one photo into chips with labels; returns counts of chips written."""
    height, width = photo.image.shape[:2]
    boxes = dot_boxes(photo.dots, ground_scale, (width, height))
    return write_chips_of(photo.photo_id, photo.image, boxes, photo.dots.class_id, photo.excluded, out, options, seed)


def iter_prepared(
    specs: Iterable[PhotoSpec], ground_scale: float, prefer_painted: bool = False
) -> Iterator[tuple[PhotoSpec, PreparedPhoto | None, str]]:
    """Prepare photos one at a time (streaming); a refused photo yields ``None`` and the reason."""
    for spec in specs:
        try:
            yield spec, prepare_photo(spec, ground_scale, prefer_painted), ""
        except (PairMismatchError, ValueError) as exc:
            yield spec, None, str(exc)


@dataclass
class BuildOptions:
    ground_scale: float = 0.25
    chips: ChipOptions = field(default_factory=ChipOptions)
    folds: int = 4
    seed: int = 0
    val_ids: tuple[str, ...] = ()
    photo_ids: tuple[str, ...] = ()  # only these photos (all when empty)
    dots_table: Path | None = None  # default: <data>/dot-coordinates.csv when present
    folds_holding: tuple[str, ...] = ()  # spread these classes over every fold (folds_holding); empty: shuffled
    prefer_painted: bool = False  # painted-out dotted copies even where raw photos exist


def discover_all(roots: Sequence[Path], photo_scale: float = 1.0, dots_table: Path | None = None) -> list[PhotoSpec]:
    """The photos of several data folders (each with its own counts and dots table); a photo id in two is an error."""
    specs: list[PhotoSpec] = []
    where: dict[str, Path] = {}
    for root in roots:
        for spec in discover(Path(root), photo_scale, dots_table or default_dots_table(Path(root))):
            if spec.photo_id in where:
                raise TrainingError(f"photo {spec.photo_id} is in both {where[spec.photo_id]} and {root}: "
                                    "photo ids must be unique across --data folders")  # fmt: skip
            where[spec.photo_id] = Path(root)
            specs.append(spec)
    return sorted(specs, key=lambda spec: _id_key(spec.photo_id))


def build_dataset(
    root: Path | Sequence[Path], out: Path, options: BuildOptions, photo_scale: float = 1.0, command: str = ""
) -> DatasetRecord:
    """Build the whole dataset (chips, whole photos, splits) from one data folder or several; returns the record
    also written to photos.json."""
    options.chips.check_trainable()
    out = Path(out)
    roots = [Path(root)] if isinstance(root, (str, Path)) else [Path(r) for r in root]
    tables = [options.dots_table or default_dots_table(r) for r in roots]
    dots_table = ", ".join(str(t) for t in tables if t) or None
    specs = discover_all(roots, photo_scale, options.dots_table)
    if options.photo_ids:
        specs = [s for s in specs if s.photo_id in set(options.photo_ids)]
    (out / "photos").mkdir(parents=True, exist_ok=True)
    records, refused = [], []
    started = time.perf_counter()
    for spec, photo, reason in iter_prepared(specs, options.ground_scale, options.prefer_painted):
        if photo is None:
            logger.warning("photo %s refused: %s", spec.photo_id, reason)
            refused.append({"photo_id": spec.photo_id, "reason": reason})
            started = time.perf_counter()
            continue
        whole = out / "photos" / f"{photo.photo_id}.jpg"
        cv2.imwrite(str(whole), photo.image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, options.chips.jpeg_quality])
        chips = write_chips(photo, out, options.ground_scale, options.chips, options.seed)
        write_photo_dots(out, photo.photo_id, photo.dots.xy, [SEA_LION_CLASSES[c] for c in photo.dots.class_id])
        record = PhotoEntry(
            photo_id=photo.photo_id,
            image=f"photos/{photo.photo_id}.jpg",
            size=(int(photo.image.shape[1]), int(photo.image.shape[0])),
            method=photo.method,
            notes=tuple(photo.notes),
            dot_counts=photo.dots.counts(),
            official_counts=spec.official_counts,
            image_source=photo.image_source,
            excluded_share=round(float(photo.excluded.mean()), 4),
            **chips,
        )
        records.append(record)
        logger.info(
            "photo %s: %d dots, %d chips (%d empty), %.1fs — %s",
            photo.photo_id, len(photo.dots), chips["chips"], chips["empty_chips"], time.perf_counter() - started,
            photo.method,
        )  # fmt: skip
        del photo  # one photo in memory at a time
        started = time.perf_counter()
    ids = [r.photo_id for r in records]
    # "all": the final model trains on every photo; a few of them are its (in-sample) progress monitor.
    splits = {"all": str(write_split(out, "all", ids, list(options.val_ids) or ids[:1], monitor_only=True))}
    if options.val_ids:
        train_ids = [i for i in ids if i not in set(options.val_ids)]
        splits["holdout"] = str(write_split(out, "holdout", train_ids, list(options.val_ids)))
    if options.folds >= 2 and len(ids) >= options.folds:
        if options.folds_holding:
            counts = {r.photo_id: dict(r.dot_counts) for r in records}
            groups = folds_holding(counts, options.folds, options.folds_holding)
        else:
            groups = make_folds(ids, options.folds, options.seed)
        for k, val in enumerate(groups):
            train_ids = [i for i in ids if i not in set(val)]
            splits[f"fold{k}"] = str(write_split(out, f"fold{k}", train_ids, val))
    record = DatasetRecord(
        source=", ".join(str(r.resolve()) for r in roots),
        ground_scale=options.ground_scale,
        chip_size=options.chips.size,
        chip_options=asdict(options.chips),
        photos=tuple(records),
        splits=splits,
        dots_table=dots_table,
        command=command,
        body_length_px=dict(BODY_LENGTH_PX),
        seed=options.seed,
        refused=tuple(refused),
    )
    record.write(out)
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.dataset", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, action="append",
        help="NOAA sample or Kaggle layout folder (dots); repeat it to take in several (photo ids must be unique)",
    )  # fmt: skip
    boxes = parser.add_argument_group(
        "box labels", "train from boxes instead of dots (COCO JSON, VIAME CSV, YOLO folder, or CSV "
        "image,x1,y1,x2,y2,class[,source]); splits keep each source photo on one side"
    )  # fmt: skip
    boxes.add_argument("--boxes", type=Path, action="append", default=[], help="box labels to train on (repeatable)")
    boxes.add_argument(
        "--val-boxes", type=Path, action="append", default=[],
        help="box labels kept for validation only (the 'all' split validates on them; repeatable)",
    )  # fmt: skip
    boxes.add_argument("--images", type=Path, help="folder the label files' image names are relative to "
                       "(default: each label file's folder)")  # fmt: skip
    boxes.add_argument("--classes", default="", help="the dataset's classes in order, e.g. bull,cow,pup")
    boxes.add_argument("--map", action="append", default=[], metavar="LABEL=CLASS",
                       help="rename a label (other=drop drops it; repeatable)")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    parser.add_argument(
        "--ground-scale", type=float, default=default_of(BuildOptions, "ground_scale"),
        help="scale the model sees, relative to native (default %(default)s)",
    )  # fmt: skip
    parser.add_argument("--photo-scale", type=float, default=1.0, help="scale of Train/TrainDotted (Kaggle layout)")
    parser.add_argument(
        "--chip", type=int, default=default_of(ChipOptions, "size"), help="chip size in pixels (= training imgsz)"
    )
    parser.add_argument("--overlap", type=float, default=default_of(ChipOptions, "overlap"))
    parser.add_argument(
        "--empty-share", type=float, default=default_of(ChipOptions, "empty_share"),
        help="max share of chips without animals",
    )  # fmt: skip
    parser.add_argument(
        "--folds", type=int, default=default_of(BuildOptions, "folds"),
        help="cross-validation folds over photos (0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--folds-holding", default="",
        help="comma-separated classes to spread over every fold, rarest first (e.g. pups,juveniles; default: the "
        "photos shuffled with --seed)",
    )  # fmt: skip
    parser.add_argument("--val-ids", default="", help="comma-separated photo ids for a fixed holdout split")
    parser.add_argument("--photos", default="", help="comma-separated photo ids to use (default: all)")
    parser.add_argument(
        "--dots", type=Path, default=None,
        help="dots table CSV (photo,x,y,class; full-resolution pixels): the best label source where it lists a photo "
        "(default: <data>/dot-coordinates.csv when present)",
    )  # fmt: skip
    parser.add_argument(
        "--prefer-painted", action="store_true", help="train on painted-out dotted copies even where raw photos exist"
    )
    parser.add_argument("--seed", type=int, default=default_of(BuildOptions, "seed"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.boxes:
        return _main_boxes(args, argv)
    if args.data is None:
        parser.error("give --data (a folder of dotted photos) or --boxes (box labels)")
    split = lambda text: tuple(t.strip() for t in text.split(",") if t.strip())  # noqa: E731
    options = BuildOptions(
        ground_scale=args.ground_scale,
        chips=ChipOptions(size=args.chip, overlap=args.overlap, empty_share=args.empty_share),
        folds=args.folds,
        seed=args.seed,
        val_ids=split(args.val_ids),
        photo_ids=split(args.photos),
        dots_table=args.dots,
        folds_holding=split(args.folds_holding),
        prefer_painted=args.prefer_painted,
    )
    started = time.perf_counter()
    command = "python -m training.dataset " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        record = build_dataset(args.data, args.out, options, args.photo_scale, command)
    except (TrainingError, FileNotFoundError) as exc:
        raise SystemExit(f"dataset: {exc}") from None
    print(f"{'photo':>6} {'chips':>6} {'empty':>6}  dots per class {list(SEA_LION_CLASSES)}  method")
    for r in record.photos:
        counts = [r.dot_counts[n] for n in SEA_LION_CLASSES]
        print(f"{r.photo_id:>6} {r.chips:>6} {r.empty_chips:>6}  {counts}  {r.method}")
    for r in record.refused:
        print(f"{r['photo_id']:>6} refused: {r['reason']}")
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f}s; splits: {', '.join(record.splits)}")
    return 0 if record.photos else 1


def _main_boxes(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """``--boxes``: the chip dataset from box labels (``training.boxes``)."""
    from training.boxes import BoxBuildOptions, ClassMap, build_box_dataset, read_boxes

    started = time.perf_counter()
    command = "python -m training.dataset " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        train = [item for path in args.boxes for item in read_boxes(path, args.images)]
        val = [item for path in args.val_boxes for item in read_boxes(path, args.images)]
        labels = sorted({label for item in [*train, *val] for label in item.labels})
        classes = ClassMap.parse(args.classes or ",".join(labels), args.map)
        options = BoxBuildOptions(
            classes=classes, ground_scale=args.ground_scale, photo_scale=args.photo_scale, folds=args.folds,
            seed=args.seed,
        )  # fmt: skip
        chips = ChipOptions(size=args.chip, overlap=args.overlap, empty_share=args.empty_share)
        sources = ", ".join(str(p) for p in [*args.boxes, *args.val_boxes])
        record = build_box_dataset(train, args.out, options, val, chips, command, sources)
    except (TrainingError, FileNotFoundError) as exc:
        raise SystemExit(f"dataset: {exc}") from None
    totals = {name: sum(p.dot_counts[name] for p in record.photos) for name in record.class_names}
    print(f"{len(train)} training and {len(val)} validation images from {len({i.source for i in train})} and "
          f"{len({i.source for i in val})} source photos; {sum(p.chips for p in record.photos)} chips; "
          f"animals per class {totals}; typical lengths (px) {dict(record.body_length_px)}")  # fmt: skip
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f}s; splits: {', '.join(record.splits)}")
    return 0 if record.photos else 1


if __name__ == "__main__":
    raise SystemExit(main())
