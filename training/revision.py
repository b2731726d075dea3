"""A model version's hub revision kept in a local git repo (the form olah serves): commit and tag a new revision,
or add files to an existing one. One ``git`` runner; a Python git library is no dependency here."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from training.io import TrainingError

IDENTITY = ["-c", "user.name=sealion-counter training", "-c", "user.email=training@sealion-counter.invalid"]


class PublishError(TrainingError):
    """Publishing cannot go on (tag exists, repo unusable, ...); the message says why."""


def _git(repo: Path, *args: str) -> str:
    """git with a fixed committer given on the command line (a user's GIT_AUTHOR_*/GIT_COMMITTER_* still win); the
    environment is not read here, below the edges."""
    done = subprocess.run(["git", *IDENTITY, *args], cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        raise PublishError(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()}")
    return done.stdout.strip()


def show(repo: Path, revision: str, path: str) -> str:
    """The text of ``path`` at ``revision`` in a local git model repo."""
    return _git(repo, "show", f"{revision}:{path}")


def publish_to_git(folder: Path, repo_dir: Path, repo_id: str, tag: str, message: str) -> str:
    """Commit the files of ``folder`` to a local git model repo (created if missing) and tag it; returns the sha.

    Uses the git command line: olah serves plain git repos, and no Python git library is a dependency here.
    """
    repo_dir.mkdir(parents=True, exist_ok=True)
    if not (repo_dir / ".git").exists():
        _git(repo_dir, "init", "-q", "-b", "main")
    elif tag in _git(repo_dir, "tag", "--list", tag).split():
        raise PublishError(f"tag {tag!r} already exists in {repo_dir}; publish a new version name")
    for item in folder.iterdir():
        if item.is_dir():  # an exported runtime (OpenVINO folder)
            shutil.copytree(item, repo_dir / item.name, dirs_exist_ok=True)
        else:
            shutil.copy2(item, repo_dir / item.name)
        _git(repo_dir, "add", item.name)
    _git(repo_dir, "commit", "-q", "--allow-empty", "-m", message)
    _git(repo_dir, "tag", "-a", tag, "-m", message)
    return _git(repo_dir, "rev-parse", "HEAD")


def add_to_git_revision(folder: Path, repo_dir: Path, tag: str, message: str, card: str | None = None) -> str:
    """Commit ``folder``'s files (and the new model card) on top of ``tag`` in a local git model repo and move
    the tag there; returns the new commit sha. The branch the repo has checked out is left alone."""
    if tag not in _git(repo_dir, "tag", "--list", tag).split():
        raise PublishError(f"{repo_dir} has no tag {tag!r}; publish the version first (python -m training.publish).")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "revision"
        _git(repo_dir, "worktree", "add", "-q", "--detach", str(work), tag)
        try:
            shutil.copytree(folder, work, dirs_exist_ok=True)
            if card is not None:
                (work / "README.md").write_text(card)
            _git(work, "add", "-A")
            _git(work, "commit", "-q", "--allow-empty", "-m", message)
            commit = _git(work, "rev-parse", "HEAD")
        finally:
            _git(repo_dir, "worktree", "remove", "--force", str(work))
    _git(repo_dir, "tag", "-f", "-a", tag, "-m", message, commit)
    return commit
