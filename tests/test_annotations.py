"""Reviews and their formats (detector.review): edits, COCO and VIAME CSV round trips,
and a reviewed photo's dots table read by training.dataset as training labels at the reviewed positions."""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detector.classes import SEA_LION_CLASSES
from detector.counting.records import counts_header
from detector.counting.results import CountResult, ModelInfo
from detector.review.formats import (
    DOTS_COLUMNS,
    dots_csv,
    from_coco,
    from_viame_csv,
    reviewed_counts_csv,
    to_coco,
    to_viame_csv,
)
from detector.review.record import (
    MATCH_IOU,
    Edits,
    PhotoAnnotations,
    Review,
    match_boxes,
    review_columns,
)
from detector.review.store import load_reviews, read_annotations, save_review, write_exports
from tests.helpers import REPO_ROOT

PHOTO = REPO_ROOT / "examples" / "noaa_train_6.jpg"  # 1248x832: a survey original downsampled 4x
MODEL = ModelInfo(
    version="v2", sha256="ab" * 32, source="shipped", path="/somewhere/model.pt", class_names=SEA_LION_CLASSES
)
FEMALE, PUP, MALE = (SEA_LION_CLASSES.index(n) for n in ("adult_females", "pups", "adult_males"))


def model_count() -> CountResult:
    """What a model said about the photo: four detections (the input a reviewer corrects)."""
    return CountResult(
        xyxy=np.array([[100, 100, 120, 120], [300, 200, 322, 219], [500, 400, 520, 420], [700, 600, 714, 612]]),
        class_id=np.array([FEMALE, FEMALE, FEMALE, PUP]),
        confidence=np.array([0.9, 0.8, 0.4, 0.6]),
        class_names=SEA_LION_CLASSES,
        image_size=(1248, 832),
        model=MODEL,
        source=PHOTO.name,
        photo_scale=0.25,
        scale_source="auto",
        conf={n: 0.25 for n in SEA_LION_CLASSES},
    )


def reviewed(original: CountResult) -> PhotoAnnotations:
    """The reviewer's version: detection 2 removed (a rock), detection 1 nudged and made a pup, one male added."""
    boxes = [
        {"xyxy": [100, 100, 120, 120], "class_name": "adult_females"},  # kept as is
        {"xyxy": [301, 201, 323, 220], "class_name": "pups"},  # nudged 1 px, reclassified
        {"xyxy": [700, 600, 714, 612], "class_name": "pups"},  # kept
        {"xyxy": [900.5, 50.25, 930.75, 80], "class_name": "adult_males"},  # added
    ]
    return PhotoAnnotations.from_boxes(PHOTO.name, boxes, original.class_names, original.image_size)


def test_edits_match_boxes_one_to_one_by_iou():
    original = model_count()
    review = Review(reviewed(original), original, reviewer="A. Biologist")
    assert match_boxes(original.xyxy, review.annotations.xyxy) == [(0, 0), (1, 1), (3, 2)]
    edits = review.edits
    assert edits.totals == {"added": 1, "removed": 1, "reclassified": 1}
    assert edits.added["adult_males"] == 1  # by the reviewer's class
    assert edits.removed["adult_females"] == 1  # by the model's class
    assert edits.reclassified["adult_females"] == 1  # the model's female that is a pup
    assert review.counts == {**dict.fromkeys(SEA_LION_CLASSES, 0), "adult_males": 1, "adult_females": 1, "pups": 2}
    assert review.total == 4 and original.total == 4


def test_a_box_moved_off_its_animal_is_one_removal_and_one_addition():
    original = model_count()
    moved = PhotoAnnotations(
        PHOTO.name, original.xyxy + [[15, 0, 15, 0]] + 0, original.class_id
    )  # 20 px boxes, 15 px off
    edits = Edits.between(PhotoAnnotations.from_result(original), moved)
    assert edits.totals["reclassified"] == 0
    assert edits.totals["added"] == edits.totals["removed"] >= 3
    # two reviewed boxes over one detection: only one of them is that detection
    double = PhotoAnnotations("p", [[0, 0, 10, 10], [0, 0, 10, 9]], [FEMALE, FEMALE])
    assert match_boxes(np.array([[0, 0, 10, 10]]), double.xyxy, MATCH_IOU) == [(0, 0)]


