"""End-to-end container check: build the product image, run it, wait for its HEALTHCHECK, call /count, stop it.

    python scripts/container_check.py                   # this machine: own dockerd (vfs) + debootstrap base image
    python scripts/container_check.py --base-image python:3.11-slim-bookworm   # a host with a registry (CI)
    pytest -m container                                 # the same, as a test (tests/test_container.py)

Steps: use the Docker engine at $DOCKER_HOST (or the default socket) or, as root without one, start
`dockerd --storage-driver=vfs --iptables=false --bridge=none` with its own data root (kept, so layers are reused by
the next run); make the local base image (scripts/make_base_image.sh, skipped when it exists) unless --base-image
names one; `docker build --network host`; `docker run --network host` on a free port; wait until Docker reports the
container healthy; call the app's `/count` endpoint with gradio_client on a shipped example photo; stop and remove
the container; print a summary (build time, layers from cache, image size, time to healthy, the counts).

The PyTorch CPU wheel index (the Dockerfile's default) is used when reachable; otherwise (`--torch-index auto`) the
build falls back to PyPI's torch, a CUDA build that also runs on CPU but makes the image several GB larger.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_BASE = "sealion-base:bookworm-py311"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI_INDEX = "https://pypi.org/simple"
DEFAULT_ENGINE_ROOT = Path("/var/tmp/sealion-docker")


def log(message: str) -> None:
    print(f"[container-check] {message}", flush=True)


@dataclass
class Summary:
    engine: str = ""
    base_image: str = ""
    base_image_seconds: float = 0.0
    torch_index: str = ""
    build_seconds: float = 0.0
    build_steps: int = 0
    build_steps_cached: int = 0
    image: str = ""
    image_size_bytes: int = 0
    seconds_to_start: float | None = None  # `docker run -d` returned (vfs copies the image for the container)
    seconds_to_http: float | None = None
    seconds_to_healthy: float | None = None
    example: str = ""
    count_seconds: float = 0.0
    annotated_image_bytes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    total: int | None = None
    result: dict = field(default_factory=dict)
    model_info: dict | str | None = None
    ok: bool = False
    error: str = ""


class CheckFailed(RuntimeError):
    """A step of the check failed; the message says which and why."""


class Docker:
    """Thin wrapper over the docker CLI with a fixed environment (DOCKER_HOST)."""

    def __init__(self, binary: str = "docker", env: dict[str, str] | None = None) -> None:
        self.binary = binary
        self.env = dict(env or os.environ)

    def run(self, *args: str, check: bool = True, timeout: float | None = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [self.binary, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise CheckFailed(f"docker {' '.join(args[:3])} failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")
        return proc

    def available(self) -> bool:
        try:
            return self.run("info", "--format", "{{.ServerVersion}}", check=False, timeout=20).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def describe(self) -> str:
        fmt = "dockerd {{.ServerVersion}} ({{.Driver}} storage)"
        return self.run("info", "--format", fmt).stdout.strip()


class Engine:
    """The Docker engine to use: an existing one, or a dockerd this check starts (and stops, unless kept)."""

    def __init__(self, root: Path, docker_binary: str, keep: bool) -> None:
        self.root = root
        self.keep = keep
        self.process: subprocess.Popen | None = None
        self.docker = Docker(docker_binary)
        self.own = False  # the engine with this check's own data root (started now or kept from an earlier run)

    def __enter__(self) -> Docker:
        if self.docker.available():
            log(f"engine: using the running {self.docker.describe()}")
            return self.docker
        own = Docker(self.docker.binary, {**os.environ, "DOCKER_HOST": f"unix://{self.root / 'docker.sock'}"})
        if own.available():  # a dockerd left running by an earlier --keep-engine run
            log(f"engine: reusing {own.describe()} at {self.root / 'docker.sock'}")
            self.docker, self.own = own, True
            return own
        self._start_dockerd()
        self.docker, self.own = own, True
        deadline = time.monotonic() + 90
        while not own.available():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.root / "dockerd.log").read_text()[-1500:]
                raise CheckFailed(f"dockerd did not come up; last log lines:\n{tail}")
            time.sleep(1)
        log(f"engine: started {own.describe()}, data root {self.root / 'data'}")
        return own

    def _start_dockerd(self) -> None:
        if os.geteuid() != 0:
            raise CheckFailed("no Docker engine reachable and not root, so dockerd cannot be started here")
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise CheckFailed("no Docker engine reachable and no dockerd (apt-get install -y docker.io debootstrap)")
        self.root.mkdir(parents=True, exist_ok=True)
        cmd = [
            dockerd,
            "--storage-driver=vfs",
            "--iptables=false",
            "--bridge=none",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--host=unix://{self.root / 'docker.sock'}",
        ]
        with open(self.root / "dockerd.log", "ab") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def __exit__(self, *exc: object) -> None:
        if self.process is None or self.keep:
            if self.process is not None:
                log(f"engine: left running (pid {self.process.pid}), DOCKER_HOST=unix://{self.root / 'docker.sock'}")
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        log("engine: dockerd stopped (layers stay in the data root for the next run)")


def torch_index_reachable(timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(f"{CPU_INDEX}/torch/", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def resolve_torch_index(choice: str) -> str:
    """'auto' → the Dockerfile default if reachable, else PyPI; 'default' → Dockerfile default; 'pypi'; or a URL."""
    if choice == "auto":
        if torch_index_reachable():
            return "default"
        log(f"note: {CPU_INDEX} is not reachable from here; building with PyPI's torch (CUDA build, runs on CPU)")
        return PYPI_INDEX
    return PYPI_INDEX if choice == "pypi" else choice


def make_base_image(docker: Docker, tag: str) -> float:
    start = time.monotonic()
    script = REPO_ROOT / "scripts" / "make_base_image.sh"
    env = {**docker.env, "DOCKER": docker.binary}
    proc = subprocess.run([str(script), tag], env=env, capture_output=True, text=True, check=False)
    for line in proc.stdout.strip().splitlines():
        log(f"base image: {line}")
    if proc.returncode != 0:
        raise CheckFailed(f"making the base image failed: {proc.stderr.strip()[-2000:]}")
    return time.monotonic() - start


def build(
    docker: Docker, context: Path, tag: str, base: str, torch_index: str, log_path: Path
) -> tuple[float, int, int]:
    """docker build; returns (seconds, steps, steps served from cache). The full log goes to `log_path`."""
    cmd = [docker.binary, "build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "-t", tag]
    if torch_index != "default":
        cmd += ["--build-arg", f"TORCH_INDEX_URL={torch_index}"]
    cmd.append(str(context))
    log(f"build: {' '.join(cmd[1:])}  (log: {log_path})")
    steps = cached = 0  # instructions after FROM (the ones that can come from the layer cache)
    start = time.monotonic()
    step_line = re.compile(r"Step \d+/\d+ : (\w+)|#\d+ \[(?:\S+ )?\d+/\d+\] (\w+)")  # classic builder | BuildKit
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, env=docker.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        seen_from = False
        for line in proc.stdout:
            out.write(line)
            step = step_line.match(line)
            if step:
                log(f"  {time.monotonic() - start:7.1f}s  {line.strip()[:110]}")
                instruction = (step.group(1) or step.group(2)).upper()
                steps += seen_from and instruction != "FROM"
                seen_from = seen_from or instruction == "FROM"
            if "Using cache" in line or re.match(r"#\d+ CACHED", line):
                cached += 1
        proc.wait()
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise CheckFailed(f"docker build failed (exit {proc.returncode}); see {log_path}:\n{tail}")
    return seconds, steps, cached


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_healthy(docker: Docker, name: str, url: str, start: float, timeout: float, summary: Summary) -> None:
    """Poll until Docker's HEALTHCHECK says healthy; also note when the HTTP port first answered.
    Times count from `start` (just before `docker run`)."""
    last = ""
    while time.monotonic() - start < timeout:
        elapsed = time.monotonic() - start
        if summary.seconds_to_http is None and http_ok(url):
            summary.seconds_to_http = round(elapsed, 1)
            log(f"run: app answered HTTP after {elapsed:.1f} s; waiting for the HEALTHCHECK")
        fmt = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"
        state, health = docker.run("inspect", "--format", fmt, name).stdout.split()
        if state != "running":
            raise CheckFailed(f"container {state} before becoming healthy")
        if health == "none":
            raise CheckFailed("the image has no HEALTHCHECK")
        if health != last:
            log(f"run: health={health} at {elapsed:.1f} s")
            last = health
        if health == "healthy":
            summary.seconds_to_healthy = round(time.monotonic() - start, 1)
            return
        if health == "unhealthy":
            raise CheckFailed("HEALTHCHECK reported unhealthy")
        time.sleep(1)
    raise CheckFailed(f"not healthy after {timeout:.0f} s (last health status: {last})")


def call_count(url: str, example: Path, photo_scale: float, summary: Summary) -> None:
    """Call /count (and /model_info) on the running app with gradio_client, as an API user would."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    start = time.monotonic()
    outputs = client.predict(
        handle_file(str(example)), female_length_px=photo_scale * 80, api_name="/count"
    )  # 80 px at 1.0
    summary.count_seconds = round(time.monotonic() - start, 2)
    outputs = outputs if isinstance(outputs, tuple | list) else [outputs]
    result = next((o for o in outputs if isinstance(o, dict) and "counts" in o), None)
    if result is None:
        raise CheckFailed(f"/count returned no counts JSON: {outputs!r}")
    annotated = next((Path(o) for o in outputs if isinstance(o, str) and Path(o).is_file()), None)
    if annotated is None:
        raise CheckFailed(f"/count returned no annotated image: {outputs!r}")
    summary.annotated_image_bytes = annotated.stat().st_size
    summary.result = result
    summary.counts = dict(result["counts"])
    summary.total = result.get("total")
    if len(summary.counts) != 5 or summary.total != sum(summary.counts.values()):
        raise CheckFailed(f"/count result is inconsistent: {result}")
    try:
        summary.model_info = client.predict(api_name="/model_info")
    except Exception as exc:  # informative only; /count is what the check asserts
        summary.model_info = f"unavailable: {exc}"


