"""Test-time augmentation for ``aug_smooth``, as the reference's ttach pipeline does it.

pytorch-grad-cam 1.5.x smooths with ``ttach.Compose([HorizontalFlip(), Multiply([0.9, 1, 1.1])])``:
six augmentations (no flip / flip) x (x0.9, x1, x1.1) of the model-ready input tensor, each run
through the whole CAM pipeline to a [0, 1] map at the input size, flipped back where it was
flipped, and averaged. The average is not normalised again, so a smoothed map lies in [0, 1]
without necessarily reaching 0 or 1.
"""

from __future__ import annotations

import itertools

import torch

from ..targets import Target

FLIPS = (False, True)
FACTORS = (0.9, 1.0, 1.1)
AUGMENTATIONS: tuple[tuple[bool, float], ...] = tuple(itertools.product(FLIPS, FACTORS))
"""``(flip, factor)`` pairs in ttach's order."""


def augment(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(A*N, C, H, W)``: augmentation ``a`` of sample ``n`` at ``a*N + n``."""
    views = []
    for flip, factor in AUGMENTATIONS:
        view = x.flip(3) if flip else x
        views.append(view * factor if factor != 1.0 else view)
    return torch.cat(views)


def deaugment_mean(maps: torch.Tensor) -> torch.Tensor:
    """``(A*N, H, W)`` maps of :func:`augment`'s batch -> ``(N, H, W)``: un-flip, then average."""
    per_aug = maps.reshape(len(AUGMENTATIONS), -1, *maps.shape[1:])
    restored = [
        m.flip(-1) if flip else m for m, (flip, _) in zip(per_aug, AUGMENTATIONS, strict=True)
    ]
    return torch.stack(restored).mean(dim=0)


def repeat_target(target: Target, n: int) -> Target:
    """A per-sample target sequence repeated for every augmentation (others pass through)."""
    if isinstance(target, torch.Tensor) and target.ndim > 0:
        target = target.tolist()
    if isinstance(target, (list, tuple)):
        return list(target) * len(AUGMENTATIONS)
    return target
