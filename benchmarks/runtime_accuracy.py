"""Each runtime of a model version against the official counts: is a faster runtime counting worse against the truth?

    python -m benchmarks.runtime_accuracy [--ids 42 43 5] [--runtime NAME ...] [--runtime-path NAME=PATH]
        [--repeats 1] [--update-manifest] [--docs]

One photo per id of ``counts.csv`` (the competition's official per-class counts): the full-resolution raw copy where
the sample has one, else the full-resolution dotted copy, else the downsampled raw photo (counted at photo scale
auto, as users would). Each is counted from the file with the product's defaults by torch and by every runtime the
version has (its exports; an OpenVINO export's effective inference precision is read back from the compiled model:
``openvino`` runs at the CPU's default, bf16 on CPUs with AVX-512 BF16 or AMX; where no runtime ran in bf16, an
``openvino-bf16`` variant asks for it with OpenVINO's ``INFERENCE_PRECISION_HINT``).

Per runtime: per-class count RMSE against the official counts and their mean (the competition metric), the mean
absolute error of photo totals, both next to torch's, and the largest per-photo total shift against torch. The rule
for a CPU default: RMSE against the official counts within 1 % of torch's, and no photo's total moving by more than
2 % of torch's (one animal at least). Of the runtimes that pass, the fastest is recommended. Writes
``benchmarks/results/runtime_accuracy.json`` and a Markdown table beside it; ``--update-manifest`` records each
runtime's numbers in ``weights/manifest.yaml`` (``count_check.accuracy``, which the model card renders) and makes the
recommended runtime the version's ``cpu_runtime``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    COUNTS_CSV,
    SHARED_DATA,
    Environment,
    describe_load,
    finish,
    format_table,
    log,
    official_counts,
    summarize,
    timed,
    write_markdown,
)

NAME = "runtime_accuracy"
RMSE_TOLERANCE = 0.01  # a runtime's mean per-class RMSE vs official: at most 1 % above torch's
TOTAL_SHIFT_TOLERANCE = 0.02  # and no photo's total more than 2 % (one animal at least) from torch's


def photo_for(photo_id: str, data: Path = SHARED_DATA) -> Path | None:
    """The file counted for an official id: full-resolution raw, else full-resolution dotted, else downsampled raw."""
    for folder in ("fullres-raw", "fullres-dotted", "downsampled/Train"):
        path = data / folder / f"{photo_id}.jpg"
        if path.is_file():
            return path
    return None


def rmse_per_class(counts: list[dict[str, int]], official: list[dict[str, int]]) -> dict[str, float]:
    """Per-class RMSE of ``counts`` against ``official`` (the same photos, in order)."""
    names = list(official[0])
    errors = np.array([[c[n] - o[n] for n in names] for c, o in zip(counts, official, strict=True)], dtype=float)
    return {n: round(float(v), 3) for n, v in zip(names, np.sqrt((errors**2).mean(axis=0)), strict=True)}


def total_shift(reference: dict[str, int], other: dict[str, int]) -> tuple[int, int]:
    """How far ``other``'s total is from ``reference``'s (animals), and the reference total."""
    return abs(sum(other.values()) - sum(reference.values())), sum(reference.values())


def passes(summary: dict[str, Any], torch: dict[str, Any]) -> bool:
    """The rule for a faster runtime to be the CPU default (see the module docstring)."""
    rmse_ok = summary["mean_rmse"] <= torch["mean_rmse"] * (1 + RMSE_TOLERANCE) + 1e-9
    shifts_ok = all(
        animals <= max(1.0, TOTAL_SHIFT_TOLERANCE * reference) for animals, reference in summary["total_shifts"]
    )
    return rmse_ok and shifts_ok


def effective_precision(detector: Any) -> str:
    """What the network really runs in, as its runtime describes it: torch's fp32 (fp16 on CUDA), an OpenVINO
    model's compiled inference precision."""
    return detector.network.precision


