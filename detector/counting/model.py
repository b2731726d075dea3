"""`Detector`: a loaded model version, the face of counting: load a version, count a photo, count many, stream.

The work is done below it: a runtime runs the network (:mod:`detector.counting.backends`, one class per
runtime), and the sliced count (:mod:`detector.counting.pipeline`) tiles, gates, merges and builds the
:class:`CountResult`, with the runtime's ``predict`` as its callback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from detector.counting.backends import ExportRuntime, UltralyticsRuntime, load_runtime, select_device
from detector.counting.images import ImageInput
from detector.counting.pipeline import Prepared, SlicedCount
from detector.counting.results import CountResult, ModelInfo
from detector.errors import DetectorError
from detector.settings import CountOptions, ModelSettings
from detector.versions.hub import ResolvedRuntime, ResolvedWeights, resolve_runtime, resolve_weights
from detector.versions.manifest import ModelVersion
from detector.versions.runtimes import TORCH, choose_runtime, runtime_unavailable

__all__ = ["Detector", "Prepared", "select_device"]

logger = logging.getLogger(__name__)


def _reference_fields(version: ModelVersion) -> dict[str, Any]:
    """The :class:`ModelInfo` fields of a version's scale reference (:attr:`ModelVersion.scale_reference`)."""
    reference = version.scale_reference
    return {
        "reference_class": reference.class_name,
        "reference_length_px": reference.length_px,
        "frame_sides": reference.frame_sides,
        "reference_length_m": reference.length_m,
    }


class Detector:
    """A loaded model version. Thread-safe: counts share one network, held one tile batch at a time.

    ``runtime`` None runs the weights with torch on ``device``; else the exported model (OpenVINO, ONNX), on the
    CPU (:mod:`detector.counting.backends`)."""

    def __init__(
        self,
        weights: ResolvedWeights,
        device: str | None = None,
        warmup: bool = True,
        threads: int | None = None,
        runtime: ResolvedRuntime | None = None,
    ) -> None:
        started = time.perf_counter()
        self.weights = weights
        version = weights.version
        self.network: UltralyticsRuntime = load_runtime(
            weights.path, runtime, device=device, imgsz=version.imgsz, threads=threads, warmup=warmup
        )
        self.class_names = self.network.class_names
        if version.class_names and tuple(version.class_names) != self.class_names:
            raise DetectorError(
                f"Weights {weights.path} have classes {self.class_names}, but version {version.name} "
                f"lists {tuple(version.class_names)}; fix the manifest or the model card."
            )
        self.info = ModelInfo(
            version=version.name,
            sha256=weights.sha256,
            source=weights.source,
            path=str(weights.path),
            repo_id=version.repo_id or None,
            revision=version.revision or None,
            commit=version.commit or None,
            class_names=self.class_names,
            imgsz=self.network.imgsz,
            ground_scale=float(version.ground_scale or 1.0),
            class_conf=dict(version.class_conf),
            greyscale_input=bool(version.greyscale_input),
            runtime=self.network.name,
            runtime_path=str(runtime.path) if runtime is not None else None,
            **_reference_fields(replace(version, class_names=self.class_names)),
        )
        self.pipeline = SlicedCount(self.network.predict, self.info, self.network.device)
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
        if name == TORCH:
            return cls(weights, device=device, warmup=warmup, threads=threads)
        try:
            why = runtime_unavailable(name, weights.version)
            if why:
                raise DetectorError(f"{why}.")
            runtime = resolve_runtime(name, weights, model)
            return cls(weights, device=device, warmup=warmup, threads=threads, runtime=runtime)
        except DetectorError as exc:
            if model.runtime != "auto":
                raise DetectorError(f"Runtime {name} asked for, but it cannot run here: {exc}") from exc
            logger.warning("Runtime %s not available for model %s (%s); using torch.", name, weights.version.name, exc)
        return cls(weights, device=device, warmup=warmup, threads=threads)

    @property
    def runtime(self) -> str:
        """The runtime's name: ``torch``, ``openvino-f32``, ..."""
        return self.network.name

    @property
    def device(self) -> str:
        return self.network.device

    @property
    def imgsz(self) -> int:
        return self.network.imgsz

    @property
    def ground_scale(self) -> float:
        return self.info.ground_scale

    @property
    def exported(self) -> bool:
        """Whether an export runs the network (not the weights in torch)."""
        return isinstance(self.network, ExportRuntime)

    def __repr__(self) -> str:
        return (
            f"Detector(version={self.info.version!r}, sha256={self.info.sha256[:12]}, device={self.device!r}, "
            f"runtime={self.runtime!r})"
        )

    def scale_reference_warning(self) -> str | None:
        """What to tell a user of a model that names no scale reference (no reference class and length: a weights
        file no manifest lists whose classes are not the sea lions', or a manifest entry without
        ``reference_class``), whose auto scale takes every photo at the resolution the model learned from; None when
        it names one. (Each count at auto scale also says so in its ``warnings``.)"""
        if self.info.scale_reference.length_px is not None:
            return None
        version = self.weights.version
        if version.repo_id:
            why = f"its manifest entry ({version.name}) names no reference_class and reference_length_px"
            fix = "add them to the entry"
        else:
            why = "the weights file is not in the model manifest and its classes are not the sea lions'"
            fix = "list the file in a manifest entry with reference_class and reference_length_px (docs/pinnipeds.md)"
        return (
            f"{Path(self.weights.path).name} names no scale reference for its classes ({', '.join(self.class_names)}): "
            f"{why}, so auto takes every photo at the resolution the model learned from (photo scale 1). Give the "
            f"photo scale (--photo-scale S) when the animals are larger or smaller, or {fix} to set it by a "
            "measured animal (--reference-length PX)."
        )

    def thresholds(self, options: CountOptions | None = None) -> dict[str, float]:
        """Each class's confidence threshold a count with ``options`` keeps (see :meth:`count`)."""
        count = self.pipeline.thresholds(options or CountOptions()).count
        return dict(zip(self.class_names, count.tolist(), strict=True))

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
        return self.count_many([self.prepare(image, options, source=source)], options)[0]

    def prepare(self, image: ImageInput, options: CountOptions | None = None, *, source: str | None = None) -> Prepared:
        """Decode a photo at the model's scale (the CPU half of :meth:`count`, free of the model: a survey run does
        it in other threads while the network counts the previous photo). Raises DetectorError for bad input."""
        return self.pipeline.prepare(image, options or CountOptions(), source=source)

    def count_many(self, prepared: Sequence[Prepared], options: CountOptions | None = None) -> list[CountResult]:
        """Prepared photos counted together, their tiles filling the network's batches across photo boundaries."""
        return list(self.stream(prepared, options))

    def stream(self, prepared: Sequence[Prepared], options: CountOptions | None = None) -> Iterator[CountResult]:
        """:meth:`count_many`, each photo's result given as soon as its last tile is through the network (a survey
        run writes its line then). A result's inference time is the time since the previous one."""
        return self.pipeline.stream(prepared, options or CountOptions())
