"""`Detector`: YOLOv5 (through ultralytics) with sliced inference, returning a `CountResult`."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detector.counting.detections import Detections
from detector.counting.gate import (
    DEFAULT_GATE_SETTINGS,
    GateSettings,
    coarse_size,
    margin_in_work_pixels,
    tiles_to_grow,
    tiles_touched,
)
from detector.counting.images import ImageInput, greyscale, header_size, load_image, resize_to
from detector.counting.results import CountResult, ModelInfo
from detector.counting.scale import PhotoScale, choose_photo_scale, scale_warnings
from detector.counting.slicing import tile_grid
from detector.errors import DetectorError
from detector.settings import DEFAULT_CONF, DEFAULT_IMGSZ, DEFAULT_IOU, CountOptions, ModelSettings
from detector.versions.hub import ResolvedRuntime, ResolvedWeights, resolve_runtime, resolve_weights
from detector.versions.runtimes import choose_runtime, runtime_unavailable

logger = logging.getLogger(__name__)

MAX_DETECTIONS_PER_TILE = 1000  # ultralytics' default 300 can cap a dense rookery tile at a low threshold
# The work one photo may cost, checked before any of it is done: the photo as the model sees it (after rescaling)
# may have at most WORK_BUDGET_PIXELS (3x a 5616x3744 survey original at ground scale 1.0; the shipped model sees
# 5 MP of one), and the tiles sent through the network at most TILE_BUDGET_FACTOR times that in model-input pixels
# (overlaps and small tiles letterboxed up to the input size). About 30 s of CPU at the budget's edge.
WORK_BUDGET_PIXELS = 64_000_000
TILE_BUDGET_FACTOR = 4


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
        raise DetectorError(f"Device {requested!r} asked for, but CUDA is not available here; use --device cpu.")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DetectorError("Device 'mps' asked for, but Apple MPS is not available here; use --device cpu.")
    if requested != "cpu" and not requested.startswith(("cuda", "mps")):
        raise DetectorError(f"Unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps.")
    return requested


@dataclass(frozen=True)
class Prepared:
    """A photo decoded and resized to the model's scale, ready for :meth:`Detector.count_prepared`."""

    work: np.ndarray  # RGB uint8 at the model's scale
    size: tuple[int, int]  # the photo's own (width, height)
    scale: PhotoScale
    factor: float  # work = photo resized by this
    tile_size: int
    source: str | None
    preprocess_ms: float


