"""Localisation: does the map point at the object? Against boxes or segmentation masks.

* :func:`pointing_game` (Zhang et al., 2016): is the map's maximum inside the object's box?
* :func:`relevance_mass_accuracy` (Arras et al., 2022, CLEVR-XAI): the share of the map's
  total relevance that falls inside the object's mask.
* :func:`relevance_rank_accuracy` (Arras et al., 2022): of the ``K`` highest-ranked pixels,
  ``K`` the object's size in pixels, the share inside the object.
* :func:`top_k_intersection` (Theiner et al., 2021): of the ``k`` highest-ranked pixels, the
  share inside the object (optionally divided by the object's share of the image).

The object is given as ``masks`` ``(N, H, W)`` (a pixel is inside where the mask is non-zero,
so an anti-aliased coverage mask counts every pixel the object touches) or as ``boxes``
``(N, 4)`` ``(x0, y0, x1, y1)`` (:func:`box_masks`). Maps of another size than the masks are
resized bilinearly to the masks' grid. Everything is batched in torch on the maps' device
(CPU for numpy maps) and returns ``(N,)`` numpy values; an empty mask gives NaN.

These equal Quantus 0.6's ``RelevanceMassAccuracy``, ``RelevanceRankAccuracy`` and
``TopKIntersection`` with their defaults (no absolute value; the normalisation by the maximum
they apply changes no ratio and no ranking); ranking ties are broken in raster order (first pixel
first), where Quantus's unstable ``np.argsort`` breaks them arbitrarily.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ._common import MapsLike, as_maps, as_stack

MasksLike = np.ndarray | torch.Tensor


def box_masks(
    boxes: np.ndarray | torch.Tensor, size: tuple[int, int], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``(N, H, W)`` bool masks, True inside each box.

    Args:
        boxes: ``(N, 4)`` integer boxes ``(x0, y0, x1, y1)`` in pixels (column, row), ``x1`` and
            ``y1`` exclusive (what :func:`~cnnviz_widgets.demo.make_shapes` returns).
        size: ``(H, W)`` of the masks.
    """
    b = _boxes(boxes).to(device)
    h, w = size
    rows = torch.arange(h, device=b.device).view(1, h, 1)
    cols = torch.arange(w, device=b.device).view(1, 1, w)
    x0, y0, x1, y1 = (b[:, i].view(-1, 1, 1) for i in range(4))
    return (cols >= x0) & (cols < x1) & (rows >= y0) & (rows < y1)


def object_masks(
    maps: torch.Tensor, masks: MasksLike | None = None, boxes: MasksLike | None = None
) -> torch.Tensor:
    """``(N, H, W)`` bool masks on ``maps``' device from ``masks`` (non-zero = inside) or
    ``boxes`` (in ``maps``' grid); exactly one of the two must be given."""
    if (masks is None) == (boxes is None):
        raise ValueError("Give the object as masks=(N, H, W) or as boxes=(N, 4), one of the two.")
    if masks is not None:
        out = (as_stack(masks, "masks") != 0).to(maps.device)
    else:
        assert boxes is not None
        out = box_masks(boxes, (maps.shape[1], maps.shape[2]), maps.device)
    if out.shape[0] != maps.shape[0]:
        raise ValueError(f"{maps.shape[0]} maps but {out.shape[0]} masks; give one per map.")
    return out


