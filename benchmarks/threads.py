"""CPU threading: ``Detector.count`` time by torch thread count and OpenMP wait policy (each in a fresh process).

    python -m benchmarks.threads [PHOTO] [--photo-scale 0.25] [--repeats 5]

The detector pins torch to all cores after every batch. On a machine whose cores are also busy with other work,
OpenMP's default wait (spin for a while at every parallel region, then sleep) can make more threads much slower
than one. This measures it: for each wait policy (libgomp's default, and ``OMP_WAIT_POLICY=PASSIVE``, which the
detector sets unless told otherwise; it must be set before torch starts, hence one subprocess per cell) and each
thread count from 1 to the number of cores, the median wall time of ``Detector.count`` on the same photo.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.api_overhead import DEFAULT_PHOTO
from benchmarks.common import (
    REPO_ROOT,
    Environment,
    add_model_args,
    describe_load,
    finish,
    format_table,
    log,
    summarize,
)

NAME = "threads"
# label -> OMP_WAIT_POLICY value. The detector sets PASSIVE when the variable is unset; an empty value makes
# libgomp fall back to its own default (spin a while, then sleep; it prints "Invalid value" once).
POLICIES = {"libgomp default": "", "PASSIVE": "PASSIVE"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("photo", nargs="?", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--photo-scale", type=float, default=0.25, help="the photo's scale (0.25: downsampled 4x)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one measurement, JSON to stdout
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    add_model_args(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.max_threads < 1:
        parser.error("--repeats and --max-threads must be >= 1")
    return args


def child(args: argparse.Namespace) -> None:
    """Runs in the subprocess: load, warm up, time ``repeats`` counts at ``--threads`` threads."""
    import time

    import torch

    from benchmarks.common import load_detector

    det = load_detector(args)
    det.network.set_threads(args.threads)  # the runtime re-pins torch to this after each batch
    det.count(args.photo, photo_scale=args.photo_scale)
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        result = det.count(args.photo, photo_scale=args.photo_scale)
        times.append(time.perf_counter() - started)
    print(json.dumps({"seconds": times, "tiles": result.tiles, "torch_threads": torch.get_num_threads()}))


def measure(args: argparse.Namespace, policy: str, threads: int) -> dict[str, Any]:
    command = [sys.executable, "-m", f"benchmarks.{NAME}", str(args.photo), "--child", "--threads", str(threads)]
    command += ["--photo-scale", str(args.photo_scale), "--repeats", str(args.repeats)]
    command += [f"--{k}={v}" for k in ("weights", "version") if (v := getattr(args, k))]
    env = {**os.environ, "OMP_WAIT_POLICY": POLICIES[policy]}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"measurement failed ({policy}, {threads} threads):\n{done.stderr[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return {"policy": policy, "threads": threads, "tiles": data["tiles"], "seconds": summarize(data["seconds"])}


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return None
    from benchmarks.common import load_detector

    environment = Environment()
    info = load_detector(args).info.to_dict()
    cells = []
    for policy in POLICIES:
        for threads in range(1, args.max_threads + 1):
            cells.append(measure(args, policy, threads))
            log(f"{policy} wait, {threads} threads: {cells[-1]['seconds']['median']:.3f}s")
    result = {
        "model": info,
        "settings": {
            "photo": str(args.photo.resolve()),
            "photo_scale": args.photo_scale,
            "repeats": args.repeats,
            "measured": "Detector.count(photo path) after one warm-up, one fresh process per cell",
        },
        "cells": cells,
    }
    return finish(NAME, result, args.out, environment, print_report)


def print_report(result: dict[str, Any]) -> None:
    rows = [
        [c["policy"], c["threads"], c["tiles"], c["seconds"]["median"], c["seconds"]["p95"]] for c in result["cells"]
    ]
    s = result["settings"]
    print(f"\n{Path(s['photo']).name}, photo scale {s['photo_scale']}: Detector.count seconds")
    print(format_table(["OpenMP wait policy", "torch threads", "tiles", "median s", "p95 s"], rows))
    print("machine:", describe_load(result["environment"]))


if __name__ == "__main__":
    main()
