"""The product image end to end: build, run, HEALTHCHECK, /count over HTTP (`pytest -m container`).

Runs scripts/container_check.py, which uses the Docker engine at $DOCKER_HOST or starts its own dockerd (root), and
builds on a local debootstrap base image unless SEALION_BASE_IMAGE names one. A cold build takes many minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT, SEA_LION_CLASSES

pytestmark = pytest.mark.container


def test_image_builds_becomes_healthy_and_counts(tmp_path):
    if not (shutil.which("docker") and (os.environ.get("DOCKER_HOST") or shutil.which("dockerd"))):
        pytest.skip("needs the docker CLI and a Docker engine (or dockerd to start one)")
    summary_path = tmp_path / "summary.json"
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / "container_check.py"), "--json", str(summary_path)]
    if os.environ.get("SEALION_BASE_IMAGE"):
        cmd += ["--base-image", os.environ["SEALION_BASE_IMAGE"]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    print(proc.stdout[-5000:])
    summary = json.loads(summary_path.read_text())
    assert proc.returncode == 0 and summary["ok"], summary["error"] or proc.stderr[-3000:]

    assert summary["seconds_to_healthy"] is not None
    assert summary["image_size_bytes"] > 0
    assert list(summary["counts"]) == SEA_LION_CLASSES
    assert summary["total"] == sum(summary["counts"].values())
    assert summary["annotated_image_bytes"] > 0
