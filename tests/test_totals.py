"""Survey totals through the command line: sample a run, review the sample (a dots table or the app's reviews
folder), estimate; numbers checked by hand, and the messages for reviews that do not fit."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detector.counting.records import PhotoRecord
from detector.counting.results import CountResult, ModelInfo
from detector.review.formats import dots_csv
from detector.review.record import PhotoAnnotations, Review
from detector.review.store import save_review
from detector.survey.runs import RunDirectory
from tests.helpers import REPO_ROOT, SEA_LION_CLASSES

SURVEY_SCRIPT = "import sys; from detector.totals.cli import main; sys.exit(main())"  # what sealion-survey runs
MODEL = ModelInfo(version="v2", sha256="ab" * 32, source="shipped", path="model.pt", class_names=SEA_LION_CLASSES)
# (adult_females, pups) per photo: the model's count and the truth a reviewer finds. Site A's females are all one
# short (difference +1), site B's two too many (-2); pups differ photo by photo.
SURVEY = {
    "site-A": {
        "a1.jpg": ((0, 0), (1, 0)), "a2.jpg": ((2, 0), (3, 1)), "a3.jpg": ((4, 1), (5, 1)), "a4.jpg": ((6, 2), (7, 4)),
        "a5.jpg": ((10, 5), (11, 8)), "a6.jpg": ((20, 8), (21, 8)), "a7.jpg": ((30, 10), (31, 15)),
        "a8.jpg": ((40, 20), (41, 30)),
    },
    "site-B": {"b1.jpg": ((5, 1), (3, 1)), "b2.jpg": ((6, 1), (4, 3)), "b3.jpg": ((7, 2), (5, 2)),
               "b4.jpg": ((8, 3), (6, 3))},
}  # fmt: skip


def annotations(name: str, females: int, pups: int) -> PhotoAnnotations:
    """``females`` adult females and ``pups`` pups as boxes in a 400x400 photo."""
    class_id = [2] * females + [4] * pups
    xyxy = [[10 * (i % 30), 10 * (i // 30), 10 * (i % 30) + 8, 10 * (i // 30) + 8] for i in range(len(class_id))]
    return PhotoAnnotations(name, np.array(xyxy).reshape(-1, 4), np.array(class_id), image_size=(400, 400))


def model_result(name: str, females: int, pups: int, version: str = "v2") -> CountResult:
    boxes = annotations(name, females, pups)
    model = MODEL if version == "v2" else ModelInfo(version, "cd" * 32, "hub", "old.pt", class_names=SEA_LION_CLASSES)
    return CountResult(
        boxes.xyxy, boxes.class_id, np.full(len(boxes), 0.9), SEA_LION_CLASSES, (400, 400), model=model, source=name,
        conf=dict.fromkeys(SEA_LION_CLASSES, 0.25),
    )  # fmt: skip


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A finished run of the 12 photos of :data:`SURVEY` (real files, the run format written by RunDirectory)."""
    run = RunDirectory.open(tmp_path / "run", {"model": {"version": "v2", "sha256": MODEL.sha256}})
    for k, (folder, photos) in enumerate(SURVEY.items()):
        for i, (name, ((females, pups), _)) in enumerate(photos.items()):
            path = tmp_path / "survey" / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (40, 40), (20 * i, 100 * k, 7)).save(path, format="JPEG")
            data = path.read_bytes()
            result = model_result(name, females, pups)
            sha = hashlib.sha256(data).hexdigest()
            run.add(PhotoRecord(str(path), result, folder, sha, len(data), path.stat().st_mtime_ns))
    run.export(*run.outcome())
    return run.folder


def cli(*args: str | Path) -> subprocess.CompletedProcess:
    """``python -m detector ARGS`` in this process (the parser and handlers of the command; a process each would
    cost seconds of imports per call)."""
    from detector.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(
        ["python", "-m", "detector", *map(str, args)], code, out.getvalue(), err.getvalue()
    )


