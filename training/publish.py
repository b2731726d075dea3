"""Publish a trained model as a tagged revision of a model repo, and pin it in ``weights/manifest.yaml``.

    # a local git model repo (served to the detector by olah, see docs/training.md)
    python -m training.publish --run /work/train-runs/v1 --dataset DIR \
        --cv-metrics /work/train-runs/cv/cv_metrics.json --version v1 \
        --git-repo /work/model-hub/models/sealion-counter/steller-sealions-yolov5 --ship --default
    # a Hugging Face Hub repo (or any hub endpoint): upload_folder + create_tag
    python -m training.publish --run ... --version v2 --repo-id sealion-counter/steller-sealions-yolov5 \
        --endpoint https://huggingface.co --token $HF_TOKEN

The revision holds the weights, ``README.md`` (model card with YAML metadata: weights filename + sha256, classes,
colours, imgsz, ground scale, metrics, training data, training command, base config) and ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from detector.classes import SEA_LION_CLASSES, SEA_LION_SUBJECT, SEA_LION_TITLE, class_color, is_sea_lion
from detector.counting.scale import SEA_LION_REFERENCE, ScaleReference
from detector.files import sha256_file
from detector.versions.hub import ResolvedWeights
from detector.versions.manifest import DEFAULT_MANIFEST, ModelVersion, add_version, load_manifest
from detector.versions.runtimes import EXPORT_CHOICES
from detector.versions.weights_facts import WeightsFacts, read_weights_facts, stamp_checkpoint
from training.card import card_text, summary_metrics
from training.export import ExportOptions, ExportPlan, default_check_photos, export_version, ship_runtimes
from training.io import DatasetRecord, TrainingError
from training.records import (
    CALIBRATION,
    TRAINING_RECORD,
    Calibration,
    CVReport,
    InitReport,
    RevisionMetrics,
    TrainingRecord,
)
from training.revision import DEFAULT_REPO_ID, PublishError, PublishTarget


@dataclass(frozen=True)
class TrainedModel:
    """The model a version publishes, with the facts its manifest entry and card state."""

    weights: Path  # a training checkpoint (published as an fp16 copy without optimizer state)
    version: str  # the version's name, also its revision's tag
    imgsz: int
    ground_scale: float
    base_config: str  # the model config it was trained from (yolov5n.yaml): names the weights file
    class_conf: Mapping[str, float] = field(default_factory=dict)  # calibrated per-class count thresholds
    greyscale_input: bool = False  # counts every photo as its greyscale copy
    init: InitReport | None = None  # the weights it started from
    class_names: tuple[str, ...] = SEA_LION_CLASSES  # its dataset's classes, in the network's order
    family: str = "sealions"  # what the weights file is named after (sealions-yolov5n-v4.pt)
    scale_reference: ScaleReference | None = None  # how photo scale is measured; None: the sea lion default


@dataclass(frozen=True)
class CardInputs:
    """What the card and ``metrics.json`` say about how the model was made and how well it counts."""

    training_command: str
    training_data: Mapping[str, Any]  # training_data_summary() of its dataset
    metrics: Mapping[str, Any]  # compact: the card's front matter and the manifest (summary_metrics())
    full_metrics: RevisionMetrics | None = None  # metrics.json (default: metrics)
    training_run: Mapping[str, Any] = field(default_factory=dict)  # training_run_summary() of its training record
    title: str = SEA_LION_TITLE  # the card's heading (and the app's, in the manifest entry unless the sea lions')
    subject: str = SEA_LION_SUBJECT  # what it counts, in the card's first sentence (and the app's heading)
    data_licence: str = ""  # the training data's licence, where it asks to be named (the card repeats it)
    data_citation: str = ""  # the publication the training data asks to be cited with


@dataclass(frozen=True)
class ManifestUpdate:
    """The manifest that pins the new version (None: none), and whether the version ships and is the default."""

    path: Path | None = DEFAULT_MANIFEST
    ship: bool = False  # copy the weights (and the export auto runs on a CPU) next to the manifest
    make_default: bool = False


@dataclass(frozen=True)
class Published:
    repo_id: str
    revision: str
    commit: str
    filename: str
    sha256: str
    where: str  # git folder or hub endpoint


MAX_FRAME_SIDES = 3  # a dataset with more photo sizes than this has crops, not frames of a few cameras


def weights_filename(base_config: str, version: str, family: str = "sealions") -> str:
    return f"{family}-{Path(base_config).stem}-{version}.pt"


def half_precision_copy(weights: Path, dest: Path) -> Path:
    """Copy an ultralytics checkpoint as fp16 without optimizer state (small; what the product ships)."""
    from ultralytics.utils.torch_utils import strip_optimizer

    dest.parent.mkdir(parents=True, exist_ok=True)
    if not strip_optimizer(weights, str(dest)):
        raise PublishError(f"{weights} is not an ultralytics checkpoint")
    return dest


def stamp_counting(weights: Path, model: TrainedModel) -> None:
    """Record in the published weights how the version counts (its calibrated thresholds, greyscale input) beside
    what they were trained on, so the same file given as explicit weights counts as the version does."""
    trained = read_weights_facts(weights) or WeightsFacts(float(model.ground_scale), int(model.imgsz), SEA_LION_CLASSES)
    stamp_checkpoint(
        weights, replace(trained, class_conf=dict(model.class_conf), greyscale_input=bool(model.greyscale_input))
    )


def publish(
    model: TrainedModel,
    card: CardInputs,
    target: PublishTarget,
    manifest: ManifestUpdate = ManifestUpdate(),
    exports: ExportPlan = ExportPlan(),  # noqa: B008 (a frozen dataclass: one shared default is safe)
) -> Published:
    """Card + fp16 weights (+ their CPU exports, :mod:`training.export`) + metrics → a tagged revision (git repo or
    hub) → an entry in the manifest."""
    version, listing = model.version, manifest.path
    if listing is not None and Path(listing).is_file() and version in load_manifest(listing).versions:
        raise PublishError(f"version {version!r} is already in {listing}; choose a new name")
    filename = weights_filename(model.base_config, version, model.family)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        half_precision_copy(model.weights, folder / filename)
        stamp_counting(folder / filename, model)
        record = ModelVersion(
            name=version,
            repo_id=target.repo_id,
            revision=version,
            commit="",  # known once the revision is published
            filename=filename,
            sha256=sha256_file(folder / filename),
            class_names=tuple(model.class_names),
            imgsz=int(model.imgsz),
            ground_scale=float(model.ground_scale),
            metrics=dict(card.metrics),
            description=f"YOLOv5 ({model.base_config}) trained at ground scale {model.ground_scale}"
            + (f" from {Path(model.init.source).name}" if model.init else " (random init)"),
            class_conf=dict(model.class_conf),
            greyscale_input=model.greyscale_input,
            **_reference_fields(model.scale_reference),
            # in words, for the app's heading; the sea lions' defaults stay out of the entry (entries as before)
            title=card.title if card.title != SEA_LION_TITLE else "",
            subject=card.subject if card.subject != SEA_LION_SUBJECT else "",
        )
        if exports.exports:  # in the same revision; each checked against torch on the plan's photos
            verified = ResolvedWeights(folder / filename, record.sha256, "local", record)
            record = export_version(verified, folder, exports)
        meta = {
            "library_name": "ultralytics",
            "tags": ["yolov5", "object-detection", model.family, "counting"],
            **record.to_card(),
            "class_colors": {name: list(class_color(name, i)) for i, name in enumerate(model.class_names)},
            "title": card.title,
            "subject": card.subject,
            "base_config": model.base_config,
            "training_data": dict(card.training_data),
            "training_command": card.training_command,
        }
        if card.data_licence or card.data_citation:
            meta["training_data_licence"] = {"licence": card.data_licence, "citation": card.data_citation}
        if model.init:
            meta["init_weights"] = model.init.to_json()
        if card.training_run:
            meta["training_run"] = dict(card.training_run)
        (folder / "README.md").write_text(card_text(meta, version))
        if card.full_metrics is not None:
            card.full_metrics.write(folder / RevisionMetrics.FILE)
        else:
            (folder / RevisionMetrics.FILE).write_text(json.dumps(dict(card.metrics), indent=2))
        commit = target.create_revision(folder, version, f"{card.title} {version}")
        shipped_file = None
        if manifest.ship and listing is not None:
            shipped_file = filename
            shutil.copy2(folder / filename, Path(listing).parent / filename)
            if record.cpu_runtime:  # the export auto runs on a CPU works offline too
                record = ship_runtimes(record, folder, Path(listing).parent, [record.cpu_runtime])
    if listing is not None:
        pinned = replace(record, commit=commit, shipped_file=shipped_file)
        add_version(listing, pinned, make_default=manifest.make_default)
    return Published(target.repo_id, version, commit, filename, record.sha256, target.where)


def _reference_fields(reference: ScaleReference | None) -> dict[str, Any]:
    """The manifest fields of a scale reference (none for the sea lion default: existing entries stay as they are)."""
    if reference is None:
        return {}
    return {
        "reference_class": reference.class_name,
        "reference_length_px": reference.length_px,
        "frame_sides": tuple(reference.frame_sides),
        "reference_length_m": reference.length_m,
    }


def default_reference_class(dataset: DatasetRecord) -> str:
    """The class a version is measured by unless publish is told: the most numerous of the middle-sized classes
    (neither the shortest nor the longest typical length: common, and neither the young nor the largest males):
    adult females for sea lions, cows for elephant seals. With fewer than three measured classes, the most numerous."""
    names = tuple(dataset.class_names)
    totals = {n: sum(int(p.dot_counts.get(n, 0)) for p in dataset.photos) for n in names}
    lengths = {n: dataset.body_length_px[n] for n in names if dataset.body_length_px.get(n)}
    middle = [n for n in lengths if min(lengths.values()) < lengths[n] < max(lengths.values())]
    return max(middle or names, key=lambda n: totals[n])


def scale_reference_of(
    dataset: DatasetRecord,
    reference_class: str | None = None,
    length_px: float | None = None,
    length_m: float | None = None,
) -> ScaleReference | None:
    """How a version trained on ``dataset`` measures photo scale: ``reference_class`` (default: adult females for the
    sea lion classes, else :func:`default_reference_class`), its typical length at the data's native resolution
    (``length_px``, else the dataset's ``body_length_px``), the long sides of its photos at native resolution
    (auto recognises them: a 500 px tile counts at photo scale 1), and its typical length on the ground in metres
    (``length_m``: GeoTIFFs' scale; None: unknown, never assumed). None: the sea lion default."""
    names = tuple(dataset.class_names)
    default_class = reference_class in (None, SEA_LION_REFERENCE.class_name)
    if is_sea_lion(names) and default_class and length_px is None and length_m is None:
        return None
    if length_m is not None and not length_m > 0:
        raise PublishError(f"--reference-length-m must be a positive number of metres, got {length_m}")
    if reference_class is None:
        reference_class = default_reference_class(dataset)
    if reference_class not in names:
        raise PublishError(f"--reference-class {reference_class!r} is not a class of the dataset ({', '.join(names)})")
    length = length_px if length_px is not None else dataset.body_length_px.get(reference_class)
    if not length:
        raise PublishError(
            f"the dataset's photos.json records no typical length of {reference_class} (body_length_px): rebuild it "
            "with python -m training.boxes, or give --reference-length PX (its length at native resolution)"
        )
    sides = sorted(
        {round(max(p.size) / dataset.ground_scale) for p in dataset.photos if p.size}
    )  # stored at ground scale
    frame_sides = tuple(sides) if len(sides) <= MAX_FRAME_SIDES else ()  # many sizes: crops, not frames
    return ScaleReference(reference_class, float(length), frame_sides, length_m)


def training_run_summary(record: TrainingRecord) -> dict[str, Any]:
    """How long the model trained (the card's "Trained:" line): epochs run, hours, and the time budget if any."""
    summary: dict[str, Any] = {"epochs": record.epochs_run, "hours": round(record.wall_time_s / 3600, 2)}
    if record.budget:
        summary["budget_hours"] = record.budget
    return summary


def training_data_summary(dataset: DatasetRecord) -> dict[str, Any]:
    """What the model was trained on, from the dataset's record (photos.json)."""
    photos = dataset.photos
    return {
        "description": (
            f"{len(photos)} photos ({sum(p.chips for p in photos)} chips of {dataset.chip_size} px) "
            f"from {Path(dataset.source).name}; labels from the dots table where it lists a photo, else dots by "
            "colour (full resolution) or pair difference (downsampled)"
        ),
        "source": dataset.source,
        "photo_ids": [p.photo_id for p in photos],
        "photos": {p.photo_id: {"method": p.method, "dot_counts": dict(p.dot_counts)} for p in photos},
        "dots_table": dataset.dots_table,
        "refused": list(dataset.refused),
        "ground_scale": dataset.ground_scale,
        "chip_options": dict(dataset.chip_options),
        "body_length_px_full_resolution": dict(dataset.body_length_px),
        "dataset_command": dataset.command,
    }


def parse_class_conf(text: str, class_names: Sequence[str]) -> dict[str, float]:
    """``bull=0.5,cow=0.4,pup=0.3`` → thresholds for every class of the version (each named once, within 0-1)."""
    values = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, sep, value = item.partition("=")
        try:
            values[name.strip()] = float(value) if sep else float("nan")
        except ValueError:
            values[name.strip()] = float("nan")
        if not 0 <= values[name.strip()] <= 1:
            raise TrainingError(f"--class-conf {item!r}: expected CLASS=THRESHOLD with a threshold from 0 to 1")
    if set(values) != set(class_names):
        raise TrainingError(f"--class-conf names {sorted(values)}; the version's classes are {list(class_names)}")
    return {name: values[name] for name in class_names}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.publish", description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help=f"training run folder (with {TRAINING_RECORD})")
    parser.add_argument("--weights", type=Path, help="weights to publish (default: <run>/weights/best.pt)")
    parser.add_argument("--dataset", type=Path, required=True, help="the dataset folder it was trained on")
    parser.add_argument("--cv-metrics", type=Path, help="cv_metrics.json from python -m training.evaluate --cv")
    parser.add_argument(
        "--calibration", type=Path,
        help="calibration.json (or calibration-grey.json: the version then counts greyscale copies) from python -m "
        f"training.evaluate --calibrate: per-class count thresholds (default: {CALIBRATION} next to --cv-metrics)",
    )  # fmt: skip
    parser.add_argument("--version", required=True, help="version name and tag, e.g. v1")
    parser.add_argument("--repo-id", default=DEFAULT_REPO_ID)
    parser.add_argument("--git-repo", type=Path, help="local git model repo (e.g. <olah mirrors>/models/<repo-id>)")
    parser.add_argument("--endpoint", help="hub endpoint URL (with huggingface_hub); default: none (use --git-repo)")
    parser.add_argument("--token", default=os.environ.get("HF_TOKEN"), help="hub token (default: $HF_TOKEN)")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--ship", action="store_true", help="also copy the weights next to the manifest")
    parser.add_argument("--default", action="store_true", help="make this version the manifest default")
    parser.add_argument(
        "--runtime", action="append", choices=EXPORT_CHOICES, default=None,
        help="also export for this CPU runtime into the same revision (repeatable; see python -m training.export)",
    )  # fmt: skip
    parser.add_argument("--int8-calibration", type=Path, help="openvino-int8: calibration chips (default: --dataset)")
    parser.add_argument(
        "--check-photos", type=Path, nargs="+",
        help="photos each export's counts are checked on against torch (default: the sea lion examples)",
    )  # fmt: skip
    parser.add_argument(
        "--check-photo-scale", type=float, help="their photo scale (default: auto; 1 for frames at native resolution)"
    )
    parser.add_argument(
        "--class-conf", default="",
        help="per-class count thresholds chosen elsewhere, e.g. bull=0.5,cow=0.4,pup=0.3 (instead of --calibration's)",
    )  # fmt: skip
    parser.add_argument("--family", default="sealions", help="what the weights file is named after")
    parser.add_argument("--title", default=SEA_LION_TITLE, help="the model card's and the app's heading")
    parser.add_argument(
        "--subject", default=SEA_LION_SUBJECT, help="what it counts (the card's first line and the app's heading)"
    )
    parser.add_argument(
        "--reference-class",
        help="the class people measure to set a photo's scale (default: adult_females for sea lions, else the "
        "most numerous class of middle size, e.g. cow)",
    )
    parser.add_argument(
        "--reference-length", type=float, metavar="PX",
        help="its typical length in pixels at the data's native resolution (default: the dataset's body_length_px)",
    )  # fmt: skip
    parser.add_argument(
        "--reference-length-m", type=float, metavar="M",
        help="its typical length on the ground in metres, from a source you cite in the version's docs (GeoTIFFs "
        "take their scale from it; default: none, so their scale must be given; sea lions: 2.4 m)",
    )  # fmt: skip
    parser.add_argument("--data-licence", default="", help="the training data's licence, repeated on the card")
    parser.add_argument("--data-citation", default="", help="the publication the training data asks to be cited with")
    args = parser.parse_args(argv)
    try:
        target = PublishTarget(args.repo_id, args.git_repo, args.endpoint, args.token)
        record = TrainingRecord.read(args.run / TRAINING_RECORD)
        dataset = DatasetRecord.read(args.dataset)
        cv = CVReport.read(args.cv_metrics) if args.cv_metrics else None
        calibration_file = args.calibration or (args.cv_metrics.parent / CALIBRATION if args.cv_metrics else None)
        calibration = Calibration.read(calibration_file) if calibration_file and calibration_file.is_file() else None
        class_conf = parse_class_conf(args.class_conf, dataset.class_names) if args.class_conf else None
        full = RevisionMetrics(training=record.final_val_metrics, cross_validation=cv, calibration=calibration)
        model = TrainedModel(
            weights=args.weights or Path(record.weights),
            version=args.version,
            imgsz=record.imgsz,
            ground_scale=dataset.ground_scale,
            base_config=record.base_config,
            class_conf=class_conf if class_conf is not None else (calibration.class_conf if calibration else {}),
            greyscale_input=bool(calibration and calibration.greyscale_input),
            init=record.init,
            class_names=tuple(dataset.class_names),
            family=args.family,
            scale_reference=scale_reference_of(
                dataset, args.reference_class, args.reference_length, args.reference_length_m
            ),
        )
        card = CardInputs(
            training_command=record.command,
            training_data=training_data_summary(dataset),
            metrics=summary_metrics(cv, calibration=calibration),
            full_metrics=full,
            training_run=training_run_summary(record),
            title=args.title,
            subject=args.subject,
            data_licence=args.data_licence,
            data_citation=args.data_citation,
        )
        exports = ExportPlan(
            tuple(
                ExportOptions(runtime=name, calibration=args.int8_calibration or args.dataset)
                for name in args.runtime or ()
            ),
            tuple(args.check_photos or default_check_photos()) if args.runtime else (),
            args.check_photo_scale,
        )
        published = publish(model, card, target, ManifestUpdate(args.manifest, args.ship, args.default), exports)
    except (PublishError, TrainingError) as exc:
        raise SystemExit(f"publish: {exc}") from None
    print(json.dumps(published.__dict__, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
