"""The formats reviews travel in, as text; pure (no file I/O): the corrected-counts table, a dots table
(:func:`dots_csv`, what ``training.dataset.read_dots_table`` reads), COCO detection JSON (:func:`to_coco` /
:func:`from_coco`) and VIAME CSV, the format of VIAME and its DIVE annotator (:func:`to_viame_csv` /
:func:`from_viame_csv`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from detector.classes import SEA_LION_CLASSES, animals_described, supercategory
from detector.counting.records import counts_header
from detector.review.record import DECIMALS, PhotoAnnotations, Review, coordinate_text, review_columns

DOTS_COLUMNS = ("photo", "x", "y", "class", "photo_scale")
VIAME_HEADER = (
    "# 1: Detection or Track-id,2: Video or Image Identifier,3: Unique Frame Identifier,"
    "4-7: Img-bbox(TL_x,TL_y,BR_x,BR_y),8: Detection or Length Confidence,9: Target Length (0 or -1 if invalid),"
    "10-11+: Repeated Species,Confidence Pairs or Attributes"
)


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def reviewed_counts_csv(reviews: Sequence[Review]) -> str:
    """Corrected counts, one row per reviewed photo: the batch CSV's columns plus :func:`review_columns`."""
    class_names = reviews[0].annotations.class_names if reviews else SEA_LION_CLASSES
    header = [*counts_header(class_names), *review_columns(class_names)]
    return _csv_text(header, (review.csv_row() for review in reviews))


def dots_csv(items: Iterable[Review | tuple[PhotoAnnotations, float]]) -> str:
    """A dots table (photo, x, y, class, photo_scale; one row per animal, survey-original pixels) of reviews or of
    (annotations, photo scale) pairs; ``training.dataset.read_dots_table`` reads it."""
    rows: list[dict[str, Any]] = []
    for item in items:
        rows.extend(item.dots_rows() if isinstance(item, Review) else item[0].dots_rows(item[1]))
    return _csv_text(DOTS_COLUMNS, ([row[c] for c in DOTS_COLUMNS] for row in rows))


def to_coco(items: Sequence[PhotoAnnotations], info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """COCO detection JSON: images (id from 1, file_name, width, height), annotations (bbox [x, y, w, h]),
    categories (id from 1, in class order). Photos without animals are listed with no annotations."""
    class_names = items[0].class_names if items else SEA_LION_CLASSES
    images, annotations = [], []
    for image_id, item in enumerate(items, start=1):
        if item.image_size is None:
            raise ValueError(f"{item.photo}: COCO needs the photo's width and height")
        if item.class_names != class_names:
            raise ValueError(f"{item.photo}: all photos must have the same classes")
        images.append(
            {"id": image_id, "file_name": item.photo, "width": item.image_size[0], "height": item.image_size[1]}
        )
        for box, cid in zip(item.xyxy, item.class_id, strict=True):
            width, height = round(box[2] - box[0], DECIMALS), round(box[3] - box[1], DECIMALS)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(cid) + 1,
                    "bbox": [float(box[0]), float(box[1]), float(width), float(height)],
                    "area": round(float(width * height), DECIMALS),
                    "iscrowd": 0,
                }
            )
    return {
        "info": dict(info or {"description": f"{animals_described(class_names)} annotations"}),
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": name, "supercategory": supercategory(class_names)}
            for i, name in enumerate(class_names)
        ],
    }


