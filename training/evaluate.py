"""Measure a model the way biologists use it: counts per class on whole photos, through the product's Detector.

    # one model on some photos of a dataset (whole photos, sliced inference exactly as users get it)
    python -m training.evaluate --dataset DIR --weights runs/v1/weights/best.pt --photos 2,3,8
    # k-fold cross-validation over photos: train one model per fold, count on its unseen photos
    python -m training.evaluate --dataset DIR --cv --epochs 30 --out /work/train-runs/cv

Reports per-class MAE and RMSE of the counts, the competition metric (per-class RMSE averaged over the five
classes), the total-count error, the same numbers for the "predict the training mean" baseline, and mAP@0.5 on
the validation chips (ultralytics ``val``). Ground truth is the official count (counts.csv) where known, else
the dot count.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detector.classes import SEA_LION_CLASSES
from detector.hub import ResolvedWeights, sha256_file
from detector.manifest import ModelVersion

logger = logging.getLogger(__name__)


def load_summary(dataset: Path) -> dict[str, Any]:
    path = Path(dataset) / "photos.json"
    if not path.is_file():
        raise SystemExit(f"{path} not found: build the dataset with python -m training.dataset first")
    return json.loads(path.read_text())


def truth_counts(record: Mapping[str, Any]) -> dict[str, int]:
    """The official counts of a photo when known, else its dot counts."""
    return dict(record.get("official_counts") or record["dot_counts"])


def count_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Per-class MAE/RMSE, competition metric and total-count errors of (photos, classes) count arrays."""
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, len(SEA_LION_CLASSES))
    predicted = np.asarray(predicted, dtype=np.float64).reshape(truth.shape)
    error = predicted - truth
    rmse = np.sqrt((error**2).mean(axis=0))
    total_error = error.sum(axis=1)
    return {
        "photos": int(len(truth)),
        "per_class": {
            name: {"mae": float(np.abs(error[:, i]).mean()), "rmse": float(rmse[i]), "bias": float(error[:, i].mean())}
            for i, name in enumerate(SEA_LION_CLASSES)
        },
        "competition_rmse": float(rmse.mean()),
        "total_mae": float(np.abs(total_error).mean()),
        "total_bias": float(total_error.mean()),
        "total_relative_error": float(np.abs(total_error).sum() / max(1.0, truth.sum())),
    }


def load_detector(weights: Path, imgsz: int, ground_scale: float, device: str | None = None):
    """The product's Detector on a local weights file, with the imgsz and ground scale it was trained at."""
    from detector.model import Detector

    weights = Path(weights)
    version = ModelVersion(
        name=weights.stem,
        repo_id="",
        revision="",
        commit="",
        filename=weights.name,
        sha256=sha256_file(weights),
        class_names=SEA_LION_CLASSES,
        imgsz=imgsz,
        ground_scale=ground_scale,
    )
    return Detector(ResolvedWeights(weights, version.sha256, "local", version), device=device)


def count_photos(detector, dataset: Path, records: Sequence[Mapping[str, Any]], ground_scale: float, conf: float):
    """Run the detector on whole photos; returns the (photos, classes) count array and per-photo rows."""
    predicted, rows = [], []
    for record in records:
        result = detector.count(str(Path(dataset) / record["image"]), conf=conf, photo_scale=ground_scale)
        counts = [result.counts[name] for name in SEA_LION_CLASSES]
        predicted.append(counts)
        rows.append(
            {
                "photo_id": record["photo_id"],
                "truth": [truth_counts(record)[n] for n in SEA_LION_CLASSES],
                "predicted": counts,
                "tiles": result.tiles,
                "seconds": round(result.timings_ms["total"] / 1000, 2),
            }
        )
    return np.array(predicted).reshape(-1, len(SEA_LION_CLASSES)), rows


