"""What runs the network: one class per runtime, each loading its model file through ultralytics.

A runtime loads a model file, warms up, predicts one batch of tiles (each tile's :class:`Detections`, in the
tile's pixels) and describes itself (name, device, precision). It also chooses its device: torch runs where it is
asked (CUDA, MPS, the CPU), the exports on the CPU. The sliced count (:mod:`detector.counting.pipeline`) takes a
runtime's ``predict`` as its callback, so a new runtime (TensorRT on a GPU, CoreML) is one more class here and its
name in :mod:`detector.versions.runtimes` (the one home of runtime names and of auto's choice).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from detector.counting.detections import Detections
from detector.errors import DetectorError
from detector.settings import DEFAULT_CONF, DEFAULT_IMGSZ, DEFAULT_IOU
from detector.versions.hub import ResolvedRuntime
from detector.versions.runtimes import TORCH

logger = logging.getLogger(__name__)

MAX_DETECTIONS_PER_TILE = 1000  # ultralytics' default 300 can cap a dense rookery tile at a low threshold


def select_device(requested: str | None = None) -> str:
    """The device to run on: ``requested`` if given (not "auto"), else CUDA, then MPS, then CPU."""
    import torch

    requested = (requested or "auto").strip().lower()
    if requested in {"", "auto"}:
        if torch.cuda.is_available():
            return "cuda:0"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested.isdigit():
        requested = f"cuda:{requested}"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise DetectorError(
            f"Device {requested!r} asked for, but CUDA is not available here; use {{setting}}cpu.", setting="device"
        )
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DetectorError(
            "Device 'mps' asked for, but Apple MPS is not available here; use {setting}cpu.", setting="device"
        )
    if requested != "cpu" and not requested.startswith(("cuda", "mps")):
        raise DetectorError(
            f"Unknown device {requested!r}; use {{setting}}auto, cpu, cuda, cuda:N or mps.", setting="device"
        )
    return requested


class Runtime(Protocol):
    """What the sliced count needs of a network: one batch of BGR tiles in, each tile's detections out."""

    name: str  # a runtime name of :mod:`detector.versions.runtimes` ("torch", "openvino-f32", ...)
    device: str
    imgsz: int  # the network's input size
    class_names: tuple[str, ...]

    def predict(self, bgr_tiles: Sequence[np.ndarray], conf: float, iou: float) -> list[Detections]:
        """Each tile's detections at ``conf`` and above, in the tile's pixels."""
        ...

    def describe(self) -> str:
        """One line: name, device and precision."""
        ...


class UltralyticsRuntime:
    """A model file run by ultralytics' ``YOLO`` (its AutoBackend for an export). Thread-safe: one batch of tiles
    at a time holds the model, so concurrent photos interleave batch by batch."""

    name: str = TORCH

    def __init__(self, path: Path, *, device: str, imgsz: int | None = None, threads: int | None = None) -> None:
        from ultralytics import YOLO

        self.device = device
        self.path = Path(path)
        self._lock = threading.Lock()
        self._threads = threads or os.cpu_count() or 1  # CPU threads (a Ray actor gets its own share)
        try:
            self._yolo = YOLO(str(path), task="detect")
        except Exception as exc:  # ultralytics raises many types for a bad checkpoint or export
            raise DetectorError(f"Cannot load {self.name} model {path}: {type(exc).__name__}: {exc}") from exc
        trained_at = (getattr(self._yolo, "ckpt", None) or {}).get("train_args", {}).get("imgsz")
        self.imgsz = int(imgsz or trained_at or DEFAULT_IMGSZ)  # the version's, else the checkpoint's own

    @property
    def class_names(self) -> tuple[str, ...]:
        names = self._yolo.names
        return tuple(names[i] for i in sorted(names))

    @property
    def precision(self) -> str:
        """What the network computes in."""
        return "fp32"

    def describe(self) -> str:
        return f"{self.name} on {self.device} ({self.precision}, {self.imgsz} px)"

    def warm_up(self) -> None:
        """Run one blank tile: ultralytics sets up its predictor (and an export its session) on the first call."""
        self.predict([np.zeros((self.imgsz, self.imgsz, 3), dtype=np.uint8)], DEFAULT_CONF, DEFAULT_IOU)

    def _predict_options(self) -> dict[str, Any]:
        return {}

    def predict(self, bgr_tiles: Sequence[np.ndarray], conf: float, iou: float) -> list[Detections]:
        """One batch of BGR tiles (ultralytics' order for arrays): each tile's detections, in tile pixels."""
        import torch

        with self._lock:
            results = self._yolo.predict(
                list(bgr_tiles), imgsz=self.imgsz, conf=conf, iou=iou, device=self.device, verbose=False,
                max_det=MAX_DETECTIONS_PER_TILE, **self._predict_options(),
            )  # fmt: skip
            torch.set_num_threads(self._threads)  # ultralytics caps CPU threads at cores-1 when it selects a device
        return [Detections.from_ultralytics(result) for result in results]

    def set_threads(self, threads: int) -> None:
        """The CPU threads torch is pinned to after each batch (a benchmark's sweep)."""
        import torch

        self._threads = threads
        torch.set_num_threads(threads)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


