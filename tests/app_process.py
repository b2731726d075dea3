"""Run the real app (``python app.py``) on a free loopback port for tests, the way a user starts it."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.app_server import AppServer, answers
from tests.helpers import REPO_ROOT

__all__ = ["AppProcess", "answers", "default_model", "start_app"]

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


class AppProcess(AppServer):
    """A running ``python app.py --host 127.0.0.1 --port N`` and the model it must have started with."""

    expected_sha256: str = ""
    expected_version: str = ""


def default_model() -> tuple[str, str]:
    """The product default the app must start with: the manifest's default version and its pinned sha256."""
    from detector.versions.manifest import load_manifest

    version = load_manifest(REPO_ROOT / "weights" / "manifest.yaml").get()
    return version.sha256, version.name


def start_app(
    tmp_dir: Path,
    args: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 180,
) -> AppProcess:
    """Start the app and wait until its API answers; raises with the log tail when it does not come up."""
    env = {k: v for k, v in os.environ.items() if k not in MODEL_OVERRIDES}  # exactly as a user starts it
    args = list(args or [])
    if "--reviews-dir" not in args:  # saved reviews stay in the test's folder, not the user's data folder
        args += ["--reviews-dir", str(tmp_dir / "reviews")]
    app = AppProcess(
        extra_args=args, extra_env=extra_env, startup_timeout=timeout, device=None, env=env, log_path=tmp_dir,
        stop_with_parent=False,
    )  # fmt: skip
    app.expected_sha256, app.expected_version = default_model()
    app.start()
    return app
