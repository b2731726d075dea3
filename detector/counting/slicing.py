"""Pure geometry for sliced inference: the tile grid, mapping boxes back, and merging across seams.

No I/O and no model here, so every function is testable with plain arrays.
"""

from __future__ import annotations

import math

import numpy as np

from detector.settings import DEFAULT_OVERLAP


def _axis_starts(length: int, tile: int, step: int) -> list[int]:
    """Evenly spaced tile starts along one side: the fewest tiles whose overlaps are all at least tile - step."""
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / step) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_grid(width: int, height: int, tile_size: int, overlap: float = DEFAULT_OVERLAP) -> np.ndarray:
    """Overlapping tiles covering an image, as an ``(K, 4)`` int array of ``x1, y1, x2, y2``.

    ``overlap`` is the least share of a tile shared with its neighbour (0 <= overlap < 1); tiles are spread
    evenly, so actual overlaps may be a little larger. Tiles are all ``tile_size`` square except along a side
    shorter than a tile, where the tile is the whole side.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if tile_size <= 0:
        raise ValueError(f"tile_size must be positive, got {tile_size}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    step = max(1, int(round(tile_size * (1 - overlap))))
    xs = _axis_starts(width, tile_size, step)
    ys = _axis_starts(height, tile_size, step)
    tiles = [(x, y, min(x + tile_size, width), min(y + tile_size, height)) for y in ys for x in xs]
    return np.array(tiles, dtype=np.int64).reshape(-1, 4)


def photo_tiles(width: int, height: int, tile_size: int, slicing: str, overlap: float) -> np.ndarray:
    """The tiles the model sees of a ``width`` x ``height`` image: a grid when slicing ("auto": when the image is
    larger than a tile), else the whole image as one."""
    sliced = slicing == "on" or (slicing == "auto" and max(width, height) > tile_size)
    return tile_grid(width, height, tile_size, overlap) if sliced else np.array([[0, 0, width, height]])


def shift_boxes(xyxy: np.ndarray, offset_x: float, offset_y: float) -> np.ndarray:
    """Boxes in tile pixels → boxes in image pixels."""
    return np.asarray(xyxy, dtype=np.float32) + np.array([offset_x, offset_y, offset_x, offset_y], dtype=np.float32)


def scale_boxes(xyxy: np.ndarray, factor: float) -> np.ndarray:
    """Boxes found on an image resized by ``factor`` → boxes on the original image."""
    return np.asarray(xyxy, dtype=np.float32) / np.float32(factor)


def truncated_by_tile(
    xyxy: np.ndarray, tile: np.ndarray, image_size: tuple[int, int], margin: float = 2.0
) -> np.ndarray:
    """Which boxes touch an *inner* edge of their tile (an edge that is not the image border).

    Such a box is likely a cut-off part of an animal that lies whole in the neighbouring tile.
    """
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    x1, y1, x2, y2 = (float(v) for v in tile)
    width, height = image_size
    cut = np.zeros(len(xyxy), dtype=bool)
    if x1 > 0:
        cut |= xyxy[:, 0] <= x1 + margin
    if y1 > 0:
        cut |= xyxy[:, 1] <= y1 + margin
    if x2 < width:
        cut |= xyxy[:, 2] >= x2 - margin
    if y2 < height:
        cut |= xyxy[:, 3] >= y2 - margin
    return cut


def _intersection_over_smaller(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    ix1 = np.maximum(box[0], others[:, 0])
    iy1 = np.maximum(box[1], others[:, 1])
    ix2 = np.minimum(box[2], others[:, 2])
    iy2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(np.minimum(area, areas), 1e-6)


def merge_tile_detections(
    xyxy: np.ndarray,
    confidence: np.ndarray,
    class_id: np.ndarray,
    tile_index: np.ndarray,
    truncated: np.ndarray | None = None,
    match_threshold: float = 0.5,
) -> np.ndarray:
    """Indices of the detections to keep after merging duplicates across tile seams.

    Two detections are the same animal when they come from *different* tiles, have the same class and
    their intersection covers at least ``match_threshold`` of the smaller box. Of each group the whole
    (not truncated) box with the highest confidence is kept. Detections from the same tile are never
    merged: the model's own NMS has already decided between them (a pup beside its mother stays).

    Written by hand because library NMS (torchvision, ultralytics) cannot restrict suppression to
    pairs from different tiles, and intersection-over-smaller is what matches a cut box to a whole one.
    """
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    n = len(xyxy)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    confidence = np.asarray(confidence, dtype=np.float32)
    class_id = np.asarray(class_id)
    tile_index = np.asarray(tile_index)
    truncated = np.zeros(n, dtype=bool) if truncated is None else np.asarray(truncated, dtype=bool)
    # Whole boxes first, then by confidence (lexsort: last key is primary).
    order = np.lexsort((-confidence, truncated))
    keep: list[int] = []
    for i in order:
        if keep:
            kept = np.asarray(keep)
            candidates = kept[(class_id[kept] == class_id[i]) & (tile_index[kept] != tile_index[i])]
            if len(candidates) and np.any(_intersection_over_smaller(xyxy[i], xyxy[candidates]) >= match_threshold):
                continue
        keep.append(int(i))
    return np.sort(np.asarray(keep, dtype=np.int64))