def chip_map50(weights: Path, data_yaml: Path, imgsz: int, device: str = "cpu") -> dict[str, Any]:
    """Detection mAP@0.5 (all classes and per class) on a split's validation chips, with ultralytics ``val``."""
    from ultralytics import YOLO

    metrics = YOLO(str(weights), task="detect").val(
        data=str(data_yaml), imgsz=imgsz, batch=16, device=device, plots=False, verbose=False, workers=0
    )
    pairs = zip(metrics.box.ap_class_index, metrics.box.ap50, strict=True)
    per_class = {SEA_LION_CLASSES[int(c)]: float(ap) for c, ap in pairs}
    return {"map50": float(metrics.box.map50), "map50_95": float(metrics.box.map), "per_class_map50": per_class}


def evaluate_model(
    weights: Path,
    dataset: Path,
    photo_ids: Sequence[str],
    train_ids: Sequence[str] = (),
    conf: float = 0.25,
    data_yaml: Path | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Count metrics of one model on ``photo_ids`` (and the training-mean baseline from ``train_ids``)."""
    summary = load_summary(dataset)
    by_id = {r["photo_id"]: r for r in summary["photos"]}
    missing = [p for p in photo_ids if p not in by_id]
    if missing:
        raise SystemExit(f"photos {missing} are not in {dataset}/photos.json (known: {sorted(by_id)})")
    imgsz, ground_scale = int(summary["chip_options"]["size"]), float(summary["ground_scale"])
    detector = load_detector(weights, imgsz, ground_scale, device)
    records = [by_id[p] for p in photo_ids]
    predicted, rows = count_photos(detector, dataset, records, ground_scale, conf)
    truth = np.array([[truth_counts(r)[n] for n in SEA_LION_CLASSES] for r in records])
    result = {"weights": str(weights), "conf": conf, "imgsz": imgsz, "ground_scale": ground_scale}
    result["model"] = count_metrics(truth, predicted)
    if train_ids:
        mean = np.array([[truth_counts(by_id[p])[n] for n in SEA_LION_CLASSES] for p in train_ids]).mean(axis=0)
        result["baseline_training_mean"] = count_metrics(truth, np.tile(mean, (len(truth), 1)))
    result["per_photo"] = rows
    if data_yaml is not None:
        result["chips"] = chip_map50(weights, data_yaml, imgsz, device or "cpu")
    return result


def cross_validate(
    dataset: Path, out: Path, epochs: int, model: str = "yolov5n.yaml", conf: float = 0.25, device: str = "cpu",
    folds: Sequence[str] | None = None, extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train one model per fold (same recipe as the default, ``epochs`` epochs) and count on the unseen photos."""
    import yaml

    from training.train import TrainConfig, train

    summary = load_summary(dataset)
    fold_names = list(folds or sorted(k for k in summary["splits"] if k.startswith("fold")))
    if not fold_names:
        raise SystemExit(f"{dataset} has no CV folds: rebuild it with --folds 4")
    by_id = {r["photo_id"]: r for r in summary["photos"]}
    truth, predicted, baseline, rows, chips, timings = [], [], [], [], {}, {}
    for name in fold_names:
        data_yaml = Path(summary["splits"][name])
        split = yaml.safe_load(data_yaml.read_text())
        started = time.perf_counter()
        record = train(
            TrainConfig(
                data=str(data_yaml), model=model, epochs=epochs, device=device, project=str(out), name=name,
                extra=dict(extra or {}),
            ),
            command=f"cross-validation fold {name}",
        )  # fmt: skip
        result = evaluate_model(
            Path(record["weights"]), dataset, split["val_photos"], split["train_photos"], conf, data_yaml, device
        )
        timings[name] = round(time.perf_counter() - started, 1)
        for row in result["per_photo"]:
            truth.append(row["truth"])
            predicted.append(row["predicted"])
            rows.append({**row, "fold": name})
        mean = np.array([[truth_counts(by_id[p])[n] for n in SEA_LION_CLASSES] for p in split["train_photos"]]).mean(0)
        baseline += [mean.tolist()] * len(result["per_photo"])
        chips[name] = result["chips"]
        (out / f"{name}_metrics.json").write_text(json.dumps(result, indent=2))
    report = {
        "folds": fold_names,
        "epochs_per_fold": epochs,
        "train_overrides": dict(extra or {}),
        "model": model,
        "conf": conf,
        "cv": count_metrics(np.array(truth), np.array(predicted)),
        "baseline_training_mean": count_metrics(np.array(truth), np.array(baseline)),
        "chips_map50": chips,
        "mean_chip_map50": float(np.mean([c["map50"] for c in chips.values()])),
        "per_photo": rows,
        "fold_seconds": timings,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "cv_metrics.json").write_text(json.dumps(report, indent=2))
    return report


def format_table(model: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> str:
    """A plain-text table: per-class MAE/RMSE of the model (and the baseline), competition metric, totals."""
    head = f"{'class':<16}{'MAE':>8}{'RMSE':>8}{'bias':>8}"
    if baseline:
        head += f"{'base MAE':>10}{'base RMSE':>11}"
    lines = [head]
    for name in SEA_LION_CLASSES:
        m = model["per_class"][name]
        line = f"{name:<16}{m['mae']:>8.2f}{m['rmse']:>8.2f}{m['bias']:>8.2f}"
        if baseline:
            b = baseline["per_class"][name]
            line += f"{b['mae']:>10.2f}{b['rmse']:>11.2f}"
        lines.append(line)
    line = f"{'mean RMSE (competition)':<32}{model['competition_rmse']:>8.2f}"
    if baseline:
        line += f"{'':>10}{baseline['competition_rmse']:>11.2f}"
    lines.append(line)
    line = f"{'total count MAE':<32}{model['total_mae']:>8.2f}"
    if baseline:
        line += f"{'':>10}{baseline['total_mae']:>11.2f}"
    lines.append(line)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="folder written by python -m training.dataset")
    parser.add_argument("--weights", type=Path, help="model to evaluate (without --cv)")
    parser.add_argument("--photos", default="", help="comma-separated photo ids (default: all in the dataset)")
    parser.add_argument("--split", default="", help="evaluate on this split's val photos (e.g. fold0), with mAP")
    parser.add_argument("--cv", action="store_true", help="k-fold cross-validation: train and count per fold")
    parser.add_argument("--folds", default="", help="with --cv: only these folds (e.g. fold0,fold1)")
    parser.add_argument("--epochs", type=int, default=30, help="with --cv: epochs per fold")
    parser.add_argument("--model", default="yolov5n.yaml", help="with --cv: model config")
    parser.add_argument("--conf", type=float, default=0.25, help="detection confidence (the product default)")
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
        report = cross_validate(args.dataset, out, args.epochs, args.model, args.conf, args.device, folds, extra)
        print(f"cross-validation, {len(report['folds'])} folds x {args.epochs} epochs, {report['cv']['photos']} photos")
        print(format_table(report["cv"], report["baseline_training_mean"]))
        print(f"mAP@0.5 on validation chips, mean over folds: {report['mean_chip_map50']:.3f}")
        print(f"wrote {out / 'cv_metrics.json'} in {time.perf_counter() - started:.0f}s")
        return 0
    if args.weights is None:
        parser.error("--weights is required without --cv")
    summary = load_summary(args.dataset)
    data_yaml, train_ids = None, []
    if args.split:
        import yaml

        data_yaml = Path(summary["splits"][args.split])
        split = yaml.safe_load(data_yaml.read_text())
        photo_ids, train_ids = split["val_photos"], split["train_photos"]
    else:
        photo_ids = [p for p in args.photos.split(",") if p] or [r["photo_id"] for r in summary["photos"]]
    result = evaluate_model(args.weights, args.dataset, photo_ids, train_ids, args.conf, data_yaml, args.device)
    print(f"{'photo':>6}  truth -> predicted  ({', '.join(SEA_LION_CLASSES)})")
    for row in result["per_photo"]:
        print(f"{row['photo_id']:>6}  {row['truth']} -> {row['predicted']}  ({row['tiles']} tiles, {row['seconds']}s)")
    print(format_table(result["model"], result.get("baseline_training_mean")))
    if "chips" in result:
        print(f"mAP@0.5 on validation chips: {result['chips']['map50']:.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
