"""What the app's endpoints do, without Gradio: count one photo, count a batch of uploads."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detector.errors import DetectorError
from detector.images import load_image
from detector.overlay import draw_overlay
from detector.results import CountResult
from sealion_app.present import result_dict, thumbnail, write_batch_csv
from sealion_app.uploads import Photo, Rejected, expand_uploads

if TYPE_CHECKING:
    from detector.model import Detector

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CountOptions:
    """The user's detection settings (``tile_size`` 0 or None = the model's input size)."""

    conf: float = 0.25
    iou: float = 0.45
    slicing: str = "auto"
    tile_size: int | None = None
    photo_scale: float = 1.0

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "conf": float(self.conf),
            "iou": float(self.iou),
            "slicing": self.slicing,
            "tile_size": int(self.tile_size) if self.tile_size else None,
            "photo_scale": float(self.photo_scale),
        }


def count_photo(
    detector: Detector, image: Path | bytes | np.ndarray, name: str, options: CountOptions
) -> tuple[np.ndarray, CountResult]:
    """Decode once, count, and draw the overlay at the photo's own size. Raises DetectorError for bad input."""
    rgb = load_image(image, label=name)
    result = detector.count(rgb, source=name, **options.as_kwargs())
    return draw_overlay(rgb, result), result


@dataclass
class BatchOutcome:
    results: list[CountResult] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)  # {"file": ..., "error": ...}
    thumbnails: list[tuple[np.ndarray, str]] = field(default_factory=list)
    csv_path: Path | None = None

    def summary(self) -> dict[str, Any]:
        """JSON answer of ``/count_batch``: per-photo counts (no boxes) and the files that failed."""
        return {
            "results": [result_dict(r, include_boxes=False) for r in self.results],
            "failures": self.failures,
            "counted": len(self.results),
            "failed": len(self.failures),
        }


ProgressCallback = Callable[[int, int, str], None]


def count_batch(
    detector: Detector,
    uploads: Sequence[str | Path],
    options: CountOptions,
    progress: ProgressCallback | None = None,
    csv_dir: Path | None = None,
) -> BatchOutcome:
    """Count every photo in the uploads (zip archives expanded); bad files are recorded, never fatal."""
    outcome = BatchOutcome()
    items = expand_uploads(uploads)
    photos = [item for item in items if isinstance(item, Photo)]
    for item in items:
        if isinstance(item, Rejected):
            outcome.failures.append({"file": item.name, "error": f"{item.name}: {item.reason}"})
    for index, photo in enumerate(photos):
        if progress:
            progress(index, len(photos), photo.name)
        try:
            annotated, result = count_photo(detector, photo.read(), photo.name, options)
        except DetectorError as exc:
            outcome.failures.append({"file": photo.name, "error": str(exc)})
            continue
        except (OSError, ValueError) as exc:  # e.g. a zip member whose data is corrupt
            outcome.failures.append({"file": photo.name, "error": f"{photo.name}: cannot read the file ({exc})."})
            continue
        outcome.results.append(result)
        outcome.thumbnails.append((thumbnail(annotated), f"{photo.name}: {result.total}"))
    if progress:
        progress(len(photos), len(photos), "done")
    if outcome.results or outcome.failures:
        folder = Path(tempfile.mkdtemp(prefix="sealion-batch-", dir=csv_dir))
        outcome.csv_path = write_batch_csv(folder / "sealion_counts.csv", outcome.results, outcome.failures)
    return outcome
