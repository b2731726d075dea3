"""The model card of a published version: rendered from its metadata, and refreshed in its revision when the
manifest learns more about the version after publishing (its exports, each runtime's accuracy, the CPU default, a
cross-validation of its recipe run afterwards).

    python -m training.card --version v4 --git-repo /work/model-hub/models/sealion-counter/steller-sealions-yolov5
    python -m training.card --version v4 --git-repo ... --cv-dir /work/train-runs/cv-v4   # its own CV, run later

A refresh re-renders ``README.md`` from the revision's card metadata updated with the manifest's entry, commits it
on top of the version's tag (the weights and exports are unchanged, so their sha256 pins hold), moves the tag and
pins the new commit in the manifest.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from detector.classes import SEA_LION_SUBJECT, SEA_LION_TITLE
from detector.errors import DetectorError
from detector.versions.manifest import DEFAULT_MANIFEST, ModelVersion, add_version, load_manifest
from training.evaluate import epochs_text
from training.io import TrainingError
from training.records import Calibration, CVReport, Record, RevisionMetrics
from training.revision import PublishError, PublishTarget

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def render_card(meta: Mapping[str, Any], body: str) -> ModelCard:
    """A model card: YAML metadata (huggingface_hub's ModelCardData) plus a markdown body."""
    data = ModelCardData(**meta)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def card_body(meta: Mapping[str, Any], version: str) -> str:
    metrics = meta.get("metrics") or {}
    lines = [
        f"# {meta.get('title') or SEA_LION_TITLE} — YOLOv5 ({version})",
        "",
        f"Detects and counts {meta.get('subject') or SEA_LION_SUBJECT}, in "
        f"{NUMBER_WORDS.get(len(meta['class_names']), len(meta['class_names']))} classes: "
        + ", ".join(meta["class_names"])
        + ".",
        "",
        f"* Base config: `{meta['base_config']}` ({init_text(meta.get('init_weights'))}), image size {meta['imgsz']}, "
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
        *([f"* Trained: {run_text(meta['training_run'])}."] if meta.get("training_run") else []),
        f"* Training command: `{meta['training_command']}`",
    ]
    if meta.get("training_data_licence"):
        data_licence = meta["training_data_licence"]
        lines += ["", "## Training data: licence and citation", ""]
        lines += [f"* Licence: {data_licence['licence']}"] if data_licence.get("licence") else []
        lines += [f"* Cite: {data_licence['citation']}"] if data_licence.get("citation") else []
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
                f"| {name} | {r['format']} | {r['precision']} | {check_text(r.get('count_check') or {})} |"
                for name, r in meta["runtimes"].items()
            ],
            *accuracy_lines(meta),
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


def accuracy_lines(meta: Mapping[str, Any]) -> list[str]:
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
        f"mean per-class RMSE is {first['torch_mean_rmse_vs_official']}. The rule for a CPU default: "
        f"{first.get('rule', 'not recorded')} (`{meta.get('cpu_runtime') or 'torch'}`):",
        "",
        "| runtime | runs in | mean RMSE vs official | total MAE | largest total shift vs torch | s/photo | passes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[
            f"| {name} | {a['effective_precision']} | {a['mean_rmse_vs_official']} | {a['total_mae_vs_official']} | "
            f"{a['max_total_shift_vs_torch']:.1%} | {a['seconds_per_photo']} | {'yes' if a['passes'] else 'no'} |"
            for name, a in rows.items()
        ],
    ]


def check_text(check: Mapping[str, Any]) -> str:
    if not check:
        return "not checked"
    verdict = "within" if check.get("within_tolerance") else "outside"
    return f"{verdict} {check.get('tolerance', '1 %')} on {check.get('photos')} photos"


def init_text(init: Mapping[str, Any] | None) -> str:
    if not init:
        return "random init"
    return (
        f"initialised from `{Path(init['source']).name}` (sha256 `{init['sha256'][:12]}…`, "
        f"{init['matched']}/{init['total']} tensors copied)"
    )


def run_text(run: Mapping[str, Any]) -> str:
    """How long the published model trained, from its training record: "263 epochs in 1.80 h (time budget 1.8 h)"."""
    budget = f" (time budget {run['budget_hours']} h)" if run.get("budget_hours") else ""
    return f"{run['epochs']} epochs in {run['hours']:.2f} h{budget}"


