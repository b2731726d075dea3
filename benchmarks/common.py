"""Shared pieces of the benchmarks: machine description, statistics, tables, photos, model loading, results files."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

import detector  # noqa: F401 - its process defaults (offline, OpenMP wait policy) must apply before torch loads

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
SHARED_DATA = Path(
    os.environ.get("SEALION_NOAA_DATA")
    or os.environ.get("SEALION_SHARED_DATA")  # the older name
    or REPO_ROOT.parent / "shared" / "data" / "noaa-sealions"
)
FULLRES_DIR = SHARED_DATA / "fullres-dotted"
COUNTS_CSV = SHARED_DATA / "counts.csv"
PACKAGES = (
    "torch",
    "torchvision",
    "ultralytics",
    "sahi",
    "numpy",
    "opencv-python",
    "gradio",
    "gradio_client",
    "psutil",
    "openvino",
)


# --- machine and load -------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def machine_description() -> dict[str, Any]:
    """What the numbers were measured on."""
    import psutil
    import torch

    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": git_commit(),
    }


def busy_processes(sample_s: float = 1.0, threshold: float = 5.0) -> list[dict[str, Any]]:
    """Other processes (not this one or its children) using at least ``threshold`` % of a core over ``sample_s``."""
    import psutil

    me = psutil.Process()
    own = {me.pid} | {child.pid for child in me.children(recursive=True)}
    procs = [p for p in psutil.process_iter(["pid", "name"]) if p.pid not in own]
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)
    time.sleep(sample_s)
    busy = []
    for proc in procs:
        try:
            cpu = proc.cpu_percent(None)
            if cpu >= threshold:
                command = " ".join(proc.cmdline())[:120] or proc.info["name"]
                busy.append({"pid": proc.pid, "name": proc.info["name"], "cpu_percent": round(cpu, 1), "cmd": command})
        except psutil.Error:
            continue
    return sorted(busy, key=lambda p: -p["cpu_percent"])


def load_snapshot() -> dict[str, Any]:
    return {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "loadavg_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "busy_processes": busy_processes(),
    }


class Environment:
    """The machine, and the load on it at the start and the end of a benchmark run."""

    def __init__(self) -> None:
        self.start = load_snapshot()
        self.started = time.perf_counter()

    def finish(self) -> dict[str, Any]:
        end = load_snapshot()
        return {
            "machine": machine_description(),
            "start": self.start,
            "end": end,
            "wall_s": round(time.perf_counter() - self.started, 1),
            "other_work_running": bool(self.start["busy_processes"] or end["busy_processes"]),
        }


def describe_load(environment: dict[str, Any]) -> str:
    """One line for the printed report."""
    start, end = environment["start"], environment["end"]
    others = {p["name"] for p in start["busy_processes"] + end["busy_processes"]}
    return (
        f"{environment['machine']['cpu_model']}, {environment['machine']['logical_cores']} cores; "
        f"load avg {start['loadavg_1_5_15'][0]} -> {end['loadavg_1_5_15'][0]}; "
        f"other busy processes: {', '.join(sorted(others)) or 'none'}"
    )


# --- statistics and output ----------------------------------------------------------------------------------------


def summarize(samples: Sequence[float]) -> dict[str, float | int]:
    """Median, p95 (linear interpolation), mean, min and max of timings, in the samples' unit."""
    data = np.asarray(samples, dtype=float)
    if not len(data):
        return {"n": 0}
    return {
        "n": len(data),
        "median": round(float(np.median(data)), 4),
        "p95": round(float(np.percentile(data, 95)), 4),
        "mean": round(float(data.mean()), 4),
        "min": round(float(data.min()), 4),
        "max": round(float(data.max()), 4),
    }


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``function()`` and what it returned."""
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain Markdown table (readable in a terminal, pasteable into docs)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return "" if value is None else str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in text)) if text else len(str(h)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |" for row in text]
    return "\n".join(lines)


def write_results(name: str, payload: dict[str, Any], out: str | os.PathLike[str] | None = None) -> Path:
    """Write a benchmark's results as JSON (default ``benchmarks/results/<name>.json``); returns the path."""
    path = Path(out) if out else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": name, **payload}, indent=2, default=_json_default) + "\n")
    return path


def finish(
    name: str,
    result: dict[str, Any],
    out: str | os.PathLike[str] | None,
    environment: Any,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The end every benchmark shares: record the load during the run, write the JSON, print the table."""
    result["environment"] = environment.finish()
    path = write_results(name, result, out)
    if report is not None:
        report(result)
    print(f"\nwrote {path}")
    return result


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --- inputs -------------------------------------------------------------------------------------------------------


def default_photos() -> list[Path]:
    """The full-resolution sample photos next to the checkout (empty when the shared data is absent)."""
    return sorted(FULLRES_DIR.glob("*.jpg"), key=lambda p: (len(p.stem), p.stem)) if FULLRES_DIR.is_dir() else []


def official_counts(path: Path = COUNTS_CSV) -> dict[str, dict[str, int]]:
    """The competition's official per-class counts by photo id (``counts.csv``); empty when absent."""
    from training.io import read_counts

    return read_counts(path) if path.is_file() else {}


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", help="weights file (.pt); default: the manifest's default version")
    parser.add_argument("--version", help="model version from weights/manifest.yaml (default: its default)")
    parser.add_argument("--out", help="JSON results file (default: benchmarks/results/<name>.json)")


def load_detector(
    args: argparse.Namespace, device: str = "cpu", threads: int | None = None, runtime: str | None = None
):
    """The product's Detector for ``--weights`` / ``--version`` / ``--runtime`` (imported lazily: torch is heavy)."""
    from detector import Detector
    from detector.settings import ModelSettings

    model = ModelSettings(version=args.version, weights=Path(args.weights) if args.weights else None, device=device)
    model = model.with_options(runtime=runtime or getattr(args, "runtime", None))
    return Detector.load(model, threads=threads)


def set_threads(threads: int | None) -> int:
    """Pin torch's intra-op threads (both sides of a comparison run with the same number); returns it."""
    import torch

    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


DOCS_BENCHMARKS = REPO_ROOT / "docs" / "benchmarks.md"


def write_docs_table(name: str, text: str, path: Path = DOCS_BENCHMARKS) -> Path:
    """Put a benchmark's Markdown table into the docs, between ``<!-- name -->`` and ``<!-- /name -->`` (the docs'
    numbers then come from the product); the markers must already be there."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    document = path.read_text()
    if start not in document or end not in document:
        raise SystemExit(f"{path} has no {start} ... {end} block to fill.")
    before, rest = document.split(start, 1)
    after = rest.split(end, 1)[1]
    path.write_text(f"{before}{start}\n{text.strip()}\n{end}{after}")
    return path


def write_markdown(name: str, table: str, out: str | Path | None, docs: bool) -> None:
    """Write a benchmark's Markdown table beside its JSON (``out`` with ``.md``, else ``results/<name>.md``) and, with
    ``docs``, into its block of docs/benchmarks.md (:func:`write_docs_table`)."""
    markdown = Path(out).with_suffix(".md") if out else RESULTS_DIR / f"{name}.md"
    markdown.write_text(table + "\n")
    print(f"wrote {markdown}")
    if docs:
        print(f"wrote the table into {write_docs_table(name, table)}")
