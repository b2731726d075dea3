"""Animals as map features: an RFC 7946 GeoJSON FeatureCollection (WGS 84 lon/lat) and a per-animal CSV.

Each animal is a Point at its box's centre: a count per site is a point-in-polygon question, and a point never
straddles a site's edge, while the box's size is kept as a property (``length_m``). Boxes stay in raster pixels in
the counts files as for photos.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detector.errors import DetectorError
from detector.geo import require_geo

DECIMALS = 8  # degrees: about 1 mm, finer than any GSD


def centres(xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Box centres in pixels (x, y)."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2


def to_map(geo: dict[str, Any], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raster pixels → the raster's CRS coordinates (its affine transform)."""
    a, b, c, d, e, f = geo["transform"][:6]
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return a * x + b * y + c, d * x + e * y + f


def to_lonlat(geo: dict[str, Any], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raster pixels → WGS 84 longitude, latitude."""
    from pyproj import Transformer

    mx, my = to_map(geo, x, y)
    lon, lat = Transformer.from_crs(geo["crs"], "OGC:CRS84", always_xy=True).transform(mx, my)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def _georeferenced(record: Any, what: str) -> dict[str, Any]:
    geo = getattr(record, "geo", None)
    if not geo or not geo.get("crs"):
        raise DetectorError(
            f"{record.file}: no georeference (no CRS), so it cannot be written as {what}; write --out counts.csv or "
            "counts.json for pixel boxes."
        )
    return geo


def animal_rows(record: Any) -> list[dict[str, Any]]:
    """One dict per animal of a record: class, confidence, pixel box, lon/lat (None without a CRS), site."""
    result, geo = record.result, getattr(record, "geo", None) or {}
    x, y = centres(result.xyxy)
    lon = lat = np.full(len(x), np.nan)
    if geo.get("crs") and len(x):
        lon, lat = to_lonlat(geo, x, y)
    sites = geo.get("sites") or [None] * len(x)
    gsd = geo.get("gsd_m")
    rows = []
    for i in range(len(x)):
        box = result.xyxy[i]
        length = float(max(box[2] - box[0], box[3] - box[1]))
        rows.append({
            "source": record.file, "class": result.class_names[int(result.class_id[i])],
            "confidence": round(float(result.confidence[i]), 4),
            "x": round(float(x[i]), 1), "y": round(float(y[i]), 1),
            "x1": round(float(box[0]), 1), "y1": round(float(box[1]), 1),
            "x2": round(float(box[2]), 1), "y2": round(float(box[3]), 1),
            "lon": None if np.isnan(lon[i]) else round(float(lon[i]), DECIMALS),
            "lat": None if np.isnan(lat[i]) else round(float(lat[i]), DECIMALS),
            "length_m": None if gsd is None else round(length * gsd, 2),
            "site": sites[i],
        })  # fmt: skip
    return rows


def feature_collection(records: Sequence[Any]) -> dict[str, Any]:
    """The animals of georeferenced records as one FeatureCollection of Points (lon/lat, WGS 84)."""
    require_geo()
    features = []
    for record in records:
        _georeferenced(record, "GeoJSON")
        for row in animal_rows(record):
            properties = {key: row[key] for key in ("class", "confidence", "source", "site", "length_m", "x", "y")}
            features.append({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
                "properties": properties,
            })  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


def write_geojson(path: Path, records: Sequence[Any]) -> Path:
    """:func:`feature_collection` to ``path`` (an error, before writing, for a record with no CRS)."""
    collection = feature_collection(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(collection, separators=(",", ":")))
    return path


ANIMAL_COLUMNS = ("source", "class", "confidence", "x1", "y1", "x2", "y2", "lon", "lat", "length_m", "site")


def write_animals_csv(path: Path, records: Sequence[Any]) -> Path:
    """One row per animal: its source, class, confidence, pixel box, lon/lat (empty without a CRS), site."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ANIMAL_COLUMNS)
        for record in records:
            for row in animal_rows(record):
                writer.writerow(["" if row[key] is None else row[key] for key in ANIMAL_COLUMNS])
    return path
