"""The Review tab and the ``/review`` endpoint: correct a count's boxes, save the review, export it.

The photo's detections become editable boxes in ``gradio_image_annotation``'s annotator (draw, move, resize,
relabel, delete; scroll to zoom, drag to pan). The work is in :mod:`sealion_app.review`; this module is the wiring,
called by :func:`sealion_app.ui.demo.build_demo` inside its tabs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
from gradio_image_annotation import image_annotator

from detector.classes import SEA_LION_CLASSES, class_color
from detector.settings import CountOptions
from sealion_app import present
from sealion_app import review as service
from sealion_app.models import ModelRegistry
from sealion_app.service import photo_jpeg, prune_old_batches
from sealion_app.ui.components import PhotoInput

REVIEW_HINT = (
    "Count a photo in the **Count** tab, then correct its boxes here. **Delete** a false detection: click it, press "
    "Delete (or the bin button under the photo). **Add** a missed animal: press **C** (create mode, or the box "
    "button), drag a box, pick its class. **Change a class**: double-click the box (or select it and press E). **D** "
    "returns to drag mode (move/resize). **Scroll to zoom, drag the background to pan**, Space resets the view. "
    "Labels: male, subadult (male), female, juvenile, pup; where they would pile onto each other (clustered "
    "animals) they start hidden (the box colour is the class): tick **Show class labels** to see them. A new box "
    "starts as a female, the most numerous class, then as the class you last picked. "
    "The counts below follow every edit; **Save review** stores it and gives the corrected counts and the training "
    "files."
)


def _legend(labels: list[str], colors: list[tuple[int, int, int]]) -> str:
    """Colour swatches naming each class: what a box's colour means while labels are hidden."""
    swatches = "".join(
        f'<span style="margin-right:1em;white-space:nowrap"><span style="display:inline-block;width:0.9em;'
        f'height:0.9em;border:2px solid rgb{color};margin-right:0.3em;vertical-align:-0.1em"></span>{label}</span>'
        for label, color in zip(labels, colors, strict=True)
    )
    return f"<div>Box colours: {swatches}</div>"


def _class_labels(class_names: Sequence[str]) -> tuple[list[str], list[tuple[int, int, int]], list[int]]:
    """A version's classes as the annotator shows them: short labels, colours, and the order of its relabel list
    (most numerous first in the NOAA sample, so a new sea lion box takes "female"; other classes keep their order)."""
    colors = [class_color(name, i) for i, name in enumerate(class_names)]
    labels = [service.short_label(name) for name in class_names]  # short: hundreds of labels on one photo
    sample = present.class_distribution()  # the NOAA sample's official counts: adult females are the most numerous
    order = service.by_frequency(list(class_names), dict(zip(sample["class"], sample["animals"], strict=True)))
    return labels, colors, order


def _annotator_for(value: dict | None, class_names: Sequence[str]) -> Any:
    """The annotator showing ``value`` with the relabel list and colours of ``class_names`` (the counted version's)."""
    labels, colors, order = _class_labels(class_names)
    return image_annotator(value=value, label_list=[labels[i] for i in order], label_colors=[colors[i] for i in order])


def _bad(exc: Exception, title: str = "Cannot save this review") -> gr.Error:
    return gr.Error(str(exc).replace("<", "&lt;"), title=title, print_exception=False)


