"""ROAD: remove and debias (Rong et al., ICML 2022), as pytorch-grad-cam 1.5 computes it.

For each percentile ``p`` the pixels whose map value is at or above the ``p``-th percentile
(most relevant first, MoRF) or whose ``1 - map`` is (least relevant first, LeRF) are removed,
filled in by the noisy linear imputation (:mod:`.imputation`: each removed pixel the weighted
mean of its neighbours, plus ``N(0, noise^2)``), and the model scores the imputed image. The
value for one percentile is ``target(imputed) - target(original)`` on the raw output (the
logit of the class for a class index), and ROAD averages it over the percentiles:

* ``order="most"``: ``ROADMostRelevantFirstAverage`` (lower is better: removing what the map
  points at should hurt);
* ``order="least"``: ``ROADLeastRelevantFirstAverage`` (higher is better: removing what it
  ignores should not);
* ``order="combined"``: ``ROADCombined``, ``(least - most) / 2`` (higher is better).

The thresholds follow ``np.percentile`` exactly (linear interpolation, in the maps' float32)
and the kept pixels are ``map < threshold``, as the reference's ``RemoveMostRelevantFirst``
(a constant map removes everything; the image then becomes zeros plus noise, as the reference
gives). Imputation and the model's passes run batched on the model's device, every percentile
and both orders of a chunk of images at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..borrow import borrowed
from ..inputs import prepare_input
from ..targets import OutputSelector, Target, resolve_targets, select_output, target_scores
from ._common import MapsLike, maps_for, positive_int
from .imputation import noisy_linear_impute

PERCENTILES: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)
ORDERS: tuple[str, ...] = ("most", "least", "combined")


def percentile_thresholds(values: torch.Tensor, percentiles: Sequence[float]) -> torch.Tensor:
    """``np.percentile(v, p)`` of each row of ``(N, P)`` float32 ``values``, bit for bit.

    NumPy's default ("linear") method: with the row sorted, the virtual index
    ``(P - 1) * p / 100`` (float64) splits into ``i + g``, and the result is the float32
    interpolation ``v[i] + (v[i+1] - v[i]) * g`` (or ``v[i+1] - (v[i+1] - v[i]) * (1 - g)``
    for ``g >= 0.5``), the weight rounded to float32, as NumPy does for a Python-number ``p``.

    Returns:
        ``(N, len(percentiles))`` in ``values``' dtype.
    """
    ordered = torch.sort(values, dim=1).values
    count = ordered.shape[1]
    out = torch.empty(values.shape[0], len(percentiles), dtype=values.dtype, device=values.device)
    for j, p in enumerate(percentiles):
        if not 0 <= float(p) <= 100:
            raise ValueError(f"percentiles must lie in [0, 100]; got {p!r}.")
        virtual = (count - 1) * float(np.true_divide(p, 100))
        below = int(np.floor(virtual))
        if virtual >= count - 1:
            below = upper = count - 1
        else:
            upper = below + 1
        gamma = virtual - below
        a, b = ordered[:, below], ordered[:, upper]
        diff = b - a
        if gamma >= 0.5:
            out[:, j] = b - diff * torch.tensor(1 - gamma, dtype=values.dtype)
        else:
            out[:, j] = a + diff * torch.tensor(gamma, dtype=values.dtype)
    return out


def removal_masks(maps: torch.Tensor, percentiles: Sequence[float], order: str) -> torch.Tensor:
    """``(N, len(percentiles), H, W)`` bool: True where ROAD removes a pixel.

    ``order="most"`` removes where ``map >= threshold`` (not ``map < np.percentile(map, p)``),
    ``"least"`` the same for ``1 - map``.
    """
    if order not in ("most", "least"):
        raise ValueError(f"order must be 'most' or 'least' here; got {order!r}.")
    m = maps.to(torch.float32)
    if order == "least":
        m = 1 - m
    n = m.shape[0]
    thr = percentile_thresholds(m.reshape(n, -1), percentiles)  # (N, P)
    return ~(m.unsqueeze(1) < thr.view(n, -1, 1, 1))


def road(
    model: nn.Module,
    x: torch.Tensor,
    maps: MapsLike,
    target: Target = None,
    percentiles: Sequence[float] = PERCENTILES,
    order: str = "most",
    noise: float = 0.01,
    seed: int | None = None,
    *,
    batch_size: int = 64,
    output: OutputSelector = None,
) -> np.ndarray:
    """ROAD score of each map: the mean change of the target score as pixels are imputed away.

    Args:
        model: the classifier (left exactly as it was; run in eval mode without gradients).
        x: ``(N, C, H, W)`` model-ready input.
        maps: ``(N, H, W)`` maps (in [0, 1] for ``"least"``/``"combined"``, as the reference
            assumes: it ranks ``1 - map``); resized bilinearly to ``x``'s size if needed.
        target: ``None`` (each image's predicted class), a class index, one per image, or a
            callable on one image's output (pytorch-grad-cam's ``ClassifierOutputTarget(k)``
            works as is).
        percentiles: the removal percentiles averaged over.
        order: ``"most"``, ``"least"`` or ``"combined"`` (see the module docstring).
        noise: the imputation noise's standard deviation in input units (0: none).
        seed: seeds the noise (a ``torch.Generator`` on the model's device; the draws depend on
            ``batch_size`` too); ``None`` draws from torch's global generator.
        batch_size: imputed images per chunk (imputation and forward pass).
        output: which part of the model's output holds the scores.

    Returns:
        ``(N,)`` float64: the mean of ``score(imputed) - score(x)`` over the percentiles for
        ``"most"`` / ``"least"``, ``(least - most) / 2`` for ``"combined"``.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(map(repr, ORDERS))}; got {order!r}.")
    orders = ("most", "least") if order == "combined" else (order,)
    means = road_means(
        orders, model, x, maps, target, percentiles, noise, seed, batch_size=batch_size,
        output=output,
    )
    if order == "combined":
        return (means["least"] - means["most"]) / 2
    return means[order]