class TorchRuntime(UltralyticsRuntime):
    """The weights themselves, in torch, on the device asked for (fp16 on CUDA)."""

    def __init__(
        self, weights: Path, *, device: str | None = None, imgsz: int | None = None, threads: int | None = None,
        warmup: bool = True,
    ) -> None:  # fmt: skip
        import torch

        super().__init__(weights, device=select_device(device), imgsz=imgsz, threads=threads)
        self.half = self.device.startswith("cuda")
        if warmup:
            self.warm_up()
        torch.set_num_threads(self._threads)

    @property
    def precision(self) -> str:
        return "fp16" if self.half else "fp32"

    def _predict_options(self) -> dict[str, Any]:
        return {"half": True} if self.half else {}  # passing half at all warns on ultralytics 8.4 CPU


class ExportRuntime(UltralyticsRuntime):
    """An export published with the version (sha256-checked files), run on the CPU through AutoBackend."""

    format: ClassVar[str]

    def __init__(
        self, export: ResolvedRuntime, *, device: str | None = None, imgsz: int | None = None,
        threads: int | None = None,
    ) -> None:  # fmt: skip
        import torch

        if device not in (None, "cpu"):
            logger.warning("Runtime %s runs on the CPU, not on %s (the torch runtime runs there).", export.name, device)
        self.name = export.name
        self.export = export
        self.threads_asked = threads  # None: the runtime's own choice (OpenVINO's LATENCY mode: every core)
        super().__init__(export.path, device="cpu", imgsz=imgsz, threads=threads)
        # An export knows its class names only once loaded: load it for real, once (asking ultralytics for the
        # names first loads a throwaway copy).
        self.warm_up()
        self._configure()
        torch.set_num_threads(self._threads)

    def _configure(self) -> None:
        """What ultralytics has no option for, applied once the export is loaded."""

    @property
    def precision(self) -> str:
        return self.export.runtime.precision


class ONNXRuntime(ExportRuntime):
    """An ONNX export, run by onnxruntime on the CPU."""

    format = "onnx"


class OpenVINORuntime(ExportRuntime):
    """An OpenVINO export, compiled for any batch with the export's precision hint and the thread share."""

    format = "openvino"

    def _configure(self) -> None:
        """Compile the OpenVINO model again with what ultralytics' OpenVINO backend has no option for: the export's
        inference precision (e.g. fp32 on a CPU whose default is bf16), an explicit thread count (a Ray actor's
        share) and any batch size. A static-batch export (16 tiles) otherwise runs a short batch padded with blank
        tiles: 80 tiles' work for a 70-tile photo, 32 for a gated pass of 18. Compiled for any batch, a short
        batch costs only its tiles (OpenVINO's CPU time per tile is the same at 16 and at 6, measured on v4).
        This reaches into the backend: its ``compile_model`` (also used when it recompiles for a new input shape)
        gets the settings, the compiled model is replaced, and the metadata AutoBackend reads to pad short batches
        says the batch is free. Everything else (pre-processing at the export's size, inference, NMS) stays
        ultralytics'."""
        backend = self.backend
        path, exported = self.export.path, self.export.runtime
        if not hasattr(backend, "compile_model") or not hasattr(backend, "ov"):
            raise DetectorError(f"Cannot configure {path}: not loaded by ultralytics' OpenVINO backend.")
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if exported.inference_precision:
            config["INFERENCE_PRECISION_HINT"] = exported.inference_precision
        if self.threads_asked:
            config["INFERENCE_NUM_THREADS"] = int(self.threads_asked)
        xml = path if path.is_file() else next(path.glob("*.xml"))
        backend.compile_model = functools.partial(backend.compile_model, config=config)
        try:
            model = backend.ov.Core().read_model(model=str(xml), weights=xml.with_suffix(".bin"))
            shape = model.input().get_partial_shape()
            free_batch = shape.rank.is_static and shape[0].is_static
            if free_batch:
                model.reshape([-1, *shape[1:]])
            backend.ov_compiled_model = backend.compile_model(model)
        except Exception as exc:  # OpenVINO raises RuntimeError for an unsupported setting or a bad model
            raise DetectorError(f"Cannot compile {path} with {config}: {type(exc).__name__}: {exc}") from exc
        if free_batch:  # AutoBackend pads (and splits) batches only for a fixed one; tiles stay at the export's size
            backend.metadata["dynamic"] = True

    @property
    def backend(self) -> Any:
        """Ultralytics' OpenVINO backend (its compiled model is ``ov_compiled_model``)."""
        return getattr(getattr(self._yolo.predictor, "model", None), "backend", None)

    @property
    def precision(self) -> str:
        """The compiled model's inference precision (fp32, bf16 or fp16 on this CPU)."""
        compiled = getattr(self.backend, "ov_compiled_model", None)
        if compiled is None:
            return "unknown"
        value = compiled.get_property("INFERENCE_PRECISION_HINT")  # an openvino Type, e.g. f32 or bf16
        name = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
        return {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(name, name)


EXPORT_RUNTIMES: dict[str, type[ExportRuntime]] = {cls.format: cls for cls in (OpenVINORuntime, ONNXRuntime)}


def load_runtime(
    weights: Path, export: ResolvedRuntime | None = None, *, device: str | None = None, imgsz: int | None = None,
    threads: int | None = None, warmup: bool = True,
) -> UltralyticsRuntime:  # fmt: skip
    """The runtime that runs ``export`` (its format's class), or the ``weights`` in torch when None."""
    if export is None:
        return TorchRuntime(weights, device=device, imgsz=imgsz, threads=threads, warmup=warmup)
    runtime_class = EXPORT_RUNTIMES.get(export.runtime.format)
    if runtime_class is None:
        raise DetectorError(f"No runtime class runs format {export.runtime.format!r} ({export.name}).")
    return runtime_class(export, device=device, imgsz=imgsz, threads=threads)
