"""The Model tab and the ``/model_info`` endpoint: the chosen model version as loaded with a runtime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from detector.versions.runtimes import DEFAULT_RUNTIME
from sealion_app import present
from sealion_app.models import ModelRegistry


def build_model_tab(
    registry: ModelRegistry,
    model_version: gr.Dropdown,
    runtime: gr.Dropdown,
    guard: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> Callable[..., dict]:
    """The Model tab (inside ``gr.Tabs``), following the model choosers above the tabs; returns the ``/model_info``
    handler, which :func:`~sealion_app.ui.demo.build_demo` registers outside the tabs (``gr.api``)."""
    default_info = present.model_info(registry.default)

    @guard
    def model_info(model_version: str = "", runtime: str = "") -> dict:
        """The model version as loaded with a runtime: tag, commit sha, sha256, source, classes and colours, device,
        runtime, metrics."""
        return present.model_info(registry.get(model_version, runtime))

    @guard
    def show_model(model_version: str, runtime: str = ""):
        data = present.model_info(registry.get(model_version, runtime))
        return (
            present.model_markdown(data),
            present.classes_html(data["class_names"]),
            present.metrics_table(data["metrics"]),
            data,
        )

    def runtime_choices(model_version: str, runtime: str) -> gr.Dropdown:
        """The runtime chooser for another version: its runtimes, the current choice kept when it has it."""
        offered = registry.runtime_choices(model_version)
        return gr.Dropdown(choices=offered, value=runtime if runtime in offered else DEFAULT_RUNTIME)

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
    return model_info
