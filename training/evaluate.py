"""Measure a model the way biologists use it: counts per class on whole photos, through the product's Detector.

    # one model on some photos of a dataset (whole photos, sliced inference exactly as users get it)
    python -m training.evaluate --dataset DIR --weights runs/v1/weights/best.pt --photos 2,3,8
    # k-fold cross-validation over photos: train one model per fold, count on its unseen photos
    python -m training.evaluate --dataset DIR --cv --epochs 30 --out /work/train-runs/cv

Reports per-class MAE and RMSE of the counts, the competition metric (per-class RMSE averaged over the classes),
the total-count error, the same numbers for the "predict the training mean" baseline, and mAP@0.5 on the validation
chips (ultralytics ``val``). Ground truth is the official count (counts.csv) where known, else the dot (or box)
count. The classes are the dataset's own (``class_names`` in its photos.json: the five sea lion classes, or e.g.
bull, cow, pup for a box-label dataset); the functions that take ``class_names`` default to the sea lion ones.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from detector.classes import SEA_LION_CLASSES
from detector.files import sha256_file
from detector.settings import DEFAULT_CONF
from detector.versions.hub import ResolvedWeights
from detector.versions.manifest import ModelVersion
from training.io import DOTS_FOLDER, DatasetRecord, PhotoEntry, TrainingError
from training.records import (
    CV_REPORT,
    Calibration,
    CalibrationRow,
    ChipMetrics,
    ClassError,
    ConfusionTable,
    CountMetrics,
    CVReport,
    DataSplit,
    Evaluation,
    FoldTraining,
    PaintedComparison,
    PaintedRow,
    PhotoCounts,
)

logger = logging.getLogger(__name__)


def truth_counts(record: PhotoEntry) -> dict[str, int]:
    """The official count where known, else the photo's dots."""
    return dict(record.official_counts or record.dot_counts)


def count_array(counts: Any, class_names: Sequence[str]) -> np.ndarray:
    """(photos, classes) counts as floats; a table whose columns are not one per class is refused, naming both."""
    array = np.asarray(counts, dtype=np.float64)
    if (array.ndim == 2 and array.shape[1] != len(class_names)) or array.size % len(class_names):
        raise TrainingError(
            f"counts of shape {array.shape} do not have one column per class ({len(class_names)}: "
            f"{', '.join(class_names)})"
        )
    return array.reshape(-1, len(class_names))


def count_metrics(
    truth: np.ndarray, predicted: np.ndarray, class_names: Sequence[str] = SEA_LION_CLASSES
) -> CountMetrics:
    """Per-class MAE/RMSE, competition metric and total-count errors of (photos, classes) count arrays, the columns
    in the order of ``class_names`` (the dataset's classes)."""
    truth = count_array(truth, class_names)
    predicted = count_array(predicted, class_names).reshape(truth.shape)
    error = predicted - truth
    rmse = np.sqrt((error**2).mean(axis=0))
    total_error = error.sum(axis=1)
    return CountMetrics(
        photos=int(len(truth)),
        per_class={
            name: ClassError(mae=float(np.abs(error[:, i]).mean()), rmse=float(rmse[i]), bias=float(error[:, i].mean()))
            for i, name in enumerate(class_names)
        },
        competition_rmse=float(rmse.mean()),
        total_mae=float(np.abs(total_error).mean()),
        total_bias=float(total_error.mean()),
        total_relative_error=float(np.abs(total_error).sum() / max(1.0, truth.sum())),
    )


def load_detector(
    weights: Path,
    imgsz: int,
    ground_scale: float,
    device: str | None = None,
    greyscale_input: bool = False,
    class_names: Sequence[str] = SEA_LION_CLASSES,
):
    """The product's Detector on a local weights file, with the imgsz and ground scale it was trained at, and the
    classes of its dataset (weights with other classes are refused, naming both)."""
    from detector.counting.model import Detector

    weights = Path(weights)
    version = replace(
        ModelVersion.unlisted(weights.name, sha256_file(weights), ground_scale),
        name=weights.stem, class_names=tuple(class_names), imgsz=imgsz, greyscale_input=greyscale_input,
    )  # fmt: skip
    return Detector(ResolvedWeights(weights, version.sha256, "local", version), device=device)


