"""Faithfulness by perturbation: deletion/insertion (RISE) and average drop (Grad-CAM++).

* :func:`perturbation_curve` / :func:`perturbation_auc` (Petsiuk et al., RISE, 2018), one
  curve in two directions: deletion (:func:`deletion_curve` / :func:`deletion_auc`) replaces
  pixels by a baseline in order of decreasing map value, and the softmax probability of the
  target class should fall fast, so a LOWER area is better; insertion
  (:func:`insertion_curve` / :func:`insertion_auc`) is the reverse, starting from the baseline
  (a blurred image by default) and putting the original pixels back in the same order; a
  HIGHER area is better.
* :func:`average_drop` (Chattopadhay et al., Grad-CAM++, 2018): how much the target class's
  probability drops when the model sees only the image multiplied by the map.

ROAD (remove and debias) is in :mod:`.road`. Maps are ``(N, H, W)`` (or ``(N, 1, H, W)``); maps
of another size than the input are resized bilinearly (``align_corners=False``). Everything runs
batched in torch on the model's device, on a borrowed model (eval mode, no gradients), and
returns one value per image as numpy arrays. Targets are class indices (``None``: each image's
predicted class on the unmodified input).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..borrow import borrowed
from ..inputs import prepare_input
from ..targets import OutputSelector
from ._common import (
    Baseline,
    MapsLike,
    class_targets,
    make_baseline,
    maps_for,
    positive_int,
    probabilities,
)

DIRECTIONS: tuple[str, ...] = ("deletion", "insertion")
DEFAULT_BASELINES: dict[str, str] = {"deletion": "zero", "insertion": "blur"}


def perturbation_curve(
    model: nn.Module,
    x: torch.Tensor,
    maps: MapsLike,
    target: int | Sequence[int] | None = None,
    steps: int = 100,
    baseline: Baseline | None = None,
    batch_size: int = 64,
    *,
    direction: str = "deletion",
    output: OutputSelector = None,
) -> np.ndarray:
    """Target-class probability as the most important pixels are deleted or inserted.

    Point ``k`` (``k = 0..steps``) moves the ``floor(k * H * W / steps)`` pixels with the
    highest map values (all channels of a pixel together; ties in raster order, row by row,
    first pixel first): ``direction="deletion"`` replaces them in the image by the baseline,
    ``"insertion"`` puts them from the image onto the baseline.

    Args:
        model: a classifier (left exactly as it was).
        x: ``(N, C, H, W)`` model-ready input.
        maps: ``(N, H, W)`` attribution maps (higher = more important).
        target: ``None`` (predicted class of each clean image), one class index, or one per
            image.
        steps: number of steps; the curve has ``steps + 1`` points.
        baseline: the image pixels move from or to, in the model's input space: ``"zero"`` (0;
            the dataset mean for a mean/std-normalised input), ``"blur"`` (the image blurred
            with RISE's 11 px, sigma 5 Gaussian, reflect padding), ``"mean"`` (each image's
            per-channel mean), a number, or a tensor that broadcasts to ``x``; ``None``:
            ``"zero"`` for deletion, ``"blur"`` for insertion (:data:`DEFAULT_BASELINES`).
        batch_size: images per forward pass.
        direction: ``"deletion"`` or ``"insertion"``.
        output: which part of the model's output holds the logits.

    Returns:
        ``(N, steps + 1)`` float32 softmax probabilities in [0, 1] of the target class, at
        moved fractions ``k / steps``.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
    batch_size = positive_int(batch_size, "batch_size")
    x = prepare_input(model, x)
    n, _, h, w = x.shape
    m = maps_for(maps, x)
    base = make_baseline(x, DEFAULT_BASELINES[direction] if baseline is None else baseline)
    start, end = (base, x) if direction == "insertion" else (x, base)
    # rank[i, p]: position of pixel p in image i's order.
    order = torch.argsort(-m.reshape(n, -1), dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w, device=x.device).expand(n, -1))
    counts = (torch.arange(steps + 1, device=x.device) * (h * w)) // steps
    curve = torch.empty(n, steps + 1, dtype=torch.float32, device=x.device)
    with borrowed(model), torch.no_grad():
        classes = class_targets(model, x, target, output)
        total = n * (steps + 1)
        for first in range(0, total, batch_size):
            flat = torch.arange(first, min(first + batch_size, total), device=x.device)
            image, k = flat // (steps + 1), flat % (steps + 1)
            moved = (rank[image] < counts[k].unsqueeze(1)).view(-1, 1, h, w).to(x.dtype)
            batch = start[image] * (1 - moved) + end[image] * moved
            curve[image, k] = probabilities(model, batch, classes[image], output)
    return curve.cpu().numpy()


