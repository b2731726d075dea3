"""Out-of-fold detections matched to the dots (the confusion between classes) and the calibration's sweep."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detector.classes import SEA_LION_CLASSES
from training.dataset import BuildOptions, ChipOptions, build_dataset
from training.evaluate import match_to_dots, read_photo_dots, sweep_table

TINY = Path(__file__).parent / "data" / "sealions-tiny"


def test_detections_match_dots_one_to_one_within_the_radius():
    dots = np.array([[10, 10], [50, 50], [90, 90]], dtype=float)
    dot_class = np.array([3, 3, 4])  # two juveniles, a pup
    boxes = np.array([[5, 5, 15, 15], [46, 46, 56, 56], [48, 48, 52, 52], [200, 200, 210, 210]], dtype=float)
    box_class = np.array([3, 2, 2, 4])  # a juvenile, two adult females on the second juvenile, a stray pup
    table = match_to_dots(dots, dot_class, boxes, box_class, np.full(3, 6.0), classes=5)
    assert table[3, 3] == 1  # juvenile found as juvenile
    assert table[3, 2] == 1  # juvenile found as adult female (the nearer of the two boxes)
    assert table[4, 5] == 1  # the pup: no detection within 6 px, missed
    assert table[5, 2] == 1 and table[5, 4] == 1  # the second female box and the stray pup match no dot
    assert table.sum() == 5
    assert match_to_dots(dots, dot_class, boxes[:0], box_class[:0], np.full(3, 6.0), 5)[:, 5].sum() == 3


def test_the_sweep_reports_each_class_rmse_at_uniform_thresholds():
    truth = np.array([[0, 0, 2, 0, 0], [0, 0, 1, 0, 0]])
    found = [(np.array([2, 2, 2]), np.array([0.9, 0.5, 0.12])), (np.array([2]), np.array([0.3]))]
    sweep = sweep_table(truth, found)
    assert sweep["0.10"]["adult_females"] == 0.71  # 3 vs 2 and 1 vs 1
    assert sweep["0.15"]["adult_females"] == 0.0
    assert sweep["0.55"]["adult_females"] == 1.0  # 1 vs 2 and 0 vs 1
    assert sweep["0.15"]["mean"] == 0.0 and set(sweep["0.15"]) == {*SEA_LION_CLASSES, "mean"}


def test_the_dataset_keeps_every_photos_dots_at_the_ground_scale(tmp_path):
    record = build_dataset(TINY, tmp_path, BuildOptions(ground_scale=0.25, chips=ChipOptions(size=96), folds=0))
    for photo in record.photos:
        xy, class_id = read_photo_dots(tmp_path, photo.photo_id, SEA_LION_CLASSES)
        assert np.bincount(class_id, minlength=5).tolist() == [photo.dot_counts[n] for n in SEA_LION_CLASSES]
        assert (xy >= 0).all() and (xy <= 192).all()  # 768 px crops at 0.25
