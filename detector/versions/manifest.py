"""The manifest of model versions the product knows: ``weights/manifest.yaml``."""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detector.classes import SEA_LION_REFERENCE, ScaleReference
from detector.errors import ModelResolutionError
from detector.settings import DEFAULT_IMGSZ, ENV_MANIFEST
from detector.versions.runtimes import FORMATS, runtime_format


def _shipped_weights_dir() -> Path:
    """``weights/`` of a checkout, or its copy inside the installed package (``pip install .``)."""
    package = Path(__file__).resolve().parent.parent  # detector/
    installed = package / "weights"
    return installed if (installed / "manifest.yaml").is_file() else package.parent / "weights"


WEIGHTS_DIR = _shipped_weights_dir()
DEFAULT_MANIFEST = WEIGHTS_DIR / "manifest.yaml"


@dataclass(frozen=True)
class ExportedRuntime:
    """A version's network exported for another runtime, published in the same hub revision as its weights.

    ``path`` is what ultralytics loads: an OpenVINO folder (``*_openvino_model/`` with .xml, .bin and
    metadata.yaml) or an ``.onnx`` file, relative to the repo root (and to ``weights/`` when ``shipped``).
    ``files`` pins every file of it, by path in the repo, to its sha256.
    """

    name: str  # "openvino", "openvino-int8", "onnx": what a result's ``runtime`` says
    format: str  # one of runtimes.FORMATS
    path: str
    files: Mapping[str, str]  # repo path -> sha256
    precision: str = "fp16"  # of the stored weights: "fp32", "fp16" (run as fp32/bf16 by the CPU) or "int8"
    batch: int | None = None  # the batch it was exported with (OpenVINO ones run at any batch); None: dynamic
    shipped: bool = False  # its files are also under weights/ (offline fallback)
    count_check: Mapping[str, Any] = field(default_factory=dict)  # counts vs torch when it was exported
    # OpenVINO's CPU inference precision: None, the CPU's default (bf16 on CPUs with AMX or AVX-512 BF16, else
    # fp32: fast, and counts may move a little); "f32" runs fp32 everywhere (counts as torch's)
    inference_precision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": self.format, "path": self.path, "precision": self.precision}
        if self.batch:
            data["batch"] = int(self.batch)
        if self.shipped:
            data["shipped"] = True
        if self.inference_precision:
            data["inference_precision"] = self.inference_precision
        data["files"] = {str(k): str(v) for k, v in self.files.items()}
        if self.count_check:
            data["count_check"] = dict(self.count_check)
        return data

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any], where: str) -> ExportedRuntime:
        files = data.get("files") if isinstance(data, Mapping) else None
        if not isinstance(files, Mapping) or not files or not data.get("path"):
            raise ModelResolutionError(f"{where}: runtime {name!r} needs a path and files (repo path: sha256).")
        fmt = str(data.get("format") or runtime_format(name))
        if fmt not in FORMATS:
            raise ModelResolutionError(f"{where}: runtime {name!r} has format {fmt!r}; known: {FORMATS}.")
        pins = {str(k): str(v).lower() for k, v in files.items()}
        bad = [k for k, v in pins.items() if not re.fullmatch(r"[0-9a-f]{64}", v)]
        if bad:
            raise ModelResolutionError(f"{where}: runtime {name!r}: sha256 of {bad} must be 64 hex characters.")
        return cls(
            name=name, format=fmt, path=str(data["path"]), files=pins, precision=str(data.get("precision", "fp16")),
            batch=int(data["batch"]) if data.get("batch") else None, shipped=bool(data.get("shipped", False)),
            count_check=dict(data.get("count_check") or {}),
            inference_precision=data.get("inference_precision") or None,
        )  # fmt: skip


def _runtimes(data: Any, where: str) -> dict[str, ExportedRuntime]:
    if not data:
        return {}
    if not isinstance(data, Mapping):
        raise ModelResolutionError(f"{where}: runtimes must map runtime names to their files.")
    return {str(k): ExportedRuntime.from_dict(str(k), v, where) for k, v in data.items()}


