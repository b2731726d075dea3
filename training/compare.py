"""Compare cross-validation runs of the same folds ("arms"), per class, and keep the docs' tables generated.

    python -m training.compare --arm "COCO=/work/v5/screen-a-coco" --arm "seals=/work/v5/screen-b-eseals" \\
        --device "2 CPU cores" --out benchmarks/results/v5_screen.json --docs docs/training.md --section v5-screen
    # the docs region again from the committed summary, or check that it is still what the summary renders:
    python -m training.compare --summary benchmarks/results/v5_screen.json --docs docs/training.md --section v5-screen
    python -m training.compare --summary benchmarks/results/v5_screen.json --docs docs/training.md \\
        --section v5-screen --check

Each arm is a folder written by ``python -m training.evaluate --cv`` (``cv_metrics.json``; its ``calibration.json``
too where ``--calibrate`` ran). The arms must have counted the same photos, each in the same fold, against the same
truth. Per arm and class: MAE, RMSE and bias of the out-of-fold counts; the mean per-class RMSE (the competition
metric) and its ratio to predicting the training folds' mean count; the total-count error; training time; each
fold's mean RMSE; and the pups counted on every dense colony (a photo with at least ``--dense-pups`` pups) by the
fold model that never saw it. ``--out`` writes the summary (a :class:`~training.records.Comparison`), stdout gets
its Markdown tables, and ``--docs FILE --section NAME`` puts them between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->`` in FILE.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from training.evaluate import count_metrics
from training.io import TrainingError
from training.records import (
    CV_REPORT,
    ArmCalibration,
    ArmSummary,
    Calibration,
    ClassError,
    Comparison,
    CVReport,
    DenseColony,
    PhotoCounts,
)

DENSE_PUPS = 100  # a photo with at least this many pups (in truth) is a dense colony
PUPS = "pups"  # the class whose dense colonies are reported (a dataset without it has no dense-colony rows)
DIGITS = 4  # the summary's floats are rounded to this many decimals (it stays small and diffs stay readable)


class Arm(NamedTuple):
    """One cross-validation run to compare: its name, its folder (for messages), its report and calibration."""

    name: str
    cv_dir: Path
    report: CVReport
    calibration: Calibration | None = None


# --- the computation (records in, records out) --------------------------------------------------------------------
def _photo_key(photo_id: str) -> tuple[int, int, str]:
    return (0, int(photo_id), "") if photo_id.isdigit() else (1, 0, photo_id)


def _rows(arm: Arm) -> dict[str, PhotoCounts]:
    """The arm's out-of-fold rows by photo id; a report without them, or without their folds, cannot be compared."""
    where = Path(arm.cv_dir) / CV_REPORT
    if not arm.report.per_photo:
        raise TrainingError(f"{where} lists no per-photo counts: rerun python -m training.evaluate --cv (writes them)")
    rows: dict[str, PhotoCounts] = {}
    for row in arm.report.per_photo:
        if row.fold is None:
            raise TrainingError(
                f"{where}: photo {row.photo_id} has no fold (a report of before folds were recorded): "
                "rerun python -m training.evaluate --cv into that folder (trained folds are reused)"
            )
        if row.photo_id in rows:
            raise TrainingError(f"{where} counts photo {row.photo_id} twice: rerun python -m training.evaluate --cv")
        rows[row.photo_id] = row
    return rows


