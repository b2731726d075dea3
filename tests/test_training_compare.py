"""Cross-validation runs compared side by side (training/compare.py): the per-class errors, ratios, total-count error,
fold spread and dense colonies' pups against numpy on the same arrays; arms of other photos or folds refused, naming
them; the docs region rewritten and checked from the summary; a calibration's sweep and confusion rendered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detector.classes import SEA_LION_CLASSES
from training.compare import MEAN, Arm, compare, documented, fold_differences, main, render, replace_region
from training.evaluate import count_metrics
from training.io import TrainingError
from training.records import (
    Calibration,
    CalibrationRow,
    Comparison,
    ConfusionTable,
    CVReport,
    FoldTraining,
    PhotoCounts,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ["0", "1", "2", "3", "4", "5", "8", "43"]
FOLDS = {"fold0": ["0", "5"], "fold1": ["1", "3"], "fold2": ["2", "43"], "fold3": ["4", "8"]}
FOLD_OF = {p: f for f, ids in FOLDS.items() for p in ids}
PUPS = SEA_LION_CLASSES.index("pups")


def sample_truth() -> np.ndarray:
    """(photos, classes) true counts: photo 0 and 43 are dense colonies (344 and 189 pups), 8 holds 51 pups."""
    truth = np.random.default_rng(0).integers(0, 40, size=(len(PHOTOS), len(SEA_LION_CLASSES)))
    truth[:, PUPS] = 0
    for photo, pups in {"0": 344, "43": 189, "8": 51}.items():
        truth[PHOTOS.index(photo), PUPS] = pups
    return truth


def training_mean(truth: np.ndarray, folds=FOLD_OF) -> np.ndarray:
    """Each photo's baseline: the mean count of the photos of the other folds (numpy, independent of the product)."""
    fold = np.array([folds[p] for p in PHOTOS])
    return np.array([truth[fold != fold[i]].mean(axis=0) for i in range(len(PHOTOS))])


def cv_report(
    truth: np.ndarray, predicted: np.ndarray, folds=FOLD_OF, init: str | None = "coco.pt", classes=SEA_LION_CLASSES
) -> CVReport:
    """A cv_metrics.json as training.evaluate --cv writes it, from the given counts (columns: ``classes``)."""
    order = [p for f in dict.fromkeys(folds.values()) for p in PHOTOS if folds[p] == f]  # fold by fold, as cv writes
    rows = [
        PhotoCounts(photo_id=p, truth=truth[PHOTOS.index(p)].tolist(), predicted=predicted[PHOTOS.index(p)].tolist(),
                    tiles=4, seconds=1.0, fold=folds[p])
        for p in order
    ]  # fmt: skip
    names = list(dict.fromkeys(folds.values()))
    return CVReport(
        folds=names, epochs_per_fold=30, init=init, conf=0.25,
        fold_training={f: FoldTraining(epochs_run=30, train_wall_time_s=1800.0 + 360 * i) for i, f in enumerate(names)},
        fold_seconds={f: 2000.0 + 360 * i for i, f in enumerate(names)},
        cv=count_metrics(truth, predicted, classes),
        baseline_training_mean=count_metrics(truth, training_mean(truth, folds), classes),
        mean_chip_map50=0.3, per_photo=rows,
    )  # fmt: skip


@pytest.fixture
def arms() -> list[Arm]:
    truth = sample_truth()
    noise = np.random.default_rng(1).integers(-6, 7, size=truth.shape)
    first = np.clip(truth + noise, 0, None)
    first[PHOTOS.index("0"), PUPS], first[PHOTOS.index("43"), PUPS] = 120, 100  # 35 % and 53 % of the pups
    second = np.clip(truth - 3, 0, None)
    return [
        Arm("COCO", Path("/runs/a"), cv_report(truth, first)),
        Arm("seals", Path("/runs/b"), cv_report(truth, second, init="seals.pt")),
    ]


