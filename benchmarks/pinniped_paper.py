"""The product against the published pinniped model on the paper's own test split (elephant seals).

``python -m benchmarks.pinniped_paper --version VERSION`` counts the test tiles of
``../shared/data/pinnipeds/elephant-seals`` through the product's ``Detector`` at the version's defaults and
compares the per-tile count error per class (RMSE, MAE, bias, total found / true) with:

* the paper's own detections (``model-output-test-detections-no-other.json``) at its published threshold (0.5)
  and at the best threshold in hindsight (per class, chosen on the test split itself: an upper bound for it);
* guessing the training split's mean count per tile.

``--split valid`` measures on the validation split instead (for choices: thresholds, which run to publish); the
test split is only for the final measurement. ``--sweep`` adds our model's error per class over thresholds
(from one low-threshold pass: on a single-tile image NMS keeps the same boxes above any higher threshold, since a
box is only ever suppressed by a higher-scoring one).

Truth: ``annotations_final_no.csv`` (boxes without the ``other`` class); a tile listed in the split's folder but
without rows there has zero animals. The tiles are drone frames at native resolution: they are counted at photo
scale 1 (the version's ground scale is then the factor applied, exactly as at training).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import REPO_ROOT, add_model_args, format_table, load_detector, log, write_results
from detector.settings import DEFAULT_IOU

PINNIPEDS = (
    Path(os.environ.get("SEALION_PINNIPED_DATA") or REPO_ROOT.parent / "shared" / "data" / "pinnipeds")
    / "elephant-seals"
)
CLASSES = ("bull", "cow", "pup")
PAPER_THRESHOLD = 0.5
PAPER_DETECTIONS = "model-output-test-detections-no-other.json"
SWEEP = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.01))
DOCS_TABLE = REPO_ROOT / "docs" / "pinnipeds.md"


def tiles_of(split: str, root: Path = PINNIPEDS) -> list[str]:
    """The split's tile names (every .jpg in its folder, sorted)."""
    return sorted(p.name for p in (root / split).glob("*.jpg"))


def true_counts(split: str, root: Path = PINNIPEDS) -> dict[str, dict[str, int]]:
    """Per tile, per class, the boxes of ``annotations_final_no.csv`` (zero for a tile it does not list)."""
    counts = {tile: dict.fromkeys(CLASSES, 0) for tile in tiles_of(split, root)}
    with (root / split / "annotations_final_no.csv").open(newline="") as handle:
        for row in csv.reader(handle):
            if row and row[5] in CLASSES and row[0] in counts:
                counts[row[0]][row[5]] += 1
    return counts


def paper_detections(root: Path = PINNIPEDS) -> dict[str, list[tuple[str, float]]]:
    """The paper's detections per test tile as (class, score); label ids as in ``classes-no-other.csv``."""
    with (root / "classes-no-other.csv").open(newline="") as handle:
        names = {int(row[1]): row[0] for row in csv.reader(handle) if row}
    data = json.loads((root / PAPER_DETECTIONS).read_text())
    return {Path(key).name: [(names[d["label"]], float(d["score"])) for d in found] for key, found in data.items()}


def counts_at(
    found: Mapping[str, Sequence[tuple[str, float]]], tiles: Sequence[str], threshold: float | Mapping[str, float]
):
    """Per tile and class, the detections at or above the threshold (one for all classes, or per class)."""
    limit = threshold if isinstance(threshold, Mapping) else dict.fromkeys(CLASSES, threshold)
    counts = {tile: dict.fromkeys(CLASSES, 0) for tile in tiles}
    for tile in tiles:
        for name, score in found.get(tile, ()):
            if name in counts[tile] and score >= limit[name]:
                counts[tile][name] += 1
    return counts


def errors(predicted: Mapping[str, Mapping[str, float]], truth: Mapping[str, Mapping[str, int]]) -> dict[str, dict]:
    """Per class: RMSE, MAE and bias of the per-tile count, and the totals found and true."""
    tiles = sorted(truth)
    result = {}
    for name in CLASSES:
        true = np.array([truth[t][name] for t in tiles], dtype=float)
        guess = np.array([predicted[t][name] for t in tiles], dtype=float)
        diff = guess - true
        result[name] = {
            "rmse": round(float(np.sqrt(np.mean(diff**2))), 3),
            "mae": round(float(np.mean(np.abs(diff))), 3),
            "bias": round(float(np.mean(diff)), 3),
            "found": round(float(guess.sum()), 1),
            "true": int(true.sum()),
        }
    return result


def sweep(found, truth) -> dict[str, dict[str, float]]:
    """Each class's RMSE at every threshold of ``SWEEP``."""
    tiles = sorted(truth)
    return {name: {str(t): errors(counts_at(found, tiles, t), truth)[name]["rmse"] for t in SWEEP} for name in CLASSES}


