"""Sea lion counter: Gradio web app and API over :mod:`detector`.

    python app.py                      # http://0.0.0.0:7860, shipped default model, offline
    python app.py --share              # also ask Gradio for a public link (or GRADIO_SHARE=1)
    python app.py --host 127.0.0.1 --port 8080 --model-version v1 --device cpu

Named API endpoints (see docs/app.md): ``/count``, ``/count_batch``, ``/model_info``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_STARTED = time.perf_counter()  # cold start is measured from here: the heavy imports below included

# Offline and private by default; set before gradio/ultralytics/huggingface_hub are imported.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

from detector.errors import DetectorError  # noqa: E402
from detector.model import DEFAULT_IOU  # noqa: E402
from sealion_app import present  # noqa: E402
from sealion_app.components import PhotoInput  # noqa: E402
from sealion_app.models import ModelRegistry  # noqa: E402
from sealion_app.service import CountOptions, count_batch, count_photo, prune_old_batches  # noqa: E402

logger = logging.getLogger("sealion_app")

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
EXAMPLE_PHOTO_SCALE = 0.25  # the shipped examples are NOAA photos downsampled 4x
DEFAULT_MAX_FILE_SIZE = "200mb"
DEFAULT_QUEUE_SIZE = 64  # a burst of 32 users (benchmarks.load) fits; still bounded
TRUE_WORDS = {"1", "true", "yes", "on"}

ABOUT_MD = """
## What it does

The app counts **Steller sea lions** in aerial survey photographs, per class: adult males, subadult males,
adult females, juveniles and pups. It is built for the NOAA Fisheries survey photos (about 4992×3328 px each).

## How it works

1. **Dots → boxes.** Biologists marked every animal in the training photos with a coloured dot, one colour per
   class. Each dot becomes a box of the class's typical body size (about 120 px for an adult male down to 40 px
   for a pup at native resolution).
2. **YOLOv5.** A YOLOv5 detector (trained with `ultralytics`) learns those boxes on tiles cut from the photos.
3. **Tiles.** A survey photo is far larger than the network's input, and a pup is only a few dozen pixels long,
   so the photo is resized to the scale the model was trained at (`photo scale`: 1.0 for native survey photos,
   0.25 for photos downsampled 4×) and cut into overlapping tiles. Each tile is detected at full resolution.
4. **Counts.** Detections from all tiles are merged (duplicates in the overlaps removed) and counted per class,
   each class at its own confidence threshold: the one that counted best on photos the model never saw
   (cross-validation). A confidence above 0 in the settings replaces them with one threshold for every class.

The annotated photo shows one box per detected animal in its class colour, with the counts in the corner.
Counts are estimates: check the boxes. The Model tab gives each class's typical count error on unseen photos;
changing the threshold by hand usually makes counts worse, not better (a lower one adds false detections).

## Training data

