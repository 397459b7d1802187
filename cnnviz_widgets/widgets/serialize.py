"""Arrays -> the binary payloads the front end decodes (see js/src/decode.ts).

* map stack: meta ``{"shape": [C, H, W], "range_dtype": "float16" | "float32",
  "labels": [str] (optional)}`` with buffers ``[levels (uint8, C*H*W), lo (C), hi (C)]``
  (ranges little-endian float16 or float32); a value is ``lo + (hi - lo) * q / 255``. The
  levels come from :func:`cnnviz_widgets.render.quantize.quantize`, the one quantiser.
* RGB stack: ``{"data": bytes (uint8, N*H*W*3), "shape": [N, H, W, 3]}``.

ipywidgets sends ``bytes`` inside messages and dict traits as binary buffers (never JSON lists
or base64).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..render.quantize import Quantized, RangeDtype, dequantize, quantize

_RANGE_TYPES = {"float16": "<f2", "float32": "<f4"}


def rgb_stack(images: np.ndarray) -> dict[str, Any]:
    """``(N, H, W, 3)`` uint8 images -> the RGB-stack payload."""
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"RGB stacks are (N, H, W, 3) uint8; got {arr.shape} {arr.dtype}.")
    return {"data": np.ascontiguousarray(arr).tobytes(), "shape": [int(s) for s in arr.shape]}


def stack_message(
    maps: np.ndarray | torch.Tensor,
    labels: Sequence[str] | None = None,
    range_dtype: RangeDtype = "float16",
) -> tuple[dict[str, Any], list[bytes]]:
    """``(C, H, W)`` float maps -> (meta, buffers) of a map stack.

    With ``range_dtype="float16"`` the ranges take 2 bytes per map, which keeps a layer of many
    small maps (2048 x 7 x 7) within 1.1 x C*H*W bytes.

    Raises:
        ValueError: maps not 3-D or not finite, or a label count other than C.
    """
    q = quantize(maps, range_dtype)
    c = q.levels.shape[0]
    meta: dict[str, Any] = {"shape": [int(s) for s in q.levels.shape],
                            "range_dtype": q.range_dtype}
    if labels is not None:
        if len(labels) != c:
            raise ValueError(f"{len(labels)} labels for {c} maps.")
        meta["labels"] = [str(label) for label in labels]
    kind = _RANGE_TYPES[q.range_dtype]
    buffers = [
        np.ascontiguousarray(q.levels).tobytes(),
        q.lo.astype(kind).tobytes(),
        q.hi.astype(kind).tobytes(),
    ]
    return meta, buffers


def quantized_from_message(meta: dict[str, Any], buffers: Sequence[bytes]) -> Quantized:
    """The quantised maps a map-stack message carries."""
    c, h, w = meta["shape"]
    range_dtype: RangeDtype = "float16" if meta.get("range_dtype") == "float16" else "float32"
    kind = _RANGE_TYPES[range_dtype]
    return Quantized(
        np.frombuffer(buffers[0], np.uint8).reshape(c, h, w),
        np.frombuffer(buffers[1], kind).astype(np.float32),
        np.frombuffer(buffers[2], kind).astype(np.float32),
        range_dtype,
    )


def decode_stack_message(meta: dict[str, Any], buffers: Sequence[bytes]) -> np.ndarray:
    """The float values a map-stack message stands for (what the front end shows), ``(C, H, W)``."""
    return dequantize(quantized_from_message(meta, buffers))
