"""Inspecting boxes at colony density, in the browser: the Count tab's boxes as a layer that turns off and on, zoom
presets and a faster wheel for its photo viewer, and the Review tab's relabel dialog listing every class (its colour
picker hidden).

Client-side script, run once when the page loads (``demo.load(js=page_js(classes))``). Hand-written because the
components have no setting for these: Gradio's ImageSlider zooms 1.05× per wheel event up to 15× (``handleWheel`` in its
frontend, no Python parameter), and gradio_image_annotation's relabel dropdown filters its list by the box's current
label when the dialog opens. The script uses only the page's DOM: the viewer's own wheel handler does the zooming,
and a CSS class hides the counted layer, so the zoom and pan stay where they are and nothing is recounted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sealion_app.review import short_label, unlabelled_color

WHEEL_BOOST = 4  # the viewer's zoom steps per wheel notch: 1.05⁴ ≈ 1.22×, fit to 15× in 14 notches (not 56)
ZOOM_PRESETS = (1, 4, 15)  # the zoom buttons: fit, 4×, 15× (the viewer's maximum)
BOXES_OFF_CLASS = "boxes-off"  # on #inspect-image: the counted layer hidden, the photo itself shown


def page_js(class_names: Sequence[str], *more: Sequence[str]) -> str:
    """The page's script, knowing the Review tab's classes (``more``: those of the other versions it may review):
    their labels, by the colour of a box shown without one."""
    hex_color = "#{:02x}{:02x}{:02x}".format
    by_color: dict[str, str] = {}
    for names in (*more, class_names):  # the startup version's labels win a shared colour
        by_color |= {hex_color(*unlabelled_color(name, i)): short_label(name) for i, name in enumerate(names)}
    return _PAGE_JS.replace("LABELS_BY_COLOR", json.dumps(by_color))


_PAGE_JS = f"""
() => {{
  if (window.sealionInspect) return [];
  const style = document.createElement("style");
  style.textContent = `#inspect-image.{BOXES_OFF_CLASS} img[data-testid=imageslider-image] ~
    img[data-testid=imageslider-image] {{ visibility: hidden; }}`;
  document.head.appendChild(style);
  const viewer = () => document.querySelector("#inspect-image");
  const images = () => [...document.querySelectorAll("#inspect-image img[data-testid=imageslider-image]")];
  const scaleOf = (img) => parseFloat((img.style.transform.match(/scale\\(([^)]+)\\)/) || [0, "1"])[1]);
  const centre = (img) => {{  // the middle of what is visible of the photo: the viewer zooms about this point
    const a = img.getBoundingClientRect(), b = img.closest(".slider-wrap")?.getBoundingClientRect() || a;
    const left = Math.max(a.left, b.left), right = Math.min(a.right, b.right);
    const top = Math.max(a.top, b.top), bottom = Math.min(a.bottom, b.bottom);
    return [(left + right) / 2, (top + bottom) / 2];
  }};
  const wheel = (img, inward, [x, y]) => img.dispatchEvent(new WheelEvent("wheel", {{
    deltaY: inward ? -100 : 100, clientX: x, clientY: y, bubbles: true, cancelable: true }}));
  let zooms = 0;
  window.sealionInspect = {{
    async zoom(target) {{  // the viewer's own wheel steps, from its zoom now to the target (1 = fitted)
      const img = images()[0], mine = ++zooms;  // a newer click takes over from this one
      if (!img) return;
      const frame = () => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
      const settled = async (before) => {{  // the viewer animates to its new zoom: wait until it stops moving
        let last = scaleOf(img), still = 0;
        for (let i = 0; i < 120 && (still < 4 || (last === before && i < 30)); i++) {{
          await frame();
          if (mine !== zooms) return null;
          const now = scaleOf(img);
          still = now === last ? still + 1 : 0;
          last = now;
        }}
        return last;
      }};
      let step = 1.05;  // the viewer's step per wheel event, measured below
      for (let round = 0; round < 6; round++) {{  // one step to measure it, then the rest at once
        const now = scaleOf(img);
        if (Math.abs(Math.log(now / target)) <= Math.log(step) / 2) return;
        wheel(img, now < target, centre(img));
        const after = await settled(now);
        if (after === null || after === now) return;  // taken over, or at the viewer's limit
        step = Math.max(after / now, now / after);
        const steps = Math.round(Math.abs(Math.log(target / after)) / Math.log(step));
        const point = centre(img);
        for (let i = 0; i < steps; i++) wheel(img, after < target, point);
        if (steps && (await settled(after)) === null) return;
      }}
    }},
    boxes(show) {{ viewer()?.classList.toggle("{BOXES_OFF_CLASS}", !show); }},
  }};
  document.addEventListener("wheel", (event) => {{  // more zoom per notch: repeat a real wheel event
    if (!event.isTrusted || !event.target.closest?.("#inspect-image .slider-wrap")) return;
    for (let i = 1; i < {WHEEL_BOOST}; i++) {{
      event.target.dispatchEvent(new WheelEvent("wheel", {{
        deltaY: event.deltaY, clientX: event.clientX, clientY: event.clientY, bubbles: true, cancelable: true }}));
    }}
  }}, {{ capture: true, passive: true }});
  // The relabel dialog filters its class list by the box's label as it opens; blurring and refocusing its input
  // makes the dropdown list every class again (its text selected, so typing still filters). A box shown without
  // its label (a dense photo) would open with the first class filled in: its colour's class is filled in instead.
  const labelsByColor = LABELS_BY_COLOR;
  const fix = (dialog) => {{
    // The dialog's colour picker: a class has one colour, so it only confuses; hidden (its value is still read).
    let picker = dialog.querySelector("input[type=color]");
    const inContent = (node) => node.parentElement.classList.contains("model-content");
    while (picker?.parentElement && !inContent(picker)) picker = picker.parentElement;
    if (picker?.parentElement) picker.style.display = "none";
    const input = dialog.querySelector("input[aria-label=Label]");
    const named = labelsByColor[(dialog.querySelector("input[type=color]")?.value || "").toLowerCase()];
    const listAll = () => {{
      input.blur(); input.focus(); input.select();
      dialog.dataset.listing = "all";  // for tests: the list is complete
    }};
    if (named && input.value !== named) {{
      input.value = named;
      input.dispatchEvent(new Event("input", {{ bubbles: true }}));
      setTimeout(listAll, 50);  // after the dropdown has filtered by the new text
    }} else listAll();
  }};
  new MutationObserver((records) => {{
    for (const record of records) for (const node of record.addedNodes) {{
      const element = node.nodeType === 1 ? node : null;
      const dialog = element && (element.id === "model-box-edit" ? element : element.querySelector("#model-box-edit"));
      if (dialog?.querySelector("input[aria-label=Label]")) setTimeout(() => fix(dialog), 50);
    }}
  }}).observe(document.body, {{ childList: true, subtree: true }});
  return [];
}}
"""


def zoom_js(target: float) -> str:
    """The click handler of a zoom button: the Count tab's viewer to ``target``× (1: the whole photo)."""
    return f"() => {{ window.sealionInspect?.zoom({target}); return []; }}"


BOXES_JS = "(show) => { window.sealionInspect?.boxes(show); return []; }"
