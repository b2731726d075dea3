"""Photo scale: how large the animals in a photo are, compared with the survey photos the models learned from.

Pure functions, no I/O. A *photo scale* of 1.0 is a NOAA survey original (4992 or 5616 pixels wide, two
cameras), where an adult female is about :data:`ADULT_FEMALE_LENGTH_PX` pixels long; 0.25 is such a photo
downsampled 4x. People give it as the adult female length they see in the photo (a ruler in any image viewer
measures it; a ground resolution in cm/pixel would need camera and altitude data the NOAA photos do not carry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from detector.classes import BODY_LENGTH_PX

SURVEY_LONG_SIDES: tuple[int, ...] = (4992, 5616)  # long side of the NOAA survey originals the models learned from
ADULT_FEMALE_LENGTH_PX = BODY_LENGTH_PX["adult_females"]  # in a survey original: 80 px
WHOLE_FACTORS = (1, 2, 3, 4, 6, 8, 16)  # the downsampling factors auto recognises (more would match any small size)
SIZE_TOLERANCE = 0.02  # a long side within 2 % of a survey original / k counts as that copy
WARN_FACTOR = 1.5  # a manual scale this far from the auto one gets a warning
MIN_PHOTO_SCALE = 1 / 16  # adult females 5 px: below this nothing is countable, and the upscaled copy explodes

ScaleSource = Literal["auto", "manual"]


@dataclass(frozen=True)
class PhotoScale:
    """The scale used for one photo, how it was chosen, and what auto would have chosen."""

    value: float  # photo resolution relative to a survey original
    source: ScaleSource
    auto: float  # auto's scale for this photo's size
    auto_matched: bool  # auto recognised the size as a survey original or a whole-factor copy of one

    @property
    def adult_female_px(self) -> float:
        """Typical adult female length in this photo, in pixels."""
        return self.value * ADULT_FEMALE_LENGTH_PX


def scale_from_female_length(length_px: float) -> float:
    """The photo scale at which an adult female is ``length_px`` pixels long."""
    smallest = MIN_PHOTO_SCALE * ADULT_FEMALE_LENGTH_PX
    if not length_px >= smallest or not math.isfinite(length_px):
        raise ValueError(f"the adult female length must be at least {smallest:g} pixels, got {length_px}")
    return length_px / ADULT_FEMALE_LENGTH_PX


def auto_photo_scale(width: int, height: int) -> tuple[float, bool]:
    """The scale of a whole survey frame of this size, and whether the size was recognised.

    A long side within 2 % of a survey original divided by a common factor (1, 2, 3, 4, 6, 8, 16) gives it exactly
    (1404 px → 5616/4 → 0.25). Any other size is taken relative to a 4992-pixel original (at least
    :data:`MIN_PHOTO_SCALE`): a guess, flagged.
    """
    long_side = max(int(width), int(height))
    best: tuple[float, float] | None = None  # (relative mismatch, scale)
    for original in SURVEY_LONG_SIDES:
        for factor in WHOLE_FACTORS:
            mismatch = abs(long_side * factor / original - 1)
            if mismatch <= SIZE_TOLERANCE and (best is None or mismatch < best[0]):
                best = (mismatch, 1 / factor)
    if best is not None:
        return best[1], True
    return max(MIN_PHOTO_SCALE, long_side / SURVEY_LONG_SIDES[0]), False


def choose_photo_scale(requested: float | None, width: int, height: int) -> PhotoScale:
    """``requested`` (a manual photo scale) or auto's, for a photo of this size."""
    auto, matched = auto_photo_scale(width, height)
    if requested is None:
        return PhotoScale(auto, "auto", auto, matched)
    if not requested >= MIN_PHOTO_SCALE or not math.isfinite(requested):
        raise ValueError(
            f"photo_scale must be at least {MIN_PHOTO_SCALE:g} (adult females "
            f"{MIN_PHOTO_SCALE * ADULT_FEMALE_LENGTH_PX:g} px), got {requested}"
        )
    return PhotoScale(float(requested), "manual", auto, matched)


def scale_warnings(scale: PhotoScale, total: int, size: tuple[int, int]) -> list[str]:
    """Plain-language warnings when the scale may have made animals too small or too large for the model.

    ``total`` is the number of animals counted, ``size`` the photo's (width, height).
    """
    width, height = size
    auto_phrase = f"auto would use adult females ≈ {scale.auto * ADULT_FEMALE_LENGTH_PX:.0f} px"
    warnings: list[str] = []
    if scale.source == "manual":
        ratio = scale.value / scale.auto
        if ratio >= WARN_FACTOR or ratio <= 1 / WARN_FACTOR:
            size_word = "smaller" if ratio > 1 else "larger"
            how_much = ratio if ratio > 1 else 1 / ratio
            warnings.append(
                f"Adult females set to ≈ {scale.adult_female_px:.0f} px: if this {width}×{height} photo is a whole "
                f"survey frame, the model sees animals {how_much:.1f}× {size_word} than it learned them and counts "
                f"may be far off ({auto_phrase}). Keep the setting only if the photo is a crop of a survey photo "
                "and you measured the animals."
            )
    elif not scale.auto_matched:
        warnings.append(
            f"{width}×{height} px is not the size of a survey photo or of a copy downsampled 2, 3, 4, 6, 8 or 16×, so "
            f"auto guessed adult females ≈ {scale.adult_female_px:.0f} px; measure one adult female and set the "
            "length if the counts look wrong (a crop of a survey photo needs about 80 px per female)."
        )
    if total == 0 and warnings:
        warnings.append(
            f"No animals found with adult females ≈ {scale.adult_female_px:.0f} px. If there are animals in the "
            "photo, the scale is probably wrong: measure an adult female and set its length in pixels."
        )
    return warnings
