"""The tile gate's recall: per-class counts with the gate against counts without it, on every full-resolution photo.

    python -m benchmarks.gate_recall [PHOTO ...] [--version NAME | --weights PT --ground-scale S --conf C]
                                     [--runtime NAME] [--out JSON] [--docs]

Each photo (default: every full-resolution photo of ``../shared``, fullres-raw and fullres-dotted) is decoded once
at the model's scale and counted twice with the product's defaults, the gate on and off (``CountOptions.gate``).
Per photo: the tiles, how many the full pass ran and skipped, the coarse pass's tiles, per-class counts gated vs
ungated, whether they agree within 1 % or one animal per class (``detector.versions.runtimes.counts_agree``, the bar for
turning the gate on by default), the tiles in which the full pass finds anything (what a perfect gate would run: running
only those keeps the counts exactly), and, where ``dot-coordinates.csv`` has the photo, the biologists' dots that
fall in no tile the full pass ran (``SlicedCount.gated_tiles``: the coarse pass, then growing), and, where
``counts.csv`` has the photo's id, how far each count is from the official one (the sum over classes of
|count - official|): does a difference the gate makes count worse against the truth, or better? Writes
``benchmarks/results/gate_recall.json`` and a Markdown table beside it.

The default model trained on these photos, so its errors here are in-sample. ``--weights`` counts with another
model instead, e.g. a cross-validation fold's (``training.evaluate --cv``) on the photos it never saw, for the same
question out of sample.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    SHARED_DATA,
    Environment,
    describe_load,
    finish,
    format_table,
    log,
    official_counts,
    timed,
    write_markdown,
)
from benchmarks.runtimes import default_photos, label
from detector.versions.runtimes import COUNT_TOLERANCE, counts_agree

NAME = "gate_recall"
DOTS_CSV = SHARED_DATA / "dot-coordinates.csv"


def read_dots(path: Path = DOTS_CSV) -> dict[str, np.ndarray]:
    """The biologists' dots by photo id, (N, 2) x, y in full-resolution pixels; empty without the file."""
    from training.io import read_dots_table

    return {key: dots.xy for key, dots in read_dots_table(path).items()} if path.is_file() else {}


def dots_outside(tiles: np.ndarray, dots: np.ndarray) -> int:
    """How many ``dots`` (N, 2) lie in none of ``tiles`` (K, 4)."""
    if not len(dots):
        return 0
    x, y = dots[:, 0:1], dots[:, 1:2]
    inside = (tiles[None, :, 0] <= x) & (x < tiles[None, :, 2]) & (tiles[None, :, 1] <= y) & (y < tiles[None, :, 3])
    return int((~inside.any(axis=1)).sum())


def error_against(counts: dict[str, int], official: dict[str, int]) -> int:
    """Sum over classes of |count - official|."""
    return int(sum(abs(counts.get(name, 0) - value) for name, value in official.items()))


