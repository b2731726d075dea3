"""Survey runs (``--run DIR``): killed with SIGKILL and resumed, settings guarded, changed files recounted,
EXIF survey metadata in every row, a per-folder summary, and the Ray Data engine giving the same counts."""

from __future__ import annotations

import csv
import inspect
import io
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

from detector.counting.metadata import PhotoMetadata, read_metadata
from tests.helpers import REPO_ROOT, SEA_LION_CLASSES

PHOTOS = 30
# Photos are counted as survey crops (photo scale 1) at a low threshold, so the untrained model finds boxes.
COUNT_OPTIONS = ["--photo-scale", "1", "--conf", "0.05", "--quiet", "--recursive"]


def run_cli(*args: str, weights: Path, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "detector", "count", *args], cwd=REPO_ROOT, env=_env(weights),
        capture_output=True, text=True, timeout=900, **popen,
    )  # fmt: skip


def _env(weights: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALION_")}
    return {**env, "SEALION_WEIGHTS": str(weights), "SEALION_DEVICE": "cpu"}


def _gps_exif(latitude: tuple[float, float, float], when: str) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "DJI", "FC6310"  # Make, Model
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4], gps[6] = "N", latitude, "W", (153.0, 4.0, 0.0), 120.5
    exif.get_ifd(0x8769)[0x9003] = when  # DateTimeOriginal
    return exif


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> Path:
    """30 photos in two site folders; the first five of site-A carry real EXIF GPS and capture time."""
    root = tmp_path_factory.mktemp("survey") / "2026-06-14"
    rng = np.random.default_rng(7)
    for index in range(PHOTOS):
        folder = root / ("site-A" if index < 20 else "site-B")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (480, 640, 3), np.uint8)
        options = {"exif": _gps_exif((57.0, 12.0, 30.0 + index), f"2026:06:14 10:{index:02d}:00")} if index < 5 else {}
        Image.fromarray(pixels).save(folder / f"IMG_{index:04d}.jpg", quality=90, **options)
    return root


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "counts.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _counts(run: Path) -> dict[str, tuple[str, ...]]:
    rows = _rows(run)
    assert len({row["file"] for row in rows}) == len(rows), "a photo appears twice"
    return {row["file"]: tuple(row[name] for name in [*SEA_LION_CLASSES, "total"]) for row in rows}


