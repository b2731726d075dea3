"""GeoTIFF orthomosaics in, map features out: windowed counting (:mod:`.raster`), scale from the ground sample
distance (:mod:`.scale`), animals as GeoJSON points (:mod:`.features`) and totals per site polygon (:mod:`.sites`).

Needs the ``geo`` extra (rasterio, pyproj, shapely); :func:`require_geo` says how to install it in one line.
"""

from __future__ import annotations

from detector.errors import DetectorError

GEO_INSTALL = "pip install 'sealion-counter[geo]'"  # or: pip install rasterio pyproj shapely


def require_geo() -> None:
    """Raise a one-line DetectorError naming the install command when rasterio, pyproj or shapely is missing."""
    try:
        import pyproj  # noqa: F401
        import rasterio  # noqa: F401
        import shapely  # noqa: F401
    except ImportError as exc:
        raise DetectorError(
            f"GeoTIFFs, GeoJSON and site polygons need the geo extra ({exc.name} is missing): {GEO_INSTALL}"
        ) from None


def geo_available() -> bool:
    """Whether the geo extra is installed."""
    try:
        require_geo()
    except DetectorError:
        return False
    return True
