"""Detector end to end with a real (untrained) YOLOv5n: inputs, tiling, batching, devices, hub loading."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from detector import Detector
from detector.arguments import option_message
from detector.classes import SEA_LION_CLASSES
from detector.counting.backends import select_device
from detector.counting.slicing import tile_grid
from detector.errors import DetectorError
from detector.settings import ModelSettings
from detector.versions.hub import resolve_weights
from detector.versions.manifest import load_manifest


@pytest.fixture(scope="module")
def detector(tiny_models) -> Detector:
    return Detector.load(ModelSettings(weights=tiny_models["v1"], device="cpu"))


NATIVE = 1.0  # count the random photos as they are (auto would take 1248x832 for a 4x copy and enlarge it)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 255, (832, 1248, 3), dtype=np.uint8)


def test_loaded_model_describes_itself(detector, tiny_models):
    assert detector.class_names == tuple(SEA_LION_CLASSES)
    assert detector.device == "cpu"
    assert detector.info.source == "local" and detector.info.path == str(tiny_models["v1"])
    assert torch.get_num_threads() == os.cpu_count()  # ultralytics' cap on CPU threads is undone
    assert detector.imgsz == 320  # an unlisted file's input size is the one its checkpoint was trained at


def test_large_photo_is_tiled_and_counts_every_class(detector, photo):
    result = detector.count(photo, conf=0.01, tile_size=640, overlap=0.2, photo_scale=NATIVE)
    assert result.image_size == (1248, 832)
    assert result.tiles == len(tile_grid(1248, 832, 640, 0.2)) == 6
    assert list(result.counts) == list(SEA_LION_CLASSES)
    assert sum(result.counts.values()) == result.total
    assert {"preprocess", "inference", "merge", "total"} <= set(result.timings_ms)
    if result.total:
        assert (result.xyxy[:, [0, 2]] <= 1248).all() and (result.xyxy[:, [1, 3]] <= 832).all()
        assert (result.xyxy >= 0).all()


def test_slicing_off_runs_the_whole_photo_once(detector, photo):
    assert detector.count(photo, slicing="off", photo_scale=NATIVE).tiles == 1
    assert detector.count(photo[:300, :300], slicing="auto", photo_scale=NATIVE).tiles == 1  # smaller than a tile
    assert detector.count(photo[:300, :400], slicing="auto", photo_scale=NATIVE).tiles == 2  # wider than 320


def test_batches_give_the_same_detections_as_one_tile_at_a_time(detector, photo):
    batched = detector.count(photo, conf=0.001, batch_size=16, photo_scale=NATIVE)
    single = detector.count(photo, conf=0.001, batch_size=1, photo_scale=NATIVE)
    assert batched.total == single.total > 0
    np.testing.assert_allclose(np.sort(batched.xyxy, axis=0), np.sort(single.xyxy, axis=0), atol=0.5)


def test_photo_scale_resizes_to_the_model_scale_but_boxes_stay_in_photo_pixels(detector, photo):
    half = detector.count(photo, conf=0.001, photo_scale=0.5)  # model scale 1.0: photo is enlarged 2x
    assert half.tiles == len(tile_grid(2496, 1664, detector.imgsz, 0.2))
    assert half.image_size == (1248, 832)
    assert half.total > 0 and (half.xyxy[:, 2] <= 1248).all() and (half.xyxy[:, 3] <= 832).all()


def test_exif_rotated_jpeg_is_counted_upright(detector, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "portrait.jpg"
    Image.new("RGB", (300, 200), (90, 90, 90)).save(path, exif=exif)
    result = detector.count(path, photo_scale=NATIVE)
    assert result.image_size == (200, 300) and result.source == "portrait.jpg"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"conf": 1.5}, "conf must be between 0 and 1"),
        ({"iou": -0.1}, "iou must be between 0 and 1"),
        ({"overlap": 1.0}, "overlap"),
        ({"tile_size": 8}, "tile_size"),
        ({"slicing": "sometimes"}, "slicing"),
        ({"photo_scale": 0}, "photo_scale"),
        ({"photo_scale": 0.01}, "at least 0.0625"),  # 0.8 px adult females: would enlarge the photo 100x
    ],
)
def test_bad_options_are_refused(detector, photo, options, message):
    with pytest.raises(DetectorError, match=message):
        detector.count(photo, **options)


def test_device_selection():
    assert select_device("auto") in {"cpu", "cuda:0", "mps"}
    assert select_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(DetectorError, match="CUDA is not available"):
            select_device("cuda")
    with pytest.raises(DetectorError, match="Unknown device") as refused:
        select_device("tpu")
    # the library names the setting; the command line, its option (detector.arguments.option_message)
    assert "use device=auto, cpu" in str(refused.value) and "--" not in str(refused.value)
    assert "use --device auto, cpu" in option_message(refused.value)


def test_load_a_pinned_version_from_the_hub_and_count(hub_env, tmp_path, photo):
    manifest = load_manifest(hub_env.manifest(tmp_path / "manifest.yaml"))
    loaded = Detector(resolve_weights(hub_env.settings("v2"), manifest=manifest), device="cpu")
    assert loaded.info.version == "v2" and loaded.info.source == "hub"
    assert loaded.info.commit == hub_env.tags["v2"] and loaded.info.sha256 == hub_env.sha256["v2"]
    result = loaded.count(photo[:320, :320], photo_scale=NATIVE)
    assert result.model.commit == hub_env.tags["v2"]


def test_class_names_that_disagree_with_the_manifest_are_refused(hub_env, tmp_path):
    path = hub_env.manifest(tmp_path / "manifest.yaml")
    path.write_text(path.read_text().replace("- pups", "- seals"))
    with pytest.raises(DetectorError, match="have classes .* but version v1 lists"):
        Detector(resolve_weights(hub_env.settings("v1"), manifest=load_manifest(path)), device="cpu", warmup=False)
