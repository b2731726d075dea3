"""Pure geometry of sliced inference: tile grid, mapping back, merging across seams."""

from __future__ import annotations

import numpy as np
import pytest

from detector.counting.slicing import merge_tile_detections, scale_boxes, shift_boxes, tile_grid, truncated_by_tile


def covered(tiles: np.ndarray, width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in tiles:
        mask[y1:y2, x1:x2] = True
    return mask


@pytest.mark.parametrize(("width", "height"), [(1248, 832), (4992, 3328), (641, 640), (1000, 333), (7, 5000)])
def test_tiles_cover_the_image_and_stay_inside(width, height):
    tiles = tile_grid(width, height, tile_size=640, overlap=0.2)
    assert covered(tiles, width, height).all()
    assert (tiles[:, 0] >= 0).all() and (tiles[:, 1] >= 0).all()
    assert (tiles[:, 2] <= width).all() and (tiles[:, 3] <= height).all()
    sizes = np.stack([tiles[:, 2] - tiles[:, 0], tiles[:, 3] - tiles[:, 1]], axis=1)
    assert (sizes[:, 0] == min(640, width)).all() and (sizes[:, 1] == min(640, height)).all()


def test_tiles_are_evenly_spread_with_at_least_the_requested_overlap():
    tiles = tile_grid(2000, 640, tile_size=640, overlap=0.25)
    xs = sorted(set(tiles[:, 0].tolist()))
    assert xs[0] == 0 and xs[-1] + 640 == 2000  # flush with both edges
    steps = np.diff(xs)
    assert steps.max() <= 480  # 640 * (1 - 0.25): overlap never below the request
    assert steps.max() - steps.min() <= 1  # evenly spread
    assert len(xs) == 4  # the fewest: 3 tiles would need steps of 680 > 480


def test_survey_photo_grid_size():
    assert len(tile_grid(1248, 832, 640, 0.2)) == 6  # 3 columns (0, 304, 608) x 2 rows (0, 192)


def test_image_smaller_than_a_tile_is_one_tile_of_its_own_size():
    assert tile_grid(300, 200, tile_size=640).tolist() == [[0, 0, 300, 200]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0, "height": 10, "tile_size": 64}, "positive"),
        ({"width": 10, "height": 10, "tile_size": 0}, "tile_size"),
        ({"width": 10, "height": 10, "tile_size": 64, "overlap": 1.0}, "overlap"),
    ],
)
def test_bad_grid_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tile_grid(**kwargs)


def test_boxes_map_back_to_image_pixels():
    boxes = np.array([[10, 20, 30, 40]], dtype=np.float32)
    assert shift_boxes(boxes, 512, 256).tolist() == [[522, 276, 542, 296]]
    assert scale_boxes(np.array([[25, 50, 75, 100]]), 0.25).tolist() == [[100, 200, 300, 400]]


def test_truncation_only_counts_inner_tile_edges():
    image = (1000, 1000)
    left_tile = np.array([0, 0, 640, 640])
    boxes = np.array([[0, 10, 20, 30], [620, 10, 640, 30], [100, 100, 120, 120]], dtype=np.float32)
    # Touching the image border (x=0) is not a cut; touching the inner right edge (x=640) is.
    assert truncated_by_tile(boxes, left_tile, image).tolist() == [False, True, False]


def detections_of_one_animal_on_a_seam():
    """An animal spanning x=500..540 seen by two tiles: cut at x=512 in the left tile, whole in the right."""
    image = (1024, 512)
    tiles = tile_grid(*image, tile_size=512, overlap=0.25)  # x ranges 0-512, 384-896, 512-1024
    animal = np.array([500, 100, 540, 130], dtype=np.float32)
    found, tile_ids = [], []
    for index, (x1, y1, x2, y2) in enumerate(tiles):
        seen = np.clip(animal, [x1, y1, x1, y1], [x2, y2, x2, y2])
        if seen[2] - seen[0] > 2:
            found.append(seen)
            tile_ids.append(index)
    xyxy = np.array(found)
    cut = np.concatenate([truncated_by_tile(xyxy[i : i + 1], tiles[t], image) for i, t in enumerate(tile_ids)])
    return animal, xyxy, np.array(tile_ids), cut


def test_an_animal_straddling_a_seam_is_counted_once_with_its_whole_box():
    animal, xyxy, tile_ids, cut = detections_of_one_animal_on_a_seam()
    assert len(xyxy) >= 2 and cut.any()  # really seen twice, once cut
    confidence = np.where(cut, 0.9, 0.6)  # even when the cut copy scores higher, the whole box wins
    keep = merge_tile_detections(xyxy, confidence, np.zeros(len(xyxy), int), tile_ids, cut)
    assert len(keep) == 1
    assert xyxy[keep[0]].tolist() == animal.tolist()


def test_neighbours_in_the_same_tile_are_never_merged():
    # A pup lying against its mother: heavy overlap, but the model saw both in one tile.
    xyxy = np.array([[100, 100, 180, 140], [150, 110, 170, 130]], dtype=np.float32)
    keep = merge_tile_detections(xyxy, np.array([0.9, 0.8]), np.array([2, 4]), np.array([0, 0]))
    assert keep.tolist() == [0, 1]
    same_class = merge_tile_detections(xyxy, np.array([0.9, 0.8]), np.array([2, 2]), np.array([0, 0]))
    assert same_class.tolist() == [0, 1]


def test_different_classes_across_tiles_are_kept():
    xyxy = np.array([[100, 100, 140, 130], [101, 100, 141, 130]], dtype=np.float32)
    keep = merge_tile_detections(xyxy, np.array([0.9, 0.8]), np.array([0, 4]), np.array([0, 1]))
    assert keep.tolist() == [0, 1]


def test_separate_animals_in_an_overlap_zone_stay_separate():
    xyxy = np.array([[400, 100, 430, 120], [440, 100, 470, 120], [400, 100, 430, 120], [440, 100, 470, 120]])
    tile_ids = np.array([0, 0, 1, 1])
    keep = merge_tile_detections(xyxy, np.array([0.9, 0.8, 0.7, 0.95]), np.zeros(4, int), tile_ids)
    assert len(keep) == 2
    assert sorted(xyxy[keep][:, 0].tolist()) == [400, 440]


def test_merge_of_nothing_is_nothing():
    assert merge_tile_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros(0)).tolist() == []