def run_check(args: argparse.Namespace, summary: Summary) -> None:
    """Run every step, filling `summary` as it goes (so a failure still reports what was measured)."""
    work = Path(tempfile.mkdtemp(prefix="sealion-container-check-"))
    engine = Engine(args.engine_root, args.docker, keep=args.keep_engine)
    with engine as docker:
        summary.engine = docker.describe()
        if args.base_image:
            summary.base_image = args.base_image
        else:
            summary.base_image = LOCAL_BASE
            summary.base_image_seconds = round(make_base_image(docker, LOCAL_BASE), 1)
        summary.torch_index = resolve_torch_index(args.torch_index)
        seconds, summary.build_steps, summary.build_steps_cached = build(
            docker, args.context, args.tag, summary.base_image, summary.torch_index, work / "build.log"
        )
        summary.build_seconds = round(seconds, 1)
        if engine.own:  # vfs keeps a full copy per layer: drop the previous build's superseded layers
            pruned = docker.run("image", "prune", "--force", check=False, timeout=900).stdout.strip().splitlines()
            log(f"build: pruned dangling images of earlier builds ({pruned[-1] if pruned else 'nothing'})")
        summary.image_size_bytes = int(docker.run("image", "inspect", "--format", "{{.Size}}", args.tag).stdout)
        log(f"build: {summary.build_seconds} s, {summary.build_steps_cached}/{summary.build_steps} layers from cache")
        log(f"image: {args.tag}, {summary.image_size_bytes / 1e9:.2f} GB")

        port = args.port or free_port()
        name = f"sealion-check-{os.getpid()}"
        url = f"http://127.0.0.1:{port}/"
        # The image's own CMD; host networking (this engine has no bridge), so the port comes from the environment.
        extra = [opt for env in args.env for opt in ("-e", env)] + [opt for vol in args.volume for opt in ("-v", vol)]
        run_args = ["run", "-d", "--name", name, "--network", "host", "-e", f"GRADIO_SERVER_PORT={port}", *extra]
        started = time.monotonic()
        docker.run(*run_args, args.tag, timeout=900)  # vfs copies the whole image first
        summary.seconds_to_start = round(time.monotonic() - started, 1)
        log(f"run: container {name} from {args.tag} on {url}, started in {summary.seconds_to_start} s")
        try:
            wait_healthy(docker, name, url + "gradio_api/info", started, args.timeout, summary)
            log(f"run: healthy after {summary.seconds_to_healthy} s")
            call_count(url, args.example, args.photo_scale, summary)
            log(f"/count on {args.example.name}: total={summary.total} counts={json.dumps(summary.counts)}")
            summary.ok = True
        except Exception:
            logs = docker.run("logs", "--tail", "40", name, check=False)
            log("container logs (last 40 lines):\n" + (logs.stdout + logs.stderr).strip())
            raise
        finally:
            log(f"run: stopping and removing {name} (with vfs storage, removing its file copy takes a while)")
            docker.run("rm", "-f", name, check=False, timeout=900)
            log(f"run: container {name} stopped and removed")
    shutil.rmtree(work, ignore_errors=True)


