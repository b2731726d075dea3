"""Label sources and model start: the dots table (best first), pretrained init by name and shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from detector.classes import SEA_LION_CLASSES
from training.dataset import (
    BODY_LENGTH_PX,
    BuildOptions,
    ChipOptions,
    build_dataset,
    discover,
    read_dots_table,
    read_rgb,
)
from training.dots import dots_by_colour
from training.io import TrainingError
from training.train import read_init_state_dict, transfer_weights

TINY = Path(__file__).parent / "data" / "sealions-tiny"


def write_table(path: Path, rows: list[tuple[str, float, float, str]], photo_column: str = "train_id") -> Path:
    path.write_text(f"{photo_column},x,y,class\n" + "".join(f"{p},{x},{y},{c}\n" for p, x, y, c in rows))
    return path


def test_dots_table_reads_the_noaa_shape_and_names_bad_rows(tmp_path):
    table = read_dots_table(write_table(tmp_path / "dots.csv", [("a", 10, 20, "pups"), ("a", 5.5, 6, "juveniles")]))
    assert list(table) == ["a"]
    assert table["a"].xy.tolist() == [[10, 20], [5.5, 6]]
    assert table["a"].counts()["pups"] == 1 and table["a"].counts()["juveniles"] == 1
    by_file = read_dots_table(write_table(tmp_path / "review.csv", [("survey/a.jpg", 1, 2, "pups")], "photo"))
    assert list(by_file) == ["a"]  # a file name is reduced to the id the dataset uses
    with pytest.raises(TrainingError, match=r"dots\.csv, line 2: unknown class 'seal'"):
        read_dots_table(write_table(tmp_path / "dots.csv", [("a", 1, 2, "seal")]))
    (tmp_path / "bad.csv").write_text("id,x,y\n1,2,3\n")
    with pytest.raises(TrainingError, match="bad.csv: a dots table needs the columns"):
        read_dots_table(tmp_path / "bad.csv")


def test_dots_table_labels_win_over_colour_extraction(tmp_path):
    """A table lists photo a: its labels are exactly the table's dots (not the colours); b keeps colour dots."""
    rows = [("a", 100, 120, "pups"), ("a", 400, 300, "adult_males"), ("a", 600, 650, "juveniles")]
    table = write_table(tmp_path / "dots.csv", rows)
    specs = {s.photo_id: s for s in discover(TINY, dots_table=table)}
    assert specs["a"].dots is not None and specs["b"].dots is None
    out = tmp_path / "ds"
    options = BuildOptions(ground_scale=0.25, chips=ChipOptions(size=192, overlap=0.0, empty_share=0.5), folds=0,
                           dots_table=table)  # fmt: skip
    summary = build_dataset(TINY, out, options)
    by_id = summary.by_id
    assert "dots table" in by_id["a"].method and "colour dots" in by_id["b"].method
    assert by_id["a"].dot_counts == {**dict.fromkeys(SEA_LION_CLASSES, 0), "pups": 1, "adult_males": 1,
                                        "juveniles": 1}  # fmt: skip
    expected_b = dots_by_colour(read_rgb(TINY / "TrainDotted" / "b.jpg")).counts()
    assert by_id["b"].dot_counts == expected_b
    # The labels of photo a sit at the table's positions (full-resolution pixels x 0.25), with the table's classes.
    found = []
    for label in (out / "labels" / "a").glob("*.txt"):
        _, x0, y0 = label.stem.split("_")
        x0, y0 = int(x0[1:]), int(y0[1:])
        for line in label.read_text().splitlines():
            cls, cx, cy, w, h = (float(v) for v in line.split())
            found.append((SEA_LION_CLASSES[int(cls)], round(x0 + cx * 192), round(y0 + cy * 192), round(w * 192)))
    expected = {(c, round((x + 0.5) * 0.25 - 0.5), round((y + 0.5) * 0.25 - 0.5), BODY_LENGTH_PX[c] // 4)
                for _, x, y, c in rows}  # fmt: skip
    assert set(found) == expected


def test_a_raw_photo_with_table_rows_needs_no_dotted_copy(tmp_path):
    root = tmp_path / "survey"
    (root / "Train").mkdir(parents=True)
    raw = read_rgb(TINY / "TrainDotted" / "a.jpg")
    import cv2

    cv2.imwrite(str(root / "Train" / "r1.jpg"), raw[:, :, ::-1])
    table = write_table(tmp_path / "reviewed.csv", [("r1", 200, 200, "adult_females")], "photo")
    summary = build_dataset(root, tmp_path / "ds", BuildOptions(chips=ChipOptions(size=96), folds=0, dots_table=table))
    (record,) = summary.photos
    assert record.photo_id == "r1" and record.dot_counts["adult_females"] == 1
    assert record.method == "labels: dots table reviewed.csv; image: raw photo"


def _new_model():
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    return DetectionModel("yolov5n.yaml", nc=len(SEA_LION_CLASSES), verbose=False)


def test_init_copies_tensors_that_match_by_name_and_shape(tmp_path):
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(1)
    coco_like = DetectionModel("yolov5n.yaml", nc=80, verbose=False)  # same body, an 80-class head
    state = {k: v.clone() for k, v in coco_like.state_dict().items()}
    torch.save({"state_dict": state, "names": [str(i) for i in range(80)]}, tmp_path / "sd.pt")
    model = _new_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = transfer_weights(model, tmp_path / "sd.pt")
    after = model.state_dict()
    same_shape = [k for k in after if tuple(state[k].shape) == tuple(after[k].shape)]
    assert report.matched == len(same_shape) and report.total == len(after)
    assert len(after) - report.matched > 0  # the class outputs of the head differ (80 vs 5 classes)
    assert report.random_layers == ("model.24",)
    assert all(torch.equal(after[k], state[k]) for k in same_shape)
    differ = [k for k in after if k not in same_shape]
    assert differ and all(torch.equal(after[k], before[k]) for k in differ)  # left as initialised
    # An ultralytics checkpoint ({"model": module}) gives the same tensors.
    torch.save({"model": coco_like.half(), "train_args": {}}, tmp_path / "ckpt.pt")
    assert set(read_init_state_dict(tmp_path / "ckpt.pt")) == set(state)
    with pytest.raises(TrainingError, match="missing.pt: file not found"):
        read_init_state_dict(tmp_path / "missing.pt")


def test_the_shared_coco_weights_fill_the_whole_backbone_and_neck(shared_data):
    coco = shared_data.parent.parent / "models" / "yolov5n-coco" / "yolov5n-coco-state-dict.pt"
    if not coco.is_file():
        pytest.skip(f"needs the COCO-pretrained YOLOv5n state dict at {coco} (the shared models folder)")
    report = transfer_weights(_new_model(), coco)
    assert (report.matched, report.source_tensors) == (342, 349)  # its README: model.0-model.23 match
    assert report.random_layers == ("model.24",)
    assert report.sha256 == "6fc0f493366b855fa5da94d24724bd93293c7107f3724b1a6cd8553ce6b950b0"


def test_greyscale_augmentation_keeps_the_labels():
    from training.train import RandomGrey

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)
    out = RandomGrey(p=1.0)({"img": img.copy(), "instances": "kept"})
    assert out["instances"] == "kept" and out["img"].shape == img.shape
    assert (out["img"][..., 0] == out["img"][..., 1]).all() and (out["img"][..., 1] == out["img"][..., 2]).all()
    assert RandomGrey(p=0.0)({"img": img.copy()})["img"].tolist() == img.tolist()


