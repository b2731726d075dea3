"""How far a count can be trusted: a model version's cross-validated count error per class, read from its card.

Every number here comes from the version's ``metrics`` (``weights/manifest.yaml`` or the hub model card, written by
``python -m training.publish``), so a new default version brings its own errors with no code change:

- **typical error per photo** of a class: its cross-validated count RMSE on photos the model never saw
  (``cv_calibrated_rmse_per_class``, else ``cv_rmse_per_class``);
- **worse than guessing the mean**: a class whose RMSE is not below the RMSE of always predicting the training
  photos' mean count (``baseline_rmse_per_class``); such counts are flagged wherever they are shown;
- **folder interval**: a folder of *n* photos gets ``count ± n × RMSE`` (clipped at 0). The RMS of a sum is at most
  the sum of the RMSs (Minkowski), whatever the correlation between photos, and an RMSE already holds both the
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
    "count ± photos × the class's cross-validated RMSE per photo (an upper bound on the RMS error of a sum of "
    "correlated per-photo errors, bias included), clipped at 0"
)


@dataclass(frozen=True)
class CountUncertainty:
    """A model version's expected count error per class, and the classes it counts worse than guessing the mean."""

    version: str = ""
    typical: Mapping[str, float] = field(default_factory=dict)  # cross-validated RMSE per photo, animals
    baseline: Mapping[str, float] = field(default_factory=dict)  # RMSE of guessing the training mean per photo

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any], version: str = "") -> CountUncertainty:
        """From a model card's ``metrics``; empty (errors unknown) when the card has no cross-validation."""
        per_class = metrics.get("cv_calibrated_rmse_per_class") or metrics.get("cv_rmse_per_class") or {}
        baseline = metrics.get("baseline_rmse_per_class") or {}
        return cls(
            version=version,
            typical={str(name): float(value) for name, value in per_class.items()},
            baseline={str(name): float(value) for name, value in baseline.items()},
        )

    @classmethod
    def of(cls, version: ModelVersion) -> CountUncertainty:
        """From a model version's record (a loaded detector's ``weights.version``)."""
        return cls.from_metrics(version.metrics or {}, version.name)

    @property
    def known(self) -> bool:
        return bool(self.typical)

    def worse_than_mean(self, class_names: Sequence[str]) -> list[str]:
        """Classes whose typical error is not below guessing the training mean (unknown baseline: not flagged)."""
        return [
            name
            for name in class_names
            if name in self.typical and name in self.baseline and self.typical[name] >= self.baseline[name]
        ]

    def interval(self, name: str, count: int, photos: int) -> tuple[int, int] | None:
        """The range ``count ± photos × RMSE`` of a class summed over ``photos`` photos, clipped at 0; None when the
        class's error is unknown."""
        if name not in self.typical:
            return None
        spread = photos * self.typical[name]
        return max(0, math.floor(count - spread)), math.ceil(count + spread)

    # Tables: the same columns in `--out`, a run's counts.csv, the app's batch CSV, and summary.csv.

    @staticmethod
    def photo_header(class_names: Sequence[str]) -> list[str]:
        """Per photo: each class's typical error, then the classes counted worse than guessing the mean."""
        return [*(f"{name}_error" for name in class_names), "worse_than_mean"]

    def photo_row(self, class_names: Sequence[str]) -> list[Any]:
        errors = [round(self.typical[name], 1) if name in self.typical else "" for name in class_names]
        return [*errors, " ".join(self.worse_than_mean(class_names))]

    @staticmethod
    def folder_header(class_names: Sequence[str]) -> list[str]:
        """Per folder: each class's low and high end, the total's, then the flagged classes."""
        ends = [column for name in class_names for column in (f"{name}_low", f"{name}_high")]
        return [*ends, "total_low", "total_high", "worse_than_mean"]

    def folder_row(self, counts: Mapping[str, int], photos: int) -> list[Any]:
        class_names = list(counts)
        ends: list[Any] = []
        for name in class_names:
            ends += self.interval(name, counts[name], photos) or ("", "")
        total = sum(counts.values())
        if all(name in self.typical for name in class_names):
            spread = photos * sum(self.typical[name] for name in class_names)
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
        }
