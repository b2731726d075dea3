"""Command line: ``sealion-count PATH... [--out counts.csv|counts.json] ...`` (or ``python -m detector count``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from detector.environment import check_torch_pair
from detector.errors import DetectorError
from detector.results import CountResult
from detector.scale import ADULT_FEMALE_LENGTH_PX, scale_from_female_length
from detector.settings import (
    DEFAULT_CONF,
    DEFAULT_DECODERS,
    DEFAULT_GATE,
    ENV_DEVICE,
    ENV_GROUND_SCALE,
    ENV_HUB_REPO,
    ENV_HUB_REVISION,
    ENV_MODEL_VERSION,
    ENV_REFRESH,
    ENV_RUNTIME,
    ENV_WEIGHTS,
    GATE_CHOICES,
    RUNTIME_CHOICES,
    SLICING_CHOICES,
    CountOptions,
    Settings,
    default_of,
    gate_arg,
)


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
    count.add_argument(
        "--iou", type=float, default=default_of(CountOptions, "iou"), help="NMS IoU threshold (default %(default)s)"
    )
    count.add_argument("--tile-size", type=int, default=None, help="tile size in model pixels (default: model input)")
    count.add_argument(
        "--overlap", type=float, default=default_of(CountOptions, "overlap"),
        help="tile overlap share (default %(default)s)",
    )  # fmt: skip
    count.add_argument(
        "--slicing", choices=SLICING_CHOICES, default=default_of(CountOptions, "slicing"),
        help="tile large photos (default %(default)s)",
    )  # fmt: skip
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
    count.add_argument(
        "--batch-size", type=int, default=default_of(CountOptions, "batch_size"),
        help="tiles per forward pass (default %(default)s)",
    )  # fmt: skip
    count.add_argument(
        "--gate", choices=GATE_CHOICES, default="on" if DEFAULT_GATE else "off",
        help="skip tiles a coarse first pass finds no animal near (default %(default)s; off: every tile)",
    )  # fmt: skip
    add_model_arguments(count)
    runs = count.add_argument_group("survey runs (resumable; see README, 'Count a whole survey')")
    runs.add_argument(
        "--run", type=Path, metavar="DIR",
        help="count into a run directory: one line per photo as it finishes, counts.csv and summary.csv at the end; "
        "rerunning the same command resumes it",
    )  # fmt: skip
    runs.add_argument("--new-run", action="store_true", help="start DIR over (the old run is kept inside it)")
    runs.add_argument(
        "--engine", choices=["local", "ray"], default="local",
        help="local (default) or ray: a Ray Data actor pool, on this machine or a cluster (needs ray[data])",
    )  # fmt: skip
    runs.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local Ray)")
    runs.add_argument("--workers", type=int, default=1, help="Ray actors, one model each (default %(default)s)")
    count.add_argument(
        "--decoders", type=int, default=DEFAULT_DECODERS, metavar="N",
        help="threads that read and decode the next photos while the network counts (0: one photo after the other; "
        "default %(default)s)",
    )  # fmt: skip
    count.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Which model to load; each option overrides its environment variable (:class:`detector.settings.Settings`)."""
    parser.add_argument("--device", default=None, help=f"auto (default), cpu, cuda, cuda:N or mps [{ENV_DEVICE}]")
    parser.add_argument(
        "--runtime", choices=RUNTIME_CHOICES, default=None,
        help="what runs the network: auto (default: the version's exported CPU runtime on a CPU when its package is "
        f"installed, else torch), torch, or an export the version has [{ENV_RUNTIME}]",
    )  # fmt: skip
    parser.add_argument(
        "--model-version", default=None, help=f"model version from weights/manifest.yaml [{ENV_MODEL_VERSION}]"
    )
    parser.add_argument("--weights", type=Path, default=None, help=f"explicit local weights file [{ENV_WEIGHTS}]")
    parser.add_argument(
        "--ground-scale", type=float, default=None,
        help=f"the ground scale an unlisted --weights file was trained at (default 1.0) [{ENV_GROUND_SCALE}]",
    )  # fmt: skip
    parser.add_argument("--hub-repo", default=None, help=f"hub repo id to pull from [{ENV_HUB_REPO}]")
    parser.add_argument("--revision", default=None, help=f"hub tag, branch or commit sha [{ENV_HUB_REVISION}]")
    parser.add_argument(
        "--refresh", action="store_true", default=None,
        help=f"ask the hub for the version even when a verified local copy exists [{ENV_REFRESH}=1]",
    )  # fmt: skip