@dataclass(frozen=True)
class ModelVersion:
    """One published model version, pinned by commit and sha256."""

    name: str  # e.g. "v1"
    repo_id: str  # hub repo, e.g. "sealion-counter/sealion-yolov5"
    revision: str  # tag on the hub, e.g. "v1"
    commit: str  # full 40-hex commit sha the tag points to
    filename: str  # weights file inside the hub repo
    sha256: str
    class_names: tuple[str, ...]
    imgsz: int | None = None  # network input; None: what the checkpoint's own training arguments say
    ground_scale: float = 1.0  # scale of the photos the model was trained on, relative to native survey scale
    shipped_file: str | None = None  # file under weights/ shipped with the product (offline fallback)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    class_conf: Mapping[str, float] = field(default_factory=dict)  # calibrated count threshold per class
    greyscale_input: bool = False  # the detector counts every photo as its greyscale copy (colour-blind)
    runtimes: Mapping[str, ExportedRuntime] = field(default_factory=dict)  # exports in the same revision
    cpu_runtime: str | None = None  # the runtime "auto" picks on a CPU (one of ``runtimes``); None: torch
    # How photo scale is measured (detector.counting.scale.ScaleReference); None: the sea lion default for a
    # version with the sea lion classes (adult females, 80 px, survey frames), else none / native resolution
    reference_class: str | None = None  # the class people measure in a photo
    reference_length_px: float | None = None  # its typical length at photo scale 1 (the data's native resolution)
    frame_sides: tuple[int, ...] | None = None  # long sides of the data's whole frames; () = tiles of any size
    # The reference class's typical length on the ground in metres (a GeoTIFF's pixel size gives the scale from it);
    # None: 2.4 m for the sea lions' adult females (detector.classes.ADULT_FEMALE_LENGTH_M, cited), else unknown
    reference_length_m: float | None = None
    # What the version is and counts, in words (its card's heading and first sentence: "Elephant seal counter",
    # "northern elephant seals (bulls, cows, pups) in aerial drone photos"); "": not given (the sea lion versions'
    # are detector.classes.SEA_LION_TITLE and SEA_LION_SUBJECT)
    title: str = ""
    subject: str = ""

    def __post_init__(self) -> None:
        if self.cpu_runtime and self.cpu_runtime not in self.runtimes:
            raise ModelResolutionError(
                f"Model version {self.name!r}: cpu_runtime {self.cpu_runtime!r} is not one of its runtimes "
                f"({', '.join(self.runtimes) or 'none'})."
            )
        if self.reference_class and self.class_names and self.reference_class not in self.class_names:
            raise ModelResolutionError(
                f"Model version {self.name!r}: reference_class {self.reference_class!r} is not one of its classes "
                f"({', '.join(self.class_names)})."
            )
        if (self.reference_class is None) != (self.reference_length_px is None):
            raise ModelResolutionError(
                f"Model version {self.name!r}: give reference_class and reference_length_px together."
            )
        if self.reference_length_m is not None:
            if not (math.isfinite(self.reference_length_m) and self.reference_length_m > 0):
                raise ModelResolutionError(
                    f"Model version {self.name!r}: reference_length_m must be a positive number of metres, got "
                    f"{self.reference_length_m}."
                )
            if self.scale_reference.class_name is None:
                raise ModelResolutionError(
                    f"Model version {self.name!r}: reference_length_m is the length of its reference class; name "
                    "that class with reference_class and reference_length_px."
                )

    @property
    def scale_reference(self) -> ScaleReference:
        """How this version measures photo scale: its own reference, else the sea lion default for the sea lion
        classes (or an unknown class list), else no reference class and photos at native resolution. The length in
        metres is the version's own, else the sea lion adult female's (2.4 m) where that is the reference class of
        the sea lion classes, else unknown (None): never another species' number."""
        sea_lions = not self.class_names or SEA_LION_REFERENCE.class_name in self.class_names
        default = SEA_LION_REFERENCE if sea_lions else ScaleReference(None, None, ())
        class_name = self.reference_class if self.reference_class is not None else default.class_name
        metres = self.reference_length_m
        if metres is None and sea_lions and class_name == SEA_LION_REFERENCE.class_name:
            metres = SEA_LION_REFERENCE.length_m
        return ScaleReference(
            class_name,
            self.reference_length_px if self.reference_length_px is not None else default.length_px,
            tuple(self.frame_sides) if self.frame_sides is not None else default.frame_sides,
            metres,
        )

    @property
    def pinned_revision(self) -> str:
        """The immutable revision to download: the commit sha when known, else the tag."""
        return self.commit or self.revision

    def shipped_path(self, weights_dir: Path) -> Path | None:
        return weights_dir / self.shipped_file if self.shipped_file else None

    @classmethod
    def unlisted(cls, filename: str, sha256: str, ground_scale: float | None = None) -> ModelVersion:
        """An explicit weights file no manifest lists: its classes and input size come from the checkpoint."""
        return cls(
            name="local", repo_id="", revision="", commit="", filename=filename, sha256=sha256, class_names=(),
            ground_scale=ground_scale or 1.0,
        )  # fmt: skip

    def _counting_options(self) -> dict[str, Any]:
        """What the version sets beyond its weights (card and manifest alike): thresholds, greyscale, runtimes, scale
        reference, and what it is and counts in words (title, subject)."""
        data: dict[str, Any] = {}
        if self.class_conf:
            data["class_conf"] = {k: float(v) for k, v in self.class_conf.items()}
        if self.greyscale_input:
            data["greyscale_input"] = True
        if self.runtimes:
            data["runtimes"] = {name: runtime.to_dict() for name, runtime in self.runtimes.items()}
        if self.cpu_runtime:
            data["cpu_runtime"] = self.cpu_runtime
        if self.reference_class is not None:
            data["reference_class"] = self.reference_class
            data["reference_length_px"] = float(self.reference_length_px or 0)
        if self.frame_sides is not None:
            data["frame_sides"] = [int(side) for side in self.frame_sides]
        if self.reference_length_m is not None:
            data["reference_length_m"] = float(self.reference_length_m)
        if self.title:
            data["title"] = self.title
        if self.subject:
            data["subject"] = self.subject
        return data

    def to_card(self) -> dict[str, Any]:
        """The model card metadata that describes this version (``training.publish`` adds what it knows more)."""
        meta: dict[str, Any] = {
            "weights": {"filename": self.filename, "sha256": self.sha256},
            "class_names": list(self.class_names),
            "imgsz": int(self.imgsz or DEFAULT_IMGSZ),
            "ground_scale": float(self.ground_scale),
            "metrics": dict(self.metrics),
        }
        return {**meta, **self._counting_options()}

    @classmethod
    def from_card(cls, meta: Mapping[str, Any], repo_id: str, revision: str, name: str | None = None) -> ModelVersion:
        """The version a model card (its YAML metadata, as :meth:`to_card` writes it) describes."""
        weights = meta.get("weights") or {}
        if not weights.get("filename") or not weights.get("sha256"):
            raise ModelResolutionError(
                f"The model card of {repo_id}@{revision} lacks weights.filename/weights.sha256; "
                "publish it with `python -m training.publish` or pin the version in weights/manifest.yaml."
            )
        return cls(
            name=name or revision,
            repo_id=repo_id,
            revision=revision,
            commit=revision if len(revision) == 40 else "",
            filename=str(weights["filename"]),
            sha256=str(weights["sha256"]).lower(),
            class_names=tuple(meta.get("class_names") or ()),
            imgsz=int(meta["imgsz"]) if meta.get("imgsz") else None,
            ground_scale=float(meta.get("ground_scale", 1.0)),
            metrics=meta.get("metrics") or {},
            class_conf={str(k): float(v) for k, v in (meta.get("class_conf") or {}).items()},
            greyscale_input=bool(meta.get("greyscale_input", False)),
            runtimes=_runtimes(meta.get("runtimes"), f"The model card of {repo_id}@{revision}"),
            cpu_runtime=meta.get("cpu_runtime") or None,
            **_reference(meta),
            **_words(meta),
        )


