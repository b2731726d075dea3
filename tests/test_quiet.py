"""The app's log: no line per browser request (Gradio prints one per custom-component file it serves)."""

from __future__ import annotations

import gradio as gr
from fastapi.testclient import TestClient

from sealion_app.ui.components import PhotoInput
from sealion_app.ui.quiet import quiet_gradio


def test_component_file_requests_leave_no_line_in_the_log(capfd):
    with gr.Blocks() as demo:
        PhotoInput(type="filepath")
    app = gr.routes.App.create_app(demo)
    request = "/gradio_api/custom_component/abc/client/component/index.js"
    with TestClient(app) as client:
        client.get(request)
        assert "environment=client" in capfd.readouterr().out  # what Gradio does by itself
        quiet_gradio()
        client.get(request)
        gr.routes.print("Error cleaning up file x: gone")  # the module's other lines still reach stderr
    out, err = capfd.readouterr()
    assert "environment=client" not in out + err
    assert "Error cleaning up file x: gone" in err and "Error cleaning" not in out
