"""Measure the app: cold start to ready, idle RSS, and /count latency through gradio_client vs the detector in process.

    python scripts/measure_app.py                       # default model, examples/noaa_train_6.jpg (1248x832)
    python scripts/measure_app.py --runs 9 --cold-starts 3

Starts ``python app.py`` exactly as a user would (the manifest's default model), on a free loopback port.
Prints a Markdown table. Timings depend on the machine and on what else runs on it: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import detector  # noqa: E402, F401 - importing the package sets the offline defaults
from benchmarks.app_server import AppServer  # noqa: E402


def start(log_dir: Path, extra: list[str]) -> tuple[AppServer, str, float]:
    """Start the app as a user does; return it, its URL and the seconds from exec to the API answering."""
    app = AppServer(extra_args=extra, device=None, log_path=log_dir, poll_s=0.1).start()
    return app, app.url, app.startup_s


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 1024**2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=ROOT / "examples" / "noaa_train_6.jpg")
    parser.add_argument("--photo-scale", type=float, default=0.25, help="0.25 for the 4x-downsampled examples")
    parser.add_argument("--runs", type=int, default=7, help="timed /count calls (after one warm-up)")
    parser.add_argument("--cold-starts", type=int, default=3)
    parser.add_argument("--weights", help="measure this weights file instead of the default model (development)")
    parser.add_argument("--idle-seconds", type=float, default=5, help="wait after ready before reading RSS")
    args = parser.parse_args()

    from gradio_client import Client, handle_file
    from PIL import Image

    width, height = Image.open(args.photo).size
    log_dir = Path(tempfile.mkdtemp(prefix="measure-app-"))
    rows: list[tuple[str, str]] = []
    extra = ["--weights", args.weights] if args.weights else []

    cold = []
    for _ in range(args.cold_starts - 1):
        process, _, seconds = start(log_dir, extra)
        cold.append(seconds)
        process.stop()
    process, url, seconds = start(log_dir, extra)
    cold.append(seconds)
    try:
        time.sleep(args.idle_seconds)
        idle_rss = rss_mb(process.process.pid)
        client = Client(url, verbose=False, download_files=str(log_dir / "downloads"))
        info = client.predict(api_name="/model_info")
        photo = handle_file(str(args.photo))
        options = {"female_length_px": args.photo_scale * 80}  # the app takes the adult female length

        from detector.counting.images import load_image
        from detector.counting.model import Detector
        from detector.counting.overlay import draw_overlay
        from detector.settings import ModelSettings

        detector = Detector.load(ModelSettings(weights=args.weights))
        client.predict(photo, **options, api_name="/count")  # warm-up both
        detector.count(args.photo, photo_scale=args.photo_scale)
        # Interleaved, so both sides see the same background load on a shared machine.
        api_times, server_times, local_times = [], [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            result = client.predict(photo, **options, api_name="/count")[2]
            api_times.append(time.perf_counter() - t0)
            server_times.append(result["timings_ms"]["total"] / 1000)
            t0 = time.perf_counter()
            local = detector.count(args.photo, photo_scale=args.photo_scale)
            local_times.append(time.perf_counter() - t0)
        busy_rss = rss_mb(process.process.pid)
    finally:
        process.stop()

    rgb = load_image(args.photo)
    overlay_times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        draw_overlay(rgb, local)
        overlay_times.append(time.perf_counter() - t0)

    api, inproc = statistics.median(api_times), statistics.median(local_times)
    rows += [
        ("model", f"{info['version']} ({info['source']}, sha256 {info['sha256'][:12]}), device {info['device']}"),
        ("photo", f"{args.photo.name}, {width}x{height}, photo_scale {args.photo_scale}, {local.tiles} tiles"),
        ("cold start to ready (python app.py → /gradio_api/info 200)", ", ".join(f"{s:.1f} s" for s in cold)),
        ("cold start, median", f"{statistics.median(cold):.1f} s"),
        ("idle RSS after ready", f"{idle_rss:.0f} MB"),
        (f"RSS after {args.runs + 1} /count calls", f"{busy_rss:.0f} MB"),
        (f"/count via gradio_client, median of {args.runs}", f"{api * 1000:.0f} ms"),
        ("  of which Detector.count inside the server, median", f"{statistics.median(server_times) * 1000:.0f} ms"),
        (f"Detector.count in process, median of {args.runs}", f"{inproc * 1000:.0f} ms"),
        ("draw_overlay in process, median", f"{statistics.median(overlay_times) * 1000:.0f} ms"),
        ("app overhead (API − in process)", f"{(api - inproc) * 1000:.0f} ms ({api / inproc:.2f}x)"),
        (
            "conditions",
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end",
        ),
    ]
    width_key = max(len(k) for k, _ in rows)
    print(f"| {'measure'.ljust(width_key)} | value |")
    print(f"| {'-' * width_key} | --- |")
    for key, value in rows:
        print(f"| {key.ljust(width_key)} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
