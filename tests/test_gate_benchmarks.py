"""``benchmarks.gate_recall`` and ``benchmarks.runtime_accuracy``: their arithmetic, the rule for a CPU default, the
manifest and model card they feed, and one real run each (results to tmp_path, never to benchmarks/results/)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from benchmarks import gate_recall, runtime_accuracy
from detector.versions.manifest import DEFAULT_MANIFEST, load_manifest
from tests.helpers import NO_SHARED_DATA, REPO_ROOT, SHARED_DATA

COUNTS = SHARED_DATA / "counts.csv"


def test_dots_outside_counts_dots_in_no_tile():
    tiles = np.array([[0, 0, 100, 100], [80, 0, 180, 100]])
    dots = np.array([[10, 10], [90, 50], [179, 99], [180, 50], [500, 5]], dtype=np.float32)
    assert gate_recall.dots_outside(tiles, dots) == 2  # x=180 is past the right edge; 500 is far away
    assert gate_recall.dots_outside(tiles, np.zeros((0, 2), dtype=np.float32)) == 0


def test_errors_against_the_official_counts_say_where_the_gate_counts_closer():
    official = {"a": 10, "b": 2}
    assert gate_recall.error_against({"a": 12, "b": 0}, official) == 4
    photos = [
        {"error_vs_official": {"gated": 2, "ungated": 5}},
        {"error_vs_official": {"gated": 4, "ungated": 1}},
        {"error_vs_official": {"gated": 3, "ungated": 3}},
        {},  # no official counts for this photo
    ]
    assert gate_recall.error_summary(photos) == {
        "photos_with_official_counts": 3, "error_vs_official_gated": 9, "error_vs_official_ungated": 9,
        "photos_gate_closer": 1, "photos_gate_farther": 1,
    }  # fmt: skip


def test_rmse_and_total_shift_arithmetic():
    official = [{"a": 10, "b": 0}, {"a": 0, "b": 4}]
    counts = [{"a": 13, "b": 0}, {"a": 0, "b": 0}]
    assert runtime_accuracy.rmse_per_class(counts, official) == {"a": round((9 / 2) ** 0.5, 3), "b": round(8**0.5, 3)}
    assert runtime_accuracy.total_shift({"a": 100, "b": 0}, {"a": 97, "b": 1}) == (2, 100)


def summary(mean_rmse: float, shifts: list[tuple[int, int]]) -> dict:
    return {"mean_rmse": mean_rmse, "total_shifts": shifts}


def test_the_rule_for_a_cpu_default():
    torch = summary(40.0, [(0, 300), (0, 2)])
    assert runtime_accuracy.passes(summary(40.4, [(6, 300), (1, 2)]), torch)  # 1 % RMSE, 2 % of 300, one animal
    assert not runtime_accuracy.passes(summary(40.5, [(0, 300)]), torch)  # RMSE 1.25 % worse
    assert not runtime_accuracy.passes(summary(39.0, [(7, 300)]), torch)  # better RMSE, but a total moved 2.3 %
    assert not runtime_accuracy.passes(summary(39.0, [(2, 2)]), torch)  # two animals on a tiny photo


def test_each_official_id_has_one_photo_raw_first(tmp_path):
    for folder in ("fullres-raw", "fullres-dotted", "downsampled/Train"):
        (tmp_path / folder).mkdir(parents=True)
    for folder, ids in {"fullres-raw": ["5"], "fullres-dotted": ["5", "3"], "downsampled/Train": ["3", "0"]}.items():
        for photo_id in ids:
            (tmp_path / folder / f"{photo_id}.jpg").write_bytes(b"")
    chosen = {i: runtime_accuracy.photo_for(i, tmp_path) for i in ("5", "3", "0", "9")}
    assert chosen["5"].parent.name == "fullres-raw" and chosen["3"].parent.name == "fullres-dotted"
    assert chosen["0"].parent.name == "Train" and chosen["9"] is None


def fake_result(version: str, sha256: str) -> dict:
    rows = {
        "torch": {"precision": "fp32", "mean_rmse": 40.0, "total_mae": 60.0, "max_total_shift_vs_torch_relative": 0.0,
                  "seconds_per_photo": 1.0, "passes": True},
        "openvino-f32": {"precision": "fp32", "mean_rmse": 40.1, "total_mae": 60.5,
                         "max_total_shift_vs_torch_relative": 0.004, "seconds_per_photo": 0.8, "passes": True},
        "openvino": {"precision": "bf16", "mean_rmse": 41.0, "total_mae": 62.0,
                     "max_total_shift_vs_torch_relative": 0.03, "seconds_per_photo": 0.4, "passes": False},
    }  # fmt: skip
    return {
        "model": {"version": version, "sha256": sha256, "cpu_runtime": "openvino-f32"},
        "summary": rows,
        "recommended_cpu_runtime": "openvino-f32",
        "rule": "the rule as the benchmark words it",
        "photos": [{"id": str(i)} for i in range(17)],
    }


def test_update_manifest_records_accuracy_and_the_card_shows_why(tmp_path):
    from training.card import card_body

    manifest = tmp_path / "manifest.yaml"
    shutil.copy(DEFAULT_MANIFEST, manifest)
    version = load_manifest(manifest).get()
    if "openvino-f32" not in version.runtimes:
        pytest.skip(f"the default version {version.name} has no openvino-f32 export to record")
    result = fake_result(version.name, version.sha256)
    runtime_accuracy.update_manifest(result, manifest)
    updated = load_manifest(manifest).get(version.name)
    accuracy = updated.runtimes["openvino-f32"].count_check["accuracy"]
    assert accuracy["mean_rmse_vs_official"] == 40.1 and accuracy["torch_mean_rmse_vs_official"] == 40.0
    assert accuracy["photos"] == len(result["photos"]) and accuracy["passes"] is True
    assert updated.runtimes["openvino-f32"].count_check.get("photos") == version.runtimes[
        "openvino-f32"
    ].count_check.get("photos")  # the check against torch is kept beside it
    assert updated.cpu_runtime == "openvino-f32"
    training = {"base_config": "yolov5n.yaml", "training_data": {}, "training_command": "python -m training.train"}
    body = card_body({**updated.to_card(), **training}, updated.name)
    assert "torch's mean per-class RMSE is 40.0" in body
    assert "| openvino | bf16 | 41.0 | 62.0 | 3.0% | 0.4 | no |" in body
    assert "The rule for a CPU default: the rule as the benchmark words it (`openvino-f32`)" in body


@pytest.mark.skipif(not COUNTS.is_file(), reason=NO_SHARED_DATA)
def test_runtime_accuracy_runs_on_one_photo(tmp_path, capsys):
    out = tmp_path / "runtime_accuracy.json"
    runtime_accuracy.main(["--ids", "50", "--runtime", "openvino-f32", "--out", str(out)])
    data = json.loads(out.read_text())
    assert set(data["summary"]) == {"torch", "openvino-f32"} and data["summary"]["torch"]["precision"] == "fp32"
    (photo,) = data["photos"]
    assert photo["photo"] == "fullres-raw/50.jpg" and photo["official"]["adult_males"] == 1
    assert data["summary"]["openvino-f32"]["precision"] == "fp32"  # read back from the compiled model
    assert (tmp_path / "runtime_accuracy.md").read_text().startswith("Model ")
    assert "Recommended CPU default" in capsys.readouterr().out


def test_gate_recall_runs_on_an_example(tmp_path):
    out = tmp_path / "gate_recall.json"
    gate_recall.main([str(REPO_ROOT / "examples" / "noaa_train_6.jpg"), "--out", str(out)])
    data = json.loads(out.read_text())
    (photo,) = data["photos"]
    assert photo["tiles_run"] == photo["tiles"] and photo["tiles_skipped"] == photo["gate_tiles"] == 0  # enlarged
    assert photo["counts_gated"] == photo["counts_ungated"] and data["summary"]["keeps_counts"] is True
    table = (tmp_path / "gate_recall.md").read_text()
    assert "noaa_train_6.jpg" in table and "gated / ungated" in table


def test_gate_recall_counts_with_another_weights_file_at_one_threshold(tmp_path, tiny_models):
    """``--weights`` (a cross-validation fold's model, for the out-of-sample check): that file counts, and the
    result says which file and which threshold."""
    out = tmp_path / "gate_recall.json"
    argv = [str(REPO_ROOT / "examples" / "noaa_train_6.jpg"), "--weights", str(tiny_models["v1"]), "--runtime", "torch"]
    with pytest.raises(SystemExit):  # the scale a file was trained at is not in the file
        gate_recall.main([*argv, "--out", str(out)])
    gate_recall.main([*argv, "--ground-scale", "0.5", "--conf", "0.2", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data["model"]["weights"] == str(tiny_models["v1"]) and data["model"]["runtime"] == "torch"
    assert data["settings"]["count_options"].startswith("conf 0.2 for every class")


@pytest.mark.skipif(not (SHARED_DATA / "fullres-raw" / "44.jpg").is_file(), reason=NO_SHARED_DATA)
def test_gate_recall_checks_the_dots_of_a_gated_full_resolution_photo():
    """A full-resolution photo with the biologists' dots: the gate runs, and every dot is placed in or out of the
    tiles it kept (the branch a downsampled example never reaches)."""
    from detector import Detector

    photo = SHARED_DATA / "fullres-raw" / "44.jpg"
    dots = gate_recall.read_dots()[photo.stem]
    official = gate_recall.official_counts()["44"]
    entry = gate_recall.measure(Detector.load(), photo, dots, official)
    assert entry["dots"] == len(dots) > 0 and 0 <= entry["dots_in_skipped_tiles"] <= len(dots)
    assert entry["official"] == official and entry["error_vs_official"] == {
        "gated": gate_recall.error_against(entry["counts_gated"], official),
        "ungated": gate_recall.error_against(entry["counts_ungated"], official),
    }
    assert entry["tiles_skipped"] > 0 and entry["tiles_run"] + entry["tiles_skipped"] == entry["tiles"]
    assert 0 < entry["tiles_with_detections"] < entry["tiles"]


@pytest.mark.skipif(not (SHARED_DATA / "fullres-raw" / "44.jpg").is_file(), reason=NO_SHARED_DATA)
def test_running_only_the_tiles_with_a_detection_keeps_the_counts():
    """The perfect gate gate_recall reports: the full pass on only the tiles where it finds anything counts exactly
    what it counts on all of them."""
    from detector import Detector
    from detector.settings import CountOptions

    detector, off = Detector.load(), CountOptions(gate=False)
    prepared = detector.prepare(SHARED_DATA / "fullres-raw" / "44.jpg", off)
    pipeline = detector.pipeline
    grid, _ = pipeline.gated_tiles(prepared, CountOptions(gate=True))
    conf = pipeline.thresholds(off).count
    with_detections = grid[np.unique(pipeline.detect(prepared.work, grid, conf, off).tile_id)]
    assert len(with_detections) < len(grid) / 2
    only = pipeline.detect(prepared.work, with_detections, conf, off).merge_tiles()
    per_class = np.bincount(only.class_id, minlength=len(detector.class_names)).tolist()
    counted = dict(zip(detector.class_names, per_class, strict=True))
    assert counted == detector.count_many([prepared], off)[0].counts


def test_the_docs_show_the_committed_gate_recall_table():
    """docs/benchmarks.md carries the table ``benchmarks.gate_recall --docs`` wrote, not a hand-typed copy."""
    table = REPO_ROOT / "benchmarks" / "results" / "gate_recall.md"
    if not table.is_file():
        pytest.skip("no committed gate_recall.md: run python -m benchmarks.gate_recall --docs")
    docs = (REPO_ROOT / "docs" / "benchmarks.md").read_text()
    assert f"<!-- gate_recall -->\n{table.read_text().strip()}\n<!-- /gate_recall -->" in docs


def test_the_readme_row_matches_the_committed_gate_recall_run():
    results = REPO_ROOT / "benchmarks" / "results" / "gate_recall.json"
    if not results.is_file():
        pytest.skip("no committed gate_recall.json: run python -m benchmarks.gate_recall --docs")
    data = json.loads(results.read_text())
    s = data["summary"]
    row = next(line for line in (REPO_ROOT / "README.md").read_text().splitlines() if "(`gate_recall`)" in line)
    assert f"{data['model']['version']}, {s['photos']} full-resolution photos" in row
    assert f"{s['photos_within_tolerance']} of {s['photos']} (largest difference {s['max_count_difference']} " in row
    assert f"{s['tiles_run']} of {s['tiles']} tiles run + {s['gate_tiles']} coarse: " in row
    share = f"{s['network_tiles_share']:.0%} of the network tiles"
    assert f"{share}; {s['dots_in_skipped_tiles']} of {s['dots']} dots in skipped tiles" in row
    perfect = f"the full pass finds anything in {s['tiles_with_detections']} tiles ({s['perfect_gate_share']:.0%}: "
    assert perfect in row


def test_runtime_summaries_and_the_rule_on_counted_photos():
    official = {"adult_males": 10, "pups": 100}
    per_photo = [
        {"official": official, "seconds": {"torch": 2.0, "fast": 1.0},
         "counts": {"torch": {"adult_males": 8, "pups": 90}, "fast": {"adult_males": 8, "pups": 95}}},
        {"official": {"adult_males": 1, "pups": 0}, "seconds": {"torch": 2.0, "fast": 1.0},
         "counts": {"torch": {"adult_males": 1, "pups": 0}, "fast": {"adult_males": 2, "pups": 0}}},
    ]  # fmt: skip
    summary = runtime_accuracy.summarize_runtimes(per_photo, {"torch": "fp32", "fast": "bf16"})
    fast, torch = summary["fast"], summary["torch"]
    assert torch["rmse_per_class"] == {"adult_males": round((4 / 2) ** 0.5, 3), "pups": round((100 / 2) ** 0.5, 3)}
    assert fast["total_shifts"] == [(5, 98), (1, 1)] and fast["max_total_shift_vs_torch"] == 5
    assert fast["max_total_shift_vs_torch_relative"] == 1.0  # one animal of one (allowed: one animal at least)
    assert fast["mean_rmse"] < torch["mean_rmse"] and torch["passes"]
    assert not fast["passes"]  # better against the truth, but 5 of 98 animals (5.1 %) moved on the first photo
    assert fast["seconds_per_photo"] == 1.0 and fast["precision"] == "bf16"


def test_the_readme_row_matches_the_committed_runtime_accuracy_run():
    results = REPO_ROOT / "benchmarks" / "results" / "runtime_accuracy.json"
    if not results.is_file():
        pytest.skip("no committed runtime_accuracy.json: run python -m benchmarks.runtime_accuracy --docs")
    data = json.loads(results.read_text())
    row = next(line for line in (REPO_ROOT / "README.md").read_text().splitlines() if "(`runtime_accuracy`)" in line)
    assert f"{data['model']['version']}, {len(data['photos'])} photos" in row
    for name, s in data["summary"].items():
        assert f"{name} ({s['precision']}) {s['mean_rmse']:.1f} at {s['seconds_per_photo']:.2f} s/photo" in row
        if name != "torch":
            assert (", passes" if s["passes"] else ", fails") in row.split(f"{name} ({s['precision']})")[1][:40]
    assert f"**{data['recommended_cpu_runtime']}** (the CPU default)" in row
    assert data["recommended_cpu_runtime"] == load_manifest().get(data["model"]["version"]).cpu_runtime


def test_the_readme_sahi_row_matches_the_committed_sliced_vs_sahi_run():
    results = REPO_ROOT / "benchmarks" / "results" / "sliced_vs_sahi.json"
    data = json.loads(results.read_text())
    photos = data["photos"]

    def median(photo: dict, name: str) -> float:
        return photo["seconds"][name]["median"]

    def spread(values: list[float]) -> str:
        return f"{min(values):.2f}–{max(values):.2f}"

    def sahi_over(name: str) -> str:
        return spread([median(p, "sahi_matched") / median(p, name) for p in photos])

    row = next(line for line in (REPO_ROOT / "README.md").read_text().splitlines() if line.startswith("| ours vs SAHI"))
    assert f"{len(photos)} full-resolution photos, {data['model']['version']} " in row
    gate = "on" if data["settings"]["gate_on_by_default"] else "off"
    assert f"ours at the defaults (OpenVINO fp32, gate {gate}) {spread([median(p, 'ours') for p in photos])} s" in row
    assert f"SAHI matched {sahi_over('ours')}x that" in row
    assert f"SAHI defaults {spread([median(p, 'sahi_defaults') / median(p, 'ours') for p in photos])}x" in row
    flipped = "off" if gate == "on" else "on"
    assert f"`--gate {flipped}` {sahi_over(f'ours_gate_{flipped}')}x" in row
    assert f"(bf16, gate {gate}) {sahi_over('ours_openvino')}x" in row
    assert f"bf16 with the gate {flipped} {sahi_over(f'ours_openvino_gate_{flipped}')}x" in row
