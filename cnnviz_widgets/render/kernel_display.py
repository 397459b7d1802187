"""Kernels scaled for display: per kernel, per filter or per layer; symmetric around zero.

Kernels are ``(O, I, kh, kw)``: ``O`` filters (output channels), each made of ``I`` 2-D kernels
(one per input channel).

* ``scale="kernel"``: every 2-D kernel uses its own range (shows each kernel's pattern).
* ``scale="filter"``: the ``I`` kernels of one filter share a range (compares input channels).
* ``scale="layer"``: one range for the whole layer (compares filters' strength).

With ``symmetric=True`` the range is ``[-m, m]`` with ``m`` the largest magnitude, so zero lands
on 0.5: the centre (white) of a diverging colormap such as ``bwr``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from .quantize import as_numpy

KernelScale = Literal["kernel", "filter", "layer"]
_REDUCE_AXES = {"kernel": (2, 3), "filter": (1, 2, 3), "layer": (0, 1, 2, 3)}


def scale_kernels(
    k: np.ndarray | torch.Tensor, scale: KernelScale = "kernel", symmetric: bool = True
) -> np.ndarray:
    """``(O, I, kh, kw)`` kernels -> float32 in [0, 1] of the same shape (see module docs)."""
    arr = as_numpy(k)
    if arr.ndim != 4:
        raise ValueError(f"Kernels must have shape (O, I, kh, kw); got {arr.shape}.")
    if scale not in _REDUCE_AXES:
        raise ValueError(f"scale must be one of {list(_REDUCE_AXES)}; got {scale!r}.")
    axes = _REDUCE_AXES[scale]
    if symmetric:
        m = np.abs(arr).max(axis=axes, keepdims=True)
        out = 0.5 + 0.5 * np.divide(arr, m, out=np.zeros_like(arr), where=m > 0)
    else:
        lo = arr.min(axis=axes, keepdims=True)
        span = arr.max(axis=axes, keepdims=True) - lo
        out = np.divide(arr - lo, span, out=np.zeros_like(arr), where=span > 0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def rgb_filters(
    k: np.ndarray | torch.Tensor, scale: KernelScale = "filter", symmetric: bool = False
) -> np.ndarray:
    """First-layer filters ``(O, 3, kh, kw)`` as RGB images ``(O, kh, kw, 3)`` uint8.

    ``scale="filter"`` (default) stretches each filter to the full range so its colour and edge
    preference shows; ``"layer"`` keeps the filters' relative strengths. With ``symmetric=True``
    mid-grey is a zero weight.
    """
    arr = as_numpy(k)
    if arr.ndim != 4 or arr.shape[1] != 3:
        raise ValueError(
            f"RGB filters need kernels of shape (O, 3, kh, kw) (a first layer on RGB input); "
            f"got {arr.shape}."
        )
    if scale == "kernel":
        raise ValueError('RGB filters combine 3 kernels: use scale="filter" or "layer".')
    scaled = scale_kernels(arr, scale=scale, symmetric=symmetric)
    return np.round(scaled.transpose(0, 2, 3, 1) * 255).astype(np.uint8)
