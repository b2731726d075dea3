"""The GIS side of ``sealion-count``: its options, and what it does with rasters, GeoJSON and site polygons.

Kept here so that :mod:`detector.cli` only calls in at a few places."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from detector.errors import DetectorError
from detector.geo.scale import REFERENCE_LENGTH_M, REFERENCE_SOURCE, WINDOW_PX

GEOJSON_SUFFIXES = (".geojson",)


def add_geo_arguments(parser: argparse.ArgumentParser) -> None:
    """GeoTIFF and GIS options (the geo extra: rasterio, pyproj, shapely)."""
    geo = parser.add_argument_group(
        "GeoTIFF orthomosaics and GIS (needs the geo extra: pip install 'sealion-counter[geo]')"
    )
    geo.add_argument(
        "--reference-length-m", type=float, default=None, metavar="M",
        help="the typical length in metres of the model version's reference class that, with a georeferenced "
        "raster's pixel size, gives the scale (default: the version's reference_length_m; sea lion versions: "
        f"adult females, {REFERENCE_LENGTH_M} m, {REFERENCE_SOURCE}; a version without one needs it); "
        "--female-length, --reference-length or --photo-scale set the scale itself",
    )  # fmt: skip
    geo.add_argument(
        "--sites", type=Path, metavar="GEOJSON",
        help="site polygons (a 'name' property each, any CRS the file declares): every animal gets its site, and "
        "the table and summary.csv total per site",
    )  # fmt: skip
    geo.add_argument(
        "--animals-csv", type=Path, metavar="CSV",
        help="one row per animal: class, confidence, pixel box, lon/lat (georeferenced rasters), site",
    )  # fmt: skip
    geo.add_argument(
        "--window-px", type=int, default=WINDOW_PX, metavar="N",
        help="a raster is read N×N pixels at a time (default %(default)s; memory follows the window, not the raster)",
    )  # fmt: skip


def wants_geojson(out: Path | None) -> bool:
    return out is not None and out.suffix.lower() in GEOJSON_SUFFIXES


def needs_geo(args: argparse.Namespace) -> bool:
    """Whether the command asked for something only the geo extra does."""
    return bool(args.sites or args.animals_csv or wants_geojson(args.out))


class RasterCounting:
    """The rasters of one ``sealion-count`` command: which inputs they are, and counting them."""

    def __init__(self, args: argparse.Namespace) -> None:
        from detector.geo import require_geo
        from detector.geo.raster import GeoOptions

        if needs_geo(args):
            require_geo()
        metres = args.reference_length_m
        if metres is not None and not (math.isfinite(metres) and metres > 0):
            raise DetectorError(f"--reference-length-m must be a positive number of metres, got {metres}.")
        self.geo = GeoOptions(window_px=args.window_px, reference_length_m=metres)
        self.sites = None
        if args.sites:
            from detector.geo.sites import load_sites

            self.sites = load_sites(args.sites)
        self.geojson = wants_geojson(args.out)

    def split(self, photos: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        """(rasters, other photos): rasters are TIFFs with a CRS or too large to decode whole (with the geo extra;
        without it every TIFF is a photo, as before)."""
        from detector.geo import geo_available
        from detector.geo.raster import RASTER_SUFFIXES, is_raster_path

        if not any(Path(photo.path).suffix.lower() in RASTER_SUFFIXES for photo in photos) or not geo_available():
            return [], list(photos)

        rasters = [photo for photo in photos if is_raster_path(photo.path)]
        chosen = {id(photo) for photo in rasters}
        return rasters, [photo for photo in photos if id(photo) not in chosen]

    def check_geojson(self, photos: Sequence[Any]) -> None:
        """Before counting: GeoJSON needs every input georeferenced; the first that is not is named."""
        if not self.geojson:
            return
        from detector.geo.raster import raster_crs

        for photo in photos:
            if raster_crs(photo.path) is None:
                raise DetectorError(
                    f"{photo.file}: no georeference (no CRS), so its animals cannot be written as GeoJSON; write "
                    "--out counts.csv or counts.json for pixel boxes."
                )

    def check_scale(self, info: Any, rasters: Sequence[Any], options: Any) -> None:
        """Before counting: a georeferenced raster's scale comes from its pixel size and the reference class's
        length in metres (``--reference-length-m`` or the version's) unless the scale is given; a version that cannot
        give it stops the command here, naming the version and the fix, rather than failing raster after raster."""
        if options.photo_scale is not None or options.reference_length is not None:
            return
        from detector.geo.raster import gsd_scale_problem, raster_crs

        problem = gsd_scale_problem(info.scale_reference, self.geo.reference_length_m, info.version)
        placed = next((photo for photo in rasters if raster_crs(photo.path) is not None), None) if problem else None
        if placed is not None:
            raise DetectorError(f"{placed.file}: {problem}")

    def count(self, detector: Any, rasters: Sequence[Any], options: Any, done: Callable[[Any], None]) -> None:
        """Count each raster and hand its record (or failure) to ``done``."""
        from detector.geo.survey import count_rasters

        for outcome in count_rasters(detector, rasters, options, self.geo, self.sites):
            done(outcome)

    def with_sites(self, records: Sequence[Any]) -> list[Any]:
        """The records, the georeferenced ones with their animals' sites from ``--sites`` (when given)."""
        if self.sites is None:
            return list(records)
        from detector.geo.survey import with_sites

        return [with_sites(r, self.sites) if (r.geo or {}).get("crs") else r for r in records]

    def write(self, out: Path | None, records: Sequence[Any], animals_csv: Path | None) -> bool:
        """Write ``out`` when it is GeoJSON and the per-animal CSV when asked; whether anything was written."""
        if not (animals_csv or self.geojson):
            return False
        from detector.geo.features import write_animals_csv, write_geojson

        if animals_csv:
            write_animals_csv(animals_csv, records)
        if self.geojson and out is not None:
            write_geojson(out, records)
        return True

    def print_sites(self, records: Sequence[Any]) -> None:
        """Per-site totals on stdout, as the table per photo (``-``: outside every site polygon)."""
        if self.sites is None or not records:
            return
        names = records[0].result.class_names
        totals: dict[str, dict[str, int]] = {}
        for record in records:
            for _, site, counts in record.groups():
                entry = totals.setdefault(site or "-", dict.fromkeys(names, 0))
                for name, count in counts.items():
                    entry[name] += count
        header = ["site", *names, "total"]
        rows = [[site, *map(str, c.values()), str(sum(c.values()))] for site, c in sorted(totals.items())]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        print(file=sys.stdout)
        for row in [header, *rows]:
            print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