def test_bad_boxes_name_the_box_and_field():
    with pytest.raises(ValueError, match="box 1: class_name 'walrus'"):
        PhotoAnnotations.from_boxes(
            "p.jpg", [{"xyxy": [0, 0, 5, 5], "class_name": "pups"}, {"xyxy": [0, 0, 5, 5], "class_name": "walrus"}]
        )
    with pytest.raises(ValueError, match="box 0: xyxy must be 4 numbers"):
        PhotoAnnotations.from_boxes("p.jpg", [{"xyxy": [0, 0, 5], "class_name": "pups"}])
    with pytest.raises(ValueError, match="box 0: missing field xyxy"):
        PhotoAnnotations.from_boxes("p.jpg", [{"class_name": "pups"}])
    with pytest.raises(ValueError, match="has no area"):
        PhotoAnnotations.from_boxes("p.jpg", [{"xyxy": [5, 5, 5, 9], "class_name": "pups"}])
    with pytest.raises(ValueError, match="outside the 100x50 photo"):
        PhotoAnnotations.from_boxes("p.jpg", [{"xyxy": [120, 5, 130, 9], "class_name": "pups"}], image_size=(100, 50))
    with pytest.raises(ValueError, match="reviewer"):
        Review(reviewed(model_count()), model_count(), reviewer="  ")


def test_the_annotators_boxes_are_read_too():
    boxes = [{"xmin": 10, "ymin": 20, "xmax": 30, "ymax": 44, "label": "juveniles", "color": (1, 2, 3)}]
    annotations = PhotoAnnotations.from_boxes("p.jpg", boxes)
    assert annotations.to_boxes() == [{"xyxy": [10.0, 20.0, 30.0, 44.0], "class_name": "juveniles"}]


def test_review_json_round_trip_and_api_json():
    original = model_count()
    review = Review(reviewed(original), original, reviewer="A. Biologist", photo_sha256="cd" * 32)
    data = json.loads(json.dumps(review.to_dict()))
    again = Review.from_dict(data)
    assert again.annotations == review.annotations
    assert again.reviewer == "A. Biologist" and again.reviewed_at == review.reviewed_at
    assert again.model_version == "v2" and again.model_sha256 == MODEL.sha256
    assert again.edits == review.edits
    assert data["original_counts"]["adult_females"] == 3 and data["counts"]["pups"] == 2
    # the /count API's JSON (weights_file instead of the server's path) is accepted as the original
    api = original.to_dict()
    api["model"] = {**{k: v for k, v in api["model"].items() if k != "path"}, "weights_file": "model.pt"}
    assert CountResult.from_dict(api).model.version == "v2"
    assert np.array_equal(CountResult.from_dict(api).xyxy, original.xyxy)
    public = {**original.to_dict(), "model": original.model.public_dict()}  # what the app's API answers
    assert public["model"]["weights_file"] == Path(original.model.path).name and "path" not in public["model"]
    assert CountResult.from_dict(public).model == replace(original.model, path=Path(original.model.path).name)


def test_corrected_counts_csv_has_the_batch_columns_then_the_review_columns():
    original = model_count()
    review = Review(reviewed(original), original, reviewer="A. Biologist", photo_sha256="cd" * 32)
    rows = list(csv.DictReader(io.StringIO(reviewed_counts_csv([review]))))
    header = list(rows[0])
    assert header == [*counts_header(SEA_LION_CLASSES), *review_columns(SEA_LION_CLASSES)]
    row = rows[0]
    assert row["file"] == PHOTO.name and row["reviewed"] == "true" and row["reviewer"] == "A. Biologist"
    assert (row["adult_males"], row["adult_females"], row["pups"], row["total"]) == ("1", "1", "2", "4")
    assert (row["added"], row["removed"], row["reclassified"]) == ("1", "1", "1")
    assert (row["added_adult_males"], row["removed_adult_females"], row["reclassified_adult_females"]) == (
        "1",
        "1",
        "1",
    )
    assert row["model_version"] == "v2" and row["model_sha256"] == MODEL.sha256 and row["sha256"] == "cd" * 32
    assert row["width"] == "1248" and row["photo_scale"] == "0.25" and row["error"] == ""


def _three_photos() -> list[PhotoAnnotations]:
    original = model_count()
    return [
        reviewed(original),
        PhotoAnnotations("empty.jpg", np.zeros((0, 4)), [], image_size=(640, 480)),
        PhotoAnnotations("b.jpg", [[0.25, 1.5, 33.75, 40], [10, 10, 11.01, 12]], [MALE, PUP], image_size=(5616, 3744)),
    ]


