"""The app's support package in process: model registry, upload expansion, batch counting, presentation."""

from __future__ import annotations

import csv
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from detector.errors import DetectorError
from detector.settings import CountOptions, Settings
from detector.survey.runs import PhotoFile, count_photos
from detector.versions.manifest import load_manifest
from sealion_app import present, uploads
from sealion_app.models import ModelRegistry
from sealion_app.service import count_batch
from sealion_app.uploads import Photo, Rejected, expand_uploads
from tests.helpers import NO_SHARED_DATA, REPO_ROOT, SEA_LION_CLASSES, SHARED_DATA, build_untrained_model, sha256_of

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.jpg"))


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory) -> dict[str, Path]:
    """A manifest with versions v1 and v2, each shipped as a file next to it (different untrained weights)."""
    root = tmp_path_factory.mktemp("weights")
    versions = {}
    for seed, name in enumerate(("v1", "v2")):
        weights = build_untrained_model(root / f"{name}.pt", seed=seed)
        versions[name] = {
            "repo_id": "sealion-tests/not-on-any-hub",
            "revision": name,
            "commit": "",
            "filename": "model.pt",
            "sha256": sha256_of(weights),
            "class_names": SEA_LION_CLASSES,
            "imgsz": 320,
            "ground_scale": 0.25,
            "shipped_file": f"{name}.pt",
            "metrics": {"mAP50": 0.1 * (seed + 1), "per_class": {"pups": {"recall": 0.5}}},
        }
    (root / "manifest.yaml").write_text(yaml.safe_dump({"default": "v1", "versions": versions}))
    return {"manifest": root / "manifest.yaml", "v1": root / "v1.pt", "v2": root / "v2.pt"}


