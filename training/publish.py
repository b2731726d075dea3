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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, ModelCard, ModelCardData

from detector.classes import CLASS_COLORS, SEA_LION_CLASSES
from detector.files import sha256_file
from detector.settings import DEFAULT_CONF
from detector.versions.hub import ResolvedWeights
from detector.versions.manifest import DEFAULT_MANIFEST, ModelVersion, add_version, load_manifest
from detector.versions.runtimes import EXPORT_CHOICES
from training.export import ExportOptions, default_check_photos, export_version, ship_runtimes
from training.io import DatasetRecord, TrainingError
from training.revision import PublishError, publish_to_git

DEFAULT_REPO_ID = "sealion-counter/steller-sealions-yolov5"


@dataclass(frozen=True)
class Published:
    repo_id: str
    revision: str
    commit: str
    filename: str
    sha256: str
    where: str  # git folder or hub endpoint


def weights_filename(base_config: str, version: str) -> str:
    return f"sealions-{Path(base_config).stem}-{version}.pt"


def half_precision_copy(weights: Path, dest: Path) -> Path:
    """Copy an ultralytics checkpoint as fp16 without optimizer state (small; what the product ships)."""
    from ultralytics.utils.torch_utils import strip_optimizer

    dest.parent.mkdir(parents=True, exist_ok=True)
    if not strip_optimizer(weights, str(dest)):
        raise PublishError(f"{weights} is not an ultralytics checkpoint")
    return dest


def summary_metrics(
    cv: Mapping[str, Any] | None,
    holdout: Mapping[str, Any] | None = None,
    calibration: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The compact metrics stored in the card front matter and the manifest (full numbers go to metrics.json)."""
    metrics: dict[str, Any] = {}
    if cv:
        metrics["cv_folds"] = len(cv["folds"])
        metrics["cv_epochs_per_fold"] = cv["epochs_per_fold"]
        metrics["cv_photos"] = cv["cv"]["photos"]
        metrics["cv_competition_rmse"] = round(cv["cv"]["competition_rmse"], 3)
        metrics["cv_rmse_per_class"] = {k: round(v["rmse"], 3) for k, v in cv["cv"]["per_class"].items()}
        metrics["cv_total_count_mae"] = round(cv["cv"]["total_mae"], 3)
        metrics["baseline_training_mean_competition_rmse"] = round(cv["baseline_training_mean"]["competition_rmse"], 3)
        metrics["cv_chip_map50"] = round(cv["mean_chip_map50"], 4)
        metrics["conf"] = cv.get("conf", DEFAULT_CONF)
    if calibration:
        honest = calibration["metrics_calibrated_other_folds"]
        metrics["cv_calibrated_competition_rmse"] = round(honest["competition_rmse"], 3)
        metrics["cv_calibrated_rmse_per_class"] = {k: round(v["rmse"], 3) for k, v in honest["per_class"].items()}
        metrics["cv_calibrated_total_relative_error"] = round(honest["total_relative_error"], 4)
        metrics["baseline_rmse_per_class"] = {
            k: round(v["rmse"], 3) for k, v in calibration["baseline_training_mean"]["per_class"].items()
        }
    if holdout:
        metrics["holdout"] = holdout
    return metrics


def render_card(meta: Mapping[str, Any], body: str) -> ModelCard:
    """A model card: YAML metadata (huggingface_hub's ModelCardData) plus a markdown body."""
    data = ModelCardData(**meta)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def card_body(meta: Mapping[str, Any], version: str) -> str:
    metrics = meta.get("metrics") or {}
    lines = [
        f"# Steller sea lion counter — YOLOv5 ({version})",
        "",
        "Detects and counts Steller sea lions in aerial survey photos, in five classes: "
        + ", ".join(meta["class_names"])
        + ".",
        "",
        f"* Base config: `{meta['base_config']}` ({_init_text(meta.get('init_weights'))}), image size {meta['imgsz']}, "
        f"trained at ground scale {meta['ground_scale']} of native survey resolution (the detector rescales inputs "
        "to match).",
        f"* Training photos: {', '.join(meta['training_data'].get('photo_ids') or [])}.",
        f"* Training data: {meta['training_data'].get('description', '')}",
        *(
            [
                "* Input: every photo is counted as its greyscale copy (colour-blind), so a colour photo and its "
                "greyscale copy give the same counts."
            ]
            if meta.get("greyscale_input")
            else []
        ),  # fmt: skip
        f"* Training command: `{meta['training_command']}`",
    ]
    if metrics.get("cv_competition_rmse") is not None:
        lines += [
            "",
            "## Cross-validated counting metrics",
            "",
            f"{metrics['cv_folds']}-fold cross-validation over {metrics['cv_photos']} photos "
            f"({metrics['cv_epochs_per_fold']} epochs per fold), counts from whole photos through the product's "
            "sliced inference:",
            "",
            "| class | RMSE |",
            "| --- | --- |",
            *[f"| {k} | {v} |" for k, v in metrics["cv_rmse_per_class"].items()],
            f"| **mean (competition metric)** | **{metrics['cv_competition_rmse']}** |",
            "",
            f"Predicting the training mean scores {metrics['baseline_training_mean_competition_rmse']}. "
            f"mAP@0.5 on validation chips: {metrics['cv_chip_map50']}. Full numbers: `metrics.json`.",
        ]
    if meta.get("class_conf"):
        lines += [
            "",
            "## Count thresholds",
            "",
            "The detector applies one confidence threshold per class, chosen on the cross-validation's unseen photos "
            "to minimise each class's count error (an explicit `conf` overrides them):",
            "",
            "| class | threshold |",
            "| --- | --- |",
            *[f"| {k} | {v:.2f} |" for k, v in meta["class_conf"].items()],
        ]
    if meta.get("runtimes"):
        lines += [
            "",
            "## CPU runtimes",
            "",
            "Exports in this revision (files and sha256 in the metadata); the detector runs "
            f"`{meta.get('cpu_runtime') or 'torch'}` on a CPU unless told otherwise (`--runtime`):",
            "",
            "| runtime | format | weights | counts vs torch |",
            "| --- | --- | --- | --- |",
            *[
                f"| {name} | {r['format']} | {r['precision']} | {_check_text(r.get('count_check') or {})} |"
                for name, r in meta["runtimes"].items()
            ],
            *_accuracy_lines(meta),
        ]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from detector import Detector",
        "from detector.settings import ModelSettings",
        f'detector = Detector.load(ModelSettings(repo_id="<this repo>", revision="{version}"))',
        'print(detector.count("photo.jpg", photo_scale=1.0).counts)',
        "```",
        "",
    ]
    return "\n".join(lines)


def _accuracy_lines(meta: Mapping[str, Any]) -> list[str]:
    """Why the CPU default is what it is: each runtime's count error against the official counts next to torch's
    (``benchmarks.runtime_accuracy --update-manifest`` records it in each runtime's ``count_check.accuracy``)."""
    rows = {name: (r.get("count_check") or {}).get("accuracy") for name, r in meta["runtimes"].items()}
    rows = {name: a for name, a in rows.items() if a}
    if not rows:
        return []
    first = next(iter(rows.values()))
    return [
        "",
        f"Against the official counts of {first['photos']} photos (`python -m benchmarks.runtime_accuracy`), torch's "
        f"mean per-class RMSE is {first['torch_mean_rmse_vs_official']}. A runtime may be the CPU default when its "
        "RMSE is within 1 % of torch's and no photo's total moves by more than 2 % (one animal at least) from "
        f"torch's; the fastest that passes is the default (`{meta.get('cpu_runtime') or 'torch'}`):",
        "",
        "| runtime | runs in | mean RMSE vs official | total MAE | largest total shift vs torch | s/photo | passes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[
            f"| {name} | {a['effective_precision']} | {a['mean_rmse_vs_official']} | {a['total_mae_vs_official']} | "
            f"{a['max_total_shift_vs_torch']:.1%} | {a['seconds_per_photo']} | {'yes' if a['passes'] else 'no'} |"
            for name, a in rows.items()
        ],
    ]


