"""Release a model version within a fixed training budget: dataset → final model → CV folds → thresholds →
publish → exports (→ shipped), resumable.

    python -m training.release --hours 2.5 --data ../shared/data/noaa-sealions --work /work/release-v3 \
        --init ../shared/models/yolov5n-coco/yolov5n-coco-state-dict.pt --version v3 \
        --git-repo /work/model-hub/models/sealion-counter/steller-sealions-yolov5 --default

The final model comes first (it is the product): it trains on all photos for ``hours / (1 + sum of fold chips / all
chips)``, and each cross-validation fold trains like it, for the same seconds per training chip (fold hours = final
hours x fold chips / all chips). With 2 folds each fold holds about half the chips, so half the budget goes to the
final model and half to the folds. Training is time-bounded (ultralytics ``time=``: the epoch count and learning-rate
schedule are fitted to each budget), so a faster machine gets more epochs in the same hours; on a GPU
(``--device 0``) a new dataset gets 4 folds instead of 2. The per-class count thresholds come from the folds'
out-of-fold counts (``training.evaluate`` calibration, with its guard); then publish (weights, card, metrics),
OpenVINO fp16 and int8 exports, both shipped in ``weights/``.

The plan (time per stage) is printed before anything runs. ``WORK/release_state.json`` says where the release is. A
stage is done when its output exists, so a rerun of the same command continues: ``WORK/dataset`` (photos.json),
``WORK/final`` (a ``training.train`` run, finished), ``WORK/cv`` (cv_metrics.json, as ``training.evaluate --cv``
writes it), ``WORK/cv/calibration.json``, the version in the manifest, its exports. A cut training run resumes
where it stopped (``training.train --resume``), keeping its time budget. Runs trained elsewhere can be linked in
(``ln -s RUN WORK/final``) and the recipe finishes the rest.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from detector.settings import DEFAULT_CONF, default_of
from detector.versions.manifest import DEFAULT_MANIFEST, load_manifest
from training.dataset import ChipOptions
from training.io import DATASET_RECORD, DatasetRecord, TrainingError
from training.records import CALIBRATION, CV_REPORT, TRAINING_RECORD, CVReport, DataSplit, FoldTraining, ReleaseState

STATE_FILE = ReleaseState.FILE
STAGES = ("dataset", "final", "cv", "calibrate", "publish", "export")
EXPORTS = ("openvino", "openvino-int8")
CPU_FOLDS, GPU_FOLDS = 2, 4


@dataclass(frozen=True)
class ReleaseOptions:
    """Everything the recipe needs; one field per command-line option."""

    hours: float
    data: tuple[Path, ...]  # the photo folders (NOAA sample or Kaggle layout), for training.dataset
    work: Path
    version: str = "v3"
    device: str = "cpu"
    folds: int | None = None  # default: 2 on the CPU, 4 on a GPU (only when the recipe builds the dataset)
    ground_scale: float = 0.5  # the v2/v3 recipe (training.dataset's own default is 0.25)
    chip: int = default_of(ChipOptions, "size")
    overlap: float = default_of(ChipOptions, "overlap")
    empty_share: float = 0.1
    seed: int = 0
    model: str = "yolov5n.yaml"
    init: str | None = None
    epochs: int = 400  # shapes the first epoch's schedule; the time budget then fits the epoch count
    conf: float = DEFAULT_CONF
    git_repo: Path | None = None
    endpoint: str | None = None
    manifest: Path = DEFAULT_MANIFEST
    make_default: bool = False
    overrides: Mapping[str, Any] = field(default_factory=lambda: {"val": False})  # ultralytics train arguments

    @property
    def fold_count(self) -> int:
        return self.folds or (CPU_FOLDS if self.device == "cpu" else GPU_FOLDS)

    @property
    def dataset(self) -> Path:
        return self.work / "dataset"

    @property
    def final(self) -> Path:
        return self.work / "final"

    @property
    def cv(self) -> Path:
        return self.work / "cv"


@dataclass(frozen=True)
class Plan:
    """How the training hours are split: the final model's, and each fold's (same seconds per training chip)."""

    hours: float
    final_hours: float
    fold_hours: Mapping[str, float]
    all_chips: int | None  # None: the dataset is not built yet (fold shares estimated as (k-1)/k)
    fold_chips: Mapping[str, int]

    def lines(self, options: ReleaseOptions, done: Mapping[str, bool]) -> list[str]:
        def mark(stage: str) -> str:
            return "done" if done.get(stage) else "todo"

        chips = f"{self.all_chips} chips" if self.all_chips else "chips not counted yet (dataset not built)"
        folds = ", ".join(
            f"{name} {hours:.2f} h" + (f" ({self.fold_chips[name]} chips)" if name in self.fold_chips else "")
            for name, hours in self.fold_hours.items()
        )
        return [
            f"release {options.version}: {self.hours:.2f} h of training on {options.device}, "
            f"{len(self.fold_hours)} folds, in {options.work}",
            f"  dataset    {mark('dataset'):4}  not budgeted (minutes): ground scale {options.ground_scale}, "
            f"{options.chip} px chips",
            f"  final      {mark('final'):4}  {self.final_hours:.2f} h on all photos ({chips})",
            f"  cv         {mark('cv'):4}  {sum(self.fold_hours.values()):.2f} h: {folds}",
            f"  calibrate  {mark('calibrate'):4}  not budgeted (minutes): per-class thresholds from out-of-fold counts",
            f"  publish    {mark('publish'):4}  not budgeted: {options.version} to "
            f"{options.git_repo or options.endpoint or '(say where: --git-repo or --endpoint)'}"
            + (", the default" if options.make_default else ""),
            f"  export     {mark('export'):4}  not budgeted (minutes): {' + '.join(EXPORTS)}, checked on the "
            "examples, shipped",
        ]


def count_chips(listing: Path | None) -> int:
    return len(Path(listing).read_text().split()) if listing is not None and Path(listing).is_file() else 0


def split_chips(dataset: Path) -> dict[str, int]:
    """Training chips of each split of a built dataset (from its ``<split>_train.txt`` listings)."""
    record = DatasetRecord.read(dataset)
    return {
        name: count_chips(DataSplit.read(data_yaml).listing(data_yaml)) for name, data_yaml in record.splits.items()
    }


def make_plan(hours: float, fold_count: int, chips: Mapping[str, int] | None) -> Plan:
    """Split ``hours`` so that every model trains for the same seconds per training chip as the final one.

    final = hours / (1 + sum(fold chips) / all chips); fold = final x fold chips / all chips."""
    if hours <= 0:
        raise TrainingError(f"--hours must be positive, got {hours}")
    if chips and chips.get("all"):
        folds = {name: n for name, n in sorted(chips.items()) if name.startswith("fold")}
        if not folds:
            raise TrainingError("the dataset has no cross-validation folds: rebuild it with --folds 2 (or more)")
        shares = {name: n / chips["all"] for name, n in folds.items()}
    else:
        folds = {}
        shares = {f"fold{i}": (fold_count - 1) / fold_count for i in range(fold_count)}
    final = hours / (1 + sum(shares.values()))
    return Plan(hours, final, {name: final * share for name, share in shares.items()}, (chips or {}).get("all"), folds)


class Release:
    """The recipe's stages over one work folder, with the state file written as it goes."""

    def __init__(self, options: ReleaseOptions, command: str = "") -> None:
        self.options = options
        self.command = command
        self.state_path = options.work / STATE_FILE
        self.state = ReleaseState(command=command, stages={})
        if self.state_path.is_file():
            self.state = ReleaseState.read(self.state_path).changed(command=command)

    # -- what is done ---------------------------------------------------------------------------------------------
    def done(self) -> dict[str, bool]:
        from training.train import run_state

        o = self.options
        listed = load_manifest(o.manifest).versions if Path(o.manifest).is_file() else {}
        version = listed.get(o.version)
        return {
            "dataset": (o.dataset / DATASET_RECORD).is_file(),
            "final": run_state(o.final) == "finished",
            "cv": (o.cv / CV_REPORT).is_file(),
            "calibrate": (o.cv / CALIBRATION).is_file(),
            "publish": version is not None,
            "export": version is not None and all(name in version.runtimes for name in EXPORTS),
        }

    def plan(self) -> Plan:
        chips = split_chips(self.options.dataset) if (self.options.dataset / DATASET_RECORD).is_file() else None
        plan = make_plan(self.options.hours, self.options.fold_count, chips)
        if chips and self.options.folds and len(plan.fold_hours) != self.options.folds:
            raise TrainingError(
                f"--folds {self.options.folds}, but {self.options.dataset} has {len(plan.fold_hours)} folds: "
                "leave --folds out, or use a new --work folder"
            )
        return plan

    def write_state(self, state: ReleaseState | None = None, **changes: Any) -> None:
        """Write ``state`` (default: the current one) with ``changes``, stamped with the time."""
        self.state = (state or self.state).changed(**changes, updated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        self.state.write(self.state_path)

    def mark(self, stage: str, status: str, **details: Any) -> None:
        self.write_state(self.state.with_stage(stage, status, **details))

    # -- running --------------------------------------------------------------------------------------------------
    def run(self, only_plan: bool = False, until: str = STAGES[-1]) -> ReleaseState:
        """Print the plan, then run every stage that is not done, up to and including ``until``."""
        from training.train import UNKNOWN_RUN, run_state

        done = self.done()
        plan = self.plan()
        print("\n".join(plan.lines(self.options, done)), flush=True)
        for run in [self.options.final, *(self.options.cv / name for name in plan.fold_hours)]:
            if (run / TRAINING_RECORD).is_file():
                print(f"  trained: {trained_note(run)}", flush=True)
            elif run_state(run) == "unknown":
                print(f"  {run}: {UNKNOWN_RUN}", flush=True)
        self.write_state(options=_jsonable(asdict(self.options)), plan=_jsonable(asdict(plan)))
        state = self.state
        for stage in STAGES:
            if stage not in state.stages:
                state = state.with_stage(stage, "done" if done[stage] else "pending")
        self.write_state(state)
        if only_plan:
            return self.state
        for stage in STAGES[: STAGES.index(until) + 1]:
            if self.done()[stage]:
                self.after(stage)
                if self.state.stages[stage].status != "done":
                    self.mark(stage, "done", note="its output was already there")
                continue
            if stage == "final" or stage == "cv":
                plan = self.plan()  # the dataset is built now: the split follows its chip counts
                self.write_state(plan=_jsonable(asdict(plan)))
            started = time.time()
            self.mark(stage, "running", started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            try:
                getattr(self, f"run_{stage}")(plan)
            except BaseException as exc:  # failed or interrupted: the state says so, a rerun continues here
                self.mark(stage, "failed", error=f"{type(exc).__name__}: {exc}", seconds=round(time.time() - started))
                raise
            self.after(stage)
            self.mark(stage, "done", seconds=round(time.time() - started))
            print(f"{stage}: done in {(time.time() - started) / 60:.1f} min", flush=True)
        return self.state

    def after(self, stage: str) -> None:
        """What makes a finished stage's output complete, also for outputs linked in from elsewhere."""
        if stage == "final":
            from training.train import stamp_run

            stamp_run(self.options.final, self.options.dataset)  # weights that say their ground scale
        if stage == "cv":
            describe_cv_epochs(self.options.cv)

    def run_dataset(self, plan: Plan) -> None:
        from training import dataset

        o = self.options
        _call(dataset.main, [
            *(item for folder in o.data for item in ("--data", str(folder))), "--out", str(o.dataset),
            "--ground-scale", str(o.ground_scale),
            "--chip", str(o.chip), "--overlap", str(o.overlap), "--empty-share", str(o.empty_share),
            "--folds", str(o.fold_count), "--seed", str(o.seed),
        ])  # fmt: skip

    def train_config(self, data_yaml: Path, project: Path, name: str, hours: float):
        from training.train import TrainConfig

        o = self.options
        return TrainConfig(
            data=str(data_yaml), model=o.model, epochs=o.epochs, hours=round(hours, 4), seed=o.seed, device=o.device,
            project=str(project), name=name, init=o.init, extra=dict(o.overrides),
        )  # fmt: skip

    def run_final(self, plan: Plan) -> None:
        from training.train import train_or_resume

        o = self.options
        config = self.train_config(Path(DatasetRecord.read(o.dataset).splits["all"]), o.work, "final", plan.final_hours)
        train_or_resume(config, command=f"{self.command} (final model)")

    def run_cv(self, plan: Plan) -> None:
        from training.evaluate import cross_validate

        o = self.options
        cross_validate(
            o.dataset, o.cv, o.epochs, o.model, o.conf, o.device, list(plan.fold_hours), dict(o.overrides), o.init,
            fold_hours={name: round(hours, 4) for name, hours in plan.fold_hours.items()},
        )  # fmt: skip

    def run_calibrate(self, plan: Plan) -> None:
        from training.evaluate import calibrate

        calibrate(self.options.dataset, self.options.cv, self.options.device)

    def run_publish(self, plan: Plan) -> None:
        from training import publish

        o = self.options
        if o.git_repo is None and o.endpoint is None:
            raise TrainingError("say where to publish: --git-repo DIR (local, served by olah) or --endpoint URL")
        where = ["--git-repo", str(o.git_repo)] if o.git_repo else ["--endpoint", str(o.endpoint)]
        _call(publish.main, [
            "--run", str(o.final), "--dataset", str(o.dataset), "--cv-metrics", str(o.cv / CV_REPORT),
            "--version", o.version, *where, "--manifest", str(o.manifest), "--ship",
            *(["--default"] if o.make_default else []),
        ])  # fmt: skip

    def run_export(self, plan: Plan) -> None:
        from training import export

        o = self.options
        where = ["--git-repo", str(o.git_repo)] if o.git_repo else ["--endpoint", str(o.endpoint)]
        runtimes = [item for name in EXPORTS for item in ("--runtime", name)]
        _call(export.main, [
            "--version", o.version, *runtimes, "--calibration", str(o.dataset), *where, "--ship",
            "--manifest", str(o.manifest),
        ])  # fmt: skip


def trained_note(run: Path) -> str:
    """What a training run's record says it did, in one line."""
    from training.train import read_record, run_state

    record = read_record(run)
    if record is None:
        return f"{run} {run_state(run)}: no {TRAINING_RECORD}"
    budget = f" (budget {record.budget} h)" if record.budget else ""
    return f"{run} {run_state(run)}: {record.epochs_run} epochs in {record.wall_time_s / 3600:.2f} h{budget}"


def describe_cv_epochs(cv_dir: Path) -> None:
    """Make cv_metrics.json say the epochs its folds really ran (a time-bounded fold fits its own count; a report
    written before reports knew that says the --epochs it was given)."""
    from training.evaluate import epochs_text
    from training.train import read_record

    path = Path(cv_dir) / CV_REPORT
    report = CVReport.read(path)
    if report.fold_training:
        return
    records = {name: read_record(Path(cv_dir) / name) for name in report.folds}  # None: a fold without a record
    ran = {
        name: FoldTraining(epochs_run=r.epochs_run, train_wall_time_s=r.wall_time_s) if r else FoldTraining()
        for name, r in records.items()
    }
    changes: dict[str, Any] = {"fold_training": {name: fold.to_json() for name, fold in ran.items()}}
    hours = {name: r.budget if r else None for name, r in records.items()}
    if any(hours.values()):
        changes["hours_per_fold"] = hours
        changes["epochs_per_fold"] = epochs_text([fold.epochs_run for fold in ran.values()])
    report.changed(**changes).write(path)


def _call(main: Callable[[Sequence[str]], int], argv: list[str]) -> None:
    """Run another training command's ``main``; its error exit becomes a :class:`TrainingError`."""
    print("$ python -m", main.__module__, " ".join(shlex.quote(a) for a in argv), flush=True)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    if code not in (0, None):
        raise TrainingError(f"{main.__module__} failed: {code}")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def build_parser() -> argparse.ArgumentParser:
    """The options of :class:`ReleaseOptions`, their defaults taken from it (typed once)."""

    def default(name: str) -> Any:
        return default_of(ReleaseOptions, name)

    parser = argparse.ArgumentParser(prog="python -m training.release", description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, required=True, help="training budget of the whole release, in hours")
    parser.add_argument(
        "--data", type=Path, action="append", required=True,
        help="NOAA sample or Kaggle layout folder (the photos); repeat it to train on several",
    )  # fmt: skip
    parser.add_argument("--work", type=Path, required=True, help="work folder: dataset/, final/, cv/, state file")
    parser.add_argument("--version", default=default("version"), help="version name and tag (default %(default)s)")
    parser.add_argument("--device", default=default("device"), help="cpu, or 0 for the first CUDA GPU (more folds)")
    parser.add_argument("--folds", type=int, default=None, help=f"CV folds (default {CPU_FOLDS}, {GPU_FOLDS} on a GPU)")
    parser.add_argument("--ground-scale", type=float, default=default("ground_scale"), help="default %(default)s")
    parser.add_argument("--chip", type=int, default=default("chip"), help="chip size in pixels (default %(default)s)")
    parser.add_argument("--overlap", type=float, default=default("overlap"), help="chip overlap (default %(default)s)")
    parser.add_argument("--empty-share", type=float, default=default("empty_share"), help="default %(default)s")
    parser.add_argument("--seed", type=int, default=default("seed"))
    parser.add_argument("--model", default=default("model"), help="model config (default %(default)s)")
    parser.add_argument("--init", help="initial weights (see python -m training.train --init)")
    parser.add_argument(
        "--epochs", type=int, default=default("epochs"),
        help="shapes the first epoch's schedule; the time budget then fits the count (default %(default)s)",
    )  # fmt: skip
    parser.add_argument("--conf", type=float, default=default("conf"), help="uniform conf the guard compares with")
    parser.add_argument("--git-repo", type=Path, help="local git model repo to publish to (served by olah)")
    parser.add_argument("--endpoint", help="hub endpoint URL to publish to instead")
    parser.add_argument("--manifest", type=Path, default=default("manifest"))
    parser.add_argument("--default", action="store_true", help="make the version the manifest default")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="ultralytics train argument for every model (default: val=False; validation chips are training chips)",
    )  # fmt: skip
    parser.add_argument("--plan", action="store_true", help="print the plan and write the state file, run nothing")
    parser.add_argument("--until", choices=STAGES, default=STAGES[-1], help="stop after this stage (default: all)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import yaml

    args = build_parser().parse_args(argv)
    overrides = {"val": False} | {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.set)}
    options = ReleaseOptions(
        hours=args.hours, data=tuple(args.data), work=args.work, version=args.version, device=args.device,
        folds=args.folds, ground_scale=args.ground_scale, chip=args.chip, overlap=args.overlap,
        empty_share=args.empty_share,
        seed=args.seed, model=args.model, init=args.init, epochs=args.epochs, conf=args.conf, git_repo=args.git_repo,
        endpoint=args.endpoint, manifest=args.manifest, make_default=args.default, overrides=overrides,
    )  # fmt: skip
    given = argv if argv is not None else sys.argv[1:]
    command = "python -m training.release " + " ".join(shlex.quote(a) for a in given)
    try:
        Release(options, command).run(only_plan=args.plan, until=args.until)
    except TrainingError as exc:
        raise SystemExit(f"release: {exc}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