@pytest.fixture
def offline_manifest(two_versions, monkeypatch, tmp_path):
    monkeypatch.setenv("SEALION_MANIFEST", str(two_versions["manifest"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    for name in ("SEALION_MODEL_VERSION", "SEALION_WEIGHTS", "SEALION_HUB_REPO", "SEALION_HUB_REVISION"):
        monkeypatch.delenv(name, raising=False)
    return two_versions


def start_registry() -> ModelRegistry:
    """As ``sealion-app --device cpu`` starts it: the environment (this test's variables), the option over it."""
    return ModelRegistry.start(Settings.from_env().model.with_options(device="cpu"))


def test_registry_loads_other_versions_lazily_and_once(offline_manifest):
    registry = start_registry()
    assert registry.default.info.version == "v1" and registry.default.info.source == "shipped"
    assert registry.choices() == ["v1", "v2"]
    assert not registry.is_loaded("v2")
    loaded = []
    threads = [threading.Thread(target=lambda: loaded.append(registry.get("v2"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 3 and all(d is loaded[0] for d in loaded)  # one load, shared
    assert loaded[0].info.version == "v2" and loaded[0].info.sha256 == sha256_of(offline_manifest["v2"])
    assert registry.get(None) is registry.default and registry.get("v1") is registry.default
    with pytest.raises(DetectorError, match="Unknown model version 'v9'"):
        registry.get("v9")


def test_startup_override_does_not_leak_into_later_versions(offline_manifest, monkeypatch):
    monkeypatch.setenv("SEALION_WEIGHTS", str(offline_manifest["v2"]))
    registry = start_registry()
    assert registry.default.info.version == "v2" and registry.default.info.source == "local"
    assert registry.choices() == ["v2", "v1"]
    assert registry.get("v1").info.sha256 == sha256_of(offline_manifest["v1"])  # not the SEALION_WEIGHTS file


def test_registry_offers_each_versions_runtimes_and_loads_one_detector_per_choice(monkeypatch, tmp_path):
    """The shipped manifest: v1 has no exports (and is not shipped), the elephant-seal version ships its OpenVINO
    ones, v3 is listed but no longer shipped; an explicit runtime loads once, by name."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    for name in ("SEALION_MANIFEST", "SEALION_MODEL_VERSION", "SEALION_WEIGHTS", "SEALION_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    seals = "elephant-seals-v1"
    registry = ModelRegistry.start(Settings.from_env().model.with_options(device="cpu", version=seals))
    assert registry.runtime_choices("v1") == ["auto", "torch"]
    choices = registry.runtime_choices(seals)
    assert registry.runtime_choices() == choices and choices[:2] == ["auto", "torch"]
    assert {"openvino", "openvino-f32"} <= set(choices)
    cpu_runtime = load_manifest().get(seals).cpu_runtime
    assert registry.get(seals, cpu_runtime) is registry.default is registry.get(seals, "auto")  # auto ran cpu_runtime
    assert registry.default.class_names == ("bull", "cow", "pup")
    with pytest.raises(DetectorError, match=r"v1 has no runtime 'openvino'; choose one of: auto, torch\."):
        registry.get("v1", "openvino")
    torch_seals = registry.get(seals, "torch")
    assert (torch_seals.info.version, torch_seals.runtime) == (seals, "torch") and registry.get(
        seals, "torch"
    ) is torch_seals
    assert not registry.is_loaded("v4")  # another version's auto is loaded when asked for
    # listed, but not shipped and the hub is offline: Detector.load's reason, naming the version
    with pytest.raises(DetectorError, match=r"v3"):
        registry.get("v3", "torch")

    # the app built on it: another version's chooser keeps a runtime it offers, else resets to auto; the Model tab
    # shows the detector of the chosen runtime
    from sealion_app.ui.demo import build_demo

    handlers = {f.name: f.fn for f in build_demo(registry).fns.values()}
    kept, reset = handlers["runtime_choices"](seals, "torch"), handlers["runtime_choices"]("v1", "openvino-f32")
    assert kept.value == "torch" and "openvino-f32" in [value for _, value in kept.choices]
    assert reset.value == "auto" and [value for _, value in reset.choices] == ["auto", "torch"]
    assert handlers["show_model"](seals, "torch")[3]["runtime"] == "torch"


def test_model_info_and_markdown(offline_manifest):
    registry = start_registry()
    info = present.model_info(registry.default)
    assert info["version"] == "v1" and info["sha256"] == sha256_of(offline_manifest["v1"])
    assert info["weights_file"] == "v1.pt" and "path" not in info
    assert info["class_colors"]["pups"].startswith("#") and list(info["class_colors"]) == SEA_LION_CLASSES
    markdown = present.model_markdown(info)
    assert info["sha256"] in markdown and "shipped" in markdown and "cpu" in markdown
    metrics = present.metrics_table(info["metrics"])
    assert dict(zip(metrics["metric"], metrics["value"], strict=True)) == {
        "mAP50": "0.1",
        "per_class.pups.recall": "0.5",
    }


def test_count_batch_reports_progress_and_writes_csv(offline_manifest, tmp_path):
    registry = start_registry()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n-not-really")
    calls = []
    outcome = count_batch(
        registry.default,
        [EXAMPLES[0], broken, EXAMPLES[1]],
        CountOptions(photo_scale=0.25),
        progress=lambda done, total, name: calls.append((done, total, name)),
    )
    assert [c[:2] for c in calls] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert [r.source for r in outcome.results] == [EXAMPLES[0].name, EXAMPLES[1].name]
    assert [f.file for f in outcome.failures] == ["broken.png"]
    assert len(outcome.thumbnails) == 2
    with Image.open(outcome.thumbnails[0][0]) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == present.THUMBNAIL_SIDE
    assert outcome.thumbnails[0][1] == f"{EXAMPLES[0].name}: {outcome.results[0].total}"
    assert outcome.csv_path.parent == Path(outcome.thumbnails[0][0]).parent
    rows = list(csv.DictReader(outcome.csv_path.open()))
    assert [r["file"] for r in rows] == [EXAMPLES[0].name, EXAMPLES[1].name, "broken.png"]
    assert set(SEA_LION_CLASSES) <= set(rows[0])
    assert rows[0]["sha256"] == outcome.records[0].sha256 and len(rows[0]["sha256"]) == 64  # the CLI's columns
    assert rows[0]["photo_scale"] == "0.25" and rows[0]["captured_at"] == ""  # the examples carry no EXIF
    # the batch counts through the survey pipeline: the records sealion-count --run writes for the same photos
    files = [PhotoFile.stat(path, "") for path in (EXAMPLES[0], EXAMPLES[1])]
    survey = list(count_photos(registry.default, files, CountOptions(photo_scale=0.25)))
    assert [(r.result.counts, r.sha256, r.size) for r in outcome.records] == [
        (r.result.counts, r.sha256, r.size) for r in survey
    ]


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_expand_uploads_zip_members_and_rejections(tmp_path):
    photo = EXAMPLES[0].read_bytes()
    archive = _zip(
        tmp_path / "survey.zip",
        {
            "a/1.jpg": photo,
            "a/.hidden.jpg": photo,
            "__MACOSX/a/._1.jpg": b"x",
            "a/readme.md": b"notes",
            "a/inner.zip": b"PK",
            "a/2.JPG": photo,
        },
    )
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(photo)
    items = expand_uploads([plain, archive])
    assert [(type(i).__name__, i.name) for i in items] == [
        ("Photo", "plain.jpg"),
        ("Rejected", "survey.zip"),  # "2 hidden or macOS metadata file(s) ... skipped"
        ("Photo", "survey.zip/a/1.jpg"),
        ("Rejected", "survey.zip/a/readme.md"),
        ("Rejected", "survey.zip/a/inner.zip"),
        ("Photo", "survey.zip/a/2.JPG"),
    ]
    assert items[2].read() == photo and items[0].read() == plain and "2 hidden" in items[1].reason


def test_zip_guards(tmp_path, monkeypatch):
    not_zip = tmp_path / "photos.zip"
    not_zip.write_text("not a zip")
    (rejected,) = expand_uploads([not_zip])
    assert isinstance(rejected, Rejected) and "not a readable .zip" in rejected.reason

    bomb = _zip(tmp_path / "bomb.zip", {"zeros.jpg": b"\0" * (20 * 1024 * 1024)})
    (rejected,) = expand_uploads([bomb])
    assert isinstance(rejected, Rejected) and "zip bomb" in rejected.reason

    empty = _zip(tmp_path / "empty.zip", {})
    assert "no files" in expand_uploads([empty])[0].reason

    monkeypatch.setattr(uploads, "MAX_ZIP_MEMBERS", 2)
    many = _zip(tmp_path / "many.zip", {f"{i}.jpg": b"x" for i in range(3)}, zipfile.ZIP_STORED)
    (rejected,) = expand_uploads([many])
    assert "holds 3 files" in rejected.reason


def test_class_distribution_is_the_official_counts():
    table = present.class_distribution()
    assert list(table["class"]) == [c.replace("_", " ") for c in SEA_LION_CLASSES]
    shared = SHARED_DATA / "counts.csv"
    if not shared.is_file():
        pytest.skip(NO_SHARED_DATA)
    with shared.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(table["animals"]) == [sum(int(r[c]) for r in rows) for c in SEA_LION_CLASSES]


def test_counts_table_lists_all_classes_and_total():
    import numpy as np

    from detector.counting.results import CountResult

    result = CountResult(np.zeros((3, 4)), np.array([4, 4, 0]), np.ones(3), tuple(SEA_LION_CLASSES), (10, 10))
    table = present.counts_table(result)
    assert table.values.tolist() == [
        ["adult males", 1, "unknown"],  # no cross-validated error known for this model
        ["subadult males", 0, "unknown"],
        ["adult females", 0, "unknown"],
        ["juveniles", 0, "unknown"],
        ["pups", 2, "unknown"],
        ["total", 3, ""],
    ]
    errors = present.expected_errors({"cv_rmse_per_class": {"adult_males": 11.353, "pups": 96.55}})
    with_errors = present.counts_table(result, errors).values.tolist()
    assert with_errors[0] == ["adult males", 1, "± 11 per photo"] and with_errors[4] == ["pups", 2, "± 97 per photo"]
    assert with_errors[1][2] == "unknown"


def test_photo_reads_from_path(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"abc")
    assert Photo("x.jpg", path=path).read() == path


def test_model_tab_states_each_class_threshold_and_cross_validated_error():
    data = {
        "class_names": list(SEA_LION_CLASSES),
        "class_conf": {**dict.fromkeys(SEA_LION_CLASSES, 0.25), "subadult_males": 0.48},
        "metrics": {
            "cv_folds": 4,
            "cv_photos": 17,
            "cv_calibrated_rmse_per_class": dict.fromkeys(SEA_LION_CLASSES, 10.0),
            "baseline_rmse_per_class": dict.fromkeys(SEA_LION_CLASSES, 20.0),
        },
    }
    text = "\n".join(present.accuracy_lines(data))
    assert "On survey photos it never saw (4-fold cross-validation over 17 NOAA photos)" in text
    assert "typically off by: adult males ± 10, subadult males ± 10" in text
    assert "the model does better for adult males, subadult males, adult females, juveniles, pups." in text
    assert "| subadult males | 0.48 | ± 10.0 | ± 20.0 |" in text and "| pups | 0.25 | ± 10.0 | ± 20.0 |" in text
    assert "cv_" not in text  # sentences and a table, no raw model-card keys
    data["metrics"]["baseline_rmse_per_class"] = {**dict.fromkeys(SEA_LION_CLASSES, 20.0), "pups": 5.0}
    text = "\n".join(present.accuracy_lines(data))
    assert "for pups it is not better than that guess, so treat those counts as rough indications" in text
    assert present.accuracy_lines({"class_names": list(SEA_LION_CLASSES), "metrics": {}}) == []  # nothing known


def test_prune_keeps_temporary_disk_bounded_without_touching_running_batches(tmp_path):
    import os
    import time

    from sealion_app.service import BATCH_CSV, prune_old_batches

    def folder(name: str, age_s: float, finished: bool = False) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "file.jpg").write_bytes(b"x")
        if finished:
            (path / BATCH_CSV).write_text("file\n")
        stamp = time.time() - age_s
        for item in [*path.iterdir(), path]:
            os.utime(item, (stamp, stamp))
        return path

    served_count = folder("sealion-count-old", 300)
    fresh_count = folder("sealion-count-new", 10)
    served_batch = folder("sealion-batch-done", 300, finished=True)
    running_batch = folder("sealion-batch-running", 300)  # no CSV yet: its batch may still be counting
    abandoned = folder("sealion-batch-abandoned", 2 * 24 * 3600)
    prune_old_batches(tmp_path)
    assert not served_count.exists() and not served_batch.exists() and not abandoned.exists()
    assert fresh_count.exists() and running_batch.exists()


def test_the_tile_gate_choice_reaches_the_count_options_at_the_default():
    """The Advanced accordion's tile gate (on by default only while benchmarks.gate_recall clears the default model)
    is one of the count settings: the handlers' last API parameter, turned into CountOptions in one place."""
    import inspect

    from detector.settings import DEFAULT_GATE
    from sealion_app.ui.controls import ADVANCED_LABEL, CountSettings, takes_count_settings

    assert f"tile gate {'on' if DEFAULT_GATE else 'off'}" in ADVANCED_LABEL
    assert CountSettings().options().gate is DEFAULT_GATE
    assert CountSettings(gate="on").options().gate is True and CountSettings(gate="off").options().gate is False
    assert CountSettings(gate=None).options().gate is DEFAULT_GATE  # a raw API call that leaves it out
    with pytest.raises(DetectorError, match="gate must be one of on, off"):
        CountSettings(gate="maybe").options()

    def handler(photo: str, settings: CountSettings) -> CountOptions:
        return settings.options()

    wrapped = takes_count_settings(handler)
    assert list(inspect.signature(wrapped).parameters)[-1] == "gate"
    assert wrapped("x.jpg", gate="off").gate is False and wrapped("x.jpg").gate is DEFAULT_GATE


def test_the_model_tab_says_why_the_cpu_runtime_is_the_default():
    """The shipped default version's runtime measurements (benchmarks.runtime_accuracy --update-manifest) reach the
    Model tab: each runtime's error against the official counts, its speed, and which move counts."""
    version = load_manifest().get()
    measured = present.runtime_accuracy(version)
    if not measured:
        pytest.skip(f"{version.name} has no runtime_accuracy run in weights/manifest.yaml")
    (row,) = present.runtime_choice_lines({"cpu_runtime": version.cpu_runtime, "runtime_accuracy": measured})
    assert f"why `{version.cpu_runtime}` on a CPU" in row
    for name, a in measured.items():
        one = f"{name} ({a['effective_precision']}) {a['mean_rmse_vs_official']:.1f}"
        assert one in row and (a["passes"] or f"{one} at {a['seconds_per_photo']:.2f} s/photo, moves counts" in row)
    assert measured[version.cpu_runtime]["passes"] is True
    assert f"rule: {measured[version.cpu_runtime]['rule']}" in row  # the benchmark's own wording, from the manifest


def test_the_batch_tab_shows_one_progress_bar_every_column_and_one_photo_as_one(offline_manifest):
    from sealion_app.ui.demo import build_demo

    config = build_demo(start_registry()).get_config_file()
    table = next(c for c in config["components"] if c["props"].get("elem_id") == "batch-table")
    (batch,) = [d for d in config["dependencies"] if d.get("api_name") == "count_batch"]
    assert batch["show_progress_on"] == [table["id"]]  # not a bar on each of the six outputs
    widths = table["props"]["column_widths"]
    assert table["props"]["wrap"] and len(widths) == len(table["props"]["value"]["headers"])
    assert sum(float(w.rstrip("%")) for w in widths) == 100  # the warnings column fits, at any page width
    one = present.batch_table([_one_result()], SEA_LION_CLASSES)
    assert one.iloc[-1, 0] == "the 1 photo"


def _one_result():
    from detector.counting.results import CountResult

    return CountResult(np.zeros((1, 4)), np.array([2]), np.ones(1), SEA_LION_CLASSES, (50, 40), source="a.jpg")


def test_the_heading_and_about_text_follow_the_versions_words():
    """The sea lion default keeps the heading and "What it does" the app was built with; the shipped elephant-seal
    version is headed by its title and names its subject and classes (its manifest entry, as its card says); a
    version that names neither gets its classes, never the sea lions'."""
    from dataclasses import replace

    from sealion_app.ui.about_tab import SEA_LION_INTRO, about_intro

    manifest = load_manifest()
    default, seals = manifest.get(), manifest.get("elephant-seals-v1")
    assert present.heading_markdown(default, default.class_names) == (
        "# Steller sea lion counter\nCount adult males, subadult males, adult females, juveniles and pups "
        "in aerial survey photos."
    )
    assert present.heading_markdown(default, ()) == present.heading_markdown(default, default.class_names)
    assert about_intro(default, default.class_names) == SEA_LION_INTRO and "Steller sea lions" in SEA_LION_INTRO
    heading = present.heading_markdown(seals, seals.class_names)
    assert heading.startswith("# Elephant seal counter\nCount northern elephant seals"), heading
    assert heading.endswith("per class: bull, cow, pup.") and "sea lion" not in heading and "adult" not in heading
    intro = about_intro(seals, seals.class_names)
    assert "model version **elephant-seals-v1** (Elephant seal counter)" in intro and "bull, cow, pup" in intro
    plain = replace(seals, title="", subject="")
    assert present.heading_markdown(plain, plain.class_names) == (
        "# Animal counter: model version elephant-seals-v1\nCount bulls, cows and pups in aerial survey photos."
    )


def test_a_version_without_count_errors_says_so_plainly():
    from detector.counting.results import CountResult

    result = CountResult(np.zeros((2, 4)), np.array([0, 2]), np.ones(2), ("bull", "cow", "pup"), (10, 10))
    unknown = present.expected_errors({})
    status = present.status_line(result, unknown)
    assert "has no cross-validated count errors" in status and "typical error is unknown" in status, status
    assert "survey photos" not in status and "could well be" not in status
    assert "unknown" in present.counts_label(unknown) and "survey photos" not in present.counts_label(unknown)
    known = present.expected_errors({"cv_rmse_per_class": {"bull": 2.0, "cow": 5.0, "pup": 4.0}})
    assert "could well be" in present.status_line(result, known)
    assert (
        present.counts_label(known) == "Counts per class, with the typical error on survey photos the model never saw"
    )
