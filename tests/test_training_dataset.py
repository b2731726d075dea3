"""Dataset builder: boxes per class, chips with clipped labels, empty-chip share, photo-level splits, data.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from detector.classes import SEA_LION_CLASSES
from training.dataset import (
    BODY_LENGTH_PX,
    BuildOptions,
    ChipOptions,
    build_dataset,
    chip_labels,
    discover,
    dot_boxes,
    make_folds,
    read_rgb,
    write_split,
)
from training.dots import Dots, dots_by_colour
from training.errors import TrainingError
from training.evaluate import count_metrics

TINY = Path(__file__).parent / "data" / "sealions-tiny"


def test_boxes_are_squares_of_the_body_length_at_the_ground_scale():
    dots = Dots(np.array([[100, 100]] * 5), np.arange(5))
    boxes = dot_boxes(dots, 0.25, (400, 400))
    sides = boxes[:, 2] - boxes[:, 0]
    assert np.allclose(sides, [BODY_LENGTH_PX[n] * 0.25 for n in SEA_LION_CLASSES])
    assert np.allclose(boxes[:, 3] - boxes[:, 1], sides)
    edge = dot_boxes(Dots(np.array([[2, 398]]), np.array([0])), 0.25, (400, 400))
    assert edge.tolist() == [[0, 383, 17, 400]]  # clipped to the photo


def test_chip_labels_clip_boxes_and_drop_slivers():
    boxes = np.array([[10, 10, 40, 40], [80, 10, 110, 40], [90, 50, 120, 80]], dtype=np.float32)
    lines = chip_labels(boxes, np.array([0, 1, 2]), np.array([0, 0, 100, 100]), ChipOptions(size=100))
    assert len(lines) == 2  # whole box, 2/3-visible box clipped; the 1/3-visible sliver is dropped
    cls, cx, cy, w, h = (float(v) for v in lines[0].split())
    assert (cls, cx, cy, w, h) == (0, 0.25, 0.25, 0.3, 0.3)
    cls, cx, _, w, _ = (float(v) for v in lines[1].split())
    assert cls == 1 and w == pytest.approx(0.2) and cx == pytest.approx(0.9)
    shifted = chip_labels(boxes, np.array([0, 1, 2]), np.array([100, 0, 200, 100]), ChipOptions(size=100))
    assert [line.split()[0] for line in shifted] == ["2"]  # the neighbour chip gets the rest of box 3


def test_folds_split_photos_not_chips():
    ids = [str(i) for i in range(9)]
    folds = make_folds(ids, 4, seed=0)
    assert sorted(sum(folds, [])) == sorted(ids)
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert make_folds(ids, 4, seed=0) == folds and make_folds(ids, 4, seed=1) != folds
    with pytest.raises(ValueError):
        write_split(Path("/nonexistent"), "bad", ["1", "2"], ["2"])


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tiny-dataset")
    options = BuildOptions(ground_scale=0.25, chips=ChipOptions(size=96, overlap=0.25, empty_share=0.2), folds=2)
    return out, build_dataset(TINY, out, options)


def test_build_dataset_writes_chips_labels_and_a_photo_level_split(tiny_dataset):
    out, summary = tiny_dataset
    assert [p.photo_id for p in summary.photos] == ["a", "b"]
    for record in summary.photos:
        assert "painted out" in record.method  # no raw copies in the fixture
        assert record.size == (192, 192)
        expected = dots_by_colour(read_rgb(TINY / "TrainDotted" / f"{record.photo_id}.jpg")).counts()
        assert record.dot_counts == expected and sum(expected.values()) > 10
        assert record.empty_chips <= max(1, 0.25 * record.chips)
        chips = sorted((out / "images" / record.photo_id).glob("*.jpg"))
        assert len(chips) == record.chips and (out / record.image).is_file()
        for chip in chips:
            label = out / "labels" / record.photo_id / f"{chip.stem}.txt"
            rows = [line.split() for line in label.read_text().splitlines()]
            assert all(0 <= int(r[0]) < 5 and all(0 <= float(v) <= 1 for v in r[1:]) for r in rows)
    for name in ("fold0", "fold1"):
        data = yaml.safe_load(Path(summary.splits[name]).read_text())
        assert data["names"] == dict(enumerate(SEA_LION_CLASSES))
        assert not set(data["train_photos"]) & set(data["val_photos"])
        train_list = (out / data["train"]).read_text().split()
        val_list = (out / data["val"]).read_text().split()
        assert train_list and val_list
        assert {Path(p).parent.name for p in train_list} == set(data["train_photos"])
        assert {Path(p).parent.name for p in val_list} == set(data["val_photos"])
    assert json.loads((out / "photos.json").read_text())["ground_scale"] == 0.25


def test_discover_reads_the_noaa_sample_layout(shared_data):
    specs = {s.photo_id: s for s in discover(shared_data)}
    counts = (shared_data / "counts.csv").read_text().split()[1:]
    assert sorted(specs, key=int) == sorted((row.split(",")[0] for row in counts), key=int)  # every photo with counts
    assert specs["3"].dotted_scale == 1.0 and specs["3"].raw is not None  # full-res dotted copy preferred
    assert specs["3"].dots is None  # not in dot-coordinates.csv (a mismatched pair): colour extraction
    assert specs["0"].dotted_scale == 0.25 and specs["0"].official_counts["pups"] == 344
    assert specs["0"].dots.counts()["pups"] == 344  # the dots table, where pair differences found 112
    assert specs["43"].raw.parent.name == "fullres-raw" and specs["43"].raw_scale == 1.0
    assert specs["21"].raw is None and specs["7"].dots is None


def test_count_metrics_competition_rmse_is_the_mean_of_per_class_rmse():
    truth = np.array([[1, 0, 10, 2, 0], [3, 1, 20, 0, 4]])
    predicted = np.array([[1, 0, 12, 2, 0], [1, 1, 20, 0, 0]])
    metrics = count_metrics(truth, predicted)
    rmse = [np.sqrt(2), 0, np.sqrt(2), 0, np.sqrt(8)]
    assert metrics.competition_rmse == pytest.approx(np.mean(rmse))
    assert metrics.per_class["pups"].mae == 2 and metrics.per_class["pups"].bias == -2
    assert metrics.total_mae == pytest.approx(4) and metrics.total_bias == pytest.approx(-2)


def test_a_chip_size_that_cannot_be_trained_is_refused_before_anything_is_written(tmp_path):
    """The geometry takes any chip size (above), a dataset only sizes ultralytics trains at as they are."""
    options = BuildOptions(ground_scale=0.25, chips=ChipOptions(size=100), folds=0)
    with pytest.raises(TrainingError, match=r"chip size \(--chip\) 100 is not a positive multiple of 32.*96 or 128"):
        build_dataset(TINY, tmp_path / "ds", options)
    assert not (tmp_path / "ds").exists()