def measure(
    detector: Any, photo: Path, dots: np.ndarray | None, official: dict[str, int] | None = None,
    conf: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Count one photo with the gate on and off (one decode); what the gate ran, skipped and changed."""
    from detector.settings import CountOptions

    on, off = CountOptions(gate=True, conf=conf), CountOptions(gate=False, conf=conf)
    prepared = detector.prepare(photo, on)
    seconds_off, (ungated,) = timed(lambda: detector.count_many([prepared], off))
    seconds_on, (gated,) = timed(lambda: detector.count_many([prepared], on))
    pipeline = detector.pipeline
    grid, ran = pipeline.gated_tiles(prepared, on)
    # the ungated pass's tile detections, seams not yet merged
    found = pipeline.detect(prepared.work, grid, pipeline.thresholds(off).count, off)
    entry: dict[str, Any] = {
        "photo": label(photo),
        "tiles": gated.tiles,
        "tiles_run": gated.tiles_run,
        "tiles_skipped": gated.tiles_skipped,
        "gate_tiles": gated.gate_tiles,
        "tiles_with_detections": int(len(np.unique(found.tile_id))),
        "network_tiles_share": round((gated.tiles_run + gated.gate_tiles) / max(1, ungated.tiles_run), 3),
        "counts_gated": gated.counts,
        "counts_ungated": ungated.counts,
        "within_tolerance": counts_agree(ungated.counts, gated.counts),
        "seconds": {"gated": round(seconds_on, 4), "ungated": round(seconds_off, 4)},
    }
    if dots is not None and gated.tiles > 1:
        run = grid[ran]
        in_work = dots * (prepared.factor * prepared.scale.value)  # dots: survey-original pixels
        entry["dots"] = len(dots)
        entry["dots_in_skipped_tiles"] = dots_outside(run, in_work)
    if official is not None:
        entry["official"] = dict(official)
        entry["error_vs_official"] = {
            "gated": error_against(gated.counts, official), "ungated": error_against(ungated.counts, official)
        }  # fmt: skip
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", type=Path, help="default: every full-resolution photo under ../shared")
    parser.add_argument("--version", help="model version from weights/manifest.yaml (default: its default)")
    parser.add_argument("--weights", type=Path, help="count with this weights file instead (e.g. a CV fold's)")
    parser.add_argument("--ground-scale", type=float, help="with --weights: the scale it was trained at")
    parser.add_argument("--conf", type=float, help="one threshold for every class (default: the version's own)")
    parser.add_argument("--runtime", default="auto", help="what runs the network (default: auto, as users get it)")
    parser.add_argument("--out", help=f"JSON results file (default: benchmarks/results/{NAME}.json)")
    parser.add_argument("--docs", action="store_true", help="also put the table into docs/benchmarks.md")
    args = parser.parse_args(argv)
    from detector import Detector
    from detector.counting.gate import DEFAULT_GATE_SETTINGS
    from detector.settings import DEFAULT_GATE, ModelSettings

    photos = args.photos or default_photos()
    if not photos:
        parser.error(f"no photos given and none under {SHARED_DATA}")
    environment = Environment()
    if args.weights and args.ground_scale is None:
        parser.error("--weights needs --ground-scale (the scale the weights were trained at)")
    model = ModelSettings(
        version=args.version, weights=args.weights, ground_scale=args.ground_scale, device="cpu", runtime=args.runtime
    )
    detector = Detector.load(model)
    all_dots, official = read_dots(), official_counts()
    per_photo = []
    for photo in photos:
        entry = measure(detector, photo, all_dots.get(photo.stem), official.get(photo.stem), args.conf)
        per_photo.append(entry)
        log(
            f"{entry['photo']}: {entry['tiles_run']}/{entry['tiles']} tiles run (+{entry['gate_tiles']} coarse), "
            f"{'same' if entry['counts_gated'] == entry['counts_ungated'] else 'differs'}"
        )
    tiles = sum(p["tiles"] for p in per_photo)
    differences = [abs(p["counts_gated"][c] - p["counts_ungated"][c]) for p in per_photo for c in p["counts_ungated"]]
    held = all(p["within_tolerance"] for p in per_photo)
    summary = {
        "photos": len(per_photo),
        "photos_within_tolerance": sum(p["within_tolerance"] for p in per_photo),
        "keeps_counts": held,
        "max_count_difference": int(max(differences, default=0)),
        "tiles": tiles,
        "tiles_run": sum(p["tiles_run"] for p in per_photo),
        "tiles_skipped": sum(p["tiles_skipped"] for p in per_photo),
        "gate_tiles": sum(p["gate_tiles"] for p in per_photo),
        "network_tiles_share": round(sum(p["tiles_run"] + p["gate_tiles"] for p in per_photo) / max(1, tiles), 3),
        "tiles_with_detections": sum(p["tiles_with_detections"] for p in per_photo),
        "perfect_gate_share": round(sum(p["tiles_with_detections"] for p in per_photo) / max(1, tiles), 3),
        "dots_in_skipped_tiles": sum(p.get("dots_in_skipped_tiles", 0) for p in per_photo),
        "dots": sum(p.get("dots", 0) for p in per_photo),
        **error_summary(per_photo),
        "default_gate": DEFAULT_GATE,
        "verdict": "the gate may be on by default" if held else "the gate must stay off by default",
    }
    version = detector.weights.version
    result = {
        "model": {
            "version": version.name,
            "sha256": detector.weights.sha256,
            "runtime": detector.runtime,
            **({"weights": str(args.weights)} if args.weights else {}),
        },  # fmt: skip
        "gate_settings": gate_settings(DEFAULT_GATE_SETTINGS, detector.info.scale_reference),
        "settings": {
            "count_options": (
                f"conf {args.conf:g} for every class" if args.conf is not None else "calibrated per-class thresholds"
            )
            + ", photo scale auto; gate on vs off",
            "tolerance": f"{COUNT_TOLERANCE:.0%} or 1 animal per class and photo",
        },
        "summary": summary,
        "photos": per_photo,
    }
    finish(NAME, result, args.out, environment, report)
    write_markdown(NAME, markdown_table(result), args.out, args.docs)
    return 0


def gate_settings(settings: Any, reference: Any) -> dict[str, Any]:
    """The gate settings a run used, as its result records them: ``margin_px`` is the margin the model version got
    (:meth:`~detector.counting.gate.GateSettings.margin_for`: 120 for the sea lions' 80 px adult female; "per box"
    where the version names no reference length)."""
    margin = settings.margin_for(reference)
    return {
        "coarse": settings.coarse,
        "conf": settings.conf,
        "margin_px": "per box" if margin is None else margin,
        "overlap": settings.overlap,
        "max_enlargement": settings.max_enlargement,
    }


def error_summary(per_photo: list[dict[str, Any]]) -> dict[str, Any]:
    """Errors against the official counts, summed over the photos that have them: the gate's and no gate's, and
    on how many photos the gate counts closer to the truth and on how many farther."""
    rated = [p["error_vs_official"] for p in per_photo if "error_vs_official" in p]
    return {
        "photos_with_official_counts": len(rated),
        "error_vs_official_gated": sum(e["gated"] for e in rated),
        "error_vs_official_ungated": sum(e["ungated"] for e in rated),
        "photos_gate_closer": sum(e["gated"] < e["ungated"] for e in rated),
        "photos_gate_farther": sum(e["gated"] > e["ungated"] for e in rated),
    }


def markdown_table(result: dict[str, Any]) -> str:
    """The recall table for docs/benchmarks.md: tiles and per-class counts gated vs ungated, per photo."""
    names = list(result["photos"][0]["counts_ungated"]) if result["photos"] else []
    short = {"adult_males": "AM", "subadult_males": "SM", "adult_females": "AF", "juveniles": "J", "pups": "P"}
    headers = ["photo", "tiles run / all", "skipped", "coarse tiles", "network tiles vs ungated"]
    headers += ["tiles with a detection"]
    headers += [f"{short.get(n, n)} gated / ungated" for n in names] + ["dots in skipped tiles"]
    headers += ["error vs official gated / ungated", "within 1 % / ±1"]
    rows = []
    for p in result["photos"]:
        rows.append([
            p["photo"], f"{p['tiles_run']} / {p['tiles']}", p["tiles_skipped"], p["gate_tiles"],
            f"{p['network_tiles_share']:.0%}", p["tiles_with_detections"],
            *[f"{p['counts_gated'][n]} / {p['counts_ungated'][n]}" for n in names],
            f"{p['dots_in_skipped_tiles']} of {p['dots']}" if "dots" in p else "—",
            "{gated} / {ungated}".format(**p["error_vs_official"]) if "error_vs_official" in p else "—",
            "yes" if p["within_tolerance"] else "**no**",
        ])  # fmt: skip
    s = result["summary"]
    model = result["model"]
    lines = [
        f"Model {model['version']} (sha256 `{model['sha256'][:12]}…`, {model['runtime']}), gate settings "
        + ", ".join(
            f"{k} {v:g}" if isinstance(v, float | int) else f"{k} {v}" for k, v in result["gate_settings"].items()
        )
        + ":",
        "",
        format_table(headers, rows),
        "",
        f"{s['photos_within_tolerance']} of {s['photos']} photos within {result['settings']['tolerance']} "
        f"(largest difference {s['max_count_difference']}); the full pass ran {s['tiles_run']} of {s['tiles']} tiles "
        f"and the coarse pass {s['gate_tiles']}: {s['network_tiles_share']:.0%} of the ungated network tiles; "
        f"{s['dots_in_skipped_tiles']} of {s['dots']} dots in skipped tiles. Verdict: {s['verdict']}.",
        "",
        f"The full pass finds anything in {s['tiles_with_detections']} of the {s['tiles']} tiles "
        f"({s['perfect_gate_share']:.0%}): a perfect gate, one that ran only those tiles and cost nothing, would keep "
        f"every count exactly with that share of the network's work (a gate that keeps the counts can skip a tile "
        f"with a detection only where a neighbouring tile finds the same animal on their seam).",
    ]
    if s.get("photos_with_official_counts"):
        lines += [
            "",
            f"Against the official counts (sum over classes of |count - official|, {s['photos_with_official_counts']} "
            f"photos): {s['error_vs_official_gated']} with the gate, {s['error_vs_official_ungated']} without; the "
            f"gate counts closer to the truth on {s['photos_gate_closer']} photos and farther on "
            f"{s['photos_gate_farther']}.",
        ]
    return "\n".join(lines)


def report(result: dict[str, Any]) -> None:
    print(markdown_table(result))
    print(describe_load(result["environment"]))


if __name__ == "__main__":
    raise SystemExit(main())
