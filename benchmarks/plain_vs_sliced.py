"""Plain ultralytics ``YOLO.predict`` on the whole photo vs our sliced ``Detector.count``: time and counts.

    python -m benchmarks.plain_vs_sliced [PHOTO ...] [--photo-scale S] [--repeats 3]

The plain run is what a user gets from ultralytics out of the box: the whole photo letterboxed to the model's
default input size (the ``imgsz`` stored in the checkpoint), same weights, confidence and NMS IoU. Both start from
the photo file, so decoding is timed on both sides. Counts are compared with the official counts where they exist.
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
    format_table,
    load_detector,
    log,
    official_counts,
    set_threads,
    summarize,
    timed,
    write_results,
)

NAME = "plain_vs_sliced"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", type=Path, help="extra photos (besides the shared full-res ones)")
    parser.add_argument("--photo-scale", type=float, default=1.0, help="scale of the extra photos (native = 1)")
    parser.add_argument("--no-shared", action="store_true", help="skip the shared full-resolution photos")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method and photo (default 3)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--iou", type=float, default=0.45)
    add_model_args(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from ultralytics import YOLO

    environment = Environment()
    threads = set_threads(None)
    det = load_detector(args)
    plain = YOLO(det.info.path, task="detect")
    photos = [(p, 1.0) for p in ([] if args.no_shared else default_photos())]
    photos += [(p, args.photo_scale) for p in args.photos]
    if not photos:
        raise SystemExit("No photos: the shared full-resolution photos are missing and none were given.")
    official = official_counts()
    names = det.class_names

    def run_plain(photo: Path) -> dict[str, int]:
        found = plain.predict(str(photo), conf=args.conf, iou=args.iou, device="cpu", verbose=False)[0]
        classes = found.boxes.cls.cpu().numpy().astype(int) if found.boxes is not None else []
        return {name: int((classes == i).sum()) for i, name in enumerate(names)}

    def run_sliced(photo: Path, photo_scale: float) -> dict[str, int]:
        return det.count(photo, conf=args.conf, iou=args.iou, photo_scale=photo_scale)

    records = []
    for photo, photo_scale in photos:
        times: dict[str, list[float]] = {"plain": [], "sliced": []}
        for round_index in range(args.warmup + args.repeats):
            set_threads(threads)
            plain_s, plain_counts = timed(lambda photo=photo: run_plain(photo))
            set_threads(threads)
            sliced_s, sliced = timed(lambda photo=photo, scale=photo_scale: run_sliced(photo, scale))
            if round_index >= args.warmup:
                times["plain"].append(plain_s)
                times["sliced"].append(sliced_s)
        log(f"{photo.name}: plain {times['plain'][-1]:.2f}s, sliced {times['sliced'][-1]:.2f}s ({sliced.tiles} tiles)")
        counts = {"plain": plain_counts, "sliced": sliced.counts}
        record: dict[str, Any] = {
            "photo": str(photo),
            "photo_scale": photo_scale,
            "size": list(sliced.image_size),
            "plain_imgsz": plain.predictor.args.imgsz,
            "sliced_tiles": sliced.tiles,
            "sliced_resize_factor": det.ground_scale / photo_scale,
            "seconds": {name: summarize(values) for name, values in times.items()},
            "counts": counts,
            "official": official.get(photo.stem),
        }
        record["slowdown_sliced_over_plain"] = round(
            record["seconds"]["sliced"]["median"] / record["seconds"]["plain"]["median"], 2
        )
        if record["official"]:
            record["abs_error_vs_official"] = {
                method: {k: abs(c[k] - v) for k, v in record["official"].items()} for method, c in counts.items()
            }
            record["total_abs_error"] = {m: sum(e.values()) for m, e in record["abs_error_vs_official"].items()}
        records.append(record)

    result = {
        "model": det.info.to_dict(),
        "settings": {
            "conf": args.conf,
            "iou": args.iou,
            "plain": "YOLO(weights).predict(photo_path, conf, iou, device='cpu'): whole photo, letterboxed to the "
            "checkpoint's default imgsz",
            "sliced": "Detector.count(photo_path, conf, iou, photo_scale): resize by ground_scale/photo_scale, "
            "tiles of the model's imgsz, 20% overlap, seam merge",
            "torch_threads_both": threads,
            "warmup": args.warmup,
            "repeats": args.repeats,
        },
        "photos": records,
        "environment": environment.finish(),
    }
    path = write_results(NAME, result, args.out)
    print_report(result)
    print(f"\nwrote {path}")
    return result


def print_report(result: dict[str, Any]) -> None:
    names = result["model"]["class_names"]
    rows = []
    for r in result["photos"]:
        photo = Path(r["photo"]).name
        plain_label = f"plain (imgsz {r['plain_imgsz']})"
        sliced_label = f"sliced ({r['sliced_tiles']} tiles)"
        for method, label in (("plain", plain_label), ("sliced", sliced_label)):
            counts = r["counts"][method]
            error = r.get("total_abs_error", {}).get(method)
            rows.append(
                [photo, label, r["seconds"][method]["median"], *(counts[n] for n in names), sum(counts.values()), error]
            )
        if r["official"]:
            rows.append([photo, "official", None, *(r["official"][n] for n in names), sum(r["official"].values()), 0])
    print(f"\nMedian wall time of {result['settings']['repeats']} (seconds) and counts per class")
    print(format_table(["photo", "method", "s", *names, "total", "abs err"], rows))
    print("machine:", describe_load(result["environment"]))


if __name__ == "__main__":
    main()
