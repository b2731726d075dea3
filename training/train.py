"""Train a YOLOv5 sea lion detector on a dataset from ``training.dataset`` (wraps ultralytics).

    python -m training.train --data /work/datasets/sealions/splits/all/data.yaml --epochs 60 --out runs/v1
    # time-bounded (ultralytics fits the learning-rate schedule to the budget), resumable after a kill
    python -m training.train --data DATA --hours 1.1 --project /work/train-runs --name v3
    python -m training.train --resume /work/train-runs/v3
    # record ground scale, chip size and classes in the weights of a run trained before they were recorded
    python -m training.train --stamp /work/train-runs/v3 --dataset /work/datasets/gs05

Starts from a model *config* (``yolov5n.yaml``/``yolov5s.yaml``; random init, nothing downloaded). Augmentation
suits overhead photos: flips both ways plus 90-degree rotations (all 8 orientations), no perspective, no shear, and
little scaling (class is partly told by body size at a fixed ground scale). The run folder gets ``weights/last.pt``
after every epoch (what ``--resume`` continues from), ``weights/best.pt`` (fp16, optimizer stripped at the end) and
``training_record.json``, written at the start, after every epoch and at the end: command, parameters, epochs run,
wall time, and whether the run finished (by its epochs or its time budget), is running, or was cut. Every checkpoint
records the ground scale, chip size and class names of its dataset (:mod:`detector.versions.weights_facts`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import socket
import sys
import time
import types
from collections.abc import Mapping, Sequence
from copy import copy
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from detector.environment import set_offline_defaults

set_offline_defaults()  # before ultralytics loads: it must never reach for the network

from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402

from detector.classes import SEA_LION_CLASSES  # noqa: E402
from detector.counting.images import greyscale  # noqa: E402
from detector.settings import DEFAULT_IMGSZ  # noqa: E402
from detector.versions.weights_facts import TRAINING_RECORD, WeightsFacts, stamp_checkpoint  # noqa: E402
from training.io import DATASET_RECORD, DatasetRecord, TrainingError  # noqa: E402
from training.records import CUT, FINISHED, RUNNING, DataSplit, InitReport, Segment, TrainingRecord  # noqa: E402


class RandomRot90:
    """Rotate an image and its boxes by 90 degrees with probability ``p`` (with both flips: all 8 orientations).

    ultralytics 8.4 has flips but no 90-degree rotation (``degrees`` rotates by any angle and inflates the boxes).
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        if random.random() >= self.p:
            return labels
        img = labels["img"]
        h, w = img.shape[:2]
        instances = labels["instances"]
        instances.convert_bbox(format="xyxy")
        normalized = instances.normalized
        if normalized:
            instances.denormalize(w, h)
        boxes = instances.bboxes
        if len(boxes):
            x1, y1, x2, y2 = boxes[:, 0].copy(), boxes[:, 1].copy(), boxes[:, 2].copy(), boxes[:, 3].copy()
            # np.rot90 (counter-clockwise): a point (x, y) moves to (y, w - x).
            boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3] = y1, w - x2, y2, w - x1
        if len(instances.segments):
            seg = instances.segments.copy()
            instances.segments[..., 0], instances.segments[..., 1] = seg[..., 1], w - seg[..., 0]
        labels["img"] = np.ascontiguousarray(np.rot90(img))
        if normalized:
            instances.normalize(h, w)  # the rotated image is h wide and w high
        labels["instances"] = instances
        if "resized_shape" in labels:
            labels["resized_shape"] = labels["resized_shape"][::-1]
        return labels


class RandomGrey:
    """Turn an image grey (the same luminance in all three channels) with probability ``p``.

    Survey photos arrive as greyscale copies too; a model that has never seen one counts them badly.
    """

    def __init__(self, p: float = 0.1) -> None:
        self.p = p

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        if random.random() < self.p:  # ultralytics images are BGR; the same luma as the detector's greyscale input
            labels["img"] = greyscale(labels["img"][:, :, ::-1])
        return labels


