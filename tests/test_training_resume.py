"""Time-bounded, resumable training, weights that carry their own facts, and the release recipe — on tiny real data,
with real (one- and two-epoch) training runs, no mocks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from detector.classes import SEA_LION_CLASSES
from detector.errors import ModelResolutionError
from detector.settings import ModelSettings
from detector.versions.hub import resolve_weights
from detector.versions.manifest import load_manifest
from detector.versions.weights_facts import FACTS_KEY, WeightsFacts, read_weights_facts
from tests.helpers import REPO_ROOT, build_untrained_model
from training.card import summary_metrics
from training.dataset import BuildOptions, ChipOptions, build_dataset
from training.evaluate import guarded_thresholds
from training.io import DatasetRecord, TrainingError
from training.records import Calibration, CVReport, ReleaseState, RevisionMetrics
from training.release import Release, ReleaseOptions, make_plan, split_chips
from training.release import main as release_main
from training.train import TrainConfig, read_record, resume, run_state, stamp_run, train, train_or_resume

TINY = Path(__file__).parent / "data" / "sealions-tiny"
FACTS = WeightsFacts(0.25, 96, SEA_LION_CLASSES)


def _env() -> dict[str, str]:
    return {**os.environ, "YOLO_OFFLINE": "1", "SEALION_DEVICE": "cpu"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Two tiny photos at ground scale 0.25 in 96 px chips, split all + 2 folds."""
    out = tmp_path_factory.mktemp("resume") / "dataset"
    options = BuildOptions(ground_scale=0.25, chips=ChipOptions(size=96, overlap=0.25), folds=2)
    build_dataset(TINY, out, options, command="build tiny")
    return out


@pytest.fixture(scope="module")
def resumed_run(dataset) -> dict:
    """A two-epoch run killed (SIGKILL) once its first epoch's checkpoint is saved, then resumed."""
    runs = dataset.parent / "runs"
    command = [
        sys.executable, "-m", "training.train", "--data", str(dataset / "splits" / "all" / "data.yaml"),
        "--epochs", "2", "--batch", "4", "--workers", "0", "--project", str(runs), "--name", "killed",
    ]  # fmt: skip
    run = runs / "killed"
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while (record := read_record(run)) is None or record.epochs_run < 1:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "the first epoch did not finish in 10 minutes"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    cut = read_record(run)
    state_after_kill = run_state(run)
    last_after_kill = torch.load(run / "weights" / "last.pt", map_location="cpu", weights_only=False)
    record = resume(run)
    return {"run": run, "cut": cut, "state": state_after_kill, "last": last_after_kill, "record": record}


def test_a_killed_run_says_it_was_cut_and_loses_at_most_an_epoch(resumed_run):
    cut, last = resumed_run["cut"], resumed_run["last"]
    assert cut.status == "running" and resumed_run["state"] == "cut"  # the killed process no longer runs
    assert cut.epochs_run == 1 and cut.epochs_planned == 2 and cut.wall_time_s > 0
    assert last["epoch"] == 0 and last["optimizer"] is not None  # the first epoch's checkpoint, resumable
    assert WeightsFacts.from_dict(last[FACTS_KEY]) == replace(FACTS, dataset=last[FACTS_KEY]["dataset"])


def test_a_resumed_run_finishes_with_one_record_of_both_invocations(resumed_run):
    record, run = resumed_run["record"], resumed_run["run"]
    assert record.status == "finished" and record.stopped_by == "epochs" and record.epochs_run == 2
    assert [(s.from_epoch, s.to_epoch, s.status) for s in record.segments] == [
        (0, 1, "cut"),
        (1, 2, "finished"),
    ]
    assert record.wall_time_s == pytest.approx(sum(s.seconds for s in record.segments), abs=0.2)
    assert json.loads((run / "training_record.json").read_text()) == record.to_json()
    # The budget's clock went on from the checkpoint's training time instead of restarting at the resume.
    rows = (run / "results.csv").read_text().splitlines()[1:]
    times = [float(row.split(",")[1]) for row in rows]
    assert len(times) == 2 and times[1] > times[0]
    assert run_state(run) == "finished"
    with pytest.raises(TrainingError, match="nothing to resume"):
        resume(run)
    best = torch.load(run / "weights" / "best.pt", map_location="cpu", weights_only=False)
    assert best["optimizer"] is None and best[FACTS_KEY]["ground_scale"] == 0.25  # stripped, facts kept


def test_hours_end_the_run_by_its_time_budget(dataset):
    record = train(
        TrainConfig(
            data=str(dataset / "splits" / "all" / "data.yaml"), epochs=50, hours=0.0003, batch=4, workers=0,
            project=str(dataset.parent / "runs"), name="budget",
        )
    )  # fmt: skip
    assert record.status == "finished" and record.stopped_by == "time budget"
    assert record.hours == 0.0003 and record.budget == 0.0003
    assert 1 <= record.epochs_run < 50  # a 1 s budget: ultralytics refits the 50 epochs to what fits
    assert record.train_seconds >= 0.0003 * 3600


