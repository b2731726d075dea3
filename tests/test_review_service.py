"""The Review tab's work without Gradio (sealion_app.review): the annotator's boxes and labels, the live table,
imports from other tools, and saving with the exports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detector.classes import SEA_LION_CLASSES
from detector.review.formats import to_coco, to_viame_csv
from detector.review.record import PhotoAnnotations
from detector.review.store import load_reviews
from sealion_app import present
from sealion_app import review as service
from sealion_app.service import photo_jpeg
from tests.test_annotations import PHOTO, model_count


def test_the_annotator_shows_short_labels_and_gives_back_class_names(tmp_path):
    original = model_count()
    value = service.annotator_value(photo_jpeg(PHOTO, tmp_path), original)
    assert [box["label"] for box in value["boxes"]] == ["female", "female", "female", "pup"]
    assert value["boxes"][0]["color"] == (205, 120, 40)
    value["boxes"][3]["label"] = "juvenile"  # relabelled in the dialog
    del value["boxes"][2]
    annotations = service.parse_annotations({**value, "orientation": 0}, original, PHOTO.name)
    assert annotations.counts == {**dict.fromkeys(SEA_LION_CLASSES, 0), "adult_females": 2, "juveniles": 1}
    table, edits = service.review_table(original, annotations)
    rows = {row[0]: list(row[1:]) for row in table.itertuples(index=False)}
    assert rows["adult females"] == [3, 2, 0, 1, 0] and rows["pups"] == [1, 0, 0, 0, 1]
    assert rows["total"] == [4, 3, 0, 1, 1] and edits.describe() == "0 added, 1 removed, 1 reclassified"
    assert service.unlabelled({"boxes": [{"label": ""}, {"label": "pup"}]}) == 1


def test_labels_hidden_on_a_dense_photo_keep_each_box_class_by_its_colour(tmp_path):
    """Without labels (clustered animals, whose labels would pile up) a box's class is its colour; showing the labels
    again gives every box its class's label, and a box drawn but not yet classed stays unclassed."""
    original = model_count()
    value = service.annotator_value(photo_jpeg(PHOTO, tmp_path), original, labels=False)
    assert [box["label"] for box in value["boxes"]] == ["", "", "", ""]
    assert service.unlabelled(value) == 0
    assert service.parse_annotations(value, original, PHOTO.name).counts == original.counts
    assert value["boxes"][0]["color"] == (205, 120, 41)  # the female colour, told apart from a new box's
    value["boxes"][0]["label"] = "pup"  # relabelled in the dialog: the label wins over the old colour
    new = {"xmin": 5, "ymin": 5, "xmax": 20, "ymax": 20, "label": "", "color": (230, 25, 25)}  # the annotator's
    value["boxes"].append(new)  # new box, in the first class's colour, its class not picked yet
    assert service.unlabelled(value) == 1
    shown = service.with_labels(value["boxes"], SEA_LION_CLASSES, show=True)
    assert [box["label"] for box in shown] == ["pup", "female", "female", "pup", ""]
    assert shown[0]["color"] == (40, 210, 40) and shown[1]["color"] == (205, 120, 40)  # the class colours
    assert shown[4] == new  # the new box untouched
    hidden = service.with_labels(shown[:4], SEA_LION_CLASSES, show=False)
    assert [box["label"] for box in hidden] == [""] * 4
    counts = service.parse_annotations({"boxes": hidden}, original, PHOTO.name).counts
    assert counts == {**dict.fromkeys(SEA_LION_CLASSES, 0), "adult_females": 2, "pups": 2}


def test_bad_annotations_name_the_field():
    original = model_count()
    with pytest.raises(ValueError, match="annotations: the photo is rotated"):
        service.parse_annotations({"boxes": [], "orientation": 1}, original, PHOTO.name)
    with pytest.raises(ValueError, match="annotations: not valid JSON"):
        service.parse_annotations("[{", original, PHOTO.name)
    with pytest.raises(ValueError, match="annotations: expected a list of boxes"):
        service.parse_annotations('{"boxes": 3}', original, PHOTO.name)
    with pytest.raises(ValueError, match=r"annotations: give the reviewed boxes as JSON \(\[\] for a photo without"):
        service.parse_annotations(" ", original, PHOTO.name)  # no silent "every detection removed"
    with pytest.raises(ValueError, match='an object without "boxes"'):
        service.parse_annotations('{"xyxy": [1, 1, 5, 5], "class_name": "pups"}', original, PHOTO.name)
    assert len(service.parse_annotations("[]", original, PHOTO.name)) == 0
    with pytest.raises(ValueError, match="original: expected the JSON result of /count"):
        service.original_from_json('{"counts": {}}')