def test_per_class_errors_ratios_and_totals_are_numpys_on_the_same_counts(arms):
    truth = sample_truth()
    baseline_rmse = np.sqrt(((training_mean(truth) - truth) ** 2).mean(axis=0)).mean()
    comparison = compare(arms, device="2 CPU cores")
    for arm, summary in zip(arms, comparison.arms, strict=True):
        predicted = np.array([arm.report.per_photo[[r.photo_id for r in arm.report.per_photo].index(p)].predicted
                              for p in PHOTOS])  # fmt: skip
        error = predicted - truth
        rmse = np.sqrt((error**2).mean(axis=0))
        for i, name in enumerate(SEA_LION_CLASSES):
            got = summary.per_class[name]
            assert (got.mae, got.rmse, got.bias) == pytest.approx(
                (np.abs(error[:, i]).mean(), rmse[i], error[:, i].mean()), abs=1e-4
            )
        assert summary.competition_rmse == pytest.approx(rmse.mean(), abs=1e-4)
        assert summary.ratio_to_baseline == pytest.approx(rmse.mean() / baseline_rmse, abs=1e-4)
        assert summary.total_count_error == pytest.approx(np.abs(error.sum(axis=1)).sum() / truth.sum(), abs=1e-4)
        for fold, ids in FOLDS.items():
            rows = [PHOTOS.index(p) for p in ids]
            assert summary.fold_rmse[fold] == pytest.approx(np.sqrt((error[rows] ** 2).mean(axis=0)).mean(), abs=1e-4)
        assert summary.training_hours == pytest.approx((1800 * 4 + 360 * 6) / 3600, abs=1e-4)
        assert summary.cv_hours == pytest.approx((2000 * 4 + 360 * 6) / 3600, abs=1e-4)
        assert summary.init == arm.report.init and summary.epochs_per_fold == 30
    assert comparison.baseline.competition_rmse == pytest.approx(baseline_rmse)
    assert comparison.folds == FOLDS and comparison.device == "2 CPU cores"


def test_each_arm_is_judged_against_the_first_fold_by_fold_per_class(arms):
    """The per-class differences are paired on the folds (numpy on the same counts), and the verdict follows the
    rule the docs state: beyond the folds' spread when the mean fold difference exceeds its standard deviation."""
    truth = sample_truth()
    comparison = compare(arms)
    reference, second = comparison.arms
    differences = fold_differences(second, reference, SEA_LION_CLASSES)
    assert list(differences) == [*SEA_LION_CLASSES, MEAN]

    def fold_rmse(arm: Arm, fold: str) -> np.ndarray:
        rows = {r.photo_id: r for r in arm.report.per_photo}
        error = np.array([rows[p].predicted for p in FOLDS[fold]]) - truth[[PHOTOS.index(p) for p in FOLDS[fold]]]
        return np.sqrt((error**2).mean(axis=0))

    per_fold = np.array([fold_rmse(arms[1], f) - fold_rmse(arms[0], f) for f in FOLDS])  # (folds, classes)
    for i, name in enumerate(SEA_LION_CLASSES):
        d = differences[name]
        assert list(d.per_fold.values()) == pytest.approx(per_fold[:, i], abs=1e-3)
        assert (d.mean, d.spread) == pytest.approx((per_fold[:, i].mean(), per_fold[:, i].std(ddof=1)), abs=1e-3)
        assert d.overall == pytest.approx(second.per_class[name].rmse - reference.per_class[name].rmse, abs=1e-3)
        beyond = abs(per_fold[:, i].mean()) > per_fold[:, i].std(ddof=1)
        expected = ("worse" if per_fold[:, i].mean() > 0 else "better") if beyond else "within the spread"
        assert d.verdict == expected, name
    # an arm that counts every photo exactly beats the first arm's noise of up to 6 animals in every fold
    exact = Arm("exact", Path("/runs/exact"), cv_report(truth, truth))
    judged = compare([arms[0], exact])
    assert fold_differences(judged.arms[1], judged.arms[0], SEA_LION_CLASSES)["adult_males"].verdict == "better"
    assert fold_differences(judged.arms[0], judged.arms[1], SEA_LION_CLASSES)["adult_males"].verdict == "worse"
    assert "| adult_males | " in render(judged) and "): **better** |" in render(judged)
    # a summary written before per-fold class RMSEs were recorded renders no such table
    without = [arm.model_copy(update={"fold_class_rmse": {}}) for arm in comparison.arms]
    old = comparison.model_copy(update={"arms": without})
    assert "beyond the folds' spread" not in render(old) and "beyond the folds' spread" in render(comparison)


