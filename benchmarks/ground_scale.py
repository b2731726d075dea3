"""Seconds per survey photo at each ground scale: the same sliced count, models trained at 0.25 and 0.5.

    python -m benchmarks.ground_scale --model 0.25=runs/cv-gs025/fold0/weights/best.pt \\
        --model 0.5=runs/cv-gs05/fold0/weights/best.pt [--repeats 3]

Counts full-resolution survey photos (``../shared`` fullres-raw, else fullres-dotted) from the file, as users do:
decoding, rescaling to the model's ground scale, tiles, network, merge. A model at ground scale 0.5 sees 4x the
pixels of one at 0.25 (pups ~20 px instead of ~10 px): this prints what that costs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.common import (
    SHARED_DATA,
    Environment,
    describe_load,
    finish,
    format_table,
    log,
    summarize,
    timed,
)
from detector.settings import default_of
from training.dataset import ChipOptions

NAME = "ground_scale"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, metavar="SCALE=WEIGHTS",
                        help="a ground scale and a weights file trained at it (repeat)")  # fmt: skip
    parser.add_argument("--imgsz", type=int, default=default_of(ChipOptions, "size"), help="the chip size trained on")
    parser.add_argument("--photos", nargs="*", type=Path, help="default: the shared full-resolution raw photos")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from training.evaluate import load_detector

    photos = (
        args.photos
        or sorted((SHARED_DATA / "fullres-raw").glob("*.jpg"))
        or sorted((SHARED_DATA / "fullres-dotted").glob("*.jpg"))
    )
    if not photos:
        parser.error(f"no photos given and none under {SHARED_DATA}")
    environment = Environment()
    rows, results = [], []
    for item in args.model:
        scale_text, _, weights = item.partition("=")
        scale = float(scale_text)
        detector = load_detector(Path(weights), args.imgsz, scale, "cpu")
        for photo in photos:
            detector.count(photo)  # warm-up: page cache, allocator
            samples, result = [], None
            for _ in range(args.repeats):
                seconds, result = timed(lambda d=detector, p=photo: d.count(p))
                samples.append(seconds)
            stats = summarize(samples)
            log(f"{scale} {photo.name}: {stats['median']:.3f} s, {result.tiles} tiles")
            rows.append([scale, photo.name, f"{result.image_size[0]}x{result.image_size[1]}", result.tiles,
                         stats["median"], stats["min"], result.total])  # fmt: skip
            results.append({"ground_scale": scale, "weights": weights, "photo": photo.name, "tiles": result.tiles,
                            "seconds": stats, "total": result.total})  # fmt: skip
    headers = ["ground scale", "photo", "size", "tiles", "median s", "min s", "animals"]

    def report(result: dict) -> None:
        print(format_table(headers, rows))
        print(describe_load(result["environment"]))

    finish(NAME, {"results": results}, args.out, environment, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