def truth_array(records: Sequence[PhotoEntry], class_names: Sequence[str]) -> np.ndarray:
    """The (photos, classes) truth counts of ``records`` (:func:`truth_counts`), in the order of ``class_names``."""
    return np.array([[truth_counts(r).get(n, 0) for n in class_names] for r in records]).reshape(-1, len(class_names))


def count_photos(
    detector,
    dataset: Path,
    records: Sequence[PhotoEntry],
    ground_scale: float,
    conf: float,
    class_names: Sequence[str] = SEA_LION_CLASSES,
) -> tuple[np.ndarray, list[PhotoCounts]]:
    """Run the detector on whole photos; returns the (photos, classes) count array and per-photo rows."""
    predicted, rows = [], []
    for record in records:
        result = detector.count(str(Path(dataset) / record.image), conf=conf, photo_scale=ground_scale)
        counts = [result.counts[name] for name in class_names]
        predicted.append(counts)
        rows.append(
            PhotoCounts(
                photo_id=record.photo_id,
                truth=truth_array([record], class_names)[0].tolist(),
                predicted=counts,
                tiles=result.tiles,
                seconds=round(result.timings_ms["total"] / 1000, 2),
            )
        )
    return np.array(predicted).reshape(-1, len(class_names)), rows


def chip_map50(
    weights: Path, data_yaml: Path, imgsz: int, device: str = "cpu", class_names: Sequence[str] = SEA_LION_CLASSES
) -> ChipMetrics:
    """Detection mAP@0.5 (all classes and per class) on a split's validation chips, with ultralytics ``val``."""
    from ultralytics import YOLO

    metrics = YOLO(str(weights), task="detect").val(
        data=str(data_yaml), imgsz=imgsz, batch=16, device=device, plots=False, verbose=False, workers=0
    )
    pairs = zip(metrics.box.ap_class_index, metrics.box.ap50, strict=True)
    per_class = {class_names[int(c)]: float(ap) for c, ap in pairs}
    return ChipMetrics(map50=float(metrics.box.map50), map50_95=float(metrics.box.map), per_class_map50=per_class)


def evaluate_model(
    weights: Path,
    dataset: Path,
    photo_ids: Sequence[str],
    train_ids: Sequence[str] = (),
    conf: float = DEFAULT_CONF,
    data_yaml: Path | None = None,
    device: str | None = None,
) -> Evaluation:
    """Count metrics of one model on ``photo_ids`` (and the training-mean baseline from ``train_ids``)."""
    summary = DatasetRecord.read(dataset)
    by_id = summary.by_id
    missing = [p for p in photo_ids if p not in by_id]
    if missing:
        raise TrainingError(f"photos {missing} are not in {dataset}/photos.json (known: {sorted(by_id)})")
    imgsz, ground_scale, names = summary.chip_size, summary.ground_scale, summary.class_names
    detector = load_detector(weights, imgsz, ground_scale, device, class_names=names)
    records = [by_id[p] for p in photo_ids]
    predicted, rows = count_photos(detector, dataset, records, ground_scale, conf, names)
    truth = truth_array(records, names)
    optional: dict[str, Any] = {}
    if train_ids:
        mean = truth_array([by_id[p] for p in train_ids], names).mean(axis=0)
        optional["baseline_training_mean"] = count_metrics(truth, np.tile(mean, (len(truth), 1)), names)
    if data_yaml is not None:
        optional["chips"] = chip_map50(weights, data_yaml, imgsz, device or "cpu", names)
    return Evaluation(
        weights=str(weights), conf=conf, imgsz=imgsz, ground_scale=ground_scale,
        model=count_metrics(truth, predicted, names), per_photo=rows, **optional,
    )  # fmt: skip


