"""The app's Blocks: the model choosers above the Count, Batch, Review, Model and About tabs, each built by its own
module, and the named API endpoints over :mod:`detector`.

Endpoints (docs/app.md): ``/count``, ``/count_data`` (Count tab), ``/count_batch`` (Batch), ``/review`` (Review),
``/model_info`` (Model). Started by :mod:`sealion_app.main`.
"""

from __future__ import annotations

import functools
import html
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from detector.classes import SEA_LION_CLASSES
from detector.errors import DetectorError
from sealion_app import present
from sealion_app.models import ModelRegistry
from sealion_app.ui.about_tab import build_about_tab
from sealion_app.ui.batch_tab import build_batch_tab
from sealion_app.ui.components import Blocks
from sealion_app.ui.controls import model_controls
from sealion_app.ui.count_tab import build_count_tab
from sealion_app.ui.inspect import page_js
from sealion_app.ui.model_tab import build_model_tab
from sealion_app.ui.review_tab import build_review_tab

logger = logging.getLogger("sealion_app")

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"  # installed: the package copy
if not EXAMPLES_DIR.is_dir():
    EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"  # a checkout: examples/ at the top


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


def heading_markdown(registry: ModelRegistry, version: str | None = None) -> str:
    """The heading for a version of the chooser (:func:`sealion_app.present.heading_markdown`); nothing is loaded."""
    return present.heading_markdown(registry.model_version(version), registry.class_names(version))


def build_demo(registry: ModelRegistry, count_workers: int = 2, reviews_dir: Path | None = None) -> gr.Blocks:
    """The UI and its API endpoints, over one shared model registry: a builder per tab.

    Concurrency: ``count_workers`` single-photo counts run at once (they take turns on the model one tile batch at
    a time, so a large photo delays a small one by a batch, not by its whole count); batches run one at a time on
    their own queue, so a batch never holds up single photos for longer than one of its photos' tile batches.
    Saved reviews go to ``reviews_dir`` (default: ``reviews/`` in the app's temporary folder).
    """
    batch_dir = Path(tempfile.mkdtemp(prefix="sealion-app-"))  # batch thumbnails and CSVs, pruned after a day
    examples = sorted(EXAMPLES_DIR.glob("*.jpg"))
    with Blocks(title="Sea lion counter", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as demo:
        heading = gr.Markdown(heading_markdown(registry), elem_id="heading")
        shared = model_controls(registry, registry.default.imgsz)
        # Another version: the heading names what it counts (its title, subject and classes: manifest or card).
        shared.model_version.change(
            lambda version: heading_markdown(registry, version),
            inputs=shared.model_version,
            outputs=heading,
            api_visibility="private",
        )
        with gr.Tabs():
            count = build_count_tab(registry, shared, examples, batch_dir, count_workers, human_errors)
            build_batch_tab(registry, count.controls, batch_dir, human_errors)
            build_review_tab(
                registry, count.image, count.result_json, batch_dir, reviews_dir or batch_dir / "reviews", human_errors
            )
            model_info = build_model_tab(registry, shared.model_version, shared.runtime, human_errors)
            build_about_tab(registry, shared.model_version)
        gr.api(model_info, api_name="model_info", concurrency_id="model_load")
        review_classes = registry.default.class_names or SEA_LION_CLASSES  # as the Review tab labels them
        others = [v.class_names for v in registry.manifest.versions.values()] if registry.manifest else []
        demo.load(
            None, js=page_js(review_classes, *others), api_visibility="private"
        )  # zoom, layers, dialog (ui.inspect)
    return demo
