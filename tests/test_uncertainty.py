"""Uncertainty wherever a count is written: each class's typical error per photo from the model version's card,
the classes it counts worse than guessing the mean, and per-folder intervals in summary.csv, the CLI's --out files
and its table, and the app's Batch table."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from detector.counting.records import PhotoRecord, write_counts_csv, write_summary_csv
from detector.counting.results import CountResult
from detector.counting.uncertainty import CountUncertainty
from detector.versions.manifest import load_manifest
from sealion_app import present
from tests.helpers import REPO_ROOT, SEA_LION_CLASSES

EXAMPLE = REPO_ROOT / "examples" / "noaa_train_6.jpg"
# A card's metrics as training.publish writes them (made-up numbers: the arithmetic is what is tested here).
METRICS = {
    "cv_rmse_per_class": dict(zip(SEA_LION_CLASSES, [12.0, 30.0, 60.0, 20.0, 97.0], strict=True)),
    "cv_calibrated_rmse_per_class": dict(zip(SEA_LION_CLASSES, [11.4, 25.6, 60.4, 18.2, 96.5], strict=True)),
    "baseline_rmse_per_class": dict(zip(SEA_LION_CLASSES, [15.8, 5.3, 138.7, 13.9, 94.6], strict=True)),
}


def _result(per_class: list[int], source: str = "a.jpg") -> CountResult:
    class_id = np.repeat(np.arange(len(SEA_LION_CLASSES)), per_class)
    return CountResult(np.zeros((len(class_id), 4)), class_id, np.ones(len(class_id)), SEA_LION_CLASSES, (50, 40),
                       source=source)  # fmt: skip


def test_errors_come_from_the_calibrated_card_numbers_and_flag_classes_no_better_than_the_mean():
    errors = CountUncertainty.from_metrics(METRICS, "vX")
    assert errors.typical["pups"] == 96.5  # calibrated beats uncalibrated: those are the thresholds counting
    assert errors.worse_than_mean(SEA_LION_CLASSES) == ["subadult_males", "juveniles", "pups"]
    assert (
        not CountUncertainty.from_metrics({}).known
        and CountUncertainty.from_metrics({}).worse_than_mean(SEA_LION_CLASSES) == []
    )
    assert CountUncertainty.from_metrics({"cv_rmse_per_class": {"pups": 3.0}}).typical == {"pups": 3.0}


def test_the_default_version_brings_its_own_errors_from_the_manifest():
    manifest = load_manifest()
    version = manifest.get()  # whatever is the default now (v2 today, v3 once shipped)
    errors = CountUncertainty.of(version)
    card = version.metrics.get("cv_calibrated_rmse_per_class") or version.metrics["cv_rmse_per_class"]
    assert errors.version == manifest.default and errors.typical == pytest.approx(card)
    baseline = version.metrics.get("baseline_rmse_per_class") or {}
    assert errors.worse_than_mean(version.class_names) == [n for n in baseline if card[n] >= baseline[n]]


def test_a_folder_interval_is_photos_times_the_typical_error_clipped_at_zero():
    errors = CountUncertainty.from_metrics(METRICS)
    # The folder: 3 photos, 0 pups counted though it holds at least 19.
    assert errors.interval("pups", [{"pups": 0}] * 3) == (0, 290)  # 3 x 96.5 = 289.5: the 19 pups are inside
    assert errors.interval("adult_females", [{"adult_females": 65}, {}, {}]) == (
        0,
        247,
    )  # 65 - 181.2 < 0, 65 + 181.2 = 246.2
    assert errors.interval("adult_males", [{"adult_males": 100}, {}]) == (77, 123)  # 100 -/+ 22.8
    assert CountUncertainty().interval("pups", [{"pups": 5}, {}, {}]) is None


def test_summary_and_counts_csv_carry_the_errors_intervals_and_flags(tmp_path):
    errors = CountUncertainty.from_metrics(METRICS, "vX")
    records = [
        PhotoRecord(f"{i}.jpg", _result(counts), folder=folder)
        for i, (counts, folder) in enumerate([([0, 0, 19, 0, 0], "A"), ([0, 0, 0, 0, 0], "A"), ([3, 0, 46, 0, 0], "A"),
                                              ([1, 1, 1, 1, 1], "B")])
    ]  # fmt: skip
    with write_summary_csv(tmp_path / "summary.csv", records, errors=errors).open(newline="") as handle:
        summary = {row["folder"]: row for row in csv.DictReader(handle)}
    a = summary["A"]
    assert (a["photos"], a["adult_females"], a["pups"], a["total"]) == ("3", "65", "0", "68")
    assert (a["pups_low"], a["pups_high"]) == ("0", "290") and (a["adult_males_low"], a["adult_males_high"]) == (
        "0",
        "38",
    )
    assert (a["total_low"], a["total_high"]) == ("0", str(int(np.ceil(68 + 3 * sum(errors.typical.values())))))
    assert a["worse_than_mean"] == "subadult_males juveniles pups"
    assert (summary["B"]["adult_males_low"], summary["B"]["adult_males_high"]) == ("0", "13")

    with write_counts_csv(tmp_path / "counts.csv", records, errors=errors).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [rows[0][f"{n}_error"] for n in SEA_LION_CLASSES] == ["11.4", "25.6", "60.4", "18.2", "96.5"]
    assert rows[0]["worse_than_mean"] == "subadult_males juveniles pups"

    unknown = write_counts_csv(tmp_path / "unknown.csv", records).read_text().splitlines()
    assert "pups_error" in unknown[0] and ",,,,," in unknown[1]  # a version without CV numbers: columns left empty


def test_the_batch_table_shows_each_count_with_its_error_flags_and_a_total_row_with_the_range():
    errors = CountUncertainty.from_metrics(METRICS, "vX")
    table = present.batch_table([_result([0, 0, 19, 0, 0], "x.jpg"), _result([2, 0, 0, 0, 3], "y.jpg")],
                                SEA_LION_CLASSES, errors)  # fmt: skip
    assert list(table.columns[1:7]) == [
        "adult_males", "subadult_males ⚠", "adult_females", "juveniles ⚠", "pups ⚠", "total"
    ]  # fmt: skip
    assert table.iloc[0, 1:6].tolist() == ["0 ± 11", "0 ± 26", "19 ± 60", "0 ± 18", "0 ± 96"]
    assert table.iloc[2, 0] == "all 2 photos" and table.iloc[2, 5] == "3 (0–196)" and table.iloc[2, 6] == 24
    note = present.batch_note(errors, SEA_LION_CLASSES)
    assert "subadult males, juveniles, pups" in note and "no better than guessing" in note


def _count(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALION_")}
    return subprocess.run(
        [sys.executable, "-m", "detector", "count", *args], cwd=REPO_ROOT, env={**env, "SEALION_DEVICE": "cpu"},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def default_errors() -> CountUncertainty:
    return CountUncertainty.of(load_manifest().get())


def test_the_cli_out_files_of_the_default_model_carry_its_errors(tmp_path, default_errors):
    done = _count(str(EXAMPLE), "--out", str(tmp_path / "counts.csv"))
    assert done.returncode == 0, done.stderr
    (row,) = csv.DictReader((tmp_path / "counts.csv").open(newline=""))
    counts = {n: int(row[n]) for n in SEA_LION_CLASSES}
    assert {n: float(row[f"{n}_error"]) for n in SEA_LION_CLASSES} == {
        n: round(default_errors.photo_error(n, counts), 1) for n in SEA_LION_CLASSES
    }
    assert row["worse_than_mean"].split() == default_errors.worse_than_mean(SEA_LION_CLASSES)
    done = _count(str(EXAMPLE), "--out", str(tmp_path / "counts.json"))
    assert done.returncode == 0, done.stderr
    uncertainty = json.loads((tmp_path / "counts.json").read_text())["uncertainty"]
    assert uncertainty["typical_error_per_photo"] == pytest.approx(dict(default_errors.typical))
    assert uncertainty["worse_than_mean"] == default_errors.worse_than_mean(SEA_LION_CLASSES)


def test_sealion_count_prints_only_the_table_on_stdout(default_errors):
    done = _count(str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["file", *SEA_LION_CLASSES, "total"]
    assert lines[1].split()[0] == EXAMPLE.name and len(lines[1].split()) == len(SEA_LION_CLASSES) + 2
    flagged = default_errors.worse_than_mean(SEA_LION_CLASSES)
    errors = [f"{default_errors.rule(n)}{'!' * (n in flagged)}" for n in SEA_LION_CLASSES]
    assert lines[2].split() == ["typical", "error", *errors] and len(lines) == 3  # nothing else: no loading lines
    assert "model " in done.stderr and "typical error" in done.stderr  # what it loaded, and the legend: on stderr


def test_the_manifest_holds_the_error_model_fitted_from_the_out_of_fold_photos_and_the_docs_its_coverage():
    spec = importlib.util.spec_from_file_location("count_error_model", REPO_ROOT / "scripts" / "count_error_model.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    fit, table = script.report()
    recorded = load_manifest().get().metrics["cv_error_scale"]
    assert recorded == fit, "rerun python scripts/count_error_model.py --write"
    assert table in (REPO_ROOT / "docs" / "survey.md").read_text(), "paste scripts/count_error_model.py's table"


def test_a_sparse_photo_gets_a_narrow_range_and_a_dense_colony_a_wide_one(tmp_path, default_errors):
    """The default version's ranges follow the photo: 9 animals (the issue's sparse beach: ± 35 subadult males,
    ± 48 adult females, ± 96 pups before) against a colony of 493 (photo 43 as a fold model counted it)."""
    sparse, dense = [0, 1, 8, 0, 0], [32, 120, 309, 31, 1]
    records = [PhotoRecord(f"{name}.jpg", _result(c, f"{name}.jpg"), "A") for name, c in (("s", sparse), ("d", dense))]
    with write_counts_csv(tmp_path / "counts.csv", records, errors=default_errors).open(newline="") as handle:
        rows = {row["file"]: {n: float(row[f"{n}_error"]) for n in SEA_LION_CLASSES} for row in csv.DictReader(handle)}
    assert rows["s.jpg"]["subadult_males"] < 10 and rows["s.jpg"]["adult_females"] < 25 and rows["s.jpg"]["pups"] < 10
    assert rows["d.jpg"]["subadult_males"] > 100 and rows["d.jpg"]["pups"] > 150
    table = present.counts_table(_result(sparse), default_errors)
    assert table.iloc[4, 2] == f"± {default_errors.floor['pups']:.0f} per photo"  # not ± 96 for 0 pups
    batch = present.batch_table([_result(sparse, "s.jpg")], SEA_LION_CLASSES, default_errors)
    assert batch.iloc[0, 3] == f"8 ± {default_errors.floor['adult_females']:.0f}"
    with write_summary_csv(tmp_path / "summary.csv", records[:1], errors=default_errors).open(newline="") as handle:
        (folder,) = csv.DictReader(handle)
    assert (folder["pups_low"], folder["pups_high"]) == ("0", str(math.ceil(default_errors.floor["pups"])))


def test_the_ranges_the_docs_print_for_a_sparse_and_a_dense_photo_are_the_products(default_errors):
    text = (REPO_ROOT / "docs" / "survey.md").read_text()
    rows = re.findall(r"^\| `[\w.]+` \((\d+), (\d+), (\d+), (\d+), (\d+); \d+ animals\), (before|after) \| (.*) \|$",
                      text, re.MULTILINE)  # fmt: skip
    assert len(rows) == 5
    for *counts, when, cells in rows:
        photo = dict(zip(SEA_LION_CLASSES, map(int, counts), strict=True))
        old = CountUncertainty.from_metrics(
            {k: v for k, v in load_manifest().get().metrics.items() if k != "cv_error_scale"}
        )
        errors = default_errors if when == "after" else old
        assert cells.split(" | ") == [f"± {errors.photo_error(n, photo):.0f}" for n in SEA_LION_CLASSES], cells
