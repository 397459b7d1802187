"""Convolution weights as kernels."""

from __future__ import annotations

import torch
from torch import nn

from .layers import LayerRef, conv_layers, resolve_layer


def kernels(model: nn.Module, layer: LayerRef) -> torch.Tensor:
    """The kernels of a Conv2d layer.

    Args:
        model: the network.
        layer: the layer's qualified name (``"features.3"``) or the ``nn.Conv2d`` itself.

    Returns:
        ``(out_channels, in_channels / groups, kh, kw)`` float32 tensor on the CPU, a detached
        copy (changing it does not change the model).

    Raises:
        LayerNotFoundError: unknown name (the message lists close matches).
        TypeError: the layer is not a Conv2d (the message lists the model's conv layers).
    """
    name, module = resolve_layer(model, layer)
    if not isinstance(module, nn.Conv2d):
        convs = list(conv_layers(model))
        shown = ", ".join(repr(n) for n in convs[:8]) + (" ..." if len(convs) > 8 else "")
        raise TypeError(
            f"Layer {name!r} is a {type(module).__name__}, not a Conv2d, so it has no kernels. "
            f"Conv2d layers of this model: {shown}."
        )
    return module.weight.detach().to("cpu", torch.float32, copy=True)
