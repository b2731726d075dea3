"""CountResult: validation, counts with zeros, JSON and CSV round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detector.counting.results import CountResult, ModelInfo
from tests.helpers import SEA_LION_CLASSES


def make_result(class_ids=(2, 2, 4), **kwargs) -> CountResult:
    n = len(class_ids)
    return CountResult(
        xyxy=np.arange(n * 4, dtype=np.float32).reshape(n, 4),
        class_id=np.array(class_ids),
        confidence=np.linspace(0.5, 0.9, n),
        class_names=SEA_LION_CLASSES,
        image_size=(1248, 832),
        model=ModelInfo(version="v1", sha256="ab" * 32, source="shipped", path="weights/x.pt", commit="c" * 40),
        timings_ms={"total": 12.5},
        source="photo.jpg",
        **kwargs,
    )


def test_counts_list_every_class_in_order_with_zeros():
    result = make_result()
    assert list(result.counts) == SEA_LION_CLASSES
    assert result.counts == {"adult_males": 0, "subadult_males": 0, "adult_females": 2, "juveniles": 0, "pups": 1}
    assert result.total == 3


def test_empty_result_still_has_all_classes():
    empty = CountResult.empty(SEA_LION_CLASSES, (10, 10))
    assert empty.counts == dict.fromkeys(SEA_LION_CLASSES, 0) and empty.total == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"class_id": np.array([0, 1])}, "same length"),
        ({"class_id": np.array([0, 1, 5])}, "out of range"),
        ({"class_names": ()}, "class_names"),
        ({"image_size": (0, 10)}, "positive"),
    ],
)
def test_inconsistent_columns_are_refused(changes, message):
    fields = {
        "xyxy": np.zeros((3, 4)),
        "class_id": np.array([0, 1, 2]),
        "confidence": np.ones(3),
        "class_names": SEA_LION_CLASSES,
        "image_size": (10, 10),
    }
    with pytest.raises(ValueError, match=message):
        CountResult(**{**fields, **changes})


def test_json_round_trip_keeps_boxes_counts_and_model():
    result = make_result()
    data = json.loads(result.to_json())
    assert data["counts"]["adult_females"] == 2 and data["total"] == 3
    assert data["model"]["version"] == "v1" and data["model"]["commit"] == "c" * 40
    assert data["detections"][2]["class_name"] == "pups"
    again = CountResult.from_dict(data)
    assert again.counts == result.counts
    np.testing.assert_allclose(again.xyxy, result.xyxy)
    assert again.model == result.model


def test_csv_row_lines_up_with_header():
    result = make_result()
    header = CountResult.csv_header(result.class_names)
    row = dict(zip(header, result.csv_row(), strict=True))
    assert row["file"] == "photo.jpg" and row["adult_females"] == 2 and row["pups"] == 1 and row["total"] == 3
    assert row["model_version"] == "v1" and row["width"] == 1248
