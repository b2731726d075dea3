"""The app's Blocks: the Count, Batch, Model and About tabs and the named API endpoints over :mod:`detector`.

Endpoints (docs/app.md): ``/count``, ``/count_batch``, ``/model_info``, ``/review`` (the Review tab's). Started by
:mod:`sealion_app.main`.
"""

from __future__ import annotations

import functools
import html
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from detector.errors import DetectorError
from detector.scale import ADULT_FEMALE_LENGTH_PX, scale_from_female_length
from detector.settings import (
    DEFAULT_GATE,
    DEFAULT_IOU,
    DEFAULT_RUNTIME,
    DEFAULT_SLICING,
    SLICING_CHOICES,
    CountOptions,
    gate_arg,
)
from sealion_app import present
from sealion_app.components import Blocks, PhotoInput, api_optional
from sealion_app.models import ModelRegistry
from sealion_app.review_tab import build_review_tab
from sealion_app.service import count_batch, count_to_file, photo_jpeg, prune_old_batches

logger = logging.getLogger("sealion_app")

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"  # installed: the package copy
if not EXAMPLES_DIR.is_dir():
    EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"  # a checkout: examples/ at the top

ABOUT_MD = """
## What it does

The app counts **Steller sea lions** in aerial survey photographs, per class: adult males, subadult males,
adult females, juveniles and pups. It is built for the NOAA Fisheries survey photos (about 4992×3328 px each).

## How it works

1. **Dots → boxes.** Biologists marked every animal in the training photos with a coloured dot, one colour per
   class. Each dot becomes a box of the class's typical body size (about 120 px for an adult male down to 40 px
   for a pup at native resolution).
2. **YOLOv5.** A YOLOv5 detector (trained with `ultralytics`) learns those boxes on tiles cut from the photos.
3. **Scale and tiles.** A survey photo is far larger than the network's input, and a pup is only a few dozen
   pixels long, so the photo is resized until its animals are as large as in the photos the model learned from,
   then cut into overlapping tiles. How large is that? The **adult female length** setting says how long an
   adult female is in your photo, in pixels (about 80 in a NOAA survey original, 20 in a copy downsampled 4×).
   Leave it at 0 (**auto**) and the app derives it from the photo's size, assuming the photo is a whole survey
   frame or a copy downsampled 2, 3, 4, 6, 8 or 16×; it says what it used, and warns when the size is unusual or a
   manual length is far from auto's. For a crop of a survey photo, measure one adult female and enter it.
4. **Counts.** Detections from all tiles are merged (duplicates in the overlaps removed) and counted per class,
   each class at its own confidence threshold: the one that counted best on photos the model never saw
   (cross-validation). A confidence above 0 in the settings replaces them with one threshold for every class.

The annotated photo shows one box per detected animal in its class colour, with the counts in the corner; drag
the slider to compare it with the photo, scroll to zoom in (up to 15×, enough to see every box of a survey
photo at full resolution) and drag to pan. Counts are estimates: next to each count the app gives that class's
typical error on survey photos the model never saw (cross-validation); check the boxes. Leave the confidence at 0:
lowering it does not find the missed animals, it adds false detections (on a photo with 22 animals, confidence
0.05 reported 166).

## Training data

The plot shows how many animals of each class the 17 NOAA sample photos hold, from the competition's official
counts (`counts.csv`). The shipped model was trained on these photos, and the examples are among them, so counts on
the examples are in-sample; the Model tab gives the cross-validated error. Adult females and pups dominate; adult
and subadult males are rare, so the model sees far fewer examples of them.
"""

RUNTIME_INFO = (
    "auto: the version's checked CPU export on a CPU, torch on a GPU · torch: the PyTorch weights · openvino-f32: "
    "OpenVINO in fp32, counts as torch's · openvino: the CPU's fastest precision (bf16 where it has it), counts "
    "may move by an animal or two. Other runtimes load on first use."
)


def _safe(message: str) -> str:
    """gr.Error renders HTML: escape file names and reasons that come from users."""
    return html.escape(message, quote=False)


