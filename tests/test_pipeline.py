"""The sliced count takes its network as a callback: a runtime of this test's own plugs in the way a new one would,
and counts what the detector counts. Also: each runtime class, and thresholds worked out once per count."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest

from detector import Detector
from detector.counting.backends import EXPORT_RUNTIMES, TorchRuntime
from detector.counting.detections import Detections
from detector.counting.pipeline import SlicedCount
from detector.errors import DetectorError
from detector.settings import CountOptions, ModelSettings
from detector.versions.runtimes import FORMATS
from tests.helpers import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "noaa_train_6.jpg"


class RecordedRuntime:
    """A runtime that plays back detections recorded per tile (by its pixels) at one confidence and IoU: what a
    new runtime has to provide to the sliced count, and nothing more."""

    name = "recorded"
    device = "cpu"

    def __init__(self, recorded: dict[str, Detections], conf: float, iou: float, imgsz: int) -> None:
        self.recorded, self.conf, self.iou, self.imgsz = recorded, conf, iou, imgsz
        self.calls = 0

    @staticmethod
    def key(tile: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(tile).tobytes()).hexdigest()

    def predict(self, bgr_tiles: Sequence[np.ndarray], conf: float, iou: float) -> list[Detections]:
        if (conf, iou) != (self.conf, self.iou):
            raise DetectorError(f"recorded at conf {self.conf} and IoU {self.iou}, asked for {conf} and {iou}")
        self.calls += 1
        return [self.recorded[self.key(tile)] for tile in bgr_tiles]

    def describe(self) -> str:
        return f"{self.name} on {self.device} ({len(self.recorded)} tiles)"


@pytest.fixture(scope="module")
def torch_detector() -> Detector:
    return Detector.load(ModelSettings(device="cpu", runtime="torch"))


def test_a_runtime_of_our_own_plugs_into_the_pipeline_and_counts_as_the_detector(torch_detector):
    """Record the torch runtime's detections for one photo's tiles, play them back through a fresh pipeline: the
    count (boxes, classes, confidences, thresholds) is the detector's own."""
    options = CountOptions(photo_scale=0.25, batch_size=5)
    pipeline = torch_detector.pipeline
    prepared = pipeline.prepare(EXAMPLE, options)
    grid = pipeline.tiles(prepared.work.shape[1], prepared.work.shape[0], prepared.tile_size, options)
    bgr = np.ascontiguousarray(prepared.work[:, :, ::-1])
    tiles = [bgr[y1:y2, x1:x2] for x1, y1, x2, y2 in grid]
    floor = float(pipeline.thresholds(options).full_pass.min())
    found = torch_detector.network.predict(tiles, floor, options.iou)
    recorded = RecordedRuntime(
        {RecordedRuntime.key(tile): hits for tile, hits in zip(tiles, found, strict=True)},
        floor, options.iou, torch_detector.imgsz,
    )  # fmt: skip

    played = SlicedCount(recorded.predict, torch_detector.info, recorded.device)
    (result,) = played.stream([prepared], options)
    expected = torch_detector.count(EXAMPLE, options)
    assert expected.total > 20 and result.counts == expected.counts
    np.testing.assert_array_equal(result.xyxy, expected.xyxy)
    np.testing.assert_array_equal(result.confidence, expected.confidence)
    assert result.conf == expected.conf and result.device == "cpu"
    assert recorded.calls == -(-len(grid) // options.batch_size)  # the pipeline's batches, across the tiles
    with pytest.raises(DetectorError, match="recorded at conf"):  # another threshold is another network call
        list(played.stream([prepared], options.changed(conf=0.5, gate=False)))


def test_each_runtime_is_one_class_that_describes_itself(torch_detector):
    assert set(EXPORT_RUNTIMES) == set(FORMATS)  # every export format the names allow has its class
    assert isinstance(torch_detector.network, TorchRuntime) and not torch_detector.exported
    assert torch_detector.network.describe() == f"torch on cpu (fp32, {torch_detector.imgsz} px)"


def test_thresholds_are_worked_out_once_and_the_gate_keeps_its_own(torch_detector):
    """With the gate, the coarse pass and growing use the gate's confidence (never stricter than the count's); the
    count keeps the user's thresholds from start to end."""
    pipeline = torch_detector.pipeline
    calibrated = pipeline.thresholds(CountOptions(gate=True))
    assert calibrated.count.tolist() == [torch_detector.info.class_conf[n] for n in torch_detector.class_names]
    assert calibrated.gate == min(pipeline.gate_settings.conf, min(calibrated.count))
    assert calibrated.full_pass.tolist() == [calibrated.gate] * len(calibrated.count)
    strict_user = pipeline.thresholds(CountOptions(conf=0.5, gate=True))
    assert strict_user.count.tolist() == [0.5] * 5 and strict_user.gate == pipeline.gate_settings.conf
    assert pipeline.thresholds(CountOptions(conf=0.005, gate=True)).gate == 0.005  # a looser count gates looser
    ungated = pipeline.thresholds(CountOptions(conf=0.5, gate=False))
    assert ungated.gate is None and ungated.full_pass is ungated.count
    assert torch_detector.thresholds(CountOptions(conf=0.5)) == dict.fromkeys(torch_detector.class_names, 0.5)
    with pytest.raises(DetectorError, match="unknown classes"):
        pipeline.thresholds(CountOptions(class_conf={"walrus": 0.3}))
