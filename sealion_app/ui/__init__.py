"""The Gradio interface: everything in the app that imports Gradio."""
