"""Float maps -> uint8 levels plus each map's (lo, hi), so the front end can show real values.

A value ``v`` of map ``c`` is stored as ``q = round(255 * (v - lo[c]) / (hi[c] - lo[c]))`` and
read back as ``lo[c] + (hi[c] - lo[c]) * q / 255``: the error is at most ``(hi - lo) / 510``. A
constant map has ``hi == lo`` and all levels 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Quantized(NamedTuple):
    """``levels``: ``(C, H, W)`` uint8; ``lo``, ``hi``: ``(C,)`` float32 value range per map."""

    levels: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def as_numpy(maps: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float32 numpy copy-free view of a tensor or array (CPU)."""
    if isinstance(maps, torch.Tensor):
        maps = maps.detach().to("cpu", torch.float32).numpy()
    return np.asarray(maps, dtype=np.float32)


def quantize(maps: np.ndarray | torch.Tensor) -> Quantized:
    """Quantise ``(C, H, W)`` float maps to uint8 with per-map ranges.

    Raises:
        ValueError: ``maps`` is not 3-D, or holds NaN/Inf.
    """
    arr = as_numpy(maps)
    if arr.ndim != 3:
        raise ValueError(f"quantize takes maps of shape (C, H, W); got {arr.shape}.")
    if arr.size and not np.isfinite(arr).all():
        raise ValueError("The maps contain NaN or Inf values; they cannot be shown.")
    flat = arr.reshape(arr.shape[0], -1)
    if flat.shape[1] == 0:
        zeros = np.zeros(arr.shape[0], np.float32)
        return Quantized(np.zeros(arr.shape, np.uint8), zeros, zeros.copy())
    lo = flat.min(axis=1)
    hi = flat.max(axis=1)
    span = hi - lo
    scale = np.divide(255.0, span, out=np.zeros_like(span), where=span > 0)
    levels = np.rint((arr - lo[:, None, None]) * scale[:, None, None])
    levels = np.clip(levels, 0, 255).astype(np.uint8)
    return Quantized(levels, lo.astype(np.float32), hi.astype(np.float32))


def dequantize(q: Quantized) -> np.ndarray:
    """The ``(C, H, W)`` float32 values that ``q`` stands for."""
    span = (q.hi - q.lo)[:, None, None]
    return q.lo[:, None, None] + span * (q.levels.astype(np.float32) / 255.0)
