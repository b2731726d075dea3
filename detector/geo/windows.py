"""Overlapping read windows over a raster, each with a *core*: the cores tile the raster without gaps or overlaps.

A detection is kept by the window whose core holds its centre: every raster point lies in exactly one core, and
an animal whose centre is in a core lies wholly inside that window (the core stays half an overlap from the window's
edge), so each animal is counted once, from a window that saw all of it. Pure geometry, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A read window (col, row, width, height in raster pixels) and its core (x1, y1, x2, y2, half-open)."""

    col: int
    row: int
    width: int
    height: int
    core: tuple[float, float, float, float]


def _starts(size: int, window: int, overlap: int) -> list[int]:
    """Window starts along one axis: a step of ``window - overlap``, the last window flush with the far edge."""
    if size <= window:
        return [0]
    step = max(1, window - overlap)
    starts = list(range(0, size - window, step))
    return [*starts, size - window]


def _cores(starts: list[int], window: int, size: int) -> list[tuple[float, float]]:
    """Each window's core along one axis: from the middle of the overlap before it to the middle of the one after."""
    ends = [min(size, start + window) for start in starts]
    cuts = [(ends[i] + starts[i + 1]) / 2 for i in range(len(starts) - 1)]
    lows = [0.0, *cuts]
    highs = [*cuts, float(size)]
    return list(zip(lows, highs, strict=True))


def window_grid(width: int, height: int, window: int, overlap: int) -> list[Window]:
    """The windows covering a ``width`` × ``height`` raster, row by row; ``overlap`` must be below ``window``."""
    if window < 1 or not 0 <= overlap < window:
        raise ValueError(f"need 0 <= overlap < window, got window {window}, overlap {overlap}")
    cols, rows = _starts(width, window, overlap), _starts(height, window, overlap)
    col_cores, row_cores = _cores(cols, window, width), _cores(rows, window, height)
    return [
        Window(col, row, min(window, width - col), min(window, height - row), (cx[0], cy[0], cx[1], cy[1]))
        for row, cy in zip(rows, row_cores, strict=True)
        for col, cx in zip(cols, col_cores, strict=True)
    ]


def centres_in(xyxy: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Which boxes' centres lie in ``box`` (x1, y1, x2, y2; half-open: a centre on the far edge belongs to the next)."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
    x1, y1, x2, y2 = box
    return (cx >= x1) & (cx < x2) & (cy >= y1) & (cy < y2)
