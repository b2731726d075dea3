"""The manifest of model versions the product knows: ``weights/manifest.yaml``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detector.errors import ModelResolutionError


def _shipped_weights_dir() -> Path:
    """``weights/`` of a checkout, or its copy inside the installed package (``pip install .``)."""
    here = Path(__file__).resolve().parent
    installed = here / "weights"
    return installed if (installed / "manifest.yaml").is_file() else here.parent / "weights"


WEIGHTS_DIR = _shipped_weights_dir()
DEFAULT_MANIFEST = WEIGHTS_DIR / "manifest.yaml"


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
    imgsz: int = 640
    ground_scale: float = 1.0  # scale of the photos the model was trained on, relative to native survey scale
    shipped_file: str | None = None  # file under weights/ shipped with the product (offline fallback)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    class_conf: Mapping[str, float] = field(default_factory=dict)  # calibrated count threshold per class
    greyscale_input: bool = False  # the detector counts every photo as its greyscale copy (colour-blind)

    @property
    def pinned_revision(self) -> str:
        """The immutable revision to download: the commit sha when known, else the tag."""
        return self.commit or self.revision

    def shipped_path(self, weights_dir: Path) -> Path | None:
        return weights_dir / self.shipped_file if self.shipped_file else None


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
        imgsz=int(data.get("imgsz", 640)),
        ground_scale=float(data.get("ground_scale", 1.0)),
        shipped_file=data.get("shipped_file"),
        metrics=dict(data.get("metrics") or {}),
        description=str(data.get("description", "")),
        class_conf=_class_conf(name, data.get("class_conf"), tuple(data["class_names"])),
        greyscale_input=bool(data.get("greyscale_input", False)),
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
    """Read the manifest (``SEALION_MANIFEST`` or ``weights/manifest.yaml`` when ``path`` is None)."""
    path = Path(path or os.environ.get("SEALION_MANIFEST") or DEFAULT_MANIFEST)
    if not path.is_file():
        raise ModelResolutionError(f"Model manifest not found at {path}; set SEALION_MANIFEST to a manifest.yaml.")
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
        "imgsz": version.imgsz,
        "ground_scale": version.ground_scale,
    }
    if version.shipped_file:
        data["shipped_file"] = version.shipped_file
    if version.metrics:
        data["metrics"] = dict(version.metrics)
    if version.class_conf:
        data["class_conf"] = {k: float(v) for k, v in version.class_conf.items()}
    if version.greyscale_input:
        data["greyscale_input"] = True
    if version.description:
        data["description"] = version.description
    return data


def add_version(path: str | os.PathLike[str], version: ModelVersion, make_default: bool = False) -> None:
    """Add or replace a version in a manifest file (created when missing)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    data = data or {}
    data.setdefault("versions", {})[version.name] = version_to_dict(version)
    if make_default or not data.get("default"):
        data["default"] = version.name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
