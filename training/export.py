"""Export a model version for a CPU runtime (OpenVINO IR or ONNX, optionally int8) and publish it with the version.

    # the shipped default: OpenVINO (fp16 weights) into its hub revision and weights/, checked on the examples
    python -m training.export --version v2 --git-repo /work/model-hub/models/sealion-counter/steller-sealions-yolov5 \
        --ship
    # also an int8 model, calibrated on the training chips (auto uses it only if its counts stay within 1 %)
    python -m training.export --version v2 --runtime openvino --runtime openvino-int8 \
        --calibration /work/datasets/gs05 --git-repo ... --check-photos ../shared/data/noaa-sealions/fullres-raw

The export is ultralytics' own (``YOLO.export``), and the detector loads it with ultralytics too (AutoBackend).
The files go into the version's hub revision: a commit on top of the tagged one, and the tag moves to it (the
weights file is unchanged, so its sha256 pin holds; the manifest pins the new commit). Every file's sha256 goes
into the manifest and the model card. ``training.publish --runtime ...`` calls the same code for a new version.

Each export is checked against torch on ``--check-photos`` (default: the examples): per-class counts within 1 %
or one animal on every photo. The manifest's ``cpu_runtime`` (what ``--runtime auto`` runs on a CPU) becomes the
fastest export that passed; one that moves counts more is published but never the default.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from detector.errors import DetectorError
from detector.files import sha256_file
from detector.settings import DEFAULT_BATCH, DEFAULT_IMGSZ, ModelSettings
from detector.versions.hub import ResolvedRuntime, ResolvedWeights, resolve_weights
from detector.versions.manifest import DEFAULT_MANIFEST, ExportedRuntime, ModelVersion, add_version, load_manifest
from detector.versions.runtimes import COUNT_TOLERANCE, EXPORT_CHOICES, counts_agree, is_int8, runtime_format
from training.card import refreshed_card
from training.io import TrainingError
from training.revision import PublishTarget

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"


@dataclass(frozen=True)
class ExportOptions:
    """One export of a version's network (ultralytics' exporter options that matter here)."""

    runtime: str = "openvino"  # one of EXPORT_CHOICES: the format, "-int8" for an int8 model
    calibration: Path | None = None  # int8: a dataset folder (training.dataset) or its data.yaml
    calibration_split: str = "train"  # the dataset split whose chips calibrate int8 activations
    dynamic: bool = False  # dynamic batch and shape; static (default) runs faster and int8 needs it on AMX CPUs
    batch: int = DEFAULT_BATCH  # a static export's batch: ultralytics splits larger batches and pads short ones

    def __post_init__(self) -> None:
        if self.runtime not in EXPORT_CHOICES:
            raise TrainingError(f"runtime must be one of {', '.join(EXPORT_CHOICES)}, got {self.runtime!r}.")
        if self.int8 and self.calibration is None:
            raise TrainingError(f"{self.runtime} needs calibration chips: give --calibration DATASET.")

    @property
    def format(self) -> str:
        return runtime_format(self.runtime)

    @property
    def int8(self) -> bool:
        return is_int8(self.runtime)


@dataclass(frozen=True)
class ExportPlan:
    """The exports to make of a version, and the photos each is checked on against torch (none: no check)."""

    exports: tuple[ExportOptions, ...] = ()
    check_photos: tuple[Path, ...] = ()
    check_photo_scale: float | None = None  # their photo scale (None: auto, from each photo's size)

    @property
    def runtimes(self) -> list[str]:
        return [options.runtime for options in self.exports]


def calibration_yaml(calibration: Path) -> Path:
    """The data.yaml ultralytics reads calibration chips from: a dataset folder's ``splits/all/data.yaml``."""
    calibration = Path(calibration)
    found = calibration if calibration.is_file() else calibration / "splits" / "all" / "data.yaml"
    if not found.is_file():
        raise TrainingError(f"No calibration data at {calibration} (a dataset folder with splits/all/data.yaml).")
    return found


def export_runtime(weights: Path, imgsz: int, out: Path, options: ExportOptions) -> ExportedRuntime:
    """Export ``weights`` with ultralytics into ``out`` (``<stem>_openvino_model/``, ``<stem>_int8_openvino_model/``
    or ``<stem>.onnx``); returns the record with every file's sha256 (paths relative to ``out``)."""
    from ultralytics import YOLO

    stem = Path(weights).stem
    arguments: dict[str, Any] = {
        "format": options.format, "imgsz": int(imgsz), "batch": int(options.batch), "dynamic": options.dynamic,
        "device": "cpu", "verbose": False,
    }  # fmt: skip
    if options.int8:
        arguments.update(
            quantize=8, data=str(calibration_yaml(options.calibration)), split=options.calibration_split, fraction=1.0
        )
    elif options.format == "openvino":
        arguments["quantize"] = 16  # fp16 weights in the file (half the size); the CPU runs them as fp32 or bf16
    precision = "int8" if options.int8 else ("fp16" if arguments.get("quantize") == 16 else "fp32")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / f"{stem}.pt"  # the exporter writes next to its input
        shutil.copy2(weights, source)
        try:
            produced = Path(YOLO(str(source), task="detect").export(**arguments))
        except Exception as exc:  # the exporter raises many types (missing package, bad calibration data)
            raise TrainingError(
                f"Exporting {weights} to {options.runtime} failed: {type(exc).__name__}: {exc}"
            ) from exc
        target = out / produced.name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        shutil.move(str(produced), target)
    members = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
    files = {p.relative_to(out).as_posix(): sha256_file(p) for p in members}
    return ExportedRuntime(
        name=options.runtime, format=options.format, path=target.relative_to(out).as_posix(), files=files,
        precision=precision, batch=None if options.dynamic else int(options.batch),
    )  # fmt: skip


