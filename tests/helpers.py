"""Test helpers that build real artefacts (models, hub repos) in temporary folders."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import yaml

from benchmarks.app_server import ChildServer, free_port

SEA_LION_CLASSES = ["adult_males", "subadult_males", "adult_females", "juveniles", "pups"]
REPO_ROOT = Path(__file__).resolve().parent.parent
# The NOAA sample (photos, counts.csv, dot-coordinates.csv): SEALION_NOAA_DATA, else ../shared next to the checkout.
SHARED_DATA = Path(os.environ.get("SEALION_NOAA_DATA") or REPO_ROOT.parent / "shared" / "data" / "noaa-sealions")
NO_SHARED_DATA = f"needs the NOAA sample at {SHARED_DATA}: set SEALION_NOAA_DATA to its folder (README, 'Tests')"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_untrained_model(
    path: Path, class_names: list[str] | None = None, seed: int = 0, ground_scale: float | None = 1.0
) -> Path:
    """Save a real (randomly initialised) YOLOv5n checkpoint that ultralytics loads like a trained one; it records
    that it was trained at ``ground_scale`` (as ``training.train`` writes it; None: records nothing)."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from detector.versions.weights_facts import FACTS_KEY, WeightsFacts

    names = class_names or SEA_LION_CLASSES
    torch.manual_seed(seed)
    model = DetectionModel("yolov5n.yaml", nc=len(names), verbose=False)
    model.names = dict(enumerate(names))
    model.args = {"imgsz": 320}
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {"model": model.half(), "train_args": {"imgsz": 320}, "epoch": -1, "date": None}
    if ground_scale is not None:
        checkpoint[FACTS_KEY] = WeightsFacts(ground_scale, 320, tuple(names)).to_dict()
    torch.save(checkpoint, path)
    return path


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def model_card(filename: str, sha256: str, class_names: list[str], imgsz: int = 320, ground_scale: float = 1.0) -> str:
    meta = {
        "library_name": "ultralytics",
        "tags": ["yolov5", "object-detection"],
        "weights": {"filename": filename, "sha256": sha256},
        "class_names": class_names,
        "imgsz": imgsz,
        "ground_scale": ground_scale,
    }
    return f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n# Test model\n"


class OlahServer(ChildServer):
    """A real olah process serving local git repos as a Hugging Face Hub, fully offline."""

    name = "olah"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mirrors = root / "mirrors"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = self.root / "olah.toml"
        super().__init__(
            [sys.executable, "-m", "olah.server", "--config", str(config)], "", cwd=root, log_path=root / "olah.log",
            startup_timeout=60, poll_s=0.3,
        )  # fmt: skip

    def repo_dir(self, repo_id: str) -> Path:
        return self.mirrors / "models" / repo_id

    def start(self, ready_repo: str) -> OlahServer:
        (self.root / "olah.toml").write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {self.port}\n'
            f'repos-path = "{self.root / "olah-cache"}"\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\nmirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            "[accessibility]\noffline = true\n"
        )
        self.ready_url = f"{self.url}/api/models/{ready_repo}/refs"
        super().start()
        return self
