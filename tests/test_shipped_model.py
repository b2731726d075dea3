"""The shipped default model, as a new user gets it: offline, CPU, no overrides."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detector import Detector
from detector.counting.slicing import tile_grid
from detector.counting.uncertainty import CountUncertainty
from detector.files import sha256_file
from detector.settings import ModelSettings
from detector.versions.manifest import load_manifest
from sealion_app.present import SAMPLE_COUNTS_CSV
from tests.helpers import REPO_ROOT, SEA_LION_CLASSES

EXAMPLE = REPO_ROOT / "examples" / "noaa_train_0.jpg"  # the busiest sample photo, downsampled 4x
SPARSE_EXAMPLE = REPO_ROOT / "examples" / "noaa_train_6.jpg"  # 45 animals, spread out


@pytest.fixture(scope="module")
def shipped() -> Detector:
    return Detector.load(ModelSettings(device="cpu"))


def test_the_default_version_is_shipped_and_pinned():
    manifest = load_manifest()
    version = manifest.get()
    shipped_path = version.shipped_path(manifest.weights_dir)
    assert shipped_path is not None and shipped_path.is_file()
    assert sha256_file(shipped_path) == version.sha256
    assert len(version.commit) == 40 and version.class_names == tuple(SEA_LION_CLASSES)
    assert shipped_path.stat().st_size < 15_000_000  # keeps the repo small


def test_it_loads_offline_without_any_hub(shipped):
    assert shipped.info.version == load_manifest().default
    assert shipped.info.source in {"shipped", "cache"}  # no hub is reachable from the test machine


def _official_counts(path: Path) -> dict[str, dict[str, int]]:
    with path.open(newline="") as handle:
        return {row["train_id"]: {n: int(row[n]) for n in SEA_LION_CLASSES} for row in csv.DictReader(handle)}


def test_it_counts_a_real_photo_within_its_own_error_for_the_classes_it_counts_well(shipped):
    """The busiest example (~950 animals): every class the version counts better than guessing the mean is within
    2.5x its cross-validated typical error of the official count (a collapse to few animals fails: 486 adult
    females, 62 adult males); the error and the classes come from the default version's card, so a new version is
    held to its own numbers. The slack: the example is downsampled 4x and upsampled 2x to the model's scale, blurrier
    than the photos its CV counted (v3 counts 557 adult females there, 2.2x its CV RMSE of 31.6)."""
    errors = CountUncertainty.of(load_manifest().get())
    official = _official_counts(SAMPLE_COUNTS_CSV)[EXAMPLE.stem.removeprefix("noaa_train_")]
    result = shipped.count(EXAMPLE)  # auto scale: the example's size says downsampled 4x
    good = [n for n in SEA_LION_CLASSES if n in errors.typical and n not in errors.worse_than_mean(SEA_LION_CLASSES)]
    assert good, "the default version counts no class better than guessing the mean"
    off = {
        n: (result.counts[n], official[n])
        for n in good
        if abs(result.counts[n] - official[n]) > 2.5 * errors.typical[n]
    }
    assert not off, off


def test_per_class_error_on_the_photos_with_official_counts_is_within_its_cross_validated_error(shipped, shared_data):
    """Every raw photo of the NOAA sample whose official counts belong to it (downsampled ids 0 1 2 4 6 7 8, the
    full-resolution raws 5 42 43 44 50; raw 3 is another photograph than the one counted): each class's RMSE over
    them is at most 1.5x the version's cross-validated RMSE from its card. The slack covers 12 photos against the
    cross-validation's and the runtime; a collapse of a class the version counts well fails by far."""
    errors = CountUncertainty.of(load_manifest().get())
    official = _official_counts(shared_data / "counts.csv")
    photos = [shared_data / "downsampled" / "Train" / f"{i}.jpg" for i in (0, 1, 2, 4, 6, 7, 8)]
    photos += [shared_data / "fullres-raw" / f"{i}.jpg" for i in (5, 42, 43, 44, 50)]
    differences = np.array(
        [[shipped.count(photo).counts[n] - official[photo.stem][n] for n in SEA_LION_CLASSES] for photo in photos]
    )
    rmse = dict(zip(SEA_LION_CLASSES, np.sqrt((differences**2).mean(axis=0)).round(1).tolist(), strict=True))
    over = {n: (rmse[n], errors.typical[n]) for n in SEA_LION_CLASSES if rmse[n] > 1.5 * errors.typical[n]}
    assert not over, f"RMSE over the sample vs cross-validated: {over}"