def _check_text(check: Mapping[str, Any]) -> str:
    if not check:
        return "not checked"
    verdict = "within" if check.get("within_tolerance") else "outside"
    return f"{verdict} {check.get('tolerance', '1 %')} on {check.get('photos')} photos"


def _init_text(init: Mapping[str, Any] | None) -> str:
    if not init:
        return "random init"
    return (
        f"initialised from `{Path(init['source']).name}` (sha256 `{init['sha256'][:12]}…`, "
        f"{init['matched']}/{init['total']} tensors copied)"
    )


def publish_to_hub(folder: Path, repo_id: str, tag: str, message: str, endpoint: str | None, token: str | None) -> str:
    """Upload the files of ``folder`` as one commit to a hub repo and tag it (huggingface_hub); returns the sha."""
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    existing = {t.name for t in api.list_repo_refs(repo_id).tags}
    if tag in existing:
        raise PublishError(f"tag {tag!r} already exists in {repo_id}; publish a new version name")
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=message)
    api.create_tag(repo_id, tag=tag, revision=info.oid, tag_message=message)
    return info.oid


def publish(
    weights: Path,
    version: str,
    *,
    imgsz: int,
    ground_scale: float,
    base_config: str,
    training_command: str,
    training_data: Mapping[str, Any],
    metrics: Mapping[str, Any],
    full_metrics: Mapping[str, Any] | None = None,
    class_conf: Mapping[str, float] | None = None,
    greyscale_input: bool = False,
    init: Mapping[str, Any] | None = None,
    repo_id: str = DEFAULT_REPO_ID,
    git_repo: Path | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    manifest: Path | None = DEFAULT_MANIFEST,
    ship: bool = False,
    make_default: bool = False,
    exports: Sequence[ExportOptions] = (),
    check_photos: Sequence[Path] = (),
) -> Published:
    """Card + fp16 weights (+ their CPU exports, :mod:`training.export`) + metrics → a tagged revision (git repo or
    hub) → an entry in the manifest."""
    if manifest is not None and Path(manifest).is_file() and version in load_manifest(manifest).versions:
        raise PublishError(f"version {version!r} is already in {manifest}; choose a new name")
    if git_repo is None and endpoint is None:
        raise PublishError("say where to publish: --git-repo DIR (local, served by olah) or --endpoint URL")
    filename = weights_filename(base_config, version)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        half_precision_copy(weights, folder / filename)
        record = ModelVersion(
            name=version,
            repo_id=repo_id,
            revision=version,
            commit="",  # known once the revision is published
            filename=filename,
            sha256=sha256_file(folder / filename),
            class_names=SEA_LION_CLASSES,
            imgsz=int(imgsz),
            ground_scale=float(ground_scale),
            metrics=dict(metrics),
            description=f"YOLOv5 ({base_config}) trained at ground scale {ground_scale}"
            + (f" from {Path(init['source']).name}" if init else " (random init)"),
            class_conf=dict(class_conf or {}),
            greyscale_input=greyscale_input,
        )
        if exports:  # in the same revision; each checked against torch on check_photos
            verified = ResolvedWeights(folder / filename, record.sha256, "local", record)
            record = export_version(verified, folder, exports, check_photos)
        meta = {
            "library_name": "ultralytics",
            "tags": ["yolov5", "object-detection", "sea-lions", "counting"],
            **record.to_card(),
            "class_colors": {name: list(CLASS_COLORS[name]) for name in SEA_LION_CLASSES},
            "base_config": base_config,
            "training_data": dict(training_data),
            "training_command": training_command,
        }
        if init:
            meta["init_weights"] = dict(init)
        render_card(meta, card_body(meta, version)).save(folder / "README.md")
        (folder / "metrics.json").write_text(json.dumps(full_metrics or metrics, indent=2))
        message = f"sea lion counter {version}"
        if git_repo is not None:
            commit = publish_to_git(folder, Path(git_repo), repo_id, version, message)
            where = str(git_repo)
        else:
            commit = publish_to_hub(folder, repo_id, version, message, endpoint, token)
            where = str(endpoint)
        shipped_file = None
        if ship and manifest is not None:
            shipped_file = filename
            shutil.copy2(folder / filename, Path(manifest).parent / filename)
            if record.cpu_runtime:  # the export auto runs on a CPU works offline too
                record = ship_runtimes(record, folder, Path(manifest).parent, [record.cpu_runtime])
    if manifest is not None:
        add_version(manifest, replace(record, commit=commit, shipped_file=shipped_file), make_default=make_default)
    return Published(repo_id, version, commit, filename, record.sha256, where)


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.publish", description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="training run folder (with training_record.json)")
    parser.add_argument("--weights", type=Path, help="weights to publish (default: <run>/weights/best.pt)")
    parser.add_argument("--dataset", type=Path, required=True, help="the dataset folder it was trained on")
    parser.add_argument("--cv-metrics", type=Path, help="cv_metrics.json from python -m training.evaluate --cv")
    parser.add_argument(
        "--calibration", type=Path,
        help="calibration.json (or calibration-grey.json: the version then counts greyscale copies) from python -m "
        "training.evaluate --calibrate: per-class count thresholds (default: calibration.json next to --cv-metrics)",
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
    args = parser.parse_args(argv)
    record = json.loads((args.run / "training_record.json").read_text())
    try:
        dataset = DatasetRecord.read(args.dataset)
    except TrainingError as exc:
        raise SystemExit(f"publish: {exc}") from None
    cv = json.loads(args.cv_metrics.read_text()) if args.cv_metrics else None
    calibration_file = args.calibration or (args.cv_metrics.parent / "calibration.json" if args.cv_metrics else None)
    calibration = json.loads(calibration_file.read_text()) if calibration_file and calibration_file.is_file() else None
    full = {"training": record.get("final_val_metrics"), "cross_validation": cv, "calibration": calibration}
    try:
        published = publish(
            args.weights or Path(record["weights"]),
            args.version,
            imgsz=int(record["imgsz"]),
            ground_scale=dataset.ground_scale,
            base_config=record["base_config"],
            training_command=record["command"],
            training_data=training_data_summary(dataset),
            metrics=summary_metrics(cv, calibration=calibration),
            full_metrics=full,
            class_conf=calibration["class_conf"] if calibration else None,
            greyscale_input=bool(calibration and calibration.get("greyscale_input")),
            init=record.get("init"),
            repo_id=args.repo_id,
            git_repo=args.git_repo,
            endpoint=args.endpoint,
            token=args.token,
            manifest=args.manifest,
            ship=args.ship,
            make_default=args.default,
            exports=[
                ExportOptions(runtime=name, calibration=args.int8_calibration or args.dataset)
                for name in args.runtime or ()
            ],
            check_photos=default_check_photos() if args.runtime else (),
        )
    except (PublishError, TrainingError) as exc:
        raise SystemExit(f"publish: {exc}") from None
    print(json.dumps(published.__dict__, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
