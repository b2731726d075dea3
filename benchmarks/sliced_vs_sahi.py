"""Our sliced inference (``Detector.count``) vs SAHI's ``get_sliced_prediction`` on the same photos and weights.

    python -m benchmarks.sliced_vs_sahi [PHOTO ...] [--photo-scale S] [--repeats 5] [--profile]

Both sides get the same weights file, the same photo already resized to the model's ground scale (our detector
resizes by ground_scale/photo_scale before tiling; we do that resize once, outside the timings, and hand the
same array to both), the same tile size, overlap, confidence, per-tile NMS IoU, input size and torch thread count.
SAHI runs twice: "matched" (NMS with intersection-over-smaller 0.5, class-aware, no extra full-image pass, same
batch size as ours: the postprocess closest to our seam merge) and "defaults" (SAHI's own defaults: GREEDYNMM/IOS
0.5, an extra full-image prediction, batch size 1, ultralytics' default NMS IoU 0.7). Runs are interleaved round
by round, so the SAHI/ours ratio of a photo comes from the same stretch of machine load.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    Environment,
    add_model_args,
    default_photos,
    describe_load,
    finish,
    format_table,
    load_detector,
    log,
    official_counts,
    set_threads,
    summarize,
    timed,
)
from detector.errors import DetectorError
from detector.settings import DEFAULT_BATCH, DEFAULT_CONF, DEFAULT_GATE, DEFAULT_IOU, DEFAULT_OVERLAP, CountOptions

NAME = "sliced_vs_sahi"
SPEED_GOAL = 3.0  # SAHI time / our time
COUNT_TOLERANCE = 0.02  # per-class counts within 2% of SAHI's

# (label, how to find it in a cProfile table): where the time of one run goes.
PROFILE_BUCKETS = {
    "model forward (torch)": ("ultralytics/nn/autobackend.py", "forward"),
    "ultralytics preprocess": ("ultralytics/engine/predictor.py", "preprocess"),
    "ultralytics postprocess (NMS, Results)": ("ultralytics/models/yolo/detect/predict.py", "postprocess"),
    "ours: seam merge": ("detector/counting/slicing.py", "merge_tile_detections"),
    "sahi: to ObjectPrediction": ("sahi/models/base.py", "convert_original_predictions"),
    "sahi: postprocess (merge)": ("sahi/postprocess/combine.py", "__call__"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", type=Path, help="extra photos (besides the shared full-res ones)")
    parser.add_argument("--photo-scale", type=float, default=1.0, help="scale of the extra photos (native = 1)")
    parser.add_argument("--no-shared", action="store_true", help="skip the shared full-resolution photos")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method and photo (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per method and photo first")
    parser.add_argument("--conf", type=float, default=DEFAULT_CONF)
    parser.add_argument("--iou", type=float, default=DEFAULT_IOU, help="per-tile NMS IoU (ours and SAHI matched)")
    parser.add_argument("--tile-size", type=int, default=None, help="default: the model's input size")
    parser.add_argument("--overlap", type=float, default=DEFAULT_OVERLAP)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="tiles per pass (ours, SAHI matched)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both (default: all cores)")
    parser.add_argument("--profile", action="store_true", help="cProfile one run of each on the first photo")
    parser.add_argument(
        "--runtime", default=None,
        help="ours: auto (default: the version's CPU runtime), torch, openvino, openvino-f32, ...; ours with torch "
        "is measured too when this is not torch",
    )  # fmt: skip
    parser.add_argument(
        "--also-runtime", action="append", default=None, metavar="NAME",
        help="also measure ours with this runtime (gate as the default and flipped; repeat; default: openvino-f32 "
        "unless ours runs it)",
    )  # fmt: skip
    add_model_args(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    return args


def sahi_model(weights: str, conf: float, imgsz: int, iou: float | None):
    """A SAHI ``ultralytics`` detection model on the CPU; ``iou`` None keeps ultralytics' default (0.7)."""
    from sahi import AutoDetectionModel

    model = AutoDetectionModel.from_pretrained(
        model_type="ultralytics", model_path=weights, confidence_threshold=conf, device="cpu", image_size=imgsz
    )
    if iou is not None:
        model.model.overrides["iou"] = iou  # SAHI passes no IoU; ultralytics reads it from the model's overrides
    return model


