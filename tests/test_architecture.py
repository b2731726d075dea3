"""The layering of docs/architecture.md: detector imports neither the app nor training, its parts (counting,
versions, survey, review) import only downwards, Gradio stays in sealion_app/ui/, and every module imports on its
own (no import loop hidden by import order). Every check walks the packages' subfolders."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

PACKAGES = ("detector", "sealion_app", "training")


def _sources(package: str) -> list[Path]:
    """Every Python file of a package, its subpackages included."""
    return sorted((REPO_ROOT / package).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(_module_name(path) for package in PACKAGES for path in _sources(package) if path.name != "__main__.py")


def test_the_checks_see_the_subpackages():
    """A move into a subfolder must not take a module out of these checks (a glob of the top level would)."""
    for expected in ("detector.counting.model", "detector.versions.hub", "detector.survey.runs", "sealion_app.ui"):
        assert expected in MODULES


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
    for path in _sources(package):
        wrong = _imported(path) & forbidden
        assert not wrong, f"{path.relative_to(REPO_ROOT)} imports {sorted(wrong)}"


@pytest.mark.slow  # a fresh interpreter per module (~40 s); the layer rules above run by default
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


def _path_of(module: str) -> Path:
    path = REPO_ROOT / Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


# detector's parts, lowest first: each may import its own part and the parts below it, never one above or beside it.
DETECTOR_PARTS = {
    "base": set(),  # detector/*.py below the edges: classes, errors, settings, environment, files
    "versions": {"base"},  # which model: the manifest, the hub, the runtimes
    "counting": {"base", "versions"},  # one photo: load, scale, tile, network, merge, result
    "survey": {"base", "versions", "counting"},  # many photos into a run directory
    "review": {"base", "versions", "counting"},  # a person's corrections and their formats
    "geo": {"base", "versions", "counting"},  # rasters window by window, GSD scale, map features, site polygons
    "totals": {"base", "versions", "counting", "survey", "review", "geo"},  # a run plus reviews: survey totals
    "edge": {"base", "versions", "counting", "survey", "review", "totals", "geo"},  # the CLI, the package's face
}
DETECTOR_EDGES = {"detector", "detector.cli", "detector.arguments"}
# The runtimes' names, which settings validates against: part of versions, but a leaf that base may import.
VOCABULARY = "detector.versions.runtimes"


def _detector_part(module: str) -> str:
    parts = module.split(".")
    if module in DETECTOR_EDGES:
        return "edge"
    if module == VOCABULARY:
        return "base"
    if len(parts) >= 2 and parts[1] in DETECTOR_PARTS:  # a part's package (its __init__) belongs to it
        return parts[1]
    return "base"


def test_the_runtime_vocabulary_is_a_leaf():
    assert not _module_imports(_path_of(VOCABULARY), set(MODULES))


def test_detector_parts_import_only_downwards():
    detector_modules = {module for module in MODULES if module.split(".")[0] == "detector"}
    wrong = []
    for module in sorted(detector_modules):
        part = _detector_part(module)
        for target in _module_imports(_path_of(module), detector_modules | {"detector"}) - {module}:
            target_part = _detector_part(target)
            if target_part != part and target_part not in DETECTOR_PARTS[part]:
                wrong.append(f"{module} ({part}) imports {target} ({target_part})")
    assert not wrong, wrong


GRADIO = {"gradio", "gradio_client", "gradio_image_annotation"}


def test_gradio_stays_in_the_ui():
    """Only sealion_app/ui/ imports Gradio; the rest of the app (service, review, uploads, present, models) is
    plain Python that a test or a script can use without it. Only the entry point (main.py) imports the ui."""
    wrong = []
    for package in PACKAGES:
        for path in _sources(package):
            relative = path.relative_to(REPO_ROOT)
            if relative.parts[:2] == ("sealion_app", "ui"):
                continue
            if _imported(path) & GRADIO:  # ast.walk: function-level imports too
                wrong.append(f"{relative} imports Gradio")
            ui_users = _module_imports(
                path, {"sealion_app.ui", *(m for m in MODULES if m.startswith("sealion_app.ui"))}
            )
            if ui_users and relative.as_posix() != "sealion_app/main.py":
                wrong.append(f"{relative} imports {sorted(ui_users)}")
    assert not wrong, wrong


def test_the_app_below_the_ui_loads_without_gradio():
    """The app's work (counting, batches, reviews, uploads, text) imports without Gradio: a script or a test can
    use it alone."""
    plain = [
        m for m in MODULES if m.startswith("sealion_app.") and not m.startswith(("sealion_app.ui", "sealion_app.main"))
    ]
    assert {"sealion_app.service", "sealion_app.review", "sealion_app.present", "sealion_app.uploads"} <= set(plain)
    code = "import sys, importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in plain)
    code += "print(sorted(name for name in sys.modules if name.split('.')[0] in " + repr(sorted(GRADIO)) + "))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_import_graph_has_no_loop():
    """Imports inside functions count too: a loop there (dataset <-> dots) only waits for the wrong call order."""
    graph = {module: _module_imports(_path_of(module), set(MODULES)) - {module} for module in MODULES}
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
    "sealion_app/main.py",  # an edge: sealion-app (GRADIO_* options, MALLOC_ARENA_MAX)
}
EDGE_FUNCTIONS = {"main", "_main", "build_parser"}  # the training commands read their options here only
PASS_THROUGH = {
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
        for path in _sources(package):
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
        for path in _sources(package):
            if path.relative_to(REPO_ROOT).as_posix() == "detector/settings.py":
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


def test_the_architecture_doc_names_every_folder_and_module():
    """docs/architecture.md draws the folders: every subpackage and every module of the three packages is in it, so a
    new file or folder cannot go undescribed."""
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    sources = [path for package in PACKAGES for path in _sources(package)]
    modules = [path for path in sources if path.name not in {"__init__.py", "__main__.py"}]
    folders = [path.parent for path in sources if path.name == "__init__.py" and path.parent.name not in PACKAGES]
    missing = [f"{folder.relative_to(REPO_ROOT).as_posix()}/" for folder in folders if f"{folder.name}/" not in text]
    for name in sorted({path.name for path in modules}):  # a name two folders share (records.py) is drawn twice
        if len(re.findall(rf"\b{re.escape(name)}\b", text)) < sum(path.name == name for path in modules):
            missing += [path.relative_to(REPO_ROOT).as_posix() for path in modules if path.name == name]
    assert not missing, f"docs/architecture.md does not mention {missing}"
