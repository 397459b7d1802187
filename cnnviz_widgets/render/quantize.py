"""Float maps -> uint8 levels plus each map's (lo, hi), so the front end can show real values.

A value ``v`` of map ``c`` is stored as ``q = round(255 * (v - lo[c]) / (hi[c] - lo[c]))`` and
read back as ``lo[c] + (hi[c] - lo[c]) * q / 255``: the error is at most ``(hi - lo) / 510``. A
constant map has ``hi == lo`` and all levels 0.

This is the one quantiser of every map the package sends or saves. With
``range_dtype="float16"`` the ranges are rounded outwards to float16 values (``lo`` down, ``hi``
up) *before* the levels are computed, so the ranges travel in 2 bytes per map and the formula
above stays exact to the level; ranges beyond float16 keep float32.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import torch

RangeDtype = Literal["float32", "float16"]
FLOAT16_LIMIT = 6e4
"""Largest magnitude whose ranges are sent as float16 (float16's maximum is 65504)."""


class Quantized(NamedTuple):
    """``levels``: ``(C, H, W)`` uint8; ``lo``, ``hi``: ``(C,)`` float32 value range per map;
    ``range_dtype``: the precision the ranges are exact in (``"float16"`` or ``"float32"``)."""

    levels: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    range_dtype: RangeDtype = "float32"


def as_numpy(maps: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float32 numpy copy-free view of a tensor or array (CPU)."""
    if isinstance(maps, torch.Tensor):
        maps = maps.detach().to("cpu", torch.float32).numpy()
    return np.asarray(maps, dtype=np.float32)


def _float16_bounds(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float16 ``lo`` rounded down and ``hi`` rounded up, so every value lies in [lo16, hi16]."""
    lo16 = lo.astype(np.float16)
    hi16 = hi.astype(np.float16)
    too_high = lo16.astype(np.float32) > lo
    lo16[too_high] = np.nextafter(lo16[too_high], np.float16(-np.inf))
    too_low = hi16.astype(np.float32) < hi
    hi16[too_low] = np.nextafter(hi16[too_low], np.float16(np.inf))
    return lo16.astype(np.float32), hi16.astype(np.float32)


def quantize(maps: np.ndarray | torch.Tensor, range_dtype: RangeDtype = "float32") -> Quantized:
    """Quantise ``(C, H, W)`` float maps to uint8 with per-map ranges.

    Args:
        maps: ``(C, H, W)`` finite floats.
        range_dtype: ``"float16"`` rounds the ranges to float16 values first (see module
            docstring); the result says ``"float32"`` when the values are beyond float16.

    Raises:
        ValueError: ``maps`` is not 3-D, holds NaN/Inf, or ``range_dtype`` is unknown.
    """
    if range_dtype not in ("float32", "float16"):
        raise ValueError(f"range_dtype must be 'float16' or 'float32'; got {range_dtype!r}.")
    arr = as_numpy(maps)
    if arr.ndim != 3:
        raise ValueError(f"quantize takes maps of shape (C, H, W); got {arr.shape}.")
    if arr.size and not np.isfinite(arr).all():
        raise ValueError("The maps contain NaN or Inf values; they cannot be shown.")
    flat = arr.reshape(arr.shape[0], -1)
    if flat.shape[1] == 0:
        zeros = np.zeros(arr.shape[0], np.float32)
        return Quantized(np.zeros(arr.shape, np.uint8), zeros, zeros.copy(), range_dtype)
    lo = flat.min(axis=1)
    hi = flat.max(axis=1)
    if range_dtype == "float16":
        if max(abs(float(lo.min(initial=0))), abs(float(hi.max(initial=0)))) > FLOAT16_LIMIT:
            range_dtype = "float32"
        else:
            lo, hi = _float16_bounds(lo, hi)
    span = hi - lo
    scale = np.divide(255.0, span, out=np.zeros_like(span), where=span > 0)
    levels = np.rint((arr - lo[:, None, None]) * scale[:, None, None])
    levels = np.clip(levels, 0, 255).astype(np.uint8)
    return Quantized(levels, lo.astype(np.float32), hi.astype(np.float32), range_dtype)


def dequantize(q: Quantized) -> np.ndarray:
    """The ``(C, H, W)`` float32 values that ``q`` stands for."""
    span = (q.hi - q.lo)[:, None, None]
    return q.lo[:, None, None] + span * (q.levels.astype(np.float32) / 255.0)
