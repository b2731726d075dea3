"""Command line: ``sealion-count PATH... [--out counts.csv|counts.json] ...`` (or ``python -m detector count``)."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from detector.environment import check_torch_pair, set_offline_defaults
from detector.errors import DetectorError
from detector.images import SUPPORTED_SUFFIXES
from detector.model import DEFAULT_BATCH, DEFAULT_CONF, DEFAULT_IOU, DEFAULT_OVERLAP
from detector.results import CountResult
from detector.scale import ADULT_FEMALE_LENGTH_PX, scale_from_female_length


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


def photo_scale_arg(text: str) -> float | None:
    """``--photo-scale``: ``auto`` (None) or a positive number."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_count_arguments(count: argparse.ArgumentParser) -> None:
    """The options of ``sealion-count`` / ``python -m detector count``."""
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
    scale = count.add_mutually_exclusive_group()
    scale.add_argument(
        "--female-length", type=float, default=None, metavar="PX",
        help="how long an adult female is in the photos, in pixels (about "
        f"{ADULT_FEMALE_LENGTH_PX} in a survey original); default: auto from each photo's size",
    )  # fmt: skip
    scale.add_argument(
        "--photo-scale", type=photo_scale_arg, default=None, metavar="auto|S",
        help="the same as a resolution relative to a survey original (0.25 = downsampled 4x); default auto",
    )  # fmt: skip
    count.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="tiles per forward pass")
    count.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps [SEALION_DEVICE]")
    count.add_argument(
        "--model-version", default=None, help="model version from weights/manifest.yaml [SEALION_MODEL_VERSION]"
    )
    count.add_argument("--weights", default=None, help="explicit local weights file [SEALION_WEIGHTS]")
    count.add_argument("--hub-repo", default=None, help="hub repo id to pull from [SEALION_HUB_REPO]")
    count.add_argument("--revision", default=None, help="hub tag, branch or commit sha [SEALION_HUB_REVISION]")
    count.add_argument(
        "--refresh", action="store_true",
        help="ask the hub for the version even when a verified local copy exists [SEALION_REFRESH=1]",
    )  # fmt: skip
    count.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m detector", description="Count sea lions in photos.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_count_arguments(sub.add_parser("count", help="count animals in photos or folders of photos"))
    return parser


def build_count_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sealion-count",
        description="Count Steller sea lions per class in survey photos (files or folders).",
        epilog="Exit code 1 if any photo failed, 2 for a usage or model error.",
    )
    add_count_arguments(parser)
    return parser


def run_count(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from detector.images import load_image
    from detector.model import Detector
    from detector.overlay import draw_overlay

    photo_scale = args.photo_scale
    if args.female_length is not None:
        try:
            photo_scale = scale_from_female_length(args.female_length)
        except ValueError as exc:
            raise DetectorError(f"--female-length: {exc}.") from None
    detector = Detector.load(
        args.model_version,
        weights_path=args.weights,
        repo_id=args.hub_repo,
        revision=args.revision,
        device=args.device,
        refresh=args.refresh or None,
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
                photo_scale=photo_scale,
                batch_size=args.batch_size,
                source=str(photo),
            )
        except DetectorError as exc:
            failures.append({"file": str(photo), "error": str(exc)})
            tqdm.write(f"skipped {photo}: {exc}", file=sys.stderr)
            continue
        results.append(result)
        for warning in result.warnings:
            tqdm.write(f"warning: {photo}: {warning}", file=sys.stderr)
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


def _run(args: argparse.Namespace) -> int:
    set_offline_defaults()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        check_torch_pair()
        return run_count(args)
    except DetectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m detector count ...``."""
    return _run(build_parser().parse_args(argv))


def count_main(argv: Sequence[str] | None = None) -> int:
    """``sealion-count ...`` (the console script)."""
    return _run(build_count_parser().parse_args(argv))
