"""The project installs as a package (``pip install .``) and its console scripts run from any directory.

The fresh venv reuses this environment's installed dependencies through a ``.pth`` file, so no network is needed;
pip still checks that every dependency the package declares is satisfied (``--no-index``).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, SEA_LION_CLASSES, git

EXAMPLE = REPO_ROOT / "examples" / "noaa_train_6.jpg"


def _tracked_copy(destination: Path) -> Path:
    """The checkout's tracked files (what a fresh clone has), so the build leaves nothing in the checkout."""
    for name in git(REPO_ROOT, "ls-files").splitlines():
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the package installed from a copy of the checkout; returns its bin directory."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the checkout's files")
    root = tmp_path_factory.mktemp("package")
    source = _tracked_copy(root / "source")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # This environment's packages (the dependencies, pip and setuptools) come after the venv's own.
    (Path(purelib) / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--no-build-isolation", "--quiet", str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALION_") and k != "PYTHONPATH"}
    return {**env, "SEALION_DEVICE": "cpu"}


def test_console_scripts_are_installed_and_explain_themselves(installed, tmp_path):
    for script, words in (
        ("sealion-count", "--female-length"),
        ("sealion-app", "--share"),
        ("sealion-survey", "estimate"),
    ):
        done = subprocess.run(
            [str(installed / script), "--help"], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert words in done.stdout and f"usage: {script}" in done.stdout


def test_sealion_count_runs_from_another_directory_with_the_packaged_model(installed, tmp_path):
    photo = tmp_path / "photos" / EXAMPLE.name
    photo.parent.mkdir()
    shutil.copy(EXAMPLE, photo)
    done = subprocess.run(
        [str(installed / "sealion-count"), "photos", "--out", "counts.csv"],  # --quiet would silence the note
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(shipped," in done.stderr  # the default model, from inside the installed package
    assert "with openvino" in done.stderr  # and its shipped CPU export (package data: weights/*_openvino_model/)
    (row,) = list(csv.DictReader((tmp_path / "counts.csv").open()))
    assert all(row[name].isdigit() for name in SEA_LION_CLASSES) and int(row["total"]) > 0
    assert (row["scale_source"], row["photo_scale"]) == ("auto", "0.25")  # a 4x copy, recognised from its size
    code = "import detector, detector.versions.manifest as m; print(detector.__file__, m.WEIGHTS_DIR)"
    where = subprocess.run(
        [str(installed / "python"), "-c", code],
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    module_file, weights_dir = where.split()
    assert str(installed.parent) in module_file and str(REPO_ROOT) not in module_file  # the installed copy
    assert Path(weights_dir, "manifest.yaml").is_file() and str(installed.parent) in weights_dir


def test_the_installed_app_finds_its_examples(installed, tmp_path):
    code = "from sealion_app.ui import demo as ui; print(len(list(ui.EXAMPLES_DIR.glob('*.jpg'))), ui.EXAMPLES_DIR)"
    out = subprocess.run(
        [str(installed / "python"), "-c", code], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    count, folder = out.stdout.split()
    assert int(count) == len(list((REPO_ROOT / "examples").glob("*.jpg"))) and str(installed.parent) in folder


def test_pyproject_lists_every_subpackage():
    """setuptools installs only the packages pyproject.toml lists: a new subfolder left out would be missing from an
    installed copy (and only the slow install test above would notice)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(REPO_ROOT).parts)
        for package in ("detector", "sealion_app", "training")
        for path in (REPO_ROOT / package).rglob("__init__.py")
    }
    assert found - listed == set(), f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