def detection_counts(found: Any, class_names: tuple[str, ...]) -> dict[str, int]:
    """Per-class counts of a CountResult or of Detections."""
    if hasattr(found, "counts"):
        return dict(found.counts)
    per_class = np.bincount(found.class_id, minlength=len(class_names))
    return {name: int(per_class[i]) for i, name in enumerate(class_names)}


def sahi_counts(prediction, class_names: tuple[str, ...]) -> dict[str, int]:
    found = Counter(p.category.id for p in prediction.object_prediction_list)
    return {name: int(found.get(i, 0)) for i, name in enumerate(class_names)}


def count_agreement(ours: dict[str, int], theirs: dict[str, int]) -> dict[str, Any]:
    """Per-class difference ours - SAHI, relative to SAHI, and whether every class is within the tolerance."""
    per_class = {}
    for name, reference in {**theirs, "total": sum(theirs.values())}.items():
        mine = ours[name] if name in ours else sum(ours.values())
        diff = mine - reference
        relative = 0.0 if diff == 0 else (diff / reference if reference else None)
        per_class[name] = {"ours": mine, "sahi": reference, "diff": diff, "relative": relative}
    within = all(abs(v["diff"]) <= COUNT_TOLERANCE * v["sahi"] for k, v in per_class.items() if k != "total")
    return {"per_class": per_class, "within_2pct": within}