def test_the_dense_colonies_are_the_photos_with_many_pups_counted_out_of_fold(arms):
    comparison = compare(arms)
    first = [(d.photo_id, d.fold, d.true_pups, d.counted_pups) for d in comparison.arms[0].dense_colonies]
    assert first == [("0", "fold0", 344, 120), ("43", "fold2", 189, 100)]  # photo 8's 51 pups are not dense
    truth = sample_truth()
    second = {d.photo_id: d.counted_pups for d in comparison.arms[1].dense_colonies}
    assert second == {p: max(0, truth[PHOTOS.index(p), PUPS] - 3) for p in ("0", "43")}
    assert [d.photo_id for d in compare(arms, dense_pups=50).arms[0].dense_colonies] == ["0", "8", "43"]
    markdown = render(comparison)
    assert f"| 0 (fold0) | 344 | 120 ({120 / 344:.0%}) | {second['0']} ({second['0'] / 344:.0%}) |" in markdown
    assert f"| 43 (fold2) | 189 | 100 ({100 / 189:.0%}) |" in markdown


def test_arms_of_other_photos_or_folds_are_refused_naming_the_arm_and_the_photos(arms):
    truth = sample_truth()
    moved = {**FOLD_OF, "3": "fold2", "43": "fold1"}
    with pytest.raises(TrainingError, match=r"arm 'moved' \(/runs/c/cv_metrics.json\).*another fold: 3 \(fold1 there"):
        compare([*arms, Arm("moved", Path("/runs/c"), cv_report(truth, truth, folds=moved))])
    report = cv_report(truth, truth)
    fewer = report.changed(per_photo=[r for r in report.per_photo if r.photo_id != "5"])
    with pytest.raises(TrainingError, match=r"arm 'fewer'.*photos only in 'COCO': 5\b"):
        compare([*arms, Arm("fewer", Path("/runs/d"), fewer)])
    other = truth.copy()
    other[PHOTOS.index("2"), 0] += 1
    with pytest.raises(TrainingError, match=r"other true counts: 2\."):
        compare([*arms, Arm("recounted", Path("/runs/e"), cv_report(other, other))])
    with pytest.raises(TrainingError, match="names must differ"):
        compare([arms[0], arms[0]])


def calibration(report: CVReport, photos=PHOTOS) -> Calibration:
    truth = np.array([r.truth for r in report.per_photo])
    metrics = count_metrics(truth, truth)
    conf = dict.fromkeys(SEA_LION_CLASSES, 0.25)
    counts = np.arange(36).reshape(6, 6).tolist()
    return Calibration(
        dataset="DS", cv_dir="/runs/a", grid=[0.02, 0.9, 0.01], calibration_helps=False, class_conf=conf,
        class_conf_unguarded=conf, class_conf_per_fold={}, photos=list(photos), uniform_conf=0.25,
        metrics_uniform_conf=metrics, metrics_calibrated_other_folds=count_metrics(truth, truth + 2),
        metrics_unguarded_other_folds=metrics, metrics_unguarded_in_sample=metrics,
        baseline_training_mean=report.baseline_training_mean,
        per_photo=[CalibrationRow(photo_id=p, truth=[0] * 5, uniform=[0] * 5, calibrated=[0] * 5) for p in photos],
        sweep={"0.10": {**dict.fromkeys(SEA_LION_CLASSES, 3.0), "mean": 3.0},
               "0.05": {**dict(zip(SEA_LION_CLASSES, [1.0, 2.0, 3.0, 4.0, 5.5], strict=True)), "mean": 3.1}},
        confusion=ConfusionTable(classes=list(SEA_LION_CLASSES), counts=counts, photos=8, radius="half a body"),
    )  # fmt: skip