def test_the_module_and_the_installed_command_have_the_verbs(run_dir):
    for command in ([sys.executable, "-m", "detector"], [sys.executable, "-c", SURVEY_SCRIPT]):
        done = subprocess.run(
            [*command, "sample", str(run_dir), "--photos", "9"], cwd=REPO_ROOT, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "drew 9 of 12 photos in 3 strata" in done.stderr and len(done.stdout.splitlines()) == 9
        (run_dir / "review-frame.csv").unlink()


def truth(name: str) -> tuple[int, int]:
    return next(photos[name][1] for photos in SURVEY.values() if name in photos)


def sampled(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "review-sample.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_dots(path: Path, names: list[str]) -> Path:
    """The reviewers' true counts of ``names`` as a dots table (the product's writer)."""
    path.write_text(dots_csv([(annotations(n, *truth(n)), 1.0) for n in names]))
    return path


def estimate_rows(run_dir: Path) -> dict[tuple[str, str], dict[str, str]]:
    with (run_dir / "estimate.csv").open(newline="") as handle:
        return {(row["folder"], row["class"]): row for row in csv.DictReader(handle)}


def test_sample_then_dots_table_then_estimate(run_dir, tmp_path):
    done = cli("sample", run_dir, "--photos", 9, "--strata", 2, "--seed", 0, "--copy", tmp_path / "to-review")
    assert done.returncode == 0, done.stderr
    rows = sampled(run_dir)
    # 9 photos: site A (8 photos) gets 6, site B (4 photos) 3. Site A's densest photo is taken for sure: with 6 - 3
    # = 3 reviews beyond the 3 a random stratum needs, a8's model count 60 x 3 = 180 is at least site A's 158; then
    # a7's 40 x 2 = 80 is below the 98 left. The other 7 photos of site A form one group (5 reviews // 3 = 1) with
    # 5 reviewed, site B one group with 3 of 4.
    assert sorted({(r["stratum"], r["inclusion_probability"]) for r in rows}) == [
        ("site-A:1", "0.714286"), ("site-A:take-all", "1"), ("site-B:1", "0.75"),
    ]  # fmt: skip
    assert [sum(r["stratum"] == s for r in rows) for s in ("site-A:take-all", "site-A:1", "site-B:1")] == [1, 5, 3]
    strata = {Path(r["file"]).name: r["stratum"] for r in csv.DictReader((run_dir / "review-frame.csv").open())}
    assert [n for n, s in strata.items() if s == "site-A:take-all"] == ["a8.jpg"]
    assert sorted(p.name for p in (tmp_path / "to-review").iterdir()) == sorted(Path(r["file"]).name for r in rows)
    names = sorted(Path(r["file"]).name for r in rows)
    assert names == ["a2.jpg", "a3.jpg", "a4.jpg", "a5.jpg", "a7.jpg", "a8.jpg", "b2.jpg", "b3.jpg", "b4.jpg"]

    done = cli("estimate", run_dir, "--reviews", write_dots(tmp_path / "reviewed_dots.csv", names))
    assert done.returncode == 0, done.stderr
    assert "matched 0 reviewed photos by sha256, 9 by file name" in done.stderr
    est = estimate_rows(run_dir)
    # Adult females: every difference in a stratum is the same, so the estimate is exact and its SE zero.
    # site A: model 112 + 8 photos x (+1) = 120; site B: model 26 + 4 x (-2) = 18; all: 138.
    for folder, raw, value in (("site-A", 112, 120), ("site-B", 26, 18), ("all", 138, 138)):
        row = est[(folder, "adult_females")]
        assert (int(row["raw_total"]), float(row["estimate"]), float(row["se"])) == (raw, value, 0.0)
    # Pups, site A:take-all: a8 reviewed, 30 pups, no variance.
    # site A:1 (model 0, 0, 1, 2, 5, 8, 10 = 26): reviewed a2, a3, a4, a5, a7 with differences 1, 0, 2, 3, 5:
    #   mean 2.2, s² 14.8 / 4 = 3.7; estimate 26 + 7 x 2.2 = 41.4; variance 7² (1 - 5/7) x 3.7 / 5 = 10.36.
    # site A: 30 + 41.4 = 71.4, SE 3.22, df 4 (the one stratum with a spread), t(0.975, 4) = 2.7764:
    #   71.4 -+ 8.94 = 62.5 - 80.3 (above the 1 + 1 + 4 + 8 + 15 + 30 = 59 pups the reviewers counted).
    pups_a = est[("site-A", "pups")]
    assert (float(pups_a["estimate"]), float(pups_a["se"]), float(pups_a["df"])) == (71.4, 3.2, 4.0)
    assert (float(pups_a["ci95_low"]), float(pups_a["ci95_high"])) == (62.5, 80.3)
    # site B (model 1, 1, 2, 3 = 7): reviewed b2, b3, b4 with differences 2, 0, 0: mean 2/3, s² 4/3.
    #   estimate 7 + 4 x 2/3 = 9.67; variance 4 x (4/3) / 3 = 16/9, SE 1.33.
    pups_b = est[("site-B", "pups")]
    assert (float(pups_b["estimate"]), float(pups_b["se"])) == (9.7, 1.3)
    # df 2, t 4.3027: 9.67 -+ 5.74 = 3.9 - 15.4; but the reviewers counted 3 + 2 + 3 = 8 pups, so the interval
    # starts there.
    assert (float(pups_b["ci95_low"]), float(pups_b["ci95_high"])) == (8.0, 15.4)
    # All: 71.4 + 9.67 = 81.07, variance 10.36 + 16/9 = 12.14, SE 3.48; df 12.14² / (10.36² / 4 + (16/9)² / 2)
    #   = 5.19, t = 2.54: 81.07 -+ 8.85 = 72.2 - 89.9.
    pups = est[("all", "pups")]
    assert (float(pups["estimate"]), float(pups["se"]), float(pups["ci95_low"]), float(pups["ci95_high"])) == (
        81.1, 3.5, 72.2, 89.9,
    )  # fmt: skip
    assert (pups["raw_total"], pups["reviewed"], pups["photos"]) == ("53", "9", "12")
    assert est[("all", "all_classes")]["estimate"] == f"{138 + 71.4 + 9 + 2 / 3:.1f}"
    report = (run_dir / "estimate.md").read_text()
    assert "| pups | 53 | 81 | 72 – 90 | 3.5 | 9 of 12 photos |" in report
    assert (run_dir / "estimate.png").read_bytes()[:4] == b"\x89PNG"
    assert done.stdout.splitlines()[0].split() == ["folder", "class", "raw", "estimate", "95%", "interval", "reviewed"]


def test_no_reviews_matching_the_run(run_dir, tmp_path):
    assert cli("sample", run_dir, "--photos", 9, "--strata", 2).returncode == 0
    table = tmp_path / "other_dots.csv"
    table.write_text(dots_csv([(annotations("elsewhere.jpg", 3, 1), 1.0)]))
    done = cli("estimate", run_dir, "--reviews", table)
    assert done.returncode == 2
    assert "none of the 1 reviewed photos" in done.stderr and "elsewhere.jpg" in done.stderr
    assert "review-sample.csv" in done.stderr


def test_a_stratum_with_too_few_reviews_names_it_and_how_many_more(run_dir, tmp_path):
    assert cli("sample", run_dir, "--photos", 9, "--strata", 2).returncode == 0
    names = sorted(Path(r["file"]).name for r in sampled(run_dir))
    done = cli("estimate", run_dir, "--reviews", write_dots(tmp_path / "dots.csv", [n for n in names if n != "b3.jpg"]))
    assert done.returncode == 2 and not (run_dir / "estimate.csv").exists()
    assert "stratum site-B:1 (model counts 6-11, 4 photos): 2 reviewed, review 1 more" in done.stderr
    assert "b3.jpg" in done.stderr and "site-A" not in done.stderr


def test_every_photo_of_the_take_all_stratum_must_be_reviewed(run_dir, tmp_path):
    assert cli("sample", run_dir, "--photos", 9, "--strata", 2).returncode == 0
    names = sorted(Path(r["file"]).name for r in sampled(run_dir))
    done = cli("estimate", run_dir, "--reviews", write_dots(tmp_path / "dots.csv", [n for n in names if n != "a8.jpg"]))
    assert done.returncode == 2 and not (run_dir / "estimate.csv").exists()
    assert (
        "stratum site-A:take-all (model counts 60-60, 1 photos, the densest: every one reviewed): 0 reviewed, "
        "review 1 more" in done.stderr
    )
    assert "a8.jpg" in done.stderr and "site-B" not in done.stderr


def test_estimate_before_a_sample_is_drawn(run_dir, tmp_path):
    done = cli("estimate", run_dir, "--reviews", write_dots(tmp_path / "dots.csv", ["a1.jpg"]))
    assert done.returncode == 2 and "no review sample drawn yet" in done.stderr
    assert "python -m detector sample" in done.stderr


def test_reviews_from_the_app_made_on_another_model_version_are_used_and_said(run_dir, tmp_path):
    assert cli("sample", run_dir, "--photos", 9, "--strata", 2).returncode == 0
    reviews = tmp_path / "reviews"
    for row in sampled(run_dir):
        path = Path(row["file"])
        model = SURVEY[row["folder"]][path.name][0]
        original = model_result(path.name, *model, version="v1")  # reviewed in the app when v1 was the default
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        save_review(reviews, Review(annotations("upload.jpg", *truth(path.name)), original, "A. Biologist",
                                    photo_sha256=sha))  # fmt: skip
    outside = tmp_path / "a1-dots.csv"  # a photo someone chose to review besides the sample
    write_dots(outside, ["a1.jpg"])
    done = cli("estimate", run_dir, "--reviews", reviews, outside)
    assert done.returncode == 0, done.stderr
    assert "matched 9 reviewed photos by sha256, 1 by file name" in done.stderr  # uploads renamed: sha256 finds them
    assert "reviews were made on counts of model v1, the run is v2: allowed" in done.stderr
    assert "1 reviewed photos outside the review sample not used" in done.stderr and "a1.jpg" in done.stderr
    assert estimate_rows(run_dir)[("all", "pups")]["estimate"] == "81.1"  # the same as from the dots table


def test_dots_tables_cannot_list_empty_photos_unless_the_sample_was_reviewed(run_dir, tmp_path):
    assert cli("sample", run_dir, "--photos", 9, "--strata", 2).returncode == 0
    names = sorted(Path(r["file"]).name for r in sampled(run_dir))
    table = write_dots(tmp_path / "dots.csv", [n for n in names if n != "b3.jpg"])
    done = cli("estimate", run_dir, "--reviews", table, "--sample-reviewed")
    assert done.returncode == 0, done.stderr
    assert "1 sampled photos without rows in the reviews taken as reviewed, no animals" in done.stderr
    assert estimate_rows(run_dir)[("site-B", "adult_females")]["reviewed"] == "3"


def test_the_library_and_the_doubt_list(run_dir, tmp_path):
    import detector

    sample = detector.draw_sample(RunDirectory(run_dir).outcome()[0], photos=9, seed=0, strata=2)
    assert len(sample.sampled) == 9 and abs(sum(1 / p.inclusion_probability for p in sample.sampled) - 12) < 1e-9
    done = cli("sample", run_dir, "--doubt", 3)
    assert done.returncode == 0, done.stderr
    assert "(for training; the totals need the probability sample)" in done.stderr
    assert len(list(csv.DictReader((run_dir / "review-doubt.csv").open()))) == 3
    assert cli("sample", run_dir, "--photos", 9).returncode == 0
    again = cli("sample", run_dir, "--photos", 9)
    assert again.returncode == 2 and "add --new" in again.stderr
    write_dots(tmp_path / "dots.csv", [Path(r["file"]).name for r in sampled(run_dir)])
    totals = detector.estimate_totals(run_dir, [tmp_path / "dots.csv"])
    assert totals.estimate.row("all", "adult_females").estimate == 138
    assert totals.run_model == f"v2 ({MODEL.sha256[:12]})"


def test_each_photo_is_drawn_as_often_as_its_inclusion_probability_says(run_dir):
    from detector.totals import draw_sample

    records = RunDirectory(run_dir).outcome()[0]
    draws = [draw_sample(records, photos=7, seed=seed, strata=2) for seed in range(1200)]
    # 7 of 12: site A (8 photos) gets 4 in one group (its 8 photos give 4 // 3 = 1 group), site B 3 of 4
    expected = {p.file: p.inclusion_probability for p in draws[0].frame}
    assert sorted(set(expected.values())) == [0.5, 0.75]
    for file, probability in expected.items():
        seen = sum(next(p for p in d.frame if p.file == file).sampled for d in draws) / len(draws)
        assert abs(seen - probability) < 0.05, (file, seen, probability)


def test_the_take_all_rule():
    from detector.totals.sampling import take_all

    # 100 x 2 >= 103 takes photo 0; then 1 x 1 < 3 stops.
    assert take_all([100, 1, 1, 1], reviews=2) == [0]
    assert take_all([100, 1, 1, 1], reviews=1) == []  # 100 x 1 < 103
    # 50 x 2 >= 90 takes photo 1; then 30 x 1 < 40 stops: a dense photo, not every large one.
    assert take_all([10, 50, 30], reviews=2) == [1]
    assert take_all([0, 0, 0], reviews=2) == []  # nothing counted: nothing is sure
    assert take_all([10, 10], reviews=5) == [0]  # never every photo: the rest stays a random sample
    assert take_all([5, 9, 7], reviews=0) == []


def test_a_reviews_folder_holding_exports_is_read_and_said(run_dir, tmp_path):
    """A folder given to --reviews is read whole: the app's saved reviews and every export file inside it."""
    assert cli("sample", run_dir, "--photos", 9, "--strata", 2).returncode == 0
    names = sorted(Path(r["file"]).name for r in sampled(run_dir))
    folder = tmp_path / "reviews"
    folder.mkdir()
    write_dots(folder / "reviewed_dots.csv", names)
    (folder / "README.txt").write_text("reviewed by A. Biologist")
    done = cli("estimate", run_dir, "--reviews", folder)
    assert done.returncode == 0, done.stderr
    assert f"{folder / 'reviewed_dots.csv'}: dots table, 9 photos" in done.stderr
    assert f"{folder / 'README.txt'}: not read (not a .csv or .json file" in done.stderr
    assert "matched 0 reviewed photos by sha256, 9 by file name" in done.stderr
    assert "--sample-reviewed" not in done.stderr  # every sampled photo has rows
    assert estimate_rows(run_dir)[("all", "pups")]["estimate"] == "81.1"  # as from the table given by name
    planning = next(line for line in done.stderr.splitlines() if "precision planning" in line)
    assert "of the run's 12 photos" in planning and "(of 12)" not in planning


def test_a_reviews_folder_that_matches_nothing_names_each_file_and_why(run_dir, tmp_path):
    assert cli("sample", run_dir, "--photos", 9, "--strata", 2).returncode == 0
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "other_dots.csv").write_text(dots_csv([(annotations("elsewhere.jpg", 3, 1), 1.0)]))
    (folder / "notes.json").write_text('{"reviewer": "A. Biologist"}')
    done = cli("estimate", run_dir, "--reviews", folder)
    assert done.returncode == 2
    assert "none of the 1 reviewed photos" in done.stderr
    assert (
        f"{folder / 'other_dots.csv'}: dots table of 1 photos (elsewhere.jpg), none of them a photo of the run"
        in done.stderr
    )
    assert f"{folder / 'notes.json'}: not read (" in done.stderr


def test_the_sample_reviewed_advice_only_when_sampled_photos_lack_rows(run_dir, tmp_path):
    assert cli("sample", run_dir, "--photos", 9, "--strata", 2).returncode == 0
    names = sorted(Path(r["file"]).name for r in sampled(run_dir))
    everyone = cli("estimate", run_dir, "--reviews", write_dots(tmp_path / "all.csv", names))
    assert everyone.returncode == 0 and "--sample-reviewed" not in everyone.stderr, everyone.stderr
    one_short = cli("estimate", run_dir, "--reviews", write_dots(tmp_path / "some.csv", names[1:]))
    assert (
        "1 sampled photos have no rows in the reviews" in one_short.stderr and "--sample-reviewed" in one_short.stderr
    )
