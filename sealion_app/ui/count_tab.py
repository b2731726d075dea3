"""The Count tab and the ``/count`` and ``/count_data`` endpoints: one photo, its annotated copy, counts and JSON."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from sealion_app import present
from sealion_app.models import ModelRegistry
from sealion_app.service import count_to_file, photo_jpeg, prune_old_batches
from sealion_app.ui.components import PhotoInput
from sealion_app.ui.controls import (
    CountControls,
    CountSettings,
    SharedControls,
    detection_controls,
    length_control,
    takes_count_settings,
)
from sealion_app.ui.inspect import BOXES_JS, ZOOM_PRESETS, zoom_js


@dataclass(frozen=True)
class CountTab:
    """What the other tabs use of the Count tab: its photo, its result, and the count controls."""

    image: PhotoInput
    result_json: gr.JSON
    controls: CountControls


def build_count_tab(
    registry: ModelRegistry,
    shared: SharedControls,
    examples: Sequence[Path],
    batch_dir: Path,
    count_workers: int,
    guard: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> CountTab:
    """The Count tab (inside ``gr.Tabs``); ``guard`` maps failures to one-line gr.Errors."""

    @guard
    @takes_count_settings
    def count(image: str | None, settings: CountSettings):
        """Count sea lions in one photo: annotated JPEG, per-class counts table, JSON result, status line.

        ``female_length_px``: how long the version's reference class is in the photo, in pixels (sea lions: an adult
        female; elephant seals: a cow); 0 = auto from the photo's size.
        """
        if not image:
            raise gr.Error("Upload a photo (or pick an example) first.", print_exception=False)
        detector = settings.detector(registry)
        path = Path(image)
        options = settings.options()
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
            present.status_line(result, errors),
        )

    @guard
    @takes_count_settings
    def count_data(image: str | None, settings: CountSettings) -> dict:
        """Counts and boxes only, no annotated photo: the lean API path for scripts (``/count_data``).

        The same inputs as ``/count``; returns its JSON result (the third output of ``/count``).
        """
        if not image:
            raise gr.Error("Send a photo.", print_exception=False)
        detector = settings.detector(registry)
        path = Path(image)
        return present.result_dict(detector.count(path, settings.options(), source=path.name))

    def count_shown(*args: Any) -> tuple[Any, ...]:
        """The Count button: :func:`count`, with a failure's reason shown where the result would be (a toast
        fades; the API's ``/count`` still raises it) and the photo input cleared of a file it cannot show."""
        try:
            return (*count(*args), gr.skip())
        except gr.Error as exc:
            return None, None, None, present.failure_text(str(exc.message)), None

    @guard
    def inspection(image: str | None, annotated_jpeg: str | None):
        """The slider's pair, (photo, counted photo), both full size; the photo as the detector decoded it."""
        if not image or not annotated_jpeg:
            return None
        return str(photo_jpeg(Path(image), batch_dir)), annotated_jpeg

    with gr.Tab("Count", id="count"):
        with gr.Row():
            with gr.Column(scale=1):
                image = PhotoInput(
                    type="filepath", label="Photo", sources=["upload", "clipboard"], elem_id="photo-input"
                )
                controls = detection_controls(shared, registry.scale_reference())
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
                    "Counted photo, full resolution: **scroll to zoom** or use the zoom buttons, **drag to pan**, "
                    "untick **Show boxes** to see the animals under the boxes (at any zoom), or drag the bar from "
                    "the left edge to compare the counted photo with the photo itself.",
                    elem_id="inspect-hint",
                )
                with gr.Row(equal_height=True, elem_id="inspect-controls"):
                    show_boxes = gr.Checkbox(
                        True, label="Show boxes", container=False, scale=2, min_width=120, elem_id="show-boxes"
                    )
                    for zoom in ZOOM_PRESETS:
                        gr.Button(
                            "Whole photo" if zoom == 1 else f"Zoom {zoom}×",
                            size="sm",
                            scale=1,
                            min_width=100,
                            elem_id=f"zoom-{zoom}",
                        ).click(None, js=zoom_js(zoom), api_visibility="private")
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
                    label=present.counts_label(present.expected_errors(registry.model_version().metrics)),
                    interactive=False,
                    elem_id="counts-table",
                )
                with gr.Accordion("JSON result", open=False):
                    result_json = gr.JSON(label="Result")
        count_button.click(
            count_shown,
            inputs=[image, *controls.inputs],
            outputs=[annotated, counts, result_json, status, image],
            api_visibility="private",
            concurrency_id="count",
            concurrency_limit=count_workers,
        ).success(inspection, inputs=[image, annotated], outputs=inspect, api_visibility="private")
        # The API's /count: the same handler, a failure raised to the caller (gradio_client's AppError).
        gr.Button(visible=False).click(
            count,
            inputs=[image, *controls.inputs],
            outputs=[annotated, counts, result_json, status],
            api_name="count",
            concurrency_id="count",
            concurrency_limit=count_workers,
        )
        # The lean API path: the same inputs, the JSON result only (no overlay to draw, encode and download).
        data_only = gr.JSON(visible=False)
        gr.Button(visible=False).click(
            count_data,
            inputs=[image, *controls.inputs],
            outputs=data_only,
            api_name="count_data",
            concurrency_id="count",
            concurrency_limit=count_workers,
        )
        show_boxes.change(None, inputs=show_boxes, js=BOXES_JS, api_visibility="private")  # in the page only
        # A new photo starts at auto scale: a length typed for the previous photo must not carry over.
        image.change(lambda: 0, outputs=controls.female_length, api_visibility="private")
        # Another version: the length setting names its reference class (adult females, cows) and resets to auto;
        # the table's label says whether the version's typical errors are known.
        shared.model_version.change(
            lambda version: (
                gr.Number(value=0, **length_control(registry.scale_reference(version))),
                gr.Dataframe(
                    label=present.counts_label(present.expected_errors(registry.model_version(version).metrics))
                ),
            ),
            inputs=shared.model_version,
            outputs=[controls.female_length, counts],
            api_visibility="private",
        )
    return CountTab(image, result_json, controls)
