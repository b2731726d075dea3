"""Ctrl-C (SIGINT) and SIGTERM in a real ``sealion-count --run``: the photos counted are in results.jsonl, one line
says where it stopped, exit 130, no traceback; the same command again counts the rest, none twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REPO_ROOT

PHOTOS = 24


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("survey") / "flight"
    root.mkdir()
    rng = np.random.default_rng(3)
    for index in range(PHOTOS):
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), np.uint8)).save(root / f"IMG_{index:04d}.jpg")
    return root


def _lines(results: Path) -> list[dict]:
    return [json.loads(line) for line in results.read_text().splitlines()] if results.is_file() else []


@pytest.mark.parametrize(
    "signal_number",
    [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)],  # the same path: SIGTERM with -m slow
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_mid_run_stops_cleanly_and_the_rerun_completes(survey, tiny_models, tmp_path, signal_number):
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALION_")}
    env = {**env, "SEALION_WEIGHTS": str(tiny_models["v1"]), "SEALION_DEVICE": "cpu"}
    # The default pipeline (decoder threads, photos counted in groups), as a user runs it; --quiet: no notes.
    command = [sys.executable, "-m", "detector", "count", str(survey), "--run", str(run), "--photo-scale", "1",
               "--conf", "0.05", "--quiet"]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    results = run / "results.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and len(_lines(results)) < 2:
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before it could be interrupted"
    process.send_signal(signal_number)
    stdout, stderr = process.communicate(timeout=120)

    counted = _lines(results)
    assert process.returncode == 130, stderr
    # Besides each photo's own scale warnings (these random crops at 80 px per adult female earn them), one line.
    assert [line for line in stderr.strip().splitlines() if not line.startswith("warning: ")] == [
        f"interrupted: {len(counted)} of {PHOTOS} photos counted; rerun the same command to resume"
    ]
    assert "Traceback" not in stderr and stdout == ""
    assert 2 <= len(counted) < PHOTOS  # every photo counted before the signal is on disk, whole
    assert not (run / "counts.csv").exists()  # the tables are written when the run is complete

    resumed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    files = [line["file"] for line in _lines(results)]
    assert len(files) == PHOTOS and len(set(files)) == PHOTOS  # the rest counted, none twice
    assert files[: len(counted)] == [line["file"] for line in counted]
