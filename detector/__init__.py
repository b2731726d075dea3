"""Count small, similar objects (Steller sea lions) in large photographs with YOLOv5.

Public API::

    from detector import Detector
    detector = Detector.load()                 # default model version, best device
    result = detector.count("photo.jpg")       # CountResult
    result.counts                              # {"adult_males": 3, ..., "pups": 0}
"""

from detector.errors import (
    DetectorError,
    ImageLoadError,
    ModelResolutionError,
    WeightsIntegrityError,
)
from detector.manifest import Manifest, ModelVersion, load_manifest
from detector.results import CountResult, ModelInfo

__all__ = [
    "CountResult",
    "Detector",
    "DetectorError",
    "ImageLoadError",
    "Manifest",
    "ModelInfo",
    "ModelResolutionError",
    "ModelVersion",
    "WeightsIntegrityError",
    "load_manifest",
]


def __getattr__(name: str):
    # Detector pulls in torch/ultralytics; import it lazily so light users (CSV tools, the client) stay fast.
    if name == "Detector":
        from detector.model import Detector

        return Detector
    raise AttributeError(name)
