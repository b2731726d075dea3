"""Photo scale: how large the animals in a photo are, compared with the photos a model version learned from.

Pure functions, no I/O. A *photo scale* of 1.0 is a photo at the native resolution of the version's data: for the
sea lion versions a NOAA survey original (4992 or 5616 pixels wide, two cameras), where an adult female is about
:data:`ADULT_FEMALE_LENGTH_PX` pixels long; 0.25 is such a photo downsampled 4x. Each version names a *reference
class* and its typical length at photo scale 1 (:class:`ScaleReference`; sea lions: adult females, 80 px). People
give the scale as the reference class's length they see in the photo (a ruler in any image viewer measures it; a
ground resolution in cm/pixel would need camera and altitude data the NOAA photos do not carry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from detector.classes import ADULT_FEMALE_LENGTH_PX, SEA_LION_REFERENCE, SURVEY_LONG_SIDES, ScaleReference

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
    return scale_from_reference_length(length_px, SEA_LION_REFERENCE)


def scale_from_reference_length(length_px: float, reference: ScaleReference) -> float:
    """The photo scale at which the version's reference class is ``length_px`` pixels long."""
    if reference.length_px is None:
        raise ValueError(
            "this model version names no reference class and length (reference_class/reference_length_px in its "
            "manifest entry), so give the photo scale as a number instead"
        )
    smallest = MIN_PHOTO_SCALE * reference.length_px
    if not length_px >= smallest or not math.isfinite(length_px):
        noun = reference.animals[:-1] if reference.animals.endswith("s") else reference.animals
        raise ValueError(f"the {noun} length must be at least {smallest:g} pixels, got {length_px}")
    return length_px / reference.length_px


def requested_photo_scale(
    photo_scale: float | None, reference_length: float | None, measured_class: str | None, reference: ScaleReference
) -> float | None:
    """The manual photo scale a count asks for: ``photo_scale``, or the scale at which the version's reference class
    is ``reference_length`` pixels long (``measured_class``: the class the length was measured on, e.g.
    ``adult_females`` from ``--female-length``; it must be the version's reference class). None: auto."""
    if reference_length is None:
        return photo_scale
    if measured_class and measured_class != reference.class_name:
        measured = ScaleReference(measured_class, None).animals
        raise ValueError(
            f"the length given measures {measured}, but this model version measures scale by "
            f"{reference.animals if reference.class_name else 'no reference class'}; give the reference length "
            "(--reference-length) or the photo scale (--photo-scale) instead"
        )
    return scale_from_reference_length(float(reference_length), reference)


def auto_photo_scale(width: int, height: int, frame_sides: tuple[int, ...] = SURVEY_LONG_SIDES) -> tuple[float, bool]:
    """The scale of a whole frame of this size, and whether the size was recognised.

    A long side within 2 % of a frame of the version's data (``frame_sides``; sea lions: the survey originals)
    divided by a common factor (1, 2, 3, 4, 6, 8, 16) gives it exactly (1404 px → 5616/4 → 0.25). Any other size is
    taken relative to the first frame side (at least :data:`MIN_PHOTO_SCALE`): a guess, flagged. A version whose
    data have no frame size (tiles of any size) takes every photo at native resolution (1.0), flagged.
    """
    if not frame_sides:
        return 1.0, False
    long_side = max(int(width), int(height))
    best: tuple[float, float] | None = None  # (relative mismatch, scale)
    for original in frame_sides:
        for factor in WHOLE_FACTORS:
            mismatch = abs(long_side * factor / original - 1)
            if mismatch <= SIZE_TOLERANCE and (best is None or mismatch < best[0]):
                best = (mismatch, 1 / factor)
    if best is not None:
        return best[1], True
    return max(MIN_PHOTO_SCALE, long_side / frame_sides[0]), False


def choose_photo_scale(
    requested: float | None, width: int, height: int, reference: ScaleReference = SEA_LION_REFERENCE
) -> PhotoScale:
    """``requested`` (a manual photo scale) or auto's, for a photo of this size."""
    auto, matched = auto_photo_scale(width, height, reference.frame_sides)
    if requested is None:
        return PhotoScale(auto, "auto", auto, matched)
    if not requested >= MIN_PHOTO_SCALE or not math.isfinite(requested):
        smallest = f" ({reference.describe(MIN_PHOTO_SCALE)})" if reference.length_px else ""
        raise ValueError(f"photo_scale must be at least {MIN_PHOTO_SCALE:g}{smallest}, got {requested}")
    return PhotoScale(float(requested), "manual", auto, matched)


def scale_warnings(
    scale: PhotoScale, total: int, size: tuple[int, int], reference: ScaleReference = SEA_LION_REFERENCE
) -> list[str]:
    """Plain-language warnings when the scale may have made animals too small or too large for the model.

    ``total`` is the number of animals counted, ``size`` the photo's (width, height), ``reference`` the version's
    reference class (the warnings speak of it: adult females for sea lions, cows for elephant seals; the sea lion
    wording is as it always was).
    """
    width, height = size
    now, animals = reference.describe(scale.value), reference.animals
    one = animals[:-1] if animals.endswith("s") else animals
    article = "an" if one[:1] in "aeiou" else "a"
    survey = reference.frame_sides == SURVEY_LONG_SIDES
    frame, frames = ("survey frame", "survey photo") if survey else ("frame of the model's data",) * 2
    warnings: list[str] = []
    if scale.source == "manual":
        ratio = scale.value / scale.auto
        if ratio >= WARN_FACTOR or ratio <= 1 / WARN_FACTOR:
            size_word = "smaller" if ratio > 1 else "larger"
            how_much = ratio if ratio > 1 else 1 / ratio
            setting = f"{now[0].upper()}{now[1:]}".replace(" ≈", " set to ≈", 1) if reference.length_px else now
            warnings.append(
                f"{setting[0].upper()}{setting[1:]}: if this {width}×{height} photo is a whole {frame}, the model "
                f"sees animals {how_much:.1f}× {size_word} than it learned them and counts may be far off (auto "
                f"would use {reference.describe(scale.auto)}). Keep the setting only if the photo is a crop of "
                f"{article if not survey else 'a'} {frames} and you measured the animals."
            )
    elif not scale.auto_matched and not reference.frame_sides:
        measure = f"measure one {one} and set its length" if reference.length_px else "set the photo scale"
        unknown = "model's data have no frame size" if reference.length_px else "model names no scale reference"
        warnings.append(
            f"The {unknown}, so auto takes this {width}×{height} px photo at the resolution "
            f"the model learned from ({now}); if the animals are larger or smaller, {measure}."
        )
    elif not scale.auto_matched:
        measure = f"measure one {one} and set the length" if reference.length_px else "set the photo scale"
        per = "female" if reference.class_name == "adult_females" else one
        typical = (
            f" (a crop of {article if not survey else 'a'} {frames} needs about {reference.length_px:g} px per {per})"
        )
        warnings.append(
            f"{width}×{height} px is not the size of {article if not survey else 'a'} {frames} or of a copy "
            f"downsampled 2, 3, 4, 6, 8 or 16×, so auto guessed {now}; {measure} if the counts look wrong"
            f"{typical if reference.length_px else ''}."
        )
    if total == 0 and warnings:
        measure = f"measure {article} {one} and set its length in pixels" if reference.length_px else "set it"
        warnings.append(
            f"No animals found with {now}. If there are animals in the photo, the scale is probably wrong: {measure}."
        )
    return warnings
