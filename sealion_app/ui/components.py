"""Gradio component tweaks used by the app."""

from __future__ import annotations

import base64
import binascii
import mimetypes
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.context import LocalContext

DEFAULT_INLINE_LIMIT = 200 * 1024**2  # when no running Blocks says otherwise (the app's --max-file-size)


def _upload_limit() -> int:
    """The running app's upload limit in bytes (``launch(max_file_size=...)``), so inline data obeys it too."""
    blocks = LocalContext.blocks.get(None)
    return getattr(blocks, "max_file_size", None) or DEFAULT_INLINE_LIMIT


class PhotoInput(gr.Image):
    """A gr.Image input that hands the photo to the detector as the bytes the client sent.

    Uploaded files are passed on as paths, undecoded: Gradio's own preprocessing opens them with Pillow first, so a
    damaged or absurd upload would fail there with a generic error; the detector's loader gives the clear reason.
    Photos sent inline as base64 data URLs (raw HTTP clients) are decoded here rather than by Gradio, which would
    re-encode them as lossy WebP: the detector gets the client's exact bytes, and the upload limit applies to them.
    """

    is_template = True  # rendered by the frontend as a plain Image component

    def preprocess(self, payload: Any) -> Any:
        if payload is None:
            return None
        url = payload.url or ""
        if url.startswith("data:"):
            return str(self._inline_to_file(url))
        if payload.path:
            return str(payload.path)
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception as exc:
            raise gr.Error(
                f"The uploaded image data cannot be read ({type(exc).__name__}); upload the photo as a file.",
                print_exception=False,
            ) from exc

    def _inline_to_file(self, url: str) -> Path:
        header, _, encoded = url.partition(",")
        if ";base64" not in header:
            raise gr.Error("Inline image data must be a base64 data URL; upload the photo as a file.")
        limit = _upload_limit()
        size = len(encoded) * 3 // 4
        if size > limit:
            raise gr.Error(
                f"The inline image is {size / 1024**2:.0f} MB, over the {limit / 1024**2:.0f} MB upload limit of this "
                "server (--max-file-size); send a smaller photo.",
                print_exception=False,
            )
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise gr.Error(
                "The inline image data cannot be read (not valid base64); upload the photo as a file.",
                print_exception=False,
            ) from exc
        suffix = mimetypes.guess_extension(header[5:].split(";")[0].strip()) or ".img"
        folder = Path(tempfile.mkdtemp(prefix="sealion-inline-", dir=self.GRADIO_CACHE))
        path = folder / f"inline-image{suffix}"
        path.write_bytes(data)
        return path


class Blocks(gr.Blocks):
    """gr.Blocks whose events take API calls that leave out trailing inputs marked ``api_optional``.

    An input added to an endpoint after scripts were written for it (e.g. ``runtime``) goes last and is marked
    with :func:`api_optional`: a raw HTTP call that sends the older, shorter list gets None for it (the handler's
    default) instead of Gradio's "didn't receive enough input values". gradio_client fills in defaults itself."""

    async def preprocess_data(self, block_fn: Any, inputs: list[Any], state: Any, explicit_call: bool = False):
        missing = block_fn.inputs[len(inputs) :]
        if missing and all(getattr(block, "api_optional", False) for block in missing):
            inputs = [*inputs, *(None for _ in missing)]
        return await super().preprocess_data(block_fn, inputs, state, explicit_call)


def api_optional(component: gr.components.Component) -> gr.components.Component:
    """Mark an input that API callers may leave out when it is an event's last (see :class:`Blocks`)."""
    component.api_optional = True
    return component
