"""``/review`` on the real app through gradio_client: corrected annotations in, corrected counts and the exported
files out, the review saved next to the original count in ``--reviews-dir``; bad input gets a clear error."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file  # a required dependency: a broken install fails
from gradio_client.exceptions import AppError

from detector.counting.records import counts_header
from detector.review.record import PhotoAnnotations, review_columns
from detector.review.store import load_reviews, read_annotations
from tests.app_process import start_app
from tests.helpers import REPO_ROOT, SEA_LION_CLASSES

PHOTO = REPO_ROOT / "examples" / "noaa_train_6.jpg"


@pytest.fixture(scope="module")
def reviews_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reviews")


@pytest.fixture(scope="module")
def app(tmp_path_factory, reviews_dir):
    running = start_app(tmp_path_factory.mktemp("app-review"), args=["--reviews-dir", str(reviews_dir)])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(app) -> Client:
    return Client(app.url, verbose=False, download_files=str(Path(app.log_path).parent / "downloads"))


@pytest.fixture(scope="module")
def counted(client) -> dict:
    return client.predict(handle_file(str(PHOTO)), api_name="/count")[2]


def test_review_endpoint_is_listed(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    names = [p["parameter_name"] for p in endpoints["/review"]["parameters"]]
    assert names == ["photo", "annotations", "reviewer", "original", "model_version"]


def test_review_returns_corrected_counts_and_files_and_saves_it(client, counted, reviews_dir):
    detections = counted["detections"]
    assert len(detections) >= 2
    boxes = [{"xyxy": d["xyxy"], "class_name": d["class_name"]} for d in detections]
    removed = boxes.pop(0)  # a false detection
    boxes[0]["class_name"] = "pups" if boxes[0]["class_name"] != "pups" else "juveniles"  # the wrong class
    boxes.append({"xyxy": [1100, 700, 1120, 716], "class_name": "juveniles"})  # a missed animal
    summary, counts_csv, dots_csv, coco_json, viame_csv = client.predict(
        handle_file(str(PHOTO)), json.dumps(boxes), "A. Biologist", json.dumps(counted), api_name="/review"
    )
    assert summary["photo"] == PHOTO.name and summary["reviewer"] == "A. Biologist"
    assert (
        summary["model_version"] == counted["model"]["version"]
        and summary["model_sha256"] == counted["model"]["sha256"]
    )
    assert summary["total"] == len(boxes) == summary["original_total"]
    assert summary["edits"]["added"] == 1 and summary["edits"]["removed"] == 1 and summary["edits"]["reclassified"] == 1
    assert summary["edits"]["per_class"]["removed"][removed["class_name"]] == 1
    expected = {name: sum(b["class_name"] == name for b in boxes) for name in SEA_LION_CLASSES}
    assert summary["counts"] == expected

    with open(counts_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [*counts_header(SEA_LION_CLASSES), *review_columns(SEA_LION_CLASSES)]
    assert rows[0]["reviewed"] == "true" and rows[0]["added_juveniles"] == "1" and rows[0]["total"] == str(len(boxes))
    with open(dots_csv, newline="") as handle:
        dots = list(csv.DictReader(handle))
    assert len(dots) == len(boxes) and dots[-1]["class"] == "juveniles"
    assert (float(dots[-1]["x"]), float(dots[-1]["y"])) == (4441.5, 2833.5)  # (1110, 708) in a 4x copy
    sent = PhotoAnnotations.from_boxes(PHOTO.name, boxes, SEA_LION_CLASSES, (1248, 832))
    assert read_annotations(Path(coco_json)) == [sent]
    assert read_annotations(Path(viame_csv), image_sizes={PHOTO.name: (1248, 832)}) == [sent]

    saved = [r for r in load_reviews(reviews_dir, latest_only=False) if r.reviewer == "A. Biologist"]
    assert len(saved) == 1 and saved[0].annotations == sent
    assert saved[0].original.total == counted["total"] and saved[0].photo_sha256
    assert len(list(reviews_dir.rglob("*.count.json"))) >= 1


def test_review_without_the_original_counts_the_photo_first(client, counted):
    """No original JSON: the server counts the photo with the default settings; the same boxes are no edits."""
    boxes = [{"xyxy": d["xyxy"], "class_name": d["class_name"]} for d in counted["detections"]]
    summary = client.predict(handle_file(str(PHOTO)), json.dumps(boxes), "B. Checker", api_name="/review")[0]
    assert summary["original_total"] == counted["total"]
    assert (summary["edits"]["added"], summary["edits"]["removed"], summary["edits"]["reclassified"]) == (0, 0, 0)


def test_bad_reviews_get_clear_errors_and_the_app_keeps_serving(client, counted):
    photo, original = handle_file(str(PHOTO)), json.dumps(counted)
    with pytest.raises(AppError, match="annotations: box 0: class_name 'walrus'"):
        client.predict(photo, '[{"xyxy": [1, 1, 9, 9], "class_name": "walrus"}]', "A", original, api_name="/review")
    with pytest.raises(AppError, match="annotations: not valid JSON"):
        client.predict(photo, "[{", "A", original, api_name="/review")
    with pytest.raises(AppError, match="lies outside the 1248x832 photo"):
        client.predict(photo, '[{"xyxy": [2000, 1, 2009, 9], "class_name": "pups"}]', "A", original, api_name="/review")
    with pytest.raises(AppError, match="reviewer"):
        client.predict(photo, "[]", " ", original, api_name="/review")
    with pytest.raises(AppError, match="original: expected the JSON result of /count"):
        client.predict(photo, "[]", "A", '{"counts": {}}', api_name="/review")
    assert np.isfinite(client.predict(api_name="/model_info")["imgsz"])  # still serving
