"""Count a GeoTIFF (or any large TIFF) window by window through rasterio: never the whole raster in memory.

Peak memory is one window's pixels and the model's copy of them, plus the detections so far (a few numbers each).
Nodata, alpha bands and internal masks (rasterio's dataset mask) are honoured: a window with no valid pixel is never
run, invalid pixels are blacked out, and a detection centred on one is dropped.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detector.counting.results import CountResult
from detector.counting.scale import (
    SEA_LION_REFERENCE,
    WARN_FACTOR,
    ScaleReference,
    auto_photo_scale,
    requested_photo_scale,
)
from detector.errors import DetectorError
from detector.geo import require_geo
from detector.geo.scale import WINDOW_PX, RasterScale, scale_from_gsd, window_overlap_px, window_px
from detector.geo.windows import Window, centres_in, window_grid
from detector.settings import CountOptions

RASTER_SUFFIXES = (".tif", ".tiff")
GDAL_CACHE_MB = 64  # GDAL's block cache while a raster is counted (a window's row of 512 px blocks fits)


@dataclass(frozen=True)
class GeoOptions:
    """How a raster is cut and scaled: window size in raster pixels, the reference animal's length in metres."""

    window_px: int = WINDOW_PX  # at most; smaller where the model's copy would be too large (scale.window_px)
    reference_length_m: float | None = None  # None: the model version's (sea lions: 2.4 m; others: their manifest's)
    overlap_px: int | None = None  # None: two reference animals (sea lions: adult females) at the raster's scale;
    # a version without a reference length: one of the model's tiles (scale.window_overlap_px)


@dataclass(frozen=True)
class RasterCount:
    """A raster's count (boxes in raster pixels) and what places it on the map."""

    result: CountResult
    scale: RasterScale
    crs_wkt: str | None  # None: not georeferenced (pixel output only)
    crs_name: str | None  # e.g. "EPSG:32604"
    transform: tuple[float, ...]  # the affine pixel → CRS transform (a, b, c, d, e, f)
    windows: int
    windows_skipped: int  # all nodata: never run
    extra: dict[str, Any] = field(default_factory=dict)
    per_window: list[dict[str, Any]] = field(default_factory=list)  # each window run: where, all it found, kept

    def geo_dict(self) -> dict[str, Any]:
        """What a :class:`~detector.counting.records.PhotoRecord` carries as ``geo`` (JSON-ready)."""
        return {
            "crs": self.crs_wkt,
            "crs_name": self.crs_name,
            "transform": [float(v) for v in self.transform],
            **self.scale.to_dict(),
            "windows": self.windows,
            "windows_skipped": self.windows_skipped,
            **self.extra,
        }


def is_raster_path(path: str | os.PathLike[str]) -> bool:
    """A file counted window by window: a TIFF with a CRS, or one larger than one photo may be decoded whole."""
    from detector.counting import images

    path = Path(path)
    if path.suffix.lower() not in RASTER_SUFFIXES:
        return False
    try:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
    except ImportError:
        return False
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.crs is not None or src.width * src.height > images.MAX_PIXELS
    except RasterioIOError:
        return False


