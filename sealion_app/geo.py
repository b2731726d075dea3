"""GeoTIFF uploads in the app: counted window by window like ``sealion-count`` (:mod:`detector.geo`), within the
app's pixel limit, with their animals offered as GeoJSON beside the CSV. Without the geo extra a TIFF is counted as
a plain photo, as before."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from detector.counting.records import Failure, PhotoRecord
from detector.settings import CountOptions

GEOJSON_NAME = "sealion_animals.geojson"
PREVIEW_SIDE = 2048  # the gallery's picture of a raster: a decimated read, never the whole raster


@dataclass(frozen=True)
class RasterUpload:
    """An uploaded raster file as :func:`detector.geo.survey.count_raster_file` takes it (named as uploaded)."""

    path: Path
    file: str
    folder: str = ""
    size: int = 0
    mtime_ns: int = 0


def split_rasters(photos: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """(rasters, other photos) of uploaded photos: an uploaded file (not a zip member) that is a georeferenced or
    large TIFF, when the geo extra is installed."""
    from detector.geo import geo_available

    if not geo_available():
        return [], list(photos)
    from detector.geo.raster import is_raster_path

    rasters = [p for p in photos if getattr(p.photo, "path", None) is not None and is_raster_path(p.photo.path)]
    return rasters, [p for p in photos if p not in rasters]


def count_uploaded_raster(detector: Any, uploaded: Any, options: CountOptions) -> PhotoRecord | Failure:
    """Count one uploaded raster; over the app's pixel limit (SEALION_MAX_PIXELS) it is a failure that says how to
    count it from the command line instead."""
    import rasterio

    from detector.counting import images
    from detector.geo.survey import count_raster_file

    path = Path(uploaded.photo.path)
    with rasterio.open(path) as src:
        width, height = src.width, src.height
    if width * height > images.MAX_PIXELS:
        return Failure(
            uploaded.file,
            f"{uploaded.file}: {width}×{height} px is more than the {images.MAX_PIXELS:,} pixels the app counts; "
            "count the orthomosaic with `sealion-count FILE.tif --out animals.geojson`.",
        )
    raster = RasterUpload(path, uploaded.file, size=path.stat().st_size)
    return count_raster_file(detector, raster, options)


def raster_preview(path: Path, record: PhotoRecord) -> np.ndarray:
    """The raster read decimated to at most :data:`PREVIEW_SIDE` a side, with the record's boxes drawn on it."""
    import rasterio

    from detector.counting.overlay import draw_overlay
    from detector.geo.raster import colour_bands, read_rgb

    with rasterio.open(path) as src:
        factor = min(1.0, PREVIEW_SIDE / max(src.width, src.height))
        shape = (max(1, round(src.height * factor)), max(1, round(src.width * factor)))
        bands = colour_bands(src)
        rgb = read_rgb(src, bands, shape=shape)
    result = record.result
    scaled = replace(result, xyxy=result.xyxy * factor, image_size=(shape[1], shape[0]))
    return draw_overlay(rgb, scaled)


def animals_geojson(records: Sequence[PhotoRecord]) -> dict[str, Any] | None:
    """The FeatureCollection of the georeferenced records' animals; None when no record is georeferenced."""
    placed = [r for r in records if (r.geo or {}).get("crs")]
    if not placed:
        return None
    from detector.geo.features import feature_collection

    return feature_collection(placed)


def write_geojson_file(collection: dict[str, Any] | None, out_dir: Path) -> str | None:
    """``collection`` as a .geojson file to download, in a fresh count folder under ``out_dir`` (pruned with the
    annotated photos once Gradio has cached it); None when there is none."""
    if not collection:
        return None
    import tempfile

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="sealion-count-", dir=out_dir)) / GEOJSON_NAME
    path.write_text(json.dumps(collection, separators=(",", ":")))
    return str(path)