def human_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Map every failure of a handler to a gr.Error with one human sentence; the server keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except DetectorError as exc:
            raise gr.Error(_safe(str(exc)), title="Cannot count this", print_exception=False) from exc
        except MemoryError as exc:
            raise gr.Error("The photo is too large to process on this server; try a smaller one.") from exc
        except Exception as exc:
            logger.exception("Unexpected failure in %s", fn.__name__)
            message = f"Unexpected {type(exc).__name__} while processing the request ({exc}); the server keeps running."
            raise gr.Error(_safe(message)) from exc

    return wrapper


def _options(
    conf: float,
    iou: float,
    slicing: str,
    tile_size: float | None,
    female_length_px: float,
    gate: str | bool = DEFAULT_GATE,
) -> CountOptions:
    """The count settings of the UI's inputs. ``gate``: hook for the Advanced accordion's tile-gate choice (on/off)."""
    try:
        photo_scale = scale_from_female_length(float(female_length_px)) if female_length_px else None  # 0: auto
    except ValueError as exc:
        raise gr.Error(f"Adult female length: {exc} (or 0 for auto).", print_exception=False) from None
    return CountOptions(
        conf=float(conf) if conf else None,  # 0: the model version's calibrated per-class thresholds
        iou=float(iou),
        slicing=str(slicing or DEFAULT_SLICING),
        tile_size=int(tile_size) if tile_size else None,
        photo_scale=photo_scale,
        gate=gate_arg(gate),
    )


