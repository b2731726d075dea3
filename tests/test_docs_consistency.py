"""README.md and docs/ quote the product's numbers (commits, sha256s, the example photos' counts, tiles, runtime, CSV
columns): each must equal what the manifest and a real count say now (``scripts/doc_numbers.py``; ``--write``
regenerates them after a new default version)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from detector.versions.manifest import load_manifest
from tests.helpers import REPO_ROOT

spec = importlib.util.spec_from_file_location("doc_numbers", REPO_ROOT / "scripts" / "doc_numbers.py")
doc_numbers = sys.modules["doc_numbers"] = importlib.util.module_from_spec(spec)  # dataclasses look it up there
spec.loader.exec_module(doc_numbers)
APP_DOC = REPO_ROOT / "docs" / "app.md"


@pytest.fixture(scope="module")
def facts():
    return doc_numbers.product_facts()


def test_every_number_the_docs_quote_is_the_products(facts):
    found = [line for path in doc_numbers.DOCS for line in doc_numbers.problems(path.read_text(), facts, path.name)]
    assert not found, "run `python scripts/doc_numbers.py --write`:\n" + "\n".join(found)


def test_the_check_fails_on_a_wrong_commit_or_count(facts):
    text = APP_DOC.read_text()
    version = load_manifest().get()
    assert version.commit in text  # /model_info's answer is quoted
    stale = text.replace(version.commit, "c2c53f0a437e254a2cd7a629577161345c433852")
    assert any("c2c53f0a437e" in line for line in doc_numbers.problems(stale, facts))
    counts = doc_numbers._python_counts(facts.counts[doc_numbers.SPARSE])
    assert counts in text
    wrong = text.replace(counts, counts.replace("'adult_males': ", "'adult_males': 9"))
    assert any("counts printed for" in line for line in doc_numbers.problems(wrong, facts))
    assert doc_numbers.rewrite(wrong, facts) == text  # and --write puts the product's numbers back


def test_the_default_versions_cv_table_in_the_training_docs_is_its_cards():
    """docs/training.md's cross-validation table of the default version quotes the RMSEs its card carries."""
    version = load_manifest().get()
    text = (REPO_ROOT / "docs" / "training.md").read_text()
    section = text.split(f"## The default model ({version.name})", 1)
    assert len(section) == 2, f"docs/training.md has no section for the default version {version.name}"
    table = section[1].split("\n## ", 1)[0]
    metrics = version.metrics
    for name, rmse in metrics["cv_rmse_per_class"].items():
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert float(cells[2]) == pytest.approx(rmse, abs=0.006), f"{name}: docs {cells[2]}, card {rmse}"
        assert float(cells[4]) == pytest.approx(metrics["baseline_rmse_per_class"][name], abs=0.006)
    assert f"**{metrics['cv_competition_rmse']:.2f}**" in table


def _default_section() -> str:
    version = load_manifest().get()
    text = (REPO_ROOT / "docs" / "training.md").read_text()
    return text.split(f"## The default model ({version.name})", 1)[1].split("\n## ", 1)[0]


def test_the_example_table_of_the_default_version_is_what_it_counts(facts):
    """The example photos' table ("previous → default (official)") ends each cell with what the default version
    counts now, as the app counts the examples (checked on the two photos the docs' facts count)."""
    table = _default_section().split("**The example photos**", 1)[1]
    for stem, counts in facts.counts.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| {stem} |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
        now = [int(cell.split("→")[1].split("(")[0]) for cell in cells]
        assert now == [*counts.values(), sum(counts.values())], f"{stem}: docs {now}, product {counts}"


def test_the_in_sample_line_of_the_default_version_is_the_runtime_benchmarks():
    """The default version's in-sample line (photo 43's counts, the mean RMSE over its training photos) quotes the
    committed ``benchmarks.runtime_accuracy`` run's torch row of that version."""
    import json

    results = json.loads((REPO_ROOT / "benchmarks" / "results" / "runtime_accuracy.json").read_text())
    version = load_manifest().get()
    if results["model"]["sha256"] != version.sha256:
        pytest.skip("runtime_accuracy.json is of another version: rerun python -m benchmarks.runtime_accuracy --docs")
    (photo,) = [p for p in results["photos"] if p["id"] == "43"]
    counts = ", ".join(str(n) for n in photo["counts"]["torch"].values())
    text = " ".join(_default_section().split())
    assert f"{version.name} counts {counts} at conf" in text
    assert f"official counts is {results['summary']['torch']['mean_rmse']:.1f} " in text


def test_the_benchmark_tables_in_the_docs_are_the_committed_results():
    """docs/benchmarks.md's tables section is what ``benchmarks.report`` makes of benchmarks/results/*.json."""
    from benchmarks.report import report

    document = (REPO_ROOT / "docs" / "benchmarks.md").read_text()
    block = document.split("<!-- report -->", 1)[1].split("<!-- /report -->", 1)[0]
    assert block.strip() == report(heading="####").strip(), "run `python -m benchmarks.report --docs`"
