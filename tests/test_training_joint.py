"""Datasets from several data folders, folds that hold the rare classes, and joint training with another species.

Real data only: the tiny dotted sea lion crops (tests/data/sealions-tiny) and six elephant-seal tiles
(tests/data/pinnipeds-tiny, MIT).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from ultralytics.data.utils import img2label_paths

from detector.classes import SEA_LION_CLASSES
from training.boxes import BoxBuildOptions, ClassMap, build_box_dataset, read_boxes
from training.dataset import BuildOptions, ChipOptions, build_dataset, folds_holding
from training.io import DatasetRecord, TrainingError
from training.joint import join_datasets, parse_repeats
from training.records import TrainingRecord
from training.train import TrainConfig, train

SEALIONS = Path(__file__).parent / "data" / "sealions-tiny"
SEALS = Path(__file__).parent / "data" / "pinnipeds-tiny"
CHIPS = ChipOptions(size=96, overlap=0.25, empty_share=0.2)


def _folder(tmp_path: Path, name: str, photos: dict[str, str]) -> Path:
    """A Kaggle-layout data folder holding some of the tiny crops under new ids (id → source file stem)."""
    root = tmp_path / name
    (root / "TrainDotted").mkdir(parents=True)
    for photo_id, stem in photos.items():
        shutil.copy(SEALIONS / "TrainDotted" / f"{stem}.jpg", root / "TrainDotted" / f"{photo_id}.jpg")
    return root


def test_a_dataset_takes_in_several_data_folders(tmp_path):
    one = _folder(tmp_path, "one", {"a": "a", "b": "b"})
    two = _folder(tmp_path, "two", {"c": "a"})
    record = build_dataset([one, two], tmp_path / "ds", BuildOptions(ground_scale=0.25, chips=CHIPS, folds=0))
    assert [p.photo_id for p in record.photos] == ["a", "b", "c"]
    assert record.by_id["c"].dot_counts == record.by_id["a"].dot_counts  # the same crop under another id
    assert str(one.resolve()) in record.source and str(two.resolve()) in record.source
    clash = _folder(tmp_path, "three", {"b": "a"})
    with pytest.raises(TrainingError, match="photo b is in both"):
        build_dataset([one, clash], tmp_path / "bad", BuildOptions(ground_scale=0.25, chips=CHIPS, folds=0))


def test_folds_holding_spread_pups_then_juveniles_over_every_fold():
    counts = {
        "0": {"pups": 344, "juveniles": 42}, "43": {"pups": 189, "juveniles": 47}, "8": {"pups": 51, "juveniles": 4},
        "3": {"pups": 38, "juveniles": 7}, "1": {"pups": 0, "juveniles": 12}, "2": {"pups": 0, "juveniles": 20},
        "4": {"pups": 0, "juveniles": 0}, "6": {"pups": 0, "juveniles": 18}, "9": {"pups": 0, "juveniles": 0},
    }  # fmt: skip
    folds = folds_holding(counts, 4, ("pups", "juveniles"))
    assert sorted(sum(folds, [])) == sorted(counts)
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert all(sum(counts[p]["pups"] for p in fold) > 0 for fold in folds)
    assert all(sum(counts[p]["juveniles"] for p in fold) > 0 for fold in folds)
    assert folds_holding(counts, 4, ("pups", "juveniles")) == folds  # deterministic


@pytest.fixture(scope="module")
def joint(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("joint")
    base = build_dataset(
        _folder(root, "sealions", {"a": "a", "b": "b"}), root / "base", BuildOptions(0.25, CHIPS, folds=2)
    )
    mapping = ["bull=adult_males", "cow=adult_females", "pup=pups", "other=drop"]
    seals = build_box_dataset(
        read_boxes(SEALS / "annotations.csv"),
        root / "seals",
        BoxBuildOptions(ClassMap.parse(SEA_LION_CLASSES, mapping), ground_scale=0.2, folds=0),
        chips=CHIPS,
    )
    joined = join_datasets(root / "base", root / "seals", root / "joint", ratio=1.0, seed=0)
    return {"root": root, "base": base, "seals": seals, "joined": joined}


def test_joint_splits_add_the_other_species_to_training_only(joint):
    root, base = joint["root"], joint["base"]
    seal_chips = {str(p.resolve()) for p in (root / "seals" / "images").rglob("*.jpg")}
    for name in ("all", "fold0", "fold1"):
        split = yaml.safe_load((root / "joint" / "splits" / name / "data.yaml").read_text())
        assert split["names"] == dict(enumerate(SEA_LION_CLASSES))
        train = (root / "joint" / split["train"]).read_text().split()
        val = (root / "joint" / split["val"]).read_text().split()
        base_split = yaml.safe_load(Path(base.splits[name]).read_text())
        base_train = (root / "base" / base_split["train"]).read_text().split()
        extra = [p for p in train if p in seal_chips]
        assert len(train) == len(base_train) + len(extra)
        assert len(extra) == min(len(seal_chips), len(base_train))  # ratio 1
        assert not set(val) & seal_chips and all(Path(p).is_file() for p in train + val)
        assert split["val_photos"] == base_split["val_photos"]
    assert DatasetRecord.read(root / "joint").ground_scale == 0.25  # the base's facts
    seal_labels = [
        int(line.split()[0]) for p in (root / "seals" / "labels").rglob("*.txt") for line in p.read_text().splitlines()
    ]
    assert set(seal_labels) == {0, 2, 4}  # bull → adult males, cow → adult females, pup → pups


def test_joint_training_runs_on_the_joint_split(joint):
    root = joint["root"]
    record = train(
        TrainConfig(
            data=str(root / "joint" / "splits" / "fold0" / "data.yaml"),
            epochs=1,
            batch=4,
            workers=0,
            project=str(root / "runs"),
            name="joint",
        ),  # fmt: skip
        command="joint tiny",
    )
    assert record.epochs_run == 1 and record.sealion_facts.ground_scale == 0.25
    assert TrainingRecord.read(root / "runs" / "joint" / "training_record.json").status == "finished"
    with pytest.raises(TrainingError, match="build the extra dataset with the base's --classes"):
        join_datasets(root / "base", seals_with_own_classes(root), root / "bad")


def seals_with_own_classes(root: Path) -> Path:
    """The elephant-seal tiles as a dataset of their own classes (bull, cow, pup)."""
    out = root / "seals-own"
    if not (out / "photos.json").is_file():
        build_box_dataset(
            read_boxes(SEALS / "annotations.csv"), out,
            BoxBuildOptions(ClassMap.parse("bull,cow,pup", ["other=drop"]), ground_scale=0.2, folds=0), chips=CHIPS,
        )  # fmt: skip
    return out


def test_repeat_lists_the_chips_holding_a_class_k_times_on_training_sides_only(joint):
    root, base = joint["root"], joint["base"]
    joined = join_datasets(root / "base", None, root / "repeat", repeat=parse_repeats(["pups=3"]))
    assert joined["extra"] is None and joined["repeat"] == {"pups": 3}
    pups = SEA_LION_CLASSES.index("pups")
    for name in ("all", "fold0", "fold1"):
        split = yaml.safe_load((root / "repeat" / "splits" / name / "data.yaml").read_text())
        base_split = yaml.safe_load(Path(base.splits[name]).read_text())
        base_train = [
            str((root / "base" / p).resolve()) for p in (root / "base" / base_split["train"]).read_text().split()
        ]
        labels = {chip: Path(img2label_paths([chip])[0]) for chip in base_train}
        with_pups = [
            chip
            for chip, label in labels.items()
            if label.is_file() and any(line.split()[0] == str(pups) for line in label.read_text().splitlines())
        ]
        train = (root / "repeat" / split["train"]).read_text().split()
        assert sorted(train) == sorted(base_train + 2 * with_pups)
        assert joined["splits"][name] == {"base_chips": len(base_train), "repeated_chips": 2 * len(with_pups),
                                          "extra_chips": 0}  # fmt: skip
        base_val = [str((root / "base" / p).resolve()) for p in (root / "base" / base_split["val"]).read_text().split()]
        assert (root / "repeat" / split["val"]).read_text().split() == base_val
    assert joined["splits"]["all"]["repeated_chips"] > 0  # the tiny crops hold pups
    with pytest.raises(TrainingError, match=r"--repeat names \['calves'\], not classes of"):
        join_datasets(root / "base", None, root / "bad", repeat={"calves": 2})
    with pytest.raises(TrainingError, match="expected CLASS=K"):
        parse_repeats(["pups=0"])
