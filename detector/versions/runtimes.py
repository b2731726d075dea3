"""Runtimes: what runs a model version's network. One home for their names, how a name reads (format and
precision), which one a load picks, whether it can run here, and how close its counts must stay to torch's.

A name is ``torch`` (the weights themselves) or an export published with the version (``openvino``,
``openvino-int8``, ``onnx``; ``openvino-f32`` runs the openvino files in fp32): its format is the part before the
first ``-``. ``auto`` picks one per load (:func:`choose_runtime`). Pure: nothing here loads a model.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

AUTO = "auto"
TORCH = "torch"
DEFAULT_RUNTIME = AUTO
FORMATS = ("openvino", "onnx")  # ultralytics export formats the detector loads (AutoBackend)
EXPORT_CHOICES = ("openvino", "openvino-int8", "onnx")  # what training.export makes
RUNTIME_CHOICES: tuple[str, ...] = (AUTO, TORCH, "openvino", "openvino-f32", "openvino-int8", "onnx")
# The package ultralytics needs to run each export format (checked before loading: ultralytics would try to
# pip-install a missing one).
PACKAGES = {"openvino": "openvino", "onnx": "onnxruntime"}
COUNT_TOLERANCE = 0.01  # an exported runtime's per-class counts: within 1 % of torch's, or one animal


def runtime_format(name: str) -> str:
    """The export format a runtime name stands for: ``openvino-int8`` → ``openvino``."""
    return name.split("-")[0]


def is_int8(name: str) -> bool:
    """Whether a runtime name asks for an int8 export (calibrated on training chips)."""
    return name.endswith("-int8")


def choose_runtime(requested: str, version: Any, device: str) -> str:
    """The runtime to run a version with: ``requested`` unless "auto"; auto is torch on CUDA/MPS, and on a CPU the
    version's ``cpu_runtime`` (its exported runtime whose counts were checked against torch's), else torch."""
    if requested != AUTO:
        return requested
    if device != "cpu":
        return TORCH
    return version.cpu_runtime or TORCH


def runtime_unavailable(name: str, version: Any) -> str | None:
    """Why ``version`` cannot run with exported runtime ``name`` here (no such export, package missing), else None."""
    export = version.runtimes.get(name)
    if export is None:
        return f"model version {version.name} has no {name} export (exports: {', '.join(version.runtimes) or 'none'})"
    package = PACKAGES[export.format]
    if importlib.util.find_spec(package) is None:
        return f"the {package} package is not installed (pip install {package})"
    return None


def offered_runtimes(exports: Mapping[str, Any]) -> list[str]:
    """The runtimes a version offers a user: auto, torch, then its exports."""
    return [AUTO, TORCH, *(name for name in exports if name not in (AUTO, TORCH))]


def counts_agree(reference: Mapping[str, int], other: Mapping[str, int], tolerance: float = COUNT_TOLERANCE) -> bool:
    """Whether ``other``'s per-class counts are within ``tolerance`` of ``reference``'s (at least one animal)."""
    return all(abs(other.get(name, 0) - count) <= max(1, tolerance * count) for name, count in reference.items())
