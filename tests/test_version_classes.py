"""The class set and the scale reference come from the model version (issue #35, items 1 and 2): a three-class
elephant-seal version (bull, cow, pup; reference class cow) through the count path, the CSV, the CLI, review
exports, survey totals and the app's API, beside the sea lion default, whose outputs stay as they were."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from detector.counting.model import Detector
from detector.counting.records import counts_header
from detector.counting.scale import (
    SEA_LION_REFERENCE,
    ScaleReference,
    choose_photo_scale,
    scale_warnings,
)
from detector.errors import DetectorError, ModelResolutionError
from detector.review.formats import from_coco, to_coco
from detector.review.record import PhotoAnnotations
from detector.settings import CountOptions, ModelSettings
from detector.versions.manifest import ModelVersion, load_manifest, version_to_dict
from tests.helpers import REPO_ROOT, SEA_LION_CLASSES, build_untrained_model, sha256_of

SEALS = REPO_ROOT / "tests" / "data" / "pinnipeds-tiny"
TILE = sorted(SEALS.glob("*.jpg"))[0]  # a 500 px drone tile of the elephant-seal data
SEAL_CLASSES = ["bull", "cow", "pup"]
COW_PX = 37.5  # the elephant-seal version's cow length at native resolution (as a dataset's body_length_px)
ES_REFERENCE = ScaleReference("cow", COW_PX, (500,))
# The sea lion counts CSV as it was before versions named their classes: downstream readers rely on it.
SEA_LION_CSV_HEADER = [
    "file", "adult_males", "subadult_males", "adult_females", "juveniles", "pups", "total", "width", "height",
    "model_version", "model_sha256", "runtime", "device", "photo_scale", "scale_source", "thresholds", "elapsed_ms",
    "warnings", "tiles_run", "tiles_skipped", "adult_males_error", "subadult_males_error", "adult_females_error",
    "juveniles_error", "pups_error", "worse_than_mean", "captured_at", "latitude", "longitude", "altitude_m",
    "camera", "sha256", "error",
]  # fmt: skip


def seal_manifest(folder: Path, with_reference: bool = True) -> Path:
    """A manifest beside its shipped weights: the product's sea lion default and ``es``, an untrained three-class
    (bull, cow, pup) YOLOv5n with the cow as its reference class and 500 px tiles as its frames."""
    product = load_manifest(REPO_ROOT / "weights" / "manifest.yaml")
    default = product.get()
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "weights" / default.shipped_file, folder / default.shipped_file)
    seals = build_untrained_model(folder / "es-untrained.pt", class_names=SEAL_CLASSES, ground_scale=0.448)
    data = yaml.safe_load((REPO_ROOT / "weights" / "manifest.yaml").read_text())
    data["versions"] = {default.name: data["versions"][default.name]}
    data["versions"]["es"] = {
        "repo_id": "sealion-tests/elephant-seals", "revision": "es", "commit": "", "filename": "es-untrained.pt",
        "sha256": sha256_of(seals), "class_names": SEAL_CLASSES, "imgsz": 320, "ground_scale": 0.448,
        "shipped_file": "es-untrained.pt", "description": "untrained test model",
    }  # fmt: skip
    if with_reference:
        data["versions"]["es"] |= {"reference_class": "cow", "reference_length_px": COW_PX, "frame_sides": [500]}
    (folder / "manifest.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder / "manifest.yaml"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return seal_manifest(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def seal_detector(manifest) -> Detector:
    return Detector.load(ModelSettings(version="es", manifest=str(manifest), device="cpu"), warmup=False)


def test_a_manifest_entry_names_its_reference_class_and_sea_lion_entries_need_none(manifest, tmp_path):
    listed = load_manifest(manifest)
    assert listed.get().scale_reference == SEA_LION_REFERENCE  # no new fields in the shipped entries
    es = listed.get("es")
    assert es.scale_reference == ES_REFERENCE
    entry = version_to_dict(es)
    assert (entry["reference_class"], entry["reference_length_px"], entry["frame_sides"]) == ("cow", COW_PX, [500])
    assert "reference_class" not in version_to_dict(listed.get())  # a sea lion entry is written as before
    from_card = ModelVersion.from_card(es.to_card(), es.repo_id, "es")  # a model card carries the same
    assert from_card.scale_reference == ES_REFERENCE
    # Without a reference, an elephant-seal entry is not measured by adult females: native resolution, no class.
    bare = load_manifest(seal_manifest(tmp_path / "bare", with_reference=False)).get("es")
    assert bare.scale_reference == ScaleReference(None, None, ())
    data = yaml.safe_load(manifest.read_text())
    data["versions"]["es"]["reference_class"] = "adult_females"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ModelResolutionError, match="reference_class 'adult_females' is not one of its classes"):
        load_manifest(tmp_path / "bad.yaml")


def test_a_500_px_tile_is_a_whole_frame_of_the_seal_data_and_the_warnings_speak_of_cows():
    tile = choose_photo_scale(None, 500, 500, ES_REFERENCE)
    assert (tile.value, tile.auto_matched) == (1.0, True)
    assert scale_warnings(tile, total=0, size=(500, 500), reference=ES_REFERENCE) == []
    assert choose_photo_scale(None, 250, 250, ES_REFERENCE).value == 0.5  # a copy downsampled 2x
    crop = choose_photo_scale(None, 640, 480, ES_REFERENCE)
    warned = scale_warnings(crop, total=0, size=(640, 480), reference=ES_REFERENCE)
    assert "auto guessed cows ≈ 48 px" in warned[0] and "measure one cow" in warned[0]
    assert not any("female" in w for w in warned)
    # A version whose data have no frame size takes the tile at native resolution, and says so.
    native = ScaleReference("cow", COW_PX, ())
    assert choose_photo_scale(None, 500, 500, native).value == 1.0
    said = scale_warnings(choose_photo_scale(None, 500, 500, native), total=3, size=(500, 500), reference=native)
    assert said == [
        "The model's data have no frame size, so auto takes this 500×500 px photo at the resolution the model "
        "learned from (cows ≈ 38 px); if the animals are larger or smaller, measure one cow and set its length."
    ]
    # The sea lion default still reads a 500 px picture as a small copy of a survey frame, about adult females.
    sea_lion = scale_warnings(choose_photo_scale(None, 500, 500), total=1, size=(500, 500))
    assert "adult females" in sea_lion[0]


def test_the_count_path_and_the_csv_follow_a_three_class_version(seal_detector):
    result = seal_detector.count(TILE)
    assert result.class_names == tuple(SEAL_CLASSES) and list(result.counts) == SEAL_CLASSES
    assert (result.photo_scale, result.scale_source, result.warnings) == (1.0, "auto", ())
    data = result.to_dict(include_boxes=False)
    assert (data["reference_class"], data["reference_px"], data["adult_female_px"]) == ("cow", COW_PX, None)
    assert data["model"]["reference_class"] == "cow" and data["class_names"] == SEAL_CLASSES
    assert counts_header(result.class_names)[:5] == ["file", "bull", "cow", "pup", "total"]
    assert [c for c in counts_header(result.class_names) if c.endswith("_error")] == [
        "bull_error", "cow_error", "pup_error",
    ]  # fmt: skip
    assert counts_header(SEA_LION_CLASSES) == SEA_LION_CSV_HEADER
    # The reference length sets the scale by the version's class: cows 75 px → photo scale 2.
    measured = seal_detector.count(TILE, CountOptions(reference_length=2 * COW_PX))
    assert (measured.photo_scale, measured.scale_source) == (2.0, "manual")
    with pytest.raises(DetectorError, match="measures adult females, but this model version measures scale by cows"):
        seal_detector.count(TILE, CountOptions(reference_length=40, reference_class="adult_females"))


def test_the_cli_writes_the_seal_classes_and_refuses_the_female_length(manifest, tmp_path, monkeypatch):
    from tests.test_totals import cli

    monkeypatch.setenv("SEALION_MANIFEST", str(manifest))
    out = tmp_path / "counts.csv"
    done = cli("count", TILE, "--model-version", "es", "--device", "cpu", "--out", out, "--reference-length", COW_PX)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0] == counts_header(SEAL_CLASSES) and Path(rows[1][0]).name == TILE.name
    assert dict(zip(rows[0], rows[1], strict=True))["photo_scale"] == "1.0"
    refused = cli("count", TILE, "--model-version", "es", "--device", "cpu", "--female-length", 40)
    assert refused.returncode == 2
    assert "--female-length measures adult female sea lions, but its reference class is cow" in refused.stderr
    assert "--reference-length" in refused.stderr


def test_a_review_of_a_seal_tile_exports_coco_with_its_categories(seal_detector):
    counted = seal_detector.count(TILE)
    boxes = [{"xyxy": [10, 10, 50, 40], "class_name": "cow"}, {"xyxy": [100, 100, 120, 118], "class_name": "pup"}]
    reviewed = PhotoAnnotations.from_boxes(TILE.name, boxes, counted.class_names, counted.image_size)
    coco = to_coco([reviewed])
    assert coco["categories"] == [
        {"id": 1, "name": "bull", "supercategory": "animal"},
        {"id": 2, "name": "cow", "supercategory": "animal"},
        {"id": 3, "name": "pup", "supercategory": "animal"},
    ]
    assert [a["category_id"] for a in coco["annotations"]] == [2, 3] and coco["info"]["description"].startswith("bull")
    assert from_coco(coco, SEAL_CLASSES)[0].counts == {"bull": 0, "cow": 1, "pup": 1}
    sea_lions = to_coco([PhotoAnnotations("x.jpg", np.zeros((0, 4)), np.zeros(0), image_size=(10, 10))])
    assert {c["supercategory"] for c in sea_lions["categories"]} == {"sea_lion"}  # as before


def test_survey_totals_of_a_seal_run_from_its_coco_review(tmp_path):
    """A run counted by a bull/cow/pup version, every photo reviewed and exported as COCO: the totals are per seal
    class (the review is read with the run's classes, not the sea lion ones)."""
    import hashlib

    from PIL import Image

    from detector.counting.records import PhotoRecord
    from detector.counting.results import CountResult, ModelInfo
    from detector.survey.runs import RunDirectory
    from tests.test_totals import cli, estimate_rows

    model = ModelInfo("es", "ef" * 32, "shipped", "es.pt", class_names=tuple(SEAL_CLASSES), reference_class="cow")
    run = RunDirectory.open(tmp_path / "run", {"model": {"version": "es", "sha256": model.sha256}})
    truth = []
    for i in range(6):
        path = tmp_path / "tiles" / f"t{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (50, 50), (30 * i, 90, 7)).save(path, format="JPEG")
        cows = [[4 * k, 0, 4 * k + 3, 3] for k in range(i)]
        result = CountResult(
            np.array(cows, dtype=float).reshape(-1, 4), np.ones(i, int), np.full(i, 0.9), tuple(SEAL_CLASSES),
            (50, 50), model=model, source=path.name, conf=dict.fromkeys(SEAL_CLASSES, 0.25),
        )  # fmt: skip
        data = path.read_bytes()
        run.add(PhotoRecord(str(path), result, "", hashlib.sha256(data).hexdigest(), len(data), 0))
        truth.append(PhotoAnnotations(path.name, np.array(cows + [[40, 40, 44, 44]]), np.array([1] * i + [2]),
                                      class_names=tuple(SEAL_CLASSES), image_size=(50, 50)))  # fmt: skip
    run.export(*run.outcome())
    assert cli("sample", run.folder, "--photos", 6, "--strata", 1, "--seed", 0).returncode == 0
    coco = tmp_path / "reviewed_coco.json"
    coco.write_text(json.dumps(to_coco(truth)))
    done = cli("estimate", run.folder, "--reviews", coco)
    assert done.returncode == 0, done.stderr
    est = estimate_rows(run.folder)
    assert {c for _, c in est} == {"bull", "cow", "pup", "all_classes"}
    assert (float(est[("all", "cow")]["estimate"]), float(est[("all", "pup")]["estimate"])) == (15.0, 6.0)


def test_the_app_switches_between_the_sea_lion_default_and_a_seal_version(tmp_path):
    """Through ``gradio_client``: a tile counted with the elephant-seal version comes back with bull/cow/pup counts,
    its length setting measured in cows; the Model tab's info, the Batch CSV and a Review's COCO export follow the
    version; the default still counts sea lions."""
    from gradio_client import Client, handle_file

    from tests.app_process import start_app

    manifest = seal_manifest(tmp_path / "weights")
    running = start_app(tmp_path, extra_env={"SEALION_MANIFEST": str(manifest)})
    try:
        client = Client(running.url, verbose=False, download_files=str(tmp_path / "downloads"))
        seals = client.predict(
            handle_file(str(TILE)), female_length_px=2 * COW_PX, model_version="es", api_name="/count"
        )[2]
        assert list(seals["counts"]) == SEAL_CLASSES and seals["class_names"] == SEAL_CLASSES
        assert (seals["photo_scale"], seals["reference_class"], seals["reference_px"]) == (2.0, "cow", 2 * COW_PX)
        info = client.predict("es", api_name="/model_info")
        assert info["class_names"] == SEAL_CLASSES and set(info["class_colors"]) == set(SEAL_CLASSES)
        assert (info["reference_class"], info["reference_length_px"], info["frame_sides"]) == ("cow", COW_PX, [500])
        sea_lions = client.predict(handle_file(str(TILE)), api_name="/count")[2]
        assert list(sea_lions["counts"]) == SEA_LION_CLASSES  # the default is unchanged by the switch
        batch = client.predict([handle_file(str(TILE))], model_version="es", api_name="/count_batch")
        with open(batch[2]) as handle:
            assert next(csv.reader(handle)) == counts_header(SEAL_CLASSES)
        boxes = [{"xyxy": [10, 10, 50, 40], "class_name": "cow"}, {"xyxy": [60, 60, 90, 80], "class_name": "bull"}]
        summary, counts_csv, _dots, coco_json, _viame = client.predict(
            handle_file(str(TILE)), json.dumps(boxes), "A. Biologist", json.dumps(seals), api_name="/review"
        )
        assert summary["counts"] == {"bull": 1, "cow": 1, "pup": 0}
        coco = json.loads(Path(coco_json).read_text())
        assert [c["name"] for c in coco["categories"]] == SEAL_CLASSES
        with open(counts_csv) as handle:
            assert next(csv.reader(handle))[:5] == ["file", "bull", "cow", "pup", "total"]
    finally:
        running.stop()


def test_publish_names_the_cow_its_length_and_the_500_px_tiles_of_a_seal_dataset(tmp_path):
    from training.boxes import BoxBuildOptions, ClassMap, build_box_dataset, read_boxes
    from training.dataset import ChipOptions
    from training.publish import scale_reference_of

    record = build_box_dataset(
        read_boxes(SEALS / "annotations.csv"), tmp_path / "seals",
        BoxBuildOptions(ClassMap.parse("bull,cow,pup", ["other=drop"]), ground_scale=0.2, folds=0),
        chips=ChipOptions(size=96, overlap=0.25, empty_share=0.2),
    )  # fmt: skip
    reference = scale_reference_of(record)  # pups are the most numerous, but the middle-sized cow is measured
    assert reference == ScaleReference("cow", record.body_length_px["cow"], (500,))
    assert scale_reference_of(record, "bull").class_name == "bull"
    with pytest.raises(Exception, match="'walrus' is not a class of the dataset"):
        scale_reference_of(record, "walrus")


def test_an_unlisted_seal_weights_file_has_its_own_classes_and_no_sea_lion_scale(manifest, tmp_path, monkeypatch):
    """The shipped elephant-seal weights passed as a plain file that the manifest in use does not list (a user's own
    weights): the classes are the weights' own (bull, cow, pup), and with no reference class the scale is never the
    sea lions' adult female: auto counts at the resolution the model learned from and says so, naming
    --photo-scale; the same file under the product manifest is its version, measured by cows."""
    from tests.test_totals import cli

    weights = tmp_path / "my-seals.pt"
    shutil.copyfile(REPO_ROOT / "weights" / "elephant-seals-yolov5n-elephant-seals-v1.pt", weights)
    own = Detector.load(ModelSettings(weights=str(weights), manifest=str(manifest), device="cpu"), warmup=False)
    assert (own.info.version, own.class_names) == ("local", tuple(SEAL_CLASSES))
    assert own.info.scale_reference == ScaleReference(None, None, ())
    said = own.scale_reference_warning()
    assert said.startswith("my-seals.pt names no scale reference for its classes (bull, cow, pup)"), said
    assert "--photo-scale S" in said and "--reference-length PX" in said and "reference_class" in said
    counted = own.count(TILE)
    assert (counted.photo_scale, counted.scale_source) == (1.0, "auto") and counted.total > 0
    assert counted.warnings[0].startswith("The model names no scale reference, so auto takes this 500×500 px photo")
    data = counted.to_dict(include_boxes=False)
    assert (data["reference_class"], data["reference_px"], data["adult_female_px"]) == (None, None, None)
    listed = Detector.load(ModelSettings(weights=str(weights), device="cpu"), warmup=False)  # the product manifest
    assert listed.info.version == "elephant-seals-v1" and listed.info.scale_reference.class_name == "cow"
    assert listed.scale_reference_warning() is None
    monkeypatch.setenv("SEALION_MANIFEST", str(manifest))
    done = cli("count", TILE, "--weights", weights, "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert f"warning: {said}" in done.stderr
    given = cli("count", TILE, "--weights", weights, "--device", "cpu", "--photo-scale", 1)
    assert given.returncode == 0 and "no scale reference" not in given.stderr, given.stderr
    refused = cli("count", TILE, "--weights", weights, "--device", "cpu", "--female-length", 80)
    assert refused.returncode == 2 and "use --photo-scale S instead" in refused.stderr, refused.stderr


def test_a_version_names_what_it_counts_in_words():
    """``title`` and ``subject`` (the card's heading and first sentence, for the app's heading) are read from a
    manifest entry and a card alike; the shipped elephant-seal entry carries its card's, the sea lion entries none
    (their words are the defaults: detector.classes.SEA_LION_TITLE)."""
    product = load_manifest()
    seals = product.get("elephant-seals-v1")
    assert (seals.title, seals.subject) == (
        "Elephant seal counter", "northern elephant seals (bulls, cows, pups) in aerial drone photos",
    )  # fmt: skip
    assert version_to_dict(seals)["title"] == "Elephant seal counter"
    again = ModelVersion.from_card(seals.to_card(), seals.repo_id, seals.revision, name=seals.name)
    assert (again.title, again.subject) == (seals.title, seals.subject)
    default = product.get()
    assert (default.title, default.subject) == ("", "") and "title" not in version_to_dict(default)
