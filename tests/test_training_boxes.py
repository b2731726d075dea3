"""Box-label datasets: every format reads the same real boxes, classes map, splits keep source photos whole.

The fixture is six real elephant-seal tiles of the pinniped paper's training split (tests/data/pinnipeds-tiny,
MIT). The COCO, VIAME and YOLO files are written here from its plain CSV, in each format's own layout, so each
reader is checked against the same ground truth.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from training.boxes import ClassMap, folds_by_source, read_boxes, read_plain_csv
from training.dataset import main as dataset_main
from training.io import DatasetRecord, TrainingError

TINY = Path(__file__).parent / "data" / "pinnipeds-tiny"
CLASSES = ("bull", "cow", "pup")


def _rows() -> list[list[str]]:
    return [row for row in csv.reader((TINY / "annotations.csv").open()) if row]


def _size(tile: str) -> tuple[int, int]:
    height, width = cv2.imread(str(TINY / tile)).shape[:2]
    return width, height


def write_coco(folder: Path) -> Path:
    tiles = sorted({row[0] for row in _rows()})
    names = ["bull", "cow", "pup", "other"]
    data = {
        "images": [
            {"id": i + 1, "file_name": t, "width": _size(t)[0], "height": _size(t)[1]} for i, t in enumerate(tiles)
        ],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)],
        "annotations": [],
    }
    for k, (tile, x1, y1, x2, y2, label, _) in enumerate(_rows()):
        x1, y1, x2, y2 = (float(v) for v in (x1, y1, x2, y2))
        data["annotations"].append({
            "id": k + 1, "image_id": tiles.index(tile) + 1, "category_id": names.index(label) + 1,
            "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
        })  # fmt: skip
    path = folder / "coco.json"
    path.write_text(json.dumps(data))
    return path


def write_viame(folder: Path) -> Path:
    path = folder / "viame.csv"
    with path.open("w", newline="") as handle:
        handle.write("# 1: Detection or Track-id,2: Video or Image Identifier,3: Unique Frame Identifier,"
                     "4-7: Img-bbox(TL_x,TL_y,BR_x,BR_y),8: Detection or Length Confidence,9: Target Length,"
                     "10-11+: Repeated Species,Confidence Pairs or Attributes\n")  # fmt: skip
        writer = csv.writer(handle)
        tiles = sorted({row[0] for row in _rows()})
        for k, (tile, x1, y1, x2, y2, label, _) in enumerate(_rows()):
            other = "cow" if label != "cow" else "pup"  # a weaker second guess: the highest score must win
            writer.writerow([k, tile, tiles.index(tile), x1, y1, x2, y2, 1.0, -1, label, 0.9, other, 0.1])
    return path


def write_yolo(folder: Path) -> Path:
    root = folder / "yolo"
    names = ["bull", "cow", "pup", "other"]
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "data.yaml").write_text(yaml.safe_dump({"names": dict(enumerate(names))}))
    lines: dict[str, list[str]] = {}
    for tile, x1, y1, x2, y2, label, _ in _rows():
        width, height = _size(tile)
        x1, y1, x2, y2 = (float(v) for v in (x1, y1, x2, y2))
        lines.setdefault(tile, []).append(
            f"{names.index(label)} {(x1 + x2) / 2 / width:.8f} {(y1 + y2) / 2 / height:.8f} "
            f"{(x2 - x1) / width:.8f} {(y2 - y1) / height:.8f}"
        )
    for tile, tile_lines in lines.items():
        shutil.copy(TINY / tile, root / "images" / tile)
        (root / "labels" / Path(tile).with_suffix(".txt").name).write_text("\n".join(tile_lines) + "\n")
    return root


@pytest.mark.parametrize("fmt", ["plain", "coco", "viame", "yolo"])
def test_every_format_reads_the_same_boxes_and_labels(tmp_path, fmt):
    for tile in {row[0] for row in _rows()}:
        shutil.copy(TINY / tile, tmp_path / tile)
    path = {
        "plain": lambda: TINY / "annotations.csv",
        "coco": lambda: write_coco(tmp_path),
        "viame": lambda: write_viame(tmp_path),
        "yolo": lambda: write_yolo(tmp_path),
    }[fmt]()
    images = {item.photo_id: item for item in read_boxes(path)}
    expected: dict[str, list[list[str]]] = {}
    for row in _rows():
        expected.setdefault(Path(row[0]).stem, []).append(row)
    assert sorted(images) == sorted(expected)
    for photo_id, rows in expected.items():
        item = images[photo_id]
        assert item.image.is_file()
        assert list(item.labels) == [row[5] for row in rows]
        assert np.allclose(item.boxes, [[float(v) for v in row[1:5]] for row in rows], atol=1e-3)
    if fmt == "plain":  # only the paper's CSV names the source photo; elsewhere each image is its own source
        assert {item.source for item in images.values()} == {"4MSL0089", "4MSL0094", "4MSL0095"}


def test_class_map_drops_renames_and_refuses_unknown_labels():
    classes = ClassMap.parse("bull,cow,pup", ["other=drop", "weaner=pup"])
    assert [classes.index(x) for x in ("bull", "cow", "pup", "weaner", "other")] == [0, 1, 2, 2, None]
    with pytest.raises(TrainingError, match="--map yearling="):
        classes.index("yearling")
    with pytest.raises(TrainingError, match="not one of --classes"):
        ClassMap.parse("bull,cow", ["pup=calf"])


def test_folds_keep_every_source_photo_on_one_side():
    images = read_plain_csv(TINY / "annotations.csv")
    folds = folds_by_source(images, 3, seed=0)
    source_of = {item.photo_id: item.source for item in images}
    assert sorted(sum(folds, [])) == sorted(source_of)
    assert all(len({source_of[p] for p in fold}) == 1 for fold in folds)  # 3 sources, 3 folds: one each
    with pytest.raises(TrainingError, match="3 source photos cannot make 4 folds"):
        folds_by_source(images, 4, seed=0)


def test_dataset_from_boxes_rescales_maps_classes_and_splits_by_source(tmp_path):
    out = tmp_path / "ds"
    code = dataset_main([
        "--boxes", str(TINY / "annotations.csv"), "--classes", "bull,cow,pup", "--map", "other=drop",
        "--ground-scale", "0.448", "--chip", "224", "--folds", "3", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    record = DatasetRecord.read(out)
    assert record.class_names == CLASSES and record.chip_size == 224 and record.ground_scale == 0.448
    totals = Counter()
    for photo in record.photos:
        totals.update(photo.dot_counts)
        assert photo.size == (224, 224)  # 500 px tiles at 0.448: one chip each
    assert dict(totals) == {"bull": 1, "cow": 19, "pup": 28}  # the 6 "other" boxes are dropped
    labels = [line.split() for path in (out / "labels").rglob("*.txt") for line in path.read_text().splitlines()]
    assert Counter(int(parts[0]) for parts in labels) == Counter({2: 28, 1: 19, 0: 1})
    widths = [float(parts[3]) * 224 for parts in labels]
    rows = [row for row in _rows() if row[5] != "other"]
    assert sorted(widths) == pytest.approx(sorted((float(r[3]) - float(r[1])) * 0.448 for r in rows), abs=0.01)
    data = yaml.safe_load((out / "splits" / "fold0" / "data.yaml").read_text())
    assert data["names"] == {0: "bull", 1: "cow", 2: "pup"}
    sources = {p.photo_id: p.method.split("source photo ")[1].rstrip(")") for p in record.photos}
    for k in range(3):
        split = yaml.safe_load((out / "splits" / f"fold{k}" / "data.yaml").read_text())
        assert {sources[p] for p in split["train_photos"]}.isdisjoint({sources[p] for p in split["val_photos"]})
    assert record.body_length_px["cow"] == pytest.approx(
        float(np.median([max(float(r[3]) - float(r[1]), float(r[4]) - float(r[2])) for r in rows if r[5] == "cow"]))
    )


def test_a_label_without_a_class_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit, match="label 'other' is not one of --classes bull,cow,pup"):
        dataset_main(["--boxes", str(TINY / "annotations.csv"), "--classes", "bull,cow,pup", "--out", str(tmp_path)])


def test_thresholds_chosen_elsewhere_name_every_class_once():
    from training.publish import parse_class_conf

    assert parse_class_conf("pup=0.3,bull=0.5,cow=0.4", CLASSES) == {"bull": 0.5, "cow": 0.4, "pup": 0.3}
    with pytest.raises(TrainingError, match="the version's classes are"):
        parse_class_conf("bull=0.5,cow=0.4", CLASSES)
    with pytest.raises(TrainingError, match="from 0 to 1"):
        parse_class_conf("bull=1.5,cow=0.4,pup=0.3", CLASSES)


def test_evaluate_counts_a_box_dataset_in_its_own_classes_with_the_shipped_seal_model(tmp_path):
    """``training.evaluate`` on a bull/cow/pup dataset: the shipped elephant-seal weights count two of the tiles (a
    fold's unseen photos), and every metric is per seal class, the truth being the tiles' boxes ("other" dropped).
    The same weights against a record of the sea lion classes are refused, naming both class lists."""
    from detector.errors import DetectorError
    from training.evaluate import evaluate_model
    from training.records import DataSplit

    out = tmp_path / "ds"
    assert dataset_main([
        "--boxes", str(TINY / "annotations.csv"), "--classes", "bull,cow,pup", "--map", "other=drop",
        "--ground-scale", "0.448", "--chip", "224", "--folds", "3", "--out", str(out),
    ]) == 0  # fmt: skip
    data_yaml = Path(DatasetRecord.read(out).splits["fold0"])
    train_ids, val_ids = DataSplit.read(data_yaml).photo_ids(data_yaml)
    weights = Path(__file__).parent.parent / "weights" / "elephant-seals-yolov5n-elephant-seals-v1.pt"
    result = evaluate_model(weights, out, val_ids, train_ids, data_yaml=data_yaml, device="cpu")
    boxes = Counter((Path(row[0]).stem, row[5]) for row in _rows() if row[5] != "other")
    assert [row.truth for row in result.per_photo] == [[boxes[(p, c)] for c in CLASSES] for p in val_ids]
    assert sum(sum(row.truth) for row in result.per_photo) > 10
    assert list(result.model.per_class) == list(CLASSES) == list(result.baseline_training_mean.per_class)
    assert set(result.chips.per_class_map50) <= set(CLASSES) and "cow" in result.chips.per_class_map50
    assert all(len(row.predicted) == len(CLASSES) for row in result.per_photo)
    assert result.model.competition_rmse < result.baseline_training_mean.competition_rmse  # it counts seals
    record = json.loads((out / "photos.json").read_text())
    del record["class_names"]  # a record of the sea lion classes (the default of an older record)
    (out / "photos.json").write_text(json.dumps(record))
    with pytest.raises(DetectorError, match=r"have classes \('bull', 'cow', 'pup'\).*lists \('adult_males'"):
        evaluate_model(weights, out, val_ids, device="cpu")


@pytest.mark.parametrize("chip", ["264", "0"])
def test_a_chip_size_off_the_model_stride_is_refused_before_any_work(tmp_path, chip):
    with pytest.raises(SystemExit) as error:
        dataset_main(["--boxes", str(TINY / "annotations.csv"), "--chip", chip, "--out", str(tmp_path / "ds")])
    assert f"chip size (--chip) {chip} is not a positive multiple of 32" in str(error.value)
    assert not (tmp_path / "ds").exists()