def perturbation_auc(
    model: nn.Module, x: torch.Tensor, maps: MapsLike, *args: Any, **kwargs: Any
) -> np.ndarray:
    """Area under :func:`perturbation_curve` called with the same arguments: probability vs
    moved fraction.

    Returns:
        ``(N,)`` float32 in [0, 1]; for deletion lower is better (the map found the evidence
        the model uses), for insertion higher is better.
    """
    return curve_auc(perturbation_curve(model, x, maps, *args, **kwargs))


def curve_auc(curve: np.ndarray) -> np.ndarray:
    """Trapezoidal area under ``(N, K + 1)`` curves sampled at fractions ``0, 1/K, ..., 1``.

    Returns:
        ``(N,)`` float32; for probability curves a value in [0, 1].
    """
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 2 or curve.shape[1] < 2:
        raise ValueError(f"curve must be (N, K + 1) with K >= 1, got shape {curve.shape}.")
    k = curve.shape[1] - 1
    area = (curve.sum(axis=1) - 0.5 * (curve[:, 0] + curve[:, -1])) / k
    return area.astype(np.float32)


Directed = Callable[..., np.ndarray]
"""``f(model, x, maps, target=None, steps=100, baseline=None, batch_size=64, *, output=None)``:
the arguments of :func:`perturbation_curve`, less ``direction``."""

_MOVES = {
    "deletion": 'the highest-map pixels replaced by the baseline (default ``"zero"``); a LOWER '
    "area means the map found the evidence the model uses",
    "insertion": 'the highest-map pixels put back onto the baseline (default ``"blur"``); a '
    "HIGHER area is better",
}

_RETURNS = {
    "curve": "``(N, steps + 1)`` float32 probabilities in [0, 1] at moved fractions ``k / steps``.",
    "auc": "``(N,)`` float32 areas in [0, 1].",
}


def _directed(fn: Callable[..., np.ndarray], direction: str) -> Directed:
    """``fn`` (:func:`perturbation_curve` or :func:`perturbation_auc`) with its direction
    fixed, named ``<direction>_curve`` or ``<direction>_auc``."""
    kind = "curve" if fn is perturbation_curve else "auc"

    def directed(
        model: nn.Module, x: torch.Tensor, maps: MapsLike, *args: Any, **kwargs: Any
    ) -> np.ndarray:
        return fn(model, x, maps, *args, direction=direction, **kwargs)

    directed.__name__ = directed.__qualname__ = f"{direction}_{kind}"
    returns = _RETURNS[kind]
    directed.__doc__ = (
        f"RISE's {direction} {kind}: :func:`{fn.__name__}` with ``direction=\"{direction}\"``, "
        f"{_MOVES[direction]}.\n\n    Returns:\n        {returns}\n    "
    )
    return directed


deletion_curve = _directed(perturbation_curve, "deletion")
insertion_curve = _directed(perturbation_curve, "insertion")
deletion_auc = _directed(perturbation_auc, "deletion")
insertion_auc = _directed(perturbation_auc, "insertion")


# --------------------------------------------------------------------------------------------
# Average drop
# --------------------------------------------------------------------------------------------


def average_drop(
    model: nn.Module,
    x: torch.Tensor,
    maps: MapsLike,
    target: int | Sequence[int] | None = None,
    batch_size: int = 64,
    *,
    output: OutputSelector = None,
) -> np.ndarray:
    """Per-image drop in confidence when the model sees only the map's region (Grad-CAM++).

    ``100 * max(0, Y - O) / Y`` where ``Y`` is the softmax probability of the target class for
    the image and ``O`` for the image multiplied by the map (in the model's input space, all
    channels; for a mean/std-normalised input a masked pixel goes to the dataset mean). The
    paper's "Average Drop %" is the mean of the returned values.

    Args:
        maps: ``(N, H, W)`` in [0, 1] (a CAM); others arguments as in :func:`deletion_curve`.

    Returns:
        ``(N,)`` float32 percentages in [0, 100]; lower is better.

    Raises:
        ValueError: map values outside [0, 1].
    """
    batch_size = positive_int(batch_size, "batch_size")
    x = prepare_input(model, x)
    m = maps_for(maps, x)
    if bool((m < -1e-6).any()) or bool((m > 1 + 1e-6).any()):
        raise ValueError(
            "average_drop multiplies the image by the map, so map values must lie in [0, 1]; "
            f"got [{float(m.min()):.3g}, {float(m.max()):.3g}]. Normalise the maps first "
            "(CAM outputs already are)."
        )
    n = x.shape[0]
    full = torch.empty(n, device=x.device)
    masked = torch.empty(n, device=x.device)
    with borrowed(model), torch.no_grad():
        classes = class_targets(model, x, target, output)
        for start in range(0, n, batch_size):
            part = slice(start, min(start + batch_size, n))
            full[part] = probabilities(model, x[part], classes[part], output)
            explained = x[part] * m[part].unsqueeze(1)
            masked[part] = probabilities(model, explained, classes[part], output)
    drop = torch.clamp(full - masked, min=0) / full * 100
    return drop.to("cpu", torch.float32).numpy()