def test_a_stale_count_is_not_reviewed_on_another_photo(tmp_path):
    original = model_count()
    shown = photo_jpeg(PHOTO, tmp_path)
    assert service.same_photo(PHOTO.name, shown, original)
    assert not service.same_photo("other.jpg", shown, original)
    other = photo_jpeg(PHOTO.parent / "noaa_train_1.jpg", tmp_path)  # 1404x936, not the counted 1248x832
    assert not service.same_photo(PHOTO.name, other, original)


def test_annotations_from_other_tools_are_found_by_photo_name(tmp_path):
    original = model_count()
    mine = PhotoAnnotations(PHOTO.name, [[1, 2, 30, 40]], [0], image_size=original.image_size)
    others = PhotoAnnotations("IMG_2.jpg", [[5, 5, 9, 9]], [4], image_size=(5616, 3744))
    (tmp_path / "lab.json").write_text(json.dumps(to_coco([others, mine])))
    assert service.imported_annotations(tmp_path / "lab.json", original, PHOTO.name) == mine
    (tmp_path / "dive.csv").write_text(to_viame_csv([others]))
    with pytest.raises(ValueError, match=r"dive.csv: no annotations for noaa_train_6.jpg \(photos in the file: IMG_2"):
        service.imported_annotations(tmp_path / "dive.csv", original, PHOTO.name)
    (tmp_path / "png.csv").write_text(to_viame_csv([others]).replace("IMG_2.jpg", f"{PHOTO.stem}.png"))
    found = service.imported_annotations(tmp_path / "png.csv", original, PHOTO.name)  # a converted copy's name
    assert found.photo == PHOTO.name and found.to_boxes() == [{"xyxy": [5.0, 5.0, 9.0, 9.0], "class_name": "pups"}]


def test_save_and_export_stores_the_review_and_writes_four_files(tmp_path):
    original = model_count()
    annotations = PhotoAnnotations.from_result(original, PHOTO.name)
    outcome = service.save_and_export(PHOTO, PHOTO.name, annotations, original, "A", tmp_path / "reviews", tmp_path)
    assert [p.name for p in outcome.files.paths()] == [
        f"{PHOTO.stem}_reviewed_counts.csv",
        f"{PHOTO.stem}_reviewed_dots.csv",
        f"{PHOTO.stem}_reviewed_coco.json",
        f"{PHOTO.stem}_reviewed_viame.csv",
    ]
    summary = outcome.summary()
    assert "original" not in summary and summary["original_detections"] == 4 and summary["photo_sha256"]
    assert summary["saved_as"].endswith(".review.json")
    (saved,) = load_reviews(tmp_path / "reviews")
    assert saved.annotations == annotations and np.array_equal(saved.original.xyxy, original.xyxy)


def test_labels_are_hidden_by_how_much_they_would_overlap_not_by_the_number_of_boxes():
    """40 animals packed in a corner of a 1248x832 photo: their labels pile up, so they start hidden; 150 animals
    spread over a survey original: their labels stand apart, so they are shown."""
    import numpy as np

    from detector.counting.results import CountResult

    def result(xyxy: np.ndarray, size: tuple[int, int]) -> CountResult:
        return CountResult(xyxy, np.full(len(xyxy), 2), np.ones(len(xyxy)), tuple(SEA_LION_CLASSES), size)

    packed = np.array([[20 + 12 * (i % 8), 20 + 12 * (i // 8), 30 + 12 * (i % 8), 30 + 12 * (i // 8)]
                       for i in range(40)])  # fmt: skip
    spread = np.array([[200 + 350 * (i % 15), 200 + 320 * (i // 15), 230 + 350 * (i % 15), 225 + 320 * (i // 15)]
                       for i in range(150)])  # fmt: skip
    assert service.labels_overlap(packed, ["female"] * 40, (1248, 832)) == 1.0
    assert not service.labels_shown_for(result(packed, (1248, 832)))  # 40 boxes: shown by the old 100-box rule
    assert service.labels_overlap(spread, ["female"] * 150, (5616, 3744)) == 0.0
    assert service.labels_shown_for(result(spread, (5616, 3744)))  # 150 boxes: hidden by the old rule


def test_a_new_box_starts_as_the_most_numerous_class():
    sample = present.class_distribution()
    order = service.by_frequency(SEA_LION_CLASSES, dict(zip(sample["class"], sample["animals"], strict=True)))
    assert SEA_LION_CLASSES[order[0]] == "adult_females" and SEA_LION_CLASSES[order[-1]] == "subadult_males"
