"""``/count`` through ``gradio_client`` against the running app vs ``Detector.count`` in process.

    python -m benchmarks.api_overhead [PHOTO] [--photo-scale 0.25] [--calls 20]

Starts the real app (``python app.py --host 127.0.0.1 --port <free>``) with the same weights, then times, round
by round (interleaved, so load drift hits all three alike): (1) ``Detector.count(path)`` in this process, (2) the
app's own work without HTTP (``sealion_app.service.count_photo``: decode, count, draw the overlay), and (3)
``Client.predict(handle_file(path), ..., api_name="/count")``: upload, queue, count, overlay, JPEG encoding,
JSON, and download of the annotated photo. The default photo is the repo's 1248x832 example (downsampled 4x).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.app_server import AppServer
from benchmarks.common import (
    REPO_ROOT,
    Environment,
    add_model_args,
    describe_load,
    finish,
    format_table,
    load_detector,
    log,
    set_threads,
    summarize,
    timed,
)
from detector.counting.scale import ADULT_FEMALE_LENGTH_PX
from detector.settings import DEFAULT_CONF, DEFAULT_IOU, DEFAULT_SLICING, CountOptions

NAME = "api_overhead"
DEFAULT_PHOTO = REPO_ROOT / "examples" / "noaa_train_6.jpg"  # 1248x832, NOAA train 6 downsampled 4x
RATIO_GOAL = 1.15  # issue 12: the lean path within 15 % of the in-process call


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("photo", nargs="?", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--photo-scale", type=float, default=0.25, help="the photo's scale (0.25: downsampled 4x)")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per method (default 20)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--conf", type=float, default=DEFAULT_CONF)
    parser.add_argument("--iou", type=float, default=DEFAULT_IOU)
    add_model_args(parser)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.warmup < 0:
        parser.error("--calls must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from gradio_client import Client, handle_file

    from sealion_app.service import count_photo

    environment = Environment()
    threads = set_threads(None)
    det = load_detector(args)
    options = CountOptions(conf=args.conf, iou=args.iou, photo_scale=args.photo_scale)
    photo = args.photo.resolve()

    with AppServer(weights=args.weights, version=args.version) as app, tempfile.TemporaryDirectory() as downloads:
        log(f"app ready at {app.url} in {app.startup_s:.1f}s")
        client = Client(app.url, verbose=False, download_files=downloads)
        version = client.predict(api_name="/model_info")["version"]

        inputs = (
            args.conf, args.iou, DEFAULT_SLICING, 0,
            args.photo_scale * ADULT_FEMALE_LENGTH_PX,  # the app's scale setting is the adult female length
            version,
        )  # fmt: skip

        def via_api() -> dict[str, int]:
            return client.predict(handle_file(str(photo)), *inputs, api_name="/count")[2]["counts"]

        def via_lean_api() -> dict[str, int]:
            return client.predict(handle_file(str(photo)), *inputs, api_name="/count_data")["counts"]

        def in_process() -> dict[str, int]:
            return det.count(photo, conf=args.conf, iou=args.iou, photo_scale=args.photo_scale).counts

        def in_process_with_overlay() -> dict[str, int]:
            return count_photo(det, photo, photo.name, options)[1].counts

        methods = {
            "detector_in_process": in_process,
            "service_in_process": in_process_with_overlay,
            "api": via_api,
            "lean_api": via_lean_api,
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        counts: dict[str, dict[str, int]] = {}
        for call in range(args.warmup + args.calls):
            for name, function in methods.items():
                set_threads(threads)
                seconds, counts[name] = timed(function)
                if call >= args.warmup:
                    times[name].append(seconds)
            if call >= args.warmup and (call - args.warmup + 1) % 5 == 0:
                log(
                    f"  {call - args.warmup + 1}/{args.calls} calls: "
                    + ", ".join(f"{n} {times[n][-1]:.3f}s" for n in times)
                )
        startup_s = round(app.startup_s, 1)

    stats = {name: summarize(values) for name, values in times.items()}
    base = stats["detector_in_process"]
    ratios = {
        name: {
            "median": round(stats[name]["median"] / base["median"], 3),
            "p95": round(stats[name]["p95"] / base["p95"], 3),
            "overhead_median_ms": round((stats[name]["median"] - base["median"]) * 1000, 1),
        }
        for name in ("service_in_process", "api", "lean_api")
    }
    result = {
        "model": det.info.to_dict(),
        "settings": {
            "photo": str(photo),
            "photo_scale": args.photo_scale,
            "conf": args.conf,
            "iou": args.iou,
            "calls": args.calls,
            "warmup": args.warmup,
            "torch_threads": threads,
            "app_command": "python app.py --host 127.0.0.1 --port <free> --device cpu [--weights/--model-version]",
            "app_startup_s": startup_s,
        },
        "seconds": stats,
        "ratio_over_detector": ratios,
        "same_counts": len({str(c) for c in counts.values()}) == 1,
        "counts": counts,
        "goal": f"lean api (/count_data) median and p95 <= {RATIO_GOAL} x in-process",
        "goal_met": ratios["lean_api"]["median"] <= RATIO_GOAL and ratios["lean_api"]["p95"] <= RATIO_GOAL,
    }
    return finish(NAME, result, args.out, environment, print_report)


def print_report(result: dict[str, Any]) -> None:
    stats, ratios = result["seconds"], result["ratio_over_detector"]
    labels = {
        "detector_in_process": "Detector.count in process",
        "service_in_process": "count + overlay in process",
        "api": "/count via gradio_client",
        "lean_api": "/count_data via gradio_client",
    }
    rows = []
    for name, label in labels.items():
        ratio = ratios.get(name, {"median": 1.0, "p95": 1.0, "overhead_median_ms": 0.0})
        rows.append(
            [
                label,
                stats[name]["median"] * 1000,
                stats[name]["p95"] * 1000,
                ratio["median"],
                ratio["p95"],
                ratio["overhead_median_ms"],
            ]
        )
    settings = result["settings"]
    print(f"\n{Path(settings['photo']).name}, photo scale {settings['photo_scale']}, {settings['calls']} calls each")
    print(format_table(["method", "median ms", "p95 ms", "ratio median", "ratio p95", "+ms"], rows))
    print(
        f"goal ({result['goal']}): {'met' if result['goal_met'] else 'NOT met'}; same counts: {result['same_counts']}"
    )
    print("machine:", describe_load(result["environment"]))


if __name__ == "__main__":
    main()
