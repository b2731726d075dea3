"""Smoke tests of the benchmark scripts: tiny input, one iteration, the real code paths end to end.

They check that each script runs, measures what it says and writes a complete results file; they assert no
speed (speed targets live in the scripts' own tables). Results go to tmp_path, never to benchmarks/results/.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detector.settings import DEFAULT_GATE
from detector.versions.runtimes import counts_agree
from tests.helpers import REPO_ROOT, SEA_LION_CLASSES

LOW_CONF = "0.001"  # an untrained model's scores are tiny; this still yields detections to count and merge


@pytest.fixture(scope="module")
def tiny_photo(tmp_path_factory) -> Path:
    """A 560x300 photo-like JPEG: two 320 px tiles (the tiny checkpoint's input size) with an overlap, so slicing
    and merging both run."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(60, 120, size=(300, 560, 3), dtype=np.uint8)
    for x, y in rng.integers(10, 260, size=(12, 2)):  # dark blobs, roughly animal-sized
        pixels[y : y + 30, x : x + 60] = (40, 35, 30)
    path = tmp_path_factory.mktemp("bench") / "tiny.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    return path


def read(path: Path) -> dict:
    assert path.is_file(), f"{path} was not written"
    return json.loads(path.read_text())


def check_environment(data: dict) -> None:
    env = data["environment"]
    machine = env["machine"]
    assert machine["cpu_model"] and machine["logical_cores"] >= 1 and machine["ram_gb"] > 0
    assert machine["packages"]["torch"] and machine["packages"]["ultralytics"]
    for moment in ("start", "end"):
        assert len(env[moment]["loadavg_1_5_15"]) == 3
        assert isinstance(env[moment]["busy_processes"], list)
    assert isinstance(env["other_work_running"], bool)


def test_sliced_vs_sahi_smoke(tiny_models, tiny_photo, tmp_path, capsys):
    from benchmarks import sliced_vs_sahi

    out = tmp_path / "sliced_vs_sahi.json"
    argv = [str(tiny_photo), "--no-shared", "--weights", str(tiny_models["v1"]), "--conf", LOW_CONF]
    sliced_vs_sahi.main([*argv, "--repeats", "1", "--warmup", "0", "--profile", "--out", str(out)])
    data = read(out)
    photo = data["photos"][0]
    assert photo["tiles"] == photo["sahi_tiles"] == 2 and isinstance(photo["same_tile_grid"], bool)
    assert {name: stats["n"] for name, stats in photo["seconds"].items()} == {
        "ours": 1,
        f"ours_gate_{'off' if DEFAULT_GATE else 'on'}": 1,  # the unlisted tiny weights have no openvino-f32 row
        "sahi_matched": 1,
        "sahi_defaults": 1,
        "ours_sahi_grid": 1,
    }
    assert photo["forward_passes"]["sahi_defaults"] == 3  # SAHI's extra full-image pass
    assert data["settings"]["gate_on_by_default"] is DEFAULT_GATE and photo["gate"]["on_by_default"] is DEFAULT_GATE
    for method, counts in photo["counts"].items():
        assert list(counts) == SEA_LION_CLASSES, method
    assert sum(photo["counts"]["ours"].values()) > 0
    agreement = photo["agreement"]["sahi_matched"]["per_class"]
    for name in SEA_LION_CLASSES:
        assert agreement[name]["diff"] == photo["counts"]["ours"][name] - photo["counts"]["sahi_matched"][name]
    assert data["profile"]["ours"]["buckets_s"]["model forward (torch)"] > 0
    check_environment(data)
    assert "Counts per class" in capsys.readouterr().out

    from benchmarks import report

    summary = report.main(["--results", str(tmp_path)])
    assert "tiny.jpg" in summary and "Speed goal" in summary


def test_plain_vs_sliced_smoke(tiny_models, tiny_photo, tmp_path):
    from benchmarks import plain_vs_sliced

    out = tmp_path / "plain_vs_sliced.json"
    argv = [str(tiny_photo), "--no-shared", "--weights", str(tiny_models["v1"]), "--conf", LOW_CONF]
    plain_vs_sliced.main([*argv, "--repeats", "1", "--warmup", "0", "--out", str(out)])
    photo = read(out)["photos"][0]
    assert photo["sliced_tiles"] == 2
    assert photo["plain_imgsz"] == 320  # the untrained checkpoint's own default input size
    assert photo["one_pass_imgsz"] == [320, 576]  # 300x560 padded to multiples of 32, not rescaled
    assert {name: stats["n"] for name, stats in photo["seconds"].items()} == {"plain": 1, "sliced": 1, "one_pass": 1}
    for counts in photo["counts"].values():
        assert list(counts) == SEA_LION_CLASSES


@pytest.mark.slow  # a benchmark end to end (~10 s each)
def test_api_overhead_smoke(tiny_models, tiny_photo, tmp_path):
    from benchmarks import api_overhead

    out = tmp_path / "api_overhead.json"
    argv = [str(tiny_photo), "--photo-scale", "1", "--weights", str(tiny_models["v1"])]
    api_overhead.main([*argv, "--calls", "1", "--warmup", "0", "--out", str(out)])
    data = read(out)
    assert data["same_counts"], data["counts"]
    assert {name: stats["n"] for name, stats in data["seconds"].items()} == {
        "detector_in_process": 1,
        "service_in_process": 1,
        "api": 1,
        "lean_api": 1,
    }
    assert data["ratio_over_detector"]["api"]["median"] > 0 and data["ratio_over_detector"]["lean_api"]["median"] > 0
    check_environment(data)


@pytest.mark.slow  # a benchmark end to end (~10 s each)
def test_load_smoke(tiny_models, tiny_photo, tmp_path):
    from benchmarks import load

    out = tmp_path / "load.json"
    argv = [str(tiny_photo), "--photo-scale", "1", "--weights", str(tiny_models["v1"])]
    load.main([*argv, "--clients", "2", "--requests", "1", "--warmup", "0", "--deadline", "120", "--out", str(out)])
    data = read(out)
    assert (data["requests"], data["succeeded"], data["failed"]) == (2, 2, 0), data["failure_reasons"]
    assert data["latency_s"]["n"] == 2 and data["latency_s"]["median"] > 0
    assert data["rss_mb"]["before"] > 0 and data["rss_mb"]["after"] > 0


def test_gpu_benchmark_skips_cleanly_or_runs(tiny_models, tiny_photo, tmp_path):
    import torch

    out = tmp_path / "gpu.json"
    command = [sys.executable, "-m", "benchmarks.gpu", str(tiny_photo), "--weights", str(tiny_models["v1"])]
    done = subprocess.run(
        [*command, "--batch-sizes", "1,2", "--repeats", "1", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    if torch.cuda.is_available():
        assert [row["batch_size"] for row in read(out)["batches"]] == [1, 2]
    else:
        assert done.stdout.startswith("skipped: CUDA is not available")
        assert not out.exists()


def test_gpu_measurement_runs_on_cpu(tiny_models, tiny_photo, tmp_path):
    from benchmarks import gpu

    out = tmp_path / "gpu_cpu.json"
    argv = [str(tiny_photo), "--device", "cpu", "--weights", str(tiny_models["v1"])]
    gpu.main([*argv, "--batch-sizes", "1,2", "--repeats", "1", "--out", str(out)])
    data = read(out)
    assert data["settings"]["precision"] == "fp32" and data["settings"]["tiles"] == 2
    assert [row["batch_size"] for row in data["batches"]] == [1, 2]
    assert all(row["tiles_per_s"] > 0 and row["speedup_vs_per_tile_loop"] > 0 for row in data["batches"])


@pytest.mark.slow  # a benchmark end to end (~10 s each)
def test_threads_smoke(tiny_models, tiny_photo, tmp_path):
    from benchmarks import threads

    out = tmp_path / "threads.json"
    argv = [str(tiny_photo), "--photo-scale", "1", "--weights", str(tiny_models["v1"])]
    threads.main([*argv, "--max-threads", "1", "--repeats", "1", "--out", str(out)])
    cells = read(out)["cells"]
    assert [(c["policy"], c["threads"]) for c in cells] == [("libgomp default", 1), ("PASSIVE", 1)]
    assert all(c["tiles"] == 2 and c["seconds"]["median"] > 0 for c in cells)


def test_ground_scale_smoke(tiny_models, tiny_photo, tmp_path, capsys):
    from benchmarks import ground_scale

    out = tmp_path / "ground_scale.json"
    models = ["--model", f"0.25={tiny_models['v1']}", "--model", f"0.5={tiny_models['v1']}"]
    ground_scale.main([*models, "--photos", str(tiny_photo), "--repeats", "1", "--out", str(out)])
    data = read(out)
    check_environment(data)
    tiles = {r["ground_scale"]: r["tiles"] for r in data["results"]}
    assert tiles[0.5] > tiles[0.25] >= 1  # twice the scale, more tiles for the same photo
    assert all(r["seconds"]["n"] == 1 for r in data["results"])
    assert "ground scale" in capsys.readouterr().out


@pytest.mark.slow  # a benchmark end to end (~10 s each)
def test_survey_run_smoke(tmp_path, capsys):
    from benchmarks import survey_run

    out = tmp_path / "survey_run.json"
    survey_run.main(["--photos", "2", "--engines", "local", "--out", str(out)])
    data = read(out)
    check_environment(data)
    (local,) = data["results"]
    assert (local["engine"], local["photos"]) == ("local", 2) and local["photos_per_second"] > 0
    assert "photos/s" in capsys.readouterr().out


def test_runtimes_smoke(tiny_photo, tmp_path, capsys):
    from benchmarks import runtimes

    out = tmp_path / "runtimes.json"
    runtimes.main([str(tiny_photo), "--runtime", "openvino", "--repeats", "1", "--out", str(out)])
    data = read(out)
    check_environment(data)
    (photo,) = data["photos"]
    assert set(photo["seconds"]) == set(data["summary"]) >= {"torch"}
    assert all(stats["n"] == 1 and stats["median"] > 0 for stats in photo["seconds"].values())
    # each runtime's verdict is its counts against torch's, as the report prints it
    assert set(photo["counts"]) == set(photo["within_tolerance"]) == set(data["summary"]) and list(photo["counts"]) == [
        "torch",
        *[n for n in photo["counts"] if n != "torch"],
    ]
    for name, counts in photo["counts"].items():
        assert list(counts) == SEA_LION_CLASSES
        assert photo["within_tolerance"][name] == counts_agree(photo["counts"]["torch"], counts)
        assert data["summary"][name]["total_animals"] == sum(counts.values())
    assert "x torch" in capsys.readouterr().out