def _boxes(boxes: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(boxes, torch.Tensor):
        b = boxes.detach().cpu()
    else:
        b = torch.as_tensor(np.asarray(boxes))
    return b.to(torch.int64).reshape(-1, 4)


def _maps_and_masks(
    maps: MapsLike, masks: MasksLike | None, boxes: MasksLike | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 ``(N, H*W)`` maps in the masks' grid and bool ``(N, H*W)`` masks."""
    m = as_maps(maps)
    if masks is not None:
        s = object_masks(m, masks=masks)
        if tuple(s.shape[1:]) != tuple(m.shape[1:]):
            m = F.interpolate(m[:, None], size=s.shape[1:], mode="bilinear", align_corners=False)
            m = m[:, 0]
    else:
        s = object_masks(m, boxes=boxes)
    n = m.shape[0]
    return m.reshape(n, -1), s.reshape(n, -1)


def _ranks(flat: torch.Tensor) -> torch.Tensor:
    """Position of each pixel when sorted by decreasing value (ties: raster order), ``(N, P)``."""
    order = torch.argsort(-flat, dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return rank


def pointing_game(
    maps: MapsLike, boxes: np.ndarray | torch.Tensor, tolerance: int = 0
) -> np.ndarray:
    """Whether each map's maximum lies inside the object's box.

    Args:
        maps: ``(N, H, W)`` (or ``(N, 1, H, W)``) maps, in the boxes' pixel grid.
        boxes: ``(N, 4)`` integer boxes ``(x0, y0, x1, y1)`` in pixels (column, row), ``x1``
            and ``y1`` exclusive.
        tolerance: pixels by which each box is grown on every side (the original pointing game
            allows 15 px at 224 px).

    Returns:
        ``(N,)`` bool. The maximum is the first in raster order when several pixels share it;
        a constant map (no maximum) counts as a miss.
    """
    m = as_maps(maps).cpu()
    b = _boxes(boxes)
    if b.shape[0] != m.shape[0]:
        raise ValueError(f"{m.shape[0]} maps but {b.shape[0]} boxes; give one box per map.")
    n, _, w = m.shape
    flat = m.reshape(n, -1)
    peak = flat.argmax(dim=1)
    row, col = peak // w, peak % w
    t = int(tolerance)
    inside = (col >= b[:, 0] - t) & (col < b[:, 2] + t) & (row >= b[:, 1] - t) & (row < b[:, 3] + t)
    constant = flat.max(dim=1).values == flat.min(dim=1).values
    return (inside & ~constant).numpy()


def relevance_mass_accuracy(
    maps: MapsLike, masks: MasksLike | None = None, *, boxes: MasksLike | None = None
) -> np.ndarray:
    """Share of the relevance inside the object: ``sum_{p in S} a_p / sum_p a_p``.

    Args:
        maps: ``(N, H, W)`` maps (signed values are used as they are, as Quantus does).
        masks: ``(N, H, W)`` object masks (non-zero = inside); or give ``boxes``.
        boxes: ``(N, 4)`` boxes ``(x0, y0, x1, y1)`` in the maps' grid.

    Returns:
        ``(N,)`` float64; 1 when all the relevance is on the object (higher is better). NaN for
        an empty mask or a map that sums to 0.
    """
    a, s = _maps_and_masks(maps, masks, boxes)
    a = a.to(torch.float64)
    total = a.sum(dim=1)
    inside = (a * s).sum(dim=1)
    value = torch.where(total != 0, inside / torch.where(total != 0, total, 1.0), torch.nan)
    value[s.sum(dim=1) == 0] = torch.nan
    return value.cpu().numpy()


def relevance_rank_accuracy(
    maps: MapsLike, masks: MasksLike | None = None, *, boxes: MasksLike | None = None
) -> np.ndarray:
    """Of the ``K = |S|`` highest-valued pixels, the share inside the object ``S``.

    Args: as :func:`relevance_mass_accuracy`.

    Returns:
        ``(N,)`` float64 in [0, 1], higher is better; NaN for an empty mask. Ties in the ranking
        are broken in raster order.
    """
    a, s = _maps_and_masks(maps, masks, boxes)
    size = s.sum(dim=1)
    top = _ranks(a) < size.unsqueeze(1)
    value = (top & s).sum(dim=1).to(torch.float64) / size.clamp_min(1)
    value[size == 0] = torch.nan
    return value.cpu().numpy()


def top_k_intersection(
    maps: MapsLike,
    masks: MasksLike | None = None,
    *,
    boxes: MasksLike | None = None,
    k: int = 1000,
    concept_influence: bool = False,
) -> np.ndarray:
    """Of the ``k`` highest-valued pixels, the share inside the object.

    Args:
        maps, masks, boxes: as :func:`relevance_mass_accuracy`.
        k: how many pixels (Quantus's default, 1000, is meant for 224 px images; it must not
            exceed ``H * W``).
        concept_influence: divide by the object's share of the image, ``|S| / (H W)`` (Quantus's
            option of that name).

    Returns:
        ``(N,)`` float64, higher is better; NaN for an empty mask. Ties: raster order.
    """
    a, s = _maps_and_masks(maps, masks, boxes)
    pixels = a.shape[1]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= pixels:
        raise ValueError(f"k must be an int in [1, {pixels}] (the pixels of a map); got {k!r}.")
    top = _ranks(a) < k
    value = (top & s).sum(dim=1).to(torch.float64) / k
    size = s.sum(dim=1)
    if concept_influence:
        value = value * pixels / size.clamp_min(1)
    value[size == 0] = torch.nan
    return value.cpu().numpy()
