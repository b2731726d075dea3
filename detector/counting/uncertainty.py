"""How far a count can be trusted: a model version's cross-validated count error per class, read from its card.

Every number here comes from the version's ``metrics`` (``weights/manifest.yaml`` or the hub model card), so a new
default version brings its own errors with no code change:

- **typical error per photo** of a class: its cross-validated count RMSE on photos the model never saw
  (``cv_calibrated_rmse_per_class``, else ``cv_rmse_per_class``): one number per class, dominated by the dense
  colonies of the cross-validation;
- **error that scales with the photo** (``cv_error_scale``, where the card has it): the same errors modelled as a
  function of what the model counted on the photo, ``max(floor, share × the photo's total count)`` per class (fitted
  by :func:`fit_error_scale` from the out-of-fold photos; ``scripts/count_error_model.py``). The photo's *total* is
  the predictor, not the class's own count: where a model misses a class it counts none of it (0 of a colony's 188
  pups), and a dense photo is where it does. A photo of 9 animals gets a narrow range, a colony a wide one;
- **worse than guessing the mean**: a class whose RMSE is not below the RMSE of always predicting the training
  photos' mean count (``baseline_rmse_per_class``); such counts are flagged wherever they are shown;
- **folder interval**: the folder's count ± the sum of its photos' errors (clipped at 0). The RMS of a sum is at
  most the sum of the RMSs (Minkowski), whatever the correlation between photos, and an RMSE already holds both the
  bias and the spread of the errors (RMSE² = bias² + spread²). Photos of one colony share light, density and scale,
  so their errors are not independent: a model that misses pups misses them in every photo, and the √n shrinking
  of independent errors would be a false comfort. The interval is wide on purpose (see docs/survey.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detector.versions.manifest import ModelVersion

INTERVAL_METHOD = (
    "count ± the sum of the photos' typical errors of the class (an upper bound on the RMS error of a sum of "
    "correlated per-photo errors, bias included), clipped at 0"
)
ERROR_SCALE = "cv_error_scale"  # the card's metrics key of the error model that scales with the photo
DENSE_FROM = 100  # animals counted on a photo from which its error is modelled as a share of the count


@dataclass(frozen=True)
class CountUncertainty:
    """A model version's expected count error per class, and the classes it counts worse than guessing the mean."""

    version: str = ""
    typical: Mapping[str, float] = field(default_factory=dict)  # cross-validated RMSE per photo, animals
    baseline: Mapping[str, float] = field(default_factory=dict)  # RMSE of guessing the training mean per photo
    floor: Mapping[str, float] = field(default_factory=dict)  # error model: the least error of a photo, animals
    share: Mapping[str, float] = field(default_factory=dict)  # error model: error per animal counted on the photo

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any], version: str = "") -> CountUncertainty:
        """From a model card's ``metrics``; empty (errors unknown) when the card has no cross-validation."""
        per_class = metrics.get("cv_calibrated_rmse_per_class") or metrics.get("cv_rmse_per_class") or {}
        baseline = metrics.get("baseline_rmse_per_class") or {}
        scale = metrics.get(ERROR_SCALE) or {}
        return cls(
            version=version,
            typical={str(name): float(value) for name, value in per_class.items()},
            baseline={str(name): float(value) for name, value in baseline.items()},
            floor={str(name): float(value) for name, value in (scale.get("floor") or {}).items()},
            share={str(name): float(value) for name, value in (scale.get("share") or {}).items()},
        )

    @classmethod
    def of(cls, version: ModelVersion) -> CountUncertainty:
        """From a model version's record (a loaded detector's ``weights.version``)."""
        return cls.from_metrics(version.metrics or {}, version.name)

    @property
    def known(self) -> bool:
        return bool(self.typical)

    @property
    def scales(self) -> bool:
        """Whether the errors scale with the photo's count (the card has an error model), else one per class."""
        return bool(self.floor) and bool(self.share)

    def worse_than_mean(self, class_names: Sequence[str]) -> list[str]:
        """Classes whose typical error is not below guessing the training mean (unknown baseline: not flagged)."""
        return [
            name
            for name in class_names
            if name in self.typical and name in self.baseline and self.typical[name] >= self.baseline[name]
        ]

    def photo_error(self, name: str, counts: Mapping[str, int]) -> float | None:
        """The typical error of class ``name`` on a photo the model counted ``counts`` on (class → count):
        ``max(floor, share × total)`` with an error model, else the class's one RMSE; None when unknown."""
        if name in self.floor and name in self.share:
            return max(self.floor[name], self.share[name] * sum(counts.values()))
        return self.typical.get(name)

    def rule(self, name: str) -> str:
        """How a class's error is set, in a few characters: ``max(7, 3%)`` (of the photo's total) or ``±35``."""
        if name in self.floor and name in self.share:
            return f"max({self.floor[name]:.0f},{self.share[name]:.0%})"
        return f"±{self.typical[name]:.0f}" if name in self.typical else "?"

    def interval(self, name: str, photo_counts: Sequence[Mapping[str, int]]) -> tuple[int, int] | None:
        """The range of class ``name`` summed over photos (each photo's counts): the sum ± the sum of the photos'
        errors, clipped at 0; None when the class's error is unknown."""
        if self.photo_error(name, {}) is None:
            return None
        count = sum(int(counts.get(name, 0)) for counts in photo_counts)
        spread = sum(self.photo_error(name, counts) or 0.0 for counts in photo_counts)
        return max(0, math.floor(count - spread)), math.ceil(count + spread)

    # Tables: the same columns in `--out`, a run's counts.csv, the app's batch CSV, and summary.csv.

    @staticmethod
    def photo_header(class_names: Sequence[str]) -> list[str]:
        """Per photo: each class's typical error, then the classes counted worse than guessing the mean."""
        return [*(f"{name}_error" for name in class_names), "worse_than_mean"]

    def photo_row(self, class_names: Sequence[str], counts: Mapping[str, int] | None = None) -> list[Any]:
        """A photo's error columns: each class's error on a photo with ``counts`` (None: the one per class)."""
        errors = [self.photo_error(name, counts) if counts is not None else self.typical.get(name)
                  for name in class_names]  # fmt: skip
        return [*("" if e is None else round(e, 1) for e in errors), " ".join(self.worse_than_mean(class_names))]

    @staticmethod
    def folder_header(class_names: Sequence[str]) -> list[str]:
        """Per folder: each class's low and high end, the total's, then the flagged classes."""
        ends = [column for name in class_names for column in (f"{name}_low", f"{name}_high")]
        return [*ends, "total_low", "total_high", "worse_than_mean"]

    def folder_row(self, class_names: Sequence[str], photo_counts: Sequence[Mapping[str, int]]) -> list[Any]:
        """A folder's columns from its photos' counts: each class's range, the total's, the flagged classes."""
        ends: list[Any] = []
        for name in class_names:
            ends += self.interval(name, photo_counts) or ("", "")
        if all(self.photo_error(name, {}) is not None for name in class_names):
            total = sum(int(c.get(name, 0)) for c in photo_counts for name in class_names)
            spread = sum(self.photo_error(name, c) or 0.0 for c in photo_counts for name in class_names)
            ends += [max(0, math.floor(total - spread)), math.ceil(total + spread)]
        else:
            ends += ["", ""]
        return [*ends, " ".join(self.worse_than_mean(class_names))]

    def to_dict(self, class_names: Sequence[str]) -> dict[str, Any]:
        """What a JSON output says about its counts' uncertainty."""
        return {
            "model_version": self.version,
            "typical_error_per_photo": {name: self.typical[name] for name in class_names if name in self.typical},
            "guessing_the_mean_error_per_photo": {
                name: self.baseline[name] for name in class_names if name in self.baseline
            },
            "worse_than_mean": self.worse_than_mean(class_names),
            "meaning": "root-mean-square count error per photo on survey photos the model never saw "
            "(cross-validation); classes in worse_than_mean are counted no better than guessing the training mean",
            "folder_interval": INTERVAL_METHOD,
            **(
                {
                    "error_per_photo": "max(floor, share × the photo's total count), per class: each result's "
                    "<class>_error",
                    "floor": {name: self.floor[name] for name in class_names if name in self.floor},
                    "share": {name: self.share[name] for name in class_names if name in self.share},
                }
                if self.scales
                else {}
            ),
        }


