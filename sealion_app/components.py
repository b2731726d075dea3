"""Gradio component tweaks used by the app."""

from __future__ import annotations

from typing import Any

import gradio as gr


class PhotoInput(gr.Image):
    """A gr.Image input that hands the uploaded file to the detector undecoded.

    Gradio's own preprocessing opens the file with Pillow first, so a damaged or absurd upload would fail there
    with a generic error; the detector's loader gives the clear one-line reason instead.
    """

    is_template = True  # rendered by the frontend as a plain Image component

    def preprocess(self, payload: Any) -> Any:
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        try:  # base64 data URLs (raw HTTP clients) are decoded by Gradio itself
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception as exc:
            raise gr.Error(
                f"The uploaded image data cannot be read ({type(exc).__name__}); upload the photo as a file.",
                print_exception=False,
            ) from exc