def test_coco_export_then_import_gives_the_same_annotations():
    items = _three_photos()
    coco = json.loads(json.dumps(to_coco(items)))
    assert [c["name"] for c in coco["categories"]] == list(SEA_LION_CLASSES)
    assert coco["annotations"][0]["bbox"] == [100.0, 100.0, 20.0, 20.0]
    assert from_coco(coco) == items


def test_viame_csv_export_then_import_gives_the_same_annotations():
    items = _three_photos()
    text = to_viame_csv(items)
    assert text.startswith("# 1: Detection or Track-id")
    first = next(line for line in text.splitlines() if not line.startswith("#")).split(",")
    assert first[:9] == ["0", PHOTO.name, "0", "100", "100", "120", "120", "1", "-1"] and first[9:] == [
        "adult_females",
        "1",
    ]
    sizes = {item.photo: item.image_size for item in items}
    assert from_viame_csv(text, image_sizes=sizes) == items
    # without sizes: the same boxes and classes, photos without animals are not in a VIAME CSV
    without = from_viame_csv(text)
    assert [a.photo for a in without] == [PHOTO.name, "b.jpg"]
    assert np.array_equal(without[1].xyxy, items[2].xyxy) and np.array_equal(without[1].class_id, items[2].class_id)


def test_viame_csv_as_dive_writes_it():
    """DIVE adds a metadata comment, attributes and several species per line: the most confident one is the class."""
    text = (
        "# 1: Detection or Track-id,2: Video or Image Identifier,3: Unique Frame Identifier,4-7: Img-bbox(TL_x,TL_y,"
        "BR_x,BR_y),8: Detection or Length Confidence,9: Target Length (0 or -1 if invalid),10-11+: Repeated Species,"
        "Confidence Pairs or Attributes\n"
        '# metadata,fps: 1,"exported_by: ""dive:python""","exported_time: ""Thu Jul 11 10:00:00 2024"""\n'
        "1,IMG_0001.jpg,0,10,20,50,70,0.9,-1,juveniles,0.3,pups,0.7,(atr) occluded true\n"
        "2,IMG_0002.jpg,1,5,5,25,25,1,-1,adult_males,1\n"
    )
    first, second = from_viame_csv(text, source="dive.csv")
    assert first.photo == "IMG_0001.jpg" and first.to_boxes() == [
        {"xyxy": [10.0, 20.0, 50.0, 70.0], "class_name": "pups"}
    ]
    assert second.counts["adult_males"] == 1
    with pytest.raises(ValueError, match="dive.csv, line 1: species 'walrus'"):
        from_viame_csv("0,a.jpg,0,1,1,5,5,1,-1,walrus,1\n", source="dive.csv")
    with pytest.raises(ValueError, match="line 1: a detection needs at least 9 columns"):
        from_viame_csv("0,a.jpg,0,1,1,5\n")


def test_coco_with_unknown_categories_is_refused_by_name():
    coco = to_coco(_three_photos())
    coco["categories"][0]["name"] = "walrus"
    with pytest.raises(ValueError, match=r"lab.json: categories \['walrus'\]"):
        from_coco(coco, source="lab.json")


