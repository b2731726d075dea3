"""Coverage of the survey totals on real data: the NOAA photos with official counts, those counts as the truth.

    python -m benchmarks.survey_totals [--data DIR] [--run DIR] [--docs-only]

Counts the sample's photos with official counts (one file per photo id: the full-resolution raw photo, else the
full-resolution dotted copy, else the 4x downsampled raw photo) with the default model into a run directory, then
takes every sample the review design can draw (``detector.totals.draw_sample``: each stratum a simple random sample,
so all combinations are equally likely), "reviews" it by revealing the official counts of its photos, estimates, and
reports how often the 95 % interval covers the true total, per class, and how far the estimate lands from it against
the raw model sum.
Writes ``benchmarks/results/survey_totals.json`` and the table between the markers in ``docs/survey.md``
(``tests/test_totals_coverage.py`` checks that the table is what this computes for the shipped default model).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from detector.counting.records import PhotoRecord
from detector.totals.estimation import ALL, ALL_CLASSES, estimate_from_sample
from detector.totals.sampling import DEFAULT_STRATA, ReviewSample, draw_sample

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULT = REPO_ROOT / "benchmarks" / "results" / "survey_totals.json"
DOCS = REPO_ROOT / "docs" / "survey.md"
BEGIN, END = "<!-- survey-totals:begin -->", "<!-- survey-totals:end -->"
# The NOAA sample: SEALION_NOAA_DATA, else ../shared next to the checkout (as the tests find it).
SHARED_DATA = Path(os.environ.get("SEALION_NOAA_DATA") or REPO_ROOT.parent / "shared" / "data" / "noaa-sealions")
# (photos reviewed of the population, method); the coverage test holds the 90-97 % band at TESTED
DESIGNS = ((6, "difference"), (8, "difference"), (10, "difference"), (10, "ratio"))
TESTED = (10, "difference")


def noaa_photos(root: Path) -> dict[str, Path]:
    """Photo id → the one file a survey run counts for it (the sharpest raw-looking copy there is)."""
    root = Path(root)
    found: dict[str, Path] = {}
    for folder in ("downsampled/Train", "fullres-dotted", "fullres-raw"):  # later folders win
        for path in sorted((root / folder).glob("*.jpg")):
            found[path.stem] = path
    return found


def official_counts(root: Path) -> dict[str, dict[str, int]]:
    """``counts.csv``: photo id → class → count."""
    import csv

    with (Path(root) / "counts.csv").open(newline="") as handle:
        return {row.pop("train_id"): {k: int(v) for k, v in row.items()} for row in csv.DictReader(handle)}


def count_run(root: Path, photos_dir: Path, run_dir: Path, decoders: int = 1) -> list[PhotoRecord]:
    """Link the photos with official counts into ``photos_dir`` and count them into ``run_dir`` with the default
    model (the product's survey run)."""
    from detector.counting.model import Detector
    from detector.settings import CountOptions
    from detector.survey.runs import LocalEngine, RunDirectory, RunSettingsError, find_photos, run_settings

    truth = official_counts(root)
    photos_dir.mkdir(parents=True, exist_ok=True)
    for photo_id, path in noaa_photos(root).items():
        if photo_id in truth and not (photos_dir / path.name).exists():
            (photos_dir / path.name).symlink_to(path.resolve())
    detector = Detector.load()
    options = CountOptions()
    photos, _ = find_photos([photos_dir], recursive=False)
    settings = run_settings(detector, options)
    try:
        run = RunDirectory.open(run_dir, settings)
    except RunSettingsError as exc:  # counted with other defaults (a new model, the gate): count again, keep the old
        print(f"{exc} Counting anew; the old run is kept inside it.", file=sys.stderr)
        run = RunDirectory.open(run_dir, settings, new_run=True)
    todo, _ = run.pending(photos)
    LocalEngine(detector, decoders).count_into_run(todo, run, options)
    return run.outcome()[0]


def all_samples(sample: ReviewSample) -> list[ReviewSample]:
    """Every sample the design of ``sample`` can draw (same strata and sizes), each equally likely."""
    strata = sample.strata()
    choices = []
    for members in strata.values():
        size = sum(p.sampled for p in members)
        choices.append([set(c) for c in itertools.combinations(range(len(members)), size)])
    samples = []
    for combo in itertools.product(*choices):
        frame = [
            replace(p, sampled=i in chosen)
            for members, chosen in zip(strata.values(), combo, strict=True)
            for i, p in enumerate(members)
        ]
        samples.append(replace(sample, frame=tuple(frame)))
    return samples


def coverage(
    records: Sequence[PhotoRecord],
    truth: Mapping[str, Mapping[str, int]],
    photos: int,
    method: str,
    strata: int = DEFAULT_STRATA,
) -> dict[str, Any]:
    """Coverage of the 95 % interval and errors of the estimate and the raw sum, over every sample of the design."""
    class_names = list(records[0].result.class_names)
    names = [*class_names, ALL_CLASSES]
    model = {r.file: r.result.counts for r in records}

    def total(counts: Mapping[str, Mapping[str, int]], name: str) -> int:
        return sum(sum(c.values()) if name == ALL_CLASSES else c[name] for c in counts.values())

    design = draw_sample(records, photos, seed=0, strata=strata)
    samples = all_samples(design)
    hits = dict.fromkeys(names, 0)
    errors: dict[str, list[float]] = {name: [] for name in names}
    half: dict[str, list[float]] = {name: [] for name in names}
    for sample in samples:
        reviewed = {p.file: truth[p.file] for p in sample.sampled}
        estimate = estimate_from_sample(sample, model, reviewed, class_names, method)
        for name in names:
            row = estimate.row(ALL, name)
            hits[name] += row.ci_low <= total(truth, name) <= row.ci_high
            errors[name].append(row.estimate - total(truth, name))
            half[name].append((row.ci_high - row.ci_low) / 2)
    classes = {}
    for name in names:
        err = np.array(errors[name])
        classes[name] = {
            "truth": total(truth, name),
            "raw": total(model, name),
            "raw_error": total(model, name) - total(truth, name),
            "coverage": hits[name] / len(samples),
            "mean_error": float(err.mean()),
            "mean_abs_error": float(np.abs(err).mean()),
            "rmse": float(math.sqrt((err**2).mean())),
            "median_half_width": float(np.median(half[name])),
        }
    strata = [
        {"stratum": s, "photos": len(m), "reviewed": sum(p.sampled for p in m),
         "model_totals": [min(p.model_total for p in m), max(p.model_total for p in m)]}
        for s, m in design.strata().items()
    ]  # fmt: skip
    return {"photos": photos, "method": method, "samples": len(samples), "strata": strata, "classes": classes}


def run_all(records: Sequence[PhotoRecord], truth: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """Every design of :data:`DESIGNS` with every method, and which model counted."""
    model = records[0].result.model
    return {
        "model": {"version": model.version, "sha256": model.sha256, "runtime": records[0].result.runtime},
        "population": len(records),
        "designs": [coverage(records, truth, n, m) for n, m in DESIGNS],
    }


def table(data: Mapping[str, Any]) -> str:
    """The Markdown of docs/survey.md's coverage section (between the markers)."""
    model = data["model"]
    lines = [
        f"Model {model['version']} (sha256 {model['sha256'][:12]}, {model['runtime']}), {data['population']} photos; "
        "every sample the design can draw, each equally likely. Coverage: share of samples whose 95 % interval "
        "holds the official total. Error: estimate − truth, mean absolute over the samples; the raw model sum's "
        "error for comparison.",
        "",
        "| reviewed | method | samples | class | truth | raw sum (error) | coverage | mean error | mean abs error "
        "| median ± |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for design in data["designs"]:
        for name, c in design["classes"].items():
            lines.append(
                f"| {design['photos']} | {design['method']} | {design['samples']} | {name} | {c['truth']} | "
                f"{c['raw']} ({c['raw_error']:+d}) | {c['coverage']:.1%} | {round(c['mean_error'], 1) + 0.0:+.1f} | "
                f"{c['mean_abs_error']:.1f} | {c['median_half_width']:.1f} |"
            )
    return "\n".join(lines)


def write_docs(data: Mapping[str, Any], docs: Path = DOCS) -> None:
    text = docs.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    docs.write_text(f"{text[:start]}\n{table(data)}\n{text[end:]}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.survey_totals", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the NOAA sample folder (default %(default)s)")
    parser.add_argument(
        "--run", type=Path, default=Path(tempfile.gettempdir()) / "sealion-survey-totals",
        help="where the photos are linked and counted (a resumable run; default %(default)s)",
    )  # fmt: skip
    parser.add_argument("--docs-only", action="store_true", help=f"rewrite the docs table from {RESULT.name} only")
    args = parser.parse_args(argv)
    if args.docs_only:
        data = json.loads(RESULT.read_text())
    else:
        records = count_run(args.data, args.run / "photos", args.run / "run")
        truth_by_id = official_counts(args.data)
        data = run_all(records, {r.file: truth_by_id[Path(r.file).stem] for r in records})
        RESULT.write_text(json.dumps(data, indent=1) + "\n")
    write_docs(data)
    print(table(data))
    print(f"wrote {RESULT} and the table in {DOCS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