@pytest.fixture(scope="module")
def uninterrupted(survey, tiny_models, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "whole"
    done = run_cli(str(survey), "--run", str(run), *COUNT_OPTIONS, weights=tiny_models["v1"])
    assert done.returncode == 0, done.stderr
    return run


@pytest.mark.slow  # ~25 s; the SIGINT test (tests/test_interrupts.py) resumes by default
def test_a_run_killed_with_sigkill_resumes_to_exactly_one_row_per_photo(survey, uninterrupted, tiny_models, tmp_path):
    run = tmp_path / "killed"
    command = [sys.executable, "-m", "detector", "count", str(survey), "--run", str(run), *COUNT_OPTIONS]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=_env(tiny_models["v1"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    results = run / "results.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if results.is_file() and results.read_bytes().count(b"\n") >= 5:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    counted_before = results.read_bytes().count(b"\n")
    assert 5 <= counted_before < PHOTOS and not (run / "counts.csv").exists()

    resumed = subprocess.run(command, cwd=REPO_ROOT, env=_env(tiny_models["v1"]), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{counted_before} of {PHOTOS} photos already counted" in resumed.stderr
    lines = [json.loads(line) for line in results.read_text().splitlines()]  # every line whole again
    assert len(lines) == PHOTOS and len({line["file"] for line in lines}) == PHOTOS  # none counted twice
    assert _counts(run) == _counts(uninterrupted)  # the same counts as a run that was never stopped
    again = subprocess.run(command, cwd=REPO_ROOT, env=_env(tiny_models["v1"]), capture_output=True, text=True)
    assert f"{PHOTOS} of {PHOTOS} photos already counted" in again.stderr and _counts(run) == _counts(uninterrupted)


def test_rows_record_settings_metadata_and_folders(survey, uninterrupted):
    rows = {Path(row["file"]).name: row for row in _rows(uninterrupted)}
    assert len(rows) == PHOTOS
    tagged, plain = rows["IMG_0003.jpg"], rows["IMG_0025.jpg"]
    assert tagged["captured_at"] == "2026-06-14T10:03:00" and tagged["camera"] == "DJI FC6310"
    assert float(tagged["latitude"]) == pytest.approx(57 + 12 / 60 + 33 / 3600)
    assert float(tagged["longitude"]) == pytest.approx(-(153 + 4 / 60)) and float(tagged["altitude_m"]) == 120.5
    assert all(plain[key] == "" for key in PhotoMetadata.csv_header())  # no EXIF: empty, never invented
    assert (plain["photo_scale"], plain["scale_source"], plain["runtime"]) == ("1.0", "manual", "torch")
    assert len(plain["sha256"]) == 64
    settings = json.loads((uninterrupted / "run.json").read_text())
    assert settings["photo_scale"] == 1.0 and settings["conf"] == dict.fromkeys(SEA_LION_CLASSES, 0.05)
    with (uninterrupted / "summary.csv").open(newline="") as handle:
        summary = {row["folder"]: row for row in csv.DictReader(handle)}
    assert set(summary) == {"2026-06-14/site-A", "2026-06-14/site-B"}
    assert (summary["2026-06-14/site-A"]["photos"], summary["2026-06-14/site-B"]["photos"]) == ("20", "10")
    for folder, row in summary.items():
        in_folder = [r for r in rows.values() if Path(r["file"]).parent.name == folder.split("/")[-1]]
        assert int(row["total"]) == sum(int(r["total"]) for r in in_folder)


def test_other_settings_are_refused_and_a_changed_photo_is_recounted(survey, tiny_models, tmp_path):
    photos = tmp_path / "few"
    photos.mkdir()
    for name in ("IMG_0001.jpg", "IMG_0002.jpg", "IMG_0021.jpg"):
        site = "site-A" if name < "IMG_0020" else "site-B"
        (photos / name).write_bytes((survey / site / name).read_bytes())
    run = tmp_path / "run"
    first = run_cli(str(photos), "--run", str(run), *COUNT_OPTIONS, weights=tiny_models["v1"])
    assert first.returncode == 0, first.stderr

    other = run_cli(str(photos), "--run", str(run), *COUNT_OPTIONS, "--iou", "0.6", weights=tiny_models["v1"])
    assert other.returncode == 2 and "other settings (iou: 0.45 → 0.6)" in other.stderr and "--new-run" in other.stderr

    changed = photos / "IMG_0002.jpg"
    Image.fromarray(np.full((480, 640, 3), 40, np.uint8)).save(changed)  # new content
    again = run_cli(str(photos), "--run", str(run), *COUNT_OPTIONS, weights=tiny_models["v1"])
    assert again.returncode == 0 and "2 of 3 photos already counted" in again.stderr, again.stderr
    rows = {Path(row["file"]).name: row for row in _rows(run)}
    assert len(rows) == 3 and rows["IMG_0002.jpg"]["sha256"] == _sha256(changed)

    fresh = run_cli(
        str(photos), "--run", str(run), *COUNT_OPTIONS, "--iou", "0.6", "--new-run", weights=tiny_models["v1"]
    )
    assert fresh.returncode == 0, fresh.stderr
    assert "already counted" not in fresh.stderr and len(list(run.glob("previous-*/results.jsonl"))) == 1
    assert json.loads((run / "run.json").read_text())["iou"] == 0.6 and len(_rows(run)) == 3


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_metadata_reader_handles_missing_and_broken_headers():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", exif=_gps_exif((57.0, 0.0, 0.0), "not a date"))
    found = read_metadata(buffer.getvalue())
    assert found.latitude == 57.0 and found.captured_at is None  # an unreadable date is left empty
    assert read_metadata(b"not a photo") == PhotoMetadata()


def test_both_engines_take_the_same_arguments():
    """One engine interface: what differs (the detector and decoders, or the cluster) is given when one is made."""
    from detector.survey.ray_engine import RayEngine
    from detector.survey.runs import Engine, LocalEngine

    expected = inspect.signature(Engine.count_into_run)
    assert list(expected.parameters) == ["self", "photos", "run", "options", "annotated_dir", "on_done"]
    for engine in (LocalEngine, RayEngine):
        assert inspect.signature(engine.count_into_run) == expected, engine


def test_the_ray_engine_counts_the_same_as_the_local_engine(survey, uninterrupted, tiny_models, tmp_path):
    """... and saves the annotated photos that --save-annotated asks for (it used to drop the option)."""
    pytest.importorskip("ray.data", reason='the Ray engine is optional: pip install "ray[data]"')
    run, annotated = tmp_path / "ray", tmp_path / "annotated"
    done = run_cli(
        str(survey), "--run", str(run), *COUNT_OPTIONS, "--engine", "ray", "--workers", "2",
        "--save-annotated", str(annotated), weights=tiny_models["v1"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert _counts(run) == _counts(uninterrupted)
    lines = (run / "results.jsonl").read_text().splitlines()
    assert len(lines) == PHOTOS
    photos = {Path(row["file"]).stem: Path(row["file"]) for row in _rows(run)}
    saved = {path.name.removesuffix(".annotated.jpg"): path for path in annotated.glob("*.annotated.jpg")}
    assert set(saved) == set(photos)
    for stem, path in saved.items():
        with Image.open(path) as image, Image.open(photos[stem]) as photo:
            assert image.format == "JPEG" and image.size == photo.size


def test_pipelined_decoding_counts_exactly_as_one_photo_after_another(survey, tiny_models, tmp_path):
    """count_photos with decoder threads: the same records, in the same order, as without; a broken file keeps its
    place as a failure that names it."""
    from detector import Detector
    from detector.counting.records import Failure
    from detector.settings import CountOptions, ModelSettings
    from detector.survey.runs import count_photos, find_photos

    broken = survey / "site-B" / "IMG_0025.jpg"
    copy = tmp_path / "survey"
    import shutil

    shutil.copytree(survey, copy)
    (copy / "site-B" / broken.name).write_bytes(b"\xff\xd8\xff not a jpeg")
    photos, _ = find_photos([str(copy)], recursive=True)
    detector = Detector.load(ModelSettings(weights=tiny_models["v1"], device="cpu"), warmup=False)
    options = CountOptions(photo_scale=1.0, conf=0.001, batch_size=5)  # batches that straddle photos
    sequential = list(count_photos(detector, photos, options, decoders=0))
    assert sum(o.result.total for o in sequential if not isinstance(o, Failure)) > 0
    for group in (1, 3):  # one photo at a time, and photos counted together (their tiles in shared batches)
        pipelined = list(count_photos(detector, photos, options, decoders=2, group=group))
        assert [o.file for o in pipelined] == [o.file for o in sequential] == [str(p.path) for p in photos]
        failures = [o for o in pipelined if isinstance(o, Failure)]
        assert [Path(f.file).name for f in failures] == [broken.name] and broken.name in failures[0].error
        for one, other in zip(sequential, pipelined, strict=True):
            if isinstance(one, Failure):
                continue
            assert one.sha256 == other.sha256 and one.result.counts == other.result.counts
            assert one.result.tiles == other.result.tiles
            np.testing.assert_allclose(one.result.xyxy, other.result.xyxy, atol=1e-3)
