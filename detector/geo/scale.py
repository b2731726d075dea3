"""Photo scale from a raster's ground sample distance (GSD): pure functions, no I/O.

The model learned animals at the NOAA survey originals' resolution, where an adult female is
:data:`~detector.counting.scale.ADULT_FEMALE_LENGTH_PX` (80) pixels long. A georeferenced raster says how many metres
a pixel covers; with the reference animal's length in metres, the adult female's length in pixels, hence the photo
scale, follows without anyone measuring pixels.

Reference length: adult female Steller sea lions are 7.5-9.5 ft (2.3-2.9 m) long (NOAA Alaska Fisheries Science
Center, National Marine Mammal Laboratory, "Steller sea lions (Eumetopias jubatus)",
https://www.afsc.noaa.gov/nmml/gallery/pinnipeds/steller.php). :data:`REFERENCE_LENGTH_M` takes 2.4 m, the short end
of that range, because animals hauled out are seen from above bent or curled rather than stretched out; at 3 cm per
pixel it gives the 80 px the models learned. The NOAA photos carry no GSD, so that 3 cm is a stated assumption, not a
measurement; ``--reference-length-m`` overrides the length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from detector.counting.scale import ADULT_FEMALE_LENGTH_PX, MIN_PHOTO_SCALE

REFERENCE_LENGTH_M = 2.4  # adult female Steller sea lion, metres (NOAA AFSC: 2.3-2.9 m; see the module docstring)
REFERENCE_SOURCE = "NOAA AFSC National Marine Mammal Laboratory: adult female Steller sea lions 2.3-2.9 m long"
MIN_REFERENCE_PX = MIN_PHOTO_SCALE * ADULT_FEMALE_LENGTH_PX  # 5 px: below this nothing is countable
WINDOW_PX = 5632  # raster pixels read at a time: a whole survey original (5616 px) is one window, counted as a photo
MAX_WORK_SIDE = 6144  # a window's side as the model sees it (after rescaling), at most: 38 MP, under the photo budget
OVERLAP_FEMALES = 2.0  # window overlap in adult female lengths: a large male (1.5 females) fits whole in it

RasterScaleSource = Literal["gsd", "manual", "auto"]


@dataclass(frozen=True)
class RasterScale:
    """The scale used for a raster, where it came from, and the GSD's (when the raster has one)."""

    value: float  # photo scale (1.0: a NOAA survey original)
    source: RasterScaleSource  # "gsd": from the GSD; "manual": --female-length / --photo-scale; "auto": from the size
    gsd_m: float | None  # metres per pixel, None without a CRS
    reference_length_m: float
    from_gsd: float | None  # the scale the GSD gives (also when another was chosen), None without a CRS

    @property
    def female_px(self) -> float:
        """The reference animal's length in raster pixels at the scale used."""
        return self.value * ADULT_FEMALE_LENGTH_PX

    def to_dict(self) -> dict[str, float | str | None]:
        return {
            "scale": round(self.value, 6),
            "scale_source": self.source,
            "gsd_m": None if self.gsd_m is None else round(self.gsd_m, 6),
            "reference_length_m": self.reference_length_m,
            "scale_from_gsd": None if self.from_gsd is None else round(self.from_gsd, 6),
        }


def scale_from_gsd(gsd_m: float, reference_length_m: float = REFERENCE_LENGTH_M) -> float:
    """The photo scale at which the reference animal (``reference_length_m`` long) spans ``reference/gsd`` pixels.

    Raises ValueError naming both numbers when that is under :data:`MIN_REFERENCE_PX` pixels (the GSD is too coarse).
    """
    if not (math.isfinite(gsd_m) and gsd_m > 0):
        raise ValueError(f"the ground sample distance must be a positive number of metres, got {gsd_m}")
    if not (math.isfinite(reference_length_m) and reference_length_m > 0):
        raise ValueError(f"the reference length must be a positive number of metres, got {reference_length_m}")
    pixels = reference_length_m / gsd_m
    if pixels < MIN_REFERENCE_PX:
        raise ValueError(
            f"a ground sample distance of {gsd_m * 100:.3g} cm/pixel makes the {reference_length_m:g} m reference "
            f"animal {pixels:.2g} px long, under the {MIN_REFERENCE_PX:g} px the model can count"
        )
    return pixels / ADULT_FEMALE_LENGTH_PX


def window_px(requested: int, scale: float, ground_scale: float) -> int:
    """The window side in raster pixels: ``requested``, made smaller where the model's copy of it would be more than
    :data:`MAX_WORK_SIDE` pixels a side (a fine-GSD raster is shrunk, a coarse one enlarged, for the model)."""
    return max(1, min(int(requested), math.floor(MAX_WORK_SIDE * scale / ground_scale)))


def overlap_px(scale: float) -> int:
    """Window overlap in raster pixels at ``scale``: :data:`OVERLAP_FEMALES` adult females, at least 32 px."""
    return max(32, math.ceil(OVERLAP_FEMALES * scale * ADULT_FEMALE_LENGTH_PX))
