"""Complexity: how concentrated a map is.

* :func:`gini_index` (Hurley and Rickard, 2009): the Gini index of non-negative values, 0 for
  a constant map, close to 1 when one pixel holds everything.
* :func:`sparseness` (Chalasani et al., 2020): the Gini index of the map's absolute values
  after dividing by their maximum and adding 1e-7, exactly as Quantus 0.6's ``Sparseness``
  computes it; higher is better (a sparser explanation).
* :func:`complexity` (Bhatt et al., 2020): the entropy of the fractional contributions
  ``|a_p| / sum |a|`` (Quantus's ``Complexity``, natural log); lower is better.

Quantus divides by the maximum over everything in one call (so one image's score depends on
the other images of the batch); here each map is divided by its own maximum, which is what
Quantus gives when called on one image at a time. Batched in torch on the maps' device; each
returns ``(N,)`` float64 numpy values.
"""

from __future__ import annotations

import numpy as np
import torch

from ._common import MapsLike, as_maps


def _flat_abs_by_max(maps: MapsLike) -> torch.Tensor:
    """``(N, P)`` float64 ``|a| / max |a|`` per map (a zero map is left as it is)."""
    a = as_maps(maps).to(torch.float64).flatten(1).abs()
    peak = a.amax(dim=1, keepdim=True)
    return torch.where(peak > 0, a / torch.where(peak > 0, peak, 1.0), a)


def gini_index(values: torch.Tensor) -> torch.Tensor:
    """Gini index of each row of non-negative ``(N, P)`` values.

    ``G = sum_i (2 i - P - 1) v_(i) / (P sum_i v_i)`` with ``v_(1) <= ... <= v_(P)`` sorted.

    Returns:
        ``(N,)`` in [0, 1 - 1/P] (NaN for an all-zero row).
    """
    return _gini_sorted(torch.sort(values, dim=1).values)


def _gini_sorted(v: torch.Tensor) -> torch.Tensor:
    """:func:`gini_index` of rows already sorted increasingly."""
    p = v.shape[1]
    i = torch.arange(1, p + 1, dtype=v.dtype, device=v.device)
    return ((2 * i - p - 1) * v).sum(dim=1) / (p * v.sum(dim=1))


def sparseness(maps: MapsLike) -> np.ndarray:
    """Gini index of ``|a| / max |a| + 1e-7`` per map (Quantus ``Sparseness``).

    Args:
        maps: ``(N, H, W)`` maps.

    Returns:
        ``(N,)`` float64 in [0, 1); higher means more concentrated.
    """
    # sort the float32 |a| (the order of |a| / max + 1e-7), then scale the sorted values in
    # float64: half the work of sorting float64
    a = as_maps(maps).flatten(1).abs()
    ordered = torch.sort(a, dim=1).values.to(torch.float64)
    peak = ordered[:, -1:]
    scaled = torch.where(peak > 0, ordered / torch.where(peak > 0, peak, 1.0), ordered)
    return _gini_sorted(scaled + 1e-7).cpu().numpy()


def complexity(maps: MapsLike) -> np.ndarray:
    """Entropy ``-sum_p q_p log(q_p + 1e-12)`` of ``q = |a| / sum |a|`` (Quantus ``Complexity``).

    Args:
        maps: ``(N, H, W)`` maps.

    Returns:
        ``(N,)`` float64 in [0, log(H W)]; lower means more concentrated. NaN for a zero map.
    """
    a = _flat_abs_by_max(maps)
    q = a / a.sum(dim=1, keepdim=True)
    return (-(q * torch.log(q + 1e-12)).sum(dim=1)).cpu().numpy()
