"""How faithful an attribution map is to the model: deletion/insertion, pointing game, drop.

* :func:`deletion_curve` / :func:`deletion_auc` (Petsiuk et al., RISE, 2018): pixels are
  replaced by a baseline in order of decreasing map value; the softmax probability of the target
  class should fall fast, so a LOWER area is better.
* :func:`insertion_curve` / :func:`insertion_auc`: the reverse, starting from the baseline
  (a blurred image by default) and putting the original pixels back in the same order; a HIGHER
  area is better.
* :func:`pointing_game` (Zhang et al., 2016): is the map's maximum inside the object's box?
* :func:`average_drop` (Chattopadhay et al., Grad-CAM++, 2018): how much the target class's
  probability drops when the model sees only the image multiplied by the map.

Maps are ``(N, H, W)`` (or ``(N, 1, H, W)``); maps of another size than the input are resized
bilinearly (``align_corners=False``). Everything runs batched in torch on the model's device, on
a borrowed model (eval mode, no gradients), and returns one value per image as numpy arrays.
Targets are class indices (``None``: each image's predicted class on the unmodified input).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .borrow import borrowed
from .inputs import prepare_input
from .targets import OutputSelector, TargetError, resolve_targets, select_output

Baseline = str | float | torch.Tensor
MapsLike = np.ndarray | torch.Tensor

BASELINES: tuple[str, ...] = ("zero", "blur", "mean")
BLUR_KERNEL, BLUR_SIGMA = 11, 5.0  # RISE's blur for insertion: 11 px Gaussian, sigma 5 px


# --------------------------------------------------------------------------------------------
# Deletion / insertion
# --------------------------------------------------------------------------------------------


def deletion_curve(
    model: nn.Module,
    x: torch.Tensor,
    maps: MapsLike,
    target: int | Sequence[int] | None = None,
    steps: int = 100,
    baseline: Baseline = "zero",
    batch_size: int = 64,
    *,
    output: OutputSelector = None,
) -> np.ndarray:
    """Target-class probability as the most important pixels are deleted.

    Point ``k`` (``k = 0..steps``) replaces the ``floor(k * H * W / steps)`` pixels with the
    highest map values (all channels of a pixel together) by the baseline; ties keep raster
    order (row by row, first pixel first).

    Args:
        model: a classifier (left exactly as it was).
        x: ``(N, C, H, W)`` model-ready input.
        maps: ``(N, H, W)`` attribution maps (higher = more important).
        target: ``None`` (predicted class of each clean image), one class index, or one per
            image.
        steps: number of deletion steps; the curve has ``steps + 1`` points.
        baseline: what deleted pixels become, in the model's input space: ``"zero"`` (0; the
            dataset mean for a mean/std-normalised input), ``"blur"`` (the image blurred with
            RISE's 11 px, sigma 5 Gaussian, reflect padding), ``"mean"`` (each image's
            per-channel mean), a number, or a tensor that broadcasts to ``x``.
        batch_size: images per forward pass.
        output: which part of the model's output holds the logits.

    Returns:
        ``(N, steps + 1)`` float32 softmax probabilities in [0, 1] of the target class, at
        deleted fractions ``k / steps``.
    """
    return _perturbation_curve(
        model, x, maps, target, steps, baseline, batch_size, output, insert=False
    )


def insertion_curve(
    model: nn.Module,
    x: torch.Tensor,
    maps: MapsLike,
    target: int | Sequence[int] | None = None,
    steps: int = 100,
    baseline: Baseline = "blur",
    batch_size: int = 64,
    *,
    output: OutputSelector = None,
) -> np.ndarray:
    """Target-class probability as the most important pixels are put back onto a baseline.

    Point ``k`` shows the baseline with the ``floor(k * H * W / steps)`` highest-map pixels
    taken from the image; arguments as in :func:`deletion_curve` (default baseline: blur).

    Returns:
        ``(N, steps + 1)`` float32 probabilities at inserted fractions ``k / steps``.
    """
    return _perturbation_curve(
        model, x, maps, target, steps, baseline, batch_size, output, insert=True
    )


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


def deletion_auc(
    model: nn.Module,
    x: torch.Tensor,
    maps: MapsLike,
    target: int | Sequence[int] | None = None,
    steps: int = 100,
    baseline: Baseline = "zero",
    batch_size: int = 64,
    *,
    output: OutputSelector = None,
) -> np.ndarray:
    """Area under :func:`deletion_curve`: probability vs fraction of pixels deleted.

    Returns:
        ``(N,)`` float32 in [0, 1]; lower means the map found the evidence the model uses.
    """
    return curve_auc(
        deletion_curve(model, x, maps, target, steps, baseline, batch_size, output=output)
    )


def insertion_auc(
    model: nn.Module,
    x: torch.Tensor,
    maps: MapsLike,
    target: int | Sequence[int] | None = None,
    steps: int = 100,
    baseline: Baseline = "blur",
    batch_size: int = 64,
    *,
    output: OutputSelector = None,
) -> np.ndarray:
    """Area under :func:`insertion_curve`: probability vs fraction of pixels inserted.

    Returns:
        ``(N,)`` float32 in [0, 1]; higher is better.
    """
    return curve_auc(
        insertion_curve(model, x, maps, target, steps, baseline, batch_size, output=output)
    )


def _perturbation_curve(
    model: nn.Module,
    x: torch.Tensor,
    maps: MapsLike,
    target: int | Sequence[int] | None,
    steps: int,
    baseline: Baseline,
    batch_size: int,
    output: OutputSelector,
    *,
    insert: bool,
) -> np.ndarray:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
    batch_size = _positive(batch_size, "batch_size")
    x = prepare_input(model, x)
    n, _, h, w = x.shape
    m = _maps_for(maps, x)
    base = make_baseline(x, baseline)
    # rank[i, p]: position of pixel p in image i's deletion order.
    order = torch.argsort(-m.reshape(n, -1), dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w, device=x.device).expand(n, -1))
    counts = (torch.arange(steps + 1, device=x.device) * (h * w)) // steps
    curve = torch.empty(n, steps + 1, dtype=torch.float32, device=x.device)
    with borrowed(model), torch.no_grad():
        classes = _class_targets(model, x, target, output)
        total = n * (steps + 1)
        for start in range(0, total, batch_size):
            flat = torch.arange(start, min(start + batch_size, total), device=x.device)
            image, k = flat // (steps + 1), flat % (steps + 1)
            moved = (rank[image] < counts[k].unsqueeze(1)).view(-1, 1, h, w).to(x.dtype)
            if insert:
                batch = base[image] * (1 - moved) + x[image] * moved
            else:
                batch = x[image] * (1 - moved) + base[image] * moved
            curve[image, k] = _probabilities(model, batch, classes[image], output)
    return curve.cpu().numpy()


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
    batch_size = _positive(batch_size, "batch_size")
    x = prepare_input(model, x)
    m = _maps_for(maps, x)
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
        classes = _class_targets(model, x, target, output)
        for start in range(0, n, batch_size):
            part = slice(start, min(start + batch_size, n))
            full[part] = _probabilities(model, x[part], classes[part], output)
            explained = x[part] * m[part].unsqueeze(1)
            masked[part] = _probabilities(model, explained, classes[part], output)
    drop = torch.clamp(full - masked, min=0) / full * 100
    return drop.to("cpu", torch.float32).numpy()


# --------------------------------------------------------------------------------------------
# Pointing game
# --------------------------------------------------------------------------------------------


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
    m = _as_maps(maps)
    b = torch.as_tensor(np.asarray(boxes), dtype=torch.int64).reshape(-1, 4)
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


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def make_baseline(x: torch.Tensor, baseline: Baseline) -> torch.Tensor:
    """The ``(N, C, H, W)`` baseline image for ``x`` (see :func:`deletion_curve`)."""
    if isinstance(baseline, str):
        key = baseline.lower()
        if key == "zero":
            return torch.zeros_like(x)
        if key == "mean":
            return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
        if key == "blur":
            return gaussian_blur(x, BLUR_KERNEL, BLUR_SIGMA)
        raise ValueError(
            f"Unknown baseline {baseline!r}; use one of "
            + ", ".join(repr(b) for b in BASELINES)
            + ", a number or a tensor."
        )
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    try:
        return base.expand_as(x).clone()
    except RuntimeError as err:
        raise ValueError(
            f"A baseline tensor of shape {tuple(base.shape)} does not broadcast to the input "
            f"{tuple(x.shape)}."
        ) from err


def gaussian_blur(x: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with reflect padding (replicate if tiny)."""
    half = size // 2
    coords = torch.arange(size, dtype=x.dtype, device=x.device) - half
    kernel = torch.exp(-0.5 * (coords / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    mode = "reflect" if min(x.shape[2:]) > half else "replicate"
    out = F.pad(x, (half, half, 0, 0), mode=mode)
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, size), groups=c)
    out = F.pad(out, (0, 0, half, half), mode=mode)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, size, 1), groups=c)


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return value


