"""Sync this repository to its Hugging Face Docker Space (run by .github/workflows/deploy.yml).

The Space builds the repository's Dockerfile itself, so it receives the Dockerfile, .dockerignore and every tracked file
the Docker build context would keep (same .dockerignore rules), plus a README.md whose front matter declares a Docker
Space on port 7860. Files on the Space that are no longer part of that set are deleted in the same commit, so the Space
always equals one commit of this repository.

    python scripts/sync_space.py --space my-org/sealion-counter --commit "$GITHUB_SHA"    # needs HF_TOKEN
    python scripts/sync_space.py --dry-run                                                  # print the plan only
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
ALWAYS_INCLUDED = ("Dockerfile", ".dockerignore")
SPACE_CARD = {
    "title": "Sea Lion Counter",
    "emoji": "🦭",
    "colorFrom": "blue",
    "colorTo": "gray",
    "sdk": "docker",
    "app_port": 7860,
    "pinned": False,
    "short_description": "Count Steller sea lions in aerial photos (YOLOv5)",
}


@dataclass(frozen=True)
class SyncPlan:
    files: list[str]  # repository-relative paths uploaded as they are
    readme: str  # the Space's README.md (front matter + the repository README)

    def summary(self, root: Path) -> str:
        size = sum((root / f).stat().st_size for f in self.files)
        lines = [f"{len(self.files) + 1} files, {size / 1e6:.1f} MB (+ generated README.md):"]
        lines += [f"  {f}" for f in self.files]
        return "\n".join(lines)


def read_dockerignore(path: Path) -> list[str]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker would leave `path` out of the build context (patterns match the path or a parent folder;
    a `!pattern` re-includes; the last matching pattern wins, as in Docker's own matcher)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip("/")
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(c.rsplit("/", 1)[-1], pattern[3:]) for c in candidates)
            hit = hit or any(fnmatch.fnmatchcase(c, pattern[3:]) for c in candidates)
        else:
            hit = any(fnmatch.fnmatchcase(c, pattern) for c in candidates)
        if hit:
            excluded = not negate
    return excluded


def tracked_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True, text=True).stdout
    return sorted(f for f in out.split("\0") if f and (root / f).is_file())


def space_readme(repo_readme: str) -> str:
    """The repository README with the Space's front matter in place of any it already has."""
    body = repo_readme
    if body.startswith("---\n"):
        end = body.find("\n---", 4)
        if end != -1:
            body = body[end + 4 :].lstrip("\n")
    front = yaml.safe_dump(SPACE_CARD, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n{body}"


def plan_sync(root: Path = REPO_ROOT) -> SyncPlan:
    patterns = read_dockerignore(root / ".dockerignore")
    files = [
        f for f in tracked_files(root) if f != "README.md" and (f in ALWAYS_INCLUDED or not dockerignored(f, patterns))
    ]
    missing = [f for f in ALWAYS_INCLUDED if f not in files]
    if missing:
        raise SystemExit(f"error: not tracked by git, but the Space needs them: {', '.join(missing)}")
    readme = root / "README.md"
    return SyncPlan(files=files, readme=space_readme(readme.read_text() if readme.exists() else ""))


def sync(space_id: str, plan: SyncPlan, commit: str | None, root: Path = REPO_ROOT) -> str:
    """Create the Space if needed and replace its files with the plan's in one commit; returns the commit URL."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    api = HfApi()
    api.create_repo(space_id, repo_type="space", space_sdk="docker", exist_ok=True)
    wanted = set(plan.files) | {"README.md"}
    remote = api.list_repo_files(space_id, repo_type="space")
    operations: list = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(root / f)) for f in plan.files]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=plan.readme.encode()))
    operations += [CommitOperationDelete(path_in_repo=f) for f in remote if f not in wanted and f != ".gitattributes"]
    short = (commit or "local")[:12]
    info = api.create_commit(
        space_id,
        repo_type="space",
        operations=operations,
        commit_message=f"Deploy {short}",
        commit_description=f"Synced from commit {commit}" if commit else "Synced from a local checkout",
    )
    return info.commit_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default=os.environ.get("HF_SPACE_ID"), help="Space id owner/name ($HF_SPACE_ID)")
    parser.add_argument("--commit", help="git commit being deployed (recorded in the Space commit message)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be uploaded and stop")
    args = parser.parse_args(argv)

    plan = plan_sync()
    print(plan.summary(REPO_ROOT))
    if args.dry_run:
        print("--- README.md (Space) front matter ---")
        print(plan.readme.split("\n---\n", 1)[0] + "\n---")
        return 0
    if not args.space:
        print("error: no Space id; set the HF_SPACE_ID repository variable or pass --space", file=sys.stderr)
        return 2
    if not os.environ.get("HF_TOKEN"):
        print("error: HF_TOKEN is not set (a write token for the Space)", file=sys.stderr)
        return 2
    print(f"synced to https://huggingface.co/spaces/{args.space}: {sync(args.space, plan, args.commit)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
