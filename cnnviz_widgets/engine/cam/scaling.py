"""Per-map min-max normalisation and bilinear resizing, as pytorch-grad-cam does them.

pytorch-grad-cam (``utils/image.py::scale_cam_image``) scales every map by
``m = m - min(m); m = m / (1e-7 + max(m))`` and then resizes it with ``cv2.resize`` (bilinear,
half-pixel centres). ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
antialias=False)`` computes the same resize (agreement to float32 rounding, about 1e-7).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-7
"""The reference's denominator offset in the min-max normalisation."""


def minmax(maps: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Scale each map to [0, 1]: ``(m - min) / (eps + max(m - min))``.

    Args:
        maps: ``(M, ...)`` float tensor; every leading index is one map.
        eps: offset in the denominator (the reference's 1e-7), so a constant map becomes 0.

    Returns:
        Tensor of the same shape; each map lies in ``[0, 1)`` (exactly 1 is never reached
        because of ``eps``; a map with range ``r`` peaks at ``r / (r + eps)``).
    """
    if maps.shape[0] == 0:
        return maps
    view = (-1,) + (1,) * (maps.ndim - 1)
    shifted = maps - maps.flatten(1).amin(dim=1).view(view)
    return shifted / (eps + shifted.flatten(1).amax(dim=1).view(view))


def resize(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(M, h, w)`` maps to ``(M, H, W)`` with ``size = (H, W)``.

    Half-pixel centres (``align_corners=False``) and no antialiasing, as ``cv2.resize`` with
    ``INTER_LINEAR``; the maps are returned unchanged when they already have that size.
    """
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(
        maps[:, None], size=tuple(size), mode="bilinear", align_corners=False, antialias=False
    )[:, 0]


def scale_maps(maps: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Min-max normalise each ``(h, w)`` map, then resize it to ``size = (H, W)`` if given.

    The reference's ``scale_cam_image`` (normalise first, resize second).
    """
    scaled = minmax(maps)
    return scaled if size is None else resize(scaled, size)


def finish(raw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The reference's last steps for one target layer: ``(N, h, w)`` -> ``(N, H, W)`` in [0, 1].

    ``minmax -> resize -> minmax``: ``compute_cam_per_layer`` scales and resizes each layer's
    map, then ``aggregate_multi_layers`` min-max normalises the (one-layer) mean again.
    ``raw`` must already be rectified where the method rectifies.
    """
    return minmax(scale_maps(raw, size))


def aggregate(scaled: list[torch.Tensor]) -> torch.Tensor:
    """Several layers' :func:`scale_maps` results, each ``(N, H, W)``, -> one ``(N, H, W)`` map.

    The reference's ``aggregate_multi_layers`` for a list of target layers: rectify, mean over
    layers, min-max normalise.
    """
    return minmax(torch.stack(scaled, dim=1).clamp_min(0).mean(dim=1))
