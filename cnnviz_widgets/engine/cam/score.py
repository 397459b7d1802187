"""ScoreCAM (Wang et al. 2020): channels weighted by the score of the input masked by them.

For each sample and channel ``c``: upsample ``A_c`` to the input size (bilinear,
``align_corners=True``, as the reference's ``UpsamplingBilinear2d``), scale it to a mask
``M_c = (U_c - min U_c) / (max U_c - min U_c + 1e-8)``, score the masked input ``x * M_c`` with
the sample's target, and weight channels by the softmax of the scores over channels.

Cost: one forward pass per channel and sample, run ``batch_size`` masked images at a time under
``torch.inference_mode``; the masked images are formed chunk by chunk, never all at once.
A channel whose upsampled map is constant gets the all-zero mask, i.e. the score of an all-zero
input: that score is computed once (one forward pass) and reused for every such channel.
With ``fuse`` (below), channels whose masks are the same (:func:`same_masks`: maps equal up to
``a A + b``, e.g. every channel active at one position only) share one masked pass too.

Option ``fuse`` (default ``True``): run the masked images through the accelerated paths of
:mod:`~cnnviz_widgets.engine.accel` (a BatchNorm-folded, channels-last copy of the model with
Winograd 3x3 convolutions on the CPU, and the first convolution of every masked image by
linearity from a per-image basis), each checked against the plain computation before use and
each used only where a timed trial on the first masks found it faster (decisions cached per
model); the scores agree with the model's own to float rounding. ``fuse=False`` uses the model
itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..accel.inference import FastForward
from ..accel.masked import MaskedForward
from .base import CamMethod, LayerData, Run, score_rows

MASK_EPS = 1e-8
"""The reference's offset in the mask's denominator."""

_UPSAMPLE_ELEMENTS = 1 << 24
"""Upper bound on upsampled elements held at once while finding each channel's range."""


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(B, h, w)`` -> ``(B, H, W)``, bilinear with ``align_corners=True``."""
    return F.interpolate(maps[None], size=size, mode="bilinear", align_corners=True)[0]


def upsampled_range(maps: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(min, max)`` of ``(C, h, w)`` maps upsampled to ``size``, each ``(C,)``."""
    chunk = max(1, _UPSAMPLE_ELEMENTS // (size[0] * size[1]))
    lows, highs = [], []
    for start in range(0, maps.shape[0], chunk):
        up = upsample(maps[start : start + chunk], size).flatten(1)
        lows.append(up.amin(dim=1))
        highs.append(up.amax(dim=1))
    return torch.cat(lows), torch.cat(highs)


def same_masks(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Groups of ``(K, h, w)`` non-constant maps whose masks are the same: ``(first, group)``,
    the index of one map per group ``(G,)`` and each map's group ``(K,)``.

    Maps whose min-max normalised grids are equal (in float64) are ``A' = a A + b`` with
    ``a > 0``; bilinear upsampling keeps that relation (its weights sum to 1), so their masks
    differ only by the ``1e-8`` in the denominator: ``M' = (U - lo) / (hi - lo + 1e-8 / a)``,
    a relative difference of ``1e-8 / (a (hi - lo))``, below float32 rounding for any map with
    a range above ``1e-2``. The usual case: channels active at a single position of the grid,
    whose masks are all the same bilinear tent.
    """
    flat = maps.flatten(1).double()
    low = flat.amin(dim=1, keepdim=True)
    normalised = (flat - low) / (flat.amax(dim=1, keepdim=True) - low)
    _, group = torch.unique(normalised, dim=0, return_inverse=True)
    count = int(group.max()) + 1 if group.numel() else 0
    order = torch.arange(group.numel(), device=maps.device)
    first = torch.full((count,), group.numel(), dtype=torch.long, device=maps.device)
    first = first.scatter_reduce(0, group, order, reduce="amin")
    return first, group


class ScoreCAM(CamMethod):
    """Gradient-free; ``w_c = softmax_c(score(x * M_c))`` (see module docstring)."""

    name = "ScoreCAM"
    uses_gradients = False
    iterative = True
    defaults: ClassVar[dict[str, Any]] = {"fuse": True}

    def weights(self, layer: LayerData, run: Run) -> torch.Tensor:
        acts = layer.activations
        n_samples, channels = acts.shape[:2]
        size = (run.x.shape[-2], run.x.shape[-1])
        scores = torch.empty(n_samples, channels, dtype=torch.float32, device=acts.device)
        forward = run.cache.get("score_forward")
        if forward is None:
            forward = FastForward(run.model, run.output, run.x.dtype, bool(self.options["fuse"]))
            run.cache["score_forward"] = forward
        zero_output = None
        for n in range(n_samples):
            target = run.required_targets[n]
            low, high = upsampled_range(acts[n], size)
            constant = high == low
            if bool(constant.any()):
                if zero_output is None:
                    zero_output = forward(torch.zeros_like(run.x[:1]))
                scores[n, constant] = score_rows(zero_output, target)[0]
                run.progress.advance(int(constant.sum()))
            live = torch.nonzero(~constant).flatten()
            if self.options["fuse"]:  # one masked pass per group of the same mask
                first, group = same_masks(acts[n, live])
                todo, sizes = live[first], torch.bincount(group, minlength=first.numel())
            else:
                todo, group, sizes = live, None, torch.ones_like(live)
            masked = MaskedForward(forward, run.x[n], upsample, MASK_EPS, todo.numel())
            found = torch.empty(todo.numel(), dtype=torch.float32, device=acts.device)
            for start in range(0, todo.numel(), run.batch_size):
                part = slice(start, start + run.batch_size)
                index = todo[part]
                outputs = masked(acts[n, index], low[index], high[index])
                found[part] = score_rows(outputs, target)
                run.progress.advance(int(sizes[part].sum()))
            scores[n, live] = found if group is None else found[group]
        return torch.softmax(scores, dim=-1)
