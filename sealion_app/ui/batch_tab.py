"""The Batch tab and the ``/count_batch`` endpoint: many photos and .zip archives, counted with the Count tab's
settings into a table, a CSV, a gallery and a list of the files that failed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from detector.counting.uncertainty import CountUncertainty
from detector.settings import CountOptions
from detector.versions.runtimes import DEFAULT_RUNTIME
from sealion_app import present
from sealion_app.geo import write_geojson_file
from sealion_app.models import ModelRegistry
from sealion_app.service import count_batch, prune_old_batches
from sealion_app.ui.controls import CountControls, CountSettings, takes_count_settings


def build_batch_tab(
    registry: ModelRegistry,
    controls: CountControls,
    batch_dir: Path,
    guard: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> None:
    """The Batch tab (inside ``gr.Tabs``), counting with ``controls`` (the Count tab's)."""
    default = registry.default

    @guard
    @takes_count_settings
    def count_many(
        files: list[str] | None,
        settings: CountSettings,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's documented way to receive a tracker
    ):
        """Count every photo in the uploaded files and .zip archives; bad files are listed with their reason."""
        if not files:
            raise gr.Error("Upload photos or a .zip of photos first.", print_exception=False)
        detector = settings.detector(registry)
        started = time.perf_counter()

        def report(done: int, total: int, name: str) -> None:
            progress((done, total), desc=f"counting {name}" if done < total else "done", unit="photos")

        prune_old_batches(batch_dir)
        outcome = count_batch(detector, [str(f) for f in files], settings.options(), progress=report, out_dir=batch_dir)
        errors = CountUncertainty.of(detector.weights.version)
        table = present.batch_table(outcome.results, detector.class_names, errors)  # the version's class columns
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
        summary += "\n\n" + present.batch_note(errors, detector.class_names)
        csv_path = str(outcome.csv_path) if outcome.csv_path else None
        return table, failures, csv_path, outcome.thumbnails, outcome.summary(), summary

    def show_settings(*values: Any) -> str:
        """The settings line above the batch: what a batch would count with now."""
        settings = CountSettings(*values)
        try:
            options = settings.options()
        except (gr.Error, ValueError):
            return "Settings: the reference length must be 0 (auto) or a positive number of pixels."
        version = settings.model_version or registry.default_version
        runtime = settings.runtime
        shown = registry.get(version, runtime) if registry.is_loaded(version, runtime) else None
        chosen = shown.runtime if shown else runtime or DEFAULT_RUNTIME
        return present.settings_text(options, shown or default, version=version, runtime=chosen)

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
            present.batch_table([], default.class_names, CountUncertainty.of(default.weights.version)),
            label="Counts per photo",
            interactive=False,
            wrap=True,  # a long warning wraps in its cell instead of pushing the column out of sight
            column_widths=present.batch_column_widths(len(default.class_names)),
            elem_id="batch-table",
        )
        batch_errors = gr.Dataframe(
            headers=["file", "error"], label="Files not counted", interactive=False, elem_id="batch-errors"
        )
        batch_csv = gr.File(label="CSV (one row per photo)", interactive=False, elem_id="batch-csv")
        batch_geojson = gr.File(
            label="GeoJSON (one point per animal, from GeoTIFF uploads)", interactive=False, elem_id="batch-geojson"
        )
        gallery = gr.Gallery(label="Annotated photos", columns=4, format="jpeg", height="auto", elem_id="batch-gallery")
        with gr.Accordion("JSON result", open=False):
            batch_json = gr.JSON(label="Batch result")
        batch_button.click(
            count_many,
            inputs=[files, *controls.inputs],
            outputs=[batch_table, batch_errors, batch_csv, gallery, batch_json, batch_status],
            api_name="count_batch",
            concurrency_id="batch",
            concurrency_limit=1,
            show_progress_on=[batch_table],  # one progress bar, on the table it fills (not one per output)
        ).then(  # the API has the animals in the JSON result (animals_geojson); the page offers them as a file
            lambda summary: write_geojson_file((summary or {}).get("animals_geojson"), batch_dir),
            inputs=batch_json, outputs=batch_geojson, api_visibility="private",
        )  # fmt: skip
        for control in controls.inputs:
            control.change(show_settings, inputs=controls.inputs, outputs=batch_settings, api_visibility="private")
