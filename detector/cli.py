"""Command line: ``sealion-count PATH... [--out counts.csv|counts.json] ...`` (or ``python -m detector count``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detector.arguments import add_model_arguments, option_message, settings_from
from detector.counting.results import CountResult
from detector.counting.scale import (
    ADULT_FEMALE_LENGTH_PX,
    SEA_LION_REFERENCE,
    ScaleReference,
    scale_from_female_length,
    scale_from_reference_length,
)
from detector.counting.uncertainty import CountUncertainty
from detector.environment import check_torch_pair
from detector.errors import DetectorError
from detector.interrupts import INTERRUPTED_EXIT, Interrupted, StopOnSignal
from detector.logs import quiet_libraries
from detector.settings import (
    DEFAULT_CONF,
    DEFAULT_DECODERS,
    DEFAULT_GATE,
    GATE_CHOICES,
    SLICING_CHOICES,
    CountOptions,
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
    count.add_argument(
        "--out", type=Path,
        help="write counts to a .csv or .json file, '-' for CSV on stdout, or the animals as map points to a "
        ".geojson file (georeferenced rasters) (default: print a table)",
    )  # fmt: skip
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
        help="sea lion versions: how long an adult female is in the photos, in pixels (about "
        f"{ADULT_FEMALE_LENGTH_PX} in a survey original); default: auto from each photo's size",
    )  # fmt: skip
    scale.add_argument(
        "--reference-length", type=float, default=None, metavar="PX",
        help="any version: how long its reference class is in the photos, in pixels (sea lions: adult females; "
        "the manifest's reference_class and reference_length_px, docs/models.md); default: auto",
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
    from detector.geo.cli import add_geo_arguments

    add_geo_arguments(count)  # GeoTIFFs, GeoJSON, site polygons (detector.geo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m detector", description="Count sea lions in photos.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_count_arguments(sub.add_parser("count", help="count animals in photos or folders of photos"))
    from detector.totals.cli import add_survey_parsers

    add_survey_parsers(sub)  # sample, estimate: survey totals from a reviewed sample (detector.totals)
    return parser


def build_count_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sealion-count",
        description="Count Steller sea lions per class in survey photos (files or folders).",
        epilog="Exit code 1 if any photo failed, 2 for a usage or model error.",
    )
    add_count_arguments(parser)
    return parser


def run_count(args: argparse.Namespace, stop: StopOnSignal | None = None) -> int:
    """Count the photos ``args`` name; ``stop``: the signal handlers (none installed when not given)."""
    from tqdm import tqdm

    from detector.counting.model import Detector
    from detector.counting.records import PhotoRecord
    from detector.survey.runs import LocalEngine, RunDirectory, count_photos, find_photos, run_settings

    stop = stop or StopOnSignal()

    photo_scale = args.photo_scale
    if args.female_length is not None:
        try:
            photo_scale = scale_from_female_length(args.female_length)
        except ValueError as exc:
            raise DetectorError(f"--female-length: {exc}.") from None
    if args.engine == "ray" and not args.run:
        raise DetectorError("--engine ray writes into a run directory: add --run DIR.")
    from detector.counting.images import set_max_pixels

    settings = settings_from(args)
    set_max_pixels(settings.max_pixels)
    options = CountOptions(
        conf=args.conf, iou=args.iou, slicing=args.slicing, tile_size=args.tile_size, overlap=args.overlap,
        photo_scale=photo_scale, batch_size=args.batch_size, gate=gate_arg(args.gate),
        reference_length=args.reference_length,
    )  # fmt: skip
    from detector.geo.cli import RasterCounting

    geo = RasterCounting(args)
    note = _Notes(args.quiet)
    photos, missing = find_photos(args.paths, args.recursive)
    if args.run and not args.new_run and photos and not missing:
        complete = _complete_run(args.run, settings.model, options, photos)
        if complete is not None:  # nothing left to count with these settings: the model is not loaded
            print(f"run {args.run} is complete: all {len(photos)} photos already counted", file=sys.stderr)
            run = RunDirectory(args.run)
            records, failures = run.outcome()
            return _finish(
                args, run, records, failures, CountUncertainty.of(complete), note, len(photos), len(missing), geo
            )
    check_torch_pair()
    quiet_libraries(args.quiet)
    detector = Detector.load(settings.model)
    note(
        f"model {detector.info.version} ({detector.info.source}, sha256 {detector.info.sha256[:12]}) on "
        f"{detector.device} with {detector.runtime}"
    )
    _check_scale_flags(args, detector.info.scale_reference)
    unreferenced = detector.scale_reference_warning()
    if unreferenced and options.photo_scale is None:
        print(f"warning: {unreferenced}", file=sys.stderr)  # always, as the warnings per photo
    errors = CountUncertainty.of(detector.weights.version)
    run = RunDirectory.open(args.run, run_settings(detector, options), args.new_run) if args.run else None
    for failure in missing:
        print(f"skipped {failure.file}: {failure.error}", file=sys.stderr)
        if run:
            run.add_failure(failure)
    todo, skipped = run.pending(photos) if run else (photos, 0)
    rasters, todo = geo.split(todo)  # GeoTIFFs and large TIFFs: counted window by window (detector.geo)
    geo.check_geojson([*rasters, *todo])
    geo.check_scale(detector.info, rasters, options)
    if skipped:
        print(f"resuming {args.run}: {skipped} of {len(photos)} photos already counted", file=sys.stderr)  # always
    records, failures = [], list(missing)
    total = len(todo) + len(rasters)
    bar = tqdm(total=total, desc="counting", unit="photo", disable=args.quiet or total < 2, file=sys.stderr)

    def report(outcome) -> None:
        bar.update(1)
        if isinstance(outcome, PhotoRecord):
            records.append(outcome)
            for warning in outcome.result.warnings:
                tqdm.write(f"warning: {outcome.file}: {warning}", file=sys.stderr)
        else:
            failures.append(outcome)
            tqdm.write(f"skipped {outcome.file}: {outcome.error}", file=sys.stderr)
        stop.check()  # this photo's line is written; a signal that came while counting it stops the run here

    stop.counting()
    try:
        if run:
            if args.engine == "ray":
                from detector.survey.ray_engine import RayEngine

                engine = RayEngine(settings.model, args.ray_address, args.workers)
            else:
                engine = LocalEngine(detector, args.decoders)
            engine.count_into_run(todo, run, options, args.save_annotated, report)
            geo.count(detector, rasters, options, lambda outcome: run.record(outcome, report))
        else:
            for outcome in count_photos(detector, todo, options, args.save_annotated, args.decoders):
                report(outcome)
            geo.count(detector, rasters, options, report)
    except (Interrupted, KeyboardInterrupt):
        stop.finishing()
        bar.leave = False  # the bar is cleared: the one line below says where it stopped
        bar.close()
        resume = "; rerun the same command to resume" if run else ""
        print(f"interrupted: {skipped + len(records)} of {len(photos)} photos counted{resume}", file=sys.stderr)
        return INTERRUPTED_EXIT
    finally:
        bar.close()
    stop.finishing()
    if run:
        records, failures = run.outcome()
    return _finish(args, run, records, failures, errors, note, len(photos), len(missing), geo)


def _finish(
    args: argparse.Namespace, run: Any, records: list[Any], failures: list[Any], errors: CountUncertainty,
    note: _Notes, photos: int, missing: int, geo: Any,
) -> int:  # fmt: skip
    """Write the run's files, ``--out`` (``-``: CSV on stdout; a .geojson: the animals as map points) or the table;
    the exit code."""
    from detector.counting.records import write_counts, write_counts_csv_to

    if run:
        records = geo.with_sites(records)  # rasters counted before --sites was given (or changed) get theirs too
        counts_csv, summary_csv = run.export(records, failures, errors)
        note(f"run {args.run}: {len(records)} photos counted, {len(failures)} failed; {counts_csv}, {summary_csv}")
    if geo.write(args.out, records, args.animals_csv):  # --out animals.geojson, --animals-csv (detector.geo)
        written = [p for p in (args.out if geo.geojson else None, args.animals_csv) if p]
        note(f"wrote the animals of {len(records)} results to {', '.join(map(str, written))}")
    if args.out is not None and str(args.out) == "-":
        write_counts_csv_to(sys.stdout, records, failures, errors)
    elif args.out and not geo.geojson:
        write_counts(args.out, records, failures, errors)
        note(f"wrote {len(records)} results to {args.out}")
    elif not args.out and not run:
        _print_table([record.result for record in records], errors, note)
        geo.print_sites(records)
    if failures:
        print(f"{len(failures)} of {photos + missing} files failed", file=sys.stderr)
    if not photos:
        print("no photos found", file=sys.stderr)
        return 1
    return 1 if failures else 0


def _check_scale_flags(args: argparse.Namespace, reference: ScaleReference) -> None:
    """Refuse a scale flag the loaded version cannot use: ``--female-length`` for a version that measures scale by
    another class, ``--reference-length`` for one that names no reference class."""
    if args.female_length is not None and reference.class_name != SEA_LION_REFERENCE.class_name:
        what = (
            f"its reference class is {reference.class_name}" if reference.class_name else "it names no reference class"
        )
        fix = "--reference-length PX" if reference.class_name else "--photo-scale S"
        raise DetectorError(f"--female-length measures adult female sea lions, but {what}: use {fix} instead.")
    if args.reference_length is not None:
        try:
            scale_from_reference_length(args.reference_length, reference)
        except ValueError as exc:
            raise DetectorError(f"--reference-length: {exc}.") from None


def _complete_run(folder: Path, model: Any, options: CountOptions, photos: list[Any]) -> Any | None:
    """The model version (manifest entry) when run ``folder`` already holds every photo, unchanged, counted with the
    settings these arguments give; None when anything is left to count or the settings may differ (the caller then
    loads the model and :meth:`RunDirectory.open` decides). Resolves and checks the weights but loads no network."""
    from types import SimpleNamespace

    from detector.counting.model import Detector, select_device
    from detector.counting.pipeline import SlicedCount
    from detector.survey.runs import RUN_FORMAT, RUN_SETTINGS, RunDirectory, run_settings
    from detector.versions.hub import resolve_weights
    from detector.versions.runtimes import choose_runtime

    saved_path = folder / RUN_SETTINGS
    if not saved_path.is_file() or RunDirectory(folder).pending(photos)[0]:
        return None
    weights = resolve_weights(model)
    version = weights.version
    if not version.class_names or not (options.tile_size or version.imgsz):
        return None  # known only once the network is loaded
    planned = SimpleNamespace(
        info=SimpleNamespace(version=version.name, sha256=weights.sha256, greyscale_input=version.greyscale_input,
                             class_conf=dict(version.class_conf), class_names=tuple(version.class_names),
                             reference_class=version.scale_reference.class_name),
        runtime=choose_runtime(model.runtime, version, select_device(model.device)),
        class_names=tuple(version.class_names), imgsz=version.imgsz,
    )  # fmt: skip
    planned.pipeline = SlicedCount(None, planned.info, "")  # type: ignore[arg-type]  (thresholds only: no network)
    planned.thresholds = lambda options: Detector.thresholds(planned, options)  # type: ignore[arg-type]
    wanted = {"format": RUN_FORMAT, **run_settings(planned, options)}
    return version if json.loads(saved_path.read_text()) == wanted else None


class _Notes:
    """What the command is doing, on stderr; nothing with ``--quiet`` (warnings and errors are printed anyway)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr)


