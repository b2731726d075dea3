"""A model version's revision, in a local git repo (the form olah serves) or on a hub (huggingface_hub): commit and
tag a new revision, or add files to an existing one and move its tag. :class:`PublishTarget` says where, built once
by a command's ``main`` from its options; the git side has one ``git`` runner (a Python git library is no
dependency here)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from detector.versions.manifest import ModelVersion
from training.errors import PublishError

IDENTITY = ["-c", "user.name=sealion-counter training", "-c", "user.email=training@sealion-counter.invalid"]


DEFAULT_REPO_ID = "sealion-counter/steller-sealions-yolov5"


@dataclass(frozen=True)
class PublishTarget:
    """Where a version's revision goes: a local git model repo (``git_repo``, served by olah), else a hub
    (``endpoint`` and ``token``, with huggingface_hub); ``repo_id`` is the model repo's name on the hub."""

    repo_id: str = DEFAULT_REPO_ID
    git_repo: Path | None = None
    endpoint: str | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        if self.git_repo is None and self.endpoint is None:
            raise PublishError("say where to publish: --git-repo DIR (local, served by olah) or --endpoint URL")

    @property
    def where(self) -> str:
        """The git folder or the hub endpoint, for messages and :class:`~training.publish.Published`."""
        return str(self.git_repo) if self.git_repo is not None else str(self.endpoint)

    def for_repo(self, repo_id: str) -> PublishTarget:
        return replace(self, repo_id=repo_id)

    def create_revision(self, folder: Path, tag: str, message: str) -> str:
        """Commit ``folder``'s files as a new revision tagged ``tag``; returns the commit sha."""
        if self.git_repo is not None:
            return publish_to_git(folder, Path(self.git_repo), tag, message)
        return publish_to_hub(folder, self.repo_id, tag, message, self.endpoint, self.token)

    def add_to_revision(self, folder: Path, tag: str, message: str, card: str | None) -> str:
        """Commit ``folder``'s files (and the new card) on top of the revision ``tag`` and move the tag there."""
        if self.git_repo is not None:
            return add_to_git_revision(folder, Path(self.git_repo), tag, message, card)
        return add_to_hub_revision(folder, self.repo_id, tag, message, self.endpoint, self.token, card)

    def current_card(self, version: ModelVersion) -> str | None:
        """The model card (README.md) of a published version's revision, None where the version has no tag here."""
        return self.current_file(version, "README.md")

    def current_file(self, version: ModelVersion, path: str) -> str | None:
        """The text of ``path`` in a published version's revision; None where the revision or the file is missing."""
        if self.git_repo is not None:
            if not version.revision:
                return None
            try:
                return show(Path(self.git_repo), version.revision, path)
            except PublishError:  # git show: no such tag, or no such file at it
                return None
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            local = hf_hub_download(version.repo_id, path, revision=version.pinned_revision, endpoint=self.endpoint)
        except EntryNotFoundError:
            return None
        return Path(local).read_text()


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


def publish_to_git(folder: Path, repo_dir: Path, tag: str, message: str) -> str:
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


def publish_to_hub(folder: Path, repo_id: str, tag: str, message: str, endpoint: str | None, token: str | None) -> str:
    """Upload the files of ``folder`` as one commit to a hub repo and tag it (huggingface_hub); returns the sha."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    existing = {t.name for t in api.list_repo_refs(repo_id).tags}
    if tag in existing:
        raise PublishError(f"tag {tag!r} already exists in {repo_id}; publish a new version name")
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=message)
    api.create_tag(repo_id, tag=tag, revision=info.oid, tag_message=message)
    return info.oid


def add_to_hub_revision(
    folder: Path, repo_id: str, tag: str, message: str, endpoint: str | None, token: str | None, card: str | None
) -> str:
    """The same on a hub (huggingface_hub): upload to a branch made from the tag, then move the tag there."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    branch = f"{tag}-runtimes"
    api.create_branch(repo_id, branch=branch, revision=tag, exist_ok=True)
    if card is not None:
        (folder / "README.md").write_text(card)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=branch, commit_message=message)
    api.delete_tag(repo_id, tag=tag)
    api.create_tag(repo_id, tag=tag, revision=info.oid, tag_message=message)
    return info.oid
