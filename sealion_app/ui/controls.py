"""The count controls, typed once: the eight settings a count takes in the UI and the API (confidence, IoU,
slicing, tile size, adult female length, model version, runtime, tile gate), the components that show them, and the one
place where they become a :class:`~detector.settings.CountOptions` and a loaded detector.

A handler written as ``fn(first, settings: CountSettings, *rest)`` and wrapped with :func:`takes_count_settings`
gets the API's named parameters (``/count``, ``/count_data``, ``/count_batch`` keep their keyword arguments), and
``[first, *controls.inputs, ...]`` feeds it from the page.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import gradio as gr

from detector.counting.scale import ADULT_FEMALE_LENGTH_PX, SEA_LION_REFERENCE, ScaleReference
from detector.settings import (
    DEFAULT_GATE,
    DEFAULT_IOU,
    DEFAULT_SLICING,
    GATE_CHOICES,
    SLICING_CHOICES,
    CountOptions,
    gate_arg,
)
from detector.versions.runtimes import DEFAULT_RUNTIME
from sealion_app.models import ModelRegistry
from sealion_app.ui.components import api_optional

RUNTIME_INFO = (
    "auto: the version's checked CPU export on a CPU, torch on a GPU · torch: the PyTorch weights · openvino-f32: "
    "OpenVINO in fp32, counts within one animal of torch's · openvino: the CPU's fastest precision (bf16 where it "
    "has it), counts may move by an animal or two. Other runtimes load on first use."
)
DEFAULT_GATE_CHOICE = "on" if DEFAULT_GATE else "off"
GATE_INFO = (
    "on: a coarse first pass finds where animals are and the full pass runs only on tiles near them and near what "
    "it finds (faster on full-resolution photos with much empty water or rock; counts within 1 % or one animal of "
    "off on every sample photo, docs/benchmarks.md); off: every tile."
)
ADVANCED_LABEL = (
    f"Advanced (defaults: runtime {DEFAULT_RUNTIME}, IoU {DEFAULT_IOU}, slicing {DEFAULT_SLICING}, tiles of the "
    f"model's input size, tile gate {DEFAULT_GATE_CHOICE})"
)


@dataclass(frozen=True)
class CountSettings:
    """What the count controls (or an API call) say; their names are the API's parameter names."""

    conf: float = 0.0  # 0: the model version's calibrated per-class thresholds
    iou: float = DEFAULT_IOU
    slicing: str = DEFAULT_SLICING
    tile_size: float = 0  # 0: the model's input size
    female_length_px: float = 0  # the version's reference class's length in the photo (sea lions: adult females), px;
    # 0: auto from its size. The API keeps the sea lion name; for an elephant-seal version it is a cow's length.
    model_version: str = ""  # "": the startup model
    runtime: str = ""  # "" or auto: the version's automatic choice
    gate: str = DEFAULT_GATE_CHOICE  # on/off: the tile gate (detector.counting.gate)

    def options(self) -> CountOptions:
        """The :class:`CountOptions` these settings ask for; the length is checked against the version's reference
        class when the photo is counted (a bad one is a one-line error naming the class)."""
        length = float(self.female_length_px or 0)
        if length < 0:
            raise gr.Error(
                f"Reference length: must be 0 (auto) or a length in pixels, got {length:g}.", print_exception=False
            )
        return CountOptions(
            conf=float(self.conf) if self.conf else None,
            iou=float(self.iou),
            slicing=str(self.slicing or DEFAULT_SLICING),
            tile_size=int(self.tile_size) if self.tile_size else None,
            reference_length=length or None,
            gate=gate_arg(self.gate) if self.gate not in ("", None) else DEFAULT_GATE,
        )

    def detector(self, registry: ModelRegistry) -> Any:
        """The detector of the chosen version and runtime (loaded on first use)."""
        return registry.get(self.model_version, self.runtime)


_PARAMETERS = [
    inspect.Parameter(item.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=item.default, annotation=item.type)
    for item in fields(CountSettings)
]