def _print_table(results: list[CountResult], errors: CountUncertainty, note: _Notes) -> None:
    """The counts as a table on stdout, each with its typical error on that photo (``5±3``); a last row gives how
    each class's error is set, ``!`` marking a class the version counts no better than guessing the mean
    (explained on stderr)."""
    if not results:
        return
    names = results[0].class_names
    header = ["file", *names, "total"]

    def cell(result: CountResult, name: str) -> str:
        error = errors.photo_error(name, result.counts)
        return f"{result.counts[name]}" + (f"±{error:.0f}" if error is not None else "")

    rows = [[Path(r.source or "").name, *(cell(r, n) for n in names), str(r.total)] for r in results]
    if errors.known:
        flagged = errors.worse_than_mean(names)
        rows.append(["typical error", *(f"{errors.rule(n)}{'!' * (n in flagged)}" for n in names), ""])
        how = "max(floor, share of the photo's total count)" if errors.scales else "one number per class, every photo"
        note(
            f"typical error: each class's count error per photo on photos model {errors.version} never saw ({how})"
            + (f"; ! = no better than guessing the mean ({', '.join(flagged)})" if flagged else "")
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if getattr(args, "handler", None):  # sample / estimate: no model, no torch
        from detector.totals.cli import run

        return run(args)
    stop = StopOnSignal().install()
    try:
        return run_count(args, stop)
    except DetectorError as exc:
        print(f"error: {option_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before counting began (loading the model): nothing was counted
        print("interrupted before counting began", file=sys.stderr)
        return INTERRUPTED_EXIT


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m detector count ...``."""
    return _run(build_parser().parse_args(argv))


def count_main(argv: Sequence[str] | None = None) -> int:
    """``sealion-count ...`` (the console script)."""
    return _run(build_count_parser().parse_args(argv))
