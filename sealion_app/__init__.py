"""Support code of the Gradio app (``app.py``): model registry, upload handling and presentation helpers.

Everything here is plain Python over :mod:`detector`; ``app.py`` only wires it to Gradio components.
"""