def summary_metrics(
    cv: CVReport | None,
    holdout: Mapping[str, Any] | None = None,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """The compact metrics stored in the card front matter and the manifest (full numbers go to metrics.json)."""
    metrics: dict[str, Any] = {}
    if cv:
        metrics["cv_folds"] = len(cv.folds)
        ran = [fold.epochs_run for fold in cv.fold_training.values()]
        metrics["cv_epochs_per_fold"] = epochs_text(ran) if ran and None not in ran else cv.epochs_per_fold
        metrics["cv_photos"] = cv.cv.photos
        metrics["cv_competition_rmse"] = round(cv.cv.competition_rmse, 3)
        metrics["cv_rmse_per_class"] = cv.cv.rmse_per_class(3)
        metrics["cv_total_count_mae"] = round(cv.cv.total_mae, 3)
        metrics["baseline_training_mean_competition_rmse"] = round(cv.baseline_training_mean.competition_rmse, 3)
        metrics["cv_chip_map50"] = round(cv.mean_chip_map50, 4)
        metrics["conf"] = cv.conf
    if calibration:
        honest = calibration.metrics_calibrated_other_folds
        metrics["cv_calibrated_competition_rmse"] = round(honest.competition_rmse, 3)
        metrics["cv_calibrated_rmse_per_class"] = honest.rmse_per_class(3)
        metrics["cv_calibrated_total_relative_error"] = round(honest.total_relative_error, 4)
        metrics["baseline_rmse_per_class"] = calibration.baseline_training_mean.rmse_per_class(3)
    if holdout:
        metrics["holdout"] = holdout
    return metrics


def card_text(meta: Mapping[str, Any], version: str) -> str:
    """The whole card (metadata and body) as the revision's README.md holds it."""
    return render_card(meta, card_body(meta, version)).content


def refreshed_card(card: str, version: ModelVersion) -> str:
    """``card`` (a revision's README.md) with the version's manifest facts in its metadata and its body re-rendered
    from them. A card without the publish-time facts the body needs (an old or hand-written card) keeps its body."""
    current = ModelCard(card)
    meta = {**current.data.to_dict(), **version.to_card()}
    for key in ("runtimes", "cpu_runtime", "class_conf", "greyscale_input"):
        if key not in version.to_card():
            meta.pop(key, None)  # the manifest no longer has it: neither does the card
    if not {"base_config", "training_data", "training_command"} <= meta.keys():
        return f"---\n{ModelCardData(**meta).to_yaml()}\n---\n{current.text}"
    return card_text(meta, version.name)


def refresh_card(name: str, target: PublishTarget, manifest: Path = DEFAULT_MANIFEST) -> ModelVersion:
    """Re-render the card of manifest version ``name`` in its revision at ``target``; returns the version pinned to
    the new commit (also written to ``manifest``)."""
    version = load_manifest(manifest).get(name)
    return commit_card(version, target.for_repo(version.repo_id), manifest, f"sea lion counter {name}: model card")


def commit_card(
    version: ModelVersion,
    target: PublishTarget,
    manifest: Path,
    message: str,
    files: Mapping[str, Record] | None = None,
) -> ModelVersion:
    """Commit ``version``'s card, re-rendered from its facts, and ``files`` (records by file name) on top of its tag at
    ``target``; pin the new commit in ``manifest`` and return the version so pinned."""
    card = target.current_card(version)
    if card is None:
        where = f"{target.where} has no revision {version.revision!r} of {version.repo_id}"
        raise PublishError(f"{where}; publish it first (python -m training.publish)")
    with tempfile.TemporaryDirectory() as tmp:
        for filename, record in (files or {}).items():
            record.write(Path(tmp) / filename)
        commit = target.add_to_revision(Path(tmp), version.revision, message, refreshed_card(card, version))
    pinned = replace(version, commit=commit)
    add_version(manifest, pinned, make_default=load_manifest(manifest).default == version.name)
    return pinned


def attach_cv(name: str, target: PublishTarget, cv_dir: Path, manifest: Path = DEFAULT_MANIFEST) -> ModelVersion:
    """Give version ``name`` the cross-validation in ``cv_dir`` (``training.evaluate --cv``, and its ``--calibrate``
    when it has one), run after publishing: its folds replace the metrics the manifest, the revision's metrics.json
    and the card report. The weights and the thresholds it counts with stay as published; a calibration that would
    count with other thresholds needs a new version. Returns the version pinned to the new commit."""
    version = load_manifest(manifest).get(name)
    cv = CVReport.read_from(cv_dir)
    calibration_file = Calibration.file_in(cv_dir, version.greyscale_input)
    calibration = Calibration.read(calibration_file) if calibration_file.is_file() else None
    if calibration is not None and version.class_conf and dict(calibration.class_conf) != dict(version.class_conf):
        raise PublishError(
            f"{calibration_file} chooses the thresholds {dict(calibration.class_conf)}, but {name} counts with "
            f"{dict(version.class_conf)}: publish a new version to count with them (python -m training.release)"
        )
    target = target.for_repo(version.repo_id)
    known = target.current_file(version, RevisionMetrics.FILE)
    full = RevisionMetrics.from_json(known, RevisionMetrics.FILE) if known else RevisionMetrics()
    updated = replace(version, metrics=summary_metrics(cv, version.metrics.get("holdout"), calibration))
    files = {RevisionMetrics.FILE: full.changed(cross_validation=cv, calibration=calibration)}
    return commit_card(updated, target, manifest, f"sea lion counter {name}: cross-validation {cv_dir.name}", files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.card", description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="a version in the manifest, e.g. v4")
    parser.add_argument("--git-repo", type=Path, help="the local git model repo that holds the version's tag")
    parser.add_argument("--endpoint", help="a hub endpoint URL (huggingface_hub) instead of --git-repo")
    parser.add_argument("--token", help="hub token for --endpoint (default: huggingface_hub's)")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument(
        "--cv-dir", type=Path,
        help="also give the version this cross-validation of its recipe (cv_metrics.json, calibration.json)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.git_repo is None and args.endpoint is None:
        parser.error("say where the version's revision is: --git-repo DIR or --endpoint URL")
    try:
        target = PublishTarget(git_repo=args.git_repo, endpoint=args.endpoint, token=args.token)
        if args.cv_dir is not None:
            version = attach_cv(args.version, target, args.cv_dir, args.manifest)
        else:
            version = refresh_card(args.version, target, args.manifest)
    except (PublishError, TrainingError, DetectorError) as exc:
        raise SystemExit(f"card: {exc}") from None
    print(f"{version.name}: card refreshed in {version.repo_id}@{version.commit}", file=sys.stderr)
    print(version.commit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