def cross_validate(
    dataset: Path, out: Path, epochs: int, model: str = "yolov5n.yaml", conf: float = DEFAULT_CONF, device: str = "cpu",
    folds: Sequence[str] | None = None, extra: Mapping[str, Any] | None = None, init: str | None = None,
    grey: float = 0.1, fold_hours: Mapping[str, float] | None = None,
) -> CVReport:  # fmt: skip
    """Train one model per fold (same recipe as the default, ``epochs`` epochs, or ``fold_hours[fold]`` hours) and
    count on the unseen photos. A fold already trained in ``out`` is reused, one that was cut is resumed."""
    from training.train import TrainConfig, train_or_resume

    summary = DatasetRecord.read(dataset)
    fold_names = list(folds or sorted(k for k in summary.splits if k.startswith("fold")))
    if not fold_names:
        raise TrainingError(f"{dataset} has no CV folds: rebuild it with --folds 4")
    by_id = summary.by_id
    truth, predicted, baseline, rows, chips, timings, ran = [], [], [], [], {}, {}, {}
    for name in fold_names:
        data_yaml = Path(summary.splits[name])
        train_ids, val_ids = DataSplit.read(data_yaml).photo_ids(data_yaml)
        record = train_or_resume(
            TrainConfig(
                data=str(data_yaml), model=model, epochs=epochs, device=device, project=str(out), name=name,
                extra=dict(extra or {}), init=init, grey=grey, hours=(fold_hours or {}).get(name),
            ),
            command=f"cross-validation fold {name}",
        )  # fmt: skip
        started = time.perf_counter()
        result = evaluate_model(Path(record.weights), dataset, val_ids, train_ids, conf, data_yaml, device)
        # the fold's training time from its record (also when it was trained or resumed by an earlier call)
        timings[name] = round((record.wall_time_s or 0.0) + time.perf_counter() - started, 1)
        ran[name] = FoldTraining(epochs_run=record.epochs_run, train_wall_time_s=record.wall_time_s)
        for row in result.per_photo:
            truth.append(row.truth)
            predicted.append(row.predicted)
            rows.append(row.changed(fold=name))
        mean = truth_array([by_id[p] for p in train_ids], summary.class_names).mean(0)
        baseline += [mean.tolist()] * len(result.per_photo)
        chips[name] = result.chips
        result.write(out / f"{name}_metrics.json")
    report = CVReport(
        folds=fold_names,
        epochs_per_fold=epochs_text([r.epochs_run for r in ran.values()]),  # what ran (time= or hours may cut it)
        hours_per_fold=dict(fold_hours or {}),
        fold_training=ran,
        train_overrides=dict(extra or {}),
        model=model,
        init=init,
        grey=grey,
        conf=conf,
        cv=count_metrics(np.array(truth), np.array(predicted), summary.class_names),
        baseline_training_mean=count_metrics(np.array(truth), np.array(baseline), summary.class_names),
        chips_map50=chips,
        mean_chip_map50=float(np.mean([c.map50 for c in chips.values()])),
        per_photo=rows,
        fold_seconds=timings,
    )
    report.write(out / CV_REPORT)
    return report


def epochs_text(epochs_run: Sequence[int | None]) -> int | str:
    """The epochs the folds ran: one number, or "min-max" when time-bounded folds ran different counts."""
    known = sorted(int(e) for e in epochs_run if e is not None)
    if not known:
        return "unknown"
    return known[0] if known[0] == known[-1] else f"{known[0]}-{known[-1]}"


def fold_photos(summary: DatasetRecord, fold_names: Sequence[str]) -> dict[str, list[str]]:
    """The unseen (validation) photo ids of each cross-validation fold, from the dataset's split files."""
    splits = {name: Path(summary.splits[name]) for name in fold_names}
    return {name: DataSplit.read(path).photo_ids(path)[1] for name, path in splits.items()}


THRESHOLD_GRID = np.round(np.arange(0.02, 0.91, 0.01), 2)  # candidate per-class count thresholds
CALIBRATION_FLOOR = float(THRESHOLD_GRID[0])


