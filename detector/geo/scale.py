"""Photo scale from a raster's ground sample distance (GSD): pure functions, no I/O.

A model version measures photo scale by its reference class (:class:`~detector.classes.ScaleReference`): that
class's typical length in pixels at photo scale 1 (sea lions: an adult female, 80 px in a NOAA survey original) and,
where the version knows it, its typical length on the ground in metres. A georeferenced raster says how many metres
a pixel covers; with the reference animal's length in metres, its length in pixels, hence the photo scale, follows
without anyone measuring pixels.

Reference length in metres: the version's ``reference_length_m`` (manifest entry or model card). The sea lion
versions' default is :data:`~detector.classes.ADULT_FEMALE_LENGTH_M`, 2.4 m: adult female Steller sea lions are
7.5-9.5 ft (2.3-2.9 m) long (NOAA Alaska Fisheries Science Center, National Marine Mammal Laboratory, "Steller sea
lions (Eumetopias jubatus)", https://www.afsc.noaa.gov/nmml/gallery/pinnipeds/steller.php), the short end taken
because animals hauled out are seen from above bent or curled rather than stretched out; at 3 cm per pixel it gives
the 80 px the models learned. The NOAA photos carry no GSD, so that 3 cm is a stated assumption, not a measurement.
A version that names no length in metres has none here: its rasters need ``--reference-length-m`` (or a manual
scale); no other species' number is assumed. ``--reference-length-m`` overrides the length for any version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from detector.classes import ADULT_FEMALE_LENGTH_M, ADULT_FEMALE_LENGTH_SOURCE, ScaleReference
from detector.counting.scale import MIN_PHOTO_SCALE

REFERENCE_LENGTH_M = ADULT_FEMALE_LENGTH_M  # the sea lion versions' reference length, metres (see the docstring)
REFERENCE_SOURCE = ADULT_FEMALE_LENGTH_SOURCE
WINDOW_PX = 5632  # raster pixels read at a time: a whole survey original (5616 px) is one window, counted as a photo
MAX_WORK_SIDE = 6144  # a window's side as the model sees it (after rescaling), at most: 38 MP, under the photo budget
OVERLAP_LENGTHS = 2.0  # window overlap in reference-class lengths: a large male (1.5 adult females) fits whole in it

RasterScaleSource = Literal["gsd", "manual", "auto"]


@dataclass(frozen=True)
class RasterScale:
    """The scale used for a raster, where it came from, and the GSD's (when the raster has one)."""

    value: float  # photo scale (1.0: the native resolution of the version's data, a NOAA original for sea lions)
    source: RasterScaleSource  # "gsd": from the GSD; "manual": a length in px or --photo-scale; "auto": from the size
    gsd_m: float | None  # metres per pixel, None without a CRS
    reference_length_m: float | None  # the reference class's length on the ground; None: not known (manual scale)
    from_gsd: float | None  # the scale the GSD gives (also when another was chosen), None without a CRS or metres
    reference: ScaleReference  # the version's: its class, length in pixels at photo scale 1, ...

    @property
    def reference_px(self) -> float | None:
        """The reference animal's length in raster pixels at the scale used (None: the version names none)."""
        return self.reference.length_at(self.value)

    def to_dict(self) -> dict[str, float | str | None]:
        return {
            "scale": round(self.value, 6),
            "scale_source": self.source,
            "gsd_m": None if self.gsd_m is None else round(self.gsd_m, 6),
            "reference_length_m": self.reference_length_m,
            "scale_from_gsd": None if self.from_gsd is None else round(self.from_gsd, 6),
        }


def scale_from_gsd(gsd_m: float, reference_length_m: float, reference_px: float) -> float:
    """The photo scale at which the reference animal, ``reference_length_m`` long on the ground, spans
    ``reference_length_m / gsd_m`` pixels, given that it is ``reference_px`` pixels long at photo scale 1 (the
    version's ``reference_length_px``: 80 for the sea lions' adult females).

    Raises ValueError naming both numbers when that is under the :data:`MIN_PHOTO_SCALE` share of ``reference_px``
    (the GSD is too coarse: 5 px for sea lions).
    """
    if not (math.isfinite(gsd_m) and gsd_m > 0):
        raise ValueError(f"the ground sample distance must be a positive number of metres, got {gsd_m}")
    if not (math.isfinite(reference_length_m) and reference_length_m > 0):
        raise ValueError(f"the reference length must be a positive number of metres, got {reference_length_m}")
    pixels = reference_length_m / gsd_m
    smallest = MIN_PHOTO_SCALE * reference_px
    if pixels < smallest:
        raise ValueError(
            f"a ground sample distance of {gsd_m * 100:.3g} cm/pixel makes the {reference_length_m:g} m reference "
            f"animal {pixels:.2g} px long, under the {smallest:g} px the model can count"
        )
    return pixels / reference_px


def window_px(requested: int, scale: float, ground_scale: float) -> int:
    """The window side in raster pixels: ``requested``, made smaller where the model's copy of it would be more than
    :data:`MAX_WORK_SIDE` pixels a side (a fine-GSD raster is shrunk, a coarse one enlarged, for the model)."""
    return max(1, min(int(requested), math.floor(MAX_WORK_SIDE * scale / ground_scale)))


def overlap_px(scale: float, reference_px: float) -> int:
    """Window overlap in raster pixels at ``scale``: :data:`OVERLAP_LENGTHS` reference animals (``reference_px`` long
    at photo scale 1; sea lions: two adult females), at least 32 px."""
    return max(32, math.ceil(OVERLAP_LENGTHS * scale * reference_px))


def window_overlap_px(scale: float, reference: ScaleReference, imgsz: int, ground_scale: float) -> int:
    """Window overlap in raster pixels at ``scale`` for a model version measured by ``reference``: two of its
    reference animals (:func:`overlap_px`; sea lions: two adult females). A version that names no reference length
    gives no animal size, and no other species' is assumed: the overlap is then one of the model's tiles
    (``imgsz`` pixels at its ``ground_scale``, in raster pixels at ``scale``), because an animal the model can
    detect fits inside one of its tiles, so any such animal lies whole in some window (at the cost of more
    overlap than an animal needs)."""
    if reference.length_px is not None:
        return overlap_px(scale, reference.length_px)
    return max(32, math.ceil(scale * imgsz / ground_scale))
