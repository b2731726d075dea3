"""`Detector`: YOLOv5 (through ultralytics) with sliced inference, returning a `CountResult`."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np

from detector.errors import DetectorError
from detector.hub import ResolvedWeights, resolve_weights
from detector.images import ImageInput, greyscale, header_size, load_image, resize_to
from detector.results import CountResult, ModelInfo
from detector.scale import PhotoScale, choose_photo_scale, scale_warnings
from detector.slicing import merge_tile_detections, scale_boxes, shift_boxes, tile_grid, truncated_by_tile

ENV_DEVICE = "SEALION_DEVICE"
Slicing = Literal["auto", "on", "off"]

DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.45
DEFAULT_OVERLAP = 0.2
DEFAULT_BATCH = 16
MAX_DETECTIONS_PER_TILE = 1000  # ultralytics' default 300 can cap a dense rookery tile at a low threshold
# The work one photo may cost, checked before any of it is done: the photo as the model sees it (after rescaling)
# may have at most WORK_BUDGET_PIXELS (3x a 5616x3744 survey original at ground scale 1.0; the shipped model sees
# 5 MP of one), and the tiles sent through the network at most TILE_BUDGET_FACTOR times that in model-input pixels
# (overlaps and small tiles letterboxed up to the input size). About 30 s of CPU at the budget's edge.
WORK_BUDGET_PIXELS = 64_000_000
TILE_BUDGET_FACTOR = 4


def select_device(requested: str | None = None) -> str:
    """The device to run on: ``requested`` (or ``SEALION_DEVICE``) if given, else CUDA, then MPS, then CPU."""
    import torch

    requested = (requested or os.environ.get(ENV_DEVICE) or "auto").strip().lower()
    if requested in {"", "auto"}:
        if torch.cuda.is_available():
            return "cuda:0"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested.isdigit():
        requested = f"cuda:{requested}"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise DetectorError(f"Device {requested!r} asked for, but CUDA is not available here; use --device cpu.")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DetectorError("Device 'mps' asked for, but Apple MPS is not available here; use --device cpu.")
    if requested != "cpu" and not requested.startswith(("cuda", "mps")):
        raise DetectorError(f"Unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps.")
    return requested


class Detector:
    """A loaded model version. Thread-safe: calls to :meth:`count` share one model, locked one tile batch at a time."""

    def __init__(
        self, weights: ResolvedWeights, device: str | None = None, warmup: bool = True, threads: int | None = None
    ) -> None:
        os.environ.setdefault("YOLO_OFFLINE", "1")  # never let ultralytics reach for the network
        import torch
        from ultralytics import YOLO

        started = time.perf_counter()
        self.weights = weights
        self.device = select_device(device)
        self.half = self.device.startswith("cuda")
        self._lock = threading.Lock()
        try:
            self._yolo = YOLO(str(weights.path), task="detect")
        except Exception as exc:  # ultralytics raises many types for a bad checkpoint
            raise DetectorError(f"Cannot load weights {weights.path}: {type(exc).__name__}: {exc}") from exc
        names = self._yolo.names
        self.class_names: tuple[str, ...] = tuple(names[i] for i in sorted(names))
        version = weights.version
        if version.class_names and tuple(version.class_names) != self.class_names:
            raise DetectorError(
                f"Weights {weights.path} have classes {self.class_names}, but version {version.name} "
                f"lists {tuple(version.class_names)}; fix the manifest or the model card."
            )
        self.imgsz = int(version.imgsz or 640)
        self.ground_scale = float(version.ground_scale or 1.0)
        self.info = ModelInfo(
            version=version.name,
            sha256=weights.sha256,
            source=weights.source,
            path=str(weights.path),
            repo_id=version.repo_id or None,
            revision=version.revision or None,
            commit=version.commit or None,
            class_names=self.class_names,
            imgsz=self.imgsz,
            ground_scale=self.ground_scale,
            class_conf=dict(version.class_conf),
            greyscale_input=bool(version.greyscale_input),
        )
        self._threads = threads or os.cpu_count() or 1  # CPU threads for torch (a Ray actor gets its own share)
        if warmup:
            self._predict([np.zeros((self.imgsz, self.imgsz, 3), dtype=np.uint8)], DEFAULT_CONF, DEFAULT_IOU)
        torch.set_num_threads(self._threads)
        self.load_ms = (time.perf_counter() - started) * 1000

    @classmethod
    def load(
        cls,
        version: str | None = None,
        *,
        weights_path: str | os.PathLike[str] | None = None,
        repo_id: str | None = None,
        revision: str | None = None,
        sha256: str | None = None,
        device: str | None = None,
        warmup: bool = True,
        refresh: bool | None = None,
        threads: int | None = None,
    ) -> Detector:
        """Resolve a model version (see :func:`detector.hub.resolve_weights`) and load it on a device."""
        weights = resolve_weights(
            version, weights_path=weights_path, repo_id=repo_id, revision=revision, sha256=sha256, refresh=refresh
        )
        return cls(weights, device=device, warmup=warmup, threads=threads)

    def __repr__(self) -> str:
        return f"Detector(version={self.info.version!r}, sha256={self.info.sha256[:12]}, device={self.device!r})"

    def _predict(self, tiles: list[np.ndarray], conf: float, iou: float) -> list:
        """Run one batch of RGB tiles; returns ultralytics Results (boxes in tile pixels)."""
        import torch

        bgr = [np.ascontiguousarray(tile[:, :, ::-1]) for tile in tiles]
        options = {"half": True} if self.half else {}  # passing half at all warns on ultralytics 8.4 CPU
        results = self._yolo.predict(
            bgr, imgsz=self.imgsz, conf=conf, iou=iou, device=self.device, verbose=False,
            max_det=MAX_DETECTIONS_PER_TILE, **options,
        )  # fmt: skip
        torch.set_num_threads(self._threads)  # ultralytics caps CPU threads at cores-1 when it selects a device
        return results

    def count(
        self,
        image: ImageInput,
        *,
        conf: float | None = None,
        iou: float = DEFAULT_IOU,
        slicing: Slicing = "auto",
        tile_size: int | None = None,
        overlap: float = DEFAULT_OVERLAP,
        photo_scale: float | None = None,
        batch_size: int = DEFAULT_BATCH,
        source: str | None = None,
        class_conf: Mapping[str, float] | None = None,
    ) -> CountResult:
        """Detect and count animals in one photo.

        Confidence threshold: ``conf`` when given (one for every class); else ``class_conf`` or the model
        version's calibrated per-class thresholds (chosen on cross-validation to count best), else
        ``DEFAULT_CONF``. The thresholds applied are recorded in the result (``result.conf``).

        ``photo_scale`` is the photo's resolution relative to a survey original (0.25 for a photo downsampled
        4x; see :mod:`detector.scale`); None (auto) derives it from the photo's size, assuming a whole survey
        frame. The photo is resized by ``ground_scale / photo_scale`` to match the model. The scale used, and
        warnings when it looks wrong, are recorded in the result.
        ``slicing``: "auto" tiles photos larger than a tile, "on" always tiles, "off" runs the whole photo
        letterboxed to the model input.
        """
        if (conf is not None and not 0 <= conf <= 1) or not 0 <= iou <= 1:
            raise DetectorError(f"conf and iou must be between 0 and 1, got conf={conf}, iou={iou}.")
        thresholds = self.thresholds(conf, class_conf)
        if slicing not in ("auto", "on", "off"):
            raise DetectorError(f"slicing must be 'auto', 'on' or 'off', got {slicing!r}.")
        tile_size = int(tile_size or self.imgsz)
        if tile_size < 32:
            raise DetectorError(f"tile_size must be at least 32 pixels, got {tile_size}.")
        if source is None and isinstance(image, (str, os.PathLike)):
            source = Path(image).name
        timings: dict[str, float] = {}
        started = time.perf_counter()
        # A file's size comes from its header, so the scale, the budget and the decode size are known before a
        # pixel is decoded: a JPEG the model sees smaller is decoded straight at (at least) that size.
        size = header_size(image, label=source)
        rgb = None if size else load_image(image, label=source)
        width, height = size or (rgb.shape[1], rgb.shape[0])
        try:
            scale = choose_photo_scale(photo_scale, width, height)
        except ValueError as exc:
            raise DetectorError(f"{exc}.") from None
        factor = self.ground_scale / scale.value
        self._check_budget(source or "photo", (width, height), scale, factor, tile_size, overlap, slicing)
        if rgb is None:
            rgb = load_image(image, label=source, reduce=factor)
        work = resize_to(rgb, (max(1, round(width * factor)), max(1, round(height * factor))))
        if self.info.greyscale_input:  # a colour photo and its greyscale copy then count the same
            work = greyscale(work)
        work_h, work_w = work.shape[:2]
        timings["preprocess"] = (time.perf_counter() - started) * 1000

        use_tiles = slicing == "on" or (slicing == "auto" and max(work_w, work_h) > tile_size)
        tiles = tile_grid(work_w, work_h, tile_size, overlap) if use_tiles else np.array([[0, 0, work_w, work_h]])
        t0 = time.perf_counter()
        boxes, scores, classes, tile_ids, cut = [], [], [], [], []
        floor = float(thresholds.min())  # one predict call for every class; each is then held to its own threshold
        for start in range(0, len(tiles), max(1, batch_size)):
            chunk = tiles[start : start + batch_size]
            crops = [work[y1:y2, x1:x2] for x1, y1, x2, y2 in chunk]
            # One batch of tiles at a time holds the model: concurrent photos interleave batch by batch, so a
            # large photo delays a small one by one batch, not by its whole count.
            with self._lock:
                found_per_tile = self._predict(crops, floor, iou)
            for offset, (tile, found) in enumerate(zip(chunk, found_per_tile, strict=True)):
                data = found.boxes.data.cpu().numpy() if found.boxes is not None else np.zeros((0, 6))
                data = data[data[:, 4] >= thresholds[data[:, 5].astype(np.int64)]]
                if not len(data):
                    continue
                xyxy = shift_boxes(data[:, :4], tile[0], tile[1])
                boxes.append(xyxy)
                scores.append(data[:, 4])
                classes.append(data[:, 5].astype(np.int64))
                tile_ids.append(np.full(len(data), start + offset))
                cut.append(truncated_by_tile(xyxy, tile, (work_w, work_h)))
        timings["inference"] = (time.perf_counter() - t0) * 1000

        t0 = time.perf_counter()
        if boxes:
            xyxy, conf_arr, cls_arr = np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)
            if len(tiles) > 1:
                keep = merge_tile_detections(xyxy, conf_arr, cls_arr, np.concatenate(tile_ids), np.concatenate(cut))
                xyxy, conf_arr, cls_arr = xyxy[keep], conf_arr[keep], cls_arr[keep]
            xyxy = scale_boxes(xyxy, factor) if (work_w, work_h) != (width, height) else xyxy
            xyxy = np.clip(xyxy, 0, [width, height, width, height])
        else:
            xyxy, conf_arr, cls_arr = np.zeros((0, 4)), np.zeros(0), np.zeros(0)
        timings["merge"] = (time.perf_counter() - t0) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return CountResult(
            xyxy=xyxy,
            class_id=cls_arr,
            confidence=conf_arr,
            class_names=self.class_names,
            image_size=(width, height),
            model=self.info,
            device=self.device,
            timings_ms=timings,
            tiles=len(tiles),
            source=source,
            conf=dict(zip(self.class_names, thresholds.tolist(), strict=True)),
            photo_scale=scale.value,
            scale_source=scale.source,
            runtime="torch",
            warnings=tuple(scale_warnings(scale, len(cls_arr), (width, height))),
        )

    def _check_budget(
        self,
        label: str,
        size: tuple[int, int],
        scale: PhotoScale,
        factor: float,
        tile_size: int,
        overlap: float,
        slicing: str,
    ) -> None:
        """Refuse, before doing it, work beyond :data:`WORK_BUDGET_PIXELS`; the message names the setting."""
        width, height = size
        work_w, work_h = max(1, round(width * factor)), max(1, round(height * factor))
        setting = f"adult females ≈ {scale.adult_female_px:.0f} px (photo scale {scale.value:.3g}, {scale.source})"
        if work_w * work_h > WORK_BUDGET_PIXELS:
            raise DetectorError(
                f"{label}: with {setting} the {width}×{height} photo becomes {work_w}×{work_h} px for the model "
                f"({work_w * work_h / 1e6:.0f} MP), over the {WORK_BUDGET_PIXELS / 1e6:.0f} MP one photo may use; "
                "set a larger adult female length (photo scale) — is the photo really that close up?"
            )
        if slicing == "off" or (slicing == "auto" and max(work_w, work_h) <= tile_size):
            return
        tiles = len(tile_grid(work_w, work_h, tile_size, overlap))
        limit = TILE_BUDGET_FACTOR * WORK_BUDGET_PIXELS // self.imgsz**2  # every tile costs one model input
        if tiles > limit:
            raise DetectorError(
                f"{label}: {tiles} tiles of {tile_size} px at {setting}, over the {limit} one photo may use; "
                f"use a larger tile size (the model's input is {self.imgsz} px) or a larger adult female length."
            )

    def thresholds(self, conf: float | None = None, class_conf: Mapping[str, float] | None = None) -> np.ndarray:
        """The confidence threshold of each class (model class order): see :meth:`count`."""
        if conf is not None:
            return np.full(len(self.class_names), float(conf))
        per_class = dict(class_conf if class_conf is not None else self.info.class_conf)
        unknown = sorted(set(per_class) - set(self.class_names))
        if unknown:
            raise DetectorError(f"class_conf names unknown classes {unknown}; the model has {list(self.class_names)}.")
        values = np.array([float(per_class.get(name, DEFAULT_CONF)) for name in self.class_names])
        if ((values < 0) | (values > 1)).any():
            raise DetectorError(f"class_conf thresholds must be between 0 and 1, got {per_class}.")
        return values