def raster_crs(path: str | os.PathLike[str]) -> str | None:
    """A raster's CRS as a string, None when it has none or is not a raster rasterio can open."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.crs.to_string() if src.crs is not None else None
    except RasterioIOError:
        return None


def ground_sample_distance(crs: Any, transform: Any, width: int, height: int) -> float | None:
    """Metres per pixel (the mean of the pixel's two sides) at the raster's centre; None without a CRS.

    A projected CRS: the pixel's sides times the CRS's linear unit in metres. A geographic CRS: the geodesic lengths
    of one pixel's sides on the CRS's ellipsoid (degrees are not metres, and a degree of longitude shrinks with
    latitude)."""
    if crs is None:
        return None
    from pyproj import CRS, Geod

    crs = CRS.from_user_input(crs)
    a, b, c, d, e, f = tuple(transform)[:6]
    if crs.is_geographic:
        geod = Geod(ellps="WGS84") if crs.ellipsoid is None else crs.get_geod()
        lon, lat = a * width / 2 + b * height / 2 + c, d * width / 2 + e * height / 2 + f  # the raster's centre
        side_x = geod.inv(lon, lat, lon + a, lat + d)[2]  # one pixel to the right
        side_y = geod.inv(lon, lat, lon + b, lat + e)[2]  # one pixel down
        return float((side_x + side_y) / 2)
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return float((math.hypot(a, d) + math.hypot(b, e)) / 2 * unit)


def choose_raster_scale(
    options: CountOptions,
    gsd_m: float | None,
    size: tuple[int, int],
    reference: ScaleReference,
    reference_length_m: float | None = None,
    version: str = "",
) -> RasterScale:
    """The scale to count at: a manual one (``options.photo_scale``, or ``options.reference_length`` pixels of the
    version's reference class) wins; else the GSD's, from the reference class's length in metres
    (``reference_length_m``, else the version's: ``reference.length_m``) and in pixels at photo scale 1
    (``reference.length_px``); else a raster the size of a frame of the version's data (or a whole-factor copy) gets
    auto's; anything else is an error that names the version (``version``) and what to give."""
    try:
        manual = requested_photo_scale(
            options.photo_scale, options.reference_length, options.reference_class, reference
        )
    except ValueError as exc:
        raise DetectorError(f"{exc}.") from None
    metres = reference_length_m if reference_length_m is not None else reference.length_m
    length_flag = _length_flag(reference)
    from_gsd = None
    if gsd_m is not None and metres is not None and reference.length_px is not None:
        try:
            from_gsd = scale_from_gsd(gsd_m, metres, reference.length_px)
        except ValueError as exc:
            if manual is None:
                raise DetectorError(f"{exc}; give {length_flag} if the GSD is wrong.") from None
    if manual is not None:
        return RasterScale(manual, "manual", gsd_m, metres, from_gsd, reference)
    if from_gsd is not None:
        return RasterScale(from_gsd, "gsd", gsd_m, metres, from_gsd, reference)
    problem = gsd_scale_problem(reference, reference_length_m, version) if gsd_m is not None else None
    if problem:  # georeferenced, but the version has no reference length in pixels or in metres
        raise DetectorError(problem)
    auto, matched = auto_photo_scale(*size, reference.frame_sides)
    if not matched:
        survey = reference.frame_sides == SEA_LION_REFERENCE.frame_sides
        frame = "a survey photo" if survey else "a frame of the model's data"
        length = (
            f"the {reference.animal} length in pixels ({length_flag}) or a photo scale"
            if reference.length_px is not None
            else "a photo scale (--photo-scale)"
        )
        raise DetectorError(
            f"the {size[0]}×{size[1]} raster has no georeference (no CRS) and is not the size of {frame}: give "
            f"{length}."
        )
    return RasterScale(auto, "auto", None, metres, None, reference)


def _length_flag(reference: ScaleReference) -> str:
    """The option that sets the scale by the version's reference class: ``--female-length`` for the sea lions'."""
    return "--female-length" if reference.class_name == SEA_LION_REFERENCE.class_name else "--reference-length"


def gsd_scale_problem(reference: ScaleReference, reference_length_m: float | None, version: str = "") -> str | None:
    """Why a georeferenced raster's pixel size cannot give model version ``version``'s photo scale, with what to give
    instead; None when it can (the version's reference class has a length in pixels, and one in metres: its own or
    ``reference_length_m``)."""
    named = f"model version {version}" if version else "this model version"
    if reference.length_px is None:
        return (
            f"{named} names no reference class (reference_class and reference_length_px in its manifest entry), so "
            "a raster's pixel size cannot give the photo scale: give the scale (--photo-scale S)."
        )
    if reference_length_m is None and reference.length_m is None:
        return (
            f"{named} names no length in metres for its reference class ({reference.animals}), so a raster's pixel "
            f"size cannot give the photo scale: give a typical {reference.animal}'s length on the ground "
            "(--reference-length-m M), or add reference_length_m (with its source) to the version's manifest "
            f"entry, or set the scale by a measured {reference.animal} ({_length_flag(reference)} PX) or "
            "--photo-scale S."
        )
    return None


def to_8bit(band: np.ndarray) -> np.ndarray:
    """One band as uint8: uint16 keeps its high byte, other types are clipped to 0-255."""
    if band.dtype == np.uint8:
        return band
    if band.dtype == np.uint16:
        return (band >> 8).astype(np.uint8)
    return np.clip(np.nan_to_num(band), 0, 255).astype(np.uint8)


def read_rgb(src: Any, bands: list[int], window: Any = None, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Rows × cols × 3 uint8 of ``window`` (or the whole raster resampled to ``shape``), read a band at a time into
    the one output array (a single band is repeated as grey): never a second full copy of the window."""
    height, width = shape or (int(window.height), int(window.width))
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    for channel, band in enumerate(bands if len(bands) >= 3 else bands * 3):
        rgb[:, :, channel] = to_8bit(src.read(band, window=window, out_shape=shape))
    return rgb


def colour_bands(src: Any) -> list[int]:
    """The band indexes read as RGB: red, green, blue by colour interpretation, else the first three (or one)."""
    from rasterio.enums import ColorInterp

    interp = list(src.colorinterp)
    wanted = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    if all(colour in interp for colour in wanted):
        return [interp.index(colour) + 1 for colour in wanted]
    data = [i + 1 for i, colour in enumerate(interp) if colour != ColorInterp.alpha]
    return data[:3] if len(data) >= 3 else data[:1] or [1]


def count_raster(
    detector: Any,
    path: str | os.PathLike[str],
    options: CountOptions | None = None,
    geo: GeoOptions | None = None,
    *,
    source: str | None = None,
) -> RasterCount:
    """Count a raster window by window with ``detector``'s public :meth:`~detector.counting.model.Detector.count`,
    at the scale from its GSD (or ``options.photo_scale``); boxes come back in raster pixels."""
    require_geo()
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
    from rasterio.windows import Window as RioWindow

    from detector.counting import images  # a window is never larger than one photo may be (SEALION_MAX_PIXELS)

    options = options or CountOptions()
    geo = geo or GeoOptions()
    label = source or Path(path).name
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except RasterioIOError as exc:
        raise DetectorError(f"{label}: cannot open the raster ({exc}).") from None
    # GDAL's block cache defaults to 5 % of RAM and would keep the decoded raster as the windows pass: cap it
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), src:
        width, height = src.width, src.height
        crs = src.crs
        gsd = ground_sample_distance(crs, src.transform, width, height)
        reference = detector.info.scale_reference
        try:
            scale = choose_raster_scale(
                options, gsd, (width, height), reference, geo.reference_length_m, detector.info.version
            )
        except DetectorError as exc:
            raise DetectorError(f"{label}: {exc}") from None
        overlap = geo.overlap_px
        if overlap is None:
            overlap = window_overlap_px(scale.value, reference, detector.imgsz, float(detector.ground_scale))
        side = min(window_px(geo.window_px, scale.value, float(detector.ground_scale)), math.isqrt(images.MAX_PIXELS))
        if overlap * 2 >= side:
            need = f"two {reference.animals}" if reference.length_px else "one of the model's tiles"
            raise DetectorError(
                f"{label}: a window of {side} px is too small for the {overlap} px overlap {need} need at this scale; "
                "use a larger window."
            )
        windows = window_grid(width, height, side, overlap)
        bands = colour_bands(src)
        window_options = options.changed(photo_scale=scale.value, reference_length=None, reference_class=None)
        boxes, classes, scores, per_window = [], [], [], []
        tiles = skipped_tiles = gate_tiles = skipped = 0
        conf: dict[str, float] = {}
        for window in windows:
            found = _count_window(detector, src, window, bands, window_options, label, RioWindow)
            if found is None:
                skipped += 1
                continue
            result, keep = found
            per_window.append({
                "col": window.col, "row": window.row, "width": window.width, "height": window.height,
                "found": result.counts, "kept": int(keep.sum()),
            })  # fmt: skip
            tiles, skipped_tiles, gate_tiles = (
                tiles + result.tiles,
                skipped_tiles + result.tiles_skipped,
                gate_tiles + result.gate_tiles,
            )
            conf = conf or dict(result.conf)
            boxes.append(result.xyxy[keep] + np.array([window.col, window.row] * 2, dtype=np.float32))
            classes.append(result.class_id[keep])
            scores.append(result.confidence[keep])
        transform = tuple(src.transform)[:6]
        crs_wkt = crs.to_wkt() if crs is not None else None
        crs_name = crs.to_string() if crs is not None else None
    warnings_out = _scale_warnings(scale)
    result = CountResult(
        xyxy=np.concatenate(boxes) if boxes else np.zeros((0, 4)),
        class_id=np.concatenate(classes) if classes else np.zeros(0),
        confidence=np.concatenate(scores) if scores else np.zeros(0),
        class_names=detector.class_names,
        image_size=(width, height),
        model=detector.info,
        device=detector.device,
        timings_ms={"total": (time.perf_counter() - started) * 1000},
        tiles=tiles,
        tiles_skipped=skipped_tiles,
        gate_tiles=gate_tiles,
        source=label,
        conf=conf or _thresholds(detector, options),
        photo_scale=scale.value,
        scale_source=scale.source,
        runtime=detector.runtime,
        warnings=tuple(warnings_out),
    )
    extra = {"window_px": side, "overlap_px": overlap}
    return RasterCount(result, scale, crs_wkt, crs_name, transform, len(windows), skipped, extra, per_window)


def _count_window(
    detector: Any, src: Any, window: Window, bands: list[int], options: CountOptions, label: str, rio_window: Any
) -> tuple[CountResult, np.ndarray] | None:
    """One window's count and which of its detections it keeps (centre in its core and on a valid pixel); None
    when every pixel of the window is nodata (never run)."""
    area = rio_window(window.col, window.row, window.width, window.height)
    mask = src.dataset_mask(window=area) > 0
    if not mask.any():
        return None
    rgb = read_rgb(src, bands, window=area)
    if not mask.all():
        rgb[~mask] = 0  # nodata black, as the survey photos' blacked-out regions
    result = detector.count(rgb, options, source=f"{label}@{window.col},{window.row}")
    core = window.core
    keep = centres_in(result.xyxy, (core[0] - window.col, core[1] - window.row, core[2] - window.col,
                                    core[3] - window.row))  # fmt: skip
    if len(result) and not mask.all():
        cx = np.clip(((result.xyxy[:, 0] + result.xyxy[:, 2]) / 2).astype(int), 0, window.width - 1)
        cy = np.clip(((result.xyxy[:, 1] + result.xyxy[:, 3]) / 2).astype(int), 0, window.height - 1)
        keep &= mask[cy, cx]
    return result, keep


def _thresholds(detector: Any, options: CountOptions) -> dict[str, float]:
    """The thresholds a count applies, per class (for a raster whose windows were all nodata)."""
    return detector.thresholds(options)


def _scale_warnings(scale: RasterScale) -> list[str]:
    """A manual scale far from the GSD's is worth a line."""
    reference = scale.reference
    if scale.source != "manual" or scale.from_gsd is None or reference.length_px is None:
        return []
    ratio = scale.value / scale.from_gsd
    if WARN_FACTOR > ratio > 1 / WARN_FACTOR:
        return []
    animals = reference.animals
    return [
        f"{animals[0].upper()}{animals[1:]} set to ≈ {scale.reference_px:.0f} px, but the raster's GSD "
        f"({scale.gsd_m * 100:.3g} cm/px) and the {scale.reference_length_m:g} m reference length give "
        f"≈ {scale.from_gsd * reference.length_px:.0f} px."
    ]
