"""What the Review tab and the ``/review`` endpoint do, without Gradio: the annotator's value for a count, the live
table of counts and edits, and saving a review with its exports (:mod:`detector.review`)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from detector.classes import SEA_LION_CLASSES, class_color
from detector.counting.metadata import read_metadata
from detector.counting.results import CountResult
from detector.files import sha256_bytes
from detector.review.record import Edits, PhotoAnnotations, Review
from detector.review.store import ExportFiles, SavedReview, read_annotations, save_review, write_exports
from sealion_app.present import pretty

REVIEW_COLUMNS = ["class", "model", "reviewed", "added", "removed", "reclassified"]
SHORT_LABELS = {  # the annotator draws a label on every box: short words keep a crowded photo readable
    "adult_males": "male",
    "subadult_males": "subadult",
    "adult_females": "female",
    "juveniles": "juvenile",
    "pups": "pup",
}


# The annotator draws each label as a white box of 20 screen px by the text's width (12 px Arial: about 6.5 px a
# character, plus 10) on the top edge of its box; the Review tab first shows a photo whole in about 1300 x 820 px.
LABEL_HEIGHT_PX, LABEL_CHAR_PX, LABEL_PAD_PX = 20, 6.5, 10
SHOWN_WHOLE_PX = (1300, 820)
LABELS_OVERLAP_SHARE = 0.25  # labels start hidden when more than this share of them would cover another label


def labels_overlap(xyxy: Any, labels: Sequence[str], image_size: tuple[int, int]) -> float:
    """The share of boxes whose label, as the annotator draws it with the photo shown whole, overlaps another
    box's label: what makes labels on clustered animals unreadable, whatever the number of boxes."""
    import numpy as np

    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    if len(boxes) < 2:
        return 0.0
    scale = min(SHOWN_WHOLE_PX[0] / max(image_size[0], 1), SHOWN_WHOLE_PX[1] / max(image_size[1], 1))
    height = LABEL_HEIGHT_PX / scale
    widths = np.array([(LABEL_CHAR_PX * len(label) + LABEL_PAD_PX) / scale for label in labels])
    left, top = boxes[:, 0], boxes[:, 1] - height
    right, bottom = left + widths, boxes[:, 1]
    cell = max(float(widths.max()), height)  # a label overlaps only labels in its own or a neighbouring cell
    grid: dict[tuple[int, int], list[int]] = {}
    for i, (x, y) in enumerate(zip((left // cell).astype(int), (top // cell).astype(int), strict=True)):
        grid.setdefault((x, y), []).append(i)
    covered = np.zeros(len(boxes), dtype=bool)
    for (x, y), members in grid.items():
        near = [j for dx in (-1, 0, 1) for dy in (-1, 0, 1) for j in grid.get((x + dx, y + dy), [])]
        for i in members:
            others = np.array([j for j in near if j != i], dtype=int)
            if len(others):
                hit = (left[others] < right[i]) & (left[i] < right[others])
                hit &= (top[others] < bottom[i]) & (top[i] < bottom[others])
                covered[i] = bool(hit.any())
    return float(covered.mean())


def labels_shown_for(result: CountResult) -> bool:
    """Whether the Review tab opens a count with class labels on: off where more than LABELS_OVERLAP_SHARE of the
    labels would pile onto each other (the box colour still gives the class), decided by overlap, not by count."""
    labels = [short_label(result.class_names[int(c)]) for c in result.class_id]
    return labels_overlap(result.xyxy, labels, result.image_size) <= LABELS_OVERLAP_SHARE


def by_frequency(class_names: Sequence[str], animals: Mapping[str, int]) -> list[int]:
    """The classes' indices, the most numerous first (``animals``: class name or its pretty name → count): the
    annotator gives a new box the first of its labels, so the likeliest class comes first."""
    count = {name: animals.get(name, animals.get(pretty(name), 0)) for name in class_names}
    return sorted(range(len(class_names)), key=lambda i: -count[class_names[i]])


def short_label(class_name: str) -> str:
    return SHORT_LABELS.get(class_name, class_name)


def class_of(label: str) -> str:
    """The class name of an annotator label (a class name is itself)."""
    return next((name for name, short in SHORT_LABELS.items() if short == label), label)


def annotator_value(photo_jpeg: Path | str, result: CountResult, labels: bool = True) -> dict[str, Any]:
    """The image annotator's value: the photo (as the detector decoded it) and one box per detection in its class's
    colour, labelled unless ``labels`` is False (the annotator draws a label only on a box that has one)."""
    return {"image": str(photo_jpeg), "boxes": annotator_boxes(PhotoAnnotations.from_result(result), labels)}


def annotator_boxes(annotations: PhotoAnnotations, labels: bool = True) -> list[dict[str, Any]]:
    names = annotations.class_names
    return [
        {
            "xmin": float(box[0]),
            "ymin": float(box[1]),
            "xmax": float(box[2]),
            "ymax": float(box[3]),
            **box_style(names[int(cid)], int(cid), labels),
        }
        for box, cid in zip(annotations.xyxy, annotations.class_id, strict=True)
    ]


def box_style(name: str, index: int, labelled: bool) -> dict[str, Any]:
    """An annotator box's label and colour for class ``name`` (number ``index``): its short label and colour, or no
    label and :func:`unlabelled_color`, which still tells its class."""
    if labelled:
        return {"label": short_label(name), "color": class_color(name, index)}
    return {"label": "", "color": unlabelled_color(name, index)}


def unlabelled_color(name: str, index: int) -> tuple[int, int, int]:
    """The colour of a class's box shown without its label: the class colour with blue's lowest bit flipped. It
    looks the same, and it tells the box from a new one, which the annotator draws in the first class's colour
    before its class is picked."""
    red, green, blue = class_color(name, index)
    return red, green, blue ^ 1


def _classes_by_color(class_names: Sequence[str]) -> dict[tuple[int, ...], str]:
    return {unlabelled_color(name, i): name for i, name in enumerate(class_names)}


def _color_key(color: Any) -> tuple[int, ...] | None:
    try:
        return tuple(int(v) for v in color)
    except (TypeError, ValueError):
        return None


def class_of_box(box: Mapping[str, Any], class_names: Sequence[str]) -> str | None:
    """The class of an annotator box: its label's, else (a box shown without its label) its colour's
    (:func:`unlabelled_color`); None for a new box whose class is not picked yet."""
    if box.get("label"):
        return class_of(box["label"])
    return _classes_by_color(class_names).get(_color_key(box.get("color")) or ())


def with_labels(boxes: Sequence[Mapping[str, Any]], class_names: Sequence[str], show: bool) -> list[dict[str, Any]]:
    """The annotator's boxes with their class labels shown or hidden; each box keeps its class (while its label is
    hidden, its colour, :func:`unlabelled_color`, identifies it). A box without a class is left as it is."""
    out = []
    for box in boxes:
        name = class_of_box(box, class_names)
        if name is None or name not in class_names:
            out.append(dict(box))
            continue
        out.append({**box, **box_style(name, list(class_names).index(name), show)})
    return out


def parse_annotations(value: Any, original: CountResult, photo: str) -> PhotoAnnotations:
    """The reviewer's boxes for ``photo``: the annotator's value (``{"boxes": [...]}``), a list of boxes, or their
    JSON text (``[{"xyxy": [x1, y1, x2, y2], "class_name": "pups"}, ...]``, also ``{"boxes": [...]}``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("annotations: give the reviewed boxes as JSON ([] for a photo without animals)")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"annotations: not valid JSON ({exc})") from None
    if isinstance(value, Mapping) and value.get("orientation"):
        raise ValueError("annotations: the photo is rotated in the annotator; rotate it back upright first")
    if isinstance(value, Mapping) and "boxes" not in value:
        raise ValueError('annotations: expected a list of boxes, or {"boxes": [...]}; got an object without "boxes"')
    boxes = (value["boxes"] or []) if isinstance(value, Mapping) else value
    if not isinstance(boxes, Sequence) or isinstance(boxes, str):
        raise ValueError('annotations: expected a list of boxes [{"xyxy": [x1, y1, x2, y2], "class_name": "pups"}]')
    boxes = [_named(box, original.class_names) for box in boxes]
    try:
        return PhotoAnnotations.from_boxes(photo, boxes, original.class_names, original.image_size)
    except ValueError as exc:
        raise ValueError(f"annotations: {exc}") from None


def _named(box: Any, class_names: Sequence[str]) -> Any:
    """An annotator box with its class name as the label (from a short label, or from the colour of a box shown
    without its label); API boxes (``class_name``) and malformed ones pass through for the parser's errors."""
    if not isinstance(box, Mapping) or any(box.get(k) not in (None, "") for k in ("class_name", "class", "class_id")):
        return box
    name = class_of_box(box, class_names)
    return {**box, "label": name} if name else box


def unlabelled(value: Any, class_names: Sequence[str] = SEA_LION_CLASSES) -> int:
    """Boxes drawn on the annotator that have no class yet (the class dialog is still open): no label, and not in
    a class's colour (the boxes of a photo shown without labels)."""
    boxes = value.get("boxes") if isinstance(value, Mapping) else None
    return sum(1 for box in boxes or [] if isinstance(box, Mapping) and class_of_box(box, class_names) is None)


def original_from_json(data: Any) -> CountResult:
    """The count under review from its JSON (the ``/count`` answer, or a saved ``.count.json``)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ValueError(f"original: not valid JSON ({exc})") from None
    if not isinstance(data, Mapping) or "class_names" not in data or "image_size" not in data:
        raise ValueError("original: expected the JSON result of /count (with class_names, image_size, detections)")
    try:
        return CountResult.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"original: not a count result ({type(exc).__name__}: {exc})") from None


def same_photo(name: str, decoded_jpeg: Path, original: CountResult) -> bool:
    """Whether the photo (its upload name, and its size as decoded) is the one ``original`` counted."""
    with Image.open(decoded_jpeg) as image:
        size = image.size
    return (not original.source or name == original.source) and size == original.image_size


def review_table(original: CountResult, annotations: PhotoAnnotations) -> tuple[pd.DataFrame, Edits]:
    """Per class: the model's count, the reviewed count, and the edits; a total row last."""
    edits = Edits.between(PhotoAnnotations.from_result(original, annotations.photo), annotations)
    model, now = original.counts, annotations.counts
    rows = [
        [pretty(n), model[n], now[n], edits.added[n], edits.removed[n], edits.reclassified[n]]
        for n in original.class_names
    ]
    totals = edits.totals
    rows.append(["total", original.total, len(annotations), totals["added"], totals["removed"], totals["reclassified"]])
    return pd.DataFrame(rows, columns=REVIEW_COLUMNS), edits


def edits_line(original: CountResult, annotations: PhotoAnnotations, edits: Edits) -> str:
    model = original.model.version if original.model else "?"
    return (
        f"**{len(annotations)}** animals after review (model **{model}** counted {original.total}) · {edits.describe()}"
    )


@dataclass(frozen=True)
class ReviewOutcome:
    review: Review
    saved: SavedReview
    files: ExportFiles

    def summary(self) -> dict[str, Any]:
        """The JSON answer of ``/review``: the review without the embedded original (no server paths)."""
        data = self.review.to_dict()
        data.pop("original")
        data["original_detections"] = self.review.original.total
        data["saved_as"] = f"{self.saved.review_json.parent.name}/{self.saved.review_json.name}"
        return data


def save_and_export(
    photo: Path,
    name: str,
    annotations: PhotoAnnotations,
    original: CountResult,
    reviewer: str,
    reviews_dir: Path,
    out_dir: Path | None = None,
) -> ReviewOutcome:
    """Store the review next to the original count in ``reviews_dir`` and write its four exports to a fresh folder
    (``sealion-count-*``: pruned by the app once Gradio has cached them)."""
    data = Path(photo).read_bytes()
    review = Review(
        annotations, original, reviewer=reviewer, photo_sha256=sha256_bytes(data), metadata=read_metadata(data)
    )
    saved = save_review(reviews_dir, review)
    folder = Path(tempfile.mkdtemp(prefix="sealion-count-", dir=out_dir))
    files = write_exports(folder, [review], stem=f"{Path(name).stem or 'photo'}_reviewed")
    return ReviewOutcome(review, saved, files)


def imported_annotations(path: Path, original: CountResult, photo: str) -> PhotoAnnotations:
    """The annotations of ``photo`` in a COCO JSON or VIAME CSV file, for the annotator. The photo is found by its
    file name (or its name without the extension: a tool may have stored a converted copy)."""
    found = read_annotations(Path(path), original.class_names)
    match = [a for a in found if Path(a.photo).name == Path(photo).name] or [
        a for a in found if Path(a.photo).stem == Path(photo).stem
    ]
    if not match:
        names = ", ".join(sorted({a.photo for a in found})[:5]) or "none"
        raise ValueError(f"{Path(path).name}: no annotations for {photo} (photos in the file: {names})")
    return PhotoAnnotations.from_boxes(photo, match[0].to_boxes(), original.class_names, original.image_size)
