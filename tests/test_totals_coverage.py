"""Coverage of the survey totals on real data: the NOAA sample's photos with official counts, counted by the shipped
default model, the official counts as the truth, every sample the review design can draw (benchmarks/survey_totals.py).

Needs the NOAA sample (SEALION_NOAA_DATA or ../shared; README, 'Tests'); counts those photos once (about a
minute on two cores), so the coverage checks run with the slow ones: ``python -m pytest -m slow
tests/test_totals_coverage.py``. The default run checks that the docs table is the committed run's, and that run the
shipped default model's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import survey_totals
from tests.helpers import NO_SHARED_DATA, SHARED_DATA

BAND = (0.90, 0.97)  # the goal for a 95 % interval on the sample's photos


@pytest.fixture(scope="module")
def counted(tmp_path_factory):  # used by the slow tests only
    """The run of the default model over the photos with official counts, and the truth per run photo."""
    if not SHARED_DATA.is_dir():
        pytest.skip(NO_SHARED_DATA)
    root = tmp_path_factory.mktemp("survey-totals")
    records = survey_totals.count_run(SHARED_DATA, root / "photos", root / "run")
    official = survey_totals.official_counts(SHARED_DATA)
    return records, {r.file: official[Path(r.file).stem] for r in records}


@pytest.fixture(scope="module")
def results(counted):
    return survey_totals.run_all(*counted)


@pytest.mark.slow
def test_the_run_holds_every_photo_with_official_counts(counted):
    records, truth = counted
    official = survey_totals.official_counts(SHARED_DATA)  # counts.csv: one row per photo with official counts
    assert len(records) == len(truth) == len(official)
    assert sorted(Path(r.file).stem for r in records) == sorted(official, key=str)


def design_under_test(results) -> dict:
    photos, method = survey_totals.TESTED
    (design,) = [d for d in results["designs"] if (d["photos"], d["method"]) == (photos, method)]
    return design


# Classes whose coverage the shipped default model does not bring into the band (strict: a model that does makes the
# test pass and the entry must go). docs/survey.md says why.
SHORT_OF_THE_BAND = {
    "subadult_males": "v4: its subadult errors sit in a few sparse photos; a sample missing them is too sure (82 %)",
    "juveniles": "v4: above the band (98 %): its juvenile intervals are wider than they need to be",
}
CLASSES = ["adult_males", "subadult_males", "adult_females", "juveniles", "pups", "all_classes"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=SHORT_OF_THE_BAND[n])) if n in SHORT_OF_THE_BAND
     else n for n in CLASSES],
)  # fmt: skip
def test_the_95_percent_interval_covers_the_true_total_90_to_97_percent_of_the_time(results, name):
    design = design_under_test(results)
    assert list(design["classes"]) == CLASSES
    coverage = design["classes"][name]["coverage"]
    assert BAND[0] <= coverage <= BAND[1], f"{survey_totals.TESTED} {name}: coverage {coverage:.3f} outside {BAND}"


@pytest.mark.slow
def test_the_estimate_is_unbiased_and_closer_than_the_raw_total(results):
    for name, c in design_under_test(results)["classes"].items():  # unbiased by design: mean error over all samples
        assert abs(c["mean_error"]) <= max(2.0, 0.02 * c["truth"]), (name, c)
        assert c["mean_abs_error"] <= abs(c["raw_error"]) or abs(c["raw_error"]) <= 0.1 * c["truth"], (name, c)


@pytest.mark.slow
def test_the_docs_table_is_this_models_table(results):
    text = survey_totals.DOCS.read_text(encoding="utf-8")
    start = text.index(survey_totals.BEGIN) + len(survey_totals.BEGIN)
    documented = text[start : text.index(survey_totals.END)].strip()
    assert documented == survey_totals.table(results), (
        f"docs/survey.md's coverage table is not this model's ({results['model']['version']}, "
        f"{results['model']['sha256'][:12]}): regenerate it with `nice -n 19 python -m benchmarks.survey_totals`"
    )


def test_the_docs_table_is_the_committed_run_of_the_default_model():
    """Cheap and in the default run: docs/survey.md shows the committed ``survey_totals.json``, and that run counted
    with the shipped default model (the slow test above recomputes the whole table)."""
    from detector.versions.manifest import load_manifest

    data = json.loads(survey_totals.RESULT.read_text())
    default = load_manifest().get()
    assert (data["model"]["version"], data["model"]["sha256"]) == (default.name, default.sha256), (
        "benchmarks/results/survey_totals.json is of another model: rerun `python -m benchmarks.survey_totals`"
    )
    text = survey_totals.DOCS.read_text(encoding="utf-8")
    start = text.index(survey_totals.BEGIN) + len(survey_totals.BEGIN)
    assert text[start : text.index(survey_totals.END)].strip() == survey_totals.table(data)
