"""Seconds per survey photo and per-class counts with each runtime of a model version: torch vs its exports.

    python -m benchmarks.runtimes [--runtime openvino --runtime openvino-int8] [--repeats 3] [PHOTO ...]

Every full-resolution photo of ``../shared`` (fullres-raw and fullres-dotted) is counted from the file, as users
do (decode, rescale to the version's ground scale, tiles, network, merge), by one ``Detector`` per runtime of the
version (default: torch and every export the manifest lists). Runs are interleaved round by round, so the ratio of
a photo comes from the same stretch of machine load. Counts are compared per class with torch's: an exported
runtime passes when every photo is within 1 % or one animal (``detector.versions.runtimes.counts_agree``), the issue's
bar for the default.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    SHARED_DATA,
    Environment,
    describe_load,
    finish,
    format_table,
    log,
    summarize,
    timed,
)
from detector.versions.runtimes import COUNT_TOLERANCE, counts_agree

NAME = "runtimes"


def default_photos() -> list[Path]:
    """Every full-resolution photo of the shared sample: raw copies, then dotted ones."""
    return sorted((SHARED_DATA / "fullres-raw").glob("*.jpg")) + sorted((SHARED_DATA / "fullres-dotted").glob("*.jpg"))


def label(photo: Path) -> str:
    return f"{photo.parent.name}/{photo.name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", type=Path, help="default: every full-resolution photo under ../shared")
    parser.add_argument("--version", help="model version from weights/manifest.yaml (default: its default)")
    parser.add_argument(
        "--runtime", action="append", default=None, help="an export to compare with torch (repeat; default: all)"
    )
    parser.add_argument(
        "--runtime-path", action="append", default=[], metavar="NAME=PATH",
        help="load export NAME from this folder or file instead of resolving it (e.g. one not shipped, from a "
        "checkout of the hub revision); it must be the version's export, as the manifest lists it",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="timed counts per photo and runtime (default 3)")
    parser.add_argument("--out", help="JSON results file (default: benchmarks/results/runtimes.json)")
    args = parser.parse_args(argv)
    from detector import Detector
    from detector.errors import DetectorError
    from detector.settings import ModelSettings
    from detector.versions.hub import ResolvedRuntime

    photos = args.photos or default_photos()
    if not photos:
        parser.error(f"no photos given and none under {SHARED_DATA}")
    environment = Environment()
    detectors = {"torch": Detector.load(ModelSettings(version=args.version, device="cpu", runtime="torch"))}
    version = detectors["torch"].weights.version
    paths = dict(item.split("=", 1) for item in args.runtime_path)
    for name in args.runtime or list(version.runtimes):
        try:
            if name in paths:
                given = ResolvedRuntime(Path(paths[name]), "local", version.runtimes[name])
                detectors[name] = Detector(detectors["torch"].weights, device="cpu", runtime=given)
            else:
                detectors[name] = Detector.load(ModelSettings(version=args.version, device="cpu", runtime=name))
        except (DetectorError, KeyError) as exc:
            log(f"skipping runtime {name}: {exc}")
    loaded = ", ".join(f"{k} ({d.info.runtime_path or d.info.path})" for k, d in detectors.items())
    log(f"model {version.name}: {loaded}")

    per_photo: list[dict[str, Any]] = []
    for photo in photos:
        seconds: dict[str, list[float]] = {name: [] for name in detectors}
        counts: dict[str, dict[str, int]] = {}
        tiles = 0
        for name, detector in detectors.items():  # warm-up: page cache, allocator, OpenVINO's first shapes
            result = detector.count(photo)
            counts[name], tiles = result.counts, result.tiles
        for _ in range(args.repeats):
            for name, detector in detectors.items():
                elapsed, _ = timed(lambda d=detector, p=photo: d.count(p))
                seconds[name].append(elapsed)
        stats = {name: summarize(values) for name, values in seconds.items()}
        entry = {
            "photo": label(photo),
            "tiles": tiles,
            "seconds": stats,
            "speedup_over_torch": {
                name: round(stats["torch"]["median"] / stats[name]["median"], 2)
                for name in detectors
                if name != "torch"
            },
            "counts": counts,
            "within_tolerance": {name: counts_agree(counts["torch"], counts[name]) for name in detectors},
        }
        per_photo.append(entry)
        log(f"{label(photo)}: " + ", ".join(f"{n} {s['median']:.3f} s" for n, s in stats.items()))

    summary = {}
    for name in detectors:
        medians = [p["seconds"][name]["median"] for p in per_photo]
        differences = [
            abs(p["counts"][name][c] - p["counts"]["torch"][c]) for p in per_photo for c in p["counts"]["torch"]
        ]
        summary[name] = {
            "mean_of_median_seconds_per_photo": round(float(np.mean(medians)), 4),
            "speedup_over_torch": round(
                float(np.mean([p["seconds"]["torch"]["median"] for p in per_photo]) / np.mean(medians)), 2
            ),
            "photos_within_tolerance": sum(p["within_tolerance"][name] for p in per_photo),
            "max_count_difference": int(max(differences, default=0)),
            "total_animals": int(sum(sum(p["counts"][name].values()) for p in per_photo)),
        }
    result = {
        "model": {"version": version.name, "sha256": version.sha256, "cpu_runtime": version.cpu_runtime},
        "runtimes": {
            name: {"path": d.info.runtime_path or d.info.path, "precision": _precision(version, name)}
            for name, d in detectors.items()
        },
        "settings": {
            "repeats": args.repeats,
            "count_options": "defaults (calibrated per-class thresholds, photo scale auto)",
            "tolerance": f"{COUNT_TOLERANCE:.0%} or 1 animal per class and photo",
        },
        "summary": summary,
        "photos": per_photo,
    }
    finish(NAME, result, args.out, environment, report)
    return 0


def _precision(version: Any, name: str) -> str:
    return "fp32" if name == "torch" else version.runtimes[name].precision


def report(result: dict[str, Any]) -> None:
    names = list(result["summary"])
    headers = ["photo", "tiles", *[f"{n} s" for n in names], *[f"{n} counts vs torch" for n in names[1:]]]
    rows = []
    for photo in result["photos"]:
        torch_counts = photo["counts"]["torch"]
        diffs = []
        for name in names[1:]:
            changed = {
                c: photo["counts"][name][c] - v for c, v in torch_counts.items() if photo["counts"][name][c] != v
            }
            text = ", ".join(f"{c} {d:+d}/{torch_counts[c]}" for c, d in changed.items()) or "same"
            diffs.append(text + ("" if photo["within_tolerance"][name] else " (OUTSIDE)"))
        rows.append([photo["photo"], photo["tiles"], *[photo["seconds"][n]["median"] for n in names], *diffs])
    print(format_table(headers, rows))
    print()
    summary_rows = [
        [n, s["mean_of_median_seconds_per_photo"], s["speedup_over_torch"],
         f"{s['photos_within_tolerance']}/{len(result['photos'])}", s["max_count_difference"], s["total_animals"]]
        for n, s in result["summary"].items()
    ]  # fmt: skip
    print(format_table(["runtime", "s/photo", "x torch", "photos within 1 %/±1", "max diff", "animals"], summary_rows))
    print(describe_load(result["environment"]))


if __name__ == "__main__":
    raise SystemExit(main())