def settings_from(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Settings:
    """The environment's settings with the command line's model options over them (the one place both meet)."""
    settings = Settings.from_env(environ)
    model = settings.model.with_options(
        version=args.model_version, weights=args.weights, ground_scale=args.ground_scale, repo_id=args.hub_repo,
        revision=args.revision, refresh=args.refresh, device=args.device, runtime=args.runtime,
    )  # fmt: skip
    return Settings(model=model, max_pixels=settings.max_pixels)


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

    from detector.model import Detector
    from detector.records import PhotoRecord, write_counts
    from detector.runs import RunDirectory, count_into_run, count_photos, find_photos, run_settings

    photo_scale = args.photo_scale
    if args.female_length is not None:
        try:
            photo_scale = scale_from_female_length(args.female_length)
        except ValueError as exc:
            raise DetectorError(f"--female-length: {exc}.") from None
    if args.engine == "ray" and not args.run:
        raise DetectorError("--engine ray writes into a run directory: add --run DIR.")
    from detector.images import set_max_pixels

    settings = settings_from(args)
    set_max_pixels(settings.max_pixels)
    options = CountOptions(
        conf=args.conf, iou=args.iou, slicing=args.slicing, tile_size=args.tile_size, overlap=args.overlap,
        photo_scale=photo_scale, batch_size=args.batch_size, gate=gate_arg(args.gate),
    )  # fmt: skip
    detector = Detector.load(settings.model)
    print(
        f"model {detector.info.version} ({detector.info.source}, sha256 {detector.info.sha256[:12]}) on "
        f"{detector.device} with {detector.runtime}",
        file=sys.stderr,
    )
    photos, missing = find_photos(args.paths, args.recursive)
    run = RunDirectory.open(args.run, run_settings(detector, options), args.new_run) if args.run else None
    for failure in missing:
        print(f"skipped {failure.file}: {failure.error}", file=sys.stderr)
        if run:
            run.add_failure(failure)
    todo, skipped = run.pending(photos) if run else (photos, 0)
    if skipped:
        print(f"resuming {args.run}: {skipped} of {len(photos)} photos already counted", file=sys.stderr)
    records, failures = [], list(missing)
    bar = tqdm(total=len(todo), desc="counting", unit="photo", disable=args.quiet or len(todo) < 2, file=sys.stderr)

    def report(outcome) -> None:
        bar.update(1)
        if isinstance(outcome, PhotoRecord):
            records.append(outcome)
            for warning in outcome.result.warnings:
                tqdm.write(f"warning: {outcome.file}: {warning}", file=sys.stderr)
        else:
            failures.append(outcome)
            tqdm.write(f"skipped {outcome.file}: {outcome.error}", file=sys.stderr)

    with bar:
        if run and args.engine == "ray":
            from detector.ray_engine import count_into_run_with_ray

            count_into_run_with_ray(todo, run, settings.model, options, args.ray_address, args.workers, report)
        elif run:
            count_into_run(detector, todo, run, options, args.save_annotated, report, args.decoders)
        else:
            for outcome in count_photos(detector, todo, options, args.save_annotated, args.decoders):
                report(outcome)
    if run:
        records, failures = run.outcome()
        counts_csv, summary_csv = run.export(records, failures)
        print(f"run {args.run}: {len(records)} photos counted, {len(failures)} failed; {counts_csv}, {summary_csv}",
              file=sys.stderr)  # fmt: skip
    if args.out:
        write_counts(args.out, records, failures)
        print(f"wrote {len(records)} results to {args.out}", file=sys.stderr)
    elif not run:
        _print_table([record.result for record in records])
    if failures:
        print(f"{len(failures)} of {len(photos) + len(missing)} files failed", file=sys.stderr)
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
