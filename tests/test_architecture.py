"""The layering of docs/architecture.md: detector imports neither the app nor training, and every module imports
on its own (no import loop hidden by import order)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

PACKAGES = ("detector", "sealion_app", "training")
MODULES = sorted(
    ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
    for package in PACKAGES
    for path in (REPO_ROOT / package).glob("*.py")
    if path.name != "__main__.py"
)


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("detector", {"sealion_app", "training", "benchmarks", "tests", "app"}),
     ("training", {"sealion_app", "benchmarks", "tests", "app"}),
     ("sealion_app", {"training", "benchmarks", "tests", "app"})],
)  # fmt: skip
def test_dependencies_point_down_only(package, forbidden):
    for path in (REPO_ROOT / package).glob("*.py"):
        wrong = _imported(path) & forbidden
        assert not wrong, f"{path.relative_to(REPO_ROOT)} imports {sorted(wrong)}"


def test_every_module_imports_on_its_own():
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    failures = []
    for module in MODULES:  # a fresh interpreter each: an import loop cannot hide behind another module's import
        done = subprocess.run(
            [sys.executable, "-c", code, module], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            failures.append(f"{module}: {done.stderr.strip().splitlines()[-1]}")
    assert not failures, failures


def test_the_light_modules_do_not_pull_in_torch():
    light = ["detector", "detector.results", "detector.records", "detector.scale", "detector.slicing"]
    code = "import sys, importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in light)
    code += "print('torch' in sys.modules, 'ultralytics' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False"], done.stdout + done.stderr