def check_comparable(arms: Sequence[Arm]) -> None:
    """Raise a :class:`TrainingError` unless every arm counted the same photos, each in the same fold and against the
    same truth, and every calibration is of its arm's photos. The error names the arm and the photos."""
    if not arms:
        raise TrainingError("no arms to compare: give --arm NAME=CV_DIR at least once")
    names = [arm.name for arm in arms]
    if len(set(names)) != len(names):
        raise TrainingError(f"arm names must differ, got {names}")
    first, reference = arms[0], _rows(arms[0])
    for arm in arms:
        rows = _rows(arm)
        problems = []
        if only := sorted(set(reference) - set(rows), key=_photo_key):
            problems.append(f"photos only in '{first.name}': {', '.join(only)}")
        if only := sorted(set(rows) - set(reference), key=_photo_key):
            problems.append(f"photos only in '{arm.name}': {', '.join(only)}")
        shared = sorted(set(rows) & set(reference), key=_photo_key)
        if moved := [f"{p} ({reference[p].fold} there, {rows[p].fold} here)" for p in shared
                     if rows[p].fold != reference[p].fold]:  # fmt: skip
            problems.append(f"photos in another fold: {', '.join(moved)}")
        if classes_of(arm) != classes_of(first):
            problems.append(f"classes {classes_of(arm)} here, {classes_of(first)} there")
        if other := [p for p in shared if rows[p].truth != reference[p].truth]:
            problems.append(f"photos with other true counts: {', '.join(other)}")
        if problems:
            raise TrainingError(
                f"arm '{arm.name}' ({Path(arm.cv_dir) / CV_REPORT}) is not comparable with arm '{first.name}' "
                f"({Path(first.cv_dir) / CV_REPORT}): {'; '.join(problems)}. Compare cross-validations of the same "
                "dataset's folds (python -m training.evaluate --cv on the same photos.json and splits)"
            )
        if arm.calibration is not None and set(arm.calibration.photos) != set(rows):
            raise TrainingError(
                f"{Calibration.file_in(arm.cv_dir)} is of other photos than {Path(arm.cv_dir) / CV_REPORT}: rerun "
                f"python -m training.evaluate --dataset DS --calibrate {arm.cv_dir}"
            )


def classes_of(arm: Arm) -> list[str]:
    """The arm's classes, in its dataset's order (as ``training.evaluate`` wrote its metrics)."""
    return list(arm.report.cv.per_class)


def _round(value: float) -> float:
    return round(float(value), DIGITS)


def _class_errors(
    truth: np.ndarray, predicted: np.ndarray, classes: Sequence[str]
) -> tuple[dict[str, ClassError], float, float]:
    """Per-class errors, the mean per-class RMSE and the total-count error of (photos, classes) arrays."""
    metrics = count_metrics(truth, predicted, classes)
    per_class = {
        name: ClassError(mae=_round(e.mae), rmse=_round(e.rmse), bias=_round(e.bias))
        for name, e in metrics.per_class.items()
    }
    return per_class, _round(metrics.competition_rmse), _round(metrics.total_relative_error)


def _hours(seconds: Sequence[float | None], folds: int) -> float | None:
    """Seconds summed into hours; None unless every fold's are known."""
    known = [s for s in seconds if s is not None]
    return _round(sum(known) / 3600) if known and len(known) == len(seconds) == folds else None


