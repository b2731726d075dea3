"""The About / data tab: what the app does (for the chosen model version) and how, and the classes in the training
sample."""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr

from detector.classes import SEA_LION_CLASSES
from detector.versions.manifest import ModelVersion
from sealion_app import present
from sealion_app.models import ModelRegistry

SEA_LION_INTRO = """
## What it does

The app counts **Steller sea lions** in aerial survey photographs, per class: adult males, subadult males,
adult females, juveniles and pups. It is built for the NOAA Fisheries survey photos (about 4992×3328 px each).
"""

ABOUT_MD = """
## How it works

1. **Dots → boxes.** Biologists marked every animal in the training photos with a coloured dot, one colour per
   class. Each dot becomes a box of the class's typical body size (about 120 px for an adult male down to 40 px
   for a pup at native resolution).
2. **YOLOv5.** A YOLOv5 detector (trained with `ultralytics`) learns those boxes on tiles cut from the photos.
3. **Scale and tiles.** A survey photo is far larger than the network's input, and a pup is only a few dozen
   pixels long, so the photo is resized until its animals are as large as in the photos the model learned from,
   then cut into overlapping tiles. How large is that? The **adult female length** setting says how long an
   adult female is in your photo, in pixels (about 80 in a NOAA survey original, 20 in a copy downsampled 4×).
   Leave it at 0 (**auto**) and the app derives it from the photo's size, assuming the photo is a whole survey
   frame or a copy downsampled 2, 3, 4, 6, 8 or 16×; it says what it used, and warns when the size is unusual or a
   manual length is far from auto's. For a crop of a survey photo, measure one adult female and enter it.
4. **Counts.** Detections from all tiles are merged (duplicates in the overlaps removed) and counted per class,
   each class at its own confidence threshold: the one that counted best on photos the model never saw
   (cross-validation). A confidence above 0 in the settings replaces them with one threshold for every class.

The annotated photo shows one box per detected animal in its class colour, with the counts in the corner; drag
the slider to compare it with the photo, scroll to zoom in (up to 15×, enough to see every box of a survey
photo at full resolution) and drag to pan. Counts are estimates: next to each count the app gives that class's
typical error on survey photos the model never saw (cross-validation); check the boxes. Leave the confidence at 0:
lowering it does not find the missed animals, it adds false detections (on a photo with 22 animals, confidence
0.05 reported 166).

## Training data

The plot shows how many animals of each class the 17 NOAA sample photos hold, from the competition's official
counts (`counts.csv`). The shipped model was trained on these photos, and the examples are among them, so counts on
the examples are in-sample; the Model tab gives the cross-validated error. Adult females and pups dominate; adult
and subadult males are rare, so the model sees far fewer examples of them.
"""


def about_intro(version: ModelVersion, class_names: Sequence[str]) -> str:
    """ "What it does" for the chosen model version: the sea lion text for the sea lion versions; for another, what
    it counts (its subject and classes, from its manifest entry or card), and that the rest of the page tells of the
    sea lion models."""
    if present.is_sea_lion_version(class_names):
        return SEA_LION_INTRO
    classes = ", ".join(present.pretty(n) for n in class_names)
    what = f"**{version.subject}**" if version.subject else "animals in aerial photographs"
    title = f" ({version.title})" if version.title else ""
    return f"""
## What it does

With model version **{version.name}**{title} the app counts {what}, per class: {classes}.
The app was first built for Steller sea lions in the NOAA Fisheries survey photos: the steps below, the training data
and the examples tell of the sea lion models. This version's classes, scale reference and accuracy are in the Model
tab, and the Count tab's length setting names its reference class.
"""


def build_about_tab(registry: ModelRegistry, model_version: gr.Dropdown) -> None:
    """The About / data tab (inside ``gr.Tabs``); its first part follows the model version chooser."""
    distribution = present.class_distribution()

    def intro(version: str | None = None) -> str:
        return about_intro(registry.model_version(version), registry.class_names(version))

    class_names = SEA_LION_CLASSES  # the plot is of the NOAA sea lion sample, whichever version counts
    with gr.Tab("About / data", id="about"):
        what = gr.Markdown(intro(), elem_id="about-intro")
        gr.Markdown(ABOUT_MD)
        model_version.change(intro, inputs=model_version, outputs=what, api_visibility="private")
        gr.BarPlot(
            distribution,
            x="class",
            y="animals",
            color="class",
            color_map=present.class_color_map(class_names),
            sort=list(distribution["class"]),
            # bars start at zero (rare classes do not look absent) and end above the tallest bar, whole
            y_lim=[0, int(distribution["animals"].max() * 1.1) + 1],
            title=f"Animals per class in the NOAA training sample ({distribution['animals'].sum()} in total)",
            label="Class distribution (official counts.csv)",
        )
