"""The typed records of the training steps (training/records.py) and the publish target: the files already on disk
(the v3 release, the shipped manifest's metrics, the published revision's metrics.json) still load and give the
numbers the product ships; small files written here round-trip; a bad or missing field is an error naming the file
and the field."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from detector.classes import SEA_LION_CLASSES
from detector.versions.manifest import DEFAULT_MANIFEST, load_manifest
from training.card import summary_metrics
from training.evaluate import count_metrics
from training.io import DatasetRecord, TrainingError
from training.publish import main as publish_main
from training.records import (
    CALIBRATION,
    CV_REPORT,
    TRAINING_RECORD,
    Calibration,
    CVReport,
    DataSplit,
    Evaluation,
    PhotoCounts,
    ReleaseState,
    RevisionMetrics,
    TrainingRecord,
)
from training.revision import PublishError, PublishTarget
from training.train import run_state

# Files of a real release, on the machine that made it; nothing in the repository or ../shared holds them. The
# tests that read them run where these variables point at them, and skip elsewhere saying so.
RELEASE_ENV = "SEALION_TEST_RELEASE_V3"  # the v3 release's work folder: python -m training.release ... --work DIR
REVISION_ENV = "SEALION_TEST_MODEL_REPO"  # the model's hub git repo (a checkout of tag v3; training.publish)


def _given(variable: str, what: str) -> Path:
    value = os.environ.get(variable)
    if not value:
        pytest.skip(f"set {variable} to {what} to run this (docs/training.md); not in the repository")
    return Path(value)


def _release() -> Path:
    folder = _given(RELEASE_ENV, "the v3 release's work folder (python -m training.release --work DIR)")
    if not (folder / "cv" / CV_REPORT).is_file():
        pytest.fail(f"{RELEASE_ENV}={folder} holds no cv/{CV_REPORT}: not a release work folder")
    return folder


def test_the_v3_release_files_load_and_give_the_shipped_metrics():
    work = _release()
    cv = CVReport.read_from(work / "cv")
    calibration = Calibration.read(work / "cv" / CALIBRATION)
    final = TrainingRecord.read(work / "final" / TRAINING_RECORD)
    assert len(cv.per_photo) == cv.cv.photos and {row.fold for row in cv.per_photo} == set(cv.folds)
    assert calibration.photos == [row.photo_id for row in cv.per_photo]
    assert set(calibration.class_conf) == set(SEA_LION_CLASSES)
    for name in cv.folds:
        fold = Evaluation.read(work / "cv" / f"{name}_metrics.json")
        assert fold.model.photos == sum(row.fold == name for row in cv.per_photo)
        assert fold.chips == cv.chips_map50[name]
        data_yaml = work / "dataset" / "splits" / name / "data.yaml"
        split = DataSplit.read(data_yaml)
        assert split.class_names == SEA_LION_CLASSES
        assert split.photo_ids(data_yaml)[1] == [row.photo_id for row in cv.per_photo if row.fold == name]
    # The facts the final weights record are the dataset's (photos.json), and an old record without a status says
    # its run finished.
    dataset = DatasetRecord.read(work / "dataset")
    facts = final.sealion_facts
    assert (facts.ground_scale, facts.chip_size) == (dataset.ground_scale, dataset.chip_size)
    assert facts.chip_size == final.imgsz
    assert final.status == "finished" and run_state(work / "final") == "finished" and final.init.matched > 0
    # The shipped manifest's v3 metrics are what publish computes from these files (the epochs were described by
    # hand from the folds' records).
    shipped = dict(load_manifest(DEFAULT_MANIFEST).get("v3").metrics)
    computed = summary_metrics(cv, calibration=calibration)
    epochs = shipped.pop("cv_epochs_per_fold")
    computed.pop("cv_epochs_per_fold")
    assert computed == shipped
    assert calibration.class_conf == dict(load_manifest(DEFAULT_MANIFEST).get("v3").class_conf)
    assert all(str(fold.epochs_run) in str(epochs) for fold in cv.fold_training.values())


def test_the_files_on_disk_are_written_back_unchanged():
    work = _release()
    files = [
        (CVReport, work / "cv" / CV_REPORT),
        (Calibration, work / "cv" / CALIBRATION),
        *[(Calibration, path) for path in sorted((work / "cv").glob("calibration-*.json"))],  # older: fewer keys
        *[(Evaluation, path) for path in sorted((work / "cv").glob("fold*_metrics.json"))],
        (TrainingRecord, work / "final" / TRAINING_RECORD),
        (ReleaseState, work / ReleaseState.FILE),
    ]
    for kind, path in files:
        assert kind.read(path).to_json() == json.loads(path.read_text()), path


def test_the_published_revision_metrics_load():
    path = _given(REVISION_ENV, "the model's hub git repo checked out at tag v3") / RevisionMetrics.FILE
    if not path.is_file():
        pytest.fail(f"{REVISION_ENV}: {path} missing: check out tag v3 of the model's hub repo there")
    published = RevisionMetrics.read(path)
    assert published.cross_validation.cv.photos == len(published.cross_validation.per_photo)
    shipped = load_manifest(DEFAULT_MANIFEST).get("v3")
    assert published.calibration.class_conf == dict(shipped.class_conf)  # the thresholds the manifest pins


def _cv_report() -> CVReport:
    truth = np.array([[2, 0, 10, 1, 4], [4, 2, 20, 3, 8]])
    predicted = truth + np.array([1, 0, -3, 0, 2])
    rows = [
        PhotoCounts(photo_id=str(i), truth=t.tolist(), predicted=p.tolist(), tiles=4, seconds=0.5, fold=f"fold{i}")
        for i, (t, p) in enumerate(zip(truth, predicted, strict=True))
    ]
    return CVReport(
        folds=["fold0", "fold1"], epochs_per_fold="3-5", cv=count_metrics(truth, predicted),
        baseline_training_mean=count_metrics(truth, np.full_like(truth, 5)), mean_chip_map50=0.5, per_photo=rows,
    )  # fmt: skip


def test_a_record_round_trips_and_keeps_keys_it_does_not_know(tmp_path):
    report = _cv_report()
    path = report.write(tmp_path / CV_REPORT)
    assert CVReport.read_from(tmp_path) == report
    assert CVReport.read(path).cv.per_class["adult_females"].rmse == pytest.approx(3.0)
    data = json.loads(path.read_text())
    assert "hours_per_fold" not in data  # only what was given is written: no defaults invented into the file
    data["written_by_a_later_version"] = {"x": 1}
    path.write_text(json.dumps(data))
    again = CVReport.read(path).changed(epochs_per_fold=4)
    assert again.epochs_per_fold == 4 and again.to_json()["written_by_a_later_version"] == {"x": 1}


def test_a_bad_or_missing_field_names_the_file_and_the_field(tmp_path):
    data = _cv_report().to_json()
    data["cv"]["competition_rmse"] = "low"
    bad = tmp_path / "bad" / CV_REPORT
    bad.parent.mkdir()
    bad.write_text(json.dumps(data))
    with pytest.raises(TrainingError, match=rf"{bad}.*cv\.competition_rmse: input should be a valid number"):
        CVReport.read(bad)
    del data["folds"]
    data["cv"]["competition_rmse"] = 1.0
    bad.write_text(json.dumps(data))
    with pytest.raises(TrainingError, match=r"not a valid cross-validation report: folds: field required"):
        CVReport.read(bad)
    bad.write_text("{not json")
    with pytest.raises(TrainingError, match=rf"{bad} is not a valid cross-validation report: \(the file\)"):
        CVReport.read(bad)
    with pytest.raises(TrainingError, match=rf"{tmp_path / CV_REPORT} not found: run python -m training.evaluate"):
        CVReport.read_from(tmp_path)
    record = tmp_path / "run" / TRAINING_RECORD
    record.parent.mkdir()
    record.write_text(json.dumps({"imgsz": 96, "base_config": "yolov5n.yaml", "save_dir": "x", "weights": "x"}))
    with pytest.raises(TrainingError, match=r"training record: epochs_run: field required; wall_time_s: field"):
        TrainingRecord.read_run(record.parent)


def test_the_publish_target_is_built_once_at_the_edge(tmp_path, capsys):
    with pytest.raises(PublishError, match="--git-repo DIR .* or --endpoint URL"):
        PublishTarget()
    target = PublishTarget(git_repo=tmp_path / "repo")
    assert target.where == str(tmp_path / "repo") and target.for_repo("a/b").repo_id == "a/b"
    assert PublishTarget(endpoint="http://hub").where == "http://hub"
    # The command checks where before it reads anything, then names a missing record's file.
    argv = ["--run", str(tmp_path / "run"), "--dataset", str(tmp_path / "dataset"), "--version", "v9"]
    with pytest.raises(SystemExit, match="publish: say where to publish"):
        publish_main(argv)
    with pytest.raises(SystemExit, match=rf"publish: {tmp_path / 'run' / TRAINING_RECORD} not found"):
        publish_main([*argv, "--git-repo", str(tmp_path / "repo"), "--manifest", str(tmp_path / "manifest.yaml")])


def test_a_hand_written_data_yaml_trains_but_has_no_photo_sides(tmp_path):
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text("train: chips.txt\nnames: [adult_males, subadult_males, adult_females, juveniles, pups]\n")
    split = DataSplit.read(data_yaml)
    assert split.class_names == SEA_LION_CLASSES and split.listing(data_yaml) == tmp_path / "chips.txt"
    with pytest.raises(TrainingError, match=rf"{data_yaml} lists no train_photos and val_photos: build the dataset"):
        split.photo_ids(data_yaml)
    data_yaml.write_text("names: [a]\n")
    with pytest.raises(TrainingError, match=rf"{data_yaml} is not a valid data.yaml: train: field required"):
        DataSplit.read(data_yaml)
