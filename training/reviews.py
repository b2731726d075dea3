"""Reviewed photos → a dots table the next model version trains on (``python -m training.reviews``).

Inputs, any mix: the app's reviews directory (``--reviews-dir``; the last save of each photo), COCO detection JSON
and VIAME CSV (DIVE) files from other annotation tools. Output: one row per animal (photo, x, y, class,
photo_scale) in survey-original pixels, the shape of the NOAA ``dot-coordinates.csv``::

    python -m training.reviews /data/reviews lab_coco.json --photo-scale 1 --out reviewed/dots.csv
    # the reviewed photos in reviewed/Train/ (at the scale given by --photo-scale there), then:
    python -m training.dataset --data reviewed --dots reviewed/dots.csv --photo-scale 1 --out datasets/reviewed

A box's dot is its centre. Saved reviews know their photo's scale; for COCO and VIAME files ``--photo-scale`` says
it (1.0: survey originals, 0.25: copies downsampled 4x).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from detector.files import write_atomic
from detector.review.formats import dots_csv
from detector.review.record import PhotoAnnotations, Review
from detector.review.store import load_reviews, read_annotations


def collect(sources: Sequence[Path], photo_scale: float = 1.0) -> list[Review | tuple[PhotoAnnotations, float]]:
    """Reviews from reviews directories, (annotations, ``photo_scale``) from COCO JSON / VIAME CSV files."""
    items: list[Review | tuple[PhotoAnnotations, float]] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            reviews = load_reviews(source)
            if not reviews:
                raise ValueError(f"{source}: no saved reviews (*.review.json) in its photo folders")
            items.extend(reviews)
        elif source.is_file():
            items.extend((annotations, photo_scale) for annotations in read_annotations(source))
        else:
            raise ValueError(f"{source}: no such file or directory")
    return items


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.reviews", description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path, help="reviews directories, COCO .json, VIAME .csv")
    parser.add_argument("--out", type=Path, required=True, help="dots table CSV to write")
    parser.add_argument(
        "--photo-scale", type=float, default=1.0, help="scale of the photos of COCO/VIAME files (default 1.0)"
    )
    args = parser.parse_args(argv)
    try:
        items = collect(args.sources, args.photo_scale)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_atomic(args.out, dots_csv(items))
    animals = sum(len(item.annotations if isinstance(item, Review) else item[0]) for item in items)
    print(f"{args.out}: {animals} animals in {len(items)} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
