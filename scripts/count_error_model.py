"""The default version's count error as a function of the photo (``cv_error_scale``), fitted from the per-photo
out-of-fold counts the repository keeps, and its coverage on those photos.

    python scripts/count_error_model.py            # the fit and the coverage table (Markdown)
    python scripts/count_error_model.py --write    # also record the fit in weights/manifest.yaml

The out-of-fold counts: ``benchmarks/results/gate_recall_cv_fold{0,1}.json``, the default version's two
cross-validation fold models counting the photos they never saw (``counts_ungated``, at the version's threshold),
with the official counts. A photo counted both as ``fullres-raw`` and ``fullres-dotted`` is taken once, raw. They
hold 12 of v4's 17 cross-validation photos (not 0, 1, 4, 6, 7: photo 0 is the densest colony); the per-class RMSE on
the card is over all of them (its ``cv_photos``). ``tests/test_uncertainty.py`` checks that the manifest holds this fit.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.counting.uncertainty import ERROR_SCALE, CountUncertainty, coverage, fit_error_scale  # noqa: E402

OUT_OF_FOLD = sorted((ROOT / "benchmarks" / "results").glob("gate_recall_cv_fold*.json"))
Photo = tuple[Mapping[str, int], Mapping[str, int]]


def out_of_fold_photos(paths: Sequence[Path] = OUT_OF_FOLD) -> dict[str, Photo]:
    """Photo id → (the fold model's counts, the official counts); raw copies preferred to dotted ones."""
    photos: dict[str, Photo] = {}
    for path in paths:
        for photo in json.loads(path.read_text())["photos"]:
            if not photo.get("official"):
                continue
            kind, name = photo["photo"].split("/")[-2:]
            if name not in photos or kind == "fullres-raw":
                photos[name] = (photo["counts_ungated"], photo["official"])
    return dict(sorted(photos.items(), key=lambda item: int(Path(item[0]).stem)))


def leave_one_out(photos: dict[str, Photo], class_names: Sequence[str]) -> dict[str, float]:
    """Coverage when each photo's range comes from a fit without that photo."""
    hits = dict.fromkeys(class_names, 0)
    for name in photos:
        rest = [photo for other, photo in photos.items() if other != name]
        errors = CountUncertainty.from_metrics({ERROR_SCALE: fit_error_scale(rest, class_names)})
        for cls, share in coverage(errors, [photos[name]], class_names).items():
            hits[cls] += share
    return {cls: hits[cls] / len(photos) for cls in class_names}


def report(version_name: str | None = None) -> tuple[dict, str]:
    """The fit for the manifest's default version (or ``version_name``) and a Markdown coverage table."""
    from detector.versions.manifest import load_manifest

    version = load_manifest().get(version_name)
    names = list(version.class_names)
    photos = out_of_fold_photos()
    fit = fit_error_scale(list(photos.values()), names)
    fit["source"] = "benchmarks/results/gate_recall_cv_fold*.json: " + ", ".join(photos)
    old = CountUncertainty.from_metrics({k: v for k, v in version.metrics.items() if k != ERROR_SCALE})
    new = CountUncertainty.from_metrics({**version.metrics, ERROR_SCALE: fit})
    pairs = list(photos.values())
    old_cov, new_cov, loo = coverage(old, pairs, names), coverage(new, pairs, names), leave_one_out(photos, names)
    mean_width = {
        label: {n: sum(e.photo_error(n, m) or 0.0 for m, _ in pairs) / len(pairs) for n in names}
        for label, e in (("old", old), ("new", new))
    }
    lines = [
        f"| class | one RMSE per class (card, {version.metrics.get('cv_photos', '?')} photos) | coverage | floor "
        "| share of total | coverage | coverage, leave one out | mean ± old → new |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n in names:
        lines.append(
            f"| {n} | ± {old.typical[n]:.1f} | {old_cov[n]:.0%} | {fit['floor'][n]:.1f} | {fit['share'][n]:.1%} "
            f"| {new_cov[n]:.0%} | {loo[n]:.0%} | {mean_width['old'][n]:.0f} → {mean_width['new'][n]:.0f} |"
        )
    lines.append(
        f"\n{len(pairs)} out-of-fold photos ({', '.join(photos)}); model totals "
        f"{min(sum(m.values()) for m, _ in pairs)}–{max(sum(m.values()) for m, _ in pairs)}, "
        f"{sum(sum(m.values()) >= fit['dense_from'] for m, _ in pairs)} of them from {fit['dense_from']} up."
    )
    return fit, "\n".join(lines)


def write(fit: dict, version_name: str | None = None) -> None:
    from detector.versions.manifest import DEFAULT_MANIFEST, add_version, load_manifest

    version = load_manifest(DEFAULT_MANIFEST).get(version_name)
    add_version(DEFAULT_MANIFEST, replace(version, metrics={**version.metrics, ERROR_SCALE: fit}))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=None, help="manifest version (default: the default)")
    parser.add_argument("--write", action="store_true", help="record the fit in weights/manifest.yaml")
    args = parser.parse_args(argv)
    fit, table = report(args.version)
    print(table)
    print(json.dumps({k: fit[k] for k in ("floor", "share", "dense_from", "photos")}))
    if args.write:
        write(fit, args.version)
        print(f"wrote {ERROR_SCALE} into weights/manifest.yaml", file=sys.stderr)
    return 0 if all(math.isfinite(v) for v in fit["share"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