def test_dots_table_of_a_review_is_training_data_at_the_reviewed_positions(tmp_path):
    """Export a review's dots table next to the raw photo in Train/, as training.dataset accepts a reviewed survey
    photo; the labels it builds sit at the reviewed box centres, with the reviewed classes."""
    from training.dataset import ChipOptions, discover, prepare_photo, read_dots_table, write_chips

    original = model_count()
    review = Review(reviewed(original), original, reviewer="A. Biologist")
    root = tmp_path / "reviewed"
    (root / "Train").mkdir(parents=True)
    shutil.copyfile(PHOTO, root / "Train" / PHOTO.name)
    table = root / "reviewed_dots.csv"
    table.write_text(dots_csv([review]))

    rows = list(csv.DictReader(table.open()))
    assert list(rows[0]) == list(DOTS_COLUMNS) and len(rows) == len(review.annotations)
    assert (rows[0]["x"], rows[0]["y"], rows[0]["class"]) == ("441.5", "441.5", "adult_females")  # 110 px at 1/4

    dots = read_dots_table(table)[PHOTO.stem]
    assert np.allclose(dots.scaled(0.25).xy, review.annotations.centres, atol=1e-3)
    specs = discover(root, photo_scale=0.25, dots_table=table)  # the photos of Train/ are 4x downsampled copies
    assert [s.photo_id for s in specs] == [PHOTO.stem]
    prepared = prepare_photo(specs[0], ground_scale=0.25)  # trained at 1/4: the photo is used as it is
    assert prepared.image.shape[:2] == (832, 1248)
    assert np.allclose(prepared.dots.xy, review.annotations.centres, atol=1e-3)
    assert prepared.dots.class_id.tolist() == review.annotations.class_id.tolist()

    out = tmp_path / "dataset"
    write_chips(prepared, out, 0.25, ChipOptions(size=320, overlap=0.25, empty_share=0.0), seed=0)
    found = []  # (class, x, y) of every label line, in the photo's pixels
    for label in (out / "labels" / PHOTO.stem).glob("*.txt"):
        x0, y0 = (int(part[1:]) for part in label.stem.split("_")[-2:])
        for line in label.read_text().splitlines():
            cls, cx, cy, _, _ = line.split()
            found.append((int(cls), float(cx) * 320 + x0, float(cy) * 320 + y0))
    for (x, y), c in zip(review.annotations.centres, review.annotations.class_id, strict=True):
        assert any(k == c and abs(fx - x) < 0.01 and abs(fy - y) < 0.01 for k, fx, fy in found), (x, y, c, found)
    assert not [f for f in found if abs(f[1] - 510) < 20 and abs(f[2] - 410) < 20]  # the removed rock is no label


def test_saved_reviews_are_never_replaced_and_load_back(tmp_path):
    original = model_count()
    first = Review(reviewed(original), original, reviewer="A", photo_sha256="cd" * 32)
    second = Review(PhotoAnnotations.from_result(original), original, reviewer="B", photo_sha256="cd" * 32)
    saved_first = save_review(tmp_path, first)
    saved_second = save_review(tmp_path, second)
    assert saved_first.review_json != saved_second.review_json and saved_first.review_json.exists()
    assert saved_first.review_json.parent.name == f"{PHOTO.stem}-{'cd' * 6}"
    assert CountResult.from_dict(json.loads(saved_first.count_json.read_text())).total == original.total
    assert not list(tmp_path.rglob("*.partial"))
    assert [r.reviewer for r in load_reviews(tmp_path, latest_only=False)] == ["A", "B"]
    assert [r.reviewer for r in load_reviews(tmp_path)] == ["B"]
    assert load_reviews(tmp_path)[0].edits.totals == {"added": 0, "removed": 0, "reclassified": 0}


def test_exports_read_back(tmp_path):
    original = model_count()
    review = Review(reviewed(original), original, reviewer="A. Biologist")
    files = write_exports(tmp_path, [review])
    assert read_annotations(files.coco_json) == [review.annotations]
    assert read_annotations(files.viame_csv, image_sizes={PHOTO.name: (1248, 832)}) == [review.annotations]
    assert json.loads(files.coco_json.read_text())["info"]["reviewers"] == ["A. Biologist"]
    with pytest.raises(ValueError, match="notes.json: not valid JSON"):
        (tmp_path / "notes.json").write_text("{")
        read_annotations(tmp_path / "notes.json")
    assert Image.open(PHOTO).size == (1248, 832)


def test_reviews_and_other_tools_files_become_one_dots_table(tmp_path, capsys):
    """python -m training.reviews: the app's saved reviews plus a COCO file from another tool → one dots table."""
    from training.dataset import read_dots_table
    from training.reviews import main

    original = model_count()
    review = Review(reviewed(original), original, reviewer="A", photo_sha256="cd" * 32)
    save_review(tmp_path / "reviews", review)
    other = PhotoAnnotations("IMG_7.jpg", [[10, 20, 30, 40]], [PUP], image_size=(5616, 3744))
    (tmp_path / "lab.json").write_text(json.dumps(to_coco([other])))
    out = tmp_path / "dots.csv"
    assert main([str(tmp_path / "reviews"), str(tmp_path / "lab.json"), "--out", str(out)]) == 0
    assert "5 animals in 2 photos" in capsys.readouterr().out
    table = read_dots_table(out)
    assert np.allclose(table["IMG_7"].xy, [[20, 30]]) and table["IMG_7"].class_id.tolist() == [PUP]
    assert np.allclose(table[PHOTO.stem].scaled(0.25).xy, review.annotations.centres, atol=1e-3)
    assert main([str(tmp_path / "missing.json"), "--out", str(out)]) == 2
