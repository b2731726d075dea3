"""Concurrent load on the real app: N ``gradio_client`` clients x M ``/count`` requests each, on loopback.

    python -m benchmarks.load [PHOTO] [--clients 32] [--requests 4] [--deadline 480] [--app-arg=--queue-size=64]

Starts ``python app.py --host 127.0.0.1 --port <free>`` (its own defaults for queue size and concurrency unless
``--app-arg`` says otherwise), warms it up, then every client (its own ``Client``, as separate users would have)
waits at a barrier and sends its requests one after another. It is bounded: a global deadline cancels what is left
and counts it as failed, and the app is stopped at the end. Reports failures (and why), p50/p95 latency, the queue
as the clients saw it (largest position and queue length reported, time spent waiting), and the app's RSS before
and after.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.api_overhead import DEFAULT_PHOTO
from benchmarks.app_server import AppServer
from benchmarks.common import (
    Environment,
    add_model_args,
    describe_load,
    finish,
    format_table,
    log,
    summarize,
)
from detector.counting.scale import ADULT_FEMALE_LENGTH_PX
from detector.settings import DEFAULT_CONF, DEFAULT_IOU

NAME = "load"
RSS_GROWTH_GOAL = 0.10
POLL_S = 0.1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("photo", nargs="?", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--photo-scale", type=float, default=0.25, help="the photo's scale (0.25: downsampled 4x)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=4, help="requests per client, sent one after another")
    parser.add_argument("--deadline", type=float, default=480, help="seconds before what is left is cancelled")
    parser.add_argument("--request-timeout", type=float, default=300, help="seconds one request may take")
    parser.add_argument("--warmup", type=int, default=2, help="requests before the RSS baseline is taken")
    parser.add_argument("--app-arg", action="append", default=[], help="extra app.py argument (repeatable)")
    parser.add_argument(
        "--app-env", action="append", default=[], metavar="KEY=VALUE", help="extra app environment (repeatable)"
    )
    add_model_args(parser)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1:
        parser.error("--clients and --requests must be >= 1")
    if any("=" not in item for item in args.app_env):
        parser.error("--app-env takes KEY=VALUE")
    args.app_env = dict(item.split("=", 1) for item in args.app_env)
    return args


class RssSampler(threading.Thread):
    """Samples the app's RSS every half second until stopped, with the number of requests finished so far."""

    def __init__(self, app: AppServer) -> None:
        super().__init__(daemon=True)
        self.app = app
        self.samples: list[int] = []
        self.timeline: list[tuple[float, int, int]] = []  # (seconds since start, requests finished, rss bytes)
        self.finished = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.started = time.perf_counter()

    def request_finished(self) -> None:
        with self.lock:
            self.finished += 1

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            try:
                rss = self.app.rss_bytes()
            except Exception:  # the process may be gone at the very end
                return
            self.samples.append(rss)
            self.timeline.append((time.perf_counter() - self.started, self.finished, rss))

    def summary(self, points: int = 12) -> list[dict[str, float]]:
        """About ``points`` evenly spaced samples: does RSS level off or keep growing with requests?"""
        step = max(1, len(self.timeline) // points)
        chosen = self.timeline[::step] + self.timeline[-1:]
        return [{"t_s": round(t, 1), "finished": n, "rss_mb": round(r / 2**20, 1)} for t, n, r in chosen]


def one_request(client, photo: Path, args: argparse.Namespace, version: str, deadline: float) -> dict[str, Any]:
    """Submit one /count and watch its status until done; returns timings, queue positions and the outcome."""
    from gradio_client import handle_file
    from gradio_client.utils import Status

    record: dict[str, Any] = {"ok": False, "max_rank": None, "max_queue_size": None, "queue_wait_s": None}
    started = time.perf_counter()
    female_px = args.photo_scale * ADULT_FEMALE_LENGTH_PX  # the app takes the adult female length
    job = client.submit(
        handle_file(str(photo)), DEFAULT_CONF, DEFAULT_IOU, "auto", 0, female_px, version, api_name="/count"
    )
    limit = min(deadline, started + args.request_timeout)
    processing_at = None
    while not job.done():
        if time.perf_counter() > limit:
            job.cancel()
            record["error"] = "deadline: cancelled by the benchmark"
            record["latency_s"] = time.perf_counter() - started
            return record
        status = job.status()
        if status.code == Status.IN_QUEUE:
            if status.rank is not None:
                record["max_rank"] = max(record["max_rank"] or 0, status.rank)
            if status.queue_size is not None:
                record["max_queue_size"] = max(record["max_queue_size"] or 0, status.queue_size)
        elif status.code in (Status.PROCESSING, Status.PROGRESS) and processing_at is None:
            processing_at = time.perf_counter()
        time.sleep(POLL_S)
    record["latency_s"] = time.perf_counter() - started
    if processing_at is not None:
        record["queue_wait_s"] = processing_at - started
    try:
        outputs = job.result(timeout=5)
        record["ok"] = True
        record["total"] = outputs[2]["total"]
    except Exception as exc:  # gradio_client raises plain Exceptions (queue full, app error)
        record["error"] = f"{type(exc).__name__}: {str(exc)[:160]}"
    return record


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from gradio_client import Client, handle_file

    environment = Environment()
    photo = args.photo.resolve()
    app = AppServer(weights=args.weights, version=args.version, extra_args=args.app_arg, extra_env=args.app_env)
    with app, tempfile.TemporaryDirectory() as downloads:
        log(f"app ready at {app.url} in {app.startup_s:.1f}s")
        warm = Client(app.url, verbose=False, download_files=downloads)
        info = warm.predict(api_name="/model_info")
        version = info["version"]
        female_px = args.photo_scale * ADULT_FEMALE_LENGTH_PX
        for _ in range(args.warmup):
            warm.predict(
                handle_file(str(photo)), DEFAULT_CONF, DEFAULT_IOU, "auto", 0, female_px, version, api_name="/count"
            )
        time.sleep(1)
        rss_before = app.rss_bytes()
        sampler = RssSampler(app)
        sampler.start()

        barrier = threading.Barrier(args.clients)
        deadline_holder: dict[str, float] = {}

        def client_session(index: int) -> list[dict[str, Any]]:
            try:
                client = Client(app.url, verbose=False, download_files=downloads)
            except Exception as exc:
                barrier.abort()
                raise RuntimeError(f"client {index} could not connect: {exc}") from exc
            barrier.wait(timeout=120)
            deadline = deadline_holder.setdefault("at", time.perf_counter() + args.deadline)
            records = []
            for request in range(args.requests):
                if time.perf_counter() > deadline:
                    records.append({"ok": False, "error": "deadline: not sent", "client": index, "request": request})
                    continue
                record = one_request(client, photo, args, version, deadline)
                sampler.request_finished()
                records.append({**record, "client": index, "request": request})
            return records

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            sessions = list(pool.map(client_session, range(args.clients)))
        wall_s = time.perf_counter() - started
        time.sleep(1)
        rss_after = app.rss_bytes()
        sampler.stopped.set()
        sampler.join(5)
        startup_s = round(app.startup_s, 1)

    records = [r for session in sessions for r in session]
    ok = [r for r in records if r["ok"]]
    failures = [r for r in records if not r["ok"]]
    queue_waits = [r["queue_wait_s"] for r in ok if r["queue_wait_s"] is not None]
    ranks = [r["max_rank"] for r in records if r.get("max_rank") is not None]
    sizes = [r["max_queue_size"] for r in records if r.get("max_queue_size") is not None]
    growth = (rss_after - rss_before) / rss_before
    # RSS once every client has had one answer: separates a one-off step at the burst from growth per request.
    wave = next((rss for _, done, rss in sampler.timeline if done >= args.clients), None)
    growth_after_wave = round((rss_after - wave) / wave, 4) if wave and len(records) > args.clients else None
    result = {
        "model": info,
        "settings": {
            "photo": str(photo),
            "photo_scale": args.photo_scale,
            "clients": args.clients,
            "requests_per_client": args.requests,
            "deadline_s": args.deadline,
            "request_timeout_s": args.request_timeout,
            "app_command": " ".join(
                [
                    *(f"{k}={v}" for k, v in args.app_env.items()),
                    "python app.py --host 127.0.0.1 --port <free> --device cpu",
                    *args.app_arg,
                ]
            ),
            "app_startup_s": startup_s,
        },
        "requests": len(records),
        "succeeded": len(ok),
        "failed": len(failures),
        "failure_reasons": dict(Counter(r.get("error", "?") for r in failures)),
        "wall_s": round(wall_s, 2),
        "throughput_rps": round(len(ok) / wall_s, 3),
        "latency_s": summarize([r["latency_s"] for r in ok]),
        "queue": {
            "max_position_seen": max(ranks) if ranks else None,
            "max_queue_size_seen": max(sizes) if sizes else None,
            "wait_s": summarize(queue_waits),
            "note": "position (rank) and queue size as reported to the clients in IN_QUEUE status updates; wait = "
            f"submit until PROCESSING was seen (polled every {POLL_S}s)",
        },
        "rss_mb": {
            "before": round(rss_before / 2**20, 1),
            "after": round(rss_after / 2**20, 1),
            "max_during": round(max(sampler.samples, default=rss_after) / 2**20, 1),
            "after_first_wave": round(wave / 2**20, 1) if wave else None,
            "growth_after_first_wave": growth_after_wave,
            "timeline": sampler.summary(),
            "growth": round(growth, 4),
        },
        "goals": {
            "no_failures": not failures,
            "rss_growth_within_10pct": growth <= RSS_GROWTH_GOAL,
        },
    }
    return finish(NAME, result, args.out, environment, print_report)


def print_report(result: dict[str, Any]) -> None:
    s, q, rss = result["settings"], result["queue"], result["rss_mb"]
    lat = result["latency_s"]
    rows = [
        [
            f"{s['clients']}x{s['requests_per_client']}",
            result["succeeded"],
            result["failed"],
            lat.get("median"),
            lat.get("p95"),
            q["wait_s"].get("median"),
            q["max_position_seen"],
            result["throughput_rps"],
            rss["before"],
            rss["after"],
            f"{rss['growth'] * 100:+.1f}%",
            "" if rss["growth_after_first_wave"] is None else f"{rss['growth_after_first_wave'] * 100:+.1f}%",
        ]
    ]
    headers = ["clients x req", "ok", "failed", "p50 s", "p95 s", "queue wait p50 s", "max pos", "req/s"]
    print(f"\n{Path(s['photo']).name}, photo scale {s['photo_scale']}; app: {s['app_command']}")
    print(format_table([*headers, "RSS MB before", "after", "growth", "after 1st wave"], rows))
    if result["failure_reasons"]:
        print("failures:", result["failure_reasons"])
    print("goals:", result["goals"])
    print("machine:", describe_load(result["environment"]))


if __name__ == "__main__":
    main()
