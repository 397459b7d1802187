"""Arrays -> the binary payloads the front end decodes (see js/src/decode.ts).

* map stack: ``{"data": bytes (uint8, C*H*W), "shape": [C, H, W], "lo": bytes (float32 LE, C),
  "hi": bytes (float32 LE, C), "labels": [str] (optional)}``; a value is
  ``lo + (hi - lo) * q / 255``.
* RGB stack: ``{"data": bytes (uint8, N*H*W*3), "shape": [N, H, W, 3]}``.

ipywidgets sends ``bytes`` inside dicts as binary buffers (never JSON lists or base64).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..render.quantize import quantize


def map_stack(
    maps: np.ndarray | torch.Tensor, labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """``(C, H, W)`` float maps -> the map-stack payload (uint8 levels + per-map lo/hi)."""
    q = quantize(maps)
    payload: dict[str, Any] = {
        "data": np.ascontiguousarray(q.levels).tobytes(),
        "shape": [int(s) for s in q.levels.shape],
        "lo": q.lo.astype("<f4").tobytes(),
        "hi": q.hi.astype("<f4").tobytes(),
    }
    if labels is not None:
        if len(labels) != q.levels.shape[0]:
            raise ValueError(f"{len(labels)} labels for {q.levels.shape[0]} maps.")
        payload["labels"] = [str(label) for label in labels]
    return payload


def rgb_stack(images: np.ndarray) -> dict[str, Any]:
    """``(N, H, W, 3)`` uint8 images -> the RGB-stack payload."""
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"RGB stacks are (N, H, W, 3) uint8; got {arr.shape} {arr.dtype}.")
    return {"data": np.ascontiguousarray(arr).tobytes(), "shape": [int(s) for s in arr.shape]}


def _float16_bounds(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float16 ``lo`` rounded down and ``hi`` rounded up, so every value lies in [lo16, hi16]."""
    lo16 = lo.astype(np.float16)
    hi16 = hi.astype(np.float16)
    too_high = lo16.astype(np.float32) > lo
    lo16[too_high] = np.nextafter(lo16[too_high], np.float16(-np.inf))
    too_low = hi16.astype(np.float32) < hi
    hi16[too_low] = np.nextafter(hi16[too_low], np.float16(np.inf))
    return lo16, hi16


def stack_message(
    maps: np.ndarray | torch.Tensor,
    labels: Sequence[str] | None = None,
    range_dtype: str = "float16",
) -> tuple[dict[str, Any], list[bytes]]:
    """``(C, H, W)`` float maps -> (meta, buffers) of a map stack for a custom message.

    ``buffers`` are ``[levels (uint8, C*H*W), lo, hi]``; with ``range_dtype="float16"`` the
    ranges take 2 bytes per map (lo rounded down, hi rounded up to float16, and the levels are
    quantised against those rounded ranges, so ``lo + (hi - lo) * q / 255`` stays exact to the
    level), which keeps a layer of many small maps (2048 x 7 x 7) within 1.1 x C*H*W bytes.

    Raises:
        ValueError: maps not 3-D or not finite, values beyond float16's range with
            ``range_dtype="float16"``, or a label count other than C.
    """
    arr = np.asarray(maps.detach().cpu() if isinstance(maps, torch.Tensor) else maps, np.float32)
    if arr.ndim != 3:
        raise ValueError(f"map stacks are (C, H, W); got {arr.shape}.")
    if arr.size and not np.isfinite(arr).all():
        raise ValueError("The maps contain NaN or Inf values; they cannot be shown.")
    c = arr.shape[0]
    flat = arr.reshape(c, -1)
    if flat.shape[1] == 0:
        lo = hi = np.zeros(c, np.float32)
    else:
        lo, hi = flat.min(axis=1), flat.max(axis=1)
    if range_dtype == "float16":
        if flat.size and max(abs(float(lo.min(initial=0))), abs(float(hi.max(initial=0)))) > 6e4:
            range_dtype = "float32"  # beyond float16: keep exact float32 ranges
        else:
            lo16, hi16 = _float16_bounds(lo, hi)
            lo, hi = lo16.astype(np.float32), hi16.astype(np.float32)
    elif range_dtype != "float32":
        raise ValueError(f"range_dtype must be 'float16' or 'float32'; got {range_dtype!r}.")
    span = hi - lo
    scale = np.divide(255.0, span, out=np.zeros_like(span), where=span > 0)
    levels = np.rint((arr - lo[:, None, None]) * scale[:, None, None])
    levels = np.clip(levels, 0, 255).astype(np.uint8)
    range_type = "<f2" if range_dtype == "float16" else "<f4"
    meta: dict[str, Any] = {"shape": [int(s) for s in arr.shape], "range_dtype": range_dtype}
    if labels is not None:
        if len(labels) != c:
            raise ValueError(f"{len(labels)} labels for {c} maps.")
        meta["labels"] = [str(label) for label in labels]
    buffers = [
        np.ascontiguousarray(levels).tobytes(),
        lo.astype(range_type).tobytes(),
        hi.astype(range_type).tobytes(),
    ]
    return meta, buffers


def decode_stack_message(meta: dict[str, Any], buffers: Sequence[bytes]) -> np.ndarray:
    """The float values a map-stack message stands for (what the front end shows), ``(C, H, W)``."""
    c, h, w = meta["shape"]
    dtype = "<f2" if meta.get("range_dtype") == "float16" else "<f4"
    levels = np.frombuffer(buffers[0], np.uint8).reshape(c, h, w).astype(np.float32)
    lo = np.frombuffer(buffers[1], dtype).astype(np.float32)
    hi = np.frombuffer(buffers[2], dtype).astype(np.float32)
    return lo[:, None, None] + (hi - lo)[:, None, None] * levels / 255.0