def read_init_state_dict(path: str | Path) -> dict[str, Any]:
    """Tensors of an init file: a plain state dict (``{name: tensor}`` or ``{"state_dict": {...}}``) or an
    ultralytics checkpoint (``{"model": module, "ema": module, ...}``; its EMA weights when present)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"--init {path}: file not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # an ultralytics checkpoint pickles its model class: needs the full unpickler
        try:
            data = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise TrainingError(
                f"--init {path}: cannot read it ({type(exc).__name__}: {exc}); pass a state-dict file or an "
                "ultralytics checkpoint (e.g. yolov5nu.pt)"
            ) from exc
    if isinstance(data, dict):
        for key in ("ema", "model"):
            module = data.get(key)
            if module is not None and hasattr(module, "state_dict"):
                return {k: v.float() for k, v in module.state_dict().items()}
        data = data.get("state_dict", data)
    if hasattr(data, "state_dict"):
        data = data.state_dict()
    tensors = (
        {k: v for k, v in data.items() if isinstance(k, str) and hasattr(v, "shape")} if isinstance(data, dict) else {}
    )
    if not tensors:
        raise TrainingError(f"--init {path}: no tensors found (expected a state dict or an ultralytics checkpoint)")
    return tensors


def transfer_weights(model: Any, path: str | Path) -> InitReport:
    """Copy every tensor of ``path`` that matches a tensor of ``model`` by name and shape; report what did.

    Hand-written because ultralytics' ``model.load`` logs only a count, not which layers stayed random.
    """
    from detector.files import sha256_file

    source = read_init_state_dict(path)
    target = model.state_dict()
    matched = {k: v for k, v in source.items() if k in target and tuple(v.shape) == tuple(target[k].shape)}
    model.load_state_dict(matched, strict=False)
    untouched = [k for k in target if k not in matched and target[k].dtype.is_floating_point]
    layers = sorted({".".join(k.split(".")[:2]) for k in untouched}, key=lambda n: (len(n), n))
    return InitReport(
        source=str(path), sha256=sha256_file(Path(path)), matched=len(matched), total=len(target),
        source_tensors=len(source), random_layers=tuple(layers),
    )  # fmt: skip


def _use_all_cores(trainer: DetectionTrainer) -> None:
    import torch

    if trainer.device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)


def _continue_the_clock(trainer: SeaLionTrainer) -> None:
    """On the first epoch of a resumed run, count the time budget from the run's start, not from the resume.

    ultralytics restarts its clock on resume (a resumed ``time=`` run would get the whole budget again) and, in time
    mode, refits the epoch count to ``time / mean epoch time`` with the mean taken over the epochs since the resume
    only, which it then compares with the absolute epoch. Moving the clock back by the training seconds the
    checkpoint recorded, and counting epochs from 0, makes both hold for the whole run (and results.csv's time
    column stays cumulative)."""
    if trainer.resume and not trainer.clock_continued:
        trainer.train_time_start = time.time() - trainer.prior_train_seconds
        trainer.start_epoch = 0  # read by the loop before this callback; later only in averages, logs and retries
        trainer.clock_continued = True


def _checkpoint_saved(trainer: SeaLionTrainer) -> None:
    """After ultralytics saved an epoch's checkpoints (last.pt every epoch, best.pt when it improved): record the
    dataset's facts in the files it rewrote, and count the epoch as done (a resume starts after it)."""
    if trainer.log is not None:
        trainer.log.completed = int(trainer.epoch) + 1
    if trainer.facts is None:
        return
    for path in (Path(trainer.last), Path(trainer.best)):
        if path.is_file() and trainer.stamped.get(path) != path.stat().st_mtime_ns:
            stamp_checkpoint(path, trainer.facts)
            trainer.stamped[path] = path.stat().st_mtime_ns


def _write_running_record(trainer: SeaLionTrainer) -> None:
    if trainer.log is not None:
        if trainer.init_report is not None:  # known once the model is built
            trainer.log.base["init"] = trainer.init_report
        trainer.log.write(trainer, "running")


