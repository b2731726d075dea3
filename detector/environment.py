"""What the product sets and checks in its process before any model loads; called once by each entry point."""

from __future__ import annotations

import importlib.metadata
import os
import sys

from detector.errors import DetectorError

# Offline and private: ultralytics never reaches for the network, Gradio and the hub send no telemetry.
OFFLINE_DEFAULTS = {"YOLO_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
# OpenVINO has no variable for it: ``import openvino`` sends an event to www.google-analytics.com through the
# ``openvino_telemetry`` package unless a consent file in ~/intel says no. Without that package OpenVINO uses its own
# no-op stub, so the product makes the package unimportable in its process (the user's choice: this variable = 1).
OPENVINO_TELEMETRY_MODULE = "openvino_telemetry"
OPENVINO_TELEMETRY_VARIABLE = "SEALION_OPENVINO_TELEMETRY"
TORCH_PAIR = ("2.15.0", "0.29.2")  # the torch/torchvision pair of the Dockerfile and the README's CPU-only tip


def set_offline_defaults() -> None:
    """Set :data:`OFFLINE_DEFAULTS` unless the environment already says otherwise (before gradio/ultralytics load),
    and turn OpenVINO's telemetry off unless ``SEALION_OPENVINO_TELEMETRY=1`` (before openvino loads)."""
    for name, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if os.environ.get(OPENVINO_TELEMETRY_VARIABLE, "0") != "1":
        sys.modules.setdefault(OPENVINO_TELEMETRY_MODULE, None)  # type: ignore[arg-type]  # import -> ImportError


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_torch_pair() -> None:
    """Raise a one-line :class:`DetectorError` when torch and torchvision cannot work together.

    A torchvision built for another torch (or a CPU build mixed with a CUDA one) fails at import with a long
    traceback ending in ``operator torchvision::nms does not exist``; this names the two versions and the fix.
    """
    torch_version, vision_version = _version("torch"), _version("torchvision")
    fix = (
        f"install a matching pair, e.g. pip install torch=={TORCH_PAIR[0]} torchvision=={TORCH_PAIR[1]} "
        "(add --index-url https://download.pytorch.org/whl/cpu for the CPU-only build)"
    )
    if torch_version is None or vision_version is None:
        missing = "torch" if torch_version is None else "torchvision"
        raise DetectorError(f"{missing} is not installed; {fix}.")
    torch_build = torch_version.partition("+")[2]
    vision_build = vision_version.partition("+")[2]
    if torch_build and vision_build and torch_build != vision_build:
        raise DetectorError(
            f"torch {torch_version} and torchvision {vision_version} are different builds ({torch_build} vs "
            f"{vision_build}); {fix}."
        )
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
        from torchvision.ops import nms  # noqa: F401 - the compiled operator a mismatched pair lacks
    except (ImportError, RuntimeError, AttributeError, OSError) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DetectorError(
            f"torch {torch_version} and torchvision {vision_version} do not work together ({reason}); {fix}."
        ) from exc