def counts_at(class_id: np.ndarray, confidence: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per-class counts of one photo's detections, each class at its own threshold (one per class, in order)."""
    class_id, confidence = np.asarray(class_id, dtype=np.int64), np.asarray(confidence, dtype=np.float64)
    keep = confidence >= np.asarray(thresholds)[class_id]
    return np.bincount(class_id[keep], minlength=len(thresholds))


def choose_thresholds(truth: np.ndarray, detections: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Per class, the threshold of :data:`THRESHOLD_GRID` whose counts have the smallest RMSE over the photos.

    ``detections``: per photo, (class_id, confidence) found at :data:`CALIBRATION_FLOOR`. Ties go to the higher
    threshold (fewer, surer detections).
    """
    truth = np.asarray(truth, dtype=np.float64)
    truth = truth.reshape(len(detections), -1)  # (photos, classes): the classes are the truth's columns
    chosen = np.empty(truth.shape[1])
    for c in range(truth.shape[1]):
        per_photo = [conf[cls == c] for cls, conf in detections]
        counts = np.array([[(conf >= t).sum() for t in THRESHOLD_GRID] for conf in per_photo])  # (photos, grid)
        rmse = np.sqrt(((counts - truth[:, c : c + 1]) ** 2).mean(axis=0))
        best = np.flatnonzero(rmse <= rmse.min() + 1e-9)
        chosen[c] = THRESHOLD_GRID[best[-1]]
    return chosen


def guarded_thresholds(
    folds: Mapping[str, Sequence[str]],
    truth: Mapping[str, np.ndarray],
    found: Mapping[str, tuple[np.ndarray, np.ndarray]],
    default: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class thresholds chosen on the photos of ``folds``, kept only where they count better than ``default``
    on held-out folds (leave one fold out, inside ``folds``); returns (guarded, unguarded) thresholds.

    With a handful of photos a per-class threshold can fit two busy photos and miss the rest: a class keeps its
    calibrated threshold only when that held up on photos it was not chosen on. Given a single fold (the other
    fold of a 2-fold CV), the guard leaves one photo out instead.
    """
    if len(folds) == 1:
        folds = {photo: [photo] for photos in folds.values() for photo in photos}
    names = list(folds)
    photos = [p for name in names for p in folds[name]]

    def fit(ids: Sequence[str]) -> np.ndarray:
        return choose_thresholds(np.array([truth[p] for p in ids]), [found[p] for p in ids])

    unguarded = fit(photos)
    defaults = np.full(len(unguarded), default)
    if len(names) < 2:  # one fold (the other folds of a 2-fold CV): hold out one photo at a time instead
        folds, names = {p: [p] for p in photos}, photos
    if len(names) < 2:  # a single photo: nothing to check a threshold on, so every class keeps the default
        return defaults, unguarded
    calibrated_err, default_err = np.zeros(len(defaults)), np.zeros(len(defaults))
    for name in names:
        inner = fit([p for other in names if other != name for p in folds[other]])
        for p in folds[name]:
            calibrated_err += (counts_at(*found[p], inner) - truth[p]) ** 2
            default_err += (counts_at(*found[p], defaults) - truth[p]) ** 2
    return np.where(calibrated_err < default_err, unguarded, defaults), unguarded


SWEEP_GRID = np.round(np.arange(0.05, 0.61, 0.05), 2)  # uniform thresholds the calibration report sweeps


def sweep_table(
    truth: np.ndarray, found: Sequence[tuple[np.ndarray, np.ndarray]], class_names: Sequence[str] = SEA_LION_CLASSES
) -> dict[str, dict[str, float]]:
    """Per uniform threshold of :data:`SWEEP_GRID`, each class's count RMSE (and their mean) over the photos."""
    table = {}
    for t in SWEEP_GRID:
        predicted = np.array([counts_at(cls, conf, np.full(len(class_names), t)) for cls, conf in found])
        metrics = count_metrics(truth, predicted, class_names)
        table[f"{t:.2f}"] = {**metrics.rmse_per_class(2), "mean": round(metrics.competition_rmse, 2)}
    return table


def match_to_dots(
    dots_xy: np.ndarray,
    dots_class: np.ndarray,
    boxes: np.ndarray,
    box_class: np.ndarray,
    radius: np.ndarray,
    classes: int,
) -> np.ndarray:
    """A (classes + 1) x (classes + 1) confusion of one photo: detections matched one to one to dots (the pairing of
    least total distance, scipy's linear_sum_assignment), a pair only within the dot's ``radius``; the last column
    counts unmatched dots (missed), the last row unmatched detections."""
    from scipy.optimize import linear_sum_assignment

    table = np.zeros((classes + 1, classes + 1), dtype=np.int64)
    dots_xy, boxes = np.asarray(dots_xy, dtype=float).reshape(-1, 2), np.asarray(boxes, dtype=float).reshape(-1, 4)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    distance = np.linalg.norm(dots_xy[:, None, :] - centres[None, :, :], axis=2)
    allowed = distance <= np.asarray(radius, dtype=float)[:, None]
    rows, cols = linear_sum_assignment(np.where(allowed, distance, 1e9)) if distance.size else ([], [])
    matched_dots, matched_boxes = set(), set()
    for r, c in zip(rows, cols, strict=True):
        if allowed[r, c]:
            table[dots_class[r], box_class[c]] += 1
            matched_dots.add(r)
            matched_boxes.add(c)
    for r in set(range(len(dots_xy))) - matched_dots:
        table[dots_class[r], classes] += 1
    for c in set(range(len(boxes))) - matched_boxes:
        table[classes, box_class[c]] += 1
    return table


def read_photo_dots(dataset: Path, photo_id: str, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """A photo's dots at the ground scale (``dots/<id>.csv``, written by training.dataset), or None."""
    path = Path(dataset) / DOTS_FOLDER / f"{photo_id}.csv"
    if not path.is_file():
        return None
    rows = [line.split(",") for line in path.read_text().splitlines()[1:] if line]
    xy = np.array([[float(r[0]), float(r[1])] for r in rows], dtype=float).reshape(-1, 2)
    return xy, np.array([list(names).index(r[2]) for r in rows], dtype=np.int64)


def format_confusion(table: ConfusionTable) -> str:
    """The confusion table as text: rows the dots' classes, columns the classes found (and missed)."""
    header = ["true \\ found", *table.classes, "missed"]
    rows = [[name, *map(str, row)] for name, row in zip([*table.classes, "no dot"], table.counts, strict=True)]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in [header, *rows])


def calibrate(dataset: Path, cv_dir: Path, device: str | None = None, greyscale_input: bool = False) -> Calibration:
    """Per-class count thresholds from a cross-validation's fold models and their unseen photos.

    1. Each fold model counts its unseen photos at a low floor; every detection's class and confidence is kept.
    2. Thresholds for the model version (:func:`guarded_thresholds`): per class, the one that minimises the count
       RMSE over all CV photos, kept only if thresholds chosen that way beat the uniform conf on held-out folds.
    3. The honest estimate of what calibration gains: each fold's photos are counted (by the product's Detector,
       with ``class_conf``) at thresholds chosen, the same guarded way, on the *other* folds' photos only.

    ``greyscale_input``: count every photo as its greyscale copy (the version's colour-blind input mode); the
    report is then ``calibration-grey.json``.
    """
    summary = DatasetRecord.read(dataset)
    cv = CVReport.read_from(cv_dir)
    by_id = summary.by_id
    imgsz, ground_scale, names = summary.chip_size, summary.ground_scale, summary.class_names
    folds = fold_photos(summary, cv.folds)
    detectors = {
        name: load_detector(
            Path(cv_dir) / name / "weights" / "best.pt", imgsz, ground_scale, device, greyscale_input, names
        )
        for name in folds
    }
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    boxes: dict[str, np.ndarray] = {}
    for name, photos in folds.items():
        for photo_id in photos:
            result = detectors[name].count(str(Path(dataset) / by_id[photo_id].image), conf=CALIBRATION_FLOOR,
                                           photo_scale=ground_scale)  # fmt: skip
            found[photo_id] = (result.class_id, result.confidence)
            boxes[photo_id] = result.xyxy
    order = [p for photos in folds.values() for p in photos]
    truth_of = {p: truth_array([by_id[p]], names)[0] for p in order}
    truth = np.array([truth_of[p] for p in order])
    default = float(cv.conf)
    shipped, unguarded = guarded_thresholds(folds, truth_of, found, default)
    honest, unguarded_honest, per_fold = [], [], {}
    for name, photos in folds.items():
        others = {other: folds[other] for other in folds if other != name}
        thresholds, plain = guarded_thresholds(others, truth_of, found, default)
        per_fold[name] = dict(zip(names, thresholds.tolist(), strict=True))
        for photo_id in photos:
            result = detectors[name].count(str(Path(dataset) / by_id[photo_id].image), class_conf=per_fold[name],
                                           photo_scale=ground_scale)  # fmt: skip
            honest.append([result.counts[n] for n in names])
            unguarded_honest.append(counts_at(*found[photo_id], plain))
    uniform = {row.photo_id: row.predicted for row in cv.per_photo}
    if greyscale_input:  # the CV counted colour photos: count the greyscale copies at the same uniform conf
        uniform = {p: counts_at(*found[p], np.full(len(names), cv.conf)).tolist() for p in order}
    uniform_metrics = count_metrics(truth, np.array([uniform[p] for p in order]), names)
    honest_metrics = count_metrics(truth, np.array(honest), names)
    # The second guard: per-class thresholds ship only when the whole procedure, repeated on each fold's unseen
    # photos, counts better than the uniform conf; otherwise every class keeps the uniform conf.
    calibration_helps = honest_metrics.competition_rmse < uniform_metrics.competition_rmse
    if not calibration_helps:
        shipped, honest_metrics = np.full(len(names), default), uniform_metrics
    classes = len(names)
    confusion, matched = np.zeros((classes + 1, classes + 1), dtype=np.int64), 0
    radius_px = {n: summary.body_length_px.get(n, 0) * ground_scale / 2 for n in names}
    for photo_id in order:
        dots = read_photo_dots(dataset, photo_id, names)
        if dots is None:
            continue
        class_id, confidence = found[photo_id]
        keep = np.asarray(confidence) >= shipped[np.asarray(class_id, dtype=np.int64)]
        radius = np.array([radius_px[names[c]] for c in dots[1]])
        confusion += match_to_dots(dots[0], dots[1], boxes[photo_id][keep], np.asarray(class_id)[keep], radius, classes)
        matched += 1
    report = Calibration(
        dataset=str(dataset),
        cv_dir=str(cv_dir),
        greyscale_input=greyscale_input,
        grid=[float(THRESHOLD_GRID[0]), float(THRESHOLD_GRID[-1]), 0.01],
        calibration_helps=calibration_helps,
        class_conf=dict(zip(names, shipped.tolist(), strict=True)),
        class_conf_unguarded=dict(zip(names, unguarded.tolist(), strict=True)),
        class_conf_per_fold=per_fold,
        photos=order,
        uniform_conf=cv.conf,
        metrics_uniform_conf=uniform_metrics,
        metrics_calibrated_other_folds=honest_metrics,
        metrics_per_class_thresholds_other_folds=count_metrics(truth, np.array(honest), names),
        metrics_unguarded_other_folds=count_metrics(truth, np.array(unguarded_honest), names),
        metrics_unguarded_in_sample=count_metrics(
            truth, np.array([counts_at(*found[p], unguarded) for p in order]), names
        ),
        baseline_training_mean=cv.baseline_training_mean,
        per_photo=[
            CalibrationRow(photo_id=p, truth=t.tolist(), uniform=list(uniform[p]), calibrated=h)
            for p, t, h in zip(order, truth, honest, strict=True)
        ],
        sweep=sweep_table(truth, [found[p] for p in order], names),
        confusion=ConfusionTable(
            classes=list(names), counts=confusion.tolist(), photos=matched,
            radius="half the dot's class body length at the ground scale",
        ) if matched else None,
    )  # fmt: skip
    report.write(Calibration.file_in(cv_dir, greyscale_input))
    return report


def compare_painted(dataset: Path, painted: Path, cv_dir: Path, device: str | None = None) -> PaintedComparison:
    """Is a painted-out dotted copy a fair stand-in for the raw photo? Each photo of ``painted`` (built with
    ``--prefer-painted``) is counted twice by the CV fold model that never saw it: on its raw photo (``dataset``)
    and on its painted-out copy; both at the fold model's uniform conf."""
    summary, other = DatasetRecord.read(dataset), DatasetRecord.read(painted)
    cv = CVReport.read_from(cv_dir)
    imgsz, ground_scale, names = summary.chip_size, summary.ground_scale, summary.class_names
    if other.ground_scale != ground_scale:
        raise TrainingError(f"{painted} is at ground scale {other.ground_scale}, {dataset} at {ground_scale}")
    by_id = summary.by_id
    fold_of = {photo_id: name for name, photos in fold_photos(summary, cv.folds).items() for photo_id in photos}
    rows = []
    for record in other.photos:
        photo_id = record.photo_id
        if by_id[photo_id].image_source != "raw" or record.image_source != "painted":
            continue  # only photos that have both a raw photo and a painted-out copy
        weights = Path(cv_dir) / fold_of[photo_id] / "weights" / "best.pt"
        detector = load_detector(weights, imgsz, ground_scale, device, class_names=names)
        counts = {}
        for label, folder, rec in (("raw", dataset, by_id[photo_id]), ("painted", painted, record)):
            result = detector.count(str(Path(folder) / rec.image), conf=cv.conf, photo_scale=ground_scale)
            counts[label] = [result.counts[n] for n in names]
        truth_of = truth_counts(by_id[photo_id])
        rows.append(PaintedRow(photo_id=photo_id, fold=fold_of[photo_id], truth=truth_of, **counts))
    raw, painted_counts = np.array([r.raw for r in rows]), np.array([r.painted for r in rows])
    truth = np.array([[r.truth[n] for n in names] for r in rows])
    report = PaintedComparison(
        photos=rows,
        raw_vs_truth=count_metrics(truth, raw, names),
        painted_vs_truth=count_metrics(truth, painted_counts, names),
        painted_minus_raw_total=(painted_counts.sum(axis=1) - raw.sum(axis=1)).tolist(),
    )
    report.write(Path(cv_dir) / PaintedComparison.FILE)
    return report


def format_table(model: CountMetrics, baseline: CountMetrics | None = None) -> str:
    """A plain-text table: per-class MAE/RMSE of the model (and the baseline), competition metric, totals."""
    head = f"{'class':<16}{'MAE':>8}{'RMSE':>8}{'bias':>8}"
    if baseline:
        head += f"{'base MAE':>10}{'base RMSE':>11}"
    lines = [head]
    for name, m in model.per_class.items():
        line = f"{name:<16}{m.mae:>8.2f}{m.rmse:>8.2f}{m.bias:>8.2f}"
        if baseline:
            b = baseline.per_class[name]
            line += f"{b.mae:>10.2f}{b.rmse:>11.2f}"
        lines.append(line)
    line = f"{'mean RMSE (competition)':<32}{model.competition_rmse:>8.2f}"
    if baseline:
        line += f"{'':>10}{baseline.competition_rmse:>11.2f}"
    lines.append(line)
    line = f"{'total count MAE':<32}{model.total_mae:>8.2f}"
    if baseline:
        line += f"{'':>10}{baseline.total_mae:>11.2f}"
    lines.append(line)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except TrainingError as exc:
        raise SystemExit(f"evaluate: {exc}") from None


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="folder written by python -m training.dataset")
    parser.add_argument("--weights", type=Path, help="model to evaluate (without --cv)")
    parser.add_argument("--photos", default="", help="comma-separated photo ids (default: all in the dataset)")
    parser.add_argument("--split", default="", help="evaluate on this split's val photos (e.g. fold0), with mAP")
    parser.add_argument("--cv", action="store_true", help="k-fold cross-validation: train and count per fold")
    parser.add_argument(
        "--compare-painted", type=Path, metavar="PAINTED_DATASET",
        help="count raw photos and their painted-out copies (a dataset built with --prefer-painted) with the fold "
        "models of --cv-dir",
    )  # fmt: skip
    parser.add_argument(
        "--greyscale-input", action="store_true", help="with --calibrate: count greyscale copies (colour-blind mode)"
    )
    parser.add_argument("--cv-dir", type=Path, help="a finished --cv run (for --compare-painted)")
    parser.add_argument(
        "--calibrate", type=Path, metavar="CV_DIR",
        help="per-class count thresholds from the fold models of a finished --cv run (writes CV_DIR/calibration.json)",
    )  # fmt: skip
    parser.add_argument("--folds", default="", help="with --cv: only these folds (e.g. fold0,fold1)")
    parser.add_argument("--epochs", type=int, default=30, help="with --cv: epochs per fold")
    parser.add_argument("--model", default="yolov5n.yaml", help="with --cv: model config")
    parser.add_argument("--init", default=None, help="with --cv: init weights (see python -m training.train --init)")
    parser.add_argument("--grey", type=float, default=0.1, help="with --cv: probability of a greyscale training image")
    parser.add_argument("--conf", type=float, default=DEFAULT_CONF, help="detection confidence (the product default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="folder (with --cv) or JSON file for the results")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="with --cv: other ultralytics train arguments"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    started = time.perf_counter()
    if args.cv:
        out = args.out or Path("runs/cv")
        folds = [f for f in args.folds.split(",") if f] or None
        import yaml

        extra = {k: yaml.safe_load(v) for k, _, v in (item.partition("=") for item in args.set)}
        report = cross_validate(
            args.dataset, out, args.epochs, args.model, args.conf, args.device, folds, extra, args.init, args.grey
        )
        print(f"cross-validation, {len(report.folds)} folds x {args.epochs} epochs, {report.cv.photos} photos")
        print(format_table(report.cv, report.baseline_training_mean))
        print(f"mAP@0.5 on validation chips, mean over folds: {report.mean_chip_map50:.3f}")
        print(f"wrote {out / CV_REPORT} in {time.perf_counter() - started:.0f}s")
        return 0
    if args.compare_painted:
        if not args.cv_dir:
            parser.error("--compare-painted needs --cv-dir (the finished --cv run whose fold models count)")
        report = compare_painted(args.dataset, args.compare_painted, args.cv_dir, args.device)
        names = list(report.raw_vs_truth.per_class)
        print(f"{'photo':>6}  truth / raw photo / painted-out copy  ({', '.join(names)})")
        for row in report.photos:
            truth = [row.truth[n] for n in names]
            print(f"{row.photo_id:>6}  {truth} / {row.raw} / {row.painted}")
        for label, m in (("raw_vs_truth", report.raw_vs_truth), ("painted_vs_truth", report.painted_vs_truth)):
            print(f"{label}: competition RMSE {m.competition_rmse:.2f}, total MAE {m.total_mae:.1f}")
        return 0
    if args.calibrate:
        report = calibrate(args.dataset, args.calibrate, args.device, args.greyscale_input)
        print("per-class count thresholds:", report.class_conf)
        print(f"uniform conf {report.uniform_conf}:")
        print(format_table(report.metrics_uniform_conf, report.baseline_training_mean))
        print("calibrated, thresholds chosen on the other folds (honest):")
        print(format_table(report.metrics_calibrated_other_folds, report.baseline_training_mean))
        unguarded = report.metrics_unguarded_other_folds.competition_rmse
        print(f"(every class calibrated, no guard: {unguarded:.2f} on the other folds)", report.class_conf_unguarded)
        print("uniform threshold sweep, out-of-fold count RMSE per class:")
        columns = [*report.class_conf, "mean"]
        print("  conf  " + "  ".join(f"{n:>14}" for n in columns))
        for t, row in report.sweep.items():
            print(f"  {t}  " + "  ".join(f"{row[n]:>14.2f}" for n in columns))
        if report.confusion is not None:
            print(
                "out-of-fold detections at the shipped thresholds matched to the dots "
                f"({report.confusion.photos} photos):"
            )
            print(format_confusion(report.confusion))
        written = Calibration.file_in(args.calibrate, args.greyscale_input)
        print(f"wrote {written} in {time.perf_counter() - started:.0f}s")
        return 0
    if args.weights is None:
        parser.error("--weights is required without --cv, --calibrate or --compare-painted")
    summary = DatasetRecord.read(args.dataset)
    data_yaml, train_ids = None, []
    if args.split:
        data_yaml = Path(summary.splits[args.split])
        train_ids, photo_ids = DataSplit.read(data_yaml).photo_ids(data_yaml)
    else:
        photo_ids = [p for p in args.photos.split(",") if p] or [r.photo_id for r in summary.photos]
    result = evaluate_model(args.weights, args.dataset, photo_ids, train_ids, args.conf, data_yaml, args.device)
    print(f"{'photo':>6}  truth -> predicted  ({', '.join(summary.class_names)})")
    for row in result.per_photo:
        print(f"{row.photo_id:>6}  {row.truth} -> {row.predicted}  ({row.tiles} tiles, {row.seconds}s)")
    print(format_table(result.model, result.baseline_training_mean))
    if result.chips is not None:
        print(f"mAP@0.5 on validation chips: {result.chips.map50:.3f}")
    if args.out:
        result.write(args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