def summarize_arm(arm: Arm, dense_pups: int = DENSE_PUPS) -> ArmSummary:
    """One arm's numbers (see the module's docstring), from its report and calibration."""
    report, rows = arm.report, list(_rows(arm).values())
    truth, predicted = np.array([r.truth for r in rows]), np.array([r.predicted for r in rows])
    classes = classes_of(arm)
    per_class, competition, total_error = _class_errors(truth, predicted, classes)
    fold_rmse, fold_class_rmse = {}, {}
    for fold in dict.fromkeys([*report.folds, *(r.fold for r in rows)]):
        chosen = [i for i, r in enumerate(rows) if r.fold == fold]
        if chosen:
            errors, fold_rmse[str(fold)], _ = _class_errors(truth[chosen], predicted[chosen], classes)
            fold_class_rmse[str(fold)] = {name: e.rmse for name, e in errors.items()}
    pups = classes.index(PUPS) if PUPS in classes else None
    dense = [
        DenseColony(photo_id=r.photo_id, fold=str(r.fold), true_pups=r.truth[pups], counted_pups=r.predicted[pups])
        for r in sorted(rows, key=lambda r: _photo_key(r.photo_id))
        if pups is not None and r.truth[pups] >= dense_pups
    ]
    calibration = None
    if (cal := arm.calibration) is not None:
        calibration = ArmCalibration(
            uniform_conf=cal.uniform_conf, class_conf=cal.class_conf, calibration_helps=cal.calibration_helps,
            calibrated_rmse=_round(cal.metrics_calibrated_other_folds.competition_rmse), sweep=cal.sweep,
            confusion=cal.confusion,
        )  # fmt: skip
    baseline = report.baseline_training_mean.competition_rmse
    return ArmSummary(
        name=arm.name,
        cv_dir=str(arm.cv_dir),
        model=report.model,
        init=report.init,
        conf=report.conf,
        epochs_per_fold=report.epochs_per_fold,
        training_hours=_hours([t.train_wall_time_s for t in report.fold_training.values()], len(fold_rmse)),
        cv_hours=_hours(list(report.fold_seconds.values()), len(fold_rmse)),
        per_class=per_class,
        competition_rmse=competition,
        ratio_to_baseline=_round(competition / baseline) if baseline else None,
        total_count_error=total_error,
        fold_rmse=fold_rmse,
        fold_class_rmse=fold_class_rmse,
        chip_map50=_round(report.mean_chip_map50),
        dense_colonies=dense,
        calibration=calibration,
    )


def compare(arms: Sequence[Arm], device: str = "", dense_pups: int = DENSE_PUPS) -> Comparison:
    """The comparison of comparable arms (:func:`check_comparable`); ``device``: what trained them, in words."""
    check_comparable(arms)
    baselines = {arm.name: arm.report.baseline_training_mean.competition_rmse for arm in arms}
    if not np.allclose(list(baselines.values()), next(iter(baselines.values())), rtol=1e-9, atol=1e-9):
        raise TrainingError(
            f"the arms' training-mean baselines differ ({baselines}) although their folds match: one cv_metrics.json "
            "was written from another dataset's training photos; rerun its python -m training.evaluate --cv"
        )
    folds: dict[str, list[str]] = {}
    for row in arms[0].report.per_photo:
        folds.setdefault(str(row.fold), []).append(row.photo_id)
    return Comparison(
        device=device,
        classes=classes_of(arms[0]),
        folds={name: sorted(ids, key=_photo_key) for name, ids in folds.items()},
        dense_pups=dense_pups,
        baseline=arms[0].report.baseline_training_mean,
        arms=[summarize_arm(arm, dense_pups) for arm in arms],
    )


class FoldDifference(NamedTuple):
    """One class (or the mean, ``MEAN``) of an arm against the reference arm: RMSE differences (arm − reference)."""

    overall: float  # over all photos
    per_fold: dict[str, float]  # each fold's, on its own photos
    mean: float  # of the per-fold differences
    spread: float  # their standard deviation (ddof 1; 0 with one fold)

    @property
    def verdict(self) -> str:
        """'worse' or 'better' beyond the folds' spread (the mean fold difference larger than its standard
        deviation), else 'within the spread'."""
        if abs(self.mean) > self.spread:
            return "worse" if self.mean > 0 else "better"
        return "within the spread"


MEAN = "mean RMSE"


