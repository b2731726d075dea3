"""In-sample sanity of the shipped default model: on a photo it was trained on, it finds what it was shown.

Photo 43 of the NOAA sample (189 pups, 47 juveniles) is in every version's training data since v2; v2 found none of
its pups or juveniles (its best pup score was 0.15), which no per-class threshold can hide. Needs the NOAA sample.
"""

from __future__ import annotations

import csv

import pytest

from detector import Detector
from detector.settings import ModelSettings

FOUND_AT_LEAST = 0.8  # share of the photo's juveniles and pups the default model must find at its own thresholds


@pytest.fixture(scope="module")
def default_model() -> Detector:
    return Detector.load(ModelSettings(device="cpu"))


def official_counts(shared_data, photo_id: str) -> dict[str, int]:
    with open(shared_data / "counts.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["train_id"] == photo_id)
    return {name: int(value) for name, value in row.items() if name != "train_id"}


def test_the_default_model_finds_the_juveniles_and_pups_of_a_photo_it_was_trained_on(default_model, shared_data):
    truth = official_counts(shared_data, "43")
    result = default_model.count(shared_data / "fullres-raw" / "43.jpg")  # the version's own thresholds
    for name in ("juveniles", "pups"):
        assert result.counts[name] >= FOUND_AT_LEAST * truth[name], (
            f"{result.model.version} found {result.counts[name]} of photo 43's {truth[name]} {name}"
        )