def intersection_over_smaller(a: np.ndarray, b: np.ndarray) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return inter / max(smaller, 1e-6)


def test_animals_on_tile_seams_are_counted_once(shipped):
    """Run each tile alone, find the animals two tiles both saw, and check the sliced count keeps one of each."""
    from detector.counting.images import load_image, rescale

    scale = shipped.ground_scale  # work in the model's own pixels: each tile reaches the network unscaled
    photo = rescale(load_image(SPARSE_EXAMPLE), scale / 0.25)  # a dense colony blurs which box is which animal
    tile_size, overlap = shipped.imgsz, 0.25
    tiles = tile_grid(photo.shape[1], photo.shape[0], tile_size, overlap)
    per_tile = []
    for index, (x1, y1, x2, y2) in enumerate(tiles):
        alone = shipped.count(photo[y1:y2, x1:x2], photo_scale=scale, slicing="off", tile_size=tile_size)
        for box, cid in zip(alone.xyxy + [x1, y1, x1, y1], alone.class_id, strict=True):
            per_tile.append((index, int(cid), box))

    def uncrowded(first: np.ndarray, second: np.ndarray, cls: int) -> bool:
        """No tile saw two boxes of the class there (a crowd, or the model's own double box: identity is unclear)."""
        union = np.r_[np.minimum(first[:2], second[:2]), np.maximum(first[2:], second[2:])]
        for tile in range(len(tiles)):
            near = [b for t, c, b in per_tile if t == tile and c == cls and intersection_over_smaller(b, union) >= 0.5]
            if len(near) > 1:
                return False
        return True

    seen_twice = [
        (a[2], b[2], a[1])
        for i, a in enumerate(per_tile)
        for b in per_tile[i + 1 :]
        if a[0] != b[0]
        and a[1] == b[1]
        and intersection_over_smaller(a[2], b[2]) >= 0.5
        and uncrowded(a[2], b[2], a[1])
    ]
    assert len(seen_twice) >= 3, "the photo should have animals on seams, or the test proves nothing"

    merged = shipped.count(photo, photo_scale=scale, slicing="on", tile_size=tile_size, overlap=overlap)
    assert merged.total < len(per_tile)
    for first, second, cls in seen_twice:
        union = np.array(
            [min(first[0], second[0]), min(first[1], second[1]), max(first[2], second[2]), max(first[3], second[3])]
        )
        kept = [  # same class only: the model may also see an animal of another class at the same place
            box
            for box, cid in zip(merged.xyxy, merged.class_id, strict=True)
            if cid == cls
            and intersection_over_smaller(box, union) >= 0.5
            and intersection_over_smaller(box, first) >= 0.5
            and intersection_over_smaller(box, second) >= 0.5
        ]
        assert len(kept) == 1, f"animal at {union.round()} kept {len(kept)} times"


