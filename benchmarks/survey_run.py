"""Photos per second of a survey run (``sealion-count --run``): one photo after the other, the pipelined local
engine (decoder threads ahead of the network, the default), and Ray Data, on this machine.

    python -m benchmarks.survey_run [--photos 100] [--workers 2] [--engines torch-sequential sequential local ray]

Builds a folder of survey-size photos (copies of the full-resolution NOAA photos in ``../shared``, each saved
again so every file is distinct; without the sample, the shipped examples enlarged 4x), then times the real
command end to end for each engine in a fresh run directory: start-up, model load, counting, writing and the
final CSVs. Ray's overhead (starting Ray, one model per actor) is inside its time, as a user would pay it.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO_ROOT, SHARED_DATA, Environment, describe_load, finish, format_table, log

NAME = "survey_run"


def build_photos(folder: Path, count: int) -> list[Path]:
    """``count`` distinct survey-size JPEGs in ``folder`` (the sources cycled, re-encoded with a per-copy tag)."""
    from PIL import Image

    sources = sorted((SHARED_DATA / "fullres-raw").glob("*.jpg")) or sorted(
        (SHARED_DATA / "fullres-dotted").glob("*.jpg")
    )
    enlarge = 1
    if not sources:
        sources, enlarge = sorted((REPO_ROOT / "examples").glob("*.jpg")), 4
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for index in range(count):
        with Image.open(sources[index % len(sources)]) as image:
            image = image.convert("RGB")
            if enlarge != 1:
                image = image.resize((image.width * enlarge, image.height * enlarge))
            path = folder / f"IMG_{index:04d}.jpg"
            image.save(path, quality=90, comment=f"copy {index}".encode())
            made.append(path)
    return made


# torch-sequential: the CLI as it was (torch, one photo after the other); sequential: the default runtime, one photo
# after the other (--decoders 0); local: the defaults (runtime, pipelined decoding, the tile gate as the defaults have
# it); local-gate-on / local-gate-off: the same with the gate set (--gate on / off); ray: Ray Data actors.
ENGINES = ("torch-sequential", "sequential", "local", "local-gate-on", "local-gate-off", "ray")


def run_engine(engine: str, photos: Path, run: Path, workers: int) -> tuple[float, int, int]:
    command = [sys.executable, "-m", "detector", "count", str(photos), "--run", str(run), "--quiet"]
    if engine in ("sequential", "torch-sequential"):
        command += ["--decoders", "0"]
    if engine == "torch-sequential":
        command += ["--runtime", "torch"]
    if engine in ("local-gate-on", "local-gate-off"):
        command += ["--gate", engine.rsplit("-", 1)[1]]
    if engine == "ray":
        command += ["--engine", "ray", "--workers", str(workers)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{engine} run failed:\n{done.stderr[-3000:]}")
    with (run / "counts.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return seconds, len(rows), sum(int(row["total"]) for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Ray actors (default: CPU cores)")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    environment = Environment()
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="sealion-survey-bench-") as tmp:
        folder = Path(tmp) / "photos"
        made = build_photos(folder, args.photos)
        log(f"{len(made)} survey-size photos in {folder}")
        for engine in args.engines:
            seconds, counted, animals = run_engine(engine, folder, Path(tmp) / f"run-{engine}", args.workers)
            per_second = counted / seconds
            log(f"{engine}: {counted} photos in {seconds:.1f} s, {per_second:.3f} photos/s")
            workers = args.workers if engine == "ray" else 1
            rows.append([engine, workers, counted, round(seconds, 1), round(per_second, 3), animals])
            results.append({"engine": engine, "workers": workers, "photos": counted, "seconds": seconds,
                            "photos_per_second": per_second, "animals": animals})  # fmt: skip

    def report(result: dict) -> None:
        print(format_table(["engine", "workers", "photos", "seconds", "photos/s", "animals"], rows))
        print(describe_load(result["environment"]))

    finish(NAME, {"results": results}, args.out, environment, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
