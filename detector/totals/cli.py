"""``python -m detector sample|estimate RUN_DIR ...`` and ``sealion-survey sample|estimate ...``: survey totals."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from detector.errors import DetectorError
from detector.totals.estimation import METHODS


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished run (sealion-count ... --run DIR)")
    parser.add_argument(
        "--photos", type=int, help="how many photos to review (docs/survey.md: how many for a precision)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed, recorded with the sample (default %(default)s)"
    )
    parser.add_argument("--strata", type=int, default=3, help="model-count groups per folder, besides its take-all "
                        "stratum of the densest photos (default %(default)s)")  # fmt: skip
    parser.add_argument("--new", action="store_true", help="replace a sample drawn before (its reviews stay usable "
                        "only where its photos are drawn again)")  # fmt: skip
    parser.add_argument("--copy", type=Path, metavar="DIR", help="copy the sampled photos here, to upload for review")
    parser.add_argument("--doubt", type=int, metavar="K", help="also list the K photos the model is least sure of "
                        "(review-doubt.csv): for choosing training photos, never for the totals")  # fmt: skip
    parser.set_defaults(handler=run_sample)


def add_estimate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run whose sample was reviewed")
    parser.add_argument("--reviews", type=Path, nargs="+", required=True, metavar="SOURCE",
                        help="the app's reviews folder, exports: COCO .json, dots table .csv, VIAME .csv")  # fmt: skip
    parser.add_argument("--method", choices=METHODS, default="difference", help="estimator (default %(default)s)")
    parser.add_argument("--sample-reviewed", action="store_true",
                        help="every sampled photo was reviewed: one without rows in a dots table / VIAME CSV had "
                        "no animals")  # fmt: skip
    parser.add_argument("--confidence", type=float, default=0.95, help="interval level (default %(default)s)")
    parser.set_defaults(handler=run_estimate)


def add_survey_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``sample`` and ``estimate`` verbs on a subparser set (``python -m detector``, ``sealion-survey``)."""
    add_sample_arguments(sub.add_parser("sample", help="draw the photos to review from a finished run"))
    add_estimate_arguments(sub.add_parser("estimate", help="survey totals with intervals from the reviewed sample"))


def run_sample(args: argparse.Namespace) -> int:
    from detector.totals.api import read_run
    from detector.totals.sampling import (
        DOUBT_CSV,
        FRAME_CSV,
        ReviewSample,
        copy_sample,
        doubt_list,
        draw_sample,
        drawn_at,
        write_doubt_csv,
    )

    records, settings = read_run(args.run_dir)
    if not records:
        raise DetectorError(f"{args.run_dir}: no counted photos in the run yet")
    if args.photos is None and args.copy is None and args.doubt is None:
        raise DetectorError("say what to do: --photos N draws the review sample (--copy DIR, --doubt K)")
    if args.photos is not None:
        if (args.run_dir / FRAME_CSV).is_file() and not args.new:
            raise DetectorError(
                f"{args.run_dir} has a review sample already ({FRAME_CSV}): review it, or add --new to draw another"
            )
        sample = draw_sample(records, args.photos, args.seed, args.strata)
        path = sample.write(args.run_dir, {"drawn_at": drawn_at(), "run_model": settings.get("model")})
        strata = sample.strata()
        print(f"drew {len(sample.sampled)} of {len(records)} photos in {len(strata)} strata into {path}",
              file=sys.stderr)  # fmt: skip
        for name in strata:
            print(f"  {sample.describe_stratum(name)}: {sum(p.sampled for p in strata[name])} to review",
                  file=sys.stderr)  # fmt: skip
        for photo in sample.sampled:
            print(f"{photo.file}\t{photo.stratum}\t{photo.inclusion_probability:.3f}")
    if args.copy is not None:
        copied = copy_sample(ReviewSample.read(args.run_dir), args.copy)
        print(f"copied {len(copied)} sampled photos to {args.copy}: upload them in the app's Review tab",
              file=sys.stderr)  # fmt: skip
    if args.doubt is not None:
        doubts = doubt_list(records, args.doubt)
        path = write_doubt_csv(args.run_dir / DOUBT_CSV, doubts)
        print(f"wrote the {len(doubts)} photos the model is least sure of to {path} (for training; the totals need "
              "the probability sample)", file=sys.stderr)  # fmt: skip
    return 0


def run_estimate(args: argparse.Namespace) -> int:
    from detector.totals.api import ESTIMATE_CSV, estimate_totals, write_estimate_csv
    from detector.totals.report import write_report

    if not 0 < args.confidence < 1:
        raise DetectorError(f"--confidence must be between 0 and 1, got {args.confidence}")
    totals = estimate_totals(args.run_dir, args.reviews, args.method, args.sample_reviewed, args.confidence)
    for note in totals.notes:
        print(f"note: {note}", file=sys.stderr)
    csv_path = write_estimate_csv(args.run_dir / ESTIMATE_CSV, totals.estimate)
    markdown, chart = write_report(args.run_dir, totals, args.run_dir.name)
    header = ["folder", "class", "raw", "estimate", f"{args.confidence:.0%} interval", "reviewed"]
    rows = [
        [r.folder, r.class_name, str(r.raw_total), f"{r.estimate:.0f}", f"{r.ci_low:.0f} - {r.ci_high:.0f}",
         f"{r.reviewed}/{r.photos}"]
        for r in totals.estimate.rows
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"wrote {csv_path}, {markdown}, {chart}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sealion-survey",
        description="Survey totals with confidence intervals: draw photos to review from a run, then estimate.",
        epilog="Exit code 2 for a usage error, too few reviews or reviews that do not match the run.",
    )
    add_survey_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


def run(args: argparse.Namespace) -> int:
    """Run a ``sample`` / ``estimate`` command; errors are one line on stderr and exit code 2."""
    try:
        return args.handler(args)
    except DetectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """``sealion-survey ...`` (the console script)."""
    return run(build_parser().parse_args(argv))