def default_check_photos() -> list[Path]:
    return sorted(EXAMPLES.glob("*.jpg"))


def check_counts(
    weights: ResolvedWeights,
    runtime: ResolvedRuntime,
    photos: Sequence[Path],
    torch_counts: dict[str, Any],
    photo_scale: float | None = None,
) -> dict[str, Any]:
    """Count ``photos`` with torch and with the exported runtime; per photo and class, the difference must stay
    within 1 % of torch's count or one animal. ``torch_counts`` caches torch's side between runtimes."""
    from detector.counting.model import Detector

    names = _photo_names(photos)

    def run(detector: Detector) -> tuple[dict[str, dict[str, int]], float]:
        counts, started = {}, time.perf_counter()
        for photo, name in zip(photos, names, strict=True):
            counts[name] = detector.count(photo, photo_scale=photo_scale).counts
        return counts, (time.perf_counter() - started) / max(1, len(photos))

    if "counts" not in torch_counts:
        torch_counts["counts"], torch_counts["seconds_per_photo"] = run(Detector(weights, device="cpu"))
    reference = torch_counts["counts"]
    counts, seconds = run(Detector(weights, device="cpu", runtime=runtime))
    worst = max((abs(counts[p][c] - reference[p][c]) for p in counts for c in counts[p]), default=0)
    return {
        "photos": len(counts),
        "tolerance": f"{COUNT_TOLERANCE:.0%} or 1 animal per class and photo",
        "within_tolerance": all(counts_agree(reference[p], counts[p]) for p in counts),
        "outside_tolerance": {p: _differences(reference[p], counts[p]) for p in counts
                              if not counts_agree(reference[p], counts[p])},
        "max_count_difference": int(worst),
        "seconds_per_photo": round(seconds, 4),
        "torch_seconds_per_photo": round(torch_counts["seconds_per_photo"], 4),
    }  # fmt: skip


def _photo_names(photos: Sequence[Path]) -> list[str]:
    """Short unique names: ``folder/file`` (a raw and a dotted copy share the file name)."""
    return [f"{Path(p).parent.name}/{Path(p).name}" for p in photos]


def _differences(reference: Mapping[str, int], other: Mapping[str, int]) -> dict[str, str]:
    return {c: f"{reference[c]} -> {other[c]}" for c in reference if other[c] != reference[c]}


def export_version(weights: ResolvedWeights, folder: Path, plan: ExportPlan) -> ModelVersion:
    """Export a version for each of ``plan.exports`` into ``folder`` (the revision's files), check each against torch,
    and return the version with its ``runtimes`` and ``cpu_runtime`` (the fastest export whose counts held; with
    no photos to check, the first one that is not int8). An OpenVINO export is listed twice: ``openvino`` runs at
    the CPU's default precision (bf16 where the CPU has it), ``openvino-f32`` the same files in fp32."""
    version = weights.version
    imgsz = int(version.imgsz or DEFAULT_IMGSZ)
    runtimes = dict(version.runtimes)
    torch_side: dict[str, Any] = {}
    for options in plan.exports:
        record = export_runtime(weights.path, imgsz, folder, options)
        records = [record]
        if options.format == "openvino" and not options.int8:  # the same files, run in fp32 on every CPU
            records.append(replace(record, name=f"{record.name}-f32", inference_precision="f32"))
        for one in records:
            if plan.check_photos:
                resolved = ResolvedRuntime(folder / one.path, "local", one)
                one = replace(
                    one,
                    count_check=check_counts(weights, resolved, plan.check_photos, torch_side, plan.check_photo_scale),
                )
            runtimes[one.name] = one
    checked = [r for r in runtimes.values() if r.count_check.get("within_tolerance")]
    if checked:
        cpu_runtime = min(checked, key=lambda r: r.count_check["seconds_per_photo"]).name
    else:
        cpu_runtime = next((r.name for r in runtimes.values() if r.precision != "int8" and not r.count_check), None)
    return replace(version, runtimes=runtimes, cpu_runtime=cpu_runtime)