def fold_differences(arm: ArmSummary, reference: ArmSummary, classes: Sequence[str]) -> dict[str, FoldDifference]:
    """Per class and for the mean per-class RMSE: ``arm`` minus ``reference``, overall and fold by fold, paired on
    the same folds (empty where a summary has no per-fold class RMSE: one written before they were recorded)."""
    folds = [f for f in reference.fold_class_rmse if f in arm.fold_class_rmse]
    if not folds:
        return {}

    def difference(overall: float, per_fold: dict[str, float]) -> FoldDifference:
        values = np.array(list(per_fold.values()))
        spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        return FoldDifference(_round(overall), per_fold, _round(values.mean()), _round(spread))

    result = {
        name: difference(
            arm.per_class[name].rmse - reference.per_class[name].rmse,
            {f: _round(arm.fold_class_rmse[f][name] - reference.fold_class_rmse[f][name]) for f in folds},
        )
        for name in classes
    }
    result[MEAN] = difference(
        arm.competition_rmse - reference.competition_rmse,
        {f: _round(arm.fold_rmse[f] - reference.fold_rmse[f]) for f in folds},
    )
    return result


# --- Markdown -----------------------------------------------------------------------------------------------------
def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _errors(e: ClassError) -> str:
    return f"{e.rmse:.2f} ({e.mae:.2f}, {round(e.bias, 2) + 0.0:+.2f})"  # + 0.0: no "-0.00"


def _init(arm: ArmSummary) -> str:
    return f"`{Path(arm.init).name}`" if arm.init else "random"


def _hours_text(hours: float | None) -> str:
    return "—" if hours is None else f"{hours:.2f}"


def _ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}x"


def _main_table(c: Comparison) -> str:
    arms, base = c.arms, c.baseline
    device = f" ({c.device})" if c.device else ""
    rows = [
        ["start (`--init`)", *(_init(a) for a in arms), ""],
        ["epochs per fold", *(str(a.epochs_per_fold) for a in arms), ""],
        [f"training hours, all folds{device}", *(_hours_text(a.training_hours) for a in arms), ""],
        ["CV hours (training, counting, chip mAP)", *(_hours_text(a.cv_hours) for a in arms), ""],
        ["counted at conf", *(f"{a.conf:g}" for a in arms), ""],
        *([name, *(_errors(a.per_class[name]) for a in arms), _errors(base.per_class[name])] for name in c.classes),
        ["**mean RMSE (competition metric)**", *(f"**{a.competition_rmse:.2f}**" for a in arms),
         f"{base.competition_rmse:.2f}"],
        ["× the training mean's", *(_ratio(a.ratio_to_baseline) for a in arms), "1.00x"],
        ["total-count error (Σ\\|error\\| / Σ animals)", *(f"{a.total_count_error:.1%}" for a in arms),
         f"{base.total_relative_error:.1%}"],
        [f"mean RMSE per fold ({' / '.join(c.folds)})",
         *(" / ".join(f"{a.fold_rmse[f]:.2f}" if f in a.fold_rmse else "—" for f in c.folds) for a in arms), ""],
        ["mAP@0.5, validation chips", *(f"{a.chip_map50:.3f}" for a in arms), ""],
        ["mean RMSE, per-class thresholds chosen on the other folds",
         *(f"{a.calibration.calibrated_rmse:.2f}" if a.calibration else "—" for a in arms), ""],
    ]  # fmt: skip
    return _table(["", *(a.name for a in arms), "training mean"], rows)


def _lead(c: Comparison) -> str:
    photos = sum(len(ids) for ids in c.folds.values())
    folds = "; ".join(f"{name}: {', '.join(ids)}" for name, ids in c.folds.items())
    plural = "s" if len(c.folds) != 1 else ""
    return (
        f"{photos} photos in {len(c.folds)} fold{plural} ({folds}); every photo counted once, by the fold model "
        "that never saw it, next to predicting the training folds' mean count. Per class: RMSE (MAE, bias = mean "
        "counted − true)."
    )


def _dense_table(c: Comparison) -> str:
    reference = c.arms[0].dense_colonies
    if not reference:
        return f"No photo holds {c.dense_pups} or more pups."
    counted = {a.name: {d.photo_id: d.counted_pups for d in a.dense_colonies} for a in c.arms}
    rows = [
        [f"{d.photo_id} ({d.fold})", str(d.true_pups),
         *(f"{counted[a.name][d.photo_id]} ({counted[a.name][d.photo_id] / d.true_pups:.0%})" for a in c.arms)]
        for d in reference
    ]  # fmt: skip
    intro = (
        f"Pups counted on each dense colony (at least {c.dense_pups} pups in truth) by the fold model that never saw "
        "it (the goal: at least half):"
    )
    return intro + "\n\n" + _table(["photo (fold)", "true pups", *(a.name for a in c.arms)], rows)


