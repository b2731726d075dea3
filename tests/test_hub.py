"""Resolving versioned weights against a real offline hub (olah serving a local git repo). No mocks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from detector.errors import ModelResolutionError, WeightsIntegrityError
from detector.files import sha256_file
from detector.settings import Settings
from detector.versions.hub import resolve_weights
from detector.versions.manifest import load_manifest
from tests.helpers import free_port


def resolve(version=None, *, manifest, **options):
    """As an entry point resolves: the environment (the test's HF_* and SEALION_* variables), options over it."""
    return resolve_weights(Settings.from_env().model.with_options(version=version, **options), manifest=manifest)


@pytest.fixture
def manifest(hub_env, tmp_path):
    return load_manifest(hub_env.manifest(tmp_path / "manifest.yaml"))


@pytest.mark.parametrize("tag", ["v1", "v2"])
def test_each_tag_downloads_its_own_bytes(hub_env, manifest, tag):
    resolved = resolve(tag, manifest=manifest)
    assert resolved.source == "hub"
    assert sha256_file(resolved.path) == hub_env.sha256[tag] == resolved.sha256
    assert resolved.path.read_bytes() == hub_env.weights[tag].read_bytes()
    assert resolved.version.commit == hub_env.tags[tag]
    assert str(hub_env.cache_dir) in str(resolved.path)


def test_second_resolution_comes_from_the_cache(hub_env, manifest):
    first = resolve("v1", manifest=manifest)
    second = resolve("v1", manifest=manifest)
    assert (first.source, second.source) == ("hub", "cache")
    assert first.path == second.path


def test_a_full_commit_sha_not_in_the_manifest_is_described_by_its_model_card(hub_env, tmp_path):
    only_v1 = tmp_path / "only-v1.yaml"
    hub_env.manifest(only_v1)
    text = only_v1.read_text()
    only_v1.write_text(text[: text.index("  v2:")])  # forget v2
    manifest = load_manifest(only_v1)
    assert list(manifest.versions) == ["v1"]
    v2_commit = hub_env.tags["v2"]
    resolved = resolve(revision=v2_commit, manifest=manifest)
    assert resolved.sha256 == hub_env.sha256["v2"]
    assert resolved.version.commit == v2_commit and resolved.version.class_names[4] == "pups"


def test_offline_mode_uses_a_prefilled_cache_without_any_server(hub_env, manifest, monkeypatch):
    resolve("v2", manifest=manifest)  # fill the cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    resolved = resolve("v2", manifest=manifest)
    assert resolved.source == "cache" and resolved.sha256 == hub_env.sha256["v2"]


def test_offline_with_empty_cache_falls_back_to_the_shipped_file(hub_env, tmp_path, monkeypatch):
    shutil.copy(hub_env.weights["v1"], tmp_path / "shipped-v1.pt")
    manifest = load_manifest(hub_env.manifest(tmp_path / "manifest.yaml", shipped={"v1": "shipped-v1.pt"}))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve("v1", manifest=manifest)
    assert resolved.source == "shipped" and resolved.path == tmp_path / "shipped-v1.pt"
    with pytest.raises(ModelResolutionError, match="offline .* nothing is cached"):
        resolve("v2", manifest=manifest)  # v2 is not shipped


def test_unreachable_hub_with_nothing_cached_is_one_clear_error(hub_env, manifest, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ModelResolutionError) as caught:
        resolve("v1", manifest=manifest)
    message = str(caught.value)
    assert "\n" not in message and "v1" in message and "127.0.0.1" in message


def test_unknown_revision_names_the_known_ones(hub_env, manifest):
    with pytest.raises(ModelResolutionError, match=r"Revision 'v9' does not exist .*known: .*v1, v2"):
        resolve(revision="v9", manifest=manifest)


def test_unknown_version_lists_the_manifest(manifest):
    with pytest.raises(ModelResolutionError, match="Unknown model version 'v7'; known versions: v1, v2"):
        resolve("v7", manifest=manifest)


def test_tampered_cache_file_is_refused_with_both_hashes(hub_env, manifest):
    resolved = resolve("v1", manifest=manifest)
    blob = resolved.path.resolve()  # the cache keeps the bytes in blobs/, snapshots/ links to them
    blob.write_bytes(blob.read_bytes() + b"tampered")
    actual = sha256_file(blob)
    with pytest.raises(WeightsIntegrityError) as caught:
        resolve("v1", manifest=manifest)
    message = str(caught.value)
    assert hub_env.sha256["v1"] in message and actual in message and "model.pt" in message


def test_wrong_pinned_hash_refuses_the_download(hub_env, tmp_path):
    path = hub_env.manifest(tmp_path / "manifest.yaml")
    path.write_text(path.read_text().replace(hub_env.sha256["v2"], "a" * 64))
    with pytest.raises(WeightsIntegrityError, match="expected a{64}"):
        resolve("v2", manifest=load_manifest(path))


def test_a_malformed_pinned_hash_is_a_manifest_error(hub_env, tmp_path):
    path = hub_env.manifest(tmp_path / "manifest.yaml")
    path.write_text(path.read_text().replace(hub_env.sha256["v2"], "0" * 64))  # YAML reads this as the number 0
    with pytest.raises(ModelResolutionError, match="'v2': sha256 must be 64 hex"):
        load_manifest(path)


def test_explicit_local_file_wins_and_is_recognised(hub_env, manifest, tmp_path):
    local = Path(shutil.copy(hub_env.weights["v2"], tmp_path / "mine.pt"))
    resolved = resolve(weights=local, manifest=manifest)
    assert resolved.source == "local" and resolved.path == local
    assert resolved.version.name == "v2"  # same bytes as a listed version
    with pytest.raises(WeightsIntegrityError):
        resolve(weights=local, sha256="1" * 64, manifest=manifest)
    with pytest.raises(ModelResolutionError, match="does not exist"):
        resolve(weights=tmp_path / "missing.pt", manifest=manifest)


def test_environment_variables_select_version_and_revision(hub_env, manifest, monkeypatch):
    monkeypatch.setenv("SEALION_MODEL_VERSION", "v2")
    assert resolve(manifest=manifest).sha256 == hub_env.sha256["v2"]
    monkeypatch.setenv("SEALION_HUB_REVISION", "v1")
    assert resolve(manifest=manifest).sha256 == hub_env.sha256["v1"]


def test_an_explicit_repo_and_revision_work_with_an_empty_manifest(hub_env, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("default: v1\nversions: {}\n")
    manifest = load_manifest(empty)
    resolved = resolve(repo_id=hub_env.repo_id, revision="v2", manifest=manifest)
    assert resolved.sha256 == hub_env.sha256["v2"] and resolved.source == "hub"
    with pytest.raises(ModelResolutionError, match="give the hub repo"):
        resolve(revision="v2", manifest=manifest)


def test_a_published_versions_weights_count_as_the_version_when_given_as_an_unlisted_file(tiny_models, tmp_path):
    """The weights training.publish writes carry the version's calibrated thresholds (and greyscale input): the same
    file given as explicit weights, with no manifest listing it, counts at those thresholds, not at DEFAULT_CONF."""
    from detector.counting.model import Detector
    from detector.settings import DEFAULT_CONF, ModelSettings
    from training.publish import CardInputs, ManifestUpdate, PublishTarget, TrainedModel, publish

    calibrated = {"adult_males": 0.3, "subadult_males": 0.25, "adult_females": 0.2, "juveniles": 0.22, "pups": 0.15}
    model = TrainedModel(tiny_models["v1"], "v9", 320, 1.0, "yolov5n.yaml", class_conf=calibrated)
    target = PublishTarget("sealion-tests/stamped", git_repo=tmp_path / "repo")
    card = CardInputs(training_command="test", training_data={"photo_ids": []}, metrics={})
    (tmp_path / "weights").mkdir()
    published = publish(model, card, target, ManifestUpdate(tmp_path / "weights" / "manifest.yaml"))
    copy = Path(shutil.copy(tmp_path / "repo" / published.filename, tmp_path / "copy.pt"))
    assert sha256_file(copy) == published.sha256  # what the version's manifest entry pins

    (tmp_path / "weights" / "none.yaml").write_text("versions: {}\n")
    nothing_listed = load_manifest(tmp_path / "weights" / "none.yaml")
    unlisted = resolve_weights(ModelSettings(weights=copy), manifest=nothing_listed)
    assert unlisted.version.name == "local" and dict(unlisted.version.class_conf) == calibrated
    assert Detector(unlisted, device="cpu", warmup=False).thresholds() == calibrated
    plain = resolve_weights(ModelSettings(weights=tiny_models["v1"]), manifest=nothing_listed)
    assert Detector(plain, device="cpu", warmup=False).thresholds() == dict.fromkeys(calibrated, DEFAULT_CONF)


def test_publish_writes_a_versions_own_title_and_subject_to_its_entry_and_card(tiny_models, tmp_path):
    """``--title``/``--subject`` other than the sea lions' go into the manifest entry (the app's heading reads them)
    as into the card; the sea lion defaults stay out of the entry, as entries were before."""
    from training.publish import CardInputs, ManifestUpdate, PublishTarget, TrainedModel, publish

    listing = tmp_path / "weights" / "manifest.yaml"
    listing.parent.mkdir()
    target = PublishTarget("sealion-tests/words", git_repo=tmp_path / "repo")
    words = {"title": "Test animal counter", "subject": "test animals in test photos"}
    for version, card_words in (("v8", {}), ("v9", words)):
        model = TrainedModel(tiny_models["v1"], version, 320, 1.0, "yolov5n.yaml")
        card = CardInputs(training_command="test", training_data={"photo_ids": []}, metrics={}, **card_words)
        publish(model, card, target, ManifestUpdate(listing))
        readme = (tmp_path / "repo" / "README.md").read_text()
        assert f"# {card.title} — YOLOv5 ({version})" in readme and f"Detects and counts {card.subject}" in readme
    entries = yaml.safe_load(listing.read_text())["versions"]
    assert "title" not in entries["v8"] and "subject" not in entries["v8"]
    assert {k: entries["v9"][k] for k in words} == words
    assert (load_manifest(listing).get("v9").title, load_manifest(listing).get("v8").title) == (words["title"], "")