def build_review_tab(
    registry: ModelRegistry,
    image: gr.components.Component,
    result_json: gr.components.Component,
    batch_dir: Path,
    reviews_dir: Path,
    guard: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> gr.Tab:
    """The Review tab, fed by the Count tab's photo (``image``) and result (``result_json``), and ``/review``.

    ``guard`` maps unexpected failures to one-line gr.Errors (``sealion_app.ui.demo.human_errors``).
    """
    labels, colors, order = _class_labels(registry.default.class_names or SEA_LION_CLASSES)

    @guard
    def load(photo: str | None, result: dict | None, loaded_key: str):
        """Put the last count's detections on the annotator, unless that count is already under review; class labels
        on unless they would pile onto each other (:func:`sealion_app.review.labels_shown_for`)."""
        if not photo or not result:
            empty = "Count a photo in the **Count** tab first; its boxes appear here."
            return None, None, None, "", empty, None, gr.skip(), gr.skip()
        key = hashlib.sha256(json.dumps([photo, result], sort_keys=True, default=str).encode()).hexdigest()
        if key == loaded_key:  # back from another tab: keep the edits in progress
            return (gr.skip(),) * 8
        try:
            original = service.original_from_json(result)
        except ValueError as exc:
            raise _bad(exc, "Cannot review this count") from None
        prune_old_batches(batch_dir)
        shown = photo_jpeg(Path(photo), batch_dir)
        if not service.same_photo(Path(photo).name, shown, original):
            not_counted = "The photo in the **Count** tab has not been counted yet: press Count."
            return None, None, None, "", not_counted, None, gr.skip(), gr.skip()
        labels = service.labels_shown_for(original)
        value = service.annotator_value(shown, original, labels)
        table, edits = service.review_table(original, service.PhotoAnnotations.from_result(original))
        line = service.edits_line(original, service.PhotoAnnotations.from_result(original), edits)
        names = original.class_names  # the counted version's classes: its relabel list, colours and legend
        legend = _legend(*_class_labels(names)[:2])
        return _annotator_for(value, names), original.to_dict(), photo, key, line, table, labels, legend

    @guard
    def toggle_labels(show: bool, value: dict | None, original_dict: dict | None, photo: str | None):
        """The boxes under review with their class labels shown or hidden; edits and classes are kept."""
        if not value or not original_dict or not photo:
            return gr.skip()
        names = service.original_from_json(original_dict).class_names
        return {
            "image": str(photo_jpeg(Path(photo), batch_dir)),  # the same file: the photo is not re-encoded
            "boxes": service.with_labels(value.get("boxes") or [], names, show),
            "orientation": value.get("orientation") or 0,
        }

    @guard
    def follow(value: dict | None, original_dict: dict | None, photo: str | None):
        """Counts and edits after every change on the annotator."""
        if not value or not original_dict or not photo:
            return gr.skip(), gr.skip()
        original = service.original_from_json(original_dict)
        if service.unlabelled(value, original.class_names):
            return gr.skip(), "Pick the class of the new box."
        try:
            annotations = service.parse_annotations(value, original, Path(photo).name)
        except ValueError as exc:
            return gr.skip(), f"⚠ {exc}"
        table, edits = service.review_table(original, annotations)
        return table, service.edits_line(original, annotations, edits)

    @guard
    def save(value: dict | None, original_dict: dict | None, photo: str | None, reviewer: str):
        if not value or not original_dict or not photo:
            raise gr.Error("Count a photo and review its boxes first.", print_exception=False)
        original = service.original_from_json(original_dict)
        try:
            annotations = service.parse_annotations(value, original, original.source or Path(photo).name)
            outcome = service.save_and_export(
                Path(photo), annotations.photo, annotations, original, reviewer or "", reviews_dir, batch_dir
            )
        except ValueError as exc:
            raise _bad(exc) from None
        review = outcome.review
        table, edits = service.review_table(original, annotations)
        line = (
            f"Saved the review of **{review.photo}** by **{review.reviewer}** at {review.reviewed_at} "
            f"(model {review.model_version}): **{review.total}** animals, {edits.describe()} · "
            f"`{outcome.summary()['saved_as']}`"
        )
        return table, line, [str(p) for p in outcome.files.paths()], outcome.summary()

    @guard
    def import_file(path: str | None, original_dict: dict | None, photo: str | None, show: bool = True):
        if not path:
            return gr.skip(), gr.skip()
        if not original_dict or not photo:
            raise gr.Error("Count the photo first, then import its annotations.", print_exception=False)
        original = service.original_from_json(original_dict)
        try:
            annotations = service.imported_annotations(Path(path), original, original.source or Path(photo).name)
        except ValueError as exc:
            raise _bad(exc, "Cannot import these annotations") from None
        boxes = service.annotator_boxes(annotations, labels=show)
        value = {"image": str(photo_jpeg(Path(photo), batch_dir)), "boxes": boxes}
        return _annotator_for(value, original.class_names), f"Imported {len(annotations)} boxes from {Path(path).name}"

    @guard
    def review_api(
        photo: str | None, annotations: str, reviewer: str, original: str = "", model_version: str = ""
    ) -> tuple[dict, str, str, str, str]:
        """Review one photo: its corrected annotations (JSON list of {"xyxy": [x1, y1, x2, y2], "class_name"}, in the
        photo's pixels), the reviewer's name, and the /count result JSON being corrected ("" = count the photo now
        with the default settings). Returns the corrected counts and edits (JSON), and the corrected-counts CSV,
        the dots table, COCO JSON and VIAME CSV."""
        if not photo:
            raise gr.Error("image: send the photo that was reviewed.", print_exception=False)
        name = Path(photo).name
        try:
            if original and original.strip():
                counted = service.original_from_json(original)
            else:
                detector = registry.get(model_version or None)
                counted = detector.count(Path(photo), CountOptions(), source=name)
            name = counted.source or name
            boxes = service.parse_annotations(annotations, counted, name)
            outcome = service.save_and_export(Path(photo), name, boxes, counted, reviewer or "", reviews_dir, batch_dir)
        except ValueError as exc:
            raise _bad(exc) from None
        files = outcome.files
        return outcome.summary(), str(files.counts_csv), str(files.dots_csv), str(files.coco_json), str(files.viame_csv)

    with gr.Tab("Review", id="review") as tab:
        gr.Markdown(REVIEW_HINT, elem_id="review-hint")
        with gr.Row(equal_height=True):
            show_labels = gr.Checkbox(
                True, label="Show class labels", container=False, scale=1, min_width=180, elem_id="show-labels"
            )
            legend = gr.HTML(_legend(labels, colors), elem_id="review-legend", scale=4)
        annotator = image_annotator(  # a new box takes the first label: the most numerous class, not "male"
            label_list=[labels[i] for i in order],
            label_colors=[colors[i] for i in order],
            image_type="pil",  # the pixels are not used; "filepath" would re-encode the photo per edit
            sources=[],
            show_clear_button=False,
            show_remove_button=True,
            show_download_button=False,
            show_share_button=False,
            box_min_size=3,
            handle_size=5,
            box_thickness=2,
            boxes_alpha=0.25,
            height=820,
            label="Boxes under review",
            show_label=False,
            elem_id="review-annotator",
        )
        with gr.Row():
            with gr.Column(scale=2):
                reviewer = gr.Textbox(label="Reviewer", placeholder="your name", max_lines=1, elem_id="reviewer")
                status = gr.Markdown(elem_id="review-status")
                save_button = gr.Button("Save review", variant="primary", elem_id="review-save")
                saved = gr.Markdown(elem_id="review-saved")
            with gr.Column(scale=3):
                table = gr.Dataframe(
                    headers=service.REVIEW_COLUMNS,
                    label="Counts: the model's, after review, and the edits",
                    interactive=False,
                    elem_id="review-table",
                )
        files = gr.File(
            label="Corrected counts CSV, dots table (training data), COCO JSON, VIAME CSV",
            file_count="multiple",
            interactive=False,
            elem_id="review-files",
        )
        with gr.Accordion("Import annotations made elsewhere (COCO JSON, VIAME CSV / DIVE)", open=False):
            imported = gr.File(
                label="COCO JSON or VIAME CSV of this photo", file_types=[".json", ".csv"], elem_id="review-import"
            )
        with gr.Accordion("Saved review (JSON)", open=False):
            summary = gr.JSON(label="Review")
        original_state = gr.State(None)
        photo_state = gr.State(None)
        key_state = gr.State("")

        tab.select(
            load,
            inputs=[image, result_json, key_state],
            outputs=[annotator, original_state, photo_state, key_state, status, table, show_labels, legend],
            api_visibility="private",
        )
        show_labels.input(  # the reviewer's click only: load() sets it without redrawing twice
            toggle_labels,
            inputs=[show_labels, annotator, original_state, photo_state],
            outputs=annotator,
            api_visibility="private",
        )
        annotator.change(
            follow,
            inputs=[annotator, original_state, photo_state],
            outputs=[table, status],
            api_visibility="private",
            trigger_mode="always_last",
        )
        save_button.click(
            save,
            inputs=[annotator, original_state, photo_state, reviewer],
            outputs=[table, saved, files, summary],
            api_visibility="private",
        )
        imported.upload(
            import_file,
            inputs=[imported, original_state, photo_state, show_labels],
            outputs=[annotator, status],
            api_visibility="private",
        )

        with gr.Group(visible=False):  # the /review endpoint's inputs and outputs (the API, not the page)
            api_photo = PhotoInput(type="filepath", label="image")
            api_annotations = gr.Textbox(label="annotations")
            api_reviewer = gr.Textbox(label="reviewer")
            api_original = gr.Textbox("", label="original")
            api_version = gr.Textbox("", label="model_version")
            api_summary = gr.JSON(label="review")
            api_files = [gr.File(label=label) for label in ("counts_csv", "dots_csv", "coco_json", "viame_csv")]
            api_button = gr.Button("review")
        api_button.click(
            review_api,
            inputs=[api_photo, api_annotations, api_reviewer, api_original, api_version],
            outputs=[api_summary, *api_files],
            api_name="review",
        )
    return tab