class SeaLionTrainer(DetectionTrainer):
    """ultralytics' detection trainer plus 90-degree rotations and greyscale copies of training images, an
    optional initialisation from matching tensors of another model; MLflow only when asked."""

    rot90_p = 0.5
    grey_p = 0.1
    init_weights: str | None = None
    init_report: InitReport | None = None
    use_mlflow = False
    facts: WeightsFacts | None = None  # stamped into every checkpoint
    log: RunLog | None = None  # writes training_record.json
    prior_train_seconds = 0.0  # a resumed run: training seconds before the resume

    def get_model(self, cfg=None, weights=None, verbose=True):
        model = super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        if self.init_weights:
            report = transfer_weights(model, self.init_weights)
            type(self).init_report = report
            print(report.summary(), flush=True)
        return model

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from ultralytics.utils.callbacks import mlflow as mlflow_callbacks

        # ultralytics caps CPU threads at cores-1 whenever it selects a device (1 of 2 cores here: 2x slower);
        # every epoch starts with all cores again.
        self.add_callback("on_train_epoch_start", _use_all_cores)
        self.clock_continued = False
        self.stamped: dict[Path, int] = {}
        self.add_callback("on_train_epoch_start", _continue_the_clock)
        self.add_callback("on_model_save", _checkpoint_saved)
        self.add_callback("on_train_start", _write_running_record)
        self.add_callback("on_fit_epoch_end", _write_running_record)

        ours = set(mlflow_callbacks.callbacks.values()) if mlflow_callbacks.callbacks else set()
        for hooks in self.callbacks.values():  # ultralytics adds MLflow whenever it is installed: not by default
            hooks[:] = [hook for hook in hooks if hook not in ours]
        if self.use_mlflow:
            for event, hook in mlflow_callbacks.callbacks.items():
                self.add_callback(event, hook)

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None):
        dataset = super().build_dataset(img_path, mode, batch)
        if mode == "train" and self.rot90_p > 0:
            original = dataset.build_transforms
            p, grey_p = self.rot90_p, self.grey_p

            def build_transforms(self_, hyp):  # also used when ultralytics closes mosaic for the last epochs
                transforms = original(hyp)
                transforms.insert(-1, RandomRot90(p))  # before the final Format step
                if grey_p > 0:
                    transforms.insert(-1, RandomGrey(grey_p))
                return transforms

            dataset.build_transforms = types.MethodType(build_transforms, dataset)
            dataset.transforms = dataset.build_transforms(copy(self.args))
        return dataset


