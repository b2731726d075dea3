"""scripts/sync_space.py: which files a deploy sends to the Docker Space, and the Space README it writes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import yaml

from tests.helpers import REPO_ROOT


@pytest.fixture(scope="module")
def sync_space():
    spec = importlib.util.spec_from_file_location("sync_space", REPO_ROOT / "scripts" / "sync_space.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["sync_space"] = module
    spec.loader.exec_module(module)
    return module


def git_repo(root, files: dict[str, str]):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


def front_matter(readme: str) -> dict:
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("\n---\n", 1)[0][4:])


def test_plan_sends_what_the_docker_build_uses_and_nothing_else(sync_space, tmp_path):
    repo = git_repo(
        tmp_path,
        {
            "Dockerfile": "FROM x\n",
            ".dockerignore": "tests\n**/__pycache__\ndocs\n!docs/keep.md\n",
            "app.py": "print()\n",
            "detector/counting/model.py": "x = 1\n",
            "detector/__pycache__/model.cpython-311.pyc": "",
            "weights/manifest.yaml": "default: v1\n",
            "tests/test_app.py": "def test(): pass\n",
            "docs/deploy.md": "# deploy\n",
            "docs/keep.md": "# kept\n",
            "README.md": "---\nlicense: mit\n---\n# Sea lions\nCounts them.\n",
        },
    )
    (repo / "untracked.txt").write_text("not in git")
    plan = sync_space.plan_sync(repo)
    assert plan.files == [
        ".dockerignore",
        "Dockerfile",
        "app.py",
        "detector/counting/model.py",
        "docs/keep.md",
        "weights/manifest.yaml",
    ]
    meta = front_matter(plan.readme)
    assert meta["sdk"] == "docker" and meta["app_port"] == 7860
    assert "license" not in meta, "the repository's own front matter is replaced"
    assert plan.readme.endswith("# Sea lions\nCounts them.\n")


def test_plan_refuses_a_repository_without_a_tracked_dockerfile(sync_space, tmp_path):
    repo = git_repo(tmp_path, {"app.py": "print()\n", ".dockerignore": "tests\n"})
    with pytest.raises(SystemExit, match="Dockerfile"):
        sync_space.plan_sync(repo)


def test_plan_for_this_repository(sync_space):
    files = sync_space.plan_sync(REPO_ROOT).files
    assert {"Dockerfile", ".dockerignore", "requirements.txt", "weights/manifest.yaml"} <= set(files)
    assert not [f for f in files if f.startswith(("tests/", ".github/", "docs/", "benchmarks/"))]


def test_dry_run_needs_no_token(sync_space, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert sync_space.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Dockerfile" in out and "sdk: docker" in out


def test_a_real_sync_without_token_or_space_fails_clearly(sync_space, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_SPACE_ID", raising=False)
    assert sync_space.main([]) == 2
    assert "HF_SPACE_ID" in capsys.readouterr().err
    assert sync_space.main(["--space", "org/space"]) == 2
    assert "HF_TOKEN" in capsys.readouterr().err
