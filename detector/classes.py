"""The class list of the sea lion models and the colour drawn for each class; other model versions name their own
classes (``class_names`` in the manifest) and get colours of a fallback palette.

Colours follow the biologists' dot convention of the NOAA survey (red, magenta, brown, blue, green),
brightened where the dot colour would vanish on dark rock (brown becomes orange-brown).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SEA_LION_CLASSES: tuple[str, ...] = ("adult_males", "subadult_males", "adult_females", "juveniles", "pups")

# What the sea lion versions are and count, in words: their model cards' heading and first sentence, and the app's
# heading. Other versions name their own (``title`` and ``subject`` in the manifest entry or card).
SEA_LION_TITLE = "Steller sea lion counter"
SEA_LION_SUBJECT = "Steller sea lions in aerial survey photos"

CLASS_COLORS: dict[str, tuple[int, int, int]] = {  # RGB
    "adult_males": (230, 25, 25),  # red
    "subadult_males": (240, 50, 230),  # magenta
    "adult_females": (205, 120, 40),  # orange-brown
    "juveniles": (40, 100, 255),  # blue
    "pups": (40, 210, 40),  # green
}

# Typical body length at full survey resolution (data README). Training boxes are squares of this side at the
# ground scale; the photo scale is expressed as the adult female's length in a photo (detector.counting.scale).
BODY_LENGTH_PX: dict[str, int] = {
    "adult_males": 120,
    "subadult_males": 100,
    "adult_females": 80,
    "juveniles": 60,
    "pups": 40,
}

SURVEY_LONG_SIDES: tuple[int, ...] = (4992, 5616)  # long side of the NOAA survey originals the models learned from
ADULT_FEMALE_LENGTH_PX = BODY_LENGTH_PX["adult_females"]  # in a survey original: 80 px

# An adult female's length on the ground, which turns a georeferenced raster's pixel size into a photo scale
# (detector.geo.scale). Adult female Steller sea lions are 7.5-9.5 ft (2.3-2.9 m) long (NOAA Alaska Fisheries Science
# Center, National Marine Mammal Laboratory, "Steller sea lions (Eumetopias jubatus)",
# https://www.afsc.noaa.gov/nmml/gallery/pinnipeds/steller.php); 2.4 m is the short end of that range, because animals
# hauled out are seen from above bent or curled rather than stretched out.
ADULT_FEMALE_LENGTH_M = 2.4
ADULT_FEMALE_LENGTH_SOURCE = (
    "NOAA AFSC National Marine Mammal Laboratory: adult female Steller sea lions 2.3-2.9 m long"
)


@dataclass(frozen=True)
class ScaleReference:
    """How a model version measures photo scale: its reference class, that class's typical length in pixels at
    photo scale 1, and the long sides of the whole frames its data came from (auto recognises them and their
    whole-factor copies). ``class_name`` None: the version names no reference class (scale is set as a number);
    ``frame_sides`` empty: auto takes every photo at the data's native resolution (photo scale 1).

    ``length_m``: the reference class's typical length on the ground, in metres, which a georeferenced raster's pixel
    size turns into pixels (:mod:`detector.geo.scale`); None: not known for this version, so a raster's scale needs
    the length given (``--reference-length-m``) or a manual scale. Only :data:`SEA_LION_REFERENCE` has one by
    default (:data:`ADULT_FEMALE_LENGTH_M`, cited)."""

    class_name: str | None = "adult_females"
    length_px: float | None = ADULT_FEMALE_LENGTH_PX
    frame_sides: tuple[int, ...] = SURVEY_LONG_SIDES
    length_m: float | None = None

    @property
    def animals(self) -> str:
        """The reference class in words, plural: "adult females", "cows"."""
        if not self.class_name:
            return "animals"
        words = self.class_name.replace("_", " ")
        return words if words.endswith("s") else words + "s"

    @property
    def animal(self) -> str:
        """The reference class in words, singular: "adult female", "cow"."""
        animals = self.animals
        return animals[:-1] if animals.endswith("s") else animals

    def length_at(self, scale: float) -> float | None:
        """The reference class's typical length (pixels) in a photo at ``scale``; None when the version names none."""
        return None if self.length_px is None else scale * self.length_px

    def describe(self, scale: float) -> str:
        """``adult females ≈ 20 px`` (or ``photo scale 0.25`` when the version names no reference class)."""
        length = self.length_at(scale)
        return f"photo scale {scale:.3g}" if length is None else f"{self.animals} ≈ {length:.0f} px"


SEA_LION_REFERENCE = ScaleReference(length_m=ADULT_FEMALE_LENGTH_M)

_FALLBACK_PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 180, 0),
    (0, 200, 200),
    (160, 90, 255),
    (255, 255, 255),
    (128, 128, 0),
)


def class_color(name: str, index: int) -> tuple[int, int, int]:
    """RGB colour of a class: the documented one for sea lion classes, a stable palette entry otherwise."""
    return CLASS_COLORS.get(name, _FALLBACK_PALETTE[index % len(_FALLBACK_PALETTE)])


def is_sea_lion(class_names: Sequence[str]) -> bool:
    """Whether a version's classes are the sea lion ones (or a subset): their exports keep the sea lion names."""
    return bool(class_names) and set(class_names) <= set(SEA_LION_CLASSES)


def supercategory(class_names: Sequence[str]) -> str:
    """COCO supercategory of a version's classes: ``sea_lion`` for the sea lion classes, else ``animal``."""
    return "sea_lion" if is_sea_lion(class_names) else "animal"


def animals_described(class_names: Sequence[str]) -> str:
    """What a version counts, for export descriptions: "Steller sea lion", else its classes ("bull/cow/pup")."""
    return "Steller sea lion" if is_sea_lion(class_names) else "/".join(class_names)
