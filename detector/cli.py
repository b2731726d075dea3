"""Command line: ``python -m detector count PATH... [--out counts.csv|counts.json] ...``."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from detector.errors import DetectorError
from detector.images import SUPPORTED_SUFFIXES
from detector.model import DEFAULT_BATCH, DEFAULT_CONF, DEFAULT_IOU, DEFAULT_OVERLAP
from detector.results import CountResult


def iter_photos(paths: Sequence[str], recursive: bool) -> Iterator[Path]:
    """Files named on the command line as given; folders expanded to the photos inside them."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            yield from sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        else:
            yield path  # a missing or unreadable file is reported when it is read


def write_results(results: list[CountResult], failures: list[dict[str, str]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".json":
        payload = {"results": [r.to_dict() for r in results], "failures": failures}
        out.write_text(json.dumps(payload, indent=2))
        return
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        class_names = results[0].class_names if results else ()
        writer.writerow([*CountResult.csv_header(class_names), "error"])
        for result in results:
            writer.writerow([*result.csv_row(), ""])
        for failure in failures:
            writer.writerow([failure["file"], *[""] * (len(CountResult.csv_header(class_names)) - 1), failure["error"]])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m detector", description="Count sea lions in photos.")
    sub = parser.add_subparsers(dest="command", required=True)
    count = sub.add_parser("count", help="count animals in photos or folders of photos")
    count.add_argument("paths", nargs="+", metavar="PATH", help="photo files or folders")
    count.add_argument("--recursive", "-r", action="store_true", help="look into sub-folders")
    count.add_argument("--out", type=Path, help="write counts to a .csv or .json file (default: print a table)")
    count.add_argument("--save-annotated", type=Path, metavar="DIR", help="save annotated JPEGs here")
    count.add_argument(
        "--conf", type=float, default=None,
        help="one confidence threshold for every class (default: the model version's calibrated per-class "
        f"thresholds, else {DEFAULT_CONF})",
    )  # fmt: skip
    count.add_argument("--iou", type=float, default=DEFAULT_IOU, help="NMS IoU threshold (default %(default)s)")
    count.add_argument("--tile-size", type=int, default=None, help="tile size in model pixels (default: model input)")
    count.add_argument(
        "--overlap", type=float, default=DEFAULT_OVERLAP, help="tile overlap share (default %(default)s)"
    )
    count.add_argument(
        "--slicing", choices=["auto", "on", "off"], default="auto", help="tile large photos (default auto)"
    )
    count.add_argument(
        "--photo-scale",
        type=float,
        default=1.0,
        help="photo resolution relative to a native survey photo, e.g. 0.25 if downsampled 4x",
    )
    count.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="tiles per forward pass")
    count.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps [SEALION_DEVICE]")
    count.add_argument(
        "--model-version", default=None, help="model version from weights/manifest.yaml [SEALION_MODEL_VERSION]"
    )
    count.add_argument("--weights", default=None, help="explicit local weights file [SEALION_WEIGHTS]")
    count.add_argument("--hub-repo", default=None, help="hub repo id to pull from [SEALION_HUB_REPO]")
    count.add_argument("--revision", default=None, help="hub tag, branch or commit sha [SEALION_HUB_REVISION]")
    count.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return parser


def run_count(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from detector.images import load_image
    from detector.model import Detector
    from detector.overlay import draw_overlay

    detector = Detector.load(
        args.model_version, weights_path=args.weights, repo_id=args.hub_repo, revision=args.revision, device=args.device
    )
    print(
        f"model {detector.info.version} ({detector.info.source}, sha256 {detector.info.sha256[:12]}) on "
        f"{detector.device}",
        file=sys.stderr,
    )
    photos = list(iter_photos(args.paths, args.recursive))
    results: list[CountResult] = []
    failures: list[dict[str, str]] = []
    if args.save_annotated:
        args.save_annotated.mkdir(parents=True, exist_ok=True)
    for photo in tqdm(photos, desc="counting", unit="photo", disable=args.quiet or len(photos) < 2, file=sys.stderr):
        try:
            rgb = load_image(photo)
            result = detector.count(
                rgb,
                conf=args.conf,
                iou=args.iou,
                slicing=args.slicing,
                tile_size=args.tile_size,
                overlap=args.overlap,
                photo_scale=args.photo_scale,
                batch_size=args.batch_size,
                source=str(photo),
            )
        except DetectorError as exc:
            failures.append({"file": str(photo), "error": str(exc)})
            tqdm.write(f"skipped {photo}: {exc}", file=sys.stderr)
            continue
        results.append(result)
        if args.save_annotated:
            from PIL import Image

            Image.fromarray(draw_overlay(rgb, result)).save(
                args.save_annotated / f"{photo.stem}.annotated.jpg", quality=90
            )
    if args.out:
        write_results(results, failures, args.out)
        print(f"wrote {len(results)} results to {args.out}", file=sys.stderr)
    else:
        _print_table(results)
    if failures:
        print(f"{len(failures)} of {len(photos)} files failed", file=sys.stderr)
    if not photos:
        print("no photos found", file=sys.stderr)
        return 1
    return 1 if failures else 0


def _print_table(results: list[CountResult]) -> None:
    if not results:
        return
    header = ["file", *results[0].class_names, "total"]
    rows = [[Path(r.source or "").name, *map(str, r.counts.values()), str(r.total)] for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return run_count(args)
    except DetectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
