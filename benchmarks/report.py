"""Summarise the committed results (``benchmarks/results/*.json``) as the Markdown tables of docs/benchmarks.md.

    python -m benchmarks.report [--results DIR]

Reads only the JSON files, so the tables always carry exactly the numbers of the committed runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _machine(data: dict[str, Any]) -> str:
    env = data["environment"]
    m = env["machine"]
    others = sorted({p["name"] for p in env["start"]["busy_processes"] + env["end"]["busy_processes"]})
    return (
        f"_{m['cpu_model']}, {m['logical_cores']} cores, {m['ram_gb']} GB; torch {m['packages']['torch']}, "
        f"ultralytics {m['packages']['ultralytics']}, sahi {m['packages']['sahi']}; load average "
        f"{env['start']['loadavg_1_5_15'][0]} → {env['end']['loadavg_1_5_15'][0]}; "
        f"other busy processes: {', '.join(others) or 'none'}; {env['start']['time_utc']}._"
    )


def sliced_vs_sahi(data: dict[str, Any]) -> str:
    rows = []
    for r in data["photos"]:
        s, ratio = r["seconds"], r["ratio_sahi_over_ours"]
        total = {name: sum(c.values()) for name, c in r["counts"].items()}
        official = sum(r["official"].values()) if r["official"] else None
        errors = r.get("total_abs_error_vs_official")
        if errors:
            official = f"{official} (err {errors['ours']} / {errors['sahi_matched']} / {errors['sahi_defaults']})"
        rows.append(
            [
                Path(r["photo"]).name,
                r["tiles"],
                f"{s['ours']['median']:.3f}",
                f"{s['sahi_matched']['median']:.3f} ({ratio['sahi_matched']['of_medians']:.2f}x)",
                f"{s['sahi_defaults']['median']:.3f} ({ratio['sahi_defaults']['of_medians']:.2f}x)",
                f"{total['ours']} / {total.get('ours_sahi_grid', '-')} / {total['sahi_matched']} / "
                f"{total['sahi_defaults']}",
                official,
            ]
        )
    headers = ["photo", "tiles", "ours s", "SAHI matched s (ratio)", "SAHI defaults s (ratio)"]
    table = format_table(
        [
            *headers,
            "total ours / ours on SAHI tiles / matched / defaults",
            "official (abs err ours / matched / defaults)",
        ],
        rows,
    )
    summary = data["summary"]
    threads = data["settings"]["torch_threads_both"]
    return (
        f"{table}\n\nTorch threads on both sides: {threads}. Speed goal ({summary['speed_goal']}): "
        f"{'met' if summary['speed_goal_met'] else 'not met'}; "
        f"per-class counts within 2% of SAHI matched: {'yes' if summary['count_goal_met'] else 'no'} "
        f"(ours cutting SAHI's tile positions: "
        f"{ {True: 'yes', False: 'no', None: 'n/a'}[summary.get('count_goal_met_on_sahi_tile_positions')] }); "
        f"ours at least as close to the official counts as SAHI matched: "
        f"{ {True: 'yes', False: 'no', None: 'n/a'}[summary.get('official_goal_met')] }.\n\n"
        f"{_machine(data)}"
    )


def plain_vs_sliced(data: dict[str, Any]) -> str:
    rows = []
    for r in data["photos"]:
        official = sum(r["official"].values()) if r["official"] else None
        row = [Path(r["photo"]).name]
        for method in ("plain", "sliced", "one_pass"):
            if method not in r["counts"]:
                row.append("")
                continue
            error = r.get("total_abs_error", {}).get(method)
            suffix = f", err {error}" if error is not None else ""
            row.append(f"{r['seconds'][method]['median']:.3f} s, {sum(r['counts'][method].values())}{suffix}")
        rows.append([*row, official])
    headers = ["photo", "plain (default imgsz)", "sliced (ours)", "one pass at model scale", "official"]
    note = "Cells: median seconds, total count, sum over classes of |count - official|."
    return f"{format_table(headers, rows)}\n\n{note}\n\n{_machine(data)}"


def api_overhead(data: dict[str, Any]) -> str:
    s, ratio = data["seconds"], data["ratio_over_detector"]
    rows = [
        ["Detector.count in process", s["detector_in_process"]["median"] * 1000, s["detector_in_process"]["p95"] * 1000]
        + ["1.00", "1.00"],
        ["count + overlay in process", s["service_in_process"]["median"] * 1000, s["service_in_process"]["p95"] * 1000]
        + [f"{ratio['service_in_process']['median']:.2f}", f"{ratio['service_in_process']['p95']:.2f}"],
        ["/count via gradio_client", s["api"]["median"] * 1000, s["api"]["p95"] * 1000]
        + [f"{ratio['api']['median']:.2f}", f"{ratio['api']['p95']:.2f}"],
    ]
    table = format_table(["method", "median ms", "p95 ms", "ratio median", "ratio p95"], rows)
    settings = data["settings"]
    return (
        f"{table}\n\n{Path(settings['photo']).name}, photo scale {settings['photo_scale']}, "
        f"{settings['calls']} calls each; goal ({data['goal']}): {'met' if data['goal_met'] else 'not met'}.\n\n"
        f"{_machine(data)}"
    )


def load(data: dict[str, Any]) -> str:
    s, q, rss, lat = data["settings"], data["queue"], data["rss_mb"], data["latency_s"]
    after_wave = rss.get("growth_after_first_wave")
    rows = [
        [
            f"{s['clients']} x {s['requests_per_client']}",
            s["app_command"].replace("python app.py --host 127.0.0.1 --port <free> --device cpu", "").strip()
            or "(defaults)",
            data["succeeded"],
            data["failed"],
            lat.get("median"),
            lat.get("p95"),
            q["max_position_seen"],
            q["wait_s"].get("median"),
            f"{rss['before']} → {rss['after']} ({rss['growth'] * 100:+.1f}%)",
            "" if after_wave is None else f"{after_wave * 100:+.1f}%",
        ]
    ]
    headers = ["clients x requests", "app args", "ok", "failed", "p50 s", "p95 s", "max queue pos", "wait p50 s"]
    table = format_table([*headers, "RSS MB", "growth after 1st wave"], rows)
    reasons = f"\n\nFailures: {data['failure_reasons']}" if data["failure_reasons"] else ""
    return f"{table}{reasons}\n\n{_machine(data)}"


def gpu(data: dict[str, Any]) -> str:
    rows = [["per-tile YOLO.predict loop", 1, data["per_tile_loop"]["tiles_per_s"], 1.0]]
    rows += [["ours", r["batch_size"], r["tiles_per_s"], r["speedup_vs_per_tile_loop"]] for r in data["batches"]]
    return f"{format_table(['method', 'batch', 'tiles/s', 'vs loop'], rows)}\n\n{_machine(data)}"


def threads(data: dict[str, Any]) -> str:
    rows = [[c["policy"], c["threads"], c["tiles"], c["seconds"]["median"], c["seconds"]["p95"]] for c in data["cells"]]
    s = data["settings"]
    table = format_table(["OpenMP wait policy", "torch threads", "tiles", "median s", "p95 s"], rows)
    return f"{table}\n\n{Path(s['photo']).name}, photo scale {s['photo_scale']}.\n\n{_machine(data)}"


SECTIONS = {
    "sliced_vs_sahi": ("Sliced inference vs SAHI", sliced_vs_sahi),
    "sliced_vs_sahi_threads1": ("Sliced inference vs SAHI, both at 1 torch thread", sliced_vs_sahi),
    "plain_vs_sliced": ("Plain vs sliced", plain_vs_sliced),
    "api_overhead": ("API overhead", api_overhead),
    "load": ("Load", load),
    "load_queue64": ("Load, app with --queue-size 64", load),
    "load_queue64_arena2": ("Load, app with --queue-size 64 and MALLOC_ARENA_MAX=2", load),
    "threads": ("CPU threads and OpenMP wait policy", threads),
    "gpu": ("GPU", gpu),
}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    parts = []
    for name, (title, render) in SECTIONS.items():
        data = _load(args.results, name)
        body = render(data) if data else "_No results file (not run here)._"
        parts.append(f"### {title} (`{name}.json`)\n\n{body}")
    text = "\n\n".join(parts)
    print(text)
    return text


if __name__ == "__main__":
    main()
