"""The shipped default model loads without asking the hub, and without a warning, when the hub is unreachable."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.app_process import MODEL_OVERRIDES, start_app
from tests.helpers import REPO_ROOT, free_port

EXAMPLE = REPO_ROOT / "examples" / "noaa_train_6.jpg"


def _unreachable_hub_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in MODEL_OVERRIDES and k != "HF_HUB_OFFLINE"}
    env.update(
        HF_ENDPOINT=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        HF_HUB_CACHE=str(tmp_path / "empty-hf-cache"),
        SEALION_HUB_TIMEOUT="3",
        SEALION_DEVICE="cpu",
    )
    return env


def test_cli_counts_with_the_shipped_model_and_no_warning(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "detector", "count", str(EXAMPLE)],  # --quiet would silence the note
        cwd=REPO_ROOT, env=_unreachable_hub_env(tmp_path), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(shipped, sha256" in done.stderr
    assert "warning" not in done.stderr.lower() and "unreachable" not in done.stderr.lower(), done.stderr


def test_refresh_asks_the_hub_and_says_when_it_falls_back(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "detector", "count", str(EXAMPLE), "--quiet", "--refresh"],
        cwd=REPO_ROOT, env=_unreachable_hub_env(tmp_path), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "unreachable" in done.stderr and "Using the verified local copy" in done.stderr


def test_app_starts_with_the_shipped_model_and_no_warning(tmp_path):
    env = _unreachable_hub_env(tmp_path)
    running = start_app(tmp_path, extra_env={k: env[k] for k in ("HF_ENDPOINT", "HF_HUB_CACHE", "SEALION_DEVICE")})
    try:
        deadline = time.monotonic() + 60  # the ready line follows the server's first answer by a moment
        while "Sea lion counter ready" not in running.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        log = running.log()
    finally:
        running.stop()
    assert "Sea lion counter ready" in log and ", shipped, device" in log, log[-2000:]
    assert "WARNING" not in log and "unreachable" not in log, log[-2000:]
