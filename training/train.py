"""Train a YOLOv5 sea lion detector on a dataset from ``training.dataset`` (wraps ultralytics).

    python -m training.train --data /work/datasets/sealions/splits/all/data.yaml --epochs 60 --out runs/v1

Starts from a model *config* (``yolov5n.yaml``/``yolov5s.yaml``; random init, nothing downloaded). Augmentation
suits overhead photos: flips both ways plus 90-degree rotations (all 8 orientations), no perspective, no shear, and
little scaling (class is partly told by body size at a fixed ground scale). The run folder gets ``weights/best.pt``
(fp16, optimizer stripped) and ``training_record.json`` (command, parameters, wall time, final metrics).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import sys
import time
import types
from collections.abc import Sequence
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
from training.io import DATASET_RECORD, DatasetRecord, TrainingError  # noqa: E402


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


@dataclass(frozen=True)
class InitReport:
    """What :func:`transfer_weights` copied into a new model."""

    source: str
    sha256: str
    matched: int  # tensors copied (same name and shape)
    total: int  # tensors of the new model
    source_tensors: int
    random_layers: tuple[str, ...]  # top-level layers of the new model left (partly) at random init

    def summary(self) -> str:
        layers = ", ".join(self.random_layers) or "none"
        return (
            f"init {self.source}: copied {self.matched}/{self.total} tensors of the new model "
            f"({self.source_tensors} in the file); left at random init: {layers}"
        )


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
    return InitReport(str(path), sha256_file(Path(path)), len(matched), len(target), len(source), tuple(layers))


def _use_all_cores(trainer: DetectionTrainer) -> None:
    import torch

    if trainer.device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)


class SeaLionTrainer(DetectionTrainer):
    """ultralytics' detection trainer plus 90-degree rotations and greyscale copies of training images, an
    optional initialisation from matching tensors of another model; MLflow only when asked."""

    rot90_p = 0.5
    grey_p = 0.1
    init_weights: str | None = None
    init_report: InitReport | None = None
    use_mlflow = False

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
        args.update(self.extra)
        return args


def chip_size_of(data_yaml: Path) -> int | None:
    """The chip size recorded by training.dataset next to the data.yaml (photos.json), if any."""
    data = yaml.safe_load(Path(data_yaml).read_text())
    folder = Path(data.get("path", Path(data_yaml).parent))
    return DatasetRecord.read(folder).chip_size if (folder / DATASET_RECORD).is_file() else None


def auto_batch(data_yaml: Path, imgsz: int) -> int:
    """A batch size for CPU/GPU memory at this chip size (16 at 320 px, fewer for bigger chips), small enough that
    an epoch has at least 12 optimizer steps (tiny data sets need steps more than large batches)."""
    by_memory = max(2, min(64, round(16 * (320 / imgsz) ** 2)))
    data = yaml.safe_load(Path(data_yaml).read_text())
    listing = Path(data.get("path", Path(data_yaml).parent)) / str(data.get("train", ""))
    chips = len(listing.read_text().split()) if listing.is_file() else 0
    return max(2, min(by_memory, chips // 12)) if chips else by_memory


def check_names(data_yaml: Path) -> None:
    names = yaml.safe_load(Path(data_yaml).read_text()).get("names")
    names = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names or [])
    if tuple(names) != SEA_LION_CLASSES:
        raise TrainingError(f"{data_yaml}: class names {names} differ from the product's {list(SEA_LION_CLASSES)}")


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


def train(config: TrainConfig, command: str | None = None) -> dict[str, Any]:
    """Train; returns the training record (also written to ``<run>/training_record.json``)."""
    data_yaml = Path(config.data)
    check_names(data_yaml)
    imgsz = int(config.imgsz or chip_size_of(data_yaml) or DEFAULT_IMGSZ)
    if config.mlflow:
        _enable_mlflow(config.project)
    from ultralytics import YOLO

    SeaLionTrainer.rot90_p = config.rot90
    SeaLionTrainer.grey_p = config.grey
    SeaLionTrainer.init_weights = config.init
    SeaLionTrainer.init_report = None
    SeaLionTrainer.use_mlflow = config.mlflow
    model = YOLO(config.model, task="detect")  # a .yaml config: random init, no download
    started = time.perf_counter()
    model.train(trainer=SeaLionTrainer, **config.ultralytics_args(imgsz))
    wall = time.perf_counter() - started
    trainer = model.trainer
    save_dir = Path(trainer.save_dir)
    best = Path(trainer.best) if Path(trainer.best).is_file() else Path(trainer.last)
    metrics = {k: float(v) for k, v in (trainer.metrics or {}).items() if isinstance(v, (int, float, np.floating))}
    data = yaml.safe_load(data_yaml.read_text())
    record = {
        "command": command or "",
        "config": asdict(config),
        "ultralytics_args": config.ultralytics_args(imgsz),
        "imgsz": imgsz,
        "base_config": config.model,
        "init": asdict(SeaLionTrainer.init_report) if SeaLionTrainer.init_report else None,
        "weights": str(best),
        "save_dir": str(save_dir),
        "wall_time_s": round(wall, 1),
        "epochs_run": int(trainer.epoch) + 1,
        "final_val_metrics": metrics,
        "train_photos": data.get("train_photos"),
        "val_photos": data.get("val_photos"),
        "environment": {
            "python": platform.python_version(),
            "ultralytics": __import__("ultralytics").__version__,
            "torch": __import__("torch").__version__,
            "device": config.device,
        },
    }
    (save_dir / "training_record.json").write_text(json.dumps(record, indent=2))
    if config.mlflow:
        import mlflow

        if mlflow.active_run() is not None:  # params, metrics and weights were logged by ultralytics' integration
            record["mlflow_run_id"] = mlflow.active_run().info.run_id
            mlflow.log_artifact(str(save_dir / "training_record.json"))
            mlflow.end_run()
    return record


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
        elif item.default is MISSING:
            parser.add_argument(flag, required=True, help=HELP.get(item.name))
        else:
            kind = {"int": int, "float": float}.get(str(item.type), str)
            kind = {"int | None": int}.get(str(item.type), kind)
            parser.add_argument(flag, type=kind, default=item.default, help=HELP.get(item.name))
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="any other ultralytics train argument"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    extra = {}
    for item in args.set:
        key, _, value = item.partition("=")
        extra[key] = yaml.safe_load(value)
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "extra"}
    config = TrainConfig(**values, extra=extra)
    given = argv if argv is not None else sys.argv[1:]
    command = "python -m training.train " + " ".join(shlex.quote(a) for a in given)
    try:
        record = train(config, command)
    except TrainingError as exc:
        raise SystemExit(f"train: {exc}") from None
    print(json.dumps({k: record[k] for k in ("weights", "wall_time_s", "epochs_run", "final_val_metrics")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