The plot shows how many animals of each class the 17 NOAA sample photos hold, from the competition's official
counts (`counts.csv`). The shipped model was trained on these photos, and the examples are among them, so counts on
the examples are in-sample; the Model tab gives the cross-validated error. Adult females and pups dominate; adult
and subadult males are rare, so the model sees far fewer examples of them.
"""


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


def _options(conf: float, iou: float, slicing: str, tile_size: float | None, photo_scale: float) -> CountOptions:
    return CountOptions(
        conf=float(conf) if conf else None,  # 0: the model version's calibrated per-class thresholds
        iou=float(iou),
        slicing=str(slicing or "auto"),
        tile_size=int(tile_size) if tile_size else None,
        photo_scale=float(photo_scale or 1.0),
    )


def build_demo(registry: ModelRegistry) -> gr.Blocks:
    """The UI and its API endpoints, over one shared model registry."""
    default = registry.default
    default_info = present.model_info(default)
    batch_dir = Path(tempfile.mkdtemp(prefix="sealion-app-"))  # batch thumbnails and CSVs, pruned after a day

    @human_errors
    def count(
        image: str | None,
        conf: float = 0.0,
        iou: float = DEFAULT_IOU,
        slicing: str = "auto",
        tile_size: float = 0,
        photo_scale: float = 1.0,
        model_version: str = "",
    ):
        """Count sea lions in one photo: annotated JPEG, per-class counts table, JSON result, status line."""
        if not image:
            raise gr.Error("Upload a photo (or pick an example) first.", print_exception=False)
        detector = registry.get(model_version or None)
        path = Path(image)
        annotated, result = count_photo(detector, path, path.name, _options(conf, iou, slicing, tile_size, photo_scale))
        # A file of our own, not an array: Gradio rewrites an array's cache file in place (same name for the same
        # picture), so a client downloading it while another request draws the same photo got a truncated JPEG;
        # a file is copied into the cache once, atomically (gradio.processing_utils.save_file_to_cache).
        prune_old_batches(batch_dir)
        folder = Path(tempfile.mkdtemp(prefix="sealion-count-", dir=batch_dir))
        jpeg = folder / f"{path.stem}.annotated.jpg"
        Image.fromarray(present.fit_for_jpeg(annotated)).save(jpeg, quality=90)
        return str(jpeg), present.counts_table(result), present.result_dict(result), present.status_line(result)

    @human_errors
    def count_many(
        files: list[str] | None,
        conf: float = 0.0,
        iou: float = DEFAULT_IOU,
        slicing: str = "auto",
        tile_size: float = 0,
        photo_scale: float = 1.0,
        model_version: str = "",
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's documented way to receive a tracker
    ):
        """Count every photo in the uploaded files and .zip archives; bad files are listed with their reason."""
        if not files:
            raise gr.Error("Upload photos or a .zip of photos first.", print_exception=False)
        detector = registry.get(model_version or None)
        started = time.perf_counter()

        def report(done: int, total: int, name: str) -> None:
            progress((done, total), desc=f"counting {name}" if done < total else "done", unit="photos")

        prune_old_batches(batch_dir)
        options = _options(conf, iou, slicing, tile_size, photo_scale)
        outcome = count_batch(detector, [str(f) for f in files], options, progress=report, out_dir=batch_dir)
        table = present.batch_table(outcome.results, detector.class_names)
        failures = present.failures_table(outcome.failures)
        elapsed = time.perf_counter() - started
        summary = (
            f"Counted **{len(outcome.results)}** photo(s), **{len(outcome.failures)}** file(s) failed · "
            f"{elapsed:.1f} s on **{detector.device}** · model **{detector.info.version}**"
        )
        if len(outcome.results) > len(outcome.thumbnails):
            summary += f" · gallery shows the first {len(outcome.thumbnails)} photos (all are in the table and CSV)"
        csv_path = str(outcome.csv_path) if outcome.csv_path else None
        return table, failures, csv_path, outcome.thumbnails, outcome.summary(), summary

    @human_errors
    def model_info(model_version: str = "") -> dict:
        """The loaded model version: tag, commit sha, sha256, source, classes and colours, device, metrics."""
        return present.model_info(registry.get(model_version or None))

    @human_errors
    def show_model(model_version: str):
        data = present.model_info(registry.get(model_version or None))
        return (
            present.model_markdown(data),
            present.classes_html(data["class_names"]),
            present.metrics_table(data["metrics"]),
            data,
        )

    examples = sorted(EXAMPLES_DIR.glob("*.jpg"))
    distribution = present.class_distribution()

    with gr.Blocks(title="Sea lion counter", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as demo:
        gr.Markdown(
            "# Steller sea lion counter\nCount adult males, subadult males, adult females, juveniles and pups "
            "in aerial survey photos."
        )
        model_version = gr.Dropdown(
            registry.choices(),
            value=registry.default_label,
            label="Model version",
            info="From weights/manifest.yaml; other versions load on first use.",
            interactive=True,
        )
        with gr.Tabs():
            with gr.Tab("Count", id="count"):
                with gr.Row():
                    with gr.Column(scale=1):
                        image = PhotoInput(
                            type="filepath", label="Photo", sources=["upload", "clipboard"], elem_id="photo-input"
                        )
                        with gr.Accordion("Detection settings", open=True):
                            conf = gr.Slider(
                                0,
                                0.99,
                                value=0,
                                step=0.01,
                                label="Confidence threshold",
                                info="0 = the model's calibrated threshold per class (counts best on unseen photos)",
                            )
                            iou = gr.Slider(0.05, 0.95, value=DEFAULT_IOU, step=0.05, label="IoU threshold (NMS)")
                            slicing = gr.Radio(
                                ["auto", "on", "off"],
                                value="auto",
                                label="Sliced inference",
                                info="auto: tile photos larger than a tile; on: always; off: whole photo at once",
                            )
                            tile_size = gr.Slider(
                                0,
                                2048,
                                value=0,
                                step=32,
                                label="Tile size (px)",
                                info=f"0 = the model's input size ({default.imgsz} px)",
                            )
                            photo_scale = gr.Number(
                                value=1.0,
                                minimum=0.01,
                                maximum=10,
                                step=0.05,
                                label="Photo scale",
                                info="Resolution relative to a native survey photo: 1.0 native, 0.25 if downsampled 4x",
                                elem_id="photo-scale",
                            )
                        count_button = gr.Button("Count", variant="primary")
                        if examples:
                            gr.Examples(
                                [[str(p), EXAMPLE_PHOTO_SCALE] for p in examples],
                                inputs=[image, photo_scale],
                                label="Examples: NOAA training-sample photos, downsampled 4x (photo scale 0.25)",
                                cache_examples=False,
                            )
                    with gr.Column(scale=2):
                        annotated = gr.Image(
                            label="Annotated photo",
                            show_label=False,  # the floating label would hide the top of the counts legend
                            format="jpeg",
                            type="numpy",
                            interactive=False,
                            elem_id="annotated-image",
                        )
                        status = gr.Markdown(elem_id="count-status")
                        counts = gr.Dataframe(
                            headers=present.COUNT_COLUMNS,
                            label="Counts per class",
                            interactive=False,
                            elem_id="counts-table",
                        )
                        with gr.Accordion("JSON result", open=False):
                            result_json = gr.JSON(label="Result")
                count_button.click(
                    count,
                    inputs=[image, conf, iou, slicing, tile_size, photo_scale, model_version],
                    outputs=[annotated, counts, result_json, status],
                    api_name="count",
                    concurrency_id="detector",
                )

            with gr.Tab("Batch", id="batch"):
                gr.Markdown(
                    "Upload many photos, or .zip archives of photos. Every photo is counted with the settings of the "
                    "Count tab; files that cannot be read are listed with the reason."
                )
                files = gr.File(file_count="multiple", label="Photos and .zip archives", elem_id="batch-files")
                batch_button = gr.Button("Count all", variant="primary")
                batch_status = gr.Markdown(elem_id="batch-status")
                batch_table = gr.Dataframe(
                    present.batch_table([], default.class_names),
                    label="Counts per photo",
                    interactive=False,
                    elem_id="batch-table",
                )
                batch_errors = gr.Dataframe(
                    headers=["file", "error"], label="Files not counted", interactive=False, elem_id="batch-errors"
                )
                batch_csv = gr.File(label="CSV (one row per photo)", interactive=False, elem_id="batch-csv")
                gallery = gr.Gallery(
                    label="Annotated photos", columns=4, format="jpeg", height="auto", elem_id="batch-gallery"
                )
                with gr.Accordion("JSON result", open=False):
                    batch_json = gr.JSON(label="Batch result")
                batch_button.click(
                    count_many,
                    inputs=[files, conf, iou, slicing, tile_size, photo_scale, model_version],
                    outputs=[batch_table, batch_errors, batch_csv, gallery, batch_json, batch_status],
                    api_name="count_batch",
                    concurrency_id="detector",
                )

            with gr.Tab("Model", id="model"):
                model_md = gr.Markdown(present.model_markdown(default_info))
                gr.Markdown("#### Classes and their colours on annotated photos")
                classes = gr.HTML(present.classes_html(default_info["class_names"]))
                metrics = gr.Dataframe(
                    present.metrics_table(default_info["metrics"]), label="Model card metrics", interactive=False
                )
                with gr.Accordion("Raw model info", open=False):
                    info_json = gr.JSON(default_info)
                model_version.change(
                    show_model,
                    inputs=model_version,
                    outputs=[model_md, classes, metrics, info_json],
                    api_visibility="private",
                    concurrency_id="model_load",
                )

            with gr.Tab("About / data", id="about"):
                gr.Markdown(ABOUT_MD)
                gr.BarPlot(
                    distribution,
                    x="class",
                    y="animals",
                    color="class",
                    color_map=present.class_color_map(default.class_names),
                    sort=list(distribution["class"]),
                    y_lim=[0, None],  # bars start at zero, so rare classes do not look absent
                    title=f"Animals per class in the NOAA training sample ({distribution['animals'].sum()} in total)",
                    label="Class distribution (official counts.csv)",
                )

        gr.api(model_info, api_name="model_info", concurrency_id="model_load")
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description="Sea lion counter web app (Gradio).")
    parser.add_argument(
        "--host",
        default=env.get("GRADIO_SERVER_NAME", "0.0.0.0"),
        help="interface to listen on (default %(default)s, what Spaces expect) [GRADIO_SERVER_NAME]",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(env.get("GRADIO_SERVER_PORT") or env.get("PORT") or 7860),
        help="port (default %(default)s) [GRADIO_SERVER_PORT]",
    )
    parser.add_argument(
        "--share",
        action="store_true",
        default=env.get("GRADIO_SHARE", "").strip().lower() in TRUE_WORDS,
        help="also ask Gradio for a temporary public link [GRADIO_SHARE=1]",
    )
    parser.add_argument("--model-version", default=None, help="model version from weights/manifest.yaml")
    parser.add_argument("--weights", default=None, help="explicit local weights file [SEALION_WEIGHTS]")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps [SEALION_DEVICE]")
    parser.add_argument(
        "--max-file-size", default=DEFAULT_MAX_FILE_SIZE, help="largest upload accepted (default %(default)s)"
    )
    parser.add_argument(
        "--queue-size", type=int, default=DEFAULT_QUEUE_SIZE, help="requests waiting at most (default %(default)s)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, help="requests counted at the same time (default %(default)s)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own readiness probes
    try:
        registry = ModelRegistry.start(args.model_version, args.weights, args.device)
    except DetectorError as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2
    info = registry.default.info
    demo = build_demo(registry)
    demo.queue(max_size=args.queue_size, default_concurrency_limit=args.concurrency)
    try:
        _, local_url, share_url = demo.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            max_file_size=args.max_file_size,
            show_error=False,
            debug=False,
            enable_monitoring=False,
            mcp_server=False,
            ssr_mode=False,
            prevent_thread_lock=True,
        )
    except OSError as exc:  # e.g. the port is taken
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    if args.share and not share_url:
        print(
            "Sharing: could not create a public share link (no internet connection, or Gradio's share server is "
            f"unreachable). The app is still serving locally at {local_url}",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"Sea lion counter ready at {local_url} in {time.perf_counter() - _STARTED:.1f} s "
        f"(model {info.version}, sha256 {info.sha256[:12]}, {info.source}, device {registry.default.device})",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
