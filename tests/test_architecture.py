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
    light = [
        "detector",
        "detector.counting.results",
        "detector.counting.records",
        "detector.counting.scale",
        "detector.counting.slicing",
    ]
    code = "import sys, importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in light)
    code += "print('torch' in sys.modules, 'ultralytics' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False"], done.stdout + done.stderr


def _module_imports(path: Path, package_modules: set[str]) -> set[str]:
    """The project modules a module imports, at any depth of the file (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in package_modules)
    return found


def test_the_import_graph_has_no_loop():
    """Imports inside functions count too: a loop there (dataset <-> dots) only waits for the wrong call order."""
    graph = {
        module: _module_imports(REPO_ROOT / Path(*module.split(".")).with_suffix(".py"), set(MODULES)) - {module}
        for module in MODULES
    }
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                pytest.fail("import loop: " + " -> ".join([*trail[trail.index(target) :], target]))
            if target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in MODULES:
        if module not in state:
            visit(module, [module])


# Where the environment may be read: the entry points. Anything below takes typed settings as arguments.
ENVIRONMENT_READERS = {
    "detector/settings.py",  # Settings.from_env: the one reader of SEALION_* and the hub's HF_* variables
    "detector/environment.py",  # set_offline_defaults (setdefault, so a user's own value wins)
    "detector/__init__.py",  # OMP_WAIT_POLICY=PASSIVE before torch loads (setdefault)
    "detector/cli.py",  # an edge: sealion-count
    "sealion_app/main.py",  # an edge: sealion-app (GRADIO_* options, MALLOC_ARENA_MAX)
}
EDGE_FUNCTIONS = {"main", "_main", "build_parser"}  # the training commands read their options here only
PASS_THROUGH = {
    ("training/publish.py", "_git"): "hands the whole environment to the git subprocess",
    ("training/train.py", "_enable_mlflow"): "configures ultralytics' MLflow callback, which reads only variables",
}


def _environment_uses(path: Path) -> list[tuple[int, str]]:
    """(line, enclosing function) of every ``os.environ`` / ``os.getenv`` in a file."""
    uses: list[tuple[int, str]] = []

    def walk(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            is_os = isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name) and child.value.id == "os"
            if is_os and child.attr in {"environ", "getenv"}:
                uses.append((child.lineno, function))
            walk(child, name)

    walk(ast.parse(path.read_text()), "<module>")
    return uses


def test_the_environment_is_read_only_at_the_edges():
    wrong = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).glob("*.py")):
            relative = path.relative_to(REPO_ROOT).as_posix()
            if relative in ENVIRONMENT_READERS:
                continue
            for line, function in _environment_uses(path):
                if package == "training" and (function in EDGE_FUNCTIONS or (relative, function) in PASS_THROUGH):
                    continue
                wrong.append(f"{relative}:{line} in {function}()")
    assert not wrong, "os.environ below the edges (take a Settings/ModelSettings argument instead): " + ", ".join(wrong)


COUNT_DEFAULT_NAMES = {"conf", "iou", "overlap", "imgsz", "tile_size", "batch_size", "slicing"}
SENTINELS = (None, 0)  # "not set": the app's 0 = auto / the model's calibrated thresholds


def _literal(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value not in SENTINELS


def test_count_defaults_are_typed_once():
    """No function or command-line option spells a count default (conf, iou, overlap, input size, slicing) as a
    literal: they take it from detector.settings, where each is written once."""
    from detector.settings import SLICING_CHOICES

    wrong = []
    for package in (*PACKAGES, "benchmarks"):
        for path in sorted((REPO_ROOT / package).glob("*.py")):
            if path.name == "settings.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                where = f"{path.relative_to(REPO_ROOT)}:{getattr(node, 'lineno', '?')}"
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    arguments = node.args.args + node.args.kwonlyargs
                    defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
                    defaults += node.args.kw_defaults
                    for argument, default in zip(arguments, defaults, strict=True):
                        if argument.arg in COUNT_DEFAULT_NAMES and _literal(default):
                            wrong.append(f"{where} {node.name}({argument.arg}={default.value!r})")
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument" and node.args:
                    flag = node.args[0].value if isinstance(node.args[0], ast.Constant) else ""
                    option = str(flag).lstrip("-").replace("-", "_")
                    for keyword in node.keywords:
                        if option in COUNT_DEFAULT_NAMES and keyword.arg == "default" and _literal(keyword.value):
                            wrong.append(f"{where} {flag} default={keyword.value.value!r}")
                if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
                    values = tuple(e.value for e in node.elts if isinstance(e, ast.Constant))
                    if values == SLICING_CHOICES:
                        wrong.append(f"{where} the slicing choices spelled out")
    assert not wrong, wrong
