"""Run the real app (``python app.py``) on a free loopback port for tests, the way a user starts it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import REPO_ROOT, free_port

# Environment variables that would make the app start with something other than the product default.
MODEL_OVERRIDES = (
    "SEALION_MODEL_VERSION",
    "SEALION_WEIGHTS",
    "SEALION_WEIGHTS_SHA256",
    "SEALION_HUB_REPO",
    "SEALION_HUB_REVISION",
    "SEALION_MANIFEST",
    "SEALION_GROUND_SCALE",
    "GRADIO_SHARE",
)


@dataclass
class AppProcess:
    """A running ``python app.py --host 127.0.0.1 --port N`` and what it was started with."""

    process: subprocess.Popen
    url: str
    log_path: Path
    expected_sha256: str
    expected_version: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def default_model() -> tuple[str, str]:
    """The product default the app must start with: the manifest's default version and its pinned sha256."""
    from detector.manifest import load_manifest

    version = load_manifest(REPO_ROOT / "weights" / "manifest.yaml").get()
    return version.sha256, version.name


def start_app(
    tmp_dir: Path,
    args: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 180,
) -> AppProcess:
    """Start the app and wait until its API answers; raises with the log tail when it does not come up."""
    sha256, version = default_model()
    env = {k: v for k, v in os.environ.items() if k not in MODEL_OVERRIDES}  # exactly as a user starts it
    env.update(extra_env or {})
    env["PYTHONUNBUFFERED"] = "1"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = tmp_dir / f"app-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed by the child process's lifetime
    process = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), *(args or [])],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    app = AppProcess(process, url, log_path, sha256, version)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not app.alive():
            raise RuntimeError(f"app exited with {process.returncode}:\n{app.log()[-3000:]}")
        if answers(url):
            return app
        time.sleep(0.5)
    app.stop()
    raise RuntimeError(f"app not ready after {timeout}s:\n{app.log()[-3000:]}")


def answers(url: str, timeout: float = 5) -> bool:
    """Whether the app's API info endpoint answers 200 (the server is up and the app is built)."""
    try:
        with urllib.request.urlopen(f"{url}gradio_api/info", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False
