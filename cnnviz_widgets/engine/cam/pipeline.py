"""The shared CAM pipeline, in torch on the model's device.

One capture pass hooks every target layer (``Capture``); gradient methods differentiate the
summed target scores with ``torch.autograd.grad`` with respect to the hooked outputs only
(parameters are frozen by ``borrowed``, so no parameter ``.grad`` is touched and the graph
starts at the first hooked layer). Each layer's raw map is then rectified (ReLU), and
:mod:`.scaling` normalises and resizes it the way pytorch-grad-cam does. Nothing leaves the
device until the public functions convert the final maps to numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..capture import Capture
from ..targets import OutputSelector, Target, resolve_targets, select_output, target_scores
from .base import CamMethod, LayerData, Reshape, Run
from .errors import LayerShapeError, NoGradientPathError
from .progress import Progress, ProgressArg


def _as_feature_map(name: str, module: nn.Module, tensor: torch.Tensor, reshape: Reshape | None):
    """``reshape(tensor)`` checked to be ``(N, C, H, W)``."""
    shaped = reshape(tensor) if reshape is not None else tensor
    if not isinstance(shaped, torch.Tensor) or shaped.ndim != 4:
        shape = tuple(shaped.shape) if isinstance(shaped, torch.Tensor) else type(shaped).__name__
        raise LayerShapeError(
            f"Layer {name!r} ({type(module).__name__}) gives {shape}"
            + (" after reshape" if reshape is not None else "")
            + ", but CAM methods need a 4-D (N, C, H, W) feature map. Pick a convolutional "
            "layer or block (for example the last one before global pooling), or pass "
            "reshape= a function that turns this output into (N, C, H, W)."
        )
    return shaped


def capture_layers(
    model: nn.Module,
    x: torch.Tensor,
    layers: Mapping[str, nn.Module],
    method: CamMethod,
    *,
    target: Target,
    output: OutputSelector,
    reshape: Reshape | None,
) -> tuple[dict[str, LayerData], list[Any] | None, torch.Tensor | None]:
    """One forward pass (plus one backward for gradient methods) over all ``layers``.

    Returns ``({name: LayerData}, targets, target_values)``; the last two are ``None`` for
    methods that use no target (their forward pass stops once every layer has run).
    """
    targets = values = None
    grads: list[torch.Tensor | None] = [None] * len(layers)
    if method.uses_gradients:
        with torch.inference_mode(False), torch.enable_grad():
            with Capture(model, layers, grad=True) as cap:
                result = model(x)
            outputs = cap.outputs_list()
            # checked before the backward pass, so a wrong layer fails before the costly part
            shaped = [
                _as_feature_map(name, module, out.detach(), reshape)
                for (name, module), out in zip(layers.items(), outputs, strict=True)
            ]
            scores = select_output(result, output)
            targets = resolve_targets(scores, target)
            values = target_scores(scores, targets)
            if not values.requires_grad:
                raise NoGradientPathError(
                    f"The target score does not depend on the output of layer(s) "
                    f"{', '.join(repr(n) for n in layers)}, so there is no gradient to weight "
                    "it by. Pick a layer on the path to the model's output."
                )
            found = torch.autograd.grad(values.sum(), outputs, allow_unused=True)
            grads = [
                g if g is not None else torch.zeros_like(o)
                for g, o in zip(found, outputs, strict=True)
            ]
            values = values.detach()
    else:
        with torch.no_grad(), Capture(model, layers, stop_early=not method.uses_targets) as cap:
            result = model(x)
        outputs = cap.outputs_list()
        shaped = [
            _as_feature_map(name, module, out.detach(), reshape)
            for (name, module), out in zip(layers.items(), outputs, strict=True)
        ]
        if method.uses_targets:
            scores = select_output(result, output)
            targets = resolve_targets(scores, target)
            values = target_scores(scores, targets)
    data = {}
    for (name, module), out, acts, grad in zip(
        layers.items(), outputs, shaped, grads, strict=True
    ):
        acts = acts.to(torch.float32)
        if grad is not None:
            grad = _as_feature_map(name, module, grad, reshape).to(torch.float32)
        data[name] = LayerData(name, module, out.detach(), acts, grad)
    if values is not None:
        values = values.to(torch.float32)
    return data, targets, values


def layer_raw_maps(
    model: nn.Module,
    x: torch.Tensor,
    layers: Mapping[str, nn.Module],
    method: CamMethod,
    *,
    target: Target,
    output: OutputSelector,
    eigen_smooth: bool,
    batch_size: int,
    progress: ProgressArg,
    reshape: Reshape | None,
) -> dict[str, torch.Tensor]:
    """``{name: (N, h, w) float32}`` rectified raw maps at each layer's resolution.

    ``model`` must already be borrowed (eval mode, frozen) and ``x`` prepared.
    """
    data, targets, values = capture_layers(
        model, x, layers, method, target=target, output=output, reshape=reshape
    )
    bar = Progress(progress, sum(method.work(d) for d in data.values()), desc=method.name)
    run = Run(model, x, targets, values, output, batch_size, eigen_smooth, bar, reshape)
    try:
        maps = {}
        for name in list(data):
            layer = data.pop(name)  # so each layer's tensors are freed once its map is done
            maps[name] = method.raw_map(layer, run).clamp_min(0)
        return maps
    finally:
        bar.close()
