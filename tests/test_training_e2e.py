"""End to end on tiny real data, no mocks: dots → dataset → train 1 epoch → publish a tagged revision to a local
git model repo served by olah → the product's Detector pulls that tag and counts."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import ModelCard
from ultralytics.utils.instance import Instances

from detector.classes import CLASS_COLORS, SEA_LION_CLASSES
from detector.files import sha256_file
from detector.settings import Settings
from detector.versions.hub import version_from_card
from detector.versions.manifest import add_version, load_manifest
from tests.helpers import OlahServer
from training.card import attach_cv, refresh_card, summary_metrics
from training.dataset import BuildOptions, ChipOptions, build_dataset
from training.evaluate import count_metrics, evaluate_model
from training.io import DatasetRecord
from training.publish import (
    CardInputs,
    ManifestUpdate,
    PublishError,
    PublishTarget,
    TrainedModel,
    publish,
    training_data_summary,
    training_run_summary,
)
from training.records import TRAINING_RECORD, Calibration, CVReport, TrainingRecord
from training.train import RandomRot90, TrainConfig, auto_batch, train

TINY = Path(__file__).parent / "data" / "sealions-tiny"
REPO_ID = "sealion-tests/trained-tiny"


def test_random_rot90_moves_boxes_with_the_pixels():
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[10:30, 50:90] = 255  # a box at x 50-90, y 10-30
    instances = Instances(np.array([[70 / 200, 20 / 100, 40 / 200, 20 / 100]], np.float32), normalized=True)
    out = RandomRot90(p=1.0)({"img": image, "instances": instances})
    ys, xs = np.nonzero(out["img"][:, :, 0])
    got = out["instances"]
    got.convert_bbox("xyxy")
    got.denormalize(out["img"].shape[1], out["img"].shape[0])
    assert out["img"].shape == (200, 100, 3)
    assert got.bboxes[0] == pytest.approx([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], abs=1e-4)
    random.seed(0)
    untouched = RandomRot90(p=0.0)({"img": image, "instances": instances})
    assert untouched["img"] is image


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("e2e")
    options = BuildOptions(ground_scale=0.25, chips=ChipOptions(size=96, overlap=0.25), folds=0, val_ids=("b",))
    summary = build_dataset(TINY, root / "dataset", options, command="build tiny")
    record = train(
        TrainConfig(
            data=summary.splits["holdout"], epochs=1, batch=4, workers=0, project=str(root / "runs"), name="tiny"
        ),
        command="python -m training.train (tiny e2e)",
    )
    return {"root": root, "summary": summary, "record": record}


def test_auto_batch_follows_chip_size_and_data_size(trained):
    data = Path(trained["summary"].splits["holdout"])
    chips = len((data.parent.parent.parent / "holdout_train.txt").read_text().split())
    assert auto_batch(data, 96) == max(2, min(16, chips // 12))  # a tiny set: small batches, more steps
    big = data.parent / "big.yaml"
    listing = data.parent / "big_train.txt"
    listing.write_text("./x.jpg\n" * 5000)
    big.write_text(yaml.safe_dump({"path": str(data.parent), "train": "big_train.txt", "names": {}}))
    assert auto_batch(big, 320) == 16 and auto_batch(big, 640) == 4 and auto_batch(big, 160) == 64


def test_training_writes_weights_and_a_record(trained):
    record = trained["record"]
    assert Path(record.weights).is_file()
    assert record.imgsz == 96 and record.base_config == "yolov5n.yaml" and record.epochs_run == 1
    args = record.ultralytics_args
    assert (args["fliplr"], args["flipud"], args["degrees"], args["perspective"]) == (0.5, 0.5, 0.0, 0.0)
    assert record.train_photos == ["a"] and record.val_photos == ["b"]
    saved = json.loads((Path(record.save_dir) / TRAINING_RECORD).read_text())
    assert saved["command"] == record.command and TrainingRecord.read_run(Path(record.save_dir)) == record


def test_evaluate_counts_whole_photos_with_the_product_detector(trained):
    dataset = trained["root"] / "dataset"
    result = evaluate_model(Path(trained["record"].weights), dataset, ["b"], ["a"])
    assert result.model.photos == 1 and set(result.model.per_class) == set(SEA_LION_CLASSES)
    truth = result.per_photo[0].truth
    assert truth == [trained["summary"].photos[1].dot_counts[n] for n in SEA_LION_CLASSES]
    # The training mean of one photo is that photo's counts: the baseline error is their difference.
    a = [trained["summary"].photos[0].dot_counts[n] for n in SEA_LION_CLASSES]
    assert result.baseline_training_mean.total_mae == pytest.approx(abs(sum(a) - sum(truth)))


def test_publish_to_local_git_repo_and_detector_pulls_the_tag(trained, tmp_path, monkeypatch):
    server = OlahServer(tmp_path / "hub")
    repo_dir = server.repo_dir(REPO_ID)
    manifest = tmp_path / "weights" / "manifest.yaml"
    manifest.parent.mkdir()
    record = trained["record"]
    metrics = {"note": "1-epoch smoke model"}
    model = TrainedModel(Path(record.weights), "v1", record.imgsz, 0.25, record.base_config)
    target = PublishTarget(REPO_ID, git_repo=repo_dir)
    training_data = training_data_summary(DatasetRecord.read(trained["root"] / "dataset"))
    published = publish(
        model, CardInputs(record.command, training_data, metrics), target, ManifestUpdate(manifest, True, True)
    )
    tag_commit = subprocess.run(
        ["git", "rev-list", "-n1", "v1"], cwd=repo_dir, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert published.commit == tag_commit and len(tag_commit) == 40
    card = ModelCard.load(repo_dir / "README.md").data.to_dict()
    assert card["weights"] == {"filename": published.filename, "sha256": published.sha256}
    assert card["class_names"] == list(SEA_LION_CLASSES)
    assert card["class_colors"]["pups"] == list(CLASS_COLORS["pups"])
    assert (card["imgsz"], card["ground_scale"], card["base_config"]) == (96, 0.25, "yolov5n.yaml")
    assert card["training_command"] == record.command and card["metrics"] == metrics
    entry = load_manifest(manifest).get("v1")
    assert (entry.commit, entry.sha256, entry.revision) == (tag_commit, published.sha256, "v1")
    assert entry.ground_scale == 0.25 and entry.imgsz == 96 and load_manifest(manifest).default == "v1"
    assert sha256_file(manifest.parent / entry.shipped_file) == published.sha256
    with pytest.raises(PublishError, match="already"):
        publish(model, CardInputs("", {}, {}), target, ManifestUpdate(manifest))
    with pytest.raises(PublishError, match="say where to publish"):
        PublishTarget(REPO_ID)

    server.start(REPO_ID)
    try:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.setenv("SEALION_MANIFEST", str(manifest))
        for name in ("HF_HUB_OFFLINE", "SEALION_MODEL_VERSION", "SEALION_WEIGHTS", "SEALION_HUB_REPO"):
            monkeypatch.delenv(name, raising=False)
        from detector import Detector

        settings = Settings.from_env().model  # what an entry point reads: the hub and the manifest above

        # The card alone describes the revision (how the detector sees a tag that is not in its manifest).
        from_card = version_from_card(REPO_ID, "v1", settings.hub)
        assert (from_card.sha256, from_card.ground_scale, from_card.imgsz) == (published.sha256, 0.25, 96)

        local = Detector.load(settings.with_options(repo_id=REPO_ID, revision="v1", device="cpu"), warmup=False)
        assert local.info.source == "shipped"  # publish shipped it, sha256-equal: local first, the hub is not asked
        detector = Detector.load(settings.with_options(repo_id=REPO_ID, revision="v1", device="cpu", refresh=True))
        assert detector.info.source == "hub" and detector.info.sha256 == published.sha256
        assert detector.info.ground_scale == 0.25 and detector.class_names == SEA_LION_CLASSES
        photo = trained["root"] / "dataset" / "photos" / "b.jpg"
        result = detector.count(str(photo), photo_scale=0.25, conf=0.001)
        assert set(result.counts) == set(SEA_LION_CLASSES) and result.total == sum(result.counts.values())
        assert result.tiles >= 4  # a 192 px photo in 96 px tiles
    finally:
        server.stop()


def publish_tiny_v1(trained: dict, repo_dir: Path, manifest: Path):
    """The tiny model published as v1 to a local git model repo, listed in ``manifest``."""
    record = trained["record"]
    model = TrainedModel(Path(record.weights), "v1", record.imgsz, 0.25, record.base_config)
    training_data = training_data_summary(DatasetRecord.read(trained["root"] / "dataset"))
    inputs = CardInputs(record.command, training_data, {}, training_run=training_run_summary(record))
    return publish(model, inputs, PublishTarget(REPO_ID, git_repo=repo_dir), ManifestUpdate(manifest))


def at_v1(repo_dir: Path, path: str) -> str:
    """The text of ``path`` at tag v1 of a local git model repo."""
    shown = subprocess.run(["git", "show", f"v1:{path}"], cwd=repo_dir, capture_output=True, text=True, check=True)
    return shown.stdout


def test_a_refreshed_card_renders_what_the_manifest_learned_after_publishing(trained, tmp_path):
    """Thresholds (or a runtime's accuracy) recorded in the manifest after publishing reach the revision's card:
    ``python -m training.card`` commits the re-rendered README.md on the tag, and the manifest pins that commit."""
    repo_dir, manifest = OlahServer(tmp_path / "hub").repo_dir(REPO_ID), tmp_path / "manifest.yaml"
    record, published = trained["record"], publish_tiny_v1(trained, repo_dir, manifest)

    first = at_v1(repo_dir, "README.md")
    assert f"* Trained: {record.epochs_run} epochs in " in first and "## Count thresholds" not in first
    entry = load_manifest(manifest).get("v1")
    add_version(manifest, replace(entry, class_conf={name: 0.3 for name in SEA_LION_CLASSES}))
    refreshed = refresh_card("v1", PublishTarget(git_repo=repo_dir), manifest)

    tag_commit = subprocess.run(
        ["git", "rev-list", "-n1", "v1"], cwd=repo_dir, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert refreshed.commit == tag_commit != published.commit
    assert load_manifest(manifest).get("v1").commit == tag_commit
    card = ModelCard(at_v1(repo_dir, "README.md"))
    assert card.data.to_dict()["class_conf"] == {name: 0.3 for name in SEA_LION_CLASSES}
    assert "| pups | 0.30 |" in card.text and f"* Trained: {record.epochs_run} epochs in " in card.text
    assert card.data.to_dict()["training_command"] == record.command  # publish-time facts are kept
    weights = subprocess.run(["git", "show", f"v1:{published.filename}"], cwd=repo_dir, capture_output=True, check=True)
    assert hashlib.sha256(weights.stdout).hexdigest() == published.sha256  # the pin still holds


def test_a_cross_validation_run_after_publishing_reaches_the_manifest_the_metrics_and_the_card(trained, tmp_path):
    """``python -m training.card --cv-dir``: a CV of the version's recipe made after it was published replaces the
    metrics its card, its revision's metrics.json and the manifest report; weights and thresholds stay as published,
    and a calibration that would count with other thresholds is refused, naming the file."""
    repo_dir, manifest = OlahServer(tmp_path / "hub").repo_dir(REPO_ID), tmp_path / "manifest.yaml"
    published = publish_tiny_v1(trained, repo_dir, manifest)
    truth = np.array([[2, 0, 10, 1, 4], [4, 2, 20, 3, 8]])
    cv = CVReport(
        folds=["fold0", "fold1"], epochs_per_fold="180-190", conf=0.2,
        cv=count_metrics(truth, truth + [1, 0, -3, 0, 2]),
        baseline_training_mean=count_metrics(truth, np.full_like(truth, 5)), mean_chip_map50=0.5,
    )  # fmt: skip
    cv_dir = tmp_path / "cv-v1"
    cv.write(cv_dir / "cv_metrics.json")

    pinned = attach_cv("v1", PublishTarget(git_repo=repo_dir), cv_dir, manifest)

    assert load_manifest(manifest).get("v1") == pinned and pinned.commit != published.commit
    assert dict(pinned.metrics) == summary_metrics(cv) and pinned.sha256 == published.sha256
    assert json.loads(at_v1(repo_dir, "metrics.json"))["cross_validation"]["epochs_per_fold"] == "180-190"
    card = ModelCard(at_v1(repo_dir, "README.md"))
    assert card.data.to_dict()["metrics"]["cv_competition_rmse"] == summary_metrics(cv)["cv_competition_rmse"]
    assert "180-190" in card.text
    weights = subprocess.run(["git", "show", f"v1:{published.filename}"], cwd=repo_dir, capture_output=True, check=True)
    assert hashlib.sha256(weights.stdout).hexdigest() == published.sha256

    add_version(manifest, replace(pinned, class_conf={name: 0.2 for name in SEA_LION_CLASSES}))
    other = {name: 0.3 for name in SEA_LION_CLASSES}
    m = cv.cv
    Calibration(
        dataset="dataset", cv_dir=str(cv_dir), grid=[0.02, 0.9, 0.01], calibration_helps=True, class_conf=other,
        class_conf_unguarded=other, class_conf_per_fold={}, photos=["a", "b"], uniform_conf=0.2,
        metrics_uniform_conf=m, metrics_calibrated_other_folds=m, metrics_unguarded_other_folds=m,
        metrics_unguarded_in_sample=m, baseline_training_mean=cv.baseline_training_mean, per_photo=[],
    ).write(cv_dir / "calibration.json")  # fmt: skip
    with pytest.raises(PublishError, match="calibration.json chooses the thresholds .* publish a new version"):
        attach_cv("v1", PublishTarget(git_repo=repo_dir), cv_dir, manifest)


def test_summary_metrics_from_a_cv_report():
    truth = np.array([[2, 0, 10, 1, 4], [4, 2, 20, 3, 8]])
    cv = CVReport(
        folds=["fold0", "fold1"], epochs_per_fold=3, conf=0.25, cv=count_metrics(truth, truth + [1, 0, -3, 0, 2]),
        baseline_training_mean=count_metrics(truth, np.full_like(truth, 5)), mean_chip_map50=0.5,
    )  # fmt: skip
    metrics = summary_metrics(cv)
    assert metrics["cv_competition_rmse"] == round(np.mean([1, 0, 3, 0, 2]), 3)
    assert metrics["baseline_training_mean_competition_rmse"] == round(cv.baseline_training_mean.competition_rmse, 3)
    assert metrics["cv_rmse_per_class"] == dict(zip(SEA_LION_CLASSES, [1.0, 0.0, 3.0, 0.0, 2.0], strict=True))
    assert (metrics["cv_folds"], metrics["cv_photos"], metrics["conf"]) == (2, 2, 0.25)
    assert yaml.safe_load(yaml.safe_dump(metrics)) == metrics  # fits in the manifest


def test_mlflow_tracking_to_a_local_store(trained, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "sealion-tests")
    record = train(
        TrainConfig(
            data=trained["summary"].splits["holdout"], epochs=1, batch=4, workers=0, project=str(tmp_path / "runs"),
            name="tracked", mlflow=True,
        ),
        command="tracked",
    )  # fmt: skip
    run = mlflow.get_run(record.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "1" and run.data.params["flipud"] == "0.5"
    assert any(key.startswith("train/") for key in run.data.metrics)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert "training_record.json" in artifacts and "weights" in artifacts
