"""Keep the app's log readable: no line per browser request."""

from __future__ import annotations

import sys
from typing import Any


def _is_component_request(text: str) -> bool:
    return text.startswith("id=") and ", environment=" in text and ", file_name=" in text


def quiet_gradio() -> None:
    """Gradio's ``routes`` module prints one line per custom-component file the browser fetches (``id=…,
    environment=client, type=component, file_name=index.js``) with a bare ``print`` that no logging level reaches;
    give that module a ``print`` that drops those lines and sends its other lines to stderr."""
    import gradio.routes

    def routes_print(*args: Any, **kwargs: Any) -> None:
        if _is_component_request(" ".join(map(str, args))):
            return
        print(*args, **{"file": sys.stderr, **kwargs})

    gradio.routes.print = routes_print  # module globals shadow the builtin for that module only
