"""Robustness: how much a map changes when the input changes imperceptibly.

:func:`max_sensitivity` (Yeh et al., 2019, "On the (in)fidelity and sensitivity of
explanations"): over ``samples`` inputs ``x + delta`` with ``delta`` drawn uniformly from
``[-radius, radius]`` per element, the largest relative change of the map,

.. math::  \\max_s \\lVert \\Phi(x + \\delta_s) - \\Phi(x) \\rVert_F \\,/\\,
           \\lVert \\Phi(x) \\rVert_F,

with the explanation of each perturbed input computed for the same class as the original's.
Lower is better. This is Quantus 0.6's ``MaxSensitivity`` with its defaults (uniform noise of
``lower_bound=0.2``, ``nr_samples=200``, difference, Frobenius norms, no normalisation, no
absolute value); its noise comes from NumPy's global generator, ours from a seeded
``torch.Generator`` on the model's device (:func:`sensitivity_noise`), so the parity test feeds
Quantus the same noise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..layers import LayerRef
from ..targets import OutputSelector, Target
from ._common import MapsLike, class_targets, positive_int
from .explain import MethodLike, prepare


def sensitivity_noise(
    x: torch.Tensor, samples: int, radius: float, seed: int | None
) -> Iterator[torch.Tensor]:
    """The ``samples`` perturbations of :func:`max_sensitivity`, one ``(N, C, H, W)`` tensor
    each, uniform in ``[-radius, radius]``, drawn in order from a ``torch.Generator`` on
    ``x``'s device seeded with ``seed`` (``None``: torch's global generator)."""
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x.device)
        gen.manual_seed(int(seed))
    for _ in range(samples):
        u = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        yield (u * 2 - 1) * radius


def max_sensitivity(
    model: nn.Module,
    x: torch.Tensor,
    method: MethodLike,
    target: Target = None,
    *,
    maps: MapsLike | None = None,
    layer: LayerRef | None = None,
    samples: int = 200,
    radius: float = 0.2,
    seed: int | None = 0,
    batch_size: int = 64,
    output: OutputSelector = None,
    method_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> np.ndarray:
    """Largest relative change of the map over ``samples`` uniformly perturbed inputs.

    Args:
        model: the classifier (left exactly as it was).
        x: ``(N, C, H, W)`` model-ready input.
        method: a CAM or saliency method name, or an explainer callable
            (:func:`~cnnviz_widgets.engine.metrics.explain.resolve_method`).
        target: ``None`` (predicted classes of ``x``), a class index or one per image.
        maps: the ``(N, H, W)`` maps of ``x`` if already computed (else computed here).
        layer: the CAM layer (default: the default layer).
        samples: perturbations per image (Quantus's ``nr_samples``, default 200).
        radius: the noise bound, in the model's input units (Quantus's ``lower_bound``, 0.2).
        seed: seeds the noise (:func:`sensitivity_noise`); ``None`` uses torch's global RNG.
        batch_size: perturbed images per explanation call (several samples at once).
        output: which part of the model's output holds the logits.
        method_options: method options that clash with this function's own arguments
            (SmoothGrad's ``seed``).
        **options: method options (see
            :func:`~cnnviz_widgets.engine.metrics.explain.resolve_method`).

    Returns:
        ``(N,)`` float64, 0 for a map that does not move; lower is better. NaN for a zero map.
    """
    samples = positive_int(samples, "samples")
    batch_size = positive_int(batch_size, "batch_size")
    x, resolved = prepare(model, x, method, layer, options, method_options)
    n = x.shape[0]
    classes = class_targets(model, x, target, output)
    base = resolved.maps(model, x, classes, maps)
    base = base.to(torch.float64).reshape(n, -1)
    norm = torch.linalg.vector_norm(base, dim=1)
    worst = torch.full((n,), -torch.inf, dtype=torch.float64, device=x.device)
    per_call = max(1, batch_size // n)
    noise = sensitivity_noise(x, samples, radius, seed)
    done = 0
    while done < samples:
        k = min(per_call, samples - done)
        batch = torch.cat([x + next(noise) for _ in range(k)])
        perturbed = resolved.explain(model, batch, classes.repeat(k))
        diff = perturbed.to(torch.float64).reshape(k, n, -1) - base
        worst = torch.maximum(worst, (torch.linalg.vector_norm(diff, dim=2) / norm).amax(dim=0))
        done += k
    worst[norm == 0] = torch.nan
    return worst.cpu().numpy()
