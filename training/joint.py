"""Joint training: a dataset's splits with more training chips: another dataset's (same classes), and repeats of
the chips that hold a rare class.

The sea lion photos are few; other pinnipeds boxed from the air are many. Build the other dataset with the sea
lion classes (``python -m training.dataset --boxes ... --classes adult_males,...,pups --map cow=adult_females
...``, at the scale that makes its animals the sea lions' size), then::

    python -m training.joint --base SEALIONS_DS --extra SEALS_DS --ratio 1.0 --out JOINT_DS

writes, for every split of the base (``all``, ``foldK``), a ``data.yaml`` whose training chips are the base's
plus a reproducible sample of the extra's (``ratio`` x the base split's training chips, at most all of them)
and whose validation side is the base's alone, so cross-validation still measures sea lion photos only. The
extra never lands on a validation side. ``photos.json`` and the whole photos are the base's (linked), so
evaluation, calibration and the weights' facts (ground scale, chip size) are the base's.

``--repeat juveniles=3`` (with or without ``--extra``) lists every base training chip that holds a juvenile three
times on each training side instead of once (a chip holding several repeated classes takes the largest factor):
oversampling a rare class without new labels. Validation sides are never repeated.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ultralytics.data.utils import img2label_paths

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


def parse_repeats(items: Sequence[str]) -> dict[str, int]:
    """``["juveniles=3"]`` → ``{"juveniles": 3}``; an error names the item that is not ``CLASS=K`` with K ≥ 1."""
    repeats = {}
    for item in items:
        name, _, factor = item.partition("=")
        if not name or not factor.isdigit() or int(factor) < 1:
            raise TrainingError(f"--repeat {item!r}: expected CLASS=K with a whole K of at least 1, e.g. juveniles=3")
        repeats[name] = int(factor)
    return repeats


def _copies(chip: str, factor_of_class: Mapping[int, int]) -> int:
    """How many times a chip is listed: the largest repeat factor of the classes its label file holds (1: none)."""
    label = Path(img2label_paths([chip])[0])
    lines = label.read_text().splitlines() if label.is_file() else []  # no label file: an empty chip
    held = {int(line.split()[0]) for line in lines if line.strip()}
    return max([1, *(factor_of_class.get(index, 1) for index in held)])


def join_datasets(
    base: Path,
    extra: Path | None,
    out: Path,
    ratio: float = 1.0,
    seed: int = 0,
    command: str | None = None,
    repeat: Mapping[str, int] | None = None,
) -> dict:
    """Write the joint dataset (see the module's docstring); returns what ``joint.json`` records. ``extra``: None
    for repeats alone; ``repeat``: class name → how many times a chip holding it is listed; ``command``: how it was
    made, for ``photos.json`` (None: the base's own command)."""
    base, out = Path(base), Path(out)
    base_record = DatasetRecord.read(base)
    extra_chips: list[str] = []
    if extra is not None:
        extra = Path(extra)
        extra_record = DatasetRecord.read(extra)
        if tuple(base_record.class_names) != tuple(extra_record.class_names):
            raise TrainingError(
                f"{extra} has classes {list(extra_record.class_names)}, {base} has {list(base_record.class_names)}: "
                "build the extra dataset with the base's --classes (and --map for the rest)"
            )
        extra_chips = _chips(extra / "all_train.txt")
    if ratio < 0:
        raise TrainingError(f"--ratio must be at least 0, got {ratio}")
    repeat = dict(repeat or {})
    unknown = sorted(set(repeat) - set(base_record.class_names))
    if unknown:
        raise TrainingError(f"--repeat names {unknown}, not classes of {base}: {list(base_record.class_names)}")
    factor_of_class = {base_record.class_names.index(name): factor for name, factor in repeat.items()}
    copies = functools.cache(lambda chip: _copies(chip, factor_of_class))  # a chip's labels read once, not per split
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "photos").exists():  # evaluation reads the base's whole photos relative to the dataset folder
        (out / "photos").symlink_to((base / "photos").resolve(), target_is_directory=True)
    splits, added = {}, {}
    for split_name, data_yaml in base_record.splits.items():
        split = DataSplit.read(Path(data_yaml))
        base_train = _chips(split.folder(Path(data_yaml)) / split.train)
        take = min(len(extra_chips), round(ratio * len(base_train)))
        sample = sorted(random.Random(f"{seed}-{split_name}").sample(extra_chips, take))
        repeated = [chip for chip in base_train for _ in range(copies(chip) - 1)] if factor_of_class else []
        listed = [*base_train, *repeated, *sample]
        (out / f"{split_name}_train.txt").write_text("".join(p + "\n" for p in listed))
        val = split.folder(Path(data_yaml)) / split.val if isinstance(split.val, str) else None
        if val is not None:
            (out / f"{split_name}_val.txt").write_text("".join(p + "\n" for p in _chips(val)))
        joint = split.model_copy(update={"path": str(out.resolve()), "train": f"{split_name}_train.txt"})
        if val is not None:
            joint = joint.model_copy(update={"val": f"{split_name}_val.txt"})
        (out / "splits" / split_name).mkdir(parents=True, exist_ok=True)
        splits[split_name] = str(joint.write(out / "splits" / split_name / "data.yaml"))
        added[split_name] = {"base_chips": len(base_train), "repeated_chips": len(repeated), "extra_chips": take}
    record = replace(
        base_record,
        splits=splits,
        command=base_record.command if command is None else command,
    )
    record.write(out)
    joined = {
        "base": str(base.resolve()),
        "extra": str(extra.resolve()) if extra is not None else None,
        "ratio": ratio,
        "seed": seed,
        "repeat": repeat,
        "splits": added,
    }
    (out / JOINT_RECORD).write_text(json.dumps(joined, indent=2))
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.joint", description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the dataset whose splits and photos are kept")
    parser.add_argument("--extra", type=Path, help=f"a dataset with the same classes ({DATASET_RECORD})")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ratio", type=float, default=1.0, help="extra chips per base training chip (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeat", action="append", default=[], metavar="CLASS=K",
        help="list each base training chip holding CLASS K times (repeatable), e.g. juveniles=3",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.extra is None and not args.repeat:
        parser.error("give --extra DATASET, --repeat CLASS=K, or both")
    try:
        repeat = parse_repeats(args.repeat)
        joined = join_datasets(
            args.base, args.extra, args.out, args.ratio, args.seed, " ".join(sys.argv), repeat=repeat
        )
    except TrainingError as exc:
        raise SystemExit(f"joint: {exc}") from None
    for name, sizes in joined["splits"].items():
        print(
            f"{name}: {sizes['base_chips']} base + {sizes['repeated_chips']} repeated"
            f" + {sizes['extra_chips']} extra training chips"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