@dataclass
class TrainConfig:
    data: str
    model: str = "yolov5n.yaml"
    epochs: int = 60
    hours: float | None = None  # time budget (ultralytics time=): the epoch count and schedule are fitted to it
    imgsz: int | None = None  # default: the dataset's chip size
    batch: int | None = None  # default: from the chip size and the number of training chips (auto_batch)
    seed: int = 0
    device: str = "cpu"
    workers: int = 2
    patience: int = 0  # 0: train all epochs (early stopping on 1-2 validation photos is noise)
    project: str = "runs/train"
    name: str = "sealions"
    rot90: float = 0.5
    grey: float = 0.1  # probability of a greyscale training image
    init: str | None = None  # state dict or ultralytics checkpoint to copy matching tensors from
    mlflow: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def ultralytics_args(self, imgsz: int) -> dict[str, Any]:
        args = {
            "data": self.data,
            "epochs": self.epochs,
            "imgsz": imgsz,
            "batch": self.batch or auto_batch(Path(self.data), imgsz),
            "seed": self.seed,
            "deterministic": True,
            "device": self.device,
            "workers": self.workers,
            "patience": self.patience or self.epochs + 1,
            "project": str(Path(self.project).resolve()),
            "name": self.name,
            "exist_ok": True,
            "pretrained": False,
            "plots": False,  # plotting wants a downloaded font; metrics land in results.csv anyway
            "verbose": True,
            # Overhead photos: every orientation is valid, perspective and shear are not.
            "fliplr": 0.5,
            "flipud": 0.5,
            "degrees": 0.0,
            "perspective": 0.0,
            "shear": 0.0,
            "scale": 0.15,  # body size tells classes apart at a fixed ground scale: keep scaling mild
            "translate": 0.1,
            "mosaic": 1.0,
            "close_mosaic": max(1, self.epochs // 6),
            "mixup": 0.0,
            "cache": "ram",
            "amp": self.device != "cpu",
        }
        if self.hours:
            args["time"] = float(self.hours)
        args.update(self.extra)
        return args


def chip_size_of(data_yaml: Path) -> int | None:
    """The chip size recorded by training.dataset next to the data.yaml (photos.json), if any."""
    folder = DataSplit.read(data_yaml).folder(data_yaml)
    return DatasetRecord.read(folder).chip_size if (folder / DATASET_RECORD).is_file() else None


def auto_batch(data_yaml: Path, imgsz: int) -> int:
    """A batch size for CPU/GPU memory at this chip size (16 at 320 px, fewer for bigger chips), small enough that
    an epoch has at least 12 optimizer steps (tiny data sets need steps more than large batches)."""
    by_memory = max(2, min(64, round(16 * (320 / imgsz) ** 2)))
    listing = DataSplit.read(data_yaml).listing(data_yaml)
    chips = len(listing.read_text().split()) if listing is not None and listing.is_file() else 0
    return max(2, min(by_memory, chips // 12)) if chips else by_memory


def check_names(data_yaml: Path) -> None:
    """The data.yaml's classes must be its dataset's (photos.json); a hand-written one must be the sea lion's."""
    names = DataSplit.read(data_yaml).class_names
    folder = DataSplit.read(data_yaml).folder(data_yaml)
    expected = DatasetRecord.read(folder).class_names if (folder / DATASET_RECORD).is_file() else SEA_LION_CLASSES
    if tuple(names) != tuple(expected):
        raise TrainingError(f"{data_yaml}: class names {list(names)} differ from the dataset's {list(expected)}")


def _enable_mlflow(project: str) -> None:
    """Log this run with ultralytics' MLflow integration to a local store (``<project>/mlruns`` by default)."""
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise TrainingError("--mlflow needs the mlflow package: pip install mlflow") from exc
    os.environ.setdefault("MLFLOW_TRACKING_URI", (Path(project).resolve() / "mlruns").as_uri())
    # A plain folder store needs no database server (mlflow-skinny has no SQL backend); MLflow 3 asks to opt in.
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", "sealion-counter")
    os.environ["MLFLOW_KEEP_RUN_ACTIVE"] = "1"  # we add the training record, then end the run


def dataset_facts(data_yaml: Path) -> WeightsFacts | None:
    """The ground scale, chip size and classes of the dataset a data.yaml belongs to (its photos.json), if any."""
    folder = DataSplit.read(data_yaml).folder(data_yaml)
    if not (folder / DATASET_RECORD).is_file():
        return None
    return facts_of(DatasetRecord.read(folder), folder)


def facts_of(dataset: DatasetRecord, folder: Path) -> WeightsFacts:
    return WeightsFacts(dataset.ground_scale, dataset.chip_size, tuple(dataset.class_names), str(folder))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class RunLog:
    """Writes ``<run>/training_record.json``: at the start of a run, after every epoch, and at the end.

    ``segments`` are the invocations that trained the run (one, plus one per ``--resume``); the record's wall time
    is their sum, so a run that was killed and resumed still says how long it took."""

    base: dict[str, Any]  # TrainingRecord fields that do not change while training: command, config, photos, facts
    segments: list[Segment] = field(default_factory=list)  # earlier invocations
    started: float = field(default_factory=time.time)
    started_at: str = field(default_factory=_now)
    first_epoch: int = 0
    completed: int = -1  # epochs whose checkpoint is saved (-1: none in this invocation yet)

    def write(
        self, trainer: DetectionTrainer, status: str, stopped_by: str | None = None, error: str | None = None
    ) -> TrainingRecord:
        save_dir = Path(trainer.save_dir)
        best, last = Path(trainer.best), Path(trainer.last)
        done = max(self.first_epoch, self.completed)
        seconds = time.time() - self.started
        segment = Segment(
            started_at=self.started_at, seconds=round(seconds, 1), from_epoch=self.first_epoch, to_epoch=done,
            status=status, pid=os.getpid(), host=socket.gethostname(),
        )  # fmt: skip
        train_start = getattr(trainer, "train_time_start", None)
        metrics = {k: float(v) for k, v in (trainer.metrics or {}).items() if isinstance(v, (int, float, np.floating))}
        record = TrainingRecord(
            **{key: value for key, value in self.base.items() if key != "final_val_metrics"},
            status=status,
            stopped_by=stopped_by,
            error=error,
            updated_at=_now(),
            weights=str(best if best.is_file() else last),
            last_checkpoint=str(last),
            save_dir=str(save_dir),
            hours=trainer.args.time or None,
            epochs_run=done,
            epochs_planned=int(trainer.epochs),
            train_seconds=round(time.time() - train_start, 1) if train_start else None,
            wall_time_s=round(sum(s.seconds for s in self.segments) + seconds, 1),
            segments=[*self.segments, segment],
            final_val_metrics=metrics or self.base.get("final_val_metrics", {}),
        )
        record.write_run(save_dir)
        return record


def _stopped_by(trainer: DetectionTrainer) -> str:
    if trainer.args.time:  # time mode ends on the clock or on the epoch count it fitted to the budget
        return "time budget"
    return "epochs" if int(trainer.epoch) + 1 >= int(trainer.epochs) else "early stopping"


def _configure_trainer(config: TrainConfig, facts: WeightsFacts | None, log: RunLog, init: str | None) -> None:
    SeaLionTrainer.rot90_p = config.rot90
    SeaLionTrainer.grey_p = config.grey
    SeaLionTrainer.init_weights = init
    SeaLionTrainer.init_report = None
    SeaLionTrainer.use_mlflow = config.mlflow
    SeaLionTrainer.facts = facts
    SeaLionTrainer.log = log
    SeaLionTrainer.prior_train_seconds = 0.0


def _run(model: Any, log: RunLog, config: TrainConfig, **arguments: Any) -> TrainingRecord:
    """``model.train(**arguments)`` with our trainer; the record says cut if it raises, finished when it returns."""
    try:
        model.train(trainer=SeaLionTrainer, **arguments)
    except BaseException as exc:  # a failure or Ctrl-C: the record says the run was cut (a kill leaves "running")
        trainer = getattr(model, "trainer", None)
        if trainer is not None and hasattr(trainer, "save_dir"):
            log.write(trainer, CUT, error=f"{type(exc).__name__}: {exc}")
        raise
    trainer = model.trainer
    record = log.write(trainer, FINISHED, stopped_by=_stopped_by(trainer))
    if config.mlflow:
        import mlflow

        if mlflow.active_run() is not None:  # params, metrics and weights were logged by ultralytics' integration
            record = record.changed(mlflow_run_id=mlflow.active_run().info.run_id)
            mlflow.log_artifact(str(Path(trainer.save_dir) / TRAINING_RECORD))
            mlflow.end_run()
    return record


def train(config: TrainConfig, command: str | None = None) -> TrainingRecord:
    """Train; returns the training record (also written to ``<run>/training_record.json``, from the start on)."""
    data_yaml = Path(config.data)
    check_names(data_yaml)
    imgsz = int(config.imgsz or chip_size_of(data_yaml) or DEFAULT_IMGSZ)
    facts = dataset_facts(data_yaml)
    if facts is None:
        print(f"warning: {data_yaml} has no dataset record ({DATASET_RECORD}): the weights will not record their "
              "ground scale, and counting them will need --ground-scale", file=sys.stderr)  # fmt: skip
    if config.mlflow:
        _enable_mlflow(config.project)
    from ultralytics import YOLO

    split = DataSplit.read(data_yaml)
    base = {
        "command": command or "",
        "config": asdict(config),
        "ultralytics_args": config.ultralytics_args(imgsz),
        "imgsz": imgsz,
        "base_config": config.model,
        "init": None,
        "train_photos": split.train_photos,
        "val_photos": split.val_photos,
        "environment": _environment(config.device),
        "sealion_facts": facts,
    }
    log = RunLog(base)
    _configure_trainer(config, facts, log, config.init)
    model = YOLO(config.model, task="detect")  # a .yaml config: random init, no download
    return _run(model, log, config, **config.ultralytics_args(imgsz))


def _environment(device: str) -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "ultralytics": __import__("ultralytics").__version__,
        "torch": __import__("torch").__version__,
        "device": device,
    }


def read_record(run: Path) -> TrainingRecord | None:
    """A run's training record, or None where it has none yet."""
    return TrainingRecord.read_run(run)


def _alive(pid: int, host: str) -> bool:
    if host != socket.gethostname():
        return True  # another machine's process: cannot tell, assume it still runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(run: Path) -> str:
    """``finished``, ``running`` (its process is alive), ``cut`` (killed or failed: resume it) or ``none``.

    A record without a status was written by the training code of before issue 21, which wrote it only when a run
    finished. A run folder with checkpoints but no record is ``unknown``: older code still training it, or killed."""
    record = read_record(run)
    if record is None:
        return "unknown" if (Path(run) / "weights" / "last.pt").is_file() else "none"
    if record.status == RUNNING:
        segment = record.segments[-1] if record.segments else Segment(seconds=0, from_epoch=0, to_epoch=0, status="")
        return RUNNING if _alive(segment.pid, segment.host) else CUT
    return record.status


def resume(
    run: Path, hours: float | None = None, device: str | None = None, command: str | None = None
) -> TrainingRecord:
    """Continue a cut run from ``<run>/weights/last.pt`` (ultralytics ``resume=``); returns the training record.

    The run keeps its settings, its learning-rate schedule and its time budget: the budget counts the training
    seconds before the cut (from the checkpoint), so a resumed ``--hours`` run ends when the whole run has used it.
    ``hours`` changes the budget (of the whole run), ``device`` where it continues."""
    import torch
    from ultralytics import YOLO

    run = Path(run)
    state = run_state(run)
    last = run / "weights" / "last.pt"
    if state == FINISHED:
        raise TrainingError(f"{run} finished ({TRAINING_RECORD} says so): nothing to resume")
    if state == RUNNING:
        raise TrainingError(f"{run} is still being trained (process {read_record(run).segments[-1].pid})")
    if not last.is_file():
        raise TrainingError(f"{last} not found: {run} has no checkpoint to resume from; train it again")
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    if checkpoint.get("optimizer") is None or int(checkpoint.get("epoch", -1)) < 0:
        raise TrainingError(f"{last} is a finished run's stripped checkpoint: nothing to resume")
    train_args = dict(checkpoint.get("train_args") or {})
    previous = read_record(run)
    known = {f.name for f in fields(TrainConfig)}
    if previous is not None and previous.config:
        config = TrainConfig(**{k: v for k, v in previous.config.items() if k in known})
    else:  # trained by code that wrote its record only at the end: its ultralytics arguments are in the checkpoint
        config = TrainConfig(**{k: train_args[k] for k in known & set(train_args) if k not in {"model", "imgsz"}})
        config.model = str(train_args.get("model") or config.model)
    config.hours = hours or train_args.get("time") or config.hours
    if device:
        config.device = device
    results = checkpoint.get("train_results") or {}
    prior_seconds = float((results.get("time") or [0.0])[-1])
    segments = list(previous.segments if previous is not None else [])
    done = int(checkpoint["epoch"]) + 1
    if not segments:  # the run's first invocation left no record of itself: its checkpoint says what it did
        segments = [Segment(seconds=round(prior_seconds, 1), from_epoch=0, to_epoch=done, status=CUT)]
    else:
        segments[-1] = segments[-1].changed(status=CUT, to_epoch=min(done, segments[-1].to_epoch))
    facts = previous.sealion_facts if previous is not None else None
    facts = facts or dataset_facts(Path(train_args.get("data") or config.data))
    base: dict[str, Any] = {}
    if previous is not None:
        base.update(command=previous.command, init=previous.init, train_photos=previous.train_photos,
                    val_photos=previous.val_photos, final_val_metrics=previous.final_val_metrics)  # fmt: skip
    base.update(
        config=asdict(config), ultralytics_args=train_args, imgsz=int(train_args.get("imgsz") or DEFAULT_IMGSZ),
        base_config=config.model, environment=_environment(config.device), resumed_by=command or "",
        sealion_facts=facts,
    )  # fmt: skip
    if not base.get("command"):
        base["command"] = f"python -m training.train --data {config.data} (rebuilt from {last.name} on resume)"
    log = RunLog(base, segments=segments, first_epoch=done)
    _configure_trainer(config, facts, log, None)  # the weights come from the checkpoint, never from --init
    SeaLionTrainer.prior_train_seconds = prior_seconds
    arguments: dict[str, Any] = {"resume": str(last), "save_dir": str(run.resolve()), "device": config.device}
    if config.hours:
        arguments["time"] = float(config.hours)
    if config.mlflow:
        _enable_mlflow(config.project)
    print(f"resuming {run} after epoch {done} ({prior_seconds / 3600:.2f} h trained)", file=sys.stderr)
    return _run(YOLO(str(last), task="detect"), log, config, **arguments)


def train_or_resume(config: TrainConfig, command: str | None = None) -> TrainingRecord:
    """Train ``config``'s run, resume it where it was cut, or return its record where it already finished."""
    run = Path(config.project) / config.name
    state = run_state(run)
    if state in {FINISHED, CUT}:
        # a cut run may continue on another budget (resume's hours); a finished one is reused only as it was asked
        differences = recipe_differences(read_record(run), config, budget=state == FINISHED)
        if differences:
            raise TrainingError(
                f"{run} was trained with other settings ({'; '.join(differences)}): give another run folder, or "
                "delete that one to train it again"
            )
    if state == FINISHED:
        return read_record(run)
    if state == CUT:
        return resume(run, hours=config.hours or config.extra.get("time"), device=config.device, command=command)
    if state == RUNNING:
        raise TrainingError(f"{run} is being trained by another process; wait for it")
    if state == "unknown":
        raise TrainingError(f"{run}: {UNKNOWN_RUN}")
    return train(config, command)


def _budget(config: Mapping[str, Any]) -> str:
    hours = config.get("hours") or (config.get("extra") or {}).get("time")
    return f"{float(hours):.4g} hours" if hours else f"{config.get('epochs')} epochs"


def recipe_differences(record: TrainingRecord | None, config: TrainConfig, budget: bool = True) -> list[str]:
    """How the run a record describes was trained differently from ``config`` (what a reused run must match:
    data, model, init, seed, augmentation, and, with ``budget``, its epochs or time budget)."""
    trained = record.config if record is not None else {}
    wanted = asdict(config)
    found = []
    for key in ("data", "model", "init", "seed", "rot90", "grey"):
        a, b = trained.get(key), wanted.get(key)
        if key in {"data", "init"} and a and b:
            a, b = str(Path(a).resolve()), str(Path(b).resolve())
        if key in trained and a != b:
            found.append(f"{key} {trained.get(key)} instead of {wanted.get(key)}")
    if budget and trained and _budget(trained) != _budget(wanted):
        found.append(f"{_budget(trained)} instead of {_budget(wanted)}")
    return found


UNKNOWN_RUN = (
    f"checkpoints but no {TRAINING_RECORD}: older training code, which wrote its record only at the end, is still "
    "training it, or was killed. Wait for it to finish, or, if no process trains it, continue it with "
    "python -m training.train --resume RUN"
)


def stamp_run(run: Path, dataset: Path) -> WeightsFacts:
    """Record the ground scale, chip size and classes of ``dataset`` in every checkpoint of a finished run (and in
    its training record): for runs trained before checkpoints recorded them."""
    run = Path(run)
    state = run_state(run)
    if state in {RUNNING, "unknown", "none"}:
        raise TrainingError(
            f"{run}: {state} ({TRAINING_RECORD} missing or still being written); stamp it once training has finished"
        )
    facts = facts_of(DatasetRecord.read(dataset), Path(dataset))
    record = read_record(run)  # there is one: the run finished or was cut
    weights = sorted((run / "weights").glob("*.pt"))
    if not weights:
        raise TrainingError(f"{run}/weights holds no checkpoint to stamp")
    for path in weights:
        import torch

        trained_at = (torch.load(path, map_location="cpu", weights_only=False).get("train_args") or {}).get("imgsz")
        if trained_at and int(trained_at) != facts.chip_size:
            raise TrainingError(f"{path} was trained at {trained_at} px, {dataset} has {facts.chip_size} px chips")
        stamp_checkpoint(path, facts)
    record.changed(sealion_facts=facts).write_run(run)
    return facts


HELP = {
    "data": "data.yaml written by python -m training.dataset",
    "model": "model config: yolov5n.yaml, yolov5s.yaml, ...",
    "imgsz": "default: the dataset's chip size",
    "batch": "default: from chip size and data size",
    "device": "cpu, 0 (first CUDA GPU), mps",
    "patience": "early-stopping patience (0: off)",
    "rot90": "probability of a 90-degree rotation",
    "grey": "probability of a greyscale training image",
    "init": "start from the tensors of this state-dict file or ultralytics checkpoint that match by name and shape "
    "(e.g. ../shared/models/yolov5n-coco/yolov5n-coco-state-dict.pt; online: ultralytics' yolov5nu.pt)",
    "project": "folder for runs",
    "name": "run name (subfolder of --project)",
    "mlflow": "log params, metrics and weights to a local MLflow store",
    "hours": "time budget in hours (ultralytics time=): the epoch count and learning-rate schedule are fitted to it "
    "after the first epoch, --epochs only shapes that first epoch",
}


def build_parser() -> argparse.ArgumentParser:
    """One option per :class:`TrainConfig` field, its default taken from the field (declared once)."""
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    for item in fields(TrainConfig):
        if item.name == "extra":
            continue
        flag = "--" + item.name.replace("_", "-")
        if item.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=HELP.get(item.name))
        elif item.default is MISSING:  # required, unless --resume or --stamp (checked in main)
            parser.add_argument(flag, help=HELP.get(item.name))
        else:
            kind = {"int": int, "float": float, "int | None": int, "float | None": float}.get(str(item.type), str)
            parser.add_argument(flag, type=kind, default=item.default, help=HELP.get(item.name))
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="any other ultralytics train argument"
    )
    parser.add_argument(
        "--resume", type=Path, metavar="RUN",
        help="continue the cut run in this folder from its weights/last.pt, with its own settings and time budget "
        "(--hours changes the budget of the whole run, --device where it continues)",
    )  # fmt: skip
    parser.add_argument(
        "--stamp", type=Path, metavar="RUN",
        help="record the ground scale, chip size and classes of --dataset in the weights of a finished run that was "
        "trained before they were recorded",
    )  # fmt: skip
    parser.add_argument("--dataset", type=Path, help="with --stamp: the dataset folder (photos.json) it was trained on")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    command = "python -m training.train " + " ".join(shlex.quote(a) for a in given)
    try:
        if args.stamp:
            if not args.dataset:
                parser.error("--stamp needs --dataset (the dataset folder the run was trained on)")
            print(json.dumps(stamp_run(args.stamp, args.dataset).to_dict(), indent=2))
            return 0
        if args.resume:
            device = args.device if any(a == "--device" or a.startswith("--device=") for a in given) else None
            record = resume(args.resume, hours=args.hours, device=device, command=command)
        else:
            if not args.data:
                parser.error("--data is required (or --resume RUN, or --stamp RUN)")
            extra = {}
            for item in args.set:
                key, _, value = item.partition("=")
                extra[key] = yaml.safe_load(value)
            values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "extra"}
            record = train(TrainConfig(**values, extra=extra), command)
    except TrainingError as exc:
        raise SystemExit(f"train: {exc}") from None
    keys = ("weights", "status", "stopped_by", "wall_time_s", "epochs_run", "final_val_metrics")
    data = record.to_json()
    print(json.dumps({k: data.get(k) for k in keys}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
