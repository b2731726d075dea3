"""The pinniped paper benchmark: its docs table comes from its committed results, and its truth and the paper's
detections are read as published (needs ../shared/data/pinnipeds; skips without it)."""

from __future__ import annotations

import csv
import json

import pytest

from benchmarks import pinniped_paper
from benchmarks.common import RESULTS_DIR

RESULTS = RESULTS_DIR / "pinniped_paper.json"


@pytest.mark.skipif(not RESULTS.is_file(), reason="no committed benchmarks/results/pinniped_paper.json: run "
                    "python -m benchmarks.pinniped_paper --version VERSION --docs")  # fmt: skip
def test_the_docs_table_is_the_committed_result():
    result = json.loads(RESULTS.read_text())
    docs = pinniped_paper.DOCS_TABLE.read_text()
    block = docs.split("<!-- pinniped_paper -->", 1)[1].split("<!-- /pinniped_paper -->", 1)[0]
    assert block.strip() == pinniped_paper.table(result).strip()
    assert result["split"] == "test" and result["tiles"] == 408


@pytest.mark.skipif(
    not (pinniped_paper.PINNIPEDS / "test").is_dir(),
    reason="../shared/data/pinnipeds not here (set SEALION_PINNIPED_DATA to the pinniped data's folder)",
)
def test_the_paper_detections_and_the_test_truth_read_as_published():
    truth = pinniped_paper.true_counts("test")
    tiles = sorted(truth)
    assert len(tiles) == 408
    assert {c: sum(t[c] for t in truth.values()) for c in pinniped_paper.CLASSES} == {
        "bull": 106,
        "cow": 634,
        "pup": 1863,
    }
    paper = pinniped_paper.errors(pinniped_paper.counts_at(pinniped_paper.paper_detections(), tiles, 0.5), truth)
    assert {c: paper[c]["found"] for c in pinniped_paper.CLASSES} == {"bull": 195, "cow": 739, "pup": 2073}
    assert paper["pup"]["rmse"] == pytest.approx(1.442, abs=1e-3)
    baseline = pinniped_paper.mean_baseline(truth)
    assert baseline["cow"]["rmse"] == pytest.approx(2.892, abs=1e-3)


VALID_RUNS = {  # docs/pinnipeds.md's row → the committed valid-split run it quotes
    "as shipped (NMS IoU 0.45, photo scale 1)": "valid-iou0.45.json",
    "NMS IoU 0.6": "valid-iou0.6.json",
    "tiles counted as photo scale 0.85 (the model sees them 1.18x larger)": "valid-ps0.85.json",
    "tiles counted as photo scale 0.7 (1.43x larger)": "valid-ps0.7.json",
    "v1 trained 24 more epochs at ground scale 0.576 (288 px tiles, pups 31 px; 0.8 h)": "valid-v2-288.json",
}


def test_the_valid_split_settings_table_quotes_the_committed_runs():
    """The inference settings tried on the valid split: every row of the docs' table is the best RMSE per class over
    the sweep of its committed run, and the run used the setting the row names."""
    docs = pinniped_paper.DOCS_TABLE.read_text()
    for row, name in VALID_RUNS.items():
        result = json.loads((RESULTS_DIR / "pinniped-valid" / name).read_text())
        assert result["split"] == "valid"
        best = [min(result["ours_sweep"][c].values()) for c in pinniped_paper.CLASSES]
        assert f"| {row} | " + " | ".join(f"{v:.2f}" for v in best) + " |" in docs, row
        assert str(result["iou"]) in row or result["iou"] == 0.45
        assert str(result["photo_scale"]) in row or result["photo_scale"] == 1.0


def test_the_larger_scale_run_is_quoted_from_its_committed_log_and_sweep():
    """The not-adopted training run of docs/pinnipeds.md: its epochs and best mAP@0.5 come from its ultralytics log,
    and its sweep was counted with that run's own weights at its own ground scale, not the shipped version's."""
    docs = " ".join(pinniped_paper.DOCS_TABLE.read_text().split())
    with (RESULTS_DIR / "pinniped-valid" / "v2-288-training-results.csv").open() as log:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(log)]
    best_map50 = max(float(row["metrics/mAP50(B)"]) for row in rows)
    assert f"{len(rows)} epochs in 0.8 h" in docs and f"to {best_map50:.3f}, yet" in docs
    result = json.loads((RESULTS_DIR / "pinniped-valid" / "valid-v2-288.json").read_text())
    shipped = json.loads((RESULTS_DIR / "pinniped-valid" / "valid-iou0.45.json").read_text())
    assert result["model"]["ground_scale"] == 0.576 and result["model"]["sha256"] != shipped["model"]["sha256"]


def test_the_shipped_versions_training_is_quoted_from_its_committed_log():
    """elephant-seals-v1's epochs, hours and valid mAP@0.5 in docs/pinnipeds.md come from its ultralytics log."""
    docs = " ".join(pinniped_paper.DOCS_TABLE.read_text().split())
    with (RESULTS_DIR / "pinniped-valid" / "v1-training-results.csv").open() as log:
        rows = [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(log)]
    last, at_38 = rows[-1], next(row for row in rows if row["epoch"] == 38)
    best_map50 = max(row["metrics/mAP50(B)"] for row in rows)
    assert f"{int(last['epoch'])} epochs in {last['time'] / 3600:.1f} h" in docs
    assert f"{at_38['metrics/mAP50(B)']:.3f} at epoch 38, {best_map50:.3f} at {int(last['epoch'])})" in docs
    assert f"rose from {best_map50:.3f} to" in docs
