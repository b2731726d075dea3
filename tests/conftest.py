"""Shared fixtures: a real offline model hub (olah over local git repos) and small real models."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from detector.settings import HubSettings, ModelSettings
from tests.helpers import (
    NO_SHARED_DATA,
    SEA_LION_CLASSES,
    SHARED_DATA,
    OlahServer,
    build_untrained_model,
    git,
    model_card,
    sha256_of,
)

HUB_REPO = "sealion-tests/tiny-yolov5"
WEIGHTS_NAME = "model.pt"


@dataclass
class LocalHub:
    server: OlahServer
    repo_id: str
    repo_dir: Path
    cache_dir: Path
    tags: dict[str, str] = field(default_factory=dict)  # tag -> commit sha
    sha256: dict[str, str] = field(default_factory=dict)  # tag -> sha256 of the weights at that tag
    weights: dict[str, Path] = field(default_factory=dict)  # tag -> local copy of the weights

    @property
    def url(self) -> str:
        return self.server.url

    def settings(self, version: str | None = None, **fields) -> ModelSettings:
        """Model settings that reach this hub, with this test's cache (what an entry point builds from HF_*)."""
        hub = HubSettings(endpoint=self.url, cache_dir=str(self.cache_dir))
        return ModelSettings(version=version, hub=hub, **fields)

    def manifest(self, path: Path, default: str = "v1", shipped: dict[str, str] | None = None) -> Path:
        """Write a manifest pinning this hub's tags (optionally with shipped files)."""
        versions = {}
        for tag, commit in self.tags.items():
            versions[tag] = {
                "repo_id": self.repo_id,
                "revision": tag,
                "commit": commit,
                "filename": WEIGHTS_NAME,
                "sha256": self.sha256[tag],
                "class_names": SEA_LION_CLASSES,
                "imgsz": 320,
                "ground_scale": 1.0,
            }
            if shipped and tag in shipped:
                versions[tag]["shipped_file"] = shipped[tag]
        path.write_text(yaml.safe_dump({"default": default, "versions": versions}, sort_keys=False))
        return path


def publish_to_git_repo(repo_dir: Path, weights: Path, tag: str, card: str) -> str:
    """Commit weights + card to a local git model repo and tag it; returns the commit sha."""
    repo_dir.mkdir(parents=True, exist_ok=True)
    if not (repo_dir / ".git").exists():
        git(repo_dir, "init", "-q", "-b", "main")
    (repo_dir / WEIGHTS_NAME).write_bytes(weights.read_bytes())
    (repo_dir / "README.md").write_text(card)
    git(repo_dir, "add", "-A")
    git(repo_dir, "commit", "-q", "-m", f"model {tag}")
    git(repo_dir, "tag", tag)
    return git(repo_dir, "rev-parse", "HEAD")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Two different untrained YOLOv5n checkpoints with the five sea lion classes."""
    root = tmp_path_factory.mktemp("models")
    return {tag: build_untrained_model(root / f"{tag}.pt", seed=seed) for seed, tag in enumerate(("v1", "v2"))}


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory, tiny_models) -> LocalHub:
    """olah serving a git model repo with tags v1 and v2, offline, on a free loopback port."""
    root = tmp_path_factory.mktemp("hub")
    server = OlahServer(root)
    repo_dir = server.repo_dir(HUB_REPO)
    hub = LocalHub(server=server, repo_id=HUB_REPO, repo_dir=repo_dir, cache_dir=root / "hf-cache")
    for tag, weights in tiny_models.items():
        sha = sha256_of(weights)
        hub.tags[tag] = publish_to_git_repo(repo_dir, weights, tag, model_card(WEIGHTS_NAME, sha, SEA_LION_CLASSES))
        hub.sha256[tag] = sha
        hub.weights[tag] = weights
    server.start(HUB_REPO)
    yield hub
    server.stop()


@pytest.fixture
def hub_env(local_hub, monkeypatch, tmp_path) -> LocalHub:
    """Point huggingface_hub at the local hub with a fresh, empty cache for this test."""
    monkeypatch.setenv("HF_ENDPOINT", local_hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for name in ("SEALION_MODEL_VERSION", "SEALION_WEIGHTS", "SEALION_HUB_REPO", "SEALION_HUB_REVISION"):
        monkeypatch.delenv(name, raising=False)  # tests that start a process (an edge) must not inherit them
    local_hub.cache_dir = tmp_path / "hf-cache"
    return local_hub


@pytest.fixture
def shared_data() -> Path:
    """The NOAA sample next to the checkout; tests using it skip cleanly without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(NO_SHARED_DATA)
    return SHARED_DATA