def test_a_calibrated_arm_gets_its_sweep_and_confusion_tables(arms):
    calibrated = arms[0]._replace(calibration=calibration(arms[0].report))
    markdown = render(compare([calibrated, arms[1]]))
    assert "| threshold | mean RMSE | adult_males | subadult_males | adult_females | juveniles | pups |" in markdown
    sweep = markdown[markdown.index("| threshold") :]
    assert sweep.index("| 0.05 | 3.10 | 1.00 | 2.00 | 3.00 | 4.00 | 5.50 |") < sweep.index("| 0.10 | 3.00 | 3.00")
    assert "| true \\ detected | adult_males | subadult_males | adult_females | juveniles | pups | missed |" in markdown
    assert "| adult_males | 0 | 1 | 2 | 3 | 4 | 5 |" in markdown  # a true class: found as each class, then missed
    assert "| no dot | 30 | 31 | 32 | 33 | 34 | — |" in markdown  # detections that match no dot
    assert "**seals**: out-of-fold" not in markdown  # no calibration.json, no tables
    assert "| 2.00 | — |" in markdown  # calibrated on the other folds: every count 2 off; the uncalibrated arm: —
    stale = arms[0]._replace(calibration=calibration(arms[0].report, photos=PHOTOS[:-1]))
    with pytest.raises(TrainingError, match=r"/runs/a/calibration.json is of other photos.*--calibrate /runs/a"):
        compare([stale])


def write_arm(folder: Path, arm: Arm) -> str:
    folder.mkdir()
    arm.report.write(folder / "cv_metrics.json")
    return f"{arm.name}={folder}"


def test_the_command_writes_the_summary_and_the_docs_region_and_checks_it(arms, tmp_path, capsys):
    docs = tmp_path / "training.md"
    docs.write_text("# Title\n\nbefore\n<!-- screen:start -->\nold table\n<!-- screen:end -->\nafter\n")
    options = [f"--arm={write_arm(tmp_path / a.cv_dir.name, a)}" for a in arms]
    summary = tmp_path / "results" / "screen.json"
    summary.parent.mkdir()
    place = ["--docs", str(docs), "--section", "screen"]
    assert main([*options, "--device", "2 CPU cores", "--out", str(summary), *place]) == 0
    out, err = capsys.readouterr()
    written = Comparison.read(summary)
    assert out == render(written) + "\n" and f"wrote {summary}" in err
    assert documented(docs, "screen") == render(written)
    text = docs.read_text()
    assert text == f"# Title\n\nbefore\n<!-- screen:start -->\n{render(written)}\n<!-- screen:end -->\nafter\n"
    data = json.loads(summary.read_text())
    assert [a["name"] for a in data["arms"]] == ["COCO", "seals"] and "per_photo" not in json.dumps(data)
    assert len(summary.read_bytes()) < 8000

    assert main(["--summary", str(summary), *place, "--check"]) == 0
    docs.write_text(text.replace("| COCO |", "| COCO, edited |", 1))
    assert main(["--summary", str(summary), *place, "--check"]) == 1
    assert "region is not what" in capsys.readouterr().err
    assert main(["--summary", str(summary), *place]) == 0  # rewritten from the summary alone
    assert docs.read_text() == text

    docs.write_text("no markers here\n")
    with pytest.raises(SystemExit, match=rf"{docs} has no <!-- screen:start --> \.\.\. <!-- screen:end --> region"):
        main(["--summary", str(summary), *place])


def test_a_region_is_replaced_only_between_its_own_markers():
    text = "a\n<!-- x:start -->\n1\n<!-- x:end -->\nb\n<!-- y:start -->\n2\n<!-- y:end -->\n"
    assert replace_region(text, "y", "\nnew\n") == text.replace("\n2\n", "\nnew\n")
    with pytest.raises(TrainingError, match="notes.md has no <!-- z:start -->"):
        replace_region(text, "z", "new", "notes.md")
    with pytest.raises(TrainingError, match="each marker once"):
        replace_region(text + "<!-- x:start -->\n", "x", "new", "notes.md")


def test_a_missing_arm_folder_names_its_report_and_how_to_make_it(tmp_path):
    with pytest.raises(SystemExit, match=rf"{tmp_path}/cv_metrics.json not found: run python -m training.evaluate"):
        main(["--arm", f"nothing={tmp_path}"])


SCREEN = REPO_ROOT / "benchmarks" / "results" / "v5_screen.json"


@pytest.mark.skipif(not SCREEN.is_file(), reason=f"no {SCREEN.name} committed yet (issue 36's screen)")
def test_the_training_docs_show_the_committed_screen():
    assert documented(REPO_ROOT / "docs" / "training.md", "v5-screen") == render(Comparison.read(SCREEN))


