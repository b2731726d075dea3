"""Count small, similar objects (Steller sea lions) in large photographs with YOLOv5.

Public API::

    from detector import Detector
    detector = Detector.load()                 # default model version, best device
    result = detector.count("photo.jpg")       # CountResult
    result.counts                              # {"adult_males": 3, ..., "pups": 0}
"""

import os

# torch's OpenMP threads spin while they wait; when any other work shares the cores (the app's own server threads,
# another process) a spinning thread steals the core its peer needs: on a busy 2-core machine Detector.count took
# 1.98 s on 2 threads vs 0.57 s on 1, and 0.41 s on 2 threads waiting passively (benchmarks/results/loaded/
# threads.json). The price on an idle machine: 0.276 s vs 0.206 s (benchmarks/results/threads.json).
# Set before torch loads; an explicit OMP_WAIT_POLICY in the environment wins (ACTIVE for dedicated cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from detector.environment import set_offline_defaults
from detector.errors import (
    DetectorError,
    ImageLoadError,
    ModelResolutionError,
    WeightsIntegrityError,
)
from detector.manifest import Manifest, ModelVersion, load_manifest
from detector.results import CountResult, ModelInfo

set_offline_defaults()  # ultralytics never reaches for the network, no telemetry: library users included

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
    "draw_sample",
    "estimate_totals",
    "load_manifest",
]


def __getattr__(name: str):
    # Detector pulls in torch/ultralytics; import it lazily so light users (CSV tools, the client) stay fast.
    if name == "Detector":
        from detector.model import Detector

        return Detector
    if name in ("estimate_totals", "draw_sample"):  # survey totals (detector.totals): numpy and the run files only
        import detector.totals

        return getattr(detector.totals, name)
    raise AttributeError(name)
