"""Site polygons (colonies, haul-outs) from a GeoJSON file, and which site each animal falls in.

The file may declare any CRS (a legacy GeoJSON ``crs`` member, e.g. ``urn:ogc:def:crs:EPSG::32604``; none means
WGS 84 lon/lat, as RFC 7946 says). Animals' points are carried into the sites' own CRS, where the polygons' edges are
the straight lines the GIS drew, and looked up in a shapely STRtree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detector.errors import DetectorError
from detector.geo import require_geo

WGS84 = "OGC:CRS84"  # lon/lat order, RFC 7946's only CRS


@dataclass(frozen=True)
class Sites:
    """Named polygons in their file's CRS."""

    names: tuple[str, ...]
    polygons: tuple[Any, ...]  # shapely (Multi)Polygons
    crs: str  # as the file declares it (WGS84 when it declares none)
    source: str

    def assign(self, x: np.ndarray, y: np.ndarray, crs: Any) -> list[str | None]:
        """The site of each point (``x``, ``y`` in ``crs``): the first polygon (file order) holding it, else None."""
        import shapely
        from pyproj import Transformer

        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if not len(x):
            return []
        sx, sy = Transformer.from_crs(crs, self.crs, always_xy=True).transform(x, y)
        points = shapely.points(np.asarray(sx), np.asarray(sy))
        tree = shapely.STRtree(list(self.polygons))
        point_index, polygon_index = tree.query(points, predicate="within")
        site: list[str | None] = [None] * len(x)
        first = np.full(len(x), len(self.polygons))
        np.minimum.at(first, point_index, polygon_index)
        for i in np.flatnonzero(first < len(self.polygons)):
            site[i] = self.names[first[i]]
        return site


def declared_crs(data: dict[str, Any]) -> str:
    """The CRS a GeoJSON file declares (legacy ``crs`` member, named or linked EPSG), else WGS 84 lon/lat."""
    member = data.get("crs")
    if not member:
        return WGS84
    name = (member.get("properties") or {}).get("name")
    if not name:
        raise DetectorError(f"unsupported GeoJSON crs member {member!r}: give it as {{'type': 'name', ...}}")
    from pyproj import CRS

    crs = CRS.from_user_input(name)
    return WGS84 if crs.equals(CRS.from_user_input(WGS84)) or crs.to_epsg() == 4326 else name


def load_sites(path: str | Path) -> Sites:
    """Polygons with a ``name`` property from a GeoJSON FeatureCollection; an error names the file and the feature."""
    require_geo()
    from shapely.geometry import shape

    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DetectorError(f"--sites {path}: cannot read it as GeoJSON ({exc}).") from None
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list) or not features:
        raise DetectorError(f"--sites {path}: not a GeoJSON FeatureCollection with features.")
    names, polygons = [], []
    for number, feature in enumerate(features):
        name = (feature.get("properties") or {}).get("name")
        geometry = feature.get("geometry") or {}
        if geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise DetectorError(f"--sites {path}: feature {number} is a {geometry.get('type')}, not a polygon.")
        if name in (None, ""):
            raise DetectorError(f"--sites {path}: feature {number} has no 'name' property.")
        polygons.append(shape(geometry))
        names.append(str(name))
    try:
        crs = declared_crs(data)
    except Exception as exc:  # pyproj raises CRSError for a name it does not know
        raise DetectorError(f"--sites {path}: {exc}") from None
    return Sites(tuple(names), tuple(polygons), crs, str(path))