def build_demo(registry: ModelRegistry, count_workers: int = 2, reviews_dir: Path | None = None) -> gr.Blocks:
    """The UI and its API endpoints, over one shared model registry.

    Concurrency: ``count_workers`` single-photo counts run at once (they take turns on the model one tile batch at
    a time, so a large photo delays a small one by a batch, not by its whole count); batches run one at a time on
    their own queue, so a batch never holds up single photos for longer than one of its photos' tile batches.
    Saved reviews go to ``reviews_dir`` (default: ``reviews/`` in the app's temporary folder).
    """
    default = registry.default
    default_info = present.model_info(default)
    batch_dir = Path(tempfile.mkdtemp(prefix="sealion-app-"))  # batch thumbnails and CSVs, pruned after a day

    @human_errors
    def count(
        image: str | None,
        conf: float = 0.0,
        iou: float = DEFAULT_IOU,
        slicing: str = DEFAULT_SLICING,
        tile_size: float = 0,
        female_length_px: float = 0,
        model_version: str = "",
        runtime: str = "",
    ):
        """Count sea lions in one photo: annotated JPEG, per-class counts table, JSON result, status line.

        ``female_length_px``: how long an adult female is in the photo, in pixels; 0 = auto from the photo's size.
        """
        if not image:
            raise gr.Error("Upload a photo (or pick an example) first.", print_exception=False)
        detector = registry.get(model_version, runtime)
        path = Path(image)
        options = _options(conf, iou, slicing, tile_size, female_length_px)
        prune_old_batches(batch_dir)
        # Files of our own, not arrays: Gradio rewrites an array's cache file in place (same name for the same
        # picture), so a client downloading it while another request draws the same photo got a truncated JPEG;
        # a file is copied into the cache once, atomically (gradio.processing_utils.save_file_to_cache).
        annotated_jpeg, result = count_to_file(detector, path, path.name, options, batch_dir)
        errors = present.expected_errors(detector.weights.version.metrics)
        return (
            str(annotated_jpeg),
            present.counts_table(result, errors),
            present.result_dict(result),
            present.status_line(result),
        )

    @human_errors
    def count_data(
        image: str | None,
        conf: float = 0.0,
        iou: float = DEFAULT_IOU,
        slicing: str = DEFAULT_SLICING,
        tile_size: float = 0,
        female_length_px: float = 0,
        model_version: str = "",
        runtime: str = "",
    ) -> dict:
        """Counts and boxes only, no annotated photo: the lean API path for scripts (``/count_data``).

        The same inputs as ``/count``; returns its JSON result (the third output of ``/count``).
        """
        if not image:
            raise gr.Error("Send a photo.", print_exception=False)
        detector = registry.get(model_version, runtime)
        path = Path(image)
        result = detector.count(path, _options(conf, iou, slicing, tile_size, female_length_px), source=path.name)
        return present.result_dict(result)

    @human_errors
    def inspection(image: str | None, annotated_jpeg: str | None):
        """The slider's pair, (photo, counted photo), both full size; the photo as the detector decoded it."""
        if not image or not annotated_jpeg:
            return None
        return str(photo_jpeg(Path(image), batch_dir)), annotated_jpeg

    @human_errors
    def count_many(
        files: list[str] | None,
        conf: float = 0.0,
        iou: float = DEFAULT_IOU,
        slicing: str = DEFAULT_SLICING,
        tile_size: float = 0,
        female_length_px: float = 0,
        model_version: str = "",
        runtime: str = "",
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's documented way to receive a tracker
    ):
        """Count every photo in the uploaded files and .zip archives; bad files are listed with their reason."""
        if not files:
            raise gr.Error("Upload photos or a .zip of photos first.", print_exception=False)
        detector = registry.get(model_version, runtime)
        started = time.perf_counter()

        def report(done: int, total: int, name: str) -> None:
            progress((done, total), desc=f"counting {name}" if done < total else "done", unit="photos")

        prune_old_batches(batch_dir)
        options = _options(conf, iou, slicing, tile_size, female_length_px)
        outcome = count_batch(detector, [str(f) for f in files], options, progress=report, out_dir=batch_dir)
        table = present.batch_table(outcome.results, detector.class_names)
        failures = present.failures_table(outcome.failures)
        elapsed = time.perf_counter() - started
        summary = (
            f"Counted **{len(outcome.results)}** photo(s), **{len(outcome.failures)}** file(s) failed · "
            f"{elapsed:.1f} s on **{detector.device}** · model **{detector.info.version}** ({detector.runtime})"
        )
        doubtful = sum(1 for result in outcome.results if result.warnings)
        if doubtful:
            summary += f" · ⚠ **{doubtful}** photo(s) with a warning about the scale (see the warnings column)"
        if len(outcome.results) > len(outcome.thumbnails):
            summary += f" · gallery shows the first {len(outcome.thumbnails)} photos (all are in the table and CSV)"
        csv_path = str(outcome.csv_path) if outcome.csv_path else None
        return table, failures, csv_path, outcome.thumbnails, outcome.summary(), summary

    @human_errors
    def model_info(model_version: str = "", runtime: str = "") -> dict:
        """The model version as loaded with a runtime: tag, commit sha, sha256, source, classes and colours, device,
        runtime, metrics."""
        return present.model_info(registry.get(model_version, runtime))

    @human_errors
    def show_model(model_version: str, runtime: str = ""):
        data = present.model_info(registry.get(model_version, runtime))
        return (
            present.model_markdown(data),
            present.classes_html(data["class_names"]),
            present.metrics_table(data["metrics"]),
            data,
        )

    examples = sorted(EXAMPLES_DIR.glob("*.jpg"))
    distribution = present.class_distribution()

    def runtime_choices(model_version: str, runtime: str) -> gr.Dropdown:
        """The runtime chooser for another version: its runtimes, the current choice kept when it has it."""
        offered = registry.runtime_choices(model_version)
        return gr.Dropdown(choices=offered, value=runtime if runtime in offered else DEFAULT_RUNTIME)

    with Blocks(title="Sea lion counter", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as demo:
        gr.Markdown(
            "# Steller sea lion counter\nCount adult males, subadult males, adult females, juveniles and pups "
            "in aerial survey photos."
        )
        with gr.Row():
            model_version = gr.Dropdown(
                registry.choices(),
                value=registry.default_label,
                label="Model version",
                info="From weights/manifest.yaml; other versions load on first use.",
                interactive=True,
            )
            runtime = api_optional(
                gr.Dropdown(
                    registry.runtime_choices(),
                    value=DEFAULT_RUNTIME,
                    label="Runtime",
                    info=RUNTIME_INFO,
                    interactive=True,
                    allow_custom_value=True,  # API callers' unknown names get the registry's clear error
                    elem_id="runtime",
                )
            )
        with gr.Tabs():
            with gr.Tab("Count", id="count"):
                with gr.Row():
                    with gr.Column(scale=1):
                        image = PhotoInput(
                            type="filepath", label="Photo", sources=["upload", "clipboard"], elem_id="photo-input"
                        )
                        with gr.Accordion("Detection settings", open=True):
                            conf = gr.Slider(
                                0,
                                0.99,
                                value=0,
                                step=0.01,
                                label="Confidence threshold",
                                info="0 = the model's calibrated threshold per class (counts best on unseen photos)",
                            )
                            iou = gr.Slider(0.05, 0.95, value=DEFAULT_IOU, step=0.05, label="IoU threshold (NMS)")
                            slicing = gr.Radio(
                                list(SLICING_CHOICES),
                                value=DEFAULT_SLICING,
                                label="Sliced inference",
                                info="auto: tile photos larger than a tile; on: always; off: whole photo at once",
                            )
                            tile_size = gr.Slider(
                                0,
                                2048,
                                value=0,
                                step=32,
                                label="Tile size (px)",
                                info=f"0 = the model's input size ({default.imgsz} px)",
                            )
                            female_length = gr.Number(
                                value=0,
                                minimum=0,
                                maximum=2000,
                                step=1,
                                label="Adult female length in this photo (px)",
                                info=f"0 = auto, from the photo's size (a survey original: about "
                                f"{ADULT_FEMALE_LENGTH_PX} px, a copy downsampled 4x: about "
                                f"{ADULT_FEMALE_LENGTH_PX // 4}). Set it for crops. Resets to auto for a new photo.",
                                elem_id="female-length",
                            )
                        count_button = gr.Button("Count", variant="primary")
                        if examples:
                            gr.Examples(
                                [[str(p)] for p in examples],
                                inputs=[image],
                                label="Examples: NOAA training-sample photos, downsampled 4x",
                                cache_examples=False,
                            )
                    with gr.Column(scale=2):
                        gr.Markdown(
                            "Counted photo, full resolution: **scroll to zoom** (up to 15×), **drag to pan**, drag "
                            "the bar from the left edge to compare with the photo itself.",
                            elem_id="inspect-hint",
                        )
                        inspect = gr.ImageSlider(
                            label="Photo | counted",
                            show_label=False,  # a floating label would hide the top of the counts legend
                            format="jpeg",
                            type="filepath",
                            interactive=False,
                            slider_position=0,  # the counted photo first; drag right to see the photo itself
                            max_height=900,
                            elem_id="inspect-image",
                        )
                        annotated = gr.Image(  # the API's annotated JPEG; the slider above shows it in the UI
                            format="jpeg", type="filepath", interactive=False, visible=False, elem_id="annotated-image"
                        )
                        status = gr.Markdown(elem_id="count-status")
                        counts = gr.Dataframe(
                            headers=present.COUNT_COLUMNS,
                            label="Counts per class, with the typical error on survey photos the model never saw",
                            interactive=False,
                            elem_id="counts-table",
                        )
                        with gr.Accordion("JSON result", open=False):
                            result_json = gr.JSON(label="Result")
                count_button.click(
                    count,
                    inputs=[image, conf, iou, slicing, tile_size, female_length, model_version, runtime],
                    outputs=[annotated, counts, result_json, status],
                    api_name="count",
                    concurrency_id="count",
                    concurrency_limit=count_workers,
                ).success(inspection, inputs=[image, annotated], outputs=inspect, api_visibility="private")
                # The lean API path: the same inputs, the JSON result only (no overlay to draw, encode and download).
                data_only = gr.JSON(visible=False)
                gr.Button(visible=False).click(
                    count_data,
                    inputs=[image, conf, iou, slicing, tile_size, female_length, model_version, runtime],
                    outputs=data_only,
                    api_name="count_data",
                    concurrency_id="count",
                    concurrency_limit=count_workers,
                )
                # A new photo starts at auto scale: a length typed for the previous photo must not carry over.
                image.change(lambda: 0, outputs=female_length, api_visibility="private")

            with gr.Tab("Batch", id="batch"):
                gr.Markdown(
                    "Upload many photos, or .zip archives of photos. Every photo is counted with the settings of the "
                    "Count tab; files that cannot be read are listed with the reason."
                )
                batch_settings = gr.Markdown(present.settings_text(CountOptions(), default), elem_id="batch-settings")
                files = gr.File(file_count="multiple", label="Photos and .zip archives", elem_id="batch-files")
                batch_button = gr.Button("Count all", variant="primary")
                batch_status = gr.Markdown(elem_id="batch-status")
                batch_table = gr.Dataframe(
                    present.batch_table([], default.class_names),
                    label="Counts per photo",
                    interactive=False,
                    elem_id="batch-table",
                )
                batch_errors = gr.Dataframe(
                    headers=["file", "error"], label="Files not counted", interactive=False, elem_id="batch-errors"
                )
                batch_csv = gr.File(label="CSV (one row per photo)", interactive=False, elem_id="batch-csv")
                gallery = gr.Gallery(
                    label="Annotated photos", columns=4, format="jpeg", height="auto", elem_id="batch-gallery"
                )
                with gr.Accordion("JSON result", open=False):
                    batch_json = gr.JSON(label="Batch result")
                batch_button.click(
                    count_many,
                    inputs=[files, conf, iou, slicing, tile_size, female_length, model_version, runtime],
                    outputs=[batch_table, batch_errors, batch_csv, gallery, batch_json, batch_status],
                    api_name="count_batch",
                    concurrency_id="batch",
                    concurrency_limit=1,
                )

                settings_inputs = [conf, iou, slicing, tile_size, female_length, model_version, runtime]

                def show_settings(conf, iou, slicing, tile_size, female_length_px, model_version, runtime):
                    try:
                        options = _options(conf, iou, slicing, tile_size, female_length_px)
                    except (gr.Error, ValueError):
                        return "Settings: the adult female length must be 0 (auto) or a positive number of pixels."
                    label = model_version or registry.default_label
                    shown = registry.get(label, runtime) if registry.is_loaded(label, runtime) else None
                    chosen = shown.runtime if shown else runtime or DEFAULT_RUNTIME
                    return present.settings_text(options, shown or default, version=label, runtime=chosen)

                for setting in settings_inputs:
                    setting.change(
                        show_settings, inputs=settings_inputs, outputs=batch_settings, api_visibility="private"
                    )

            build_review_tab(
                registry, image, result_json, batch_dir, reviews_dir or batch_dir / "reviews", human_errors
            )

            with gr.Tab("Model", id="model"):
                model_md = gr.Markdown(present.model_markdown(default_info))
                gr.Markdown("#### Classes and their colours on annotated photos")
                classes = gr.HTML(present.classes_html(default_info["class_names"]))
                with gr.Accordion("Model card metrics (raw)", open=False):
                    metrics = gr.Dataframe(
                        present.metrics_table(default_info["metrics"]), label="Model card metrics", interactive=False
                    )
                with gr.Accordion("Raw model info", open=False):
                    info_json = gr.JSON(default_info)
                show_chosen: dict[str, Any] = {
                    "fn": show_model,
                    "inputs": [model_version, runtime],
                    "outputs": [model_md, classes, metrics, info_json],
                    "api_visibility": "private",
                    "concurrency_id": "model_load",
                }
                # Another version: its runtimes first (the choice reset to auto if it has no such one), then its info.
                model_version.change(
                    runtime_choices, inputs=[model_version, runtime], outputs=runtime, api_visibility="private"
                ).then(**show_chosen)
                runtime.input(**show_chosen)

            with gr.Tab("About / data", id="about"):
                gr.Markdown(ABOUT_MD)
                gr.BarPlot(
                    distribution,
                    x="class",
                    y="animals",
                    color="class",
                    color_map=present.class_color_map(default.class_names),
                    sort=list(distribution["class"]),
                    y_lim=[0, None],  # bars start at zero, so rare classes do not look absent
                    title=f"Animals per class in the NOAA training sample ({distribution['animals'].sum()} in total)",
                    label="Class distribution (official counts.csv)",
                )

        gr.api(model_info, api_name="model_info", concurrency_id="model_load")
    return demo