def test_guarded_calibration_keeps_a_threshold_only_where_it_held_up_on_other_folds():
    """Class 0: true animals score 0.6, false ones 0.3 on every photo: a threshold above 0.3 is right on every fold
    and is kept. Class 4: one photo's 30 pups score 0.1, every other photo has 5 false pups at 0.12 — a threshold
    fitted to that one photo adds false pups everywhere else, so class 4 falls back to the default."""
    from training.evaluate import guarded_thresholds

    rng = np.random.default_rng(0)
    folds, truth, found = {}, {}, {}
    for f in range(4):
        folds[f"fold{f}"] = []
        for k in range(3):
            photo = f"{f}-{k}"
            folds[f"fold{f}"].append(photo)
            animals, noise = int(rng.integers(5, 15)), int(rng.integers(5, 15))
            pups = 30 if photo == "0-0" else 0
            pup_scores = np.full(30, 0.1) if pups else np.full(5, 0.12)
            truth[photo] = np.array([animals, 0, 0, 0, pups])
            classes = np.r_[np.zeros(animals + noise, int), np.full(len(pup_scores), 4)]
            found[photo] = (classes, np.r_[np.full(animals, 0.6), np.full(noise, 0.3), pup_scores])
    guarded, unguarded = guarded_thresholds(folds, truth, found, default=0.25)
    assert 0.3 < guarded[0] <= 0.6 and guarded[0] == unguarded[0]
    assert unguarded[4] == pytest.approx(0.1) and guarded[4] == 0.25
    assert list(guarded[1:4]) == [0.25, 0.25, 0.25]  # no detections, no animals: nothing gained, default kept


