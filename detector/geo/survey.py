"""Rasters in a count or a survey run: one :class:`~detector.counting.records.PhotoRecord` per raster, with its
placement (``geo``) and, given site polygons, each animal's site."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from detector.counting.records import Failure, PhotoRecord
from detector.errors import DetectorError
from detector.files import sha256_file
from detector.geo.features import centres, to_map
from detector.geo.raster import GeoOptions, count_raster
from detector.geo.sites import Sites
from detector.settings import CountOptions


def site_of_animals(geo: dict[str, Any], xyxy: Any, sites: Sites) -> list[str | None]:
    """Each animal's site (its box centre in the raster's CRS, looked up in the sites' CRS)."""
    if not geo.get("crs"):
        raise DetectorError("site polygons need a georeferenced raster (this one has no CRS)")
    x, y = centres(xyxy)
    mx, my = to_map(geo, x, y)
    return sites.assign(mx, my, geo["crs"])


def count_raster_file(
    detector: Any, photo: Any, options: CountOptions, geo: GeoOptions | None = None, sites: Sites | None = None
) -> PhotoRecord | Failure:
    """Count one raster file (``photo``: a :class:`~detector.survey.runs.PhotoFile`) into a record, or a failure
    that names it; never raises for a bad raster."""
    try:
        counted = count_raster(detector, photo.path, options, geo, source=photo.file)
        placement = counted.geo_dict()
        if sites is not None:
            placement["sites"] = site_of_animals(placement, counted.result.xyxy, sites)
            placement["sites_file"] = sites.source
        digest = sha256_file(photo.path)
    except DetectorError as exc:
        message = str(exc) if photo.file in str(exc) else f"{photo.file}: {exc}"
        return Failure(photo.file, message, photo.folder)
    except OSError as exc:
        return Failure(photo.file, f"{photo.file}: cannot read the raster ({exc.strerror or exc}).", photo.folder)
    return PhotoRecord(
        file=photo.file,
        result=counted.result,
        folder=photo.folder,
        sha256=digest,
        size=photo.size,
        mtime_ns=photo.mtime_ns,
        geo=placement,
    )


def count_rasters(
    detector: Any,
    rasters: Sequence[Any],
    options: CountOptions,
    geo: GeoOptions | None = None,
    sites: Sites | None = None,
) -> Iterator[PhotoRecord | Failure]:
    """:func:`count_raster_file` for each raster, in order (each is already cut into windows: one at a time)."""
    for photo in rasters:
        yield count_raster_file(detector, photo, options, geo, sites)


def with_sites(record: PhotoRecord, sites: Sites) -> PhotoRecord:
    """A georeferenced record with its animals' sites (re)assigned from ``sites``."""
    placement = dict(record.geo or {})
    placement["sites"] = site_of_animals(placement, record.result.xyxy, sites)
    placement["sites_file"] = sites.source
    return replace(record, geo=placement)


SITE_MARK = "#"  # a site unit's file: "<raster>#<site>" ("-": outside every site polygon)


def site_units(records: Sequence[PhotoRecord]) -> list[PhotoRecord]:
    """The survey totals' sampling units: a record whose animals have sites becomes one unit per site it has animals
    in, ``<file>#<site>`` in folder ``<site>`` (``-``: outside every polygon), holding that site's animals, so that
    ``sealion-survey sample`` and ``estimate`` stratify and total per site as they do per folder. A reviewer reviews
    a unit by counting the raster's part inside the site and naming it ``<file>#<site>`` in a dots table. Records
    without sites pass unchanged."""
    units: list[PhotoRecord] = []
    for record in records:
        sites = (record.geo or {}).get("sites")
        if sites is None:
            units.append(record)
            continue
        labels = np.array([site or "-" for site in sites], dtype=object)
        for site in sorted(set(labels.tolist())):
            keep = labels == site
            result = replace(
                record.result, xyxy=record.result.xyxy[keep], class_id=record.result.class_id[keep],
                confidence=record.result.confidence[keep],
            )  # fmt: skip
            geo = {**record.geo, "sites": [site] * int(keep.sum())}
            units.append(replace(record, file=f"{record.file}{SITE_MARK}{site}", folder=site, result=result, geo=geo,
                                 sha256=""))  # fmt: skip
    return units
