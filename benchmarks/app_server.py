"""Child processes that serve HTTP, started and stopped the same way everywhere: the app (``python app.py``) for
the benchmarks, the tests and scripts/measure_app.py, and the tests' local hub (olah)."""

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

from detector.environment import OFFLINE_DEFAULTS

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str, timeout: float = 5) -> bool:
    """Whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


class ChildServer:
    """A command run as a child process until ``ready_url`` answers 200; a context manager.

    Its output goes to ``log_path`` (a temporary file unless given); ``env`` replaces the environment (default:
    this process's); ``startup_s`` is the time from exec to ready.
    """

    name = "server"

    def __init__(
        self,
        command: list[str],
        ready_url: str,
        *,
        env: dict[str, str] | None = None,
        cwd: Path = REPO_ROOT,
        log_path: Path | None = None,
        startup_timeout: float = 300,
        poll_s: float = 0.5,
        stop_with_parent: bool = False,
    ) -> None:
        self.command = command
        self.stop_with_parent = stop_with_parent
        self.ready_url = ready_url
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.poll_s = poll_s
        self.process: subprocess.Popen | None = None
        self.startup_s: float | None = None
        self._own_log = log_path is None
        if log_path is None:
            handle = tempfile.NamedTemporaryFile(prefix=f"sealion-{self.name}-", suffix=".log", delete=False)  # noqa: SIM115
            handle.close()
            log_path = Path(handle.name)
        self.log_path = Path(log_path)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> ChildServer:
        if self.stop_with_parent and threading.current_thread() is threading.main_thread():  # SIGTERM: exit, stop it
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        started = time.perf_counter()
        with open(self.log_path, "w") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = started + self.startup_timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} at startup:\n{self.log_tail()}")
            if answers(self.ready_url, timeout=5):
                self.startup_s = time.perf_counter() - started
                return self
            time.sleep(self.poll_s)
        self.stop()
        waited = f"{self.name} not ready at {self.ready_url} after {self.startup_timeout}s"
        raise RuntimeError(f"{waited}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._own_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> ChildServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class AppServer(ChildServer):
    """``python app.py --host 127.0.0.1 --port <free>``, ready when its API info answers.

    ``weights`` / ``version`` choose the model (default: the manifest's default version); ``device`` is passed as
    ``--device`` (None: the app's own choice); ``extra_args`` go to app.py as they are (e.g. ``["--queue-size",
    "64"]``); ``extra_env`` is added to ``env`` (default: this process's environment with the offline defaults).
    """

    name = "app"

    def __init__(
        self,
        weights: str | None = None,
        version: str | None = None,
        extra_args: list[str] | None = None,
        startup_timeout: float = 300,
        extra_env: dict[str, str] | None = None,
        *,
        device: str | None = "cpu",
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        poll_s: float = 0.5,
        stop_with_parent: bool = True,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        command = [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--device", device] if device else []
        command += ["--weights", str(weights)] if weights else []
        command += ["--model-version", version] if version else []
        command += list(extra_args or [])
        environment = {**(os.environ if env is None else env), **OFFLINE_DEFAULTS, "PYTHONUNBUFFERED": "1"}
        environment.update(extra_env or {})
        if log_path is not None and log_path.is_dir():
            log_path = log_path / f"app-{self.port}.log"
        super().__init__(
            command, f"{self.url}gradio_api/info", env=environment, log_path=log_path,
            startup_timeout=startup_timeout, poll_s=poll_s, stop_with_parent=stop_with_parent,
        )  # fmt: skip

    def start(self) -> AppServer:
        super().start()
        return self

    def __enter__(self) -> AppServer:
        return self.start()

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
