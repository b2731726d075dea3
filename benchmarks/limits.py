"""Bounded work per request, measured on the real app: a normal ``/count`` while a maximal allowed one runs, and
memory and temporary disk over rounds of many clients.

    python -m benchmarks.limits [--rounds 5 --clients 32 --requests 3 --idle 60] [--concurrency 1 2]

1. **Stall.** A survey-size photo (the shipped example enlarged 4x, 5616x3744) counted at the largest work the
   budget allows (adult females ~20 px: the photo becomes ~63 MP for the model), and 1 s later a normal request
   (the 1248x832 example at auto scale). Reported: the normal request's latency alone and behind the maximal one,
   for each ``--concurrency`` of the app.
2. **Rounds.** ``--rounds`` rounds of ``--clients`` clients x ``--requests`` requests of the normal photo; the
   app's RSS after each round and after ``--idle`` seconds without requests, and the size of its temporary files
   (Gradio's cache and the app's own folders, both pointed at one folder for the run). Goals: after the first round
   RSS grows at most 10 %; temporary disk stays bounded, not growing per request.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.app_server import AppServer
from benchmarks.common import REPO_ROOT, Environment, describe_load, finish, format_table, log

NAME = "limits"
NORMAL = REPO_ROOT / "examples" / "noaa_train_6.jpg"
# 5616x3744 with adult females 23 px: photo scale 0.2875, x1.74 for a ground-scale-0.5 model → 9767x6511 px =
# 63.6 MP, just inside the 64 MP work budget (950 tiles of 320 px).
MAXIMAL_FEMALE_PX = 23.0


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def survey_size_photo(folder: Path) -> Path:
    from PIL import Image

    with Image.open(REPO_ROOT / "examples" / "noaa_train_0.jpg") as small:
        big = small.resize((small.width * 4, small.height * 4))
    path = folder / "survey-size.jpg"
    big.save(path, quality=90)
    return path


def count(client: Any, photo: Path, female_px: float) -> float:
    from gradio_client import handle_file

    started = time.perf_counter()
    client.predict(handle_file(str(photo)), female_length_px=female_px, api_name="/count")
    return time.perf_counter() - started


def stall(concurrency: int, big: Path, downloads: str) -> dict[str, Any]:
    from gradio_client import Client

    with AppServer(extra_args=["--concurrency", str(concurrency)]) as app:
        client = Client(app.url, verbose=False, download_files=downloads)
        count(client, NORMAL, 0)  # warm-up
        alone = sorted(count(client, NORMAL, 0) for _ in range(3))[1]
        maximal: dict[str, float] = {}
        thread = threading.Thread(
            target=lambda: maximal.setdefault("s", count(Client(app.url, verbose=False), big, MAXIMAL_FEMALE_PX))
        )
        thread.start()
        time.sleep(1)
        behind = count(client, NORMAL, 0)
        thread.join()
    return {"concurrency": concurrency, "normal_alone_s": alone, "normal_behind_maximal_s": behind,
            "maximal_s": maximal["s"]}  # fmt: skip


def rounds(args: argparse.Namespace, downloads: str) -> dict[str, Any]:
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory(prefix="sealion-limits-tmp-") as tmp:
        temp = Path(tmp)
        env = {"GRADIO_TEMP_DIR": str(temp / "gradio"), "TMPDIR": str(temp / "app")}
        (temp / "app").mkdir()
        with AppServer(extra_env=env) as app:
            rss, disk = [app.rss_bytes()], [folder_bytes(temp)]

            def session(_: int) -> int:
                client = Client(app.url, verbose=False, download_files=downloads)
                for _ in range(args.requests):
                    client.predict(handle_file(str(NORMAL)), api_name="/count")
                return args.requests

            for number in range(args.rounds):
                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=args.clients) as pool:
                    done = sum(pool.map(session, range(args.clients)))
                rss.append(app.rss_bytes())
                disk.append(folder_bytes(temp))
                log(f"round {number + 1}: {done} requests in {time.perf_counter() - started:.0f} s, "
                    f"RSS {rss[-1] / 1e6:.0f} MB, temp {disk[-1] / 1e6:.1f} MB")  # fmt: skip
            time.sleep(args.idle)
            rss_idle, disk_idle = app.rss_bytes(), folder_bytes(temp)
    growth = (rss[-1] - rss[1]) / rss[1]
    return {
        "rss_mb": [round(v / 1e6, 1) for v in rss],
        "rss_idle_mb": round(rss_idle / 1e6, 1),
        "temp_mb": [round(v / 1e6, 2) for v in disk],
        "temp_idle_mb": round(disk_idle / 1e6, 2),
        "growth_after_first_round": round(growth, 4),
        "requests_per_round": args.clients * args.requests,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--idle", type=float, default=60)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    environment = Environment()
    with tempfile.TemporaryDirectory() as downloads:
        big = survey_size_photo(Path(downloads))
        stalls = [stall(c, big, downloads) for c in args.concurrency]
        for row in stalls:
            behind, maximal = row["normal_behind_maximal_s"], row["maximal_s"]
            log(f"concurrency {row['concurrency']}: normal {row['normal_alone_s']:.2f} s alone, "
                f"{behind:.2f} s behind a maximal request of {maximal:.1f} s")  # fmt: skip
        memory = rounds(args, downloads) if args.rounds else None
    print(format_table(
        ["app --concurrency", "normal /count alone s", "normal behind maximal s", "maximal request s"],
        [[r["concurrency"], round(r["normal_alone_s"], 2), round(r["normal_behind_maximal_s"], 2),
          round(r["maximal_s"], 1)] for r in stalls],
    ))  # fmt: skip
    if memory:
        print(format_table(
            ["after", "RSS MB", "temp MB"],
            [["start", memory["rss_mb"][0], memory["temp_mb"][0]],
             *[[f"round {i}", memory["rss_mb"][i], memory["temp_mb"][i]] for i in range(1, len(memory["rss_mb"]))],
             [f"{args.idle:.0f} s idle", memory["rss_idle_mb"], memory["temp_idle_mb"]]],
        ))  # fmt: skip
        print(f"RSS growth after the first round: {memory['growth_after_first_round']:+.1%} (goal ≤ +10 %)")
    settings = {**vars(args), "out": str(args.out) if args.out else None}
    result = {"stall": stalls, "rounds": memory, "settings": settings}
    finish(NAME, result, args.out, environment, lambda done: print(describe_load(done["environment"])))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    raise SystemExit(main())