def _reference(data: Mapping[str, Any]) -> dict[str, Any]:
    """The scale reference fields of a manifest entry or card (absent: the defaults of :class:`ModelVersion`)."""
    sides = data.get("frame_sides")
    length = data.get("reference_length_px")
    metres = data.get("reference_length_m")
    return {
        "reference_class": str(data["reference_class"]) if data.get("reference_class") else None,
        "reference_length_px": float(length) if length is not None else None,
        "frame_sides": tuple(int(side) for side in sides) if sides is not None else None,
        "reference_length_m": float(metres) if metres is not None else None,
    }


def _words(data: Mapping[str, Any]) -> dict[str, str]:
    """What a manifest entry or card says the version is and counts (``title``, ``subject``; absent: "")."""
    return {key: str(data.get(key) or "") for key in ("title", "subject")}


@dataclass(frozen=True)
class Manifest:
    default: str
    versions: Mapping[str, ModelVersion]
    path: Path

    @property
    def weights_dir(self) -> Path:
        return self.path.parent

    def get(self, name: str | None = None) -> ModelVersion:
        """The named version (the default when ``name`` is None)."""
        name = name or self.default
        if name not in self.versions:
            known = ", ".join(sorted(self.versions)) or "none"
            raise ModelResolutionError(f"Unknown model version {name!r}; known versions: {known} (see {self.path}).")
        return self.versions[name]


