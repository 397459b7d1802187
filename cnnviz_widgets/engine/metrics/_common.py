"""Helpers shared by the metric modules: map and target handling, baselines, blur.

Maps are ``(N, H, W)`` (or ``(N, 1, H, W)``, or one ``(H, W)``) numpy arrays or tensors;
targets are class indices (``None``: each image's predicted class on the unmodified input).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..borrow import borrowed
from ..targets import OutputSelector, Target, TargetError, resolve_targets, select_output

Baseline = str | float | torch.Tensor
MapsLike = np.ndarray | torch.Tensor

BASELINES: tuple[str, ...] = ("zero", "blur", "mean")
BLUR_KERNEL, BLUR_SIGMA = 11, 5.0  # RISE's blur for insertion: 11 px Gaussian, sigma 5 px


def make_baseline(x: torch.Tensor, baseline: Baseline) -> torch.Tensor:
    """The ``(N, C, H, W)`` baseline image for ``x`` (see :func:`.faithfulness.deletion_curve`)."""
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


def positive_int(value: int, name: str) -> int:
    """``value`` if it is a positive int, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return value


def as_stack(values: MapsLike, name: str = "maps") -> torch.Tensor:
    """``(N, H, W)`` tensor (detached, not copied) from ``(N, H, W)``, ``(N, 1, H, W)`` or one
    ``(H, W)`` array or tensor; another shape is a ValueError naming ``name``."""
    m = values.detach() if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"{name} must be (N, H, W) or (N, 1, H, W); got shape {tuple(m.shape)}.")
    return m


def as_maps(maps: MapsLike, device: torch.device | str | None = None) -> torch.Tensor:
    """``(N, H, W)`` float32 tensor from ``(N, H, W)``, ``(N, 1, H, W)`` or ``(H, W)`` maps,
    on ``device`` (default: where a tensor already is, the CPU for numpy)."""
    m = as_stack(maps)
    m = m.to(device=device if device is not None else m.device, dtype=torch.float32)
    if not bool(torch.isfinite(m).all()):
        raise ValueError("maps contain NaN or Inf values.")
    return m


def maps_for(maps: MapsLike, x: torch.Tensor) -> torch.Tensor:
    """Maps on ``x``'s device and dtype, resized bilinearly (``align_corners=False``) to ``x``'s
    spatial size when they have another."""
    m = as_maps(maps, x.device)
    if m.shape[0] != x.shape[0]:
        raise ValueError(f"{m.shape[0]} maps for {x.shape[0]} images; give one map per image.")
    m = m.to(dtype=x.dtype)
    if tuple(m.shape[1:]) != tuple(x.shape[2:]):
        m = F.interpolate(m[:, None], size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    return m


def class_targets(
    model: nn.Module, x: torch.Tensor, target: Target, output: OutputSelector
) -> torch.Tensor:
    """``(N,)`` int64 class indices on ``x``'s device (predicted classes of ``x`` for
    ``None``); callables are refused. One forward pass (:func:`class_scores`)."""
    return class_indices(class_scores(model, x, target, output), target)


def class_scores(
    model: nn.Module, x: torch.Tensor, target: Target, output: OutputSelector
) -> torch.Tensor:
    """What :func:`class_indices` needs to resolve ``target`` for ``x``: the ``(N, K)`` scores
    of ``x`` (:func:`model_scores`) when the classes are the predicted ones (``None``), else
    those of ``x[:1]`` repeated ``N`` times (a view): given classes are only checked against
    the number of classes, so one image's forward pass tells it (the metrics' explanations
    and scores run their own passes)."""
    if target is None or callable(target) or x.shape[0] <= 1:
        return model_scores(model, x, output)
    first = model_scores(model, x[:1], output)
    if not (isinstance(first, torch.Tensor) and first.ndim == 2):
        return model_scores(model, x, output)
    return first.expand(x.shape[0], -1)


def model_scores(model: nn.Module, x: torch.Tensor, output: OutputSelector) -> torch.Tensor:
    """``(N, K)`` output scores of ``x``: one forward pass, no grad, the model borrowed in eval
    mode (:func:`~cnnviz_widgets.engine.borrow.borrowed`)."""
    with borrowed(model), torch.no_grad():
        return select_output(model(x), output)


def class_indices(scores: torch.Tensor, target: Target) -> torch.Tensor:
    """``(N,)`` int64 class indices for ``(N, K)`` ``scores`` (predicted classes for ``None``)."""
    resolved = resolve_targets(scores, target)
    if any(callable(t) for t in resolved):
        raise TargetError(
            "This metric needs class indices, so target must be None, a class index or one "
            "index per image, not a callable."
        )
    return torch.as_tensor(resolved, dtype=torch.int64, device=scores.device)


def probabilities(
    model: nn.Module, batch: torch.Tensor, classes: torch.Tensor, output: OutputSelector
) -> torch.Tensor:
    """``(N,)`` softmax probability of ``classes`` for ``batch`` (one forward pass)."""
    scores = select_output(model(batch), output)
    probs = torch.softmax(scores.float(), dim=1)
    return probs.gather(1, classes.view(-1, 1)).squeeze(1)


def to_numpy(values: torch.Tensor) -> np.ndarray:
    """A float32 CPU numpy copy of ``values``."""
    return values.detach().to("cpu", torch.float32).numpy()
