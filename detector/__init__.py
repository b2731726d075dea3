"""Count small, similar objects (Steller sea lions) in large photographs with YOLOv5.

Public API::

    from detector import CountOptions, Detector
    detector = Detector.load()                 # default model version, best device
    result = detector.count("photo.jpg")       # CountResult
    result = detector.count("photo.jpg", CountOptions(conf=0.3))
    result.counts                              # {"adult_males": 3, ..., "pups": 0}
"""

import os

# torch's OpenMP threads spin while they wait; when any other work shares the cores (the app's own server threads,
# another process) a spinning thread steals the core its peer needs: on a busy 2-core machine Detector.count took
# 1.98 s on 2 threads vs 0.57 s on 1, and 0.41 s on 2 threads waiting passively (benchmarks/results/loaded/
# threads.json). The price on an idle machine: 0.276 s vs 0.206 s (benchmarks/results/threads.json).
# Set before torch loads; an explicit OMP_WAIT_POLICY in the environment wins (ACTIVE for dedicated cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from detector.counting.results import CountResult, ModelInfo
from detector.environment import set_offline_defaults
from detector.errors import (
    DetectorError,
    ImageLoadError,
    ModelResolutionError,
    WeightsIntegrityError,
)
from detector.settings import CountOptions
from detector.versions.manifest import Manifest, ModelVersion, load_manifest

set_offline_defaults()  # ultralytics never reaches for the network, no telemetry: library users included

__all__ = [
    "CountOptions",
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
        from detector.counting.model import Detector

        return Detector
    if name in ("estimate_totals", "draw_sample"):  # survey totals (detector.totals): numpy and the run files only
        import detector.totals

        return getattr(detector.totals, name)
    raise AttributeError(name)