EPOCHS_B = REPO_ROOT / "benchmarks" / "results" / "v5_epochs_b.json"


@pytest.mark.skipif(not EPOCHS_B.is_file(), reason=f"no {EPOCHS_B.name} committed yet (issue 36's full length)")
def test_the_training_docs_show_the_committed_epochs_comparison():
    assert documented(REPO_ROOT / "docs" / "training.md", "v5-epochs-b") == render(Comparison.read(EPOCHS_B))


CV90 = REPO_ROOT / "benchmarks" / "results" / "v5_cv90.json"
CANDIDATE = REPO_ROOT / "benchmarks" / "results" / "v5-candidate"


def test_the_training_docs_show_the_committed_full_length_comparison():
    assert documented(REPO_ROOT / "docs" / "training.md", "v5-cv90") == render(Comparison.read(CV90))


def _counted(name: str) -> dict[str, list[int]]:
    """Photo stem → the five class counts of one of the product's CSVs in ``CANDIDATE``."""
    import csv

    with (CANDIDATE / name).open(newline="") as handle:
        return {Path(r["file"]).stem: [int(r[c]) for c in SEA_LION_CLASSES] for r in csv.DictReader(handle)}


def test_why_there_is_no_v5_yet_quotes_the_products_counts():
    """The counts behind "no v5 yet" (the 30-epoch candidate and v4 in sample, v4 on the two new colonies, the fold
    models on photo 0) are the product's CSVs committed beside the comparison."""
    docs = " ".join((REPO_ROOT / "docs" / "training.md").read_text().split())
    juveniles, pups = SEA_LION_CLASSES.index("juveniles"), SEA_LION_CLASSES.index("pups")
    candidate, v4 = _counted("b30-final-photo43.csv")["43"], _counted("v4-photo43.csv")["43"]
    assert (
        f"it counts {candidate[juveniles]} of 47 juveniles and {candidate[pups]} of 189 pups (v4: {v4[juveniles]} "
        f"and {v4[pups]})" in docs
    )
    example = _counted("b30-final-examples.csv")["noaa_train_0"]
    assert f"{example[juveniles]} of 42 juveniles and {example[pups]} of 344 pups" in docs
    for photo, counts in _counted("v4-new-colonies.csv").items():
        assert f"photo {photo}: {', '.join(map(str, counts))} (truth" in docs, photo
    fold_models = [_counted(f.name)["0"] for f in sorted(CANDIDATE.glob("photo0-in-sample-*.csv"))]
    assert len(fold_models) == 4
    low, high = min(c[juveniles] for c in fold_models), max(c[juveniles] for c in fold_models)
    low_pups, high_pups = min(c[pups] for c in fold_models), max(c[pups] for c in fold_models)
    assert f"{low} to {high} of its 42 juveniles and {low_pups} to {high_pups} of its 344 pups" in docs


def test_the_classes_are_the_reports_own():
    """A cross-validation of another class set (an elephant-seal dataset: bull, cow, pup) compares per its own classes,
    with no dense-colony rows (it has no "pups" class); arms of different class sets are refused, naming both."""
    seal_classes = ["bull", "cow", "pup"]
    truth = np.random.default_rng(2).integers(0, 30, size=(len(PHOTOS), 3))
    predicted = np.clip(truth + 2, 0, None)
    seals = cv_report(truth, predicted, classes=seal_classes)
    comparison = compare([Arm("seals", Path("/runs/s"), seals)])
    assert comparison.classes == seal_classes
    expected = np.sqrt(((predicted - truth) ** 2).mean(axis=0))
    arm = comparison.arms[0]
    assert list(arm.per_class) == seal_classes
    assert [arm.per_class[c].rmse for c in seal_classes] == pytest.approx(expected, abs=1e-4)
    assert arm.dense_colonies == []
    sea_lions = cv_report(sample_truth(), sample_truth())
    with pytest.raises(TrainingError, match=r"classes \['adult_males'.*\['bull', 'cow', 'pup'\]"):
        compare([Arm("seals", Path("/runs/s"), seals), Arm("sea lions", Path("/runs/l"), sea_lions)])
