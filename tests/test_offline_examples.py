"""Offline, as a newcomer runs it: the docs' client and curl examples work against a live app with the hub
unreachable, and neither the app nor the CLI looks up any host but this machine (no telemetry, no phone-home)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from detector.versions.manifest import load_manifest
from tests.app_process import MODEL_OVERRIDES, start_app
from tests.helpers import REPO_ROOT, free_port

EXAMPLE = REPO_ROOT / "examples" / "noaa_train_6.jpg"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "", "None", "-"}  # "-": a process started
# Loaded first by every Python process started with this folder on PYTHONPATH: records each host name looked up.
RECORD_LOOKUPS = """
import os, socket

_getaddrinfo = socket.getaddrinfo


def _recording_getaddrinfo(host, *args, **kwargs):
    with open(os.environ["SEALION_TEST_LOOKUPS"], "a") as log:
        log.write(f"{os.getpid()} {host}\\n")
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _recording_getaddrinfo
with open(os.environ["SEALION_TEST_LOOKUPS"], "a") as log:
    log.write(f"{os.getpid()} -\\n")  # the hook ran in this process
"""


def _recording_env(tmp: Path) -> dict[str, str]:
    """This environment less the model overrides, the hub unreachable and empty, every host lookup recorded."""
    hook = tmp / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(RECORD_LOOKUPS)
    env = {k: v for k, v in os.environ.items() if k not in MODEL_OVERRIDES and k != "HF_HUB_OFFLINE"}
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(hook), env.get("PYTHONPATH", "")) if p),
        SEALION_TEST_LOOKUPS=str(tmp / "lookups.txt"),
        HF_ENDPOINT=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        HF_HUB_CACHE=str(tmp / "empty-hf-cache"),
        SEALION_HUB_TIMEOUT="3",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),  # the examples' `python`
    )
    return env


def _looked_up(tmp: Path) -> list[str]:
    log = tmp / "lookups.txt"
    hosts = [line.split(" ", 1)[1] for line in log.read_text().splitlines()] if log.is_file() else []
    return sorted({host for host in hosts if host not in LOOPBACK})


def _block(doc: str, after: str, language: str) -> str:
    """The first fenced ``language`` block after the line containing ``after`` in ``doc``."""
    text = (REPO_ROOT / doc).read_text()
    start = text.index(after)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert match, f"no ```{language} block after {after!r} in {doc}"
    return match.group(1)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("offline")
    env = _recording_env(tmp)
    keep = ("PYTHONPATH", "SEALION_TEST_LOOKUPS", "HF_ENDPOINT", "HF_HUB_CACHE", "SEALION_HUB_TIMEOUT")
    app = start_app(tmp, extra_env={k: env[k] for k in keep})
    yield app, env, tmp
    app.stop()


def test_the_cli_looks_up_no_host(tmp_path):
    env = _recording_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "detector", "count", str(EXAMPLE), "--quiet"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "lookups.txt").is_file(), "the lookup hook did not run (PYTHONPATH not honoured?)"
    assert _looked_up(tmp_path) == [], "the CLI looked up hosts while counting offline"


@pytest.mark.parametrize("doc", ["README.md", "docs/app.md"])
def test_the_curl_example_counts_with_a_version_the_manifest_ships(recorded, doc):
    app, env, tmp = recorded
    script = _block(doc, "### curl" if doc != "README.md" else "**curl**", "bash")
    named = re.findall(r'\\"(v\d+)\\"', script)
    default = load_manifest(REPO_ROOT / "weights" / "manifest.yaml").get().name
    assert named == [default], f"{doc}'s curl example names {named}; the manifest's default is {default}"
    script = script.replace("URL=http://127.0.0.1:7860", f"URL={app.url.rstrip('/')}")
    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "event: complete" in done.stdout, done.stdout[-2000:]
    data = json.loads(done.stdout.split("event: complete", 1)[1].split("data:", 1)[1].strip().splitlines()[0])
    result = data[2]
    assert result["source"] == EXAMPLE.name and result["model"]["version"] == default
    assert result["total"] == sum(result["counts"].values()) > 0


def test_the_readme_client_example_runs_as_printed(recorded):
    app, env, tmp = recorded
    script = _block("README.md", "**Python client**", "python")
    script = script.replace('Client("http://127.0.0.1:7860/")', f'Client("{app.url}", verbose=False)')
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    counts, scale, sha256 = done.stdout.strip().splitlines()[-3:]
    assert counts.startswith("{'adult_males': ") and "'pups': " in counts
    assert scale == "0.25 auto []"  # as the README's comment says
    assert sha256 == load_manifest(REPO_ROOT / "weights" / "manifest.yaml").get().sha256


def test_the_app_looked_up_no_host_while_starting_and_counting(recorded):
    app, env, tmp = recorded
    test_the_readme_client_example_runs_as_printed(recorded)  # the app has served at least one count
    assert (tmp / "lookups.txt").is_file(), "the lookup hook did not run in the app (PYTHONPATH not honoured?)"
    assert _looked_up(tmp) == [], "the app looked up hosts while starting and counting offline"