def from_coco(
    data: Mapping[str, Any], class_names: Sequence[str] = SEA_LION_CLASSES, source: str = "COCO JSON"
) -> list[PhotoAnnotations]:
    """Annotations per image of a COCO detection JSON; categories are matched to ``class_names`` by name."""
    names = tuple(class_names)
    try:
        categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        images = {int(i["id"]): i for i in data["images"]}
        annotations = list(data.get("annotations") or [])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{source}: not a COCO detection file (needs images and categories with ids; {exc})") from None
    unknown = sorted(set(categories.values()) - set(names))
    if unknown:
        raise ValueError(f"{source}: categories {unknown} are not classes of this model ({', '.join(names)})")
    boxes: dict[int, list[list[float]]] = {image_id: [] for image_id in images}
    classes: dict[int, list[int]] = {image_id: [] for image_id in images}
    for index, ann in enumerate(annotations):
        try:
            image_id, category = int(ann["image_id"]), int(ann["category_id"])
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{source}: annotation {index}: needs image_id, category_id and bbox [x, y, w, h] ({exc})"
            ) from None
        if image_id not in images:
            raise ValueError(f"{source}: annotation {index}: image_id {image_id} is not among the images")
        if category not in categories:
            raise ValueError(f"{source}: annotation {index}: category_id {category} is not among the categories")
        boxes[image_id].append([x, y, round(x + w, DECIMALS), round(y + h, DECIMALS)])
        classes[image_id].append(names.index(categories[category]))
    result = []
    for image_id, image in images.items():
        size = (int(image["width"]), int(image["height"])) if image.get("width") and image.get("height") else None
        result.append(
            PhotoAnnotations(
                str(image["file_name"]),
                np.array(boxes[image_id]).reshape(-1, 4),
                np.array(classes[image_id]),
                names,
                size,
            )
        )
    return result


def to_viame_csv(items: Sequence[PhotoAnnotations], confidence: float = 1.0) -> str:
    """VIAME CSV (DIVE): one detection per line — track id, image name, frame id (the photo's index), TL_x, TL_y,
    BR_x, BR_y, confidence, target length (-1: not measured), then the class and its confidence."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    buffer.write(VIAME_HEADER + "\n")
    track = 0
    for frame, item in enumerate(items):
        for box, cid in zip(item.xyxy, item.class_id, strict=True):
            writer.writerow(
                [
                    track,
                    item.photo,
                    frame,
                    *(coordinate_text(v) for v in box),
                    coordinate_text(confidence),
                    -1,
                    item.class_names[int(cid)],
                    coordinate_text(confidence),
                ]
            )
            track += 1
    return buffer.getvalue()


def from_viame_csv(
    text: str,
    class_names: Sequence[str] = SEA_LION_CLASSES,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    source: str = "VIAME CSV",
) -> list[PhotoAnnotations]:
    """Annotations per image of a VIAME CSV (comment lines start with ``#``). Each line's class is its species of
    highest confidence (attributes, fields starting with ``(``, are skipped). VIAME CSV does not store the photo's
    size: give ``image_sizes`` (name → (width, height)) to have it, and to get back photos without animals."""
    names = tuple(class_names)
    sizes = dict(image_sizes or {})
    boxes: dict[str, list[list[float]]] = {name: [] for name in sizes}
    classes: dict[str, list[int]] = {name: [] for name in sizes}
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        where = f"{source}, line {line_no}"
        if len(row) < 9:
            raise ValueError(
                f"{where}: a detection needs at least 9 columns (track id, image, frame, TL_x, TL_y, BR_x, BR_y, "
                f"confidence, length), got {len(row)}"
            )
        try:
            x1, y1, x2, y2 = (float(v) for v in row[3:7])
        except ValueError:
            raise ValueError(f"{where}: the box (columns 4-7) must be numbers, got {row[3:7]}") from None
        pairs = [cell.strip() for cell in row[9:] if not cell.strip().startswith("(")]
        species = []
        for k in range(0, len(pairs) - 1, 2):
            try:
                species.append((float(pairs[k + 1]), pairs[k]))
            except ValueError:
                raise ValueError(
                    f"{where}: species {pairs[k]!r} must be followed by its confidence, got {pairs[k + 1]!r}"
                ) from None
        if not species:
            raise ValueError(f"{where}: no species (columns 10 and 11: class name, confidence)")
        name = max(species, key=lambda pair: pair[0])[1]  # the first of the highest
        if name not in names:
            raise ValueError(f"{where}: species {name!r} is not a class of this model ({', '.join(names)})")
        photo = row[1].strip()
        boxes.setdefault(photo, []).append([x1, y1, x2, y2])
        classes.setdefault(photo, []).append(names.index(name))
    return [
        PhotoAnnotations(
            photo, np.array(boxes[photo]).reshape(-1, 4), np.array(classes[photo]), names, sizes.get(photo)
        )
        for photo in boxes
    ]
