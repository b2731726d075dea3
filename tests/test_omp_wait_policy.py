"""The detector makes torch's OpenMP threads wait passively unless the user chose a policy (see detector/__init__)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import REPO_ROOT

PROBE = "import os, detector, torch; torch.ones(64, 64) @ torch.ones(64, 64); print(os.environ['OMP_WAIT_POLICY'])"


def run_probe(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_importing_detector_sets_passive_wait_before_torch_starts():
    assert run_probe() == "PASSIVE"


def test_an_explicit_policy_is_kept():
    assert run_probe(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