def test_guarded_calibration_on_a_single_fold_leaves_one_photo_out():
    """A 2-fold CV chooses each fold's honest thresholds on the one other fold: the guard then leaves one photo
    out. True adult males score 0.6 and false ones 0.3 on every photo (a threshold above 0.3 holds on every photo
    left out); one photo's pups score 0.1 and the others have false pups at 0.12 (fitted to one photo: dropped)."""
    from training.evaluate import guarded_thresholds

    truth, found = {}, {}
    for k in range(4):
        photo, pups = f"p{k}", 30 if k == 0 else 0
        pup_scores = np.full(30, 0.1) if pups else np.full(5, 0.12)
        truth[photo] = np.array([8 + k, 0, 0, 0, pups])
        classes = np.r_[np.zeros(8 + k + 6, int), np.full(len(pup_scores), 4)]
        found[photo] = (classes, np.r_[np.full(8 + k, 0.6), np.full(6, 0.3), pup_scores])
    guarded, unguarded = guarded_thresholds({"fold1": list(truth)}, truth, found, default=0.25)
    assert 0.3 < guarded[0] <= 0.6 and guarded[0] == unguarded[0]
    assert guarded[4] == 0.25 and unguarded[4] != 0.25


def test_table_dots_turn_with_a_dotted_copy_that_was_rotated(tmp_path):
    """The dotted copy is the raw photo turned 180 degrees: the table's positions (marked on the dotted copy)
    end up on the same animals of the raw training image."""
    import cv2

    from training.dataset import PhotoSpec, prepare_photo
    from training.dots import paint_out_dots

    dotted = read_rgb(TINY / "TrainDotted" / "a.jpg")
    raw = np.ascontiguousarray(paint_out_dots(dotted)[::-1, ::-1])
    cv2.imwrite(str(tmp_path / "raw.png"), raw[:, :, ::-1])
    table = read_dots_table(write_table(tmp_path / "dots.csv", [("a", 100, 120, "pups")]))
    spec = PhotoSpec("a", TINY / "TrainDotted" / "a.jpg", 1.0, tmp_path / "raw.png", 1.0, dots=table["a"])
    photo = prepare_photo(spec, ground_scale=0.5)
    assert "raw photo" in photo.method and photo.image_source == "raw"
    assert "dots table positions turned with the dotted copy" in photo.notes
    height, width = dotted.shape[:2]
    expected = ((np.array([width - 1 - 100, height - 1 - 120]) + 0.5) * 0.5 - 0.5).tolist()
    assert photo.dots.xy.tolist() == [pytest.approx(expected)]