def ship_runtimes(version: ModelVersion, folder: Path, weights_dir: Path, names: Sequence[str]) -> ModelVersion:
    """Copy the files of runtimes ``names`` from ``folder`` into ``weights_dir`` and mark them (and the runtimes
    that run the same files, e.g. ``openvino`` and ``openvino-f32``) shipped."""
    runtimes = dict(version.runtimes)
    paths = {runtimes[name].path for name in names}
    for path in paths:
        target = weights_dir / path
        if target.is_dir():
            shutil.rmtree(target)
    for name, runtime in version.runtimes.items():
        if runtime.path in paths:
            for file in runtime.files:
                (weights_dir / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(folder / file, weights_dir / file)
            runtimes[name] = replace(runtime, shipped=True)
    return replace(version, runtimes=runtimes)


def export_and_publish(
    settings: ModelSettings,
    plan: ExportPlan,
    target: PublishTarget,
    *,
    ship: bool = False,
    manifest: Path = DEFAULT_MANIFEST,
) -> ModelVersion:
    """Export an existing manifest version, publish the files in its revision (in the version's own repo at
    ``target``), pin them in the manifest."""
    listed = load_manifest(manifest)
    version = listed.get(settings.version)
    weights = resolve_weights(replace(settings, manifest=Path(manifest)), listed)
    target = target.for_repo(version.repo_id)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "revision"
        exported = export_version(weights, folder, plan)
        message = f"sea lion counter {version.name}: {', '.join(plan.runtimes)} export"
        card = target.current_card(version)
        card = refreshed_card(card, exported) if card else None
        commit = target.add_to_revision(folder, version.revision, message, card)
        cpu = exported.runtimes.get(exported.cpu_runtime or "")
        if ship and cpu and all((folder / file).is_file() for file in cpu.files):  # what auto runs works offline
            exported = ship_runtimes(exported, folder, listed.weights_dir, [exported.cpu_runtime])
    final = replace(exported, commit=commit)
    add_version(manifest, final, make_default=listed.default == version.name)
    return final


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="a version in the manifest, e.g. v2")
    parser.add_argument(
        "--runtime", action="append", choices=EXPORT_CHOICES, default=None,
        help="what to export (repeat for several; default openvino)",
    )  # fmt: skip
    parser.add_argument("--calibration", type=Path, help="int8: the dataset folder (training.dataset) or a data.yaml")
    parser.add_argument("--dynamic", action="store_true", help="dynamic batch and shape (default: static batch)")
    parser.add_argument(
        "--check-photos", type=Path, nargs="*", default=None,
        help="photos (or folders) to check counts against torch on, besides examples/*.jpg (given empty: no check)",
    )  # fmt: skip
    parser.add_argument("--git-repo", type=Path, help="the local git model repo that holds the version's tag")
    parser.add_argument("--endpoint", help="a hub endpoint URL (huggingface_hub) instead of --git-repo")
    parser.add_argument("--token", help="hub token for --endpoint (default: huggingface_hub's)")
    parser.add_argument(
        "--ship",
        action="store_true",
        help="also copy the export auto runs (cpu_runtime) next to the manifest (weights/)",
    )
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    args = parser.parse_args(argv)
    if args.git_repo is None and args.endpoint is None:
        parser.error("say where the version's revision is: --git-repo DIR or --endpoint URL")
    target = PublishTarget(git_repo=args.git_repo, endpoint=args.endpoint, token=args.token)
    # The examples are always checked (every checkout has them) unless --check-photos is given empty: an export
    # that moves their counts (bf16 moves noaa_train_0's adult males 61 -> 59) is published but not the default.
    photos = default_check_photos() if args.check_photos is None else _photos(args.check_photos)
    if args.check_photos:
        photos = default_check_photos() + [p for p in photos if p not in default_check_photos()]
    try:
        exports = tuple(
            ExportOptions(runtime=name, calibration=args.calibration, dynamic=args.dynamic)
            for name in args.runtime or ["openvino"]
        )
        version = export_and_publish(
            ModelSettings(version=args.version, device="cpu", runtime="torch"), ExportPlan(exports, tuple(photos)),
            target, ship=args.ship, manifest=args.manifest,
        )  # fmt: skip
    except (TrainingError, DetectorError) as exc:
        raise SystemExit(f"export: {exc}") from None
    summary = {name: _summary(runtime) for name, runtime in version.runtimes.items()}
    print(json.dumps({"version": version.name, "commit": version.commit, "cpu_runtime": version.cpu_runtime,
                      "runtimes": summary}, indent=2))  # fmt: skip
    return 0


def _summary(runtime: ExportedRuntime) -> Mapping[str, Any]:
    return {"path": runtime.path, "precision": runtime.precision, "shipped": runtime.shipped, **runtime.count_check}


def _photos(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += (
            sorted(p for p in path.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
            if path.is_dir()
            else [path]
        )
    return found


if __name__ == "__main__":
    raise SystemExit(main())