def takes_count_settings(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(first, settings, *rest)`` as a handler with ``first``, the eight named settings, then ``rest``: the
    signature Gradio reads for the API and for the order of a click's inputs."""
    signature = inspect.signature(fn)
    first, _settings, *rest = signature.parameters.values()
    handler_signature = signature.replace(parameters=[first, *_PARAMETERS, *rest])

    @functools.wraps(fn)
    def handler(*args: Any, **kwargs: Any) -> Any:
        bound = handler_signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        settings = CountSettings(**{item.name: values.pop(item.name) for item in fields(CountSettings)})
        return fn(values.pop(first.name), settings, **values)

    handler.__signature__ = handler_signature  # type: ignore[attr-defined]
    return handler


@dataclass(frozen=True)
class CountControls:
    """The components of the count settings, in :class:`CountSettings`' order (:attr:`inputs`)."""

    conf: gr.Slider
    iou: gr.Slider
    slicing: gr.Radio
    tile_size: gr.Slider
    female_length: gr.Number
    model_version: gr.Dropdown
    runtime: gr.Dropdown
    gate: gr.Radio

    @property
    def inputs(self) -> list[gr.components.Component]:
        return [getattr(self, item.name) for item in fields(self)]


@dataclass(frozen=True)
class SharedControls:
    """The controls above the tabs (every tab counts with them): the model version, and in the Advanced accordion
    the runtime, IoU, slicing, tile size and tile gate."""

    model_version: gr.Dropdown
    runtime: gr.Dropdown
    iou: gr.Slider
    slicing: gr.Radio
    tile_size: gr.Slider
    gate: gr.Radio


def model_controls(registry: ModelRegistry, imgsz: int) -> SharedControls:
    """The model version chooser, then an Advanced accordion (its title states the defaults) with the runtime, IoU,
    slicing, tile size and tile gate."""
    with gr.Row():
        model_version = gr.Dropdown(
            registry.choices(),
            value=registry.default_version,
            label="Model version",
            info="From weights/manifest.yaml; other versions load on first use.",
            interactive=True,
            elem_id="model-version",
        )
    with gr.Accordion(ADVANCED_LABEL, open=False, elem_id="advanced"):
        gr.Markdown(
            "Settings for experts; the defaults are what the model was checked with. They apply to the Count "
            "and Batch tabs and the API."
        )
        runtime = api_optional(
            gr.Dropdown(
                registry.runtime_choices(),
                value=DEFAULT_RUNTIME,
                label="Runtime",
                info=RUNTIME_INFO,
                interactive=True,
                allow_custom_value=True,  # API callers' unknown names get the registry's clear error
                elem_id="runtime",
            )
        )
        iou = gr.Slider(0.05, 0.95, value=DEFAULT_IOU, step=0.05, label="IoU threshold (NMS)")
        slicing = gr.Radio(
            list(SLICING_CHOICES),
            value=DEFAULT_SLICING,
            label="Sliced inference",
            info="auto: tile photos larger than a tile; on: always; off: whole photo at once",
        )
        tile_size = gr.Slider(
            0, 2048, value=0, step=32, label="Tile size (px)", info=f"0 = the model's input ({imgsz} px)"
        )
        gate = api_optional(
            gr.Radio(list(GATE_CHOICES), value=DEFAULT_GATE_CHOICE, label="Tile gate", info=GATE_INFO, elem_id="gate")
        )
    return SharedControls(model_version, runtime, iou, slicing, tile_size, gate)


def length_control(reference: ScaleReference) -> dict[str, str]:
    """Label and help of the length setting for a version's reference class (sea lions: adult females)."""
    if reference.length_px is None:
        return {
            "label": "Reference length (px): this version names no reference class",
            "info": "0 = auto: every photo at the resolution the model learned from. Resets to auto for a new photo.",
        }
    one = reference.animals[:-1] if reference.animals.endswith("s") else reference.animals
    if reference.frame_sides:
        side = reference.frame_sides[0]
        typical = (
            f"a whole frame ({side} px wide): about {reference.length_px:g} px, a copy downsampled 4x: about "
            f"{reference.length_px / 4:g}"
        )
        if reference == SEA_LION_REFERENCE:
            typical = f"a survey original: about {ADULT_FEMALE_LENGTH_PX} px, a copy downsampled 4x: about "
            typical += f"{ADULT_FEMALE_LENGTH_PX // 4}"
        auto = "from the photo's size"
    else:
        typical = f"at the resolution the model learned from: about {reference.length_px:g} px"
        auto = "the photo at the resolution the model learned from"
    return {
        "label": f"{one[0].upper()}{one[1:]} length in this photo (px)",
        "info": f"0 = auto, {auto} ({typical}). Set it for crops. Resets to auto for a new photo.",
    }


def detection_controls(shared: SharedControls, reference: ScaleReference = SEA_LION_REFERENCE) -> CountControls:
    """The Count tab's settings (confidence, adult female length) with the :class:`SharedControls`: the Batch tab
    counts with the same."""
    with gr.Accordion("Settings", open=True):
        conf = gr.Slider(
            0,
            0.99,
            value=0,
            step=0.01,
            label="Confidence threshold",
            info="0 = the model's calibrated threshold per class (counts best on unseen photos)",
        )
        female_length = gr.Number(
            value=0, minimum=0, maximum=2000, step=1, elem_id="female-length", **length_control(reference)
        )
    return CountControls(
        conf,
        shared.iou,
        shared.slicing,
        shared.tile_size,
        female_length,
        shared.model_version,
        shared.runtime,
        shared.gate,
    )
