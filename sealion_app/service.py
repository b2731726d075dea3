"""What the app's endpoints do, without Gradio: count one photo, count a batch of uploads (through the survey
pipeline, :func:`detector.survey.runs.count_photos`)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from detector.counting.images import load_image
from detector.counting.overlay import draw_overlay
from detector.counting.records import Failure, PhotoRecord, write_counts_csv
from detector.counting.results import CountResult
from detector.counting.uncertainty import CountUncertainty
from detector.errors import DetectorError
from detector.settings import CountOptions
from detector.survey.runs import count_photos
from sealion_app.geo import animals_geojson, count_uploaded_raster, raster_preview, split_rasters
from sealion_app.present import fit_for_jpeg, result_dict, thumbnail
from sealion_app.uploads import MemberTooLarge, Photo, Rejected, expand_uploads

if TYPE_CHECKING:
    from detector.counting.model import Detector

logger = logging.getLogger(__name__)


def count_photo(
    detector: Detector, image: Path | bytes | np.ndarray, name: str, options: CountOptions
) -> tuple[np.ndarray, CountResult]:
    """Count the photo as sent (a JPEG decodes at the model's working size, as in the CLI), then draw the overlay
    on the photo at its own size. Raises DetectorError for bad input."""
    result = detector.count(image, options, source=name)
    rgb = load_image(image, label=name)
    return draw_overlay(rgb, result), result


def count_to_file(
    detector: Detector, image: Path, name: str, options: CountOptions, out_dir: Path | None = None
) -> tuple[Path, CountResult]:
    """Count one photo and write the annotated JPEG (quality 90, the photo's own size) to a fresh folder."""
    annotated, result = count_photo(detector, image, name, options)
    return _served_jpeg(annotated, f"{Path(name).stem or 'photo'}.annotated.jpg", out_dir), result


def photo_jpeg(image: Path, out_dir: Path | None = None) -> Path:
    """The photo as the detector decodes it (EXIF-rotated, 8-bit RGB, any format) as a JPEG a browser shows."""
    return _served_jpeg(load_image(image, label=image.name), f"{image.stem or 'photo'}.jpg", out_dir)


def _served_jpeg(rgb: np.ndarray, name: str, out_dir: Path | None) -> Path:
    """``rgb`` as a quality-90 JPEG of its own size in a fresh count folder (pruned once Gradio has cached it)."""
    path = Path(tempfile.mkdtemp(prefix="sealion-count-", dir=out_dir)) / name
    Image.fromarray(fit_for_jpeg(rgb)).save(path, quality=90)
    return path


@dataclass
class BatchOutcome:
    records: list[PhotoRecord] = field(default_factory=list)  # counted photos, with sha256 and EXIF metadata
    failures: list[Failure] = field(default_factory=list)
    thumbnails: list[tuple[str, str]] = field(default_factory=list)  # (JPEG path, caption), at most MAX_GALLERY
    csv_path: Path | None = None
    geojson: dict[str, Any] | None = None  # the georeferenced rasters' animals (sealion_app.geo), else None

    @property
    def results(self) -> list[CountResult]:
        return [record.result for record in self.records]

    def summary(self) -> dict[str, Any]:
        """JSON answer of ``/count_batch``: per-photo counts (no boxes) and the files that failed."""
        summary = {
            "results": [result_dict(r, include_boxes=False) for r in self.results],
            "failures": [f.to_dict() for f in self.failures],
            "counted": len(self.results),
            "failed": len(self.failures),
        }
        if self.geojson is not None:  # GeoTIFF uploads: one point per animal, WGS 84 (RFC 7946)
            summary["animals_geojson"] = self.geojson
        return summary


@dataclass(frozen=True)
class UploadedPhoto:
    """An uploaded photo (a file or a zip member) as the survey pipeline counts it (:class:`PhotoSource`): named as
    uploaded, with no folder or modification time."""

    photo: Photo
    folder: str = ""
    mtime_ns: int = 0

    @property
    def file(self) -> str:
        return self.photo.name

    @property
    def stem(self) -> str:
        return Path(self.photo.name).stem

    def read_bytes(self) -> bytes:
        """The photo's bytes; a member that inflates too far is a DetectorError, corrupt zip data an OSError."""
        try:
            source = self.photo.read()
            return source.read_bytes() if isinstance(source, Path) else source
        except MemberTooLarge as exc:
            raise DetectorError(str(exc)) from None
        except UNREADABLE_MEMBER as exc:
            raise OSError(str(exc)) from exc


ProgressCallback = Callable[[int, int, str], None]
MAX_GALLERY = 200  # thumbnails shown; every photo is still counted and in the table and CSV
UNREADABLE_MEMBER = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)  # corrupt data inside a zip


SERVED_AGE_S = 120  # Gradio copies a returned file into its own cache at once; ours is needed only until then
BATCH_CSV = "sealion_counts.csv"  # written last: a batch folder with it is finished


def prune_old_batches(out_dir: Path, max_age_s: float = 24 * 3600, served_age_s: float = SERVED_AGE_S) -> None:
    """Remove the app's own copies of answers Gradio has already cached, so temporary disk does not grow per
    request: count folders (annotated JPEGs) and finished batch folders (thumbnails, CSV) older than
    ``served_age_s``; an unfinished batch folder only after ``max_age_s`` (its batch may still be running)."""
    now = time.time()
    for folder in out_dir.glob("sealion-count-*"):
        if folder.is_dir() and folder.stat().st_mtime < now - served_age_s:
            shutil.rmtree(folder, ignore_errors=True)
    for folder in out_dir.glob("sealion-batch-*"):
        finished = folder / BATCH_CSV
        try:
            age = now - (finished.stat().st_mtime if finished.exists() else folder.stat().st_mtime)
        except FileNotFoundError:  # removed by a concurrent request's prune
            continue
        if age > (served_age_s if finished.exists() else max_age_s):
            shutil.rmtree(folder, ignore_errors=True)


def count_batch(
    detector: Detector,
    uploads: Sequence[str | Path],
    options: CountOptions,
    progress: ProgressCallback | None = None,
    out_dir: Path | None = None,
) -> BatchOutcome:
    """Count every photo in the uploads (zip archives expanded); bad files are recorded, never fatal.

    Thumbnails and the CSV are written to a fresh temporary folder (under ``out_dir`` when given), so a large
    batch does not hold its annotated photos in memory.
    """
    outcome = BatchOutcome()
    folder = Path(tempfile.mkdtemp(prefix="sealion-batch-", dir=out_dir))
    items = expand_uploads(uploads, workdir=folder)
    photos = [UploadedPhoto(item) for item in items if isinstance(item, Photo)]
    rasters, photos = split_rasters(photos)  # GeoTIFFs: counted window by window after the photos (detector.geo)
    for item in items:
        if isinstance(item, Rejected):
            outcome.failures.append(Failure(item.name, f"{item.name}: {item.reason}"))
    if progress and photos:
        progress(0, len(photos), photos[0].file)
    # The survey pipeline (the same grouping, records and failures as ``sealion-count --run``), one outcome per
    # photo in order.
    for done, (photo, counted) in enumerate(zip(photos, count_photos(detector, photos, options), strict=True), 1):
        if isinstance(counted, Failure):
            outcome.failures.append(counted)
        else:
            outcome.records.append(counted)
            if len(outcome.thumbnails) < MAX_GALLERY:
                annotated = draw_overlay(load_image(photo.read_bytes(), label=photo.file), counted.result)
                path = folder / f"{len(outcome.thumbnails):04d}.jpg"
                Image.fromarray(thumbnail(annotated)).save(path, quality=85)
                outcome.thumbnails.append((str(path), f"{photo.file}: {counted.result.total}"))
        if progress and done < len(photos):
            progress(done, len(photos), photos[done].file)
    for raster in rasters:
        counted = count_uploaded_raster(detector, raster, options)
        if isinstance(counted, Failure):
            outcome.failures.append(counted)
            continue
        outcome.records.append(counted)
        if len(outcome.thumbnails) < MAX_GALLERY:
            path = folder / f"{len(outcome.thumbnails):04d}.jpg"
            Image.fromarray(thumbnail(raster_preview(raster.photo.path, counted))).save(path, quality=85)
            outcome.thumbnails.append((str(path), f"{raster.file}: {counted.result.total}"))
    outcome.geojson = animals_geojson(outcome.records)
    if progress:
        progress(len(photos), len(photos), "done")
    if outcome.records or outcome.failures:
        errors = CountUncertainty.of(detector.weights.version)
        outcome.csv_path = write_counts_csv(folder / BATCH_CSV, outcome.records, outcome.failures, errors)
    return outcome