def best_thresholds(rmse_by_threshold: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Per class, the threshold of least RMSE (the lowest such threshold on ties)."""
    return {name: float(min(values, key=lambda t: (values[t], float(t)))) for name, values in rmse_by_threshold.items()}


def mean_baseline(truth, train_split: str = "train", root: Path = PINNIPEDS) -> dict[str, dict]:
    """Guessing the training split's mean count per tile, for every tile."""
    train = true_counts(train_split, root)
    means = {name: float(np.mean([c[name] for c in train.values()])) for name in CLASSES}
    return errors({tile: means for tile in truth}, truth)


def count_with_product(args: argparse.Namespace, tiles: Sequence[str], split: str, low: float | None):
    """Our detections per tile as (class, score), counted by the product's Detector (photo scale 1)."""
    from detector.settings import CountOptions

    detector = load_detector(args, device=args.device)
    if tuple(detector.class_names) != CLASSES:
        raise SystemExit(f"the model's classes are {detector.class_names}, not the elephant seals' {CLASSES}")
    options = CountOptions(photo_scale=args.photo_scale, conf=low, iou=args.iou)
    found: dict[str, list[tuple[str, float]]] = {}
    thresholds = detector.thresholds()  # the version's
    for k, tile in enumerate(tiles):
        result = detector.count(PINNIPEDS / split / tile, options)
        found[tile] = [(CLASSES[c], float(s)) for c, s in zip(result.class_id, result.confidence, strict=True)]
        if k % 50 == 0:
            log(f"{k + 1}/{len(tiles)} tiles counted")
    return found, thresholds, detector.info


def measure(args: argparse.Namespace) -> dict[str, Any]:
    truth = true_counts(args.split)
    tiles = sorted(truth)
    low = 0.05 if args.sweep else args.conf
    ours_found, version_conf, info = count_with_product(args, tiles, args.split, low)
    result: dict[str, Any] = {
        "split": args.split,
        "tiles": len(tiles),
        "model": {"version": info.version, "sha256": info.sha256, "ground_scale": info.ground_scale},
        "photo_scale": args.photo_scale,
        "iou": args.iou,
        "baseline_train_mean": mean_baseline(truth),
    }
    if args.sweep:
        ours_sweep = sweep(ours_found, truth)
        result["ours_sweep"] = ours_sweep
        result["ours_best_thresholds"] = best_thresholds(ours_sweep)
    defaults = args.conf if args.conf is not None else version_conf
    result["ours_thresholds"] = defaults if isinstance(defaults, Mapping) else dict.fromkeys(CLASSES, defaults)
    result["ours"] = errors(counts_at(ours_found, tiles, result["ours_thresholds"]), truth)
    if args.split == "test":
        paper = paper_detections()
        paper_sweep = sweep(paper, truth)
        best = best_thresholds(paper_sweep)
        result["paper_at_published"] = errors(counts_at(paper, tiles, PAPER_THRESHOLD), truth)
        result["paper_best_thresholds"] = best
        result["paper_at_best"] = errors(counts_at(paper, tiles, best), truth)
    return result


def table(result: Mapping[str, Any]) -> str:
    """The comparison as Markdown: per class, RMSE / MAE / bias / found of true per tile."""
    rows = []
    columns = [
        ("ours", f"product {result['model']['version']} (thresholds {_thresholds(result['ours_thresholds'])})"),
        ("paper_at_published", f"paper's model at {PAPER_THRESHOLD}"),
        (
            "paper_at_best",
            f"paper's model at its best in hindsight ({_thresholds(result.get('paper_best_thresholds'))})",
        ),
        ("baseline_train_mean", "guessing the training mean"),
    ]
    for key, label in columns:
        if key not in result:
            continue
        cells = [f"{e['rmse']:.2f} / {e['mae']:.2f} / {e['bias']:+.2f} / {e['found']:g} of {e['true']}"
                 for e in (result[key][name] for name in CLASSES)]  # fmt: skip
        rows.append([label, *cells])
    headers = [
        "per-tile counts on the " + f"{result['tiles']} {result['split']} tiles: RMSE / MAE / bias / found",
        *CLASSES,
    ]
    return format_table(headers, rows)


def _thresholds(values: Mapping[str, float] | None) -> str:
    if not values:
        return ""
    if len(set(values.values())) == 1:
        return f"{next(iter(values.values())):g}"
    return ", ".join(f"{k} {v:g}" for k, v in values.items())


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pinniped_paper", description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--split", choices=("test", "valid"), default="test")
    parser.add_argument("--conf", type=float, help="one threshold for every class (default: the version's)")
    parser.add_argument("--sweep", action="store_true", help="also our RMSE per class over thresholds 0.05-0.95")
    parser.add_argument("--iou", type=float, default=DEFAULT_IOU, help=f"NMS IoU (default {DEFAULT_IOU})")
    parser.add_argument(
        "--photo-scale", type=float, default=1.0,
        help="scale of the tiles relative to native survey resolution (default 1: the tiles are the version's frames)",
    )  # fmt: skip
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--docs", action="store_true", help=f"write the table into {DOCS_TABLE.relative_to(REPO_ROOT)}")
    args = parser.parse_args(argv)
    if not (PINNIPEDS / args.split).is_dir():
        raise SystemExit(f"{PINNIPEDS / args.split} not found: the pinniped data lies in ../shared/data/pinnipeds "
                         "(or set SEALION_PINNIPED_DATA)")  # fmt: skip
    result = measure(args)
    name = "pinniped_paper" if args.split == "test" else "pinniped_paper_valid"
    path = write_results(name, result, args.out)
    text = table(result)
    Path(path).with_suffix(".md").write_text(text + "\n")
    if args.docs:
        from benchmarks.common import write_docs_table

        write_docs_table(name, text, DOCS_TABLE)
    print(text)
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
