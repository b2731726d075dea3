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
from detector.counting.detections import Detections
from detector.settings import DEFAULT_CONF, DEFAULT_IOU, DEFAULT_OVERLAP

NAME = "plain_vs_sliced"
STRIDE = 32  # YOLOv5's largest stride: input sides must be multiples of it


def pad_to_stride(image: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """Pad bottom/right with ultralytics' letterbox grey to multiples of ``stride`` (no rescaling at all)."""
    import cv2

    height, width = image.shape[:2]
    bottom, right = -height % stride, -width % stride
    if not bottom and not right:
        return np.ascontiguousarray(image)
    return cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", type=Path, help="extra photos (besides the shared full-res ones)")
    parser.add_argument("--photo-scale", type=float, default=1.0, help="scale of the extra photos (native = 1)")
    parser.add_argument("--no-shared", action="store_true", help="skip the shared full-resolution photos")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method and photo (default 3)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--conf", type=float, default=DEFAULT_CONF)
    parser.add_argument("--iou", type=float, default=DEFAULT_IOU)
    parser.add_argument(
        "--max-one-pass", type=int, default=4096, help="largest work-image side run in one pass (memory bound)"
    )
    add_model_args(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from ultralytics import YOLO

    from detector.counting.images import load_image, rescale
    from detector.counting.slicing import tile_grid

    environment = Environment()
    threads = set_threads(None)
    det = load_detector(args)
    plain = YOLO(det.info.path, task="detect")
    one_pass = YOLO(det.info.path, task="detect")  # its own predictor: ultralytics keeps the last call's imgsz
    photos = [(p, 1.0) for p in ([] if args.no_shared else default_photos())]
    photos += [(p, args.photo_scale) for p in args.photos]
    if not photos:
        raise SystemExit("No photos: the shared full-resolution photos are missing and none were given.")
    official = official_counts()
    names = det.class_names

    def classes_to_counts(found) -> dict[str, int]:
        classes = Detections.from_ultralytics(found).class_id
        return {name: int((classes == i).sum()) for i, name in enumerate(names)}

    def run_plain(photo: Path, photo_scale: float) -> dict[str, int]:
        return classes_to_counts(
            plain.predict(str(photo), conf=args.conf, iou=args.iou, device="cpu", verbose=False)[0]
        )

    last_timings: dict[str, float] = {}

    def run_sliced(photo: Path, photo_scale: float) -> dict[str, int]:
        result = det.count(photo, conf=args.conf, iou=args.iou, photo_scale=photo_scale)
        last_timings.update(result.timings_ms)  # decode + resize ("preprocess") vs inference vs merge
        return result.counts

    def run_one_pass(photo: Path, photo_scale: float) -> dict[str, int]:
        work = rescale(load_image(photo), det.ground_scale / photo_scale)
        padded = pad_to_stride(work[:, :, ::-1])  # BGR for ultralytics
        found = one_pass.predict(
            padded, imgsz=list(padded.shape[:2]), conf=args.conf, iou=args.iou, device="cpu", verbose=False
        )[0]
        return classes_to_counts(found)

    methods = {"plain": run_plain, "sliced": run_sliced, "one_pass": run_one_pass}
    records = []
    for photo, photo_scale in photos:
        rgb = load_image(photo)
        factor = det.ground_scale / photo_scale
        work_size = [max(1, round(rgb.shape[1] * factor)), max(1, round(rgb.shape[0] * factor))]
        chosen = {k: v for k, v in methods.items() if k != "one_pass" or max(work_size) <= args.max_one_pass}
        times: dict[str, list[float]] = {name: [] for name in chosen}
        counts: dict[str, dict[str, int]] = {}
        for round_index in range(args.warmup + args.repeats):
            for name, run in chosen.items():
                set_threads(threads)
                seconds, counts[name] = timed(lambda run=run, photo=photo, scale=photo_scale: run(photo, scale))
                if round_index >= args.warmup:
                    times[name].append(seconds)
        tiles = len(tile_grid(*work_size, det.imgsz, DEFAULT_OVERLAP)) if max(work_size) > det.imgsz else 1
        log(f"{photo.name}: " + ", ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items()) + f" ({tiles} tiles)")
        record: dict[str, Any] = {
            "photo": str(photo),
            "photo_scale": photo_scale,
            "size": [rgb.shape[1], rgb.shape[0]],
            "work_size": work_size,
            "plain_imgsz": plain.predictor.args.imgsz if plain.predictor else None,
            "sliced_tiles": tiles,
            "sliced_phases_ms_last_run": {k: round(v, 1) for k, v in last_timings.items()},
            "one_pass_imgsz": [-(-work_size[1] // STRIDE) * STRIDE, -(-work_size[0] // STRIDE) * STRIDE],
            "seconds": {name: summarize(values) for name, values in times.items()},
            "counts": counts,
            "official": official.get(photo.stem),
        }
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
            "one_pass": "decode, resize by ground_scale/photo_scale as the detector does, pad to a multiple of 32, "
            "one YOLO.predict with imgsz = that size (no tiles, no downscaling; not a product mode yet)",
            "max_one_pass": args.max_one_pass,
            "torch_threads_both": threads,
            "warmup": args.warmup,
            "repeats": args.repeats,
        },
        "photos": records,
    }
    return finish(NAME, result, args.out, environment, print_report)


def print_report(result: dict[str, Any]) -> None:
    names = result["model"]["class_names"]
    rows = []
    for r in result["photos"]:
        photo = Path(r["photo"]).name
        labels = {
            "plain": f"plain (imgsz {r['plain_imgsz']})",
            "sliced": f"sliced ({r['sliced_tiles']} tiles of {result['model']['imgsz']})",
            "one_pass": f"one pass ({r['one_pass_imgsz'][1]}x{r['one_pass_imgsz'][0]})",
        }
        for method, label in labels.items():
            if method not in r["counts"]:
                continue
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
