"""GPU throughput: our batched sliced inference at fp16, batch sizes 1-64, vs a plain per-tile ``YOLO.predict`` loop.

    python -m benchmarks.gpu [PHOTO] [--batch-sizes 1,2,4,8,16,32,64] [--repeats 3]

Skips cleanly (prints why, exit status 0) when CUDA is not available. ``--device cpu`` runs the same
measurement on the CPU at fp32 (to check the script itself on a machine without a GPU; not a GPU result).
The photo is tiled at native resolution (photo_scale = the model's ground_scale, so no resize) to get enough
tiles for large batches: 70 tiles of 640 px for a 4992x3328 survey photo.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Environment,
    add_model_args,
    default_photos,
    describe_load,
    finish,
    format_table,
    load_detector,
    log,
    summarize,
    timed,
)

NAME = "gpu"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("photo", nargs="?", type=Path, default=None, help="default: the first shared full-res photo")
    parser.add_argument("--batch-sizes", default="1,2,4,8,16,32,64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda:0", help="cuda:N (default cuda:0); cpu only to test the script")
    add_model_args(parser)
    args = parser.parse_args(argv)
    try:
        args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        parser.error("--batch-sizes must be integers separated by commas, e.g. 1,8,64")
    if args.repeats < 1 or min(args.batch_sizes) < 1:
        parser.error("--repeats and batch sizes must be >= 1")
    return args


def cuda_missing_reason(device: str) -> str | None:
    """Why the GPU benchmark cannot run here, or None when it can."""
    import torch

    if not device.startswith("cuda"):
        return None
    if not torch.cuda.is_available():
        return f"CUDA is not available (torch {torch.__version__}, cuda build {torch.version.cuda}); nothing to measure"
    return None


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = parse_args(argv)
    reason = cuda_missing_reason(args.device)
    if reason:
        print(f"skipped: {reason}")
        return None
    import numpy as np
    import torch
    from ultralytics import YOLO

    from detector.counting.images import load_image
    from detector.counting.slicing import tile_grid

    photo = args.photo or next(iter(default_photos()), None)
    if photo is None:
        raise SystemExit("No photo: the shared full-resolution photos are missing and none was given.")
    environment = Environment()
    det = load_detector(args, device=args.device)
    rgb = load_image(photo)
    tiles = tile_grid(rgb.shape[1], rgb.shape[0], det.imgsz, 0.2)
    crops = [np.ascontiguousarray(rgb[y1:y2, x1:x2, ::-1]) for x1, y1, x2, y2 in tiles]  # BGR, as ultralytics wants
    half = det.network.precision == "fp16"
    log(f"{photo.name}: {len(tiles)} tiles of {det.imgsz} px on {args.device} ({'fp16' if half else 'fp32'})")

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def ours(batch: int):
        result = det.count(rgb, photo_scale=det.ground_scale, slicing="on", batch_size=batch)
        sync()
        return result

    plain = YOLO(det.info.path, task="detect")
    options = {"half": True} if half else {}

    def per_tile_loop():
        found = [plain.predict(c, imgsz=det.imgsz, device=args.device, verbose=False, **options)[0] for c in crops]
        sync()
        return found

    per_tile_loop()  # warm-up (cuDNN autotuning, predictor setup)
    loop_times = [timed(per_tile_loop)[0] for _ in range(args.repeats)]
    rows = []
    for batch in args.batch_sizes:
        ours(batch)  # warm-up for this batch shape
        times = [timed(lambda batch=batch: ours(batch))[0] for _ in range(args.repeats)]
        stats = summarize(times)
        rows.append({"batch_size": batch, "seconds": stats, "tiles_per_s": round(len(tiles) / stats["median"], 1)})
        log(f"  batch {batch}: {rows[-1]['tiles_per_s']} tiles/s")
    loop_stats = summarize(loop_times)
    loop_tps = round(len(tiles) / loop_stats["median"], 1)
    for row in rows:
        row["speedup_vs_per_tile_loop"] = round(row["tiles_per_s"] / loop_tps, 2)
    result = {
        "model": det.info.to_dict(),
        "settings": {
            "photo": str(photo),
            "device": args.device,
            "precision": "fp16" if half else "fp32",
            "tiles": len(tiles),
            "tile_size": det.imgsz,
            "repeats": args.repeats,
            "ours": "Detector.count(photo, slicing='on', batch_size=B) at native resolution, incl. seam merge",
            "per_tile_loop": "YOLO.predict(tile) once per tile, same weights and precision",
        },
        "per_tile_loop": {"seconds": loop_stats, "tiles_per_s": loop_tps},
        "batches": rows,
        "gpu_memory_max_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None,
    }
    return finish(NAME, result, args.out, environment, print_report)


def print_report(result: dict[str, Any]) -> None:
    s = result["settings"]
    print(f"\n{Path(s['photo']).name}: {s['tiles']} tiles of {s['tile_size']} px, {s['device']} {s['precision']}")
    rows = [["per-tile YOLO.predict loop", 1, result["per_tile_loop"]["tiles_per_s"], 1.0]]
    rows += [
        ["ours (batched)", r["batch_size"], r["tiles_per_s"], r["speedup_vs_per_tile_loop"]] for r in result["batches"]
    ]
    print(format_table(["method", "batch", "tiles/s", "vs loop"], rows))
    print("machine:", describe_load(result["environment"]))


if __name__ == "__main__":
    main()
