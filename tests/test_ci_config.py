"""The container and CI/CD configuration: linters (zizmor, the GitHub workflow schema, hadolint) and the contracts
the Dockerfile and workflows promise (Docker Space layout, pinned actions, ordered least-privilege deploys).

Each linter is also run on a known-bad input, so these tests fail when a tool silently stops checking.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
DOCKERFILE = REPO_ROOT / "Dockerfile"
FULL_SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")

BAD_WORKFLOW = """\
name: bad
on: issues
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.issue.title }}"
"""


def tool(name: str) -> str:
    """A lint tool from requirements-dev.txt: on PATH or next to this interpreter (a venv not activated)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed; pip install -r requirements-dev.txt"
    return found


def run(*cmd: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def zizmor_findings(*paths: Path, no_ignores: bool = False) -> list[dict]:
    args = [tool("zizmor"), "--offline", "--format", "json", *(["--no-ignores"] if no_ignores else [])]
    proc = run(*args, *map(str, paths))
    assert proc.stdout.strip(), f"zizmor produced no report (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout)


def load_script(name: str):
    """Import scripts/<name>.py (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def load_workflow(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def test_the_three_workflows_exist():
    assert {p.name for p in WORKFLOW_FILES} >= {"ci.yml", "deploy.yml", "release-model.yml"}


# --- zizmor -------------------------------------------------------------------------------------------------------


def test_workflows_have_no_zizmor_findings():
    findings = zizmor_findings(*WORKFLOW_FILES)
    assert findings == [], json.dumps([(f["ident"], f["desc"], f["locations"][0]["concrete"]) for f in findings])


def test_no_high_severity_zizmor_finding_even_without_inline_ignores():
    findings = zizmor_findings(*WORKFLOW_FILES, no_ignores=True)
    high = [(f["ident"], f["desc"]) for f in findings if f["determinations"]["severity"] == "High"]
    assert high == []


def test_zizmor_catches_injection_and_unpinned_actions(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(BAD_WORKFLOW)
    idents = {f["ident"] for f in zizmor_findings(bad)}
    assert {"template-injection", "unpinned-uses", "artipacked"} <= idents


# --- GitHub workflow JSON schema --------------------------------------------------------------------------------


@pytest.mark.parametrize("workflow", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_matches_github_schema(workflow):
    proc = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_check_rejects_an_invalid_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("name: bad\non: push\njobs:\n  build:\n    steps: not-a-list\n")
    proc = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(bad))
    assert proc.returncode != 0


# --- hadolint -----------------------------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    proc = run(tool("hadolint"), "--no-color", str(DOCKERFILE))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_flags_a_careless_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\nRUN cd /app && pip install x\n")
    proc = run(tool("hadolint"), "--no-color", str(bad))
    assert proc.returncode != 0
    assert {"DL3007", "DL3015", "DL3003"} <= set(re.findall(r"DL\d{4}", proc.stdout))


def test_every_hadolint_ignore_is_justified():
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert lines[i - 1].startswith("#") and "hadolint" not in lines[i - 1], f"line {i + 1}: say why"


# --- Dockerfile contract ------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_dockerfile_is_docker_space_ready():
    instr = dockerfile_instructions()
    keywords = [k for k, _ in instr]
    args = {k: a for k, a in instr}  # last one wins, like Docker

    assert instr[0][0] == "ARG" and instr[0][1].startswith("BASE_IMAGE=") and instr[1] == ("FROM", "${BASE_IMAGE}")
    assert args["USER"].split(":")[0] in {"1000", "user"}
    assert keywords.index("USER") < keywords.index("COPY"), "files must be copied for the runtime user"
    assert keywords.index("WORKDIR") < keywords.index("COPY")
    assert args["EXPOSE"] == "7860"
    assert json.loads(args["CMD"]) == ["sealion-app"]  # the console script of the installed package
    runs = [a for k, a in instr if k == "RUN"]
    assert any(run.startswith("pip install --no-cache-dir . ") for run in runs), runs  # as the README installs it
    assert "HEALTHCHECK" in keywords and "7860" in args["HEALTHCHECK"]
    env = " ".join(a for k, a in instr if k == "ENV")
    for setting in (
        "HF_HOME=/home/user/",
        "GRADIO_SERVER_NAME=0.0.0.0",
        "YOLO_OFFLINE=1",
        "GRADIO_ANALYTICS_ENABLED=False",
        "HF_HUB_DISABLE_TELEMETRY=1",
    ):
        assert setting in env


def test_dockerfile_installs_cpu_torch_by_default_and_dependencies_before_source():
    instr = dockerfile_instructions()
    assert ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu") in instr
    copies = [i for i, (k, _) in enumerate(instr) if k == "COPY"]
    pip = next(i for i, (k, a) in enumerate(instr) if k == "RUN" and "pip install" in a)
    assert "requirements.txt" in instr[copies[0]][1] and copies[0] < pip < copies[-1]
    assert instr[copies[-1]][1].endswith(". ."), "the source is copied last"
    assert '--index-url "$TORCH_INDEX_URL"' in instr[pip][1]
    after = instr[pip + 1 :]
    assert [k for k, _ in after] == ["COPY", "RUN"], "only the source and its install after the dependency layer"
    assert after[1][1].startswith("pip install --no-cache-dir . "), after  # the package: dependencies already there


def test_dockerignore_keeps_weights_and_app_but_not_tests_or_git():
    sync_space = load_script("sync_space")
    patterns = sync_space.read_dockerignore(REPO_ROOT / ".dockerignore")
    for kept in ("app.py", "weights/manifest.yaml", "detector/counting/model.py", "requirements.txt", "examples/a.jpg"):
        assert not sync_space.dockerignored(kept, patterns), kept
    for dropped in (".git/HEAD", "tests/test_x.py", ".venv/bin/python", "detector/__pycache__/m.pyc", "runs/x"):
        assert sync_space.dockerignored(dropped, patterns), dropped


# --- workflow contracts -------------------------------------------------------------------------------------------


def all_uses(node: object) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "uses"] + [u for v in node.values() for u in all_uses(v)]
    if isinstance(node, list):
        return [u for v in node for u in all_uses(v)]
    return []


@pytest.mark.parametrize("workflow", WORKFLOW_FILES, ids=lambda p: p.name)
def test_actions_are_pinned_to_full_commit_shas_with_a_version_comment(workflow):
    text = workflow.read_text()
    for uses in all_uses(yaml.safe_load(text)):
        if uses.startswith("./"):
            continue  # this repository's own reusable workflow, same commit
        assert FULL_SHA_PIN.match(uses), f"{workflow.name}: {uses} is not pinned to a full commit sha"
        assert re.search(re.escape(uses) + r" # v\d", text), f"{workflow.name}: {uses} lacks a '# vX.Y.Z' comment"


@pytest.mark.parametrize("workflow", WORKFLOW_FILES, ids=lambda p: p.name)
def test_checkouts_do_not_persist_credentials(workflow):
    steps = [s for job in load_workflow(workflow.name)["jobs"].values() for s in job.get("steps", [])]
    for step in steps:
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False


def test_ci_runs_lint_tests_and_a_container_check_on_push_and_pull_request():
    ci = load_workflow("ci.yml")
    assert {"push", "pull_request", "workflow_call"} <= set(ci["on"])
    steps = {name: " ".join(str(s.get("run", "")) for s in job["steps"]) for name, job in ci["jobs"].items()}
    assert "ruff check" in steps["lint"] and "ruff format --check" in steps["lint"]
    assert ".ci/run" in steps["test"] and "chromium" in steps["test"]
    assert "scripts/container_check.py" in steps["container"]
    assert ci["permissions"] == {"contents": "read"}


def test_deploy_runs_after_tests_in_order_with_least_privilege():
    deploy = load_workflow("deploy.yml")
    jobs = deploy["jobs"]
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert deploy["permissions"] == {}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["image"]["needs"] == "ci" and jobs["space"]["needs"] == "image"
    writers = {name for name, job in jobs.items() if "write" in job.get("permissions", {}).values()}
    assert writers == {"image"} and jobs["image"]["permissions"]["packages"] == "write"

    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "$image:$sha" in text and "$image:latest" in text and "ghcr.io/" in text
    assert "secrets.HF_TOKEN" in text and "vars.HF_SPACE_ID" in text
    # Secrets and inputs reach scripts through env, never spliced into a run: line.
    for job in jobs.values():
        for step in job.get("steps", []):
            assert "${{" not in str(step.get("run", "")), step


def test_ci_run_executes_exactly_the_readme_test_command():
    readme = (REPO_ROOT / "README.md").read_text() if (REPO_ROOT / "README.md").exists() else ""
    commands = [c.strip() for c in re.findall(r"(python -m pytest[^#\n`&;|]*)", readme)]
    assert commands, "README.md names no `python -m pytest ...` test command"
    ci_run = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    last_command = [line for line in ci_run if line.strip() and not line.startswith("#")][-1]
    assert last_command.strip() == commands[0]
