"""What a weights file says about itself: the ground scale, chip size and class names it was trained at, and, once
published, how its version counts (calibrated thresholds, greyscale input).

``training.train`` writes these facts into every checkpoint it saves (a top-level key of the ultralytics checkpoint
dict, which ultralytics keeps when it strips or half-precisions the file) and into the run's training record;
``training.publish`` adds the version's calibrated thresholds to the weights it publishes. An unlisted weights file
is counted as it records (a published version's file as the version); one that records no ground scale needs the
ground-scale setting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FACTS_KEY = "sealion_facts"  # the checkpoint key and the training record key
TRAINING_RECORD = "training_record.json"


@dataclass(frozen=True)
class WeightsFacts:
    """The input a model was trained on: photos at ``ground_scale`` of native survey resolution, cut into chips of
    ``chip_size`` pixels, labelled with ``class_names`` (in class-index order). A published version's weights also
    carry how it counts: ``class_conf`` (its calibrated thresholds) and ``greyscale_input``."""

    ground_scale: float
    chip_size: int
    class_names: tuple[str, ...]
    dataset: str = ""  # the dataset folder the facts were read from
    class_conf: Mapping[str, float] = field(default_factory=dict)
    greyscale_input: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ground_scale": float(self.ground_scale),
            "chip_size": int(self.chip_size),
            "class_names": list(self.class_names),
            "dataset": self.dataset,
        }
        if self.class_conf:  # a training checkpoint's facts stay as they were
            data["class_conf"] = {str(name): float(value) for name, value in self.class_conf.items()}
        if self.greyscale_input:
            data["greyscale_input"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WeightsFacts:
        return cls(
            ground_scale=float(data["ground_scale"]),
            chip_size=int(data["chip_size"]),
            class_names=tuple(str(n) for n in data["class_names"]),
            dataset=str(data.get("dataset", "")),
            class_conf={str(name): float(value) for name, value in (data.get("class_conf") or {}).items()},
            greyscale_input=bool(data.get("greyscale_input", False)),
        )


def _load_checkpoint(path: Path) -> Any:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)  # ultralytics pickles its model classes


def facts_in_checkpoint(path: Path) -> WeightsFacts | None:
    """The facts stored in an ultralytics checkpoint file, or None (none stored, or not a torch checkpoint)."""
    try:
        data = _load_checkpoint(Path(path))
    except Exception:  # not a torch file (an export, a stray file): it records nothing we can read
        return None
    stored = data.get(FACTS_KEY) if isinstance(data, dict) else None
    try:
        return WeightsFacts.from_dict(stored) if isinstance(stored, Mapping) else None
    except (KeyError, TypeError, ValueError):
        return None


def facts_in_record(path: Path) -> WeightsFacts | None:
    """The facts in the training record of the run a ``<run>/weights/<file>.pt`` belongs to, or None."""
    path = Path(path)
    record = path.parent.parent / TRAINING_RECORD
    if path.parent.name != "weights" or not record.is_file():
        return None
    try:
        stored = json.loads(record.read_text()).get(FACTS_KEY)
        return WeightsFacts.from_dict(stored) if isinstance(stored, Mapping) else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def read_weights_facts(path: Path) -> WeightsFacts | None:
    """What a weights file records about its training input: the checkpoint's own facts, else its run's record."""
    return facts_in_checkpoint(path) or facts_in_record(path)


def stamp_checkpoint(path: Path, facts: WeightsFacts) -> bool:
    """Write ``facts`` into the checkpoint at ``path`` (atomically: a killed process leaves the old file whole).

    Returns False when the file already holds exactly these facts (nothing written)."""
    import torch

    path = Path(path)
    data = _load_checkpoint(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not an ultralytics checkpoint (a dict); cannot record its facts in it")
    if data.get(FACTS_KEY) == facts.to_dict():
        return False
    data[FACTS_KEY] = facts.to_dict()
    partial = path.with_name(path.name + ".partial")
    torch.save(data, partial)
    os.replace(partial, path)
    return True