def _sweep_table(arm: ArmSummary, classes: Sequence[str]) -> str:
    sweep = arm.calibration.sweep if arm.calibration else {}
    if not sweep:
        return ""
    rows = [
        [threshold, f"{values['mean']:.2f}", *(f"{values[n]:.2f}" for n in classes)]
        for threshold, values in sorted(sweep.items(), key=lambda item: float(item[0]))
    ]
    intro = f"**{arm.name}**: out-of-fold count RMSE at uniform thresholds (`calibration.json`'s sweep):"
    return intro + "\n\n" + _table(["threshold", "mean RMSE", *classes], rows)


def _confusion_table(arm: ArmSummary) -> str:
    table = arm.calibration.confusion if arm.calibration else None
    if table is None:
        return ""
    names = [*table.classes, "no dot"]
    rows = [
        [name, *(("—" if name == "no dot" and j == len(table.classes) else str(n)) for j, n in enumerate(counts))]
        for name, counts in zip(names, table.counts, strict=True)
    ]
    intro = (
        f"**{arm.name}**: out-of-fold detections at its thresholds matched to the dots ({table.photos} photos, a pair "
        f"within {table.radius}); rows the true class, columns the class detected:"
    )
    return intro + "\n\n" + _table(["true \\ detected", *table.classes, "missed"], rows)


def _difference_table(c: Comparison) -> str:
    reference, others = c.arms[0], c.arms[1:]
    differences = {a.name: fold_differences(a, reference, c.classes) for a in others}
    if not others or not all(differences.values()):
        return ""
    folds = list(next(iter(differences[others[0].name].values())).per_fold)

    def cell(d: FoldDifference) -> str:
        per_fold = " / ".join(f"{d.per_fold[f]:+.2f}" for f in folds)
        verdict = f"**{d.verdict}**" if d.verdict != "within the spread" else d.verdict
        return f"{d.overall:+.2f} ({per_fold}; {d.mean:+.2f} ± {d.spread:.2f}): {verdict}"

    rows = [[name, *(cell(differences[a.name][name]) for a in others)] for name in [*c.classes, MEAN]]
    intro = (
        f"Each arm against **{reference.name}**, per class: RMSE difference over all photos (each fold's, "
        f"{' / '.join(folds)}; their mean ± standard deviation). Worse or better **beyond the folds' spread** when "
        "the mean fold difference is larger than its standard deviation:"
    )
    return intro + "\n\n" + _table(["class", *(a.name for a in others)], rows)


def render(comparison: Comparison) -> str:
    """The comparison as Markdown: the arms side by side, each arm against the first per class and fold, the dense
    colonies' pups, and each calibrated arm's uniform threshold sweep and confusion between classes."""
    parts = [_lead(comparison), _main_table(comparison), _difference_table(comparison), _dense_table(comparison)]
    for arm in comparison.arms:
        parts += [_sweep_table(arm, comparison.classes), _confusion_table(arm)]
    return "\n\n".join(part for part in parts if part)


# --- the docs region ----------------------------------------------------------------------------------------------
def markers(section: str) -> tuple[str, str]:
    return f"<!-- {section}:start -->", f"<!-- {section}:end -->"


def _split(text: str, section: str, source: str | Path) -> tuple[str, str, str]:
    start, end = markers(section)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise TrainingError(
            f"{source} has no {start} ... {end} region (each marker once, start first): put the two markers on "
            "their own lines where the generated tables go, then rerun"
        )
    before, rest = text.split(start, 1)
    inside, after = rest.split(end, 1)
    return before, inside, after


