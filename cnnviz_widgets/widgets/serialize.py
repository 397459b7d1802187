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