def profile_breakdown(function) -> dict[str, Any]:
    """Run ``function`` under cProfile; seconds per bucket of :data:`PROFILE_BUCKETS` and the top functions."""
    profiler = cProfile.Profile()
    profiler.enable()
    function()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # {(file, line, func): (cc, nc, tottime, cumtime, callers)}
    total = max(v[3] for v in stats.values())
    buckets = {}
    for label, (file_end, func) in PROFILE_BUCKETS.items():
        seconds = sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(file_end) and fn == func)
        if seconds:
            buckets[label] = round(seconds, 3)
    top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:12]
    return {
        "total_s": round(total, 3),
        "buckets_s": buckets,
        "top_self_time": [
            {"function": f"{Path(f).name}:{line}({fn})", "self_s": round(v[2], 3), "calls": v[1]}
            for (f, line, fn), v in top
        ],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from sahi.predict import get_sliced_prediction
    from sahi.slicing import get_slice_bboxes

    from detector.counting.images import load_image, rescale
    from detector.counting.slicing import tile_grid

    environment = Environment()
    threads = set_threads(args.threads)
    det = load_detector(args, threads=threads)  # Detector re-pins torch to this after every batch
    tile = args.tile_size or det.imgsz
    photos = [(p, 1.0) for p in ([] if args.no_shared else default_photos())]
    photos += [(p, args.photo_scale) for p in args.photos]
    if not photos:
        raise SystemExit("No photos: the shared full-resolution photos are missing and none were given.")
    official = official_counts()
    torch_det = load_detector(args, threads=threads, runtime="torch") if det.runtime != "torch" else det
    matched = sahi_model(det.info.path, args.conf, det.imgsz, args.iou)
    defaults = sahi_model(det.info.path, args.conf, det.imgsz, None)

    def ours_with(other, gate: bool):
        """Ours with ``other``'s runtime and the gate on or off: each gain on its own and together."""
        return lambda work: other.count(
            work, conf=args.conf, iou=args.iou, tile_size=tile, overlap=args.overlap,
            photo_scale=other.ground_scale, batch_size=args.batch_size, gate=gate,
        )  # fmt: skip

    run_ours = ours_with(det, DEFAULT_GATE)  # the product's defaults: its CPU runtime and its gate setting
    flipped_gate = f"gate_{'off' if DEFAULT_GATE else 'on'}"  # the suffix of the rows with the gate flipped
    flipped = f"ours_{flipped_gate}"  # the gate's effect on its own

    def run_sahi_matched(work: np.ndarray):
        return get_sliced_prediction(
            work,
            matched,
            slice_height=tile,
            slice_width=tile,
            overlap_height_ratio=args.overlap,
            overlap_width_ratio=args.overlap,
            perform_standard_pred=False,
            postprocess_type="NMS",
            postprocess_match_metric="IOS",
            postprocess_match_threshold=0.5,
            postprocess_class_agnostic=False,
            batch_size=args.batch_size,
            verbose=0,
        )

    def run_sahi_defaults(work: np.ndarray):
        return get_sliced_prediction(
            work,
            defaults,
            slice_height=tile,
            slice_width=tile,
            overlap_height_ratio=args.overlap,
            overlap_width_ratio=args.overlap,
            verbose=0,
        )

    def run_ours_sahi_grid(work: np.ndarray):
        """Our network calls and seam merge on SAHI's tile positions: what still differs from SAHI is the merge."""
        height, width = work.shape[:2]
        grid = np.array(get_slice_bboxes(height, width, tile, tile, False, args.overlap, args.overlap)).reshape(-1, 4)
        options = CountOptions(conf=args.conf, iou=args.iou, batch_size=args.batch_size)
        return det.pipeline.detect(work, grid, det.pipeline.thresholds(options).count, options).merge_tiles()

    also = args.also_runtime if args.also_runtime is not None else ["openvino-f32"]
    others = {}
    for name in also:
        if name == det.runtime or name == "torch":
            continue  # measured as "ours" or "ours_torch" already
        try:
            other = load_detector(args, threads=threads, runtime=name)
        except DetectorError as exc:
            log(f"not measuring ours with {name}: {exc}")
            continue
        others[f"ours_{name}"] = ours_with(other, DEFAULT_GATE)
        others[f"ours_{name}_{flipped_gate}"] = ours_with(other, not DEFAULT_GATE)
    methods = {
        "ours": run_ours,
        flipped: ours_with(det, not DEFAULT_GATE),
        **others,
        **({"ours_torch": ours_with(torch_det, DEFAULT_GATE)} if det.runtime != "torch" else {}),
        "sahi_matched": run_sahi_matched,
        "sahi_defaults": run_sahi_defaults,
        "ours_sahi_grid": run_ours_sahi_grid,
    }
    records = []
    for photo, photo_scale in photos:
        rgb = load_image(photo)
        factor = det.ground_scale / photo_scale
        work = rescale(rgb, factor)
        height, width = work.shape[:2]
        our_tiles = tile_grid(width, height, tile, args.overlap)
        sahi_tiles = get_slice_bboxes(height, width, tile, tile, False, args.overlap, args.overlap)
        same_grid = sorted(map(tuple, our_tiles.tolist())) == sorted(map(tuple, sahi_tiles))
        log(f"{photo.name}: {rgb.shape[1]}x{rgb.shape[0]} -> {width}x{height}, {len(our_tiles)} tiles")
        times: dict[str, list[float]] = {name: [] for name in methods}
        last: dict[str, Any] = {}
        order = list(methods)
        for round_index in range(args.warmup + args.repeats):
            for name in order:
                set_threads(threads)
                seconds, last[name] = timed(lambda run=methods[name], work=work: run(work))
                if round_index >= args.warmup:
                    times[name].append(seconds)
            order = order[1:] + order[:1]  # rotate so no method always runs first
            log(f"  round {round_index + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in times if times[n]))
        counts = {
            name: detection_counts(last[name], det.class_names)
            if name.startswith("ours")
            else sahi_counts(last[name], det.class_names)
            for name in methods
        }
        stats = {name: summarize(values) for name, values in times.items()}
        gated = last["ours" if DEFAULT_GATE else flipped]
        passes = {
            **{
                name: last[name].tiles_run + last[name].gate_tiles
                for name in methods
                if name.startswith("ours") and hasattr(last[name], "tiles_run")
            },
            "sahi_matched": len(sahi_tiles),
            "sahi_defaults": len(sahi_tiles) + 1,
            "ours_sahi_grid": len(sahi_tiles),
        }
        record: dict[str, Any] = {
            "photo": str(photo),
            "photo_scale": photo_scale,
            "size": [rgb.shape[1], rgb.shape[0]],
            "resize_factor": factor,
            "work_size": [width, height],
            "tiles": len(our_tiles),
            "sahi_tiles": len(sahi_tiles),
            "same_tile_grid": same_grid,
            "seconds": stats,
            "forward_passes": passes,
            "runtime": det.runtime,
            "tiles_per_s": {name: round(passes[name] / stats[name]["median"], 2) for name in methods},
            "ratio_sahi_over_ours": {
                name: {
                    "of_medians": round(stats[name]["median"] / stats["ours"]["median"], 3),
                    "median_per_round": round(float(np.median(np.array(times[name]) / np.array(times["ours"]))), 3),
                }
                for name in methods
                if name != "ours" and name != "ours_sahi_grid"
            },
            "gate": {  # of whichever of ours and its flipped twin ran with the gate on
                "on_by_default": DEFAULT_GATE,
                "tiles_run": gated.tiles_run,
                "tiles_skipped": gated.tiles_skipped,
                "gate_tiles": gated.gate_tiles,
            },
            "counts": counts,
            "agreement": {
                **{name: count_agreement(counts["ours"], counts[name]) for name in ("sahi_matched", "sahi_defaults")},
                "ours_sahi_grid_vs_sahi_matched": count_agreement(counts["ours_sahi_grid"], counts["sahi_matched"]),
            },
            "official": official.get(photo.stem),
        }
        if record["official"]:
            record["abs_error_vs_official"] = {
                name: {k: abs(counts[name][k] - v) for k, v in record["official"].items()} for name in counts
            }
            record["total_abs_error_vs_official"] = {
                name: sum(errors.values()) for name, errors in record["abs_error_vs_official"].items()
            }
        records.append(record)

    profile = None
    if args.profile:
        photo, photo_scale = photos[0]
        work = rescale(load_image(photo), det.ground_scale / photo_scale)
        profile = {"photo": str(photo)}
        for name, run in methods.items():
            set_threads(threads)
            log(f"profiling {name} on {photo.name}")
            profile[name] = profile_breakdown(lambda run=run: run(work))

    ratios = [r["ratio_sahi_over_ours"]["sahi_matched"]["of_medians"] for r in records]
    summary = {
        "speed_goal": f"SAHI matched / ours >= {SPEED_GOAL}",
        "speed_goal_met": all(r >= SPEED_GOAL for r in ratios),
        "min_ratio_matched": min(ratios),
        "min_ratio_defaults": min(r["ratio_sahi_over_ours"]["sahi_defaults"]["of_medians"] for r in records),
        "count_goal": "every per-class count within 2% of SAHI matched",
        "count_goal_met": all(r["agreement"]["sahi_matched"]["within_2pct"] for r in records),
        "count_goal_met_on_sahi_tile_positions": all(
            r["agreement"]["ours_sahi_grid_vs_sahi_matched"]["within_2pct"] for r in records
        ),
        "official_goal": "ours at least as close to the official counts as SAHI matched (sum over classes of "
        "|count - official|), on every photo that has official counts",
        "official_goal_met": all(
            e["ours"] <= e["sahi_matched"] for e in (r.get("total_abs_error_vs_official") for r in records) if e
        )
        if any(r["official"] for r in records)
        else None,
    }
    result = {
        "model": det.info.to_dict(),
        "settings": {
            "gate_on_by_default": DEFAULT_GATE,
            "tile_size": tile,
            "overlap": args.overlap,
            "conf": args.conf,
            "iou_ours_and_sahi_matched": args.iou,
            "iou_sahi_defaults": "ultralytics default (0.7)",
            "imgsz": det.imgsz,
            "batch_size_ours_and_sahi_matched": args.batch_size,
            "batch_size_sahi_defaults": 1,
            "torch_threads_both": threads,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "input": "photo decoded and resized by ground_scale/photo_scale once, outside the timings; "
            "the same RGB array goes to both",
            "sahi_matched": "get_sliced_prediction(postprocess_type='NMS', postprocess_match_metric='IOS', "
            "postprocess_match_threshold=0.5, postprocess_class_agnostic=False, perform_standard_pred=False)",
            "sahi_defaults": "get_sliced_prediction with its defaults: GREEDYNMM, IOS, 0.5, class-aware, "
            "perform_standard_pred=True, batch_size=1",
            "ours_sahi_grid": "diagnostic: Detector.count cutting SAHI's tile positions (same count and size as "
            "ours), to separate count differences due to tile positions from those due to merging",
        },
        "photos": records,
        "summary": summary,
        "profile": profile,
    }
    return finish(NAME, result, args.out, environment, print_report)


def print_report(result: dict[str, Any]) -> None:
    rows = []
    for r in result["photos"]:
        s, ratio = r["seconds"], r["ratio_sahi_over_ours"]
        rows.append(
            [
                Path(r["photo"]).name,
                r["tiles"],
                s["ours"]["median"],
                s["sahi_matched"]["median"],
                ratio["sahi_matched"]["of_medians"],
                s["sahi_defaults"]["median"],
                ratio["sahi_defaults"]["of_medians"],
                r["tiles_per_s"]["ours"],
                r["tiles_per_s"]["sahi_matched"],
            ]
        )
    headers = [
        "photo",
        "tiles",
        "ours s",
        "SAHI matched s",
        "ratio",
        "SAHI defaults s",
        "ratio",
        "ours t/s",
        "SAHI t/s",
    ]
    print(f"\nWall time, median of {result['settings']['repeats']} (seconds); ratio = SAHI / ours")
    print(format_table(headers, rows))
    variants = [m for m in result["photos"][0]["seconds"] if m.startswith("ours") and m != "ours_sahi_grid"]
    rows = [
        [Path(r["photo"]).name, variant, r["forward_passes"][variant], r["seconds"][variant]["median"],
         round(r["seconds"]["sahi_matched"]["median"] / r["seconds"][variant]["median"], 2)]
        for r in result["photos"]
        for variant in variants
    ]  # fmt: skip
    print(
        "\nEach gain on its own: ours (the product's defaults: its CPU runtime, tile gate "
        f"{'on' if result['settings']['gate_on_by_default'] else 'off'}), the gate flipped, other runtimes"
    )
    print(format_table(["photo", "method", "network tiles", "s", "SAHI matched / it"], rows))
    names = result["model"]["class_names"]
    rows = []
    for r in result["photos"]:
        entries = list(r["counts"].items()) + ([("official", r["official"])] if r["official"] else [])
        for method, counts in entries:
            rows.append([Path(r["photo"]).name, method, *(counts[n] for n in names), sum(counts.values())])
    print("\nCounts per class")
    print(format_table(["photo", "method", *names, "total"], rows))
    summary = result["summary"]
    print(
        f"\nspeed goal ({summary['speed_goal']}): {'met' if summary['speed_goal_met'] else 'NOT met'} "
        f"(min ratio {summary['min_ratio_matched']}); counts within 2%: "
        f"{'yes' if summary['count_goal_met'] else 'NO'} (on SAHI's tile positions: "
        f"{'yes' if summary['count_goal_met_on_sahi_tile_positions'] else 'NO'}); "
        "ours at least as close to the official counts: "
        f"{ {True: 'yes', False: 'NO', None: 'no official counts'}[summary['official_goal_met']] }"
    )
    if result["profile"]:
        print("\nWhere the time goes (cProfile, one run, seconds):")
        for method in ("ours", "sahi_matched", "sahi_defaults"):
            p = result["profile"][method]
            parts = ", ".join(f"{k} {v}" for k, v in p["buckets_s"].items())
            print(f"  {method}: total {p['total_s']}: {parts}")
    print("machine:", describe_load(result["environment"]))


if __name__ == "__main__":
    main()
