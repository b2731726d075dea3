"""`CountResult`: the one result type carried from the detector to the CLI, the app and the API."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detector.counting.scale import SEA_LION_REFERENCE, ScaleReference


@dataclass(frozen=True)
class ModelInfo:
    """Which model produced a result, and where its weights came from."""

    version: str  # manifest name, e.g. "v1" (or "local" for an explicit file)
    sha256: str  # of the weights file that was loaded
    source: str  # "local" | "cache" | "hub" | "shipped"
    path: str  # the weights file on disk
    repo_id: str | None = None
    revision: str | None = None  # tag or branch asked for
    commit: str | None = None  # full commit sha on the hub
    class_names: tuple[str, ...] = ()
    imgsz: int = 640
    ground_scale: float = 1.0  # photo scale the model was trained at (1.0 = native survey resolution)
    class_conf: Mapping[str, float] = field(default_factory=dict)  # the version's calibrated count thresholds
    greyscale_input: bool = False  # photos are counted as their greyscale copy
    runtime: str = "torch"  # what runs the network: "torch" or an exported runtime ("openvino", ...)
    runtime_path: str | None = None  # the exported model loaded (None: the weights file, with torch)
    reference_class: str | None = SEA_LION_REFERENCE.class_name  # how photo scale is measured (ScaleReference)
    reference_length_px: float | None = SEA_LION_REFERENCE.length_px
    frame_sides: tuple[int, ...] = SEA_LION_REFERENCE.frame_sides
    reference_length_m: float | None = SEA_LION_REFERENCE.length_m  # on the ground (GeoTIFFs); None: not known

    @property
    def scale_reference(self) -> ScaleReference:
        """The version's reference class and length (sea lions: adult females, 80 px at photo scale 1, 2.4 m)."""
        return ScaleReference(
            self.reference_class, self.reference_length_px, tuple(self.frame_sides), self.reference_length_m
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["class_names"] = list(self.class_names)
        data["class_conf"] = dict(self.class_conf)
        data["frame_sides"] = list(self.frame_sides)
        return data

    def public_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` fit for API answers: the server's paths become file names (``weights_file``,
        ``runtime_file``). (A ``"path"`` key would also make gradio_client treat the dict as a file to download.)"""
        data = self.to_dict()
        path, runtime_path = data.pop("path"), data.pop("runtime_path")
        data["weights_file"] = Path(path).name if path else None
        data["runtime_file"] = Path(runtime_path).name if runtime_path else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        """From :meth:`to_dict` or :meth:`public_dict` output (an API answer names the files only)."""
        data = dict(data)
        weights_file, runtime_file = data.pop("weights_file", None), data.pop("runtime_file", None)
        data.setdefault("path", weights_file or "")
        data.setdefault("runtime_path", runtime_file)
        data["class_names"] = tuple(data.get("class_names", ()))
        data["class_conf"] = dict(data.get("class_conf") or {})
        if "frame_sides" in data:
            data["frame_sides"] = tuple(data["frame_sides"] or ())
        if "reference_length_m" not in data and data.get("reference_class", SEA_LION_REFERENCE.class_name) != (
            SEA_LION_REFERENCE.class_name
        ):  # written before versions named metres: the sea lion default is not another class's length
            data["reference_length_m"] = None
        return cls(**{name: value for name, value in data.items() if name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class CountResult:
    """Detections in one photo, with per-class counts.

    Boxes are ``xyxy`` in pixels of the original image as given (after EXIF rotation).
    Arrays are numpy columns of equal length, validated at construction.
    """

    xyxy: np.ndarray  # (N, 4) float32
    class_id: np.ndarray  # (N,) int64
    confidence: np.ndarray  # (N,) float32
    class_names: tuple[str, ...]
    image_size: tuple[int, int]  # (width, height)
    model: ModelInfo | None = None
    device: str = "cpu"
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    tiles: int = 1  # the tiles the photo was cut into (the full pass ran tiles - tiles_skipped of them)
    source: str | None = None  # file name or label of the input
    conf: Mapping[str, float] = field(default_factory=dict)  # the confidence threshold applied, per class
    photo_scale: float | None = None  # photo resolution relative to a survey original (detector.counting.scale)
    scale_source: str | None = None  # "auto" (from the photo's size) or "manual"
    runtime: str = "torch"  # what ran the network
    warnings: tuple[str, ...] = ()  # plain-language doubts about this count (e.g. the photo scale)
    tiles_skipped: int = (
        0  # tiles the gate found no animal near (detector.counting.gate): the full pass did not run them
    )
    gate_tiles: int = 0  # tiles the gate's coarse pass ran (0: not gated)

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if not len(xyxy) == len(class_id) == len(confidence):
            raise ValueError(
                f"xyxy, class_id and confidence must have the same length, got "
                f"{len(xyxy)}, {len(class_id)}, {len(confidence)}"
            )
        if not self.class_names:
            raise ValueError("class_names must not be empty")
        if len(class_id) and (class_id.min() < 0 or class_id.max() >= len(self.class_names)):
            raise ValueError(f"class_id out of range 0..{len(self.class_names) - 1}")
        width, height = (int(v) for v in self.image_size)
        if width <= 0 or height <= 0:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "class_id", class_id)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "image_size", (width, height))
        object.__setattr__(self, "timings_ms", dict(self.timings_ms))
        object.__setattr__(self, "conf", {str(k): float(v) for k, v in self.conf.items()})
        object.__setattr__(self, "warnings", tuple(str(w) for w in self.warnings))
        if self.photo_scale is not None:
            object.__setattr__(self, "photo_scale", float(self.photo_scale))

    def __len__(self) -> int:
        return len(self.class_id)

    @classmethod
    def empty(cls, class_names: Sequence[str], image_size: tuple[int, int], **kwargs: Any) -> CountResult:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0), tuple(class_names), image_size, **kwargs)

    @property
    def counts(self) -> dict[str, int]:
        """Per-class counts, every class present (zeros included), in model class order."""
        per_class = np.bincount(self.class_id, minlength=len(self.class_names))
        return {name: int(per_class[i]) for i, name in enumerate(self.class_names)}

    @property
    def total(self) -> int:
        return len(self)

    @property
    def tiles_run(self) -> int:
        """Tiles the full pass ran (the gate skipped the others)."""
        return self.tiles - self.tiles_skipped

    @property
    def scale_reference(self) -> ScaleReference:
        """How the model measures photo scale (the sea lion default when the result names no model)."""
        return self.model.scale_reference if self.model else SEA_LION_REFERENCE

    @property
    def reference_px(self) -> float | None:
        """Typical length (pixels) of the model's reference class in this photo at the photo scale used."""
        return None if self.photo_scale is None else self.scale_reference.length_at(self.photo_scale)

    @property
    def adult_female_px(self) -> float | None:
        """Typical adult female length in this photo (pixels) at the photo scale used; None for a model whose
        reference class is not the sea lions' adult females (see :attr:`reference_px`)."""
        return self.reference_px if self.scale_reference.class_name == "adult_females" else None

    def to_dict(self, include_boxes: bool = True) -> dict[str, Any]:
        """A JSON-ready dict. Box rows are ``[x1, y1, x2, y2, confidence, class_id]``."""
        data: dict[str, Any] = {
            "source": self.source,
            "counts": self.counts,
            "total": self.total,
            "image_size": {"width": self.image_size[0], "height": self.image_size[1]},
            "class_names": list(self.class_names),
            "model": self.model.to_dict() if self.model else None,
            "device": self.device,
            "tiles": self.tiles,
            "tiles_run": self.tiles_run,
            "tiles_skipped": self.tiles_skipped,
            "gate_tiles": self.gate_tiles,
            "conf": {k: round(v, 4) for k, v in self.conf.items()},
            "photo_scale": None if self.photo_scale is None else round(self.photo_scale, 6),
            "scale_source": self.scale_source,
            "adult_female_px": None if self.adult_female_px is None else round(self.adult_female_px, 1),
            "reference_class": self.scale_reference.class_name,
            "reference_px": None if self.reference_px is None else round(self.reference_px, 1),
            "runtime": self.runtime,
            "warnings": list(self.warnings),
            "timings_ms": {k: round(float(v), 2) for k, v in self.timings_ms.items()},
        }
        if include_boxes:
            data["detections"] = [
                {
                    "xyxy": [round(float(v), 1) for v in box],
                    "confidence": round(float(score), 4),
                    "class_id": int(cid),
                    "class_name": self.class_names[int(cid)],
                }
                for box, score, cid in zip(self.xyxy, self.confidence, self.class_id, strict=True)
            ]
        return data

    def to_json(self, include_boxes: bool = True, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(include_boxes=include_boxes), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CountResult:
        """Rebuild a result from :meth:`to_dict` output, or from a JSON answer of the API (its public model)."""
        detections = data.get("detections", [])
        model = data.get("model")
        return cls(
            xyxy=np.array([d["xyxy"] for d in detections], dtype=np.float32).reshape(-1, 4),
            class_id=np.array([d["class_id"] for d in detections], dtype=np.int64),
            confidence=np.array([d["confidence"] for d in detections], dtype=np.float32),
            class_names=tuple(data["class_names"]),
            image_size=(data["image_size"]["width"], data["image_size"]["height"]),
            model=ModelInfo.from_dict(model) if model else None,
            device=data.get("device", "cpu"),
            timings_ms=data.get("timings_ms", {}),
            tiles=data.get("tiles", 1),
            source=data.get("source"),
            conf=data.get("conf") or {},
            photo_scale=data.get("photo_scale"),
            scale_source=data.get("scale_source"),
            runtime=data.get("runtime", "torch"),
            warnings=tuple(data.get("warnings") or ()),
            tiles_skipped=data.get("tiles_skipped", 0),
            gate_tiles=data.get("gate_tiles", 0),
        )

    @staticmethod
    def csv_header(class_names: Sequence[str]) -> list[str]:
        """Column names of :meth:`csv_row` for a model with these classes."""
        return [
            "file",
            *class_names,
            "total",
            "width",
            "height",
            "model_version",
            "model_sha256",
            "runtime",
            "device",
            "photo_scale",
            "scale_source",
            "thresholds",
            "elapsed_ms",
            "warnings",
            "tiles_run",
            "tiles_skipped",
        ]

    def csv_row(self) -> list[Any]:
        """One CSV row: file, one column per class, total, image size, model, settings, time, warnings."""
        return [
            self.source or "",
            *self.counts.values(),
            self.total,
            self.image_size[0],
            self.image_size[1],
            self.model.version if self.model else "",
            self.model.sha256 if self.model else "",
            self.runtime,
            self.device,
            "" if self.photo_scale is None else round(self.photo_scale, 6),
            self.scale_source or "",
            " ".join(f"{name}={value:.2f}" for name, value in self.conf.items()),
            round(float(self.timings_ms.get("total", 0.0)), 1),
            " | ".join(self.warnings),
            self.tiles_run,
            self.tiles_skipped,
        ]