@pytest.mark.usefixtures("shared_data")
def test_cli_counts_a_full_resolution_survey_photo(tmp_path, shared_data):
    out = tmp_path / "c.json"
    env = {**os.environ, "SEALION_DEVICE": "cpu"}
    for name in ("SEALION_WEIGHTS", "SEALION_MODEL_VERSION", "SEALION_MANIFEST"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "detector", "count", str(shared_data / "fullres-dotted" / "2.jpg"), "--out", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(out.read_text())["results"]
    assert list(result["counts"]) == SEA_LION_CLASSES
    assert result["image_size"] == {"width": 4992, "height": 3328}
    assert result["model"]["version"] == load_manifest().default and result["total"] > 0


@pytest.fixture(scope="module")
def crop(shipped) -> np.ndarray:
    """One model tile of a dense example photo at the model's ground scale (no rescaling, no seam merge)."""
    from detector.counting.images import load_image, rescale

    rgb = rescale(load_image(EXAMPLE), shipped.ground_scale / 0.25)
    side = shipped.imgsz
    return np.ascontiguousarray(rgb[300 : 300 + side, 500 : 500 + side])


def between_scores(scores: np.ndarray) -> float:
    """A threshold halfway between two middle scores (never equal to one: ultralytics keeps only scores > conf)."""
    ordered = np.unique(scores)
    if len(ordered) < 2:
        return 0.5
    k = len(ordered) // 2
    return float(ordered[k - 1] + ordered[k]) / 2


def test_per_class_thresholds_apply_and_an_explicit_conf_overrides_them(shipped, crop):
    scale = shipped.ground_scale
    floor = shipped.count(crop, conf=0.02, photo_scale=scale)
    assert len(set(floor.class_id.tolist())) >= 2
    thresholds = {
        name: between_scores(floor.confidence[floor.class_id == i]) for i, name in enumerate(shipped.class_names)
    }
    per_class = shipped.count(crop, class_conf=thresholds, photo_scale=scale)
    expected = {
        name: int(((floor.class_id == i) & (floor.confidence >= thresholds[name])).sum())
        for i, name in enumerate(shipped.class_names)
    }
    assert per_class.counts == expected and 0 < per_class.total < floor.total
    assert per_class.conf == pytest.approx(thresholds)  # the result records what was applied
    uniform = shipped.count(crop, conf=0.02, class_conf=thresholds, photo_scale=scale)  # explicit conf wins
    assert uniform.counts == floor.counts and set(uniform.conf.values()) == {0.02}


def test_the_versions_calibrated_thresholds_are_the_default(shipped, crop):
    from dataclasses import replace

    from detector.errors import DetectorError
    from detector.versions.hub import ResolvedWeights

    scale = shipped.ground_scale
    assert shipped.count(crop, photo_scale=scale).conf == pytest.approx(
        shipped.info.class_conf or dict.fromkeys(SEA_LION_CLASSES, 0.25)
    )
    floor = shipped.count(crop, conf=0.02, photo_scale=scale)
    calibrated = {**dict.fromkeys(SEA_LION_CLASSES, 0.02), "adult_females": 0.99}
    version = replace(shipped.weights.version, class_conf=calibrated)
    detector = Detector(ResolvedWeights(shipped.weights.path, shipped.weights.sha256, "local", version), device="cpu")
    result = detector.count(crop, photo_scale=scale)
    assert result.conf == pytest.approx(calibrated) and detector.info.class_conf == calibrated
    assert result.counts == {**floor.counts, "adult_females": 0} and floor.counts["adult_females"] > 0
    with pytest.raises(DetectorError, match="unknown classes"):
        detector.count(crop, class_conf={"walrus": 0.5})


@pytest.mark.xfail(
    strict=True,
    reason="issue 10 goal not met by v2, v3 nor v4 (all four examples still fail with v4): a greyscale copy moves "
    "adult males/females by up to 2x on the examples, a quality-70 re-encode moves adult females by 4-5 (v2; "
    "docs/training.md, Robustness). Strict: a model that meets "
    "it makes this XPASS and fail, so the marker must then go.",
)
@pytest.mark.parametrize("example", sorted((REPO_ROOT / "examples").glob("*.jpg")), ids=lambda p: p.stem)
def test_counts_do_not_depend_on_how_the_photo_was_saved(shipped, example):
    """A greyscale copy and a quality-70 re-encode count within 10 % (or 2 animals) of the original, per class."""
    import io

    from PIL import Image

    original = shipped.count(example, photo_scale=0.25).counts
    with Image.open(example) as photo:
        grey = photo.convert("L")
        buffer = io.BytesIO()
        photo.save(buffer, format="JPEG", quality=70)
    copies = {"greyscale": shipped.count(grey, photo_scale=0.25).counts}
    copies["jpeg q70"] = shipped.count(buffer.getvalue(), photo_scale=0.25).counts
    for label, counts in copies.items():
        off = {
            n: (original[n], counts[n]) for n in original if abs(counts[n] - original[n]) > max(2, 0.1 * original[n])
        }
        assert not off, f"{example.name} {label}: (original, copy) per class {off}"


def test_a_colour_blind_version_counts_a_photo_and_its_greyscale_copy_alike(shipped, crop):
    from dataclasses import replace

    from PIL import Image

    from detector.versions.hub import ResolvedWeights

    version = replace(shipped.weights.version, greyscale_input=True)
    blind = Detector(ResolvedWeights(shipped.weights.path, shipped.weights.sha256, "local", version), device="cpu")
    grey = np.asarray(Image.fromarray(crop).convert("L"))
    colour_counts = blind.count(crop, photo_scale=shipped.ground_scale)
    assert blind.info.greyscale_input and colour_counts.total > 0
    assert blind.count(grey, photo_scale=shipped.ground_scale).counts == colour_counts.counts
