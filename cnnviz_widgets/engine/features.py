"""Feature maps: the outputs of many layers from one forward pass."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .borrow import borrowed
from .dryrun import Trace, order_known, remember_order, tracing
from .inputs import prepare_input
from .layers import LayerRef, all_convs, conv_layers, in_forward_order, resolve_layers
from .levels import LEVEL_SEP, LevelCapture


def feature_maps(
    model: nn.Module,
    x: torch.Tensor,
    layers: LayerRef | Sequence[LayerRef] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, torch.Tensor]:
    """Outputs of ``layers`` for the input batch ``x``, from ONE forward pass.

    Args:
        model: the network (left exactly as it was: mode, hooks, parameters, gradients).
        x: ``(N, C, H, W)`` (or ``(C, H, W)``) model-ready input; moved to the model's device.
        layers: names or modules of any layers (convs, ReLUs, blocks, ...); default: every
            Conv2d in forward order. A module called several times records its first call.
            A module whose output is a dict or list of tensors (a detector's FPN
            ``"backbone"``) gives one entry per level, named ``"backbone:0"``, ...,
            ``"backbone:pool"``; such a name takes one level (:mod:`.levels`).
        progress: ``progress(recorded, total)`` after each layer's output is recorded.

    Returns:
        ``{name: (N, C, H, W) float32 CPU tensor}`` in the order the layers were given (levels
        in their output's order). The forward pass stops as soon as every requested layer has
        run. Layers inside a detector's heads that run per proposal (``roi_heads``) have one
        row per proposal, not per image.

    Raises:
        LayerNotFoundError: unknown layer name (with close matches).
        LayerNotExecutedError: a layer the forward pass never calls.
        LayerOutputError: a layer whose output is not a tensor (nor a dict/list of tensors),
            or a ``"module:key"`` whose key is not in the module's output.
        ImageInputError: a bad input (rank, channels, NaN).
    """
    return _record(model, x, layers, progress, whole_forward=False).maps


@dataclass(frozen=True)
class WholePass:
    """What one whole forward pass gave: ``maps`` as :func:`feature_maps` returns them, the
    model's ``output`` as it returned it (detached, on the model's device), and the ``trace``
    of every module's first call (order and output shapes, see :mod:`.dryrun`)."""

    maps: dict[str, torch.Tensor]
    output: Any
    trace: Trace | None


def whole_pass(
    model: nn.Module,
    x: torch.Tensor,
    layers: LayerRef | Sequence[LayerRef] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> WholePass:
    """:func:`feature_maps`, the model's output and the module trace from ONE forward pass,
    which runs to the end: what an explorer needs to open (maps, predictions, default CAM
    layer) without a second pass."""
    return _record(model, x, layers, progress, whole_forward=True)


def _record(
    model: nn.Module,
    x: torch.Tensor,
    layers: LayerRef | Sequence[LayerRef] | None,
    progress: Callable[[int, int], None] | None,
    whole_forward: bool,
) -> WholePass:
    # A whole pass traces every module anyway: with the default layers and no known order, it
    # hooks every conv and orders them by its own trace instead of a dry run first.
    order_from_pass = layers is None and whole_forward and not order_known(model)
    if order_from_pass:
        convs = all_convs(model)
        selected: dict[str, nn.Module] = dict(convs)
    else:
        selected = dict(conv_layers(model) if layers is None else resolve_layers(model, layers))
    x = prepare_input(model, x)
    report = None if progress is None else (lambda _name, done, total: progress(done, total))
    traced = tracing(model) if whole_forward else contextlib.nullcontext(None)
    cap = LevelCapture(model, selected, stop_early=not whole_forward, on_record=report)
    with borrowed(model), torch.no_grad(), traced as trace, cap:
        output = model(x)
    if order_from_pass and trace is not None:
        called = in_forward_order(convs, remember_order(model, trace))
        return WholePass({name: cap.outputs[name].to("cpu", torch.float32)
                          for name in called if name in cap.outputs}, output, trace)
    maps = {}
    for name, recorded in zip(selected, cap.recorded(), strict=True):
        if isinstance(recorded, dict):  # a dict/list output: one entry per level
            for key, level in recorded.items():
                maps[f"{name}{LEVEL_SEP}{key}"] = level.to("cpu", torch.float32)
        else:
            maps[name] = recorded.to("cpu", torch.float32)
    return WholePass(maps, output if whole_forward else None, trace)
