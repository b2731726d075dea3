"""The JSON records the training steps write and read: a training run's ``training_record.json``, an evaluation
(``fold0_metrics.json``, ``evaluate --out``), the cross-validation report (``cv_metrics.json``), the per-class
thresholds (``calibration.json``) and the comparison of cross-validation runs (``training.compare --out``). One
typed, frozen model per file, read and written here only.

The models are pydantic's (frozen): it checks every field's type on reading and names the bad or missing one, so a
wrong file fails at the edge with its path and the field instead of as a ``KeyError`` three calls later. Keys this
code does not know are kept and written back; a record read from an older file is written back with the keys it had
(``exclude_unset``), so rewriting a file (``stamp``, ``describe_cv_epochs``) adds only what changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from detector.files import write_atomic
from detector.settings import DEFAULT_CONF
from detector.versions.weights_facts import TRAINING_RECORD, WeightsFacts
from training.io import TrainingError

CV_REPORT = "cv_metrics.json"
CALIBRATION = "calibration.json"
CALIBRATION_GREY = "calibration-grey.json"

RUNNING, FINISHED, CUT = "running", "finished", "cut"
R = TypeVar("R", bound="Record")


class Record(BaseModel):
    """A frozen record of a JSON file: :meth:`read` / :meth:`write` for the file, :meth:`from_json` /
    :meth:`to_json` for the data; a bad file is a :class:`TrainingError` naming it and the field."""

    model_config = ConfigDict(frozen=True, extra="allow")
    WHAT: ClassVar[str] = "record"  # what the file is, for error messages
    HOW: ClassVar[str] = ""  # how to make the file, for a missing one

    @classmethod
    def from_json(cls: type[R], data: Mapping[str, Any] | str | bytes, source: str | Path = "") -> R:
        """The record of parsed JSON (or its text); ``source`` names the file in errors."""
        try:
            if isinstance(data, (str, bytes)):
                return cls.model_validate_json(data)
            return cls.model_validate(data)
        except ValidationError as exc:
            raise TrainingError(f"{source or 'the data'} is not a valid {cls.WHAT}: {_problems(exc)}") from None

    def to_json(self) -> dict[str, Any]:
        """The JSON data: every field that was set (given, or present in the file read), unknown keys too."""
        return self.model_dump(mode="json", exclude_unset=True)

    @classmethod
    def read(cls: type[R], path: Path) -> R:
        path = Path(path)
        if not path.is_file():
            raise TrainingError(f"{path} not found" + (f": {cls.HOW}" if cls.HOW else ""))
        return cls.from_json(path.read_bytes(), path)

    def write(self, path: Path) -> Path:
        """Write the record to ``path`` atomically (a killed process leaves the old file whole)."""
        return write_atomic(Path(path), json.dumps(self.to_json(), indent=2))

    def changed(self: R, **changes: Any) -> R:
        """A copy with ``changes`` (checked like a file's fields, and written by :meth:`to_json`)."""
        return type(self).from_json({**self.to_json(), **_plain(changes)})


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.to_json() if isinstance(v, Record) else v) for k, v in values.items()}


def _problems(exc: ValidationError) -> str:
    """Each problem as ``field.path: message`` (the field names the bad or missing key)."""
    found = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "(the file)"
        found.append(f"{where}: {error['msg'].lower()}")
    more = len(exc.errors()) - len(found)
    return "; ".join(found) + (f"; and {more} more" if more > 0 else "")


