"""ScoreCAM's first convolution by linearity: one matrix product, not one convolution per mask.

ScoreCAM scores ``x * M_k`` for every channel ``k``, with the mask an affine image of a bilinear
upsampling of the channel's ``(h, w)`` map: ``M_k = s_k (U(A_k) - lo_k)``. The upsampling is
linear, ``U(A) = sum_t A[t] T_t`` over the ``h * w`` "tent" images ``T_t = U(e_t)``, and so is a
convolution ``L`` without its bias, hence

    ``L(x * M_k) = s_k * (sum_t A_k[t] L(x * T_t) - lo_k L(x))``.

:class:`LinearStem` convolves the ``h * w + 1`` images ``x * T_t`` and ``x`` once per input
image and then gets each mask's first-layer output as one row of a matrix product with that
basis: ``h * w + 1`` multiply-adds per output value instead of the convolution's
``C_in * k_h * k_w / groups``. For ResNet-18's 7x7 stem and a 7x7 ``layer4`` that is 50 instead
of 147, and the product runs as one large GEMM (measured at 224 px, 16 masks: 23 ms against 50
ms for the convolution, 2 threads). :func:`split_stem` cuts a traced model into that first
convolution and the rest. Results agree with convolving each masked image to float rounding.

:func:`stem_fits` only says where the stem can be tried (fewer multiply-adds, a basis within
:data:`MAX_BASIS_BYTES`); whether it is used is measured on the first masks
(:class:`~.masked.MaskedForward`), since building the basis costs ``h * w + 1`` convolutions
per image and a GEMM's speed against oneDNN's convolution depends on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import fx, nn

MAX_BASIS_BYTES = 256 << 20
"""Largest basis kept (ResNet-18 at 224 px with a 7x7 map: 161 MB); beyond it, convolve."""


def split_stem(model: nn.Module) -> tuple[nn.Conv2d, fx.GraphModule] | None:
    """``(conv, rest)`` when ``model`` is a traced module whose only input feeds only an
    ``nn.Conv2d``: ``model(x) == rest(conv(x))``. ``None`` for any other model."""
    if not isinstance(model, fx.GraphModule):
        return None
    nodes = list(model.graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    if len(inputs) != 1 or len(inputs[0].users) != 1:
        return None
    (image,) = inputs
    (stem,) = image.users
    if stem.op != "call_module" or stem.args != (image,) or stem.kwargs:
        return None
    conv = model.get_submodule(str(stem.target))
    if type(conv) is not nn.Conv2d:
        return None
    graph = fx.Graph()
    env = {stem: graph.placeholder("stem")}
    for node in nodes:
        if node is not image and node is not stem:
            env[node] = graph.node_copy(node, lambda n: env[n])
    if len(graph.nodes) < 3:  # placeholder and output only: nothing after the convolution
        return None
    return conv, fx.GraphModule(model, graph)


def stem_fits(conv: nn.Conv2d, map_size: tuple[int, int], image_size: tuple[int, int]) -> bool:
    """Whether :class:`LinearStem` is worth timing against convolving: fewer multiply-adds per
    output value than the convolution, and a basis within :data:`MAX_BASIS_BYTES`."""
    terms = map_size[0] * map_size[1] + 1
    per_output = conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]
    if terms >= per_output:
        return False
    if isinstance(conv.padding, str):  # "same" / "valid": the output is at most the input's size
        out_h, out_w = image_size
    else:
        out_h, out_w = (
            (size + 2 * pad - dil * (k - 1) - 1) // stride + 1
            for size, pad, dil, k, stride in zip(
                image_size,
                conv.padding,
                conv.dilation,
                conv.kernel_size,
                conv.stride,
                strict=True,
            )
        )
    element = conv.weight.element_size()
    return terms * conv.out_channels * out_h * out_w * element <= MAX_BASIS_BYTES


class LinearStem:
    """``conv(image * M)`` for masks ``M = scale * (upsample(maps) - low)``, by linearity.

    Args:
        conv: the first convolution (any padding mode; its bias is added back).
        image: ``(C, H, W)`` the unmasked input.
        map_size: ``(h, w)`` of the maps the masks are upsampled from.
        upsample: the masks' upsampling, ``(B, h, w) -> (B, H, W)``; it must be linear.
        batch: masks per call expected (sizes the reused output buffer, which grows if a call
            brings more).
    """

    def __init__(
        self,
        conv: nn.Conv2d,
        image: torch.Tensor,
        map_size: tuple[int, int],
        upsample: Callable[[torch.Tensor, tuple[int, int]], torch.Tensor],
        batch: int,
    ) -> None:
        terms = map_size[0] * map_size[1]
        eye = torch.eye(terms, dtype=image.dtype, device=image.device)
        image_h, image_w = image.shape[-2:]
        tents = upsample(eye.view(terms, *map_size), (image_h, image_w))  # (hw, H, W)
        images = torch.cat([image[None] * tents[:, None], image[None]])  # (hw + 1, C, H, W)
        responses = conv._conv_forward(images, conv.weight, None)  # (hw + 1, O, H', W')
        self.channels, self.height, self.width = responses.shape[1:]
        # Rows in channels-last order, so that a product row is a channels-last image.
        self.basis = responses.permute(0, 2, 3, 1).reshape(terms + 1, -1)
        self.bias = conv.bias
        self._out = image.new_empty(batch, self.basis.shape[1])

    def __call__(self, maps: torch.Tensor, low: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """``(B, h, w)`` maps, ``(B,)`` lows and scales -> ``(B, O, H', W')`` (channels-last,
        in a buffer the next call overwrites)."""
        b = maps.shape[0]
        if b > self._out.shape[0]:
            self._out = self._out.new_empty(b, self.basis.shape[1])
        coef = torch.cat([maps.flatten(1) * scale[:, None], (-low * scale)[:, None]], dim=1)
        out = torch.mm(coef.to(self.basis.dtype), self.basis, out=self._out[:b])
        out = out.view(b, self.height, self.width, self.channels)
        if self.bias is not None:
            out += self.bias
        return out.permute(0, 3, 1, 2)
