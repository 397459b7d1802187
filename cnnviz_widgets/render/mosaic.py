"""Many small images laid out as one grid image (fast to draw, one imshow for all tiles)."""

from __future__ import annotations

import math

import numpy as np


def grid_shape(n: int, ncols: int | None = None, aspect: float = 1.0) -> tuple[int, int]:
    """``(rows, cols)`` for ``n`` tiles: ``ncols`` if given, else a near-square grid.

    ``aspect`` is the wanted width/height ratio of the whole grid for square tiles.
    """
    if n <= 0:
        return 0, 0
    cols = ncols if ncols else max(1, math.ceil(math.sqrt(n * aspect)))
    cols = min(cols, n)
    return math.ceil(n / cols), cols


def mosaic(
    tiles: np.ndarray, ncols: int | None = None, gap: int = 1, fill: float = np.nan
) -> np.ndarray:
    """Lay out ``(N, h, w)`` or ``(N, h, w, 3)`` tiles row by row into one array.

    Gaps and unused cells take ``fill`` (NaN by default, drawn as the colormap's "bad" colour;
    give an integer fill for uint8 RGB tiles).

    Returns:
        ``(rows*h + (rows-1)*gap, cols*w + (cols-1)*gap[, 3])`` array of ``tiles.dtype`` (float
        when ``fill`` is NaN).
    """
    tiles = np.asarray(tiles)
    if tiles.ndim not in (3, 4):
        raise ValueError(f"tiles must be (N, h, w) or (N, h, w, 3); got {tiles.shape}.")
    n, h, w = tiles.shape[:3]
    rows, cols = grid_shape(n, ncols)
    extra = tiles.shape[3:]
    dtype = np.result_type(tiles.dtype, np.asarray(fill).dtype)
    out = np.full(
        (rows * h + max(rows - 1, 0) * gap, cols * w + max(cols - 1, 0) * gap, *extra),
        fill,
        dtype=dtype,
    )
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = r * (h + gap), c * (w + gap)
        out[y : y + h, x : x + w] = tiles[i]
    return out