def _version_from_dict(name: str, data: Mapping[str, Any]) -> ModelVersion:
    required = ("repo_id", "revision", "filename", "sha256", "class_names")
    missing = [key for key in required if key not in data]
    if missing:
        raise ModelResolutionError(f"Manifest entry {name!r} lacks {', '.join(missing)}.")
    sha256 = str(data["sha256"]).lower()
    commit = str(data.get("commit") or "")
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ModelResolutionError(f"Manifest entry {name!r}: sha256 must be 64 hex characters (quote it in YAML).")
    if commit and not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise ModelResolutionError(f"Manifest entry {name!r}: commit must be a full 40-hex sha (quote it in YAML).")
    return ModelVersion(
        name=name,
        repo_id=str(data["repo_id"]),
        revision=str(data["revision"]),
        commit=commit,
        filename=str(data["filename"]),
        sha256=sha256,
        class_names=tuple(data["class_names"]),
        imgsz=int(data["imgsz"]) if data.get("imgsz") else None,
        ground_scale=float(data.get("ground_scale", 1.0)),
        shipped_file=data.get("shipped_file"),
        metrics=dict(data.get("metrics") or {}),
        description=str(data.get("description", "")),
        class_conf=_class_conf(name, data.get("class_conf"), tuple(data["class_names"])),
        greyscale_input=bool(data.get("greyscale_input", False)),
        runtimes=_runtimes(data.get("runtimes"), f"Manifest entry {name!r}"),
        cpu_runtime=data.get("cpu_runtime") or None,
        **_reference(data),
        **_words(data),
    )


def _class_conf(name: str, data: Any, class_names: tuple[str, ...]) -> dict[str, float]:
    """Per-class count thresholds of a manifest entry, checked: known classes, values in (0, 1)."""
    if not data:
        return {}
    if not isinstance(data, Mapping):
        raise ModelResolutionError(f"Manifest entry {name!r}: class_conf must map class names to thresholds.")
    unknown = [k for k in data if k not in class_names]
    if unknown:
        raise ModelResolutionError(f"Manifest entry {name!r}: class_conf names unknown classes {unknown}.")
    values = {str(k): float(v) for k, v in data.items()}
    bad = {k: v for k, v in values.items() if not 0 < v < 1}
    if bad:
        raise ModelResolutionError(f"Manifest entry {name!r}: class_conf values must lie in (0, 1), got {bad}.")
    return values


def load_manifest(path: str | os.PathLike[str] | None = None) -> Manifest:
    """Read a manifest (the shipped ``weights/manifest.yaml`` when ``path`` is None)."""
    path = Path(path or DEFAULT_MANIFEST)
    if not path.is_file():
        raise ModelResolutionError(f"Model manifest not found at {path}; set {ENV_MANIFEST} to a manifest.yaml.")
    data = yaml.safe_load(path.read_text()) or {}
    versions = {str(k): _version_from_dict(str(k), v) for k, v in (data.get("versions") or {}).items()}
    default = str(data.get("default") or next(iter(versions), ""))
    return Manifest(default=default, versions=versions, path=path)


def version_to_dict(version: ModelVersion) -> dict[str, Any]:
    """The manifest entry of a version (what ``training.publish`` writes)."""
    data: dict[str, Any] = {
        "repo_id": version.repo_id,
        "revision": version.revision,
        "commit": version.commit,
        "filename": version.filename,
        "sha256": version.sha256,
        "class_names": list(version.class_names),
        "imgsz": int(version.imgsz or DEFAULT_IMGSZ),
        "ground_scale": version.ground_scale,
    }
    if version.shipped_file:
        data["shipped_file"] = version.shipped_file
    if version.metrics:
        data["metrics"] = dict(version.metrics)
    data.update(version._counting_options())
    if version.description:
        data["description"] = version.description
    return data


def add_version(path: str | os.PathLike[str], version: ModelVersion, make_default: bool = False) -> None:
    """Add or replace a version in a manifest file (created when missing), keeping the file's leading comments."""
    path = Path(path)
    text = path.read_text() if path.is_file() else ""
    data = yaml.safe_load(text) or {}
    data.setdefault("versions", {})[version.name] = version_to_dict(version)
    if make_default or not data.get("default"):
        data["default"] = version.name
    lines = text.splitlines(keepends=True)
    header = "".join(line for line in itertools.takewhile(lambda line: line.startswith("#"), lines))
    path.write_text(header + yaml.safe_dump(data, sort_keys=False))
