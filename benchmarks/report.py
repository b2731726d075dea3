"""Summarise the committed results (``benchmarks/results/*.json``) as the Markdown tables of docs/benchmarks.md.

    python -m benchmarks.report [--results DIR] [--docs]

Reads only the JSON files, so the tables always carry exactly the numbers of the committed runs. ``--docs`` puts
them into docs/benchmarks.md (the ``report`` block; ``tests/test_docs_consistency.py`` holds the docs to them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table, write_docs_table


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
    if "lean_api" in s:  # measured since the lean endpoint exists
        rows.append(
            ["/count_data via gradio_client", s["lean_api"]["median"] * 1000, s["lean_api"]["p95"] * 1000]
            + [f"{ratio['lean_api']['median']:.2f}", f"{ratio['lean_api']['p95']:.2f}"]
        )
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


def runtimes(data: dict[str, Any]) -> str:
    names = list(data["summary"])
    rows = []
    for r in data["photos"]:
        torch_counts = r["counts"]["torch"]
        cells = []
        for name in names[1:]:
            moved = [
                f"{c} {r['counts'][name][c] - v:+d}/{v}" for c, v in torch_counts.items() if r["counts"][name][c] != v
            ]
            cells.append((", ".join(moved) or "same") + ("" if r["within_tolerance"][name] else " (outside)"))
        rows.append([r["photo"], r["tiles"], *[f"{r['seconds'][n]['median']:.3f}" for n in names], *cells])
    per_photo = format_table(
        ["photo", "tiles", *[f"{n} s" for n in names], *[f"{n}: counts vs torch" for n in names[1:]]], rows
    )
    total = len(data["photos"])
    summary_rows = [
        [n, f"{s['mean_of_median_seconds_per_photo']:.3f}", f"{s['speedup_over_torch']:.2f}x",
         f"{s['photos_within_tolerance']}/{total}", s["max_count_difference"], s["total_animals"]]
        for n, s in data["summary"].items()
    ]  # fmt: skip
    summary_table = format_table(
        ["runtime", "s/photo (mean of medians)", "vs torch", "photos within 1 % / ±1", "max diff", "animals"],
        summary_rows,
    )
    return f"{summary_table}\n\n{per_photo}\n\n{_machine(data)}"


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
    "runtimes": ("Runtimes: torch vs exported (OpenVINO)", runtimes),
}


def _range(values: list[float], digits: int = 2) -> str:
    low, high = min(values), max(values)
    return f"{low:.{digits}f}" if round(low, digits) == round(high, digits) else f"{low:.{digits}f}–{high:.{digits}f}"


def summary(folder: Path) -> str:
    """One line per benchmark: the headline number, its goal, and whether it was met."""
    rows = []
    for name in ("sliced_vs_sahi", "sliced_vs_sahi_threads1"):
        data = _load(folder, name)
        if not data:
            continue
        photos, threads = data["photos"], data["settings"]["torch_threads_both"]
        matched = [r["ratio_sahi_over_ours"]["sahi_matched"]["of_medians"] for r in photos]
        defaults = [r["ratio_sahi_over_ours"]["sahi_defaults"]["of_medians"] for r in photos]
        ours = [r["seconds"]["ours"]["median"] for r in photos]
        met = "yes" if data["summary"]["speed_goal_met"] else "no"
        rows.append(
            [
                f"SAHI time / ours ({len(photos)} photos, {threads} thread{'s' if threads > 1 else ''})",
                f"matched {_range(matched)}x, defaults {_range(defaults)}x (ours {_range(ours, 3)} s)",
                "≥ 3x",
                met,
            ]
        )
        diffs = [
            abs(v["relative"]) if v["relative"] is not None else float("inf")
            for r in photos
            for k, v in r["agreement"]["sahi_matched"]["per_class"].items()
            if k != "total" and v["diff"]
        ]
        rows.append(
            [
                f"per-class counts vs SAHI matched ({threads} thread{'s' if threads > 1 else ''})",
                f"largest difference {max(diffs, default=0) * 100:.0f}%" if diffs else "identical",
                "within 2%",
                "yes" if data["summary"]["count_goal_met"] else "no",
            ]
        )
    data = _load(folder, "plain_vs_sliced")
    if data:
        errors = {m: sum(r.get("total_abs_error", {}).get(m, 0) for r in data["photos"]) for m in ("plain", "sliced")}
        found = {m: sum(sum(r["counts"][m].values()) for r in data["photos"]) for m in ("plain", "sliced")}
        official = sum(sum(r["official"].values()) for r in data["photos"] if r["official"])
        rows.append(
            [
                "plain YOLO.predict vs sliced: animals found (official)",
                f"plain {found['plain']}, sliced {found['sliced']} ({official}); abs error "
                f"{errors['plain']} vs {errors['sliced']}",
                "—",
                "—",
            ]
        )
    data = _load(folder, "api_overhead")
    if data:
        ratio = data["ratio_over_detector"]["api"]
        rows.append(
            [
                "/count via gradio_client vs in process",
                f"median {ratio['median']:.2f}x, p95 {ratio['p95']:.2f}x (+{ratio['overhead_median_ms']:.0f} ms)",
                "≤ 1.25x",
                "yes" if data["goal_met"] else "no",
            ]
        )
    for name in ("load", "load_queue64", "load_queue64_arena2"):
        data = _load(folder, name)
        if not data:
            continue
        args = data["settings"]["app_command"].replace("python app.py --host 127.0.0.1 --port <free> --device cpu", "")
        size = f"{data['settings']['clients']}x{data['settings']['requests_per_client']}"
        label = f"load {size} ({args.strip() or 'app defaults'})"
        rows.append(
            [
                label,
                f"{data['failed']} of {data['requests']} failed; p50 {data['latency_s'].get('median', 0):.1f} s, "
                f"p95 {data['latency_s'].get('p95', 0):.1f} s; RSS {data['rss_mb']['growth'] * 100:+.0f}%",
                "0 failures; RSS ≤ +10%",
                f"{'yes' if data['goals']['no_failures'] else 'no'}; "
                f"{'yes' if data['goals']['rss_growth_within_10pct'] else 'no'}",
            ]
        )
    data = _load(folder, "threads")
    if data:
        cells = {(c["policy"], c["threads"]): c["seconds"]["median"] for c in data["cells"]}
        most = max(t for _, t in cells)
        base, other = list(dict.fromkeys(policy for policy, _ in cells))[:2]
        rows.append(
            [
                f"Detector.count, {most} threads: {base} vs {other} OpenMP wait",
                f"{cells[(base, most)]:.2f} s vs {cells[(other, most)]:.2f} s "
                f"(1 thread: {cells[(base, 1)]:.2f} / {cells[(other, 1)]:.2f} s)",
                "—",
                "—",
            ]
        )
    rows.append(["GPU fp16 batches", "measured" if _load(folder, "gpu") else "not run: no CUDA here", "—", "—"])
    return format_table(["benchmark", "result", "goal", "met"], rows)


def report(folder: Path = RESULTS_DIR, heading: str = "###") -> str:
    """Every table, each under a ``heading`` of that level."""
    parts = [f"{heading} Summary\n\n{summary(folder)}"]
    for name, (title, render) in SECTIONS.items():
        data = _load(folder, name)
        body = render(data) if data else "_No results file (not run here)._"
        parts.append(f"{heading} {title} (`{name}.json`)\n\n{body}")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--docs", action="store_true", help="also put the tables into docs/benchmarks.md")
    args = parser.parse_args(argv)
    text = report(args.results)
    print(text)
    if args.docs:
        write_docs_table("report", report(args.results, heading="####"))
    return text


if __name__ == "__main__":
    main()
