"""Box-labelled images (COCO JSON, VIAME CSV, YOLO txt folders, a plain CSV) → the same chip dataset as dots.

Other pinniped surveys label boxes, not dots, and their classes are not the sea lion's. This module reads the
common box formats into one shape (``LabelledImage``), maps their labels onto a class list (``ClassMap``:
``--classes bull,cow,pup --map other=drop``), and writes the chip dataset ``training.dataset`` writes for dots
(chips, whole images at the ground scale, ``photos.json``, splits by **source photo**), so training, evaluation
and publishing take it as they are. Run it as ``python -m training.dataset --boxes FILE ...``.

Formats (each box in the image's own pixels, ``x1,y1,x2,y2``):

* plain CSV, no header: ``image,x1,y1,x2,y2,class[,source]`` (the pinniped paper's ``annotations_final.csv``);
* COCO JSON (``images``, ``annotations`` with ``bbox`` = x, y, w, h, ``categories``);
* VIAME CSV (``# 1: Detection or Track-id, 2: Video or Image Identifier, ...``; the class with the highest score);
* a YOLO folder: ``images/`` and ``labels/`` (``class cx cy w h``, normalised) with ``data.yaml`` or ``classes.txt``.

The source photo (the unit of every split) is the CSV's last column where given; otherwise the image itself.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detector.counting.images import rescale
from training.chips import ChipOptions, write_chips_of, write_split
from training.io import DatasetRecord, PhotoEntry, TrainingError, read_rgb, write_photo_dots

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
DROP = "drop"


@dataclass(frozen=True)
class LabelledImage:
    """One image with its boxes (``x1, y1, x2, y2`` in the image's pixels) and their labels as the file names them."""

    image: Path
    boxes: np.ndarray
    labels: tuple[str, ...]
    source: str  # the source photo: every image of one source lands on the same side of a split

    @property
    def photo_id(self) -> str:
        return self.image.stem


def _image_path(name: str, root: Path) -> Path:
    path = Path(name)
    return path if path.is_absolute() else root / path


def _labelled(
    root: Path,
    names: Mapping[Any, str],
    boxes: Mapping[Any, list],
    labels: Mapping[Any, list],
    sources: Mapping[Any, str],
) -> list[LabelledImage]:
    """The images a label file lists (by key: its file name, or its id), with their boxes gathered per image."""
    return [
        LabelledImage(
            _image_path(name, root),
            np.array(boxes[key], dtype=np.float32).reshape(-1, 4),
            tuple(labels[key]),
            sources[key],
        )  # fmt: skip
        for key, name in names.items()
    ]


def read_plain_csv(path: Path, image_root: Path | None = None) -> list[LabelledImage]:
    """``image,x1,y1,x2,y2,class[,source]`` rows (no header; a header row naming ``x1`` is skipped).

    A row with an empty box (``image,,,,,``) lists an image without animals, as keras-retinanet's format does.
    """
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    boxes: dict[str, list[list[float]]] = {}
    labels: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    with path.open(newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or (line == 1 and len(row) > 1 and row[1].strip().lower() == "x1"):
                continue
            if len(row) < 6:
                raise TrainingError(f"{path}, line {line}: expected image,x1,y1,x2,y2,class[,source], got {row}")
            name = row[0].strip()
            boxes.setdefault(name, [])
            labels.setdefault(name, [])
            sources.setdefault(name, row[6].strip() if len(row) > 6 and row[6].strip() else Path(name).stem)
            if not "".join(row[1:6]).strip():
                continue
            try:
                box = [float(v) for v in row[1:5]]
            except ValueError:
                raise TrainingError(f"{path}, line {line}: box coordinates are not numbers: {row[1:5]}") from None
            boxes[name].append(box)
            labels[name].append(row[5].strip())
    return _labelled(root, {name: name for name in boxes}, boxes, labels, sources)


def read_coco(path: Path, image_root: Path | None = None) -> list[LabelledImage]:
    """A COCO detection file: every image it lists, with its boxes (``bbox`` is x, y, width, height)."""
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    try:
        data = json.loads(path.read_text())
        categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        images = {int(i["id"]): str(i["file_name"]) for i in data["images"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise TrainingError(f"{path} is not a COCO detection file (images, annotations, categories): {exc}") from None
    boxes: dict[int, list[list[float]]] = {i: [] for i in images}
    labels: dict[int, list[str]] = {i: [] for i in images}
    for annotation in data.get("annotations", []):
        image_id = int(annotation["image_id"])
        if image_id not in images:
            raise TrainingError(f"{path}: annotation {annotation.get('id')} names image {image_id}, not listed")
        x, y, w, h = (float(v) for v in annotation["bbox"])
        boxes[image_id].append([x, y, x + w, y + h])
        labels[image_id].append(categories[int(annotation["category_id"])])
    return _labelled(root, images, boxes, labels, {i: Path(name).stem for i, name in images.items()})


def read_viame(path: Path, image_root: Path | None = None) -> list[LabelledImage]:
    """A VIAME CSV: ``id, image, frame, x1, y1, x2, y2, confidence, length, (class, score)...``; ``#`` lines skipped.

    Each detection takes its highest-scoring class.
    """
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    boxes: dict[str, list[list[float]]] = {}
    labels: dict[str, list[str]] = {}
    with path.open(newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 11:
                raise TrainingError(f"{path}, line {line}: a VIAME row needs at least 11 columns (one class), got "
                                    f"{len(row)}")  # fmt: skip
            name = row[1].strip()
            pairs = [(row[i].strip(), float(row[i + 1])) for i in range(9, len(row) - 1, 2) if row[i].strip()]
            if not pairs:
                raise TrainingError(f"{path}, line {line}: no class in columns 10 and after")
            boxes.setdefault(name, []).append([float(v) for v in row[3:7]])
            labels.setdefault(name, []).append(max(pairs, key=lambda pair: pair[1])[0])
    return _labelled(root, {name: name for name in boxes}, boxes, labels, {name: Path(name).stem for name in boxes})


def _yolo_names(folder: Path) -> list[str]:
    import yaml

    for candidate in (folder / "data.yaml", folder / "classes.txt", folder / "obj.names"):
        if candidate.is_file():
            if candidate.suffix == ".yaml":
                names = (yaml.safe_load(candidate.read_text()) or {}).get("names", [])
                return [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
            return [line.strip() for line in candidate.read_text().splitlines() if line.strip()]
    raise TrainingError(f"{folder}: a YOLO folder needs data.yaml (names) or classes.txt to name its classes")


def read_yolo(folder: Path) -> list[LabelledImage]:
    """A YOLO folder: every image under ``images/`` with its ``labels/<stem>.txt`` (none: an empty image)."""
    folder = Path(folder)
    names = _yolo_names(folder)
    image_dir = folder / "images" if (folder / "images").is_dir() else folder
    result = []
    for image in sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        relative = image.relative_to(image_dir).with_suffix(".txt")
        label_file = folder / "labels" / relative if (folder / "labels").is_dir() else image.with_suffix(".txt")
        text = label_file.read_text() if label_file.is_file() else ""
        rows = [line.split() for line in text.splitlines() if line.strip()]
        height, width = cv2.imread(str(image), cv2.IMREAD_UNCHANGED).shape[:2] if rows else (0, 0)
        boxes, labels = [], []
        for row in rows:
            index, cx, cy, w, h = int(row[0]), *(float(v) for v in row[1:5])
            if not 0 <= index < len(names):
                raise TrainingError(f"{label_file}: class {index} is not one of the {len(names)} named classes")
            boxes.append([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
            labels.append(names[index])
        result.append(LabelledImage(image, np.array(boxes, dtype=np.float32).reshape(-1, 4), tuple(labels), image.stem))
    return result


def read_boxes(path: Path, image_root: Path | None = None) -> list[LabelledImage]:
    """Any supported box file or folder, recognised by its shape (folder: YOLO; .json: COCO; .csv: VIAME or plain)."""
    path = Path(path)
    if path.is_dir():
        return read_yolo(path)
    if not path.is_file():
        raise TrainingError(f"box labels {path} not found")
    if path.suffix.lower() == ".json":
        return read_coco(path, image_root)
    with path.open(newline="") as handle:
        first = next((row for row in csv.reader(handle) if row), [])
    if first and (first[0].lstrip().startswith("#") or (len(first) >= 11 and first[0].strip().isdigit())):
        return read_viame(path, image_root)
    return read_plain_csv(path, image_root)


@dataclass(frozen=True)
class ClassMap:
    """The dataset's classes, in order, and what each label of the files becomes (a class, or dropped).

    A label not named anywhere is an error naming it, so a typo never silently loses animals.
    """

    classes: tuple[str, ...]
    renames: Mapping[str, str] = field(default_factory=dict)  # label → a class, or "drop"

    @classmethod
    def parse(cls, classes: str | Sequence[str], maps: Iterable[str] = ()) -> ClassMap:
        names = tuple(c.strip() for c in (classes.split(",") if isinstance(classes, str) else classes) if c.strip())
        renames = {}
        for item in maps:
            label, sep, target = item.partition("=")
            if not sep or not label.strip() or not target.strip():
                raise TrainingError(f"--map {item!r}: expected LABEL=CLASS or LABEL=drop")
            if target.strip() != DROP and target.strip() not in names:
                raise TrainingError(f"--map {item!r}: {target.strip()!r} is not one of --classes {','.join(names)}")
            renames[label.strip()] = target.strip()
        if not names:
            raise TrainingError("--classes names no class")
        return cls(names, renames)

    def index(self, label: str) -> int | None:
        target = self.renames.get(label, label)
        if target == DROP:
            return None
        if target not in self.classes:
            raise TrainingError(
                f"label {label!r} is not one of --classes {','.join(self.classes)}: add it there or map it "
                f"(--map {label}=CLASS, or --map {label}=drop)"
            )
        return self.classes.index(target)


def typical_lengths(images: Sequence[LabelledImage], classes: ClassMap) -> dict[str, float]:
    """Each class's median longest box side, in the images' pixels: the product's typical body length."""
    sides: dict[str, list[float]] = {c: [] for c in classes.classes}
    for item in images:
        for box, label in zip(item.boxes, item.labels, strict=True):
            index = classes.index(label)
            if index is not None:
                sides[classes.classes[index]].append(float(max(box[2] - box[0], box[3] - box[1])))
    return {c: round(float(np.median(v)), 1) for c, v in sides.items() if v}


@dataclass(frozen=True)
class BoxBuildOptions:
    classes: ClassMap
    ground_scale: float = 0.5  # scale the model sees, relative to the images' own (photo_scale) resolution
    photo_scale: float = 1.0  # the images' scale relative to native survey resolution
    folds: int = 4
    seed: int = 0


def _counts(item: LabelledImage, classes: ClassMap) -> dict[str, int]:
    found = Counter(classes.index(label) for label in item.labels)
    return {name: found.get(i, 0) for i, name in enumerate(classes.classes)}


def folds_by_source(images: Sequence[LabelledImage], folds: int, seed: int) -> list[list[str]]:
    """Photo ids in ``folds`` validation groups, whole source photos at a time (greedy on image counts)."""
    by_source: dict[str, list[str]] = {}
    for item in images:
        by_source.setdefault(item.source, []).append(item.photo_id)
    if len(by_source) < folds:
        raise TrainingError(f"{len(by_source)} source photos cannot make {folds} folds")
    sources = sorted(by_source)
    random.Random(seed).shuffle(sources)
    sources.sort(key=lambda s: -len(by_source[s]))  # stable: ties keep the shuffled order
    groups: list[list[str]] = [[] for _ in range(folds)]
    for source in sources:
        min(groups, key=len).extend(by_source[source])
    return [sorted(g) for g in groups]


def build_box_dataset(
    train: Sequence[LabelledImage],
    out: Path,
    options: BoxBuildOptions,
    val: Sequence[LabelledImage] = (),
    chips: ChipOptions | None = None,
    command: str = "",
    source: str = "",
) -> DatasetRecord:
    """Write the chip dataset of box-labelled images (see ``training.dataset`` for the layout).

    ``val``: images kept for validation only (another split of the same survey): the ``all`` split trains on
    ``train`` and validates on them. Without them, ``all`` validates on one training image (a progress monitor).
    Folds group whole source photos.
    """
    chip_options = chips or ChipOptions()
    chip_options.check_trainable()
    out = Path(out)
    (out / "photos").mkdir(parents=True, exist_ok=True)
    seen: dict[str, Path] = {}
    for item in [*train, *val]:
        if item.photo_id in seen and seen[item.photo_id] != item.image:
            raise TrainingError(f"two images share the name {item.photo_id}: {seen[item.photo_id]} and {item.image}")
        seen[item.photo_id] = item.image
    overlap = {i.source for i in train} & {i.source for i in val}
    if overlap:
        raise TrainingError(f"source photos {sorted(overlap)[:5]} have images in both the training and validation "
                            "files: split by source photo")  # fmt: skip
    factor = options.ground_scale / options.photo_scale
    records = []
    started = time.perf_counter()
    for item in [*train, *val]:
        if not item.image.is_file():
            raise TrainingError(f"image {item.image} (listed in the box labels) not found")
        class_ids = [options.classes.index(label) for label in item.labels]
        keep = np.array([c is not None for c in class_ids], dtype=bool)
        image = rescale(read_rgb(item.image), factor)
        boxes = item.boxes[keep] * factor if len(item.boxes) else item.boxes
        height, width = image.shape[:2]
        boxes = np.clip(boxes, 0, [width, height, width, height]) if len(boxes) else boxes.reshape(-1, 4)
        class_id = np.array([c for c in class_ids if c is not None], dtype=np.int64)
        excluded = np.zeros(image.shape[:2], dtype=bool)
        cv2.imwrite(str(out / "photos" / f"{item.photo_id}.jpg"), image[:, :, ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, chip_options.jpeg_quality])  # fmt: skip
        written = write_chips_of(item.photo_id, image, boxes, class_id, excluded, out, chip_options, options.seed)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2 if len(boxes) else np.zeros((0, 2))
        write_photo_dots(out, item.photo_id, centres, [options.classes.classes[c] for c in class_id])
        counts = _counts(item, options.classes)
        records.append(
            PhotoEntry(
                photo_id=item.photo_id,
                image=f"photos/{item.photo_id}.jpg",
                size=(int(width), int(height)),
                method=f"labels: boxes of {item.image.name} (source photo {item.source})",
                dot_counts=counts,
                official_counts=counts,
                **written,
            )
        )
    logger.info("%d images → chips in %.0fs", len(records), time.perf_counter() - started)
    train_ids = [i.photo_id for i in train]
    val_ids = [i.photo_id for i in val]
    names = options.classes.classes
    if val_ids:
        splits = {"all": str(write_split(out, "all", train_ids, val_ids, class_names=names))}
    else:
        splits = {"all": str(write_split(out, "all", train_ids, train_ids[:1], monitor_only=True, class_names=names))}
    if options.folds >= 2:
        for k, held in enumerate(folds_by_source(train, options.folds, options.seed)):
            rest = [i for i in train_ids if i not in set(held)]
            splits[f"fold{k}"] = str(write_split(out, f"fold{k}", rest, held, class_names=names))
    lengths = typical_lengths(train, options.classes)  # in the images' pixels; the record keeps native ones
    record = DatasetRecord(
        source=source,
        ground_scale=options.ground_scale,
        chip_size=chip_options.size,
        chip_options=asdict(chip_options),
        photos=tuple(records),
        splits=splits,
        command=command,
        body_length_px={c: round(v / options.photo_scale, 1) for c, v in lengths.items()},
        class_names=names,
        seed=options.seed,
    )
    record.write(out)
    return record