def print_summary(s: Summary) -> None:
    rows = [
        ("engine", s.engine),
        ("base image", f"{s.base_image}" + (f" (ready in {s.base_image_seconds} s)" if s.base_image_seconds else "")),
        ("torch index", "Dockerfile default (PyTorch CPU wheels)" if s.torch_index == "default" else s.torch_index),
        ("build", f"{s.build_seconds} s, {s.build_steps_cached}/{s.build_steps} layers from cache"),
        ("image size", f"{s.image_size_bytes / 1e9:.2f} GB ({s.image})"),
        ("started", f"{s.seconds_to_start} s (docker run -d returned)"),
        ("HTTP answered", f"{s.seconds_to_http} s after docker run"),
        ("healthy", f"{s.seconds_to_healthy} s after docker run"),
        (
            "/count",
            f"{Path(s.example).name}: total {s.total} in {s.count_seconds} s, "
            f"annotated JPEG {s.annotated_image_bytes / 1e3:.0f} kB",
        ),
        ("counts", json.dumps(s.counts)),
        ("model", json.dumps(s.model_info, default=str)[:300]),
    ]
    print("\n== container check: " + ("PASSED" if s.ok else f"FAILED: {s.error}") + " ==")
    for key, value in rows:
        print(f"{key:>14}  {value}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    examples = sorted((REPO_ROOT / "examples").glob("*.jpg"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-image", help=f"base image to build on (default: make {LOCAL_BASE} locally)")
    parser.add_argument(
        "--torch-index", default="auto", help="auto (default) | default (Dockerfile's CPU index) | pypi | URL"
    )
    parser.add_argument("--tag", default="sealion-counter:check", help="tag of the built image")
    parser.add_argument("--context", type=Path, default=REPO_ROOT, help="build context (the repository)")
    parser.add_argument("--example", type=Path, default=examples[0] if examples else None, help="photo for /count")
    parser.add_argument(
        "--photo-scale", type=float, default=0.25, help="photo_scale for /count (0.25: the shipped examples)"
    )
    parser.add_argument("--port", type=int, help="host port for the app (default: a free one)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra container environment (repeatable)"
    )
    parser.add_argument("--volume", action="append", default=[], metavar="SRC:DST[:ro]", help="extra bind mount")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for healthy")
    parser.add_argument("--docker", default=os.environ.get("DOCKER", "docker"), help="docker CLI binary")
    parser.add_argument("--engine-root", type=Path, default=DEFAULT_ENGINE_ROOT, help="data root of an own dockerd")
    parser.add_argument("--keep-engine", action="store_true", help="leave a dockerd started here running")
    parser.add_argument("--json", type=Path, help="also write the summary as JSON to this file")
    args = parser.parse_args(argv)
    if args.example is None or not args.example.is_file():
        parser.error("no example photo: pass --example PATH (examples/*.jpg is used by default)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = Summary(image=args.tag, example=str(args.example))
    try:
        run_check(args, summary)
    except (CheckFailed, subprocess.TimeoutExpired, OSError) as exc:
        summary.error = str(exc)
        log(f"FAILED: {exc}")
    print_summary(summary)
    if args.json:
        args.json.write_text(json.dumps(asdict(summary), indent=2, default=str))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