def replace_region(text: str, section: str, content: str, source: str | Path = "the document") -> str:
    """``text`` with the region of ``section`` holding ``content``; ``source`` names the file in errors."""
    before, _, after = _split(text, section, source)
    start, end = markers(section)
    return f"{before}{start}\n{content.strip()}\n{end}{after}"


def region(text: str, section: str, source: str | Path = "the document") -> str:
    """What the region of ``section`` holds (stripped)."""
    return _split(text, section, source)[1].strip()


def documented(docs: Path, section: str) -> str:
    """What ``docs`` holds between the markers of ``section`` (tests compare it with :func:`render`)."""
    return region(Path(docs).read_text(encoding="utf-8"), section, docs)


def write_docs(docs: Path, section: str, content: str) -> Path:
    docs = Path(docs)
    docs.write_text(replace_region(docs.read_text(encoding="utf-8"), section, content, docs), encoding="utf-8")
    return docs


# --- the command --------------------------------------------------------------------------------------------------
def read_arm(name: str, cv_dir: Path) -> Arm:
    """An arm from its folder: ``cv_metrics.json``, and ``calibration.json`` where present."""
    cv_dir = Path(cv_dir)
    calibration = Calibration.file_in(cv_dir)
    report = CVReport.read_from(cv_dir)
    return Arm(name, cv_dir, report, Calibration.read(calibration) if calibration.is_file() else None)


def _arm_option(value: str) -> tuple[str, Path]:
    name, _, folder = value.rpartition("=")
    if not name.strip() or not folder.strip():
        raise argparse.ArgumentTypeError(f"{value!r}: give NAME=CV_DIR, e.g. 'COCO start=/work/v5/screen-a-coco'")
    return name.strip(), Path(folder.strip())


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except TrainingError as exc:
        raise SystemExit(f"compare: {exc}") from None


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--arm", type=_arm_option, action="append", metavar="NAME=CV_DIR",
        help="a finished python -m training.evaluate --cv folder and its name in the tables (repeat per arm)",
    )  # fmt: skip
    source.add_argument("--summary", type=Path, metavar="JSON", help="render a summary written by --out instead")
    parser.add_argument("--device", default="", help="what trained the arms, in words (e.g. '2 CPU cores')")
    parser.add_argument(
        "--dense-pups", type=int, default=DENSE_PUPS, help="a photo with this many pups is a dense colony (%(default)s)"
    )
    parser.add_argument("--out", type=Path, help="write the summary (JSON) here")
    parser.add_argument("--docs", type=Path, help="a Markdown file whose region of --section gets the tables")
    parser.add_argument("--section", help="the region's name: <!-- NAME:start --> ... <!-- NAME:end -->")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the docs region differs")
    args = parser.parse_args(argv)
    if bool(args.docs) != bool(args.section):
        parser.error("--docs and --section go together")
    if args.check and not args.docs:
        parser.error("--check needs --docs FILE --section NAME")
    if args.summary and args.out:
        parser.error("--out writes the summary of --arm runs; --summary renders one already written")
    if args.summary:
        comparison = Comparison.read(args.summary)
    else:
        comparison = compare([read_arm(name, folder) for name, folder in args.arm], args.device, args.dense_pups)
    markdown = render(comparison)
    if args.check:
        if documented(args.docs, args.section) != markdown:
            what = args.summary or "the arms"
            print(
                f"compare: {args.docs}'s {args.section} region is not what {what} renders: rerun this command "
                "without --check to rewrite it",
                file=sys.stderr,
            )
            return 1
        print(f"{args.docs}'s {args.section} region is up to date", file=sys.stderr)
        return 0
    print(markdown)
    if args.out:
        comparison.write(args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.docs:
        print(f"wrote the tables into {write_docs(args.docs, args.section, markdown)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
