"""FullGrad (Srinivas & Fleuret 2019), as pytorch-grad-cam computes it.

FullGrad ignores the target layer: it uses the input gradient and the bias gradient of every
``nn.Conv2d`` and ``nn.BatchNorm2d`` with a bias (exact types, as the reference), from one
forward and one backward pass. With ``y`` the sum of the samples' target scores:

* input term: ``|dy/dx * x|`` per input channel, each ``(H, W)`` map min-max normalised
  (eps 1e-7), summed over the input channels;
* a term per bias layer: ``|b_c * dy/dz_c|`` for its output ``z`` and effective bias ``b``
  (the conv's bias; for BatchNorm ``bias - running_mean * weight / sqrt(running_var + eps)``),
  each channel's map min-max normalised, summed over channels, resized to ``(H, W)`` (bilinear,
  half-pixel centres; the resize is linear, so summing first is the same);
* the raw map is the sum of all terms (no ReLU: every term is non-negative), and the result is
  its min-max normalisation.

With ``eigen_smooth`` the reference stacks the terms (input term per channel, one map per
layer), scales each to 1/8 of the input size, takes the first principal component (sign rule
of :mod:`.projection`), and scales it back to the input size before normalising.
A bias layer that does not run in the forward pass is left out (the reference fails there).
"""

from __future__ import annotations

import torch
from torch import nn

from ..capture import Capture
from ..targets import OutputSelector, Target, resolve_targets, select_scores, target_scores
from .base import CamMethod
from .errors import NoGradientPathError
from .projection import first_component
from .scaling import minmax, resize, scale_maps

BIAS_TYPES = (nn.Conv2d, nn.BatchNorm2d)


def bias_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every ``Conv2d``/``BatchNorm2d`` (exact type) with a bias, in ``named_modules`` order."""
    return {
        name: module
        for name, module in model.named_modules()
        if name and type(module) in BIAS_TYPES and module.bias is not None
    }


def effective_bias(module: nn.Module) -> torch.Tensor:
    """``(C,)`` float32 bias of a layer's output (BatchNorm folded with its running stats)."""
    if not isinstance(module.bias, torch.Tensor):
        raise TypeError(f"{type(module).__name__} has no bias.")
    bias = module.bias.detach().to(torch.float32)
    if isinstance(module, nn.BatchNorm2d) and module.running_mean is not None:
        # a BatchNorm2d with a bias is affine, and running_var comes with running_mean
        assert module.weight is not None and module.running_var is not None
        weight = module.weight.detach().to(torch.float32)
        mean = module.running_mean.detach().to(torch.float32)
        var = module.running_var.detach().to(torch.float32)
        bias = -(mean * weight / torch.sqrt(var + module.eps)) + bias
    return bias


def _scale_channels(terms: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Min-max normalise (and resize) every ``(h, w)`` map of ``(N, C, h, w)`` separately."""
    n, c = terms.shape[:2]
    return scale_maps(terms.reshape(n * c, *terms.shape[2:]), size).reshape(
        n, c, *(size or terms.shape[2:])
    )


class FullGrad(CamMethod):
    """Input-gradient and bias-gradient terms over the whole model (see module docstring)."""

    name = "FullGrad"
    whole_model = True

    def full_map(
        self,
        model: nn.Module,
        x: torch.Tensor,
        target: Target,
        output: OutputSelector,
        eigen_smooth: bool,
    ) -> torch.Tensor:
        """``(N, H, W)`` float32 map before the final min-max normalisation."""
        layers = bias_layers(model)
        size = (x.shape[-2], x.shape[-1])
        with torch.inference_mode(False), torch.enable_grad():
            x = x.detach().requires_grad_(True)
            with Capture(model, layers, grad=True) as cap:
                result = model(x)
            scores = select_scores(result, output)
            targets = resolve_targets(scores, target)
            values = target_scores(scores, targets)
            if not values.requires_grad:
                raise NoGradientPathError(
                    "The target score does not depend on the input, so FullGrad has no "
                    "gradient to show (does the model detach its output?)."
                )
            ran = [name for name in layers if name in cap.outputs]
            wrt = [x] + [cap.outputs[name] for name in ran]
            grads = torch.autograd.grad(values.sum(), wrt, allow_unused=True)
        input_term = _scale_channels((grads[0] * x.detach()).abs().to(torch.float32), None)
        layer_terms = []
        for name, grad in zip(ran, grads[1:], strict=True):
            if grad is None:
                continue
            bias = effective_bias(layers[name]).to(grad.device)
            term = (bias[None, :, None, None] * grad.to(torch.float32)).abs()
            layer_terms.append(resize(_scale_channels(term, None).sum(dim=1), size))
        if not eigen_smooth:
            total = input_term.sum(dim=1)
            for term in layer_terms:
                total = total + term
            return total
        stack = torch.cat([input_term, *(t[:, None] for t in layer_terms)], dim=1)
        small = (size[0] // 8, size[1] // 8)
        projection = first_component(_scale_channels(stack, small))
        return scale_maps(projection, size)


def finish_full(map_: torch.Tensor) -> torch.Tensor:
    """FullGrad's final step: min-max normalise the ``(N, H, W)`` map (already at input size)."""
    return minmax(map_)