def _as_maps(maps: MapsLike) -> torch.Tensor:
    """``(N, H, W)`` float32 CPU tensor from ``(N, H, W)``, ``(N, 1, H, W)`` or ``(H, W)``."""
    m = maps.detach().cpu() if isinstance(maps, torch.Tensor) else torch.as_tensor(np.asarray(maps))
    m = m.to(torch.float32)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"maps must be (N, H, W) or (N, 1, H, W); got shape {tuple(m.shape)}.")
    if not bool(torch.isfinite(m).all()):
        raise ValueError("maps contain NaN or Inf values.")
    return m


def _maps_for(maps: MapsLike, x: torch.Tensor) -> torch.Tensor:
    """Maps on ``x``'s device and dtype, resized bilinearly to ``x``'s spatial size."""
    m = _as_maps(maps)
    if m.shape[0] != x.shape[0]:
        raise ValueError(f"{m.shape[0]} maps for {x.shape[0]} images; give one map per image.")
    m = m.to(device=x.device, dtype=x.dtype)
    if tuple(m.shape[1:]) != tuple(x.shape[2:]):
        m = F.interpolate(m[:, None], size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    return m


def _class_targets(
    model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | None, output: OutputSelector
) -> torch.Tensor:
    """``(N,)`` class indices (predicted classes of ``x`` for ``None``)."""
    scores = select_output(model(x), output)
    resolved = resolve_targets(scores, target)
    if any(callable(t) for t in resolved):
        raise TargetError(
            "The faithfulness metrics score the softmax probability of a class, so target "
            "must be None, a class index or one index per image, not a callable."
        )
    return torch.as_tensor(resolved, dtype=torch.int64, device=x.device)


def _probabilities(
    model: nn.Module, batch: torch.Tensor, classes: torch.Tensor, output: OutputSelector
) -> torch.Tensor:
    scores = select_output(model(batch), output)
    probs = torch.softmax(scores.float(), dim=1)
    return probs.gather(1, classes.view(-1, 1)).squeeze(1)
