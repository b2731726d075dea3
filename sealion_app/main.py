"""Start the web app: ``sealion-app`` (installed) or ``python app.py`` (a checkout); the same ``main``.

sealion-app                              # http://0.0.0.0:7860, shipped default model, offline
sealion-app --share                      # also ask Gradio for a public link (or GRADIO_SHARE=1)
sealion-app --host 127.0.0.1 --port 8080 --model-version v1 --device cpu
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import sys
import time
from pathlib import Path

_STARTED = time.perf_counter()  # cold start is measured from here: the heavy imports in main() included

DEFAULT_MAX_FILE_SIZE = "200mb"
DEFAULT_QUEUE_SIZE = 64  # a burst of 32 users (benchmarks.load) fits; still bounded


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from detector.arguments import add_model_arguments
    from detector.settings import ENV_REVIEWS_DIR, TRUE_WORDS

    env = os.environ
    parser = argparse.ArgumentParser(prog="sealion-app", description="Sea lion counter web app (Gradio).")
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
    add_model_arguments(parser)
    parser.add_argument(
        "--max-file-size", default=DEFAULT_MAX_FILE_SIZE, help="largest upload accepted (default %(default)s)"
    )
    parser.add_argument(
        "--queue-size", type=int, default=DEFAULT_QUEUE_SIZE, help="requests waiting at most (default %(default)s)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="single photos counted at the same time, taking turns on the model one tile batch each; batches run "
        "one at a time on their own queue (default %(default)s)",
    )
    parser.add_argument(
        "--reviews-dir",
        type=Path,
        default=None,
        help="where saved reviews are kept; they outlive the app (default: $XDG_DATA_HOME/sealion-counter/reviews, "
        f"XDG_DATA_HOME defaulting to ~/.local/share) [{ENV_REVIEWS_DIR}]",
    )
    return parser.parse_args(argv)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas (one per thread by default): the app's request threads otherwise keep freed photo
    buffers in many arenas and RSS creeps up per request (benchmarks.limits). ``MALLOC_ARENA_MAX`` in the
    environment wins; a libc without ``mallopt`` (macOS, musl) is left alone."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8: M_ARENA_MAX


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit_malloc_arenas()  # before any thread exists
    # parse_args imported detector, which set the offline defaults before gradio, ultralytics or the hub load
    from detector.environment import check_torch_pair

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own readiness probes
    from detector.logs import quiet_libraries
    from sealion_app.ui.quiet import quiet_gradio

    quiet_gradio()  # no line per browser request
    quiet_libraries()  # ultralytics' loading lines off stdout
    from detector.errors import DetectorError

    try:
        check_torch_pair()
    except DetectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from detector.arguments import option_message, settings_from
    from detector.counting.images import set_max_pixels
    from sealion_app.models import ModelRegistry
    from sealion_app.ui.demo import build_demo

    try:
        settings = settings_from(args)
        set_max_pixels(settings.max_pixels)
        registry = ModelRegistry.start(settings.model)
    except DetectorError as exc:
        print(f"error: cannot load the model: {option_message(exc)}", file=sys.stderr)
        return 2
    info = registry.default.info
    reviews_dir = args.reviews_dir or settings.reviews_dir
    demo = build_demo(registry, count_workers=args.concurrency, reviews_dir=reviews_dir)
    demo.queue(max_size=args.queue_size)
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
        f"(model {info.version}, sha256 {info.sha256[:12]}, {info.source}, device {registry.default.device}, "
        f"runtime {info.runtime}); reviews are saved in {reviews_dir}",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
