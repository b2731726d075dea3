"""Presentation helpers: tables, text and plot data the app shows for results and models."""

from __future__ import annotations

import csv
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pandas as pd

from detector.classes import SEA_LION_CLASSES, SEA_LION_SUBJECT, SEA_LION_TITLE, class_color
from detector.counting.records import Failure
from detector.counting.results import CountResult, ModelInfo
from detector.counting.uncertainty import CountUncertainty

if TYPE_CHECKING:
    from detector.counting.model import Detector
    from detector.versions.manifest import ModelVersion

SAMPLE_COUNTS_CSV = Path(__file__).resolve().parent / "data" / "noaa_sample_counts.csv"
COUNT_COLUMNS = ["class", "count", "typical error"]
THUMBNAIL_SIDE = 640
JPEG_MAX_SIDE = 65500  # the JPEG format cannot store a longer side


def hex_color(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def pretty(name: str) -> str:
    return name.replace("_", " ")


def plural(name: str) -> str:
    """A class name as animals in words: "adult males", "bulls"."""
    words = pretty(name)
    return words if words.endswith("s") else words + "s"


def and_list(words: Sequence[str]) -> str:
    """ "a, b and c"."""
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def is_sea_lion_version(class_names: Sequence[str]) -> bool:
    """Whether the app describes a version as the sea lion counter it was built as: the five sea lion classes (or
    a weights file whose classes are not known)."""
    return tuple(class_names) in ((), SEA_LION_CLASSES)


def heading_markdown(version: ModelVersion, class_names: Sequence[str]) -> str:
    """The app's heading for the chosen model version: its title (``title`` in its manifest entry or card) and what
    it counts (its ``subject``, and its classes). The sea lion versions keep the heading the app was built with."""
    names = tuple(class_names)
    sea_lions = is_sea_lion_version(names)
    names = names or SEA_LION_CLASSES
    title = version.title or (SEA_LION_TITLE if sea_lions else f"Animal counter: model version {version.name}")
    if version.subject and version.subject != SEA_LION_SUBJECT:
        what = f"Count {version.subject}, per class: {', '.join(pretty(n) for n in names)}."
    else:
        what = f"Count {and_list([plural(n) for n in names])} in aerial survey photos."
    return f"# {title}\n{what}"


def expected_errors(metrics: Mapping[str, Any]) -> CountUncertainty:
    """A model card's cross-validated count errors (:class:`CountUncertainty`; nothing known: empty)."""
    return CountUncertainty.from_metrics(metrics)


def counts_table(result: CountResult, errors: CountUncertainty | None = None) -> pd.DataFrame:
    """One row per class (all classes, zeros included) and a total row, each count with its typical error on a
    photo like this one (:meth:`CountUncertainty.photo_error`: it scales with the photo's count where the card says
    how)."""
    errors = errors or CountUncertainty()

    def error(name: str) -> str:
        value = errors.photo_error(name, result.counts)
        return f"± {value:.0f} per photo" if value is not None else "unknown"

    rows = [[pretty(name), count, error(name)] for name, count in result.counts.items()]
    rows.append(["total", result.total, ""])
    return pd.DataFrame(rows, columns=COUNT_COLUMNS)


def counts_label(errors: CountUncertainty) -> str:
    """The Count tab's table label: where its typical errors come from, or that the version has none."""
    if not errors.known:
        return "Counts per class (typical errors unknown: this model version has no cross-validated count errors)"
    return "Counts per class, with the typical error on survey photos the model never saw"


def status_line(result: CountResult, errors: CountUncertainty | None = None) -> str:
    """Elapsed time, device, model, tiling, scale and thresholds of one result, then any warnings, as Markdown;
    then what the table's typical errors are (``errors``: the version's; None or unknown: it has none)."""
    model = result.model
    version = f"model **{model.version}** (`{model.sha256[:12]}`, {model.source}, {result.runtime})" if model else ""
    width, height = result.image_size
    total_ms = result.timings_ms.get("total", 0.0)
    tiles = f"{result.tiles} tile{'s' if result.tiles != 1 else ''}"
    line = (
        f"**{result.total}** animals in {width}×{height} px · {total_ms / 1000:.2f} s on **{result.device}** · "
        f"{tiles} · {scale_text(result)} · {version} · {threshold_text(result)}"
    )
    warnings = "".join(f"\n\n⚠ **Check the scale:** {html.escape(w, quote=False)}" for w in result.warnings)
    note = (
        "\n\nCounts are estimates. The *typical error* column gives each class's root-mean-square count error on "
        "survey photos the model never saw (cross-validation, Model tab), for a photo with as many animals as this "
        "one: a count of 30 with ± 60 means the true number could well be zero or a hundred. Check the boxes."
    )
    if errors is None or not errors.known:
        model_name = f"Model version {model.version}" if model else "This model version"
        note = (
            f"\n\nCounts are estimates. {model_name} has no cross-validated count errors (its model card has no "
            "cross-validation), so its typical error is unknown: check the boxes."
        )
    return line + warnings + note


def failure_text(reason: str) -> str:
    """The Count tab's status when a photo cannot be counted: the reason, where the result would be (Markdown)."""
    return f"⚠ **Cannot count this photo.** {reason}\n\nUpload a photo (JPEG, PNG, TIFF, …) and press **Count**."


def scale_text(result: CountResult) -> str:
    """'scale auto: adult females ≈ 20 px (photo scale 0.25)' (the version's reference class: cows for elephant
    seals)."""
    if result.photo_scale is None:
        return "scale ?"
    reference = result.scale_reference
    if reference.length_px is None:
        return f"scale {result.scale_source or '?'}: photo scale {result.photo_scale:.3g}"
    length = reference.describe(result.photo_scale)
    return f"scale {result.scale_source or '?'}: {length} (photo scale {result.photo_scale:.3g})"


def threshold_text(result: CountResult) -> str:
    """How the confidence threshold was chosen: the version's calibrated per-class thresholds, or one for all."""
    values = set(result.conf.values())
    if len(values) == 1:
        return f"confidence ≥ {values.pop():.2f}"
    if (model := result.model) and model.class_conf and result.conf == dict(model.class_conf):
        return "calibrated threshold per class"
    return "threshold per class"


def settings_text(options: Any, detector: Detector, version: str | None = None, runtime: str | None = None) -> str:
    """What the Batch tab will use: the Count tab's settings, in words (``runtime`` None: the detector's)."""
    reference = detector.info.scale_reference
    if options.reference_length is not None:
        scale = f"{reference.animals} ≈ {options.reference_length:.0f} px in every photo"
    elif options.photo_scale is None:
        scale = "auto for each photo, from its size (the table and CSV show what each photo got)"
    else:
        scale = f"{reference.describe(options.photo_scale)} in every photo"
    conf = "the model's calibrated threshold per class" if options.conf is None else f"{options.conf:.2f} for all"
    tiles = f"{options.tile_size} px" if options.tile_size else f"the model's input ({detector.imgsz} px)"
    return (
        f"**Settings (from the Count tab):** model **{version or detector.info.version}** "
        f"({runtime or detector.runtime}) · scale: {scale} · "
        f"confidence: {conf} · IoU {options.iou:.2f} · tiles: {tiles}, slicing {options.slicing}, "
        f"tile gate {'on' if options.gate else 'off'}"
    )


def thumbnail(rgb: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """Shrink an RGB image so its longest side is at most ``side`` pixels."""
    height, width = rgb.shape[:2]
    factor = side / max(height, width)
    if factor >= 1:
        return rgb
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def fit_for_jpeg(rgb: np.ndarray) -> np.ndarray:
    """The annotated photo as shown: its own size, unless a side is too long for JPEG (then shrunk to fit)."""
    return thumbnail(rgb, JPEG_MAX_SIDE)


def batch_table(
    results: Sequence[CountResult], class_names: Sequence[str], errors: CountUncertainty | None = None
) -> pd.DataFrame:
    """One row per counted photo with per-class columns, each count with its typical error ("37 ± 60"), a class
    the version counts no better than guessing the mean marked ⚠ in its header; then a row of the sums over all
    photos with their range (:meth:`CountUncertainty.interval`)."""
    errors = errors or CountUncertainty()
    flagged = set(errors.worse_than_mean(class_names))
    headers = [f"{n} ⚠" if n in flagged else n for n in class_names]  # the CSV's column names
    columns = ["file", *headers, "total", "width", "height", reference_column(results), "scale", "seconds", "warnings"]

    def cell(name: str, result: CountResult) -> str:
        error = errors.photo_error(name, result.counts)
        count = result.counts[name]
        return f"{count} ± {error:.0f}" if error is not None else str(count)

    rows = [
        [
            r.source or "",
            *(cell(name, r) for name in r.counts),
            r.total,
            r.image_size[0],
            r.image_size[1],
            round(r.reference_px, 1) if r.reference_px is not None else "",
            r.scale_source or "",
            round(r.timings_ms.get("total", 0.0) / 1000, 2),
            " | ".join(r.warnings),
        ]
        for r in results
    ]
    if results:
        sums = {name: sum(r.counts[name] for r in results) for name in class_names}
        cells = []
        for name, count in sums.items():
            ends = errors.interval(name, [r.counts for r in results])
            cells.append(f"{count} ({ends[0]}–{ends[1]})" if ends else str(count))
        label = f"all {len(results)} photos" if len(results) > 1 else "the 1 photo"
        rows.append([label, *cells, sum(sums.values()), "", "", "", "", "", ""])
    return pd.DataFrame(rows, columns=columns)


def reference_column(results: Sequence[CountResult]) -> str:
    """The Batch table's column of the reference class's length: "female px" for sea lions, "cow px", ..."""
    reference = results[0].scale_reference if results else None
    if reference is None or reference.class_name == "adult_females":
        return "female px"
    return f"{reference.class_name} px" if reference.class_name else "reference px"


def batch_column_widths(classes: int) -> list[str]:
    """The Batch table's column widths: file, the classes, total, width, height, reference px, scale, seconds,
    warnings; they add up to the table's width, so every column, warnings last, is on screen at 1400 px and below
    (five sea lion classes: 9 % each; fewer classes share the same 45 %)."""
    share = 45 / max(1, classes)
    return ["11%", *[f"{share:g}%"] * classes, "5%", "5%", "5%", "5%", "5%", "5%", "14%"]


def batch_note(errors: CountUncertainty, class_names: Sequence[str]) -> str:
    """What the ± and ⚠ of :func:`batch_table` mean, for this model version."""
    if not errors.known:
        return "This model version has no cross-validated errors: its counts come without a typical error."
    flagged = errors.worse_than_mean(class_names)
    note = (
        f"± is each class's typical count error on a photo like that one (model {errors.version}, on survey photos "
        f"it never saw{': it grows with the photo’s count' if errors.scales else ''}). The last row sums all photos "
        "with a range of ± the sum of their errors: errors of photos from one colony do not cancel out."
    )
    if flagged:
        note += (
            f" ⚠ {', '.join(pretty(n) for n in flagged)}: this version counts them no better than guessing the "
            "training photos' average; treat those counts as rough and check the boxes."
        )
    return note


def failures_table(failures: Sequence[Failure]) -> pd.DataFrame:
    """One row per file that was not counted: file, reason."""
    return pd.DataFrame([[f.file, f.error] for f in failures], columns=["file", "error"])


def result_dict(result: CountResult, include_boxes: bool = True) -> dict[str, Any]:
    """:meth:`CountResult.to_dict` with the model's public form (:meth:`ModelInfo.public_dict`: file names only)."""
    data = result.to_dict(include_boxes=include_boxes)
    data["model"] = result.model.public_dict() if result.model else None
    return data


def model_info(detector: Detector) -> dict[str, Any]:
    """What the Model tab and ``/model_info`` report about a loaded detector."""
    info = detector.info
    version = detector.weights.version
    return {
        **info.public_dict(),
        "device": detector.device,
        "class_colors": {name: hex_color(class_color(name, i)) for i, name in enumerate(info.class_names)},
        "metrics": dict(version.metrics),
        "description": version.description,
        "load_seconds": round(detector.load_ms / 1000, 2),
        "cpu_runtime": version.cpu_runtime or "torch",
        "runtime_accuracy": runtime_accuracy(version),
    }


def runtime_accuracy(version: ModelVersion) -> dict[str, dict[str, Any]]:
    """Each runtime's counts against the official ones, as ``benchmarks.runtime_accuracy --update-manifest``
    recorded them (``count_check.accuracy``): why the CPU default is what it is. Empty where never measured."""
    found = {name: dict((r.count_check or {}).get("accuracy") or {}) for name, r in version.runtimes.items()}
    return {name: a for name, a in found.items() if a}


_SOURCES = {
    "shipped": "the file shipped with the app (weights/)",
    "cache": "the local Hugging Face cache",
    "hub": "downloaded from the model hub",
    "local": "a local file (SEALION_WEIGHTS / --weights)",
}


def model_markdown(data: dict[str, Any]) -> str:
    """Human summary of :func:`model_info`."""
    revision = f" / revision `{data['revision']}`" if data.get("revision") else ""
    lines = [
        f"### Model {data['version']}",
        "",
        "| field | value |",
        "| --- | --- |",
        f"| version (tag) | `{data['version']}`{revision} |",
        f"| hub repo | `{data.get('repo_id') or '-'}` |",
        f"| commit sha | `{data.get('commit') or '-'}` |",
        f"| weights sha256 | `{data['sha256']}` |",
        f"| loaded from | {data['source']}: {_SOURCES.get(data['source'], '')} |",
        f"| device | `{data['device']}` |",
        f"| runtime | `{data.get('runtime') or 'torch'}` |",
        f"| input size / trained photo scale | {data['imgsz']} px / {data['ground_scale']} |",
        f"| scale measured by | {reference_text(data)} |",
    ]
    lines += runtime_choice_lines(data)
    if data.get("greyscale_input"):
        lines.append("| colour | counts every photo as its greyscale copy (colour and greyscale copies count alike) |")
    if data.get("description"):
        lines += ["", data["description"]]
    lines += accuracy_lines(data)
    return "\n".join(lines)


def reference_text(data: dict[str, Any]) -> str:
    """How the version measures photo scale (:func:`model_info`'s reference fields), in words."""
    reference = ModelInfo.from_dict({"version": "", "sha256": "", "source": "", **data}).scale_reference
    if reference.length_px is None:
        return "no reference class: photos are counted at the resolution the model learned from (photo scale 1)"
    sides = " or ".join(f"{side} px" for side in reference.frame_sides)
    frames = f"; auto recognises frames {sides} wide and copies of them" if sides else ""
    return f"{reference.animals}, about {reference.length_px:g} px at photo scale 1{frames}"


def runtime_choice_lines(data: dict[str, Any]) -> list[str]:
    """A table row saying why the CPU runtime is the default: each measured runtime's error against the official
    counts next to torch's, and its speed."""
    measured = data.get("runtime_accuracy") or {}
    if not measured:
        return []
    first = next(iter(measured.values()))
    torch_rmse = first["torch_mean_rmse_vs_official"]
    parts = [
        f"{name} ({a['effective_precision']}) {a['mean_rmse_vs_official']:.1f} at {a['seconds_per_photo']:.2f} s/photo"
        f"{'' if a['passes'] else ', moves counts'}"
        for name, a in measured.items()
    ]
    return [
        f"| why `{data['cpu_runtime']}` on a CPU | the fastest runtime that counts as torch does against the official "
        f"counts (torch's mean per-class RMSE {torch_rmse:.1f}; rule: {first.get('rule', 'not recorded')}): "
        + "; ".join(parts)
        + " |"
    ]


def accuracy_lines(data: dict[str, Any]) -> list[str]:
    """Expected accuracy in sentences, then per class: threshold, cross-validated count error, guess-the-mean error."""
    metrics = data.get("metrics") or {}
    errors = CountUncertainty.from_metrics(metrics)
    rmse, baseline = errors.typical, errors.baseline
    thresholds = data.get("class_conf") or {}
    if not rmse and not thresholds:
        return []
    names = list(data.get("class_names") or [])
    lines = ["", "#### How accurate are the counts?", ""]
    if rmse:
        folds, photos = metrics.get("cv_folds", "?"), metrics.get("cv_photos", "?")
        typical = ", ".join(f"{pretty(n)} ± {rmse[n]:.0f}" for n in names if n in rmse)
        lines.append(
            f"On survey photos it never saw ({folds}-fold cross-validation over {photos} NOAA photos), this model's "
            f"count of each class was typically off by: {typical} animals per photo (root-mean-square error; those "
            "photos hold tens to hundreds of animals of the common classes)."
        )
        worse = [pretty(n) for n in errors.worse_than_mean(names)]
        better = [pretty(n) for n in names if n in rmse and n in baseline and pretty(n) not in worse]
        if better or worse:
            lines += ["", "Compared with always guessing the training photos' average count of each class: "]
            if better:
                lines[-1] += f"the model does better for {', '.join(better)}"
            if worse:
                lines[-1] += ("; " if better else "") + (
                    f"for {', '.join(worse)} it is not better than that guess, so treat those counts as rough "
                    "indications and check the boxes"
                )
            lines[-1] += "."
    lines += [
        "",
        "Each class is counted at its own confidence threshold, the one that counted best on unseen photos "
        "(confidence 0 in the Count tab). Lowering it adds false detections rather than finding missed animals.",
        "",
        "| class | threshold | typical count error on unseen photos | guessing the average |",
        "| --- | --- | --- | --- |",
    ]
    for name in names:
        threshold = f"{thresholds[name]:.2f}" if name in thresholds else "0.25"
        model = f"± {rmse[name]:.1f}" if name in rmse else "-"
        base = f"± {baseline[name]:.1f}" if name in baseline else "-"
        lines.append(f"| {pretty(name)} | {threshold} | {model} | {base} |")
    return lines


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Model-card metrics flattened to (metric, value) rows; nested dicts become dotted names."""
    rows: list[list[Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            rows.append([prefix, str(value)])  # as written in the card: 4 stays 4, 0.0489 stays 0.0489

    walk("", metrics)
    return pd.DataFrame(rows or [["(no metrics in the model card)", ""]], columns=["metric", "value"])


def classes_html(class_names: Sequence[str]) -> str:
    """Class list with colour swatches, as drawn on annotated photos."""
    items = []
    for i, name in enumerate(class_names):
        color = hex_color(class_color(name, i))
        items.append(
            f'<li><span style="display:inline-block;width:1em;height:1em;background:{color};'
            f'border:1px solid #333;vertical-align:middle;margin-right:.5em"></span>'
            f"{html.escape(pretty(name))} <code>{color}</code></li>"
        )
    return f"<ul style='list-style:none;padding-left:0'>{''.join(items)}</ul>"


def class_distribution(path: Path = SAMPLE_COUNTS_CSV) -> pd.DataFrame:
    """Total animals per class in the NOAA training sample, from the competition's official counts."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    classes = [c for c in rows[0] if c != "train_id"] if rows else []
    totals = [sum(int(row[c]) for row in rows) for c in classes]
    return pd.DataFrame({"class": [pretty(c) for c in classes], "animals": totals})


def class_color_map(class_names: Sequence[str]) -> dict[str, str]:
    return {pretty(name): hex_color(class_color(name, i)) for i, name in enumerate(class_names)}