class Detector:
    """A loaded model version. Thread-safe: calls to :meth:`count` share one model, locked one tile batch at a time.

    ``runtime`` None runs the weights with torch; else the exported model (OpenVINO, ONNX) through ultralytics'
    own loading of exported models (AutoBackend), on the CPU."""

    def __init__(
        self,
        weights: ResolvedWeights,
        device: str | None = None,
        warmup: bool = True,
        threads: int | None = None,
        runtime: ResolvedRuntime | None = None,
    ) -> None:
        import torch
        from ultralytics import YOLO

        started = time.perf_counter()
        self.weights = weights
        self.device = "cpu" if runtime is not None else select_device(device)
        self.runtime = runtime.name if runtime is not None else "torch"
        self.half = self.device.startswith("cuda")
        self._lock = threading.Lock()
        model_path = runtime.path if runtime is not None else weights.path
        try:
            self._yolo = YOLO(str(model_path), task="detect")
        except Exception as exc:  # ultralytics raises many types for a bad checkpoint or export
            raise DetectorError(f"Cannot load {self.runtime} model {model_path}: {type(exc).__name__}: {exc}") from exc
        version = weights.version
        trained_at = (getattr(self._yolo, "ckpt", None) or {}).get("train_args", {}).get("imgsz")
        self.imgsz = int(version.imgsz or trained_at or DEFAULT_IMGSZ)  # the manifest's, else the checkpoint's own
        self._threads = threads or os.cpu_count() or 1  # CPU threads (a Ray actor gets its own share)
        blank = [np.zeros((self.imgsz, self.imgsz, 3), dtype=np.uint8)]
        if runtime is not None:  # an export knows its class names only once loaded: load it for real, once (asking
            self._predict(blank, DEFAULT_CONF, DEFAULT_IOU)  # ultralytics for names first loads a throwaway copy)
        names = self._yolo.names
        self.class_names: tuple[str, ...] = tuple(names[i] for i in sorted(names))
        if version.class_names and tuple(version.class_names) != self.class_names:
            raise DetectorError(
                f"Weights {weights.path} have classes {self.class_names}, but version {version.name} "
                f"lists {tuple(version.class_names)}; fix the manifest or the model card."
            )
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
            runtime=self.runtime,
            runtime_path=str(runtime.path) if runtime is not None else None,
        )
        configure = runtime is not None and runtime.runtime.format == "openvino"
        if warmup and runtime is None:  # an export ran its first prediction above (its predictor is set up)
            self._predict(blank, DEFAULT_CONF, DEFAULT_IOU)
        if configure:
            self._configure_openvino(runtime, threads)
        torch.set_num_threads(self._threads)
        self.load_ms = (time.perf_counter() - started) * 1000

    @classmethod
    def load(cls, model: ModelSettings | None = None, *, warmup: bool = True, threads: int | None = None) -> Detector:
        """Resolve a model version (:func:`~detector.versions.hub.resolve_weights`) and load it on ``model.device`` with
        ``model.runtime`` (:func:`~detector.versions.runtimes.choose_runtime`).

        An exported runtime that auto chose but cannot run here (package missing, files unreachable or refused,
        loading failed) falls back to torch with one logged line; one asked for by name raises instead."""
        model = model or ModelSettings()
        weights = resolve_weights(model)
        device = select_device(model.device)
        name = choose_runtime(model.runtime, weights.version, device)
        if name == "torch":
            return cls(weights, device=device, warmup=warmup, threads=threads)
        try:
            why = runtime_unavailable(name, weights.version)
            if why:
                raise DetectorError(f"{why}.")
            if device != "cpu":
                logger.warning(
                    "Runtime %s runs on the CPU, not on %s (use --runtime torch for %s).", name, device, device
                )
            runtime = resolve_runtime(name, weights, model)
            return cls(weights, device="cpu", warmup=warmup, threads=threads, runtime=runtime)
        except DetectorError as exc:
            if model.runtime != "auto":
                raise DetectorError(f"Runtime {name} asked for, but it cannot run here: {exc}") from exc
            logger.warning("Runtime %s not available for model %s (%s); using torch.", name, weights.version.name, exc)
        return cls(weights, device=device, warmup=warmup, threads=threads)

    def __repr__(self) -> str:
        return (
            f"Detector(version={self.info.version!r}, sha256={self.info.sha256[:12]}, device={self.device!r}, "
            f"runtime={self.runtime!r})"
        )

    def _configure_openvino(self, runtime: ResolvedRuntime, threads: int | None) -> None:
        """Compile the OpenVINO model again with what ultralytics' OpenVINO backend has no option for: the export's
        inference precision (e.g. fp32 on a CPU whose default is bf16), an explicit thread count (a Ray actor's
        share) and any batch size. A static-batch export (16 tiles) otherwise runs a short batch padded with blank
        tiles: 80 tiles' work for a 70-tile photo, 32 for a gated pass of 18. Compiled for any batch, a short
        batch costs only its tiles (OpenVINO's CPU time per tile is the same at 16 and at 6, measured on v4).
        This reaches into the backend: its ``compile_model`` (also used when it recompiles for a new input shape)
        gets the settings, the compiled model is replaced, and the metadata AutoBackend reads to pad short batches
        says the batch is free. Everything else (pre-processing at the export's size, inference, NMS) stays
        ultralytics'."""
        import functools

        backend = getattr(getattr(self._yolo.predictor, "model", None), "backend", None)
        if not hasattr(backend, "compile_model") or not hasattr(backend, "ov"):
            raise DetectorError(f"Cannot configure {runtime.path}: not loaded by ultralytics' OpenVINO backend.")
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if runtime.runtime.inference_precision:
            config["INFERENCE_PRECISION_HINT"] = runtime.runtime.inference_precision
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        xml = runtime.path if runtime.path.is_file() else next(runtime.path.glob("*.xml"))
        backend.compile_model = functools.partial(backend.compile_model, config=config)
        try:
            model = backend.ov.Core().read_model(model=str(xml), weights=xml.with_suffix(".bin"))
            shape = model.input().get_partial_shape()
            free_batch = shape.rank.is_static and shape[0].is_static
            if free_batch:
                model.reshape([-1, *shape[1:]])
            backend.ov_compiled_model = backend.compile_model(model)
        except Exception as exc:  # OpenVINO raises RuntimeError for an unsupported setting or a bad model
            raise DetectorError(f"Cannot compile {runtime.path} with {config}: {type(exc).__name__}: {exc}") from exc
        if free_batch:  # AutoBackend pads (and splits) batches only for a fixed one; tiles stay at the export's size
            backend.metadata["dynamic"] = True

    def _predict(self, bgr_tiles: list[np.ndarray], conf: float, iou: float) -> list:
        """Run one batch of BGR tiles (ultralytics' order for arrays); returns ultralytics Results (boxes in tile
        pixels)."""
        import torch

        options = {"half": True} if self.half else {}  # passing half at all warns on ultralytics 8.4 CPU
        results = self._yolo.predict(
            bgr_tiles, imgsz=self.imgsz, conf=conf, iou=iou, device=self.device, verbose=False,
            max_det=MAX_DETECTIONS_PER_TILE, **options,
        )  # fmt: skip
        torch.set_num_threads(self._threads)  # ultralytics caps CPU threads at cores-1 when it selects a device
        return results

    def count(
        self, image: ImageInput, options: CountOptions | None = None, *, source: str | None = None, **changes: Any
    ) -> CountResult:
        """Detect and count animals in one photo, with ``options`` (keyword ``changes`` replace some of its fields).

        Confidence threshold: ``conf`` when given (one for every class); else ``class_conf`` or the model
        version's calibrated per-class thresholds (chosen on cross-validation to count best), else
        ``DEFAULT_CONF``. The thresholds applied are recorded in the result (``result.conf``).

        ``photo_scale`` is the photo's resolution relative to a survey original (0.25 for a photo downsampled
        4x; see :mod:`detector.counting.scale`); None (auto) derives it from the photo's size, assuming a whole survey
        frame. The photo is resized by ``ground_scale / photo_scale`` to match the model. The scale used, and
        warnings when it looks wrong, are recorded in the result.
        ``slicing``: "auto" tiles photos larger than a tile, "on" always tiles, "off" runs the whole photo
        letterboxed to the model input.
        """
        options = (options or CountOptions()).changed(**changes)
        return self.count_prepared(self.prepare(image, options, source=source), options)

    def prepare(self, image: ImageInput, options: CountOptions | None = None, *, source: str | None = None) -> Prepared:
        """Decode a photo at the model's scale (the CPU half of :meth:`count`, free of the model: a survey run does
        it in other threads while the network counts the previous photo). Raises DetectorError for bad input."""
        options = options or CountOptions()
        self.thresholds(options.conf, options.class_conf)  # refuse bad thresholds before decoding
        tile_size = int(options.tile_size or self.imgsz)
        if source is None and isinstance(image, (str, os.PathLike)):
            source = Path(image).name
        started = time.perf_counter()
        # A file's size comes from its header, so the scale, the budget and the decode size are known before a
        # pixel is decoded: a JPEG the model sees smaller is decoded straight at (at least) that size.
        size = header_size(image, label=source)
        rgb = None if size else load_image(image, label=source)
        width, height = size or (rgb.shape[1], rgb.shape[0])
        try:
            scale = choose_photo_scale(options.photo_scale, width, height)
        except ValueError as exc:
            raise DetectorError(f"{exc}.") from None
        factor = self.ground_scale / scale.value
        self._check_budget(source or "photo", (width, height), scale, factor, tile_size, options)
        if rgb is None:
            rgb = load_image(image, label=source, reduce=factor)
        work = resize_to(rgb, (max(1, round(width * factor)), max(1, round(height * factor))))
        if self.info.greyscale_input:  # a colour photo and its greyscale copy then count the same
            work = greyscale(work)
        return Prepared(work, (width, height), scale, factor, tile_size, source, (time.perf_counter() - started) * 1000)

    def count_prepared(self, prepared: Prepared, options: CountOptions | None = None) -> CountResult:
        """The network half of :meth:`count`: tiles → detections → seam merge → the result in photo pixels."""
        return self.count_prepared_many([prepared], options)[0]

    def count_prepared_many(
        self, prepared: Sequence[Prepared], options: CountOptions | None = None
    ) -> list[CountResult]:
        """:meth:`count_prepared` for several photos at once, their tiles filling the network's batches across
        photo boundaries (a survey run: full batches, one short batch per group instead of one per photo)."""
        return list(self.count_prepared_stream(prepared, options))

    def count_prepared_stream(
        self, prepared: Sequence[Prepared], options: CountOptions | None = None
    ) -> Iterator[CountResult]:
        """:meth:`count_prepared_many`, each photo's result given as soon as its last tile is through the network
        (a survey run writes its line then). A result's inference time is the time since the previous one."""
        options = options or CountOptions()
        thresholds = self.thresholds(options.conf, options.class_conf)
        grids = [self._tiles(p.work.shape[1], p.work.shape[0], p.tile_size, options) for p in prepared]
        keep, gate_tiles = ([None] * len(grids), [0] * len(grids))
        found_options = self._growing_options(options)
        started = time.perf_counter()
        if options.gate:
            keep, gate_tiles = self.gate(prepared, grids, options)
        gate_ms = (time.perf_counter() - started) * 1000
        all_gate = max(1, sum(gate_tiles))
        runs = [grid if mask is None else grid[mask] for grid, mask in zip(grids, keep, strict=True)]
        last = time.perf_counter()
        for index, detections in self.detect_stream(
            [(p.work, run) for p, run in zip(prepared, runs, strict=True)], found_options
        ):
            grid, ran, gate = grids[index], keep[index], gate_tiles[index]
            if ran is not None:
                detections, ran = self.grow(prepared[index], grid, ran, detections, found_options)
            detections = detections.above(thresholds)
            now = time.perf_counter()
            skipped = 0 if ran is None else int((~ran).sum())
            yield self._result(
                prepared[index], detections, (len(grid), skipped, gate),
                {"gate": gate_ms * gate / all_gate, "inference": (now - last) * 1000}, thresholds,
            )  # fmt: skip
            last = now

    def _growing_options(self, options: CountOptions, settings: GateSettings = DEFAULT_GATE_SETTINGS) -> CountOptions:
        """What the full pass keeps: with a growing gate, every hit at the gate's confidence (faint hits grow the
        gate too; the count then keeps only its own thresholds), else the count's thresholds."""
        if not options.gate:
            return options
        return options.changed(conf=self._gate_conf(options, settings))

    def _gate_conf(self, options: CountOptions, settings: GateSettings = DEFAULT_GATE_SETTINGS) -> float:
        """The confidence at which the coarse pass marks animals and full-pass hits grow the gate: the gate's, never
        stricter than the count's own thresholds."""
        return min(settings.conf, float(self.thresholds(options.conf, options.class_conf).min()))

    def gated_tiles(self, prepared: Prepared, options: CountOptions) -> tuple[np.ndarray, np.ndarray]:
        """The photo's tiles and which of them a gated count runs (coarse pass, then growing): what
        ``benchmarks.gate_recall`` holds the dots against."""
        grid = self._tiles(prepared.work.shape[1], prepared.work.shape[0], prepared.tile_size, options)
        (ran,), _ = self.gate([prepared], [grid], options)
        if ran is None:
            return grid, np.ones(len(grid), dtype=bool)
        found_options = self._growing_options(options)
        _, ran = self.grow(prepared, grid, ran, self.detect(prepared.work, grid[ran], found_options), found_options)
        return grid, ran

    def grow(
        self, prepared: Prepared, grid: np.ndarray, ran: np.ndarray, found: Detections, options: CountOptions,
        settings: GateSettings = DEFAULT_GATE_SETTINGS,
    ) -> tuple[Detections, np.ndarray]:  # fmt: skip
        """The gate's second half (:func:`detector.counting.gate.tiles_to_grow`): run the skipped tiles of ``grid``
        that the full pass's detections reach, until none does; all detections (tile ids stay distinct) and the
        tiles that ran."""
        margin = margin_in_work_pixels(settings, self.ground_scale)
        ran = ran.copy()
        while (more := tiles_to_grow(grid, ran, found.xyxy, margin)).any():
            extra = self.detect(prepared.work, grid[more], options)
            first_id = int(ran.sum())  # detect numbers its tiles from 0; the tiles already run hold 0..first_id-1
            found = Detections.merge([found, replace(extra, tile_id=extra.tile_id + first_id)])
            ran |= more
        return found, ran

    def gate(
        self, prepared: Sequence[Prepared], grids: Sequence[np.ndarray], options: CountOptions,
        settings: GateSettings = DEFAULT_GATE_SETTINGS,
    ) -> tuple[list[np.ndarray | None], list[int]]:  # fmt: skip
        """The tile gate (:mod:`detector.counting.gate`): for each photo, which of its ``grids`` tiles the full pass
        needs (None: all of them; a photo of one tile, one enlarged for the model, or one whose coarse view would
        cost as many tiles, is not gated), and how many tiles the coarse pass ran. The coarse views of all photos
        share the network's batches."""
        coarse = options.changed(conf=self._gate_conf(options, settings), class_conf=None, overlap=settings.overlap)
        coarse_options = coarse.changed(slicing="auto")
        views: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for index, (one, grid) in enumerate(zip(prepared, grids, strict=True)):
            width, height = one.work.shape[1], one.work.shape[0]
            size = coarse_size(width, height, settings.coarse)
            coarse_tiles = self._tiles(size[0], size[1], one.tile_size, coarse_options)
            if len(grid) > 1 and len(coarse_tiles) < len(grid) and one.factor <= settings.max_enlargement:
                views[index] = (resize_to(one.work, size), coarse_tiles)
        keep: list[np.ndarray | None] = [None] * len(grids)
        counted = [0] * len(grids)
        if not views:
            return keep, counted
        found = self.detect_many(list(views.values()), coarse_options)
        for (index, (view, coarse_tiles)), hits in zip(views.items(), found, strict=True):
            work_h, work_w = prepared[index].work.shape[:2]
            to_work = np.array([work_w / view.shape[1], work_h / view.shape[0]] * 2, dtype=np.float32)
            margin = margin_in_work_pixels(settings, self.ground_scale)
            keep[index] = tiles_touched(grids[index], hits.xyxy * to_work, margin)
            counted[index] = len(coarse_tiles)
        return keep, counted

    def _result(
        self,
        prepared: Prepared,
        found: Detections,
        tiles: tuple[int, int, int],
        network_ms: dict[str, float],
        thresholds: np.ndarray,
    ) -> CountResult:
        """Merge a photo's tile detections across seams and map them to the photo's own pixels. ``tiles``: the
        photo's tiles, those the gate skipped, and those the gate's coarse pass ran."""
        work_h, work_w = prepared.work.shape[:2]
        width, height = prepared.size
        timings = {"preprocess": prepared.preprocess_ms, **network_ms}
        started = time.perf_counter()
        resized = (work_w, work_h) != (width, height)
        found = found.merge_tiles().rescaled(prepared.factor if resized else 1, (width, height))
        timings["merge"] = (time.perf_counter() - started) * 1000
        timings["total"] = sum(timings.values())
        return CountResult(
            xyxy=found.xyxy,
            class_id=found.class_id,
            confidence=found.confidence,
            class_names=self.class_names,
            image_size=(width, height),
            model=self.info,
            device=self.device,
            timings_ms=timings,
            tiles=tiles[0],
            tiles_skipped=tiles[1],
            gate_tiles=tiles[2],
            source=prepared.source,
            conf=dict(zip(self.class_names, thresholds.tolist(), strict=True)),
            photo_scale=prepared.scale.value,
            scale_source=prepared.scale.source,
            runtime=self.runtime,
            warnings=tuple(scale_warnings(prepared.scale, len(found), (width, height))),
        )

    @staticmethod
    def _tiles(width: int, height: int, tile_size: int, options: CountOptions) -> np.ndarray:
        """The tiles the model sees: a grid when slicing (auto: when the image is larger than a tile), else one."""
        sliced = options.slicing == "on" or (options.slicing == "auto" and max(width, height) > tile_size)
        return tile_grid(width, height, tile_size, options.overlap) if sliced else np.array([[0, 0, width, height]])

    def detect(self, work: np.ndarray, tiles: np.ndarray, options: CountOptions | None = None) -> Detections:
        """Run the network on ``tiles`` of an image already at the model's scale, a batch at a time: detections in
        that image's pixels, each class held to its threshold, seam duplicates not yet merged."""
        return self.detect_many([(work, tiles)], options)[0]

    def detect_many(
        self, images: Sequence[tuple[np.ndarray, np.ndarray]], options: CountOptions | None = None
    ) -> list[Detections]:
        """:meth:`detect` for several (image, tiles) pairs, one stream of tiles cut into batches of
        ``options.batch_size`` that run on across images: each image's detections, in its own pixels."""
        return [found for _, found in self.detect_stream(images, options)]

    def detect_stream(
        self, images: Sequence[tuple[np.ndarray, np.ndarray]], options: CountOptions | None = None
    ) -> Iterator[tuple[int, Detections]]:
        """:meth:`detect_many`, giving ``(index, detections)`` of each image, in order, once its last tile is done."""
        options = options or CountOptions()
        thresholds = self.thresholds(options.conf, options.class_conf)
        floor = float(thresholds.min())  # one predict call for every class; each is then held to its own threshold
        # ultralytics takes arrays in BGR order: one conversion per image, and each tile is then a view of it
        bgr = [cv2.cvtColor(np.ascontiguousarray(work), cv2.COLOR_RGB2BGR) for work, _ in images]
        stream = [(index, number, tile) for index, (_, tiles) in enumerate(images) for number, tile in enumerate(tiles)]
        sizes = [(work.shape[1], work.shape[0]) for work, _ in images]
        parts: list[list[Detections]] = [[] for _ in images]
        done = 0  # images given so far
        for start in range(0, len(stream), options.batch_size):
            chunk = stream[start : start + options.batch_size]
            crops = [bgr[index][y1:y2, x1:x2] for index, _, (x1, y1, x2, y2) in chunk]
            # One batch of tiles at a time holds the model: concurrent photos interleave batch by batch, so a
            # large photo delays a small one by one batch, not by its whole count.
            with self._lock:
                results = self._predict(crops, floor, options.iou)
            for (index, number, tile), result in zip(chunk, results, strict=True):
                kept = Detections.from_ultralytics(result).above(thresholds)
                if len(kept):
                    parts[index].append(kept.from_tile(tile, number, sizes[index]))
            finished = chunk[-1][0] + (chunk[-1][1] == len(images[chunk[-1][0]][1]) - 1)  # images now complete
            for index in range(done, finished):
                yield index, Detections.merge(parts[index])
            done = finished
        for index in range(done, len(images)):  # images without tiles
            yield index, Detections.merge(parts[index])

    def _check_budget(
        self,
        label: str,
        size: tuple[int, int],
        scale: PhotoScale,
        factor: float,
        tile_size: int,
        options: CountOptions,
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
        tiles = len(self._tiles(work_w, work_h, tile_size, options))
        if tiles == 1:
            return
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
