"""Start the real app (``python app.py``) on a free loopback port for the API benchmarks, and stop it again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from benchmarks.common import REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppServer:
    """``python app.py --host 127.0.0.1 --port <free>`` as a child process; a context manager.

    ``weights`` / ``version`` choose the model (default: the manifest's default version); ``extra_args`` go to
    app.py as they are (e.g. ``["--queue-size", "64"]``); ``extra_env`` is added to its environment.
    """

    def __init__(
        self,
        weights: str | None = None,
        version: str | None = None,
        extra_args: list[str] | None = None,
        startup_timeout: float = 300,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.command = [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu"]
        if weights:
            self.command += ["--weights", str(weights)]
        if version:
            self.command += ["--model-version", version]
        self.command += list(extra_args or [])
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self.process: subprocess.Popen | None = None
        self.startup_s: float | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="sealion-bench-app-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def log_path(self) -> Path:
        return Path(self._log.name)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def start(self) -> AppServer:
        if threading.current_thread() is threading.main_thread():  # a SIGTERM to the benchmark stops the app too
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        env = {
            **os.environ,
            "YOLO_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command, cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = started + self.startup_timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode} at startup:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:
                    if answer.status == 200:
                        self.startup_s = round(time.perf_counter() - started, 1)
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"app.py not serving {self.url} after {self.startup_timeout}s:\n{self.log_tail()}")

    def rss_bytes(self) -> int:
        """Resident memory of the app process and its children."""
        import psutil

        root = psutil.Process(self.process.pid)
        total = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