def fit_error_scale(
    photos: Sequence[tuple[Mapping[str, int], Mapping[str, int]]],
    class_names: Sequence[str],
    dense_from: int = DENSE_FROM,
) -> dict[str, Any]:
    """The error model of ``cv_error_scale`` from out-of-fold photos, each (model counts, true counts).

    Per class: ``floor`` = the RMS error on the sparse photos (model total below ``dense_from``), where an error does
    not shrink with the count (a photo of 34 counted animals held no adult female: 33 too many); ``share`` = the
    RMS error per counted animal on the dense ones (error² summed / total² summed), where it grows with the colony.
    A photo's error is ``max(floor, share × total)``: proportional with a floor, not bins, because a dozen photos
    cannot fill bins."""
    sparse = [(m, t) for m, t in photos if sum(m.values()) < dense_from]
    dense = [(m, t) for m, t in photos if sum(m.values()) >= dense_from]
    if not sparse or not dense:
        raise ValueError(f"need photos both below and from {dense_from} counted animals, got {len(photos)}")

    def squared(pairs: Sequence[tuple[Mapping[str, int], Mapping[str, int]]], name: str) -> float:
        return float(sum((m.get(name, 0) - t.get(name, 0)) ** 2 for m, t in pairs))

    dense_totals = sum(sum(m.values()) ** 2 for m, _ in dense)
    return {
        "predictor": "the photo's total count by the model",
        "dense_from": dense_from,
        "photos": len(photos),
        "floor": {name: round(math.sqrt(squared(sparse, name) / len(sparse)), 2) for name in class_names},
        "share": {name: round(math.sqrt(squared(dense, name) / dense_totals), 4) for name in class_names},
    }


def coverage(
    errors: CountUncertainty, photos: Sequence[tuple[Mapping[str, int], Mapping[str, int]]], class_names: Sequence[str]
) -> dict[str, float]:
    """Per class, the share of photos (model counts, true counts) whose true count lies within count ± error."""
    return {
        name: sum(abs(m.get(name, 0) - t.get(name, 0)) <= (errors.photo_error(name, m) or 0.0) for m, t in photos)
        / len(photos)
        for name in class_names
    }