class DataSplit(Record):
    """A split's ``data.yaml``: ultralytics' dataset file, which ``training.dataset`` writes for every split with
    the photo ids on each side. Only ``train`` is required, so a hand-written data.yaml trains too."""

    WHAT: ClassVar[str] = "data.yaml"
    HOW: ClassVar[str] = "build the dataset with python -m training.dataset"
    path: str | None = None  # the dataset folder; None: the data.yaml's folder
    train: str | list[str]  # the chip listing(s), relative to the dataset folder
    val: str | list[str] | None = None
    names: dict[int, str] | list[str] = {}
    train_photos: list[str] | None = None
    val_photos: list[str] | None = None
    val_is_training_data: bool = False

    @classmethod
    def read(cls, path: Path) -> DataSplit:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise TrainingError(f"{path} not found: {cls.HOW}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise TrainingError(f"{path} is not a valid {cls.WHAT}: {exc}") from None
        return cls.from_json(data if isinstance(data, Mapping) else {}, path)

    def write(self, path: Path) -> Path:
        import yaml

        data = self.model_dump(exclude_unset=True)  # not mode="json": the class names' int keys stay ints
        return write_atomic(Path(path), yaml.safe_dump(data, sort_keys=False))

    def folder(self, data_yaml: Path) -> Path:
        """The dataset folder (where the listings and photos.json are), for this file at ``data_yaml``."""
        return Path(self.path) if self.path else Path(data_yaml).parent

    def listing(self, data_yaml: Path) -> Path | None:
        """The training chips' listing file (None where ``train`` names several)."""
        return self.folder(data_yaml) / self.train if isinstance(self.train, str) else None

    def photo_ids(self, data_yaml: Path) -> tuple[list[str], list[str]]:
        """The training and the validation photo ids (a split of ``training.dataset`` lists both)."""
        if self.train_photos is None or self.val_photos is None:
            raise TrainingError(f"{data_yaml} lists no train_photos and val_photos: {self.HOW}")
        return list(self.train_photos), list(self.val_photos)

    @property
    def class_names(self) -> tuple[str, ...]:
        names = self.names
        return tuple(names[i] for i in sorted(names)) if isinstance(names, dict) else tuple(names)


# --- metrics ----------------------------------------------------------------------------------------------------
class ClassError(Record):
    """One class's count errors over photos."""

    mae: float
    rmse: float
    bias: float


class CountMetrics(Record):
    """Count errors of (photos, classes) count arrays (``training.evaluate.count_metrics``)."""

    WHAT: ClassVar[str] = "count metrics"
    photos: int
    per_class: dict[str, ClassError]
    competition_rmse: float  # per-class RMSE averaged over the classes (the Kaggle metric)
    total_mae: float
    total_bias: float
    total_relative_error: float

    def rmse_per_class(self, digits: int) -> dict[str, float]:
        return {name: round(error.rmse, digits) for name, error in self.per_class.items()}


class ChipMetrics(Record):
    """Detection mAP on a split's validation chips (ultralytics ``val``)."""

    map50: float
    map50_95: float
    per_class_map50: dict[str, float]


class PhotoCounts(Record):
    """One photo's counts against its truth, in class order (a row of ``per_photo``)."""

    photo_id: str
    truth: list[int]
    predicted: list[int]
    tiles: int
    seconds: float
    fold: str | None = None  # in a cross-validation report: the fold that counted it


class Evaluation(Record):
    """One model counted on some photos (``<fold>_metrics.json``, ``evaluate --out``)."""

    WHAT: ClassVar[str] = "evaluation"
    weights: str
    conf: float
    imgsz: int
    ground_scale: float
    model: CountMetrics
    baseline_training_mean: CountMetrics | None = None
    per_photo: list[PhotoCounts]
    chips: ChipMetrics | None = None


class FoldTraining(Record):
    epochs_run: int | None = None
    train_wall_time_s: float | None = None


class CVReport(Record):
    """``cv_metrics.json``: k-fold cross-validation, each fold's model counted on its unseen photos."""

    WHAT: ClassVar[str] = "cross-validation report"
    HOW: ClassVar[str] = "run python -m training.evaluate --cv first"
    folds: list[str]
    epochs_per_fold: int | str  # "min-max" when time-bounded folds ran different counts
    hours_per_fold: dict[str, float | None] = {}
    fold_training: dict[str, FoldTraining] = {}
    train_overrides: dict[str, Any] = {}
    model: str = "yolov5n.yaml"
    init: str | None = None
    grey: float = 0.1
    conf: float = DEFAULT_CONF
    cv: CountMetrics
    baseline_training_mean: CountMetrics
    chips_map50: dict[str, ChipMetrics] = {}
    mean_chip_map50: float
    per_photo: list[PhotoCounts] = []
    fold_seconds: dict[str, float] = {}

    @classmethod
    def read_from(cls, cv_dir: Path) -> CVReport:
        return cls.read(Path(cv_dir) / CV_REPORT)


class CalibrationRow(Record):
    photo_id: str
    truth: list[int]
    uniform: list[int]
    calibrated: list[int]


class ConfusionTable(Record):
    """Out-of-fold detections matched one to one to the dots (within half the dot's class length): ``counts[i][j]``
    is how many animals of true class ``i`` were found as class ``j``; the last column counts missed animals, the
    last row detections that match no dot."""

    classes: list[str]
    counts: list[list[int]]
    photos: int
    radius: str


class Calibration(Record):
    """``calibration.json`` (``calibration-grey.json`` for greyscale input): per-class count thresholds from a
    cross-validation's unseen photos, and what they gain there."""

    WHAT: ClassVar[str] = "calibration report"
    HOW: ClassVar[str] = "run python -m training.evaluate --calibrate CV_DIR first"
    dataset: str
    cv_dir: str
    greyscale_input: bool = False
    grid: list[float]
    calibration_helps: bool | None = None  # None: written before the second guard
    class_conf: dict[str, float]
    class_conf_unguarded: dict[str, float]
    class_conf_per_fold: dict[str, dict[str, float]]
    photos: list[str]
    uniform_conf: float
    metrics_uniform_conf: CountMetrics
    metrics_calibrated_other_folds: CountMetrics  # what ships, counted on photos its thresholds never saw
    metrics_per_class_thresholds_other_folds: CountMetrics | None = None  # None: written before the second guard
    metrics_unguarded_other_folds: CountMetrics
    metrics_unguarded_in_sample: CountMetrics
    baseline_training_mean: CountMetrics
    per_photo: list[CalibrationRow]
    sweep: dict[str, dict[str, float]] = {}  # uniform threshold → per-class RMSE of the out-of-fold counts
    confusion: ConfusionTable | None = None  # out-of-fold detections at the shipped thresholds matched to the dots

    @staticmethod
    def file_in(cv_dir: Path, greyscale_input: bool = False) -> Path:
        """Where ``training.evaluate --calibrate`` writes it."""
        return Path(cv_dir) / (CALIBRATION_GREY if greyscale_input else CALIBRATION)


class PaintedRow(Record):
    photo_id: str
    fold: str
    truth: dict[str, int]
    raw: list[int]
    painted: list[int]


class PaintedComparison(Record):
    """``painted_vs_raw.json`` (``evaluate --compare-painted``): raw photos and their painted-out copies counted by
    the fold model that never saw them."""

    WHAT: ClassVar[str] = "painted-copy comparison"
    FILE: ClassVar[str] = "painted_vs_raw.json"
    photos: list[PaintedRow]
    raw_vs_truth: CountMetrics
    painted_vs_truth: CountMetrics
    painted_minus_raw_total: list[int]


class RevisionMetrics(Record):
    """``metrics.json`` of a published revision (``training.publish``): the full numbers behind the card's metrics."""

    WHAT: ClassVar[str] = "revision's metrics.json"
    FILE: ClassVar[str] = "metrics.json"
    training: dict[str, float] = {}  # the final model's last validation metrics (ultralytics)
    cross_validation: CVReport | None = None
    calibration: Calibration | None = None


# --- a comparison of cross-validation runs (training.compare) ------------------------------------------------------
class DenseColony(Record):
    """A photo with many pups (a dense colony), counted by the fold model that never saw it."""

    photo_id: str
    fold: str
    true_pups: int
    counted_pups: int


class ArmCalibration(Record):
    """What an arm's ``calibration.json`` says: its thresholds, the uniform threshold sweep and the confusion."""

    uniform_conf: float
    class_conf: dict[str, float]
    calibration_helps: bool | None = None
    calibrated_rmse: float  # mean per-class RMSE with thresholds chosen on the other folds
    sweep: dict[str, dict[str, float]] = {}  # uniform threshold → per-class RMSE and their "mean"
    confusion: ConfusionTable | None = None


class ArmSummary(Record):
    """One cross-validation run (an arm of the comparison), counted on the same folds as the others."""

    name: str
    cv_dir: str
    model: str
    init: str | None = None
    conf: float
    epochs_per_fold: int | str
    training_hours: float | None = None  # the folds' training wall time, summed (None: not recorded)
    cv_hours: float | None = None  # the whole CV: training, counting and chip mAP of every fold
    per_class: dict[str, ClassError]
    competition_rmse: float  # per-class RMSE averaged over the classes
    ratio_to_baseline: float | None = None  # competition_rmse / the training mean's (None: the baseline is 0)
    total_count_error: float  # Σ over photos |counted - true total| / Σ animals
    fold_rmse: dict[str, float]  # each fold's mean per-class RMSE on its own photos (the spread across folds)
    fold_class_rmse: dict[str, dict[str, float]] = {}  # fold → class → RMSE on its own photos (empty: not recorded)
    chip_map50: float
    dense_colonies: list[DenseColony]
    calibration: ArmCalibration | None = None


class Comparison(Record):
    """``training.compare --out``: cross-validation runs of the same folds, side by side, per class."""

    WHAT: ClassVar[str] = "comparison of cross-validation runs"
    HOW: ClassVar[str] = "run python -m training.compare --arm NAME=CV_DIR ... --out FILE first"
    device: str = ""
    classes: list[str]
    folds: dict[str, list[str]]  # fold → the photos it counted
    dense_pups: int  # a photo with at least this many pups is a dense colony
    baseline: CountMetrics  # predicting the training folds' mean count (the same for every arm)
    arms: list[ArmSummary]


# --- a training run ---------------------------------------------------------------------------------------------
class InitReport(Record):
    """What ``training.train.transfer_weights`` copied into a new model (``init`` of a training record)."""

    source: str
    sha256: str
    matched: int  # tensors copied (same name and shape)
    total: int  # tensors of the new model
    source_tensors: int = 0
    random_layers: tuple[str, ...] = ()  # top-level layers of the new model left (partly) at random init

    def summary(self) -> str:
        layers = ", ".join(self.random_layers) or "none"
        return (
            f"init {self.source}: copied {self.matched}/{self.total} tensors of the new model "
            f"({self.source_tensors} in the file); left at random init: {layers}"
        )


class Segment(Record):
    """One invocation that trained a run (the first, then one per ``--resume``)."""

    started_at: str | None = None
    seconds: float
    from_epoch: int
    to_epoch: int
    status: str
    pid: int = -1
    host: str = ""


class TrainingRecord(Record):
    """``<run>/training_record.json``: written by ``training.train`` at the start, after every epoch and at the end.

    A record without ``status`` was written by the code of before issue 21, which wrote it when a run finished."""

    WHAT: ClassVar[str] = "training record"
    HOW: ClassVar[str] = "train the run with python -m training.train"
    command: str = ""
    config: dict[str, Any] = {}  # training.train.TrainConfig's fields
    ultralytics_args: dict[str, Any] = {}
    imgsz: int
    base_config: str
    init: InitReport | None = None
    train_photos: list[str] | None = None
    val_photos: list[str] | None = None
    environment: dict[str, str] = {}
    sealion_facts: WeightsFacts | None = None  # FACTS_KEY: the dataset's ground scale, chip size and classes
    resumed_by: str | None = None
    status: str = FINISHED
    stopped_by: str | None = None
    error: str | None = None
    updated_at: str | None = None
    weights: str
    last_checkpoint: str | None = None
    save_dir: str
    hours: float | None = None
    epochs_run: int
    epochs_planned: int | None = None  # with a time budget: ultralytics' fit of epochs to the budget
    train_seconds: float | None = None  # the budget's clock
    wall_time_s: float
    segments: list[Segment] = []
    final_val_metrics: dict[str, float] = {}
    mlflow_run_id: str | None = None

    @classmethod
    def read_run(cls, run: Path) -> TrainingRecord | None:
        """A run's record, or None where it has none yet."""
        path = Path(run) / TRAINING_RECORD
        return cls.read(path) if path.is_file() else None

    def write_run(self, run: Path) -> Path:
        return self.write(Path(run) / TRAINING_RECORD)

    @property
    def budget(self) -> float | None:
        """The time budget in hours it was trained with (ultralytics ``time=``), if any."""
        return self.ultralytics_args.get("time")


# --- a release ----------------------------------------------------------------------------------------------------
class StageState(Record):
    """Where one stage of a release is: pending, running, done or failed, with when and how long."""

    status: str
    started_at: str | None = None
    seconds: int | None = None
    error: str | None = None
    note: str | None = None


class ReleaseState(Record):
    """``WORK/release_state.json``: the release's command, options, plan and each stage's state (training.release)."""

    WHAT: ClassVar[str] = "release state"
    FILE: ClassVar[str] = "release_state.json"
    command: str = ""
    stages: dict[str, StageState] = {}
    options: dict[str, Any] = {}  # training.release.ReleaseOptions, as JSON
    plan: dict[str, Any] = {}  # training.release.Plan, as JSON
    updated_at: str | None = None

    def with_stage(self, stage: str, status: str, **details: Any) -> ReleaseState:
        """The state with ``stage`` at ``status`` (its earlier details kept unless given again)."""
        earlier = self.stages[stage].to_json() if stage in self.stages else {}
        stages = {name: state.to_json() for name, state in self.stages.items()}
        return self.changed(stages={**stages, stage: {**earlier, "status": status, **details}})
