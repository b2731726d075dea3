"""`python -m detector count`: folders, CSV/JSON output, annotated images, failures reported and skipped."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REPO_ROOT, SEA_LION_CLASSES


def run_cli(*args: str, weights: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEALION_DEVICE": "cpu"}
    if weights is not None:
        env["SEALION_WEIGHTS"] = str(weights)
    return subprocess.run(
        [sys.executable, "-m", "detector", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    folder = tmp_path / "survey"
    (folder / "day2").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (400, 700, 3), np.uint8)).save(folder / "a.jpg")
    Image.fromarray(rng.integers(0, 255, (300, 300, 3), np.uint8)).save(folder / "day2" / "b.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "notes.txt").write_text("ignored: not a photo suffix")
    return folder


def test_folder_to_csv_reports_and_skips_broken_files(photo_folder, tmp_path, tiny_models):
    out = tmp_path / "counts.csv"
    annotated = tmp_path / "annotated"
    done = run_cli(
        "count",
        str(photo_folder),
        "--recursive",
        "--out",
        str(out),
        "--save-annotated",
        str(annotated),
        "--female-length",
        "80",  # the random photos are counted as survey crops: adult females 80 px, photo scale 1
        weights=tiny_models["v1"],
    )
    assert done.returncode == 1, done.stderr  # one file failed
    assert "broken.jpg" in done.stderr and "not an image" in done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [Path(r["file"]).name for r in rows] == ["a.jpg", "b.png", "broken.jpg"]
    assert all(set(SEA_LION_CLASSES) <= set(row) for row in rows)
    assert rows[0]["width"] == "700" and rows[0]["error"] == "" and rows[2]["error"]
    assert (rows[0]["photo_scale"], rows[0]["scale_source"], rows[0]["runtime"]) == ("1.0", "manual", "torch")
    assert rows[0]["thresholds"] == " ".join(f"{name}=0.25" for name in SEA_LION_CLASSES)  # the version's default
    assert "a whole survey frame" in rows[0]["warnings"]  # 700 px wide: auto would enlarge it, so 80 px is doubtful
    assert sorted(p.name for p in annotated.iterdir()) == ["a.annotated.jpg", "b.annotated.jpg"]
    assert Image.open(annotated / "a.annotated.jpg").size == (700, 400)


def test_json_output_and_success_exit_code(photo_folder, tmp_path, tiny_models):
    out = tmp_path / "counts.json"
    done = run_cli(
        "count",
        str(photo_folder / "a.jpg"),
        "--out",
        str(out),
        "--conf",
        "0.3",
        "--tile-size",
        "320",
        "--photo-scale",
        "1",
        weights=tiny_models["v1"],
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["failures"] == []
    (result,) = data["results"]
    assert list(result["counts"]) == SEA_LION_CLASSES and result["tiles"] == 6  # 700x400 in 320 px tiles
    assert result["model"]["sha256"] and result["device"] == "cpu"
    assert (result["photo_scale"], result["scale_source"], result["adult_female_px"]) == (1.0, "manual", 80.0)
    assert result["conf"] == dict.fromkeys(SEA_LION_CLASSES, 0.3) and result["runtime"] == "torch"


def test_a_wrong_scale_is_warned_about_and_bad_scales_are_refused(tmp_path, tiny_models):
    photo = tmp_path / "copy.jpg"  # the size of a survey original downsampled 4x
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (832, 1248, 3), np.uint8)).save(photo)
    done = run_cli("count", str(photo), "--female-length", "80", "--conf", "0.99", weights=tiny_models["v1"])
    assert done.returncode == 0, done.stderr
    assert "warning: " in done.stderr and "4.0× smaller" in done.stderr and "No animals found" in done.stderr
    for option, value, reason in (
        ("--female-length", "2", "at least 5 pixels"),
        ("--photo-scale", "-1", "must be positive"),
        ("--photo-scale", "often", "expected 'auto' or a number"),
    ):
        bad = run_cli("count", str(photo), option, value, weights=tiny_models["v1"])
        assert bad.returncode == 2 and reason in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    both = run_cli("count", str(photo), "--female-length", "20", "--photo-scale", "0.25", weights=tiny_models["v1"])
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_non_recursive_folder_skips_subfolders_and_a_bad_version_is_one_line(photo_folder, tiny_models):
    done = run_cli("count", str(photo_folder), "--photo-scale", "1", weights=tiny_models["v1"])
    assert "a.jpg" in done.stdout and "b.png" not in done.stdout
    bad = run_cli("count", str(photo_folder), "--model-version", "v99")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: Unknown model version 'v99'")
    assert "Traceback" not in bad.stderr


def test_out_dash_writes_only_csv_to_stdout():
    example = REPO_ROOT / "examples" / "noaa_train_6.jpg"
    piped = run_cli("count", str(example), "--out", "-")  # the shipped default: its typical errors are known
    assert piped.returncode == 0, piped.stderr
    rows = list(csv.DictReader(piped.stdout.splitlines()))
    assert [Path(row["file"]).name for row in rows] == [example.name]
    assert rows[0]["total"] == str(sum(int(rows[0][name]) for name in SEA_LION_CLASSES))
    assert "typical error" not in piped.stdout and not Path("-").exists()  # the table's footer: test_uncertainty.py


def test_resuming_a_complete_run_does_not_load_the_model(tmp_path, tiny_models, monkeypatch):
    from detector.cli import main
    from detector.counting.model import Detector

    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(2):
        Image.fromarray(np.random.default_rng(index).integers(0, 255, (320, 480, 3), np.uint8)).save(
            photos / f"IMG_{index}.jpg"
        )
    run = tmp_path / "run"
    options = ["count", str(photos), "--run", str(run), "--photo-scale", "1", "--quiet"]
    assert run_cli(*options, weights=tiny_models["v1"]).returncode == 0
    (run / "counts.csv").unlink()  # written again from the run's lines

    def loading(*args, **kwargs):
        raise AssertionError("the model was loaded although every photo is counted")

    monkeypatch.setenv("SEALION_WEIGHTS", str(tiny_models["v1"]))
    monkeypatch.setenv("SEALION_DEVICE", "cpu")
    monkeypatch.setattr(Detector, "load", loading)
    assert main(options) == 0
    assert len(list(csv.DictReader((run / "counts.csv").open()))) == 2
    loaded = "model local ("  # the line printed once the model is loaded
    changed = run_cli(*options[:-1], "--conf", "0.5", weights=tiny_models["v1"])  # other settings: refused as before
    assert changed.returncode == 2 and loaded in changed.stderr and "other settings" in changed.stderr
    (photos / "IMG_2.jpg").write_bytes((photos / "IMG_0.jpg").read_bytes())
    resumed = run_cli(*options[:-1], weights=tiny_models["v1"])  # a photo left to count
    assert resumed.returncode == 0 and loaded in resumed.stderr and "2 of 3 photos already counted" in resumed.stderr
