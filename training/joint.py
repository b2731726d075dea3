"""Joint training: a dataset's splits with the chips of another dataset (same classes) added to every training side.

The sea lion photos are few; other pinnipeds boxed from the air are many. Build the other dataset with the sea
lion classes (``python -m training.dataset --boxes ... --classes adult_males,...,pups --map cow=adult_females
...``, at the scale that makes its animals the sea lions' size), then::

    python -m training.joint --base SEALIONS_DS --extra SEALS_DS --ratio 1.0 --out JOINT_DS

writes, for every split of the base (``all``, ``foldK``), a ``data.yaml`` whose training chips are the base's
plus a reproducible sample of the extra's (``ratio`` x the base split's training chips, at most all of them)
and whose validation side is the base's alone, so cross-validation still measures sea lion photos only. The
extra never lands on a validation side. ``photos.json`` and the whole photos are the base's (linked), so
evaluation, calibration and the weights' facts (ground scale, chip size) are the base's.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from training.io import DATASET_RECORD, DatasetRecord, TrainingError
from training.records import DataSplit

JOINT_RECORD = "joint.json"


def _chips(listing: Path) -> list[str]:
    """A listing's chips as absolute paths (ultralytics resolves ``./`` against the listing's folder)."""
    folder = listing.parent
    return [
        str((folder / line[2:]).resolve()) if line.startswith("./") else line
        for line in listing.read_text().split()
        if line
    ]


def join_datasets(
    base: Path, extra: Path, out: Path, ratio: float = 1.0, seed: int = 0, command: str | None = None
) -> dict:
    """Write the joint dataset (see the module's docstring); returns what ``joint.json`` records. ``command``: how it
    was made, for ``photos.json`` (None: the base's own command)."""
    base, extra, out = Path(base), Path(extra), Path(out)
    base_record, extra_record = DatasetRecord.read(base), DatasetRecord.read(extra)
    if tuple(base_record.class_names) != tuple(extra_record.class_names):
        raise TrainingError(
            f"{extra} has classes {list(extra_record.class_names)}, {base} has {list(base_record.class_names)}: "
            "build the extra dataset with the base's --classes (and --map for the rest)"
        )
    if ratio < 0:
        raise TrainingError(f"--ratio must be at least 0, got {ratio}")
    extra_chips = _chips(extra / "all_train.txt")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "photos").exists():  # evaluation reads the base's whole photos relative to the dataset folder
        (out / "photos").symlink_to((base / "photos").resolve(), target_is_directory=True)
    splits, added = {}, {}
    for split_name, data_yaml in base_record.splits.items():
        split = DataSplit.read(Path(data_yaml))
        base_train = _chips(split.folder(Path(data_yaml)) / split.train)
        take = min(len(extra_chips), round(ratio * len(base_train)))
        sample = sorted(random.Random(f"{seed}-{split_name}").sample(extra_chips, take))
        (out / f"{split_name}_train.txt").write_text("".join(p + "\n" for p in [*base_train, *sample]))
        val = split.folder(Path(data_yaml)) / split.val if isinstance(split.val, str) else None
        if val is not None:
            (out / f"{split_name}_val.txt").write_text("".join(p + "\n" for p in _chips(val)))
        joint = split.model_copy(update={"path": str(out.resolve()), "train": f"{split_name}_train.txt"})
        if val is not None:
            joint = joint.model_copy(update={"val": f"{split_name}_val.txt"})
        (out / "splits" / split_name).mkdir(parents=True, exist_ok=True)
        splits[split_name] = str(joint.write(out / "splits" / split_name / "data.yaml"))
        added[split_name] = {"base_chips": len(base_train), "extra_chips": take}
    record = replace(
        base_record,
        splits=splits,
        command=base_record.command if command is None else command,
    )
    record.write(out)
    joined = {"base": str(base.resolve()), "extra": str(extra.resolve()), "ratio": ratio, "seed": seed, "splits": added}
    (out / JOINT_RECORD).write_text(json.dumps(joined, indent=2))
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.joint", description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the dataset whose splits and photos are kept")
    parser.add_argument("--extra", type=Path, required=True, help=f"a dataset with the same classes ({DATASET_RECORD})")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ratio", type=float, default=1.0, help="extra chips per base training chip (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        joined = join_datasets(args.base, args.extra, args.out, args.ratio, args.seed, " ".join(sys.argv))
    except TrainingError as exc:
        raise SystemExit(f"joint: {exc}") from None
    for name, sizes in joined["splits"].items():
        print(f"{name}: {sizes['base_chips']} base + {sizes['extra_chips']} extra training chips")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