def road_means(
    orders: Sequence[str],
    model: nn.Module,
    x: torch.Tensor,
    maps: MapsLike,
    target: Target = None,
    percentiles: Sequence[float] = PERCENTILES,
    noise: float = 0.01,
    seed: int | None = None,
    *,
    batch_size: int = 64,
    output: OutputSelector = None,
) -> dict[str, np.ndarray]:
    """The per-order means behind :func:`road`, several ``orders`` (``"most"``, ``"least"``)
    in one pass: ``{"most": (N,), "least": (N,)}`` float64 (other arguments as :func:`road`).
    """
    orders = tuple(orders)
    if not orders or any(o not in ("most", "least") for o in orders):
        raise ValueError(f"orders must be 'most' and/or 'least'; got {orders!r}.")
    batch_size = positive_int(batch_size, "batch_size")
    percentiles = tuple(percentiles)
    if not percentiles:
        raise ValueError("percentiles must not be empty.")
    x = prepare_input(model, x)
    m = maps_for(maps, x).to(torch.float32)
    n = x.shape[0]
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x.device)
        gen.manual_seed(int(seed))
    per_image = len(orders) * len(percentiles)
    means = torch.zeros(len(orders), n, dtype=torch.float64, device=x.device)
    with borrowed(model), torch.no_grad():
        scores = select_output(model(x), output)
        targets = resolve_targets(scores, target)
        before = target_scores(scores, targets).to(torch.float32)
        chunk = max(1, batch_size // per_image)
        for start in range(0, n, chunk):
            part = slice(start, min(start + chunk, n))
            k = part.stop - part.start
            removed = torch.stack([removal_masks(m[part], percentiles, o) for o in orders], 1)
            removed = removed.reshape(-1, *m.shape[1:])  # (k * orders * P, H, W)
            reps = x[part].repeat_interleave(per_image, dim=0)
            imputed = noisy_linear_impute(reps, removed, noise, gen)
            after = torch.empty(imputed.shape[0], dtype=torch.float32, device=x.device)
            owners = [t for t in targets[part] for _ in range(per_image)]
            for s in range(0, imputed.shape[0], batch_size):
                out = select_output(model(imputed[s : s + batch_size]), output)
                after[s : s + batch_size] = target_scores(out, owners[s : s + batch_size])
            diff = after.view(k, len(orders), len(percentiles)) - before[part].view(k, 1, 1)
            means[:, part] = diff.to(torch.float64).mean(dim=2).T
    return {o: means[i].cpu().numpy() for i, o in enumerate(orders)}