def summarize_runtimes(per_photo: list[dict[str, Any]], precision: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each runtime's errors against the official counts and its shifts against torch, and whether it passes."""
    truth = [p["official"] for p in per_photo]
    summary: dict[str, dict[str, Any]] = {}
    for name in precision:
        counts = [p["counts"][name] for p in per_photo]
        per_class = rmse_per_class(counts, truth)
        shifts = [total_shift(p["counts"]["torch"], p["counts"][name]) for p in per_photo]
        times = [p["seconds"][name] for p in per_photo if name in p.get("seconds", {})]
        totals = [abs(sum(c.values()) - sum(o.values())) for c, o in zip(counts, truth, strict=True)]
        summary[name] = {
            "precision": precision[name],
            "rmse_per_class": per_class,
            "mean_rmse": round(float(np.mean(list(per_class.values()))), 3),
            "total_mae": round(float(np.mean(totals)), 3),
            "max_total_shift_vs_torch": max((a for a, _ in shifts), default=0),
            "max_total_shift_vs_torch_relative": round(max((a / max(1, r) for a, r in shifts), default=0.0), 4),
            "total_shifts": shifts,
            "seconds_per_photo": round(float(np.mean(times)), 4) if times else None,
        }
    for one in summary.values():
        one["rmse_vs_torch"] = round(one["mean_rmse"] / max(summary["torch"]["mean_rmse"], 1e-9), 4)
        one["passes"] = passes(one, summary["torch"])
    return summary


def load_runtimes(args: argparse.Namespace) -> dict[str, Any]:
    """torch and the runtimes asked for (default: every runtime of the version, plus openvino-bf16 if none of them
    runs in bf16 on this CPU)."""
    from detector import Detector
    from detector.errors import DetectorError
    from detector.settings import ModelSettings
    from detector.versions.hub import ResolvedRuntime, resolve_runtime

    settings = ModelSettings(version=args.version, device="cpu", runtime="torch")
    detectors = {"torch": Detector.load(settings)}
    weights = detectors["torch"].weights
    version = weights.version
    paths = dict(item.split("=", 1) for item in args.runtime_path)

    def load(name: str) -> None:
        try:
            if name == "openvino-bf16":
                exported = replace(version.runtimes["openvino"], name=name, inference_precision="bf16")
                path = Path(paths[name]) if name in paths else resolve_runtime("openvino", weights, settings).path
                detectors[name] = Detector(weights, device="cpu", runtime=ResolvedRuntime(path, "local", exported))
            elif name in paths:
                given = ResolvedRuntime(Path(paths[name]), "local", version.runtimes[name])
                detectors[name] = Detector(weights, device="cpu", runtime=given)
            else:
                detectors[name] = Detector.load(replace(settings, runtime=name))
        except (DetectorError, KeyError) as exc:
            log(f"skipping runtime {name}: {exc}")

    for name in args.runtime or list(version.runtimes):
        load(name)
    if (
        not args.runtime
        and "openvino" in version.runtimes
        and "bf16" not in map(effective_precision, detectors.values())
    ):
        load("openvino-bf16")
    return detectors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", nargs="+", help="official photo ids to count (default: every id of counts.csv)")
    parser.add_argument("--version", help="model version from weights/manifest.yaml (default: its default)")
    parser.add_argument(
        "--runtime", action="append", default=None,
        help="a runtime to compare with torch (repeat; default: every runtime of the version); openvino-bf16 runs "
        "the openvino export with INFERENCE_PRECISION_HINT bf16",
    )  # fmt: skip
    parser.add_argument(
        "--runtime-path", action="append", default=[], metavar="NAME=PATH",
        help="load runtime NAME from this folder (e.g. openvino-int8 from a checkout of the hub revision)",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=1, help="timed counts per photo and runtime (default 1)")
    parser.add_argument("--update-manifest", action="store_true", help="record the numbers and the choice there")
    parser.add_argument("--out", help=f"JSON results file (default: benchmarks/results/{NAME}.json)")
    parser.add_argument("--docs", action="store_true", help="also put the table into docs/benchmarks.md")
    args = parser.parse_args(argv)
    official = official_counts()
    if not official:
        parser.error(f"no official counts at {COUNTS_CSV}")
    ids = args.ids or sorted(official, key=int)
    photos = {i: photo_for(i) for i in ids}
    missing = [i for i, p in photos.items() if p is None or i not in official]
    if missing:
        parser.error(f"no photo or no official counts for ids {missing} under {SHARED_DATA}")
    environment = Environment()
    detectors = load_runtimes(args)
    precision = {name: effective_precision(d) for name, d in detectors.items()}
    log("runtimes: " + ", ".join(f"{n} ({p})" for n, p in precision.items()))

    per_photo = []
    for photo_id, photo in photos.items():
        entry: dict[str, Any] = {"id": photo_id, "photo": f"{photo.parent.name}/{photo.name}", "counts": {}}
        seconds: dict[str, list[float]] = {name: [] for name in detectors}
        for name, detector in detectors.items():  # warm-up and the counts (deterministic per runtime)
            entry["counts"][name] = detector.count(photo).counts
        for _ in range(args.repeats):
            for name, detector in detectors.items():
                seconds[name].append(timed(lambda d=detector, p=photo: d.count(p))[0])
        entry["seconds"] = {name: summarize(values)["median"] for name, values in seconds.items() if values}
        entry["official"] = official[photo_id]
        per_photo.append(entry)
        log(f"{entry['photo']}: " + ", ".join(f"{n} {sum(c.values())}" for n, c in entry["counts"].items()))

    summary = summarize_runtimes(per_photo, precision)
    faster = [n for n, s in summary.items() if s["passes"] and s["seconds_per_photo"] is not None]
    recommended = min(faster, key=lambda n: summary[n]["seconds_per_photo"]) if faster else "torch"
    version = detectors["torch"].weights.version
    result = {
        "model": {"version": version.name, "sha256": version.sha256, "cpu_runtime": version.cpu_runtime},
        "rule": f"mean per-class RMSE vs official within {RMSE_TOLERANCE:.0%} of torch's, and no photo's total more "
        f"than {TOTAL_SHIFT_TOLERANCE:.0%} (one animal at least) from torch's; the fastest that passes is the default",
        "settings": {"repeats": args.repeats, "count_options": "product defaults (gate, thresholds, scale auto)"},
        "summary": summary,
        "recommended_cpu_runtime": recommended,
        "photos": per_photo,
    }
    finish(NAME, result, args.out, environment, report)
    write_markdown(NAME, markdown_table(result), args.out, args.docs)
    if args.update_manifest:
        update_manifest(result)
    return 0


def accuracy_record(result: dict[str, Any], name: str) -> dict[str, Any]:
    """What the manifest and the model card keep of one runtime's row."""
    one, torch = result["summary"][name], result["summary"]["torch"]
    return {
        "photos": len(result["photos"]),
        "effective_precision": one["precision"],
        "mean_rmse_vs_official": one["mean_rmse"],
        "torch_mean_rmse_vs_official": torch["mean_rmse"],
        "total_mae_vs_official": one["total_mae"],
        "max_total_shift_vs_torch": one["max_total_shift_vs_torch_relative"],
        "seconds_per_photo": one["seconds_per_photo"],
        "passes": one["passes"],
        "rule": result["rule"],  # the card and the Model tab quote it from here
    }


def update_manifest(result: dict[str, Any], path: Path | None = None) -> None:
    """Record each exported runtime's accuracy (``count_check.accuracy``) and the recommended ``cpu_runtime``."""
    from detector.versions.manifest import DEFAULT_MANIFEST, add_version, load_manifest

    path = path or DEFAULT_MANIFEST
    version = load_manifest(path).get(result["model"]["version"])
    runtimes = dict(version.runtimes)
    for name in result["summary"]:
        if name in runtimes:
            check = {**runtimes[name].count_check, "accuracy": accuracy_record(result, name)}
            runtimes[name] = replace(runtimes[name], count_check=check)
    recommended = result["recommended_cpu_runtime"]
    cpu_runtime = recommended if recommended in runtimes else None
    add_version(path, replace(version, runtimes=runtimes, cpu_runtime=cpu_runtime))
    log(f"{path}: {version.name} cpu_runtime {cpu_runtime or 'torch'}")


def markdown_table(result: dict[str, Any]) -> str:
    """The runtime-accuracy table for docs/benchmarks.md and the model card."""
    summary = result["summary"]
    names = list(next(iter(summary.values()))["rmse_per_class"])
    headers = ["runtime", "runs in", "s/photo", *[f"RMSE {n}" for n in names], "mean RMSE", "vs torch"]
    headers += ["total MAE", "max total shift vs torch", "passes"]
    rows = [
        [name, s["precision"], s["seconds_per_photo"], *s["rmse_per_class"].values(), s["mean_rmse"],
         f"{s['rmse_vs_torch']:.3f}x", s["total_mae"],
         f"{s['max_total_shift_vs_torch']} ({s['max_total_shift_vs_torch_relative']:.1%})",
         "—" if name == "torch" else ("yes" if s["passes"] else "no")]
        for name, s in summary.items()
    ]  # fmt: skip
    model = result["model"]
    return "\n".join(
        [
            f"Model {model['version']} (sha256 `{model['sha256'][:12]}…`), {len(result['photos'])} photos with "
            f"official counts ({', '.join(p['id'] for p in result['photos'])}). Rule: {result['rule']}.",
            "",
            format_table(headers, rows),
            "",
            f"Recommended CPU default: **{result['recommended_cpu_runtime']}** (the manifest has "
            f"{model['cpu_runtime'] or 'torch'}).",
        ]
    )


def report(result: dict[str, Any]) -> None:
    print(markdown_table(result))
    print(describe_load(result["environment"]))


if __name__ == "__main__":
    raise SystemExit(main())
