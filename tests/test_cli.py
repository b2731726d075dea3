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
        weights=tiny_models["v1"],
    )
    assert done.returncode == 1, done.stderr  # one file failed
    assert "broken.jpg" in done.stderr and "not an image" in done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [Path(r["file"]).name for r in rows] == ["a.jpg", "b.png", "broken.jpg"]
    assert all(set(SEA_LION_CLASSES) <= set(row) for row in rows)
    assert rows[0]["width"] == "700" and rows[0]["error"] == "" and rows[2]["error"]
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
        weights=tiny_models["v1"],
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["failures"] == []
    (result,) = data["results"]
    assert list(result["counts"]) == SEA_LION_CLASSES and result["tiles"] == 6  # 700x400 in 320 px tiles
    assert result["model"]["sha256"] and result["device"] == "cpu"


def test_non_recursive_folder_skips_subfolders_and_a_bad_version_is_one_line(photo_folder, tiny_models):
    done = run_cli("count", str(photo_folder), weights=tiny_models["v1"])
    assert "a.jpg" in done.stdout and "b.png" not in done.stdout
    bad = run_cli("count", str(photo_folder), "--model-version", "v99")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: Unknown model version 'v99'")
    assert "Traceback" not in bad.stderr
