"""How one value of a convolution's output is made: a dot product of a kernel and a patch.

:func:`unit_arithmetic` takes one unit of a ``Conv2d`` layer (output channel, row, column) for
one image and returns the input patch the kernel sees (every input channel of its group, zero
padding included), the kernel, their elementwise products, the bias, and the value they add up
to, next to the value the layer really output. A student sees that a feature map is the same
dot product repeated at every position; the two values agree to float tolerance (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .borrow import borrowed
from .inputs import prepare_input
from .layers import LayerRef, resolve_layer


class UnitError(ValueError):
    """A unit that is not a convolution's (not a Conv2d, or outside its output)."""


@dataclass(frozen=True)
class UnitArithmetic:
    """One conv output value as a sum. Arrays are float32 CPU tensors.

    Attributes:
        layer, channel, row, col: the unit (row and column in the layer's output grid).
        patch: ``(C_in / groups, kh, kw)`` the input values under the kernel (padding as 0, or
            as the layer's padding mode fills it).
        kernel: ``(C_in / groups, kh, kw)`` the weights of output channel ``channel``.
        products: ``patch * kernel``.
        bias: the channel's bias (0 without one).
        value: ``products.sum() + bias``.
        output: what the layer output at that position (equal to ``value``).
        input_channels: the indices of the input channels the patch comes from.
        box: ``(y0, x0, y1, x1)`` of the patch in the layer's input, padding included
            (coordinates may be negative or beyond the input where the patch covers padding).
    """

    layer: str
    channel: int
    row: int
    col: int
    patch: torch.Tensor
    kernel: torch.Tensor
    products: torch.Tensor
    bias: float
    value: float
    output: float
    input_channels: list[int]
    box: tuple[int, int, int, int]


def unit_arithmetic(
    model: nn.Module, x: torch.Tensor, layer: LayerRef, channel: int, row: int, col: int
) -> UnitArithmetic:
    """The sum behind output ``(channel, row, col)`` of the Conv2d ``layer`` for the first image
    of ``x`` ``(N, C, H, W)``; one forward pass, the model left as it was.

    Raises:
        UnitError: ``layer`` is not a Conv2d, or the unit is outside its output.
        LayerNotFoundError, ImageInputError: as the other engine functions.
    """
    name, module = resolve_layer(model, layer)
    if not isinstance(module, nn.Conv2d):
        raise UnitError(
            f"{name} is a {type(module).__name__}; the arithmetic of a unit is shown for "
            "Conv2d layers. Pick a convolution layer."
        )
    x = prepare_input(model, x)[:1]
    seen: dict[str, torch.Tensor] = {}

    def hook(_module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if "input" not in seen:
            # copies: an in-place op later in the forward (ReLU(inplace=True) right after the
            # conv) would otherwise change the values kept here
            seen["input"], seen["output"] = inputs[0].detach().clone(), output.detach().clone()

    with borrowed(model), torch.no_grad():
        handle = module.register_forward_hook(hook)
        try:
            model(x)
        finally:
            handle.remove()
    out = seen["output"][0]
    c_out, h_out, w_out = out.shape
    if not (0 <= channel < c_out and 0 <= row < h_out and 0 <= col < w_out):
        raise UnitError(
            f"unit (channel {channel}, row {row}, col {col}) is outside {name}'s output of "
            f"{c_out} x {h_out} x {w_out}."
        )
    kh, kw = module.kernel_size
    sh, sw = module.stride
    dh, dw = module.dilation
    ph, pw = _padding(module, seen["input"].shape[-2:])
    mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
    padded = F.pad(seen["input"][0:1], (pw, pw, ph, ph), mode=mode)[0]
    per_group = module.in_channels // module.groups
    group = channel // (module.out_channels // module.groups)
    channels = list(range(group * per_group, (group + 1) * per_group))
    y0, x0 = row * sh, col * sw
    patch = padded[channels][:, y0: y0 + dh * (kh - 1) + 1: dh, x0: x0 + dw * (kw - 1) + 1: dw]
    kernel = module.weight.detach()[channel]
    products = patch.double() * kernel.double()
    bias = float(module.bias.detach()[channel]) if module.bias is not None else 0.0
    value = float(products.sum()) + bias
    return UnitArithmetic(
        layer=name, channel=channel, row=row, col=col,
        patch=patch.float().cpu(), kernel=kernel.float().cpu(), products=products.float().cpu(),
        bias=bias, value=value, output=float(out[channel, row, col]),
        input_channels=channels,
        box=(y0 - ph, x0 - pw, y0 - ph + dh * (kh - 1) + 1, x0 - pw + dw * (kw - 1) + 1),
    )


def _padding(module: nn.Conv2d, size: torch.Size) -> tuple[int, int]:
    """The (top, left) padding of ``module`` in pixels (``"same"`` and ``"valid"`` resolved)."""
    if module.padding == "valid":
        return 0, 0
    if module.padding == "same":
        total = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size, strict=True)]
        if any(t % 2 for t in total):
            raise UnitError(
                f"padding='same' with an even kernel pads unevenly; the arithmetic view takes "
                f"explicit padding (kernel {module.kernel_size})."
            )
        return total[0] // 2, total[1] // 2
    return int(module.padding[0]), int(module.padding[1])
