"""The shared CAM pipeline, in torch on the model's device.

One capture pass hooks every target layer (``Capture``); gradient methods differentiate the
summed target scores with ``torch.autograd.grad`` with respect to the hooked outputs only
(parameters are frozen by ``borrowed``, so no parameter ``.grad`` is touched and the graph
starts at the first hooked layer). Each layer's raw map is then rectified (ReLU), and
:mod:`.scaling` normalises and resizes it the way pytorch-grad-cam does. Nothing leaves the
device until the public functions convert the final maps to numpy.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ..levels import LEVEL_SEP, LevelCapture, Levels, fold_levels
from ..targets import OutputSelector, Target, resolve_targets, select_scores, target_scores
from ..tokens import AutoReshape
from .base import CamMethod, LayerData, Reshape, Run
from .errors import LayerShapeError, NoGradientPathError
from .progress import Progress, ProgressArg

Recorded = torch.Tensor | Levels
"""A layer's record: its output tensor, or ``{key: tensor}`` for a dict/list output."""


def _as_feature_map(
    name: str, module: nn.Module, recorded: Recorded, reshape: Reshape | None
) -> torch.Tensor:
    """``reshape(recorded)`` checked to be ``(N, C, H, W)``. Levels (a dict/list output) are
    folded by :func:`~cnnviz_widgets.engine.levels.fold_levels` unless the caller gave a
    ``reshape``, which then receives them as an ordered dict."""
    shaped: Any
    if isinstance(recorded, dict):
        if reshape is not None and not isinstance(reshape, AutoReshape):
            given: Callable[[Any], Any] = reshape  # the reference's reshapes take the dict
            shaped = given(OrderedDict(recorded))
        else:
            shaped = fold_levels(recorded)
    else:
        shaped = reshape(recorded) if reshape is not None else recorded
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


def _detached(recorded: Recorded) -> Recorded:
    if isinstance(recorded, dict):
        return {k: v.detach() for k, v in recorded.items()}
    return recorded.detach()


def check_layers_for(method: CamMethod, layers: Mapping[str, nn.Module]) -> None:
    """AblationCAM replaces a layer's whole output tensor, so it needs tensor layers."""
    if method.name == "AblationCAM" and any(LEVEL_SEP in name for name in layers):
        raise LayerShapeError(
            "AblationCAM replaces the target layer's output tensor, so it cannot take one "
            "level of a dict/list output; pick a layer whose output is a tensor."
        )


def forward_capture(
    model: nn.Module, x: torch.Tensor, layers: Mapping[str, nn.Module], *, grad: bool,
    stop_early: bool = False,
) -> tuple[LevelCapture, Any]:
    """One forward pass of ``model(x)`` with ``layers`` hooked; the capture and the output
    (``None`` when ``stop_early`` cut the pass short)."""
    cap = LevelCapture(model, layers, grad=grad, stop_early=stop_early)
    result = None
    with cap:
        result = model(x)
    return cap, result


def shaped_layers(
    layers: Mapping[str, nn.Module], cap: LevelCapture, reshape: Reshape | None, n: int
) -> list[torch.Tensor]:
    """Every layer's recorded output as an ``(N, C, h, w)`` feature map (detached), ``N = n``
    the input's batch size."""
    shaped = []
    for (name, module), rec in zip(layers.items(), cap.recorded(), strict=True):
        grid = _as_feature_map(name, module, _detached(rec), reshape)
        if grid.shape[0] != n:
            raise LayerShapeError(
                f"Layer {name!r} ({type(module).__name__}) gives {grid.shape[0]} feature maps "
                f"for {n} image(s): it runs once per proposal or region (a detector's ROI "
                "head), not once per image, so it has no map of the image. Pick a layer of the "
                "backbone (the default layer does), e.g. one from conv_layers(model)."
            )
        shaped.append(grid)
    return shaped


def layer_gradients(
    values: torch.Tensor,
    cap: LevelCapture,
    layers: Mapping[str, nn.Module],
    *,
    retain_graph: bool = False,
) -> list[Recorded]:
    """``d(sum values) / d(layer output)`` for every layer, grouped as its record (zeros where
    the score does not depend on a level)."""
    if not values.requires_grad:
        raise NoGradientPathError(
            f"The target score does not depend on the output of layer(s) "
            f"{', '.join(repr(n) for n in layers)}, so there is no gradient to weight "
            "it by. Pick a layer on the path to the model's output."
        )
    outputs = cap.outputs_list()
    found = torch.autograd.grad(
        values.sum(), outputs, allow_unused=True, retain_graph=retain_graph
    )
    return cap.regroup(
        [g if g is not None else torch.zeros_like(o) for g, o in zip(found, outputs, strict=True)]
    )


def layer_data(
    layers: Mapping[str, nn.Module],
    cap: LevelCapture,
    shaped: list[torch.Tensor],
    grads: list[Recorded] | list[None],
    reshape: Reshape | None,
) -> dict[str, LayerData]:
    """``{name: LayerData}`` from a capture, its feature maps and (optional) gradients. A
    layer with levels keeps its folded grid as ``output``."""
    data = {}
    for (name, module), rec, acts, grad in zip(
        layers.items(), cap.recorded(), shaped, grads, strict=True
    ):
        out = acts if isinstance(rec, dict) else rec.detach()
        g = None if grad is None else _as_feature_map(name, module, grad, reshape)
        data[name] = LayerData(
            name, module, out, acts.to(torch.float32), None if g is None else g.to(torch.float32)
        )
    return data


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
    check_layers_for(method, layers)
    targets = values = None
    grads: list[Recorded] | list[None] = [None] * len(layers)
    if method.uses_gradients:
        with torch.inference_mode(False), torch.enable_grad():
            cap, result = forward_capture(model, x, layers, grad=True)
            # checked before the backward pass, so a wrong layer fails before the costly part
            shaped = shaped_layers(layers, cap, reshape, x.shape[0])
            scores = select_scores(result, output)
            targets = resolve_targets(scores, target)
            values = target_scores(scores, targets)
            grads = layer_gradients(values, cap, layers)
            values = values.detach()
    else:
        with torch.no_grad():
            cap, result = forward_capture(
                model, x, layers, grad=False, stop_early=not method.uses_targets
            )
        shaped = shaped_layers(layers, cap, reshape, x.shape[0])
        if method.uses_targets:
            scores = select_scores(result, output)
            targets = resolve_targets(scores, target)
            values = target_scores(scores, targets)
    data = layer_data(layers, cap, shaped, grads, reshape)
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