def test_weights_are_counted_at_the_ground_scale_they_record(resumed_run, dataset, tmp_path):
    weights = resumed_run["run"] / "weights" / "best.pt"
    out = tmp_path / "counts.json"
    photo = dataset / "photos" / "b.jpg"
    done = subprocess.run(
        [sys.executable, "-m", "detector", "count", str(photo), "--weights", str(weights), "--out", str(out)],
        cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    model = json.loads(out.read_text())["results"][0]["model"]
    assert (model["ground_scale"], model["imgsz"], model["version"]) == (0.25, 96, "local")


def test_weights_that_record_no_ground_scale_are_refused_unless_it_is_given(tmp_path, dataset):
    bare = build_untrained_model(tmp_path / "bare.pt", ground_scale=None)
    done = subprocess.run(
        [sys.executable, "-m", "detector", "count", str(dataset / "photos" / "b.jpg"), "--weights", str(bare)],
        cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 2 and "--ground-scale" in done.stderr and "bare.pt" in done.stderr
    given = resolve_weights(ModelSettings(weights=bare, ground_scale=0.5))
    assert given.version.ground_scale == 0.5
    recorded = build_untrained_model(tmp_path / "recorded.pt", ground_scale=0.5)
    assert resolve_weights(ModelSettings(weights=recorded)).version.ground_scale == 0.5
    assert resolve_weights(ModelSettings(weights=recorded, ground_scale=1.0)).version.ground_scale == 1.0


def test_stamp_records_the_facts_of_a_run_trained_before_they_were_recorded(resumed_run, dataset, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(resumed_run["run"], old)
    for path in (old / "weights").glob("*.pt"):  # as the training code before issue 21 wrote them
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        checkpoint.pop(FACTS_KEY)
        torch.save(checkpoint, path)
    record = read_record(old).to_json()
    for key in (FACTS_KEY, "status", "segments"):
        record.pop(key)
    (old / "training_record.json").write_text(json.dumps(record))
    assert run_state(old) == "finished" and read_weights_facts(old / "weights" / "best.pt") is None
    with pytest.raises(ModelResolutionError, match="ground_scale=0.5"):
        resolve_weights(ModelSettings(weights=old / "weights" / "best.pt"))

    assert stamp_run(old, dataset) == WeightsFacts(0.25, 96, SEA_LION_CLASSES, str(dataset))
    for path in (old / "weights").glob("*.pt"):
        assert read_weights_facts(path).ground_scale == 0.25
    stamped = read_record(old)
    assert stamped.sealion_facts.chip_size == 96 and "status" not in stamped.to_json()  # only the facts were added
    assert resolve_weights(ModelSettings(weights=old / "weights" / "best.pt")).version.imgsz == 96

    (old / "training_record.json").unlink()  # still being trained by the old code, as far as anyone can tell
    assert run_state(old) == "unknown"
    with pytest.raises(TrainingError, match="once training has finished"):
        stamp_run(old, dataset)


def test_the_release_plan_gives_every_model_the_same_seconds_per_training_chip(dataset):
    chips = split_chips(dataset)
    plan = make_plan(3.0, 2, chips)
    assert plan.final_hours == pytest.approx(3.0 / (1 + (chips["fold0"] + chips["fold1"]) / chips["all"]))
    for name in ("fold0", "fold1"):
        assert plan.fold_hours[name] / chips[name] == pytest.approx(plan.final_hours / chips["all"])
    assert plan.final_hours + sum(plan.fold_hours.values()) == pytest.approx(3.0)
    unbuilt = make_plan(2.5, 2, None)  # before the dataset exists: folds of (k-1)/k of the chips
    assert unbuilt.final_hours == pytest.approx(1.25) and set(unbuilt.fold_hours) == {"fold0", "fold1"}
    assert make_plan(5.0, 4, None).final_hours == pytest.approx(5.0 / 4)


def test_the_release_prints_its_plan_and_writes_its_state(dataset, resumed_run, tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "dataset").symlink_to(dataset)
    argv = ["--hours", "1", "--data", str(TINY), "--work", str(work), "--manifest", str(tmp_path / "manifest.yaml")]
    assert release_main([*argv, "--plan"]) == 0
    printed = capsys.readouterr().out
    assert "release v3: 1.00 h of training on cpu, 2 folds" in printed
    assert "dataset    done" in printed and "final      todo  0." in printed and "fold0 0." in printed
    state = ReleaseState.read(work / "release_state.json")
    assert state.stages["dataset"].status == "done" and state.stages["final"].status == "pending"
    assert state.plan["hours"] == 1.0 and set(state.plan["fold_hours"]) == {"fold0", "fold1"}

    (work / "final").symlink_to(resumed_run["run"])  # a run trained elsewhere, linked in
    assert release_main([*argv, "--plan"]) == 0
    assert "final      done" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--folds 4"):
        release_main([*argv, "--plan", "--folds", "4"])


def test_the_release_trains_the_folds_calibrates_and_resumes_from_its_outputs(dataset, resumed_run, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "dataset").symlink_to(dataset)
    shutil.copytree(resumed_run["run"], work / "final")
    options = ReleaseOptions(
        hours=0.0006, data=(TINY,), work=work, manifest=tmp_path / "manifest.yaml", overrides={"val": False, "batch": 4}
    )
    state = Release(options, "test").run(until="calibrate")
    assert [state.stages[s].status for s in ("dataset", "final", "cv", "calibrate", "publish")] == [
        "done", "done", "done", "done", "pending",
    ]  # fmt: skip
    cv = CVReport.read_from(work / "cv")
    assert set(cv.hours_per_fold) == {"fold0", "fold1"} and cv.epochs_per_fold != 400
    for name in ("fold0", "fold1"):
        record = read_record(work / "cv" / name)
        assert record.stopped_by == "time budget" and record.hours == cv.hours_per_fold[name]
        assert cv.fold_training[name].epochs_run == record.epochs_run
        assert read_weights_facts(work / "cv" / name / "weights" / "best.pt").ground_scale == 0.25
    calibration = Calibration.read(work / "cv" / "calibration.json")
    assert calibration.photos == [row.photo_id for row in cv.per_photo]
    assert set(calibration.class_conf) == set(SEA_LION_CLASSES)
    trained_at = (work / "cv" / "fold0" / "weights" / "best.pt").stat().st_mtime_ns
    again = Release(options, "test again").run(until="calibrate")  # a rerun finds every output: trains nothing
    assert again.stages["cv"].status == "done" and again.stages["calibrate"].seconds is not None
    assert (work / "cv" / "fold0" / "weights" / "best.pt").stat().st_mtime_ns == trained_at
    recount = Release(options, "count again")  # the CV stage itself again: folds reused, photos counted again
    recount.run_cv(recount.plan())
    assert (work / "cv" / "fold0" / "weights" / "best.pt").stat().st_mtime_ns == trained_at
    cv = CVReport.read_from(work / "cv")
    for name in ("fold0", "fold1"):  # a reused fold's seconds still hold its training, not only the counting
        assert cv.fold_seconds[name] > cv.fold_training[name].train_wall_time_s > 0
    fold0 = DatasetRecord.read(dataset).splits["fold0"]
    other = TrainConfig(data=fold0, hours=0.5, project=str(work / "cv"), name="fold0", extra={"val": False})
    with pytest.raises(TrainingError, match="other settings .*0.5 hours"):  # reused only as it was asked for
        train_or_resume(other)

    # Publishing reads the typed records (the final run's, the CV report, the calibration) through the command line.
    repo = tmp_path / "hub" / "sealion-tests" / "release"
    published = Release(replace(options, git_repo=repo), "test publish").run(until="publish")
    assert published.stages["publish"].status == "done"
    version = load_manifest(options.manifest).get(options.version)
    assert dict(version.metrics) == summary_metrics(cv, calibration=calibration)
    assert dict(version.class_conf) == calibration.class_conf and version.imgsz == read_record(work / "final").imgsz
    shown = subprocess.run(["git", "show", f"{options.version}:metrics.json"], cwd=repo, capture_output=True,
                           text=True, check=True)  # fmt: skip
    revision = RevisionMetrics.from_json(shown.stdout, "metrics.json")
    assert revision.cross_validation == cv and revision.calibration == calibration
    assert revision.training == read_record(work / "final").final_val_metrics


def test_the_threshold_guard_works_with_the_one_other_fold_of_a_two_fold_cv():
    def found(*pairs: tuple[int, float]) -> tuple[np.ndarray, np.ndarray]:
        return np.array([c for c, _ in pairs]), np.array([conf for _, conf in pairs])

    # adult males: two sure detections and two unsure ones per photo, one animal each: a high threshold holds up on
    # the held-out photo. Adult females: two detections at 0.5 on both photos, two animals on one and none on the
    # other: whatever one photo says, the other contradicts it, so the uniform conf stays.
    detections = {p: found((0, 0.9), (0, 0.3), (0, 0.3), (2, 0.5), (2, 0.5)) for p in ("c", "d")}
    truth = {"c": np.array([1, 0, 2, 0, 0]), "d": np.array([1, 0, 0, 0, 0])}
    guarded, unguarded = guarded_thresholds({"fold1": ["c", "d"]}, truth, detections, 0.25)
    assert guarded[0] == pytest.approx(0.9) and unguarded[0] == pytest.approx(0.9)
    assert guarded[2] == 0.25 and list(guarded[[1, 3, 4]]) == [0.25] * 3  # no evidence: the default
    lone, _ = guarded_thresholds({"fold1": ["c"]}, truth, detections, 0.25)
    assert list(lone) == [0.25] * 5  # one photo: nothing to check a threshold on
