"""Winograd F(4x4, 3x3) convolution for the CPU inference copy (Lavin & Gray, CVPR 2016).

A 3x3, stride-1, padding-1 convolution computes each 4x4 output tile from a 6x6 input tile
with 36 multiplications per input/output channel pair instead of 144:
``Y = A^T [ (G g G^T) * (B^T d B) ] A``. Summed over input channels, the 36 element-wise
products become 36 matrix products ``(tiles, C_in) @ (C_in, C_out)``, which BLAS runs near peak.
On a CPU without a Winograd kernel in oneDNN (AVX2), this makes the wide 3x3 layers of a
ResNet 1.4-1.9x faster than oneDNN's direct convolution (ResNet-18 at 224 px, batch 16:
``128@28`` 24 -> 16 ms, ``256@14`` 24 -> 15 ms, ``512@7`` 26 -> 13 ms, 2 threads). Where the
tiles are many and the matrix products small, the transforms' memory traffic dominates and it
loses: narrow layers (64 channels; :func:`winograd_eligible` leaves them to oneDNN) and large
feature maps (VGG at 224 px: ``128@112`` 356 -> 675 ms, ``256@56`` 350 -> 421 ms, but
``512@28`` 395 -> 229 ms), so :class:`WinogradConv2d` convolves directly above
:data:`MAX_PIXELS`.

The transforms use the interpolation points ``0, 1, -1, 2, -2, inf``. Results agree with the
direct convolution to a few ulp of the output's scale (about 1e-5 relative in float32, against
1e-6 for the direct convolution), measured in ``tests/test_winograd.py``.

The module is for inference only (``torch.inference_mode`` / ``no_grad``): it writes into
preallocated tensors and is not differentiable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TILE = 4
"""Output tile side ``m`` of F(m x m, 3 x 3)."""

ALPHA = TILE + 2
"""Input tile side ``m + r - 1``."""

MIN_CHANNELS = 128
"""Narrowest convolution replaced (input and output channels); measured on ResNet-18."""

MAX_PIXELS = 32 * 32
"""Largest feature map (``H * W``) run as Winograd; larger ones use the direct convolution
(measured, batch 16: ``128@32`` 49 -> 25 ms, ``256@40`` 166 -> 149 ms, ``128@56`` 89 -> 130 ms)."""

BT = (
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
)
"""Input transform ``B^T`` (6 x 6)."""

G = (
    (1 / 4, 0, 0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0, 0, 1),
)
"""Filter transform ``G`` (6 x 3)."""

AT = (
    (1, 1, 1, 1, 1, 0),
    (0, 1, -1, 2, -2, 0),
    (0, 1, 1, 4, 4, 0),
    (0, 1, -1, 8, -8, 1),
)
"""Output transform ``A^T`` (4 x 6). Its column 1 is all ones, so a bias added to the product
at transform position (1, 1) reaches every output of the tile."""

_BIAS_SLOT = ALPHA + 1
"""Flat index of transform position (1, 1)."""


def input_transform(d: list[torch.Tensor], out: list[torch.Tensor]) -> None:
    """``out[k] = sum_i BT[k][i] * d[i]`` for six equally shaped tensors, with shared terms."""
    d0, d1, d2, d3, d4, d5 = d
    torch.add(d4, d0, alpha=4, out=out[0]).add_(d2, alpha=-5)
    p = torch.add(d4, d2, alpha=-4)
    q = torch.add(d3, d1, alpha=-4)
    torch.add(p, q, out=out[1])
    torch.sub(p, q, out=out[2])
    u = torch.sub(d4, d2)
    v = torch.sub(d3, d1)
    torch.add(u, v, alpha=2, out=out[3])
    torch.add(u, v, alpha=-2, out=out[4])
    torch.add(d5, d1, alpha=4, out=out[5]).add_(d3, alpha=-5)


def output_transform(s: list[torch.Tensor], out: list[torch.Tensor]) -> None:
    """``out[k] = sum_i AT[k][i] * s[i]`` for six equally shaped tensors, with shared terms."""
    s0, s1, s2, s3, s4, s5 = s
    a = s1 + s2
    b = s1 - s2
    c = s3 + s4
    e = s3 - s4
    torch.add(s0, a, out=out[0]).add_(c)
    torch.add(b, e, alpha=2, out=out[1])
    torch.add(a, c, alpha=4, out=out[2])
    torch.add(b, e, alpha=8, out=out[3]).add_(s5)


def filter_transform(weight: torch.Tensor) -> torch.Tensor:
    """``U[a, b] = (G g G^T)[a, b]`` for every filter ``g``: ``(C_out, C_in, 3, 3)`` ->
    ``(36, C_in, C_out)``, as one product ``kron(G, G) @ w`` with ``w`` laid out
    ``(9, C_in * C_out)``, which lands in the result's layout without transposing it. Its
    rounding (nine terms, ~1e-7 relative in float32) is well below the transform's own."""
    c_out, c_in = weight.shape[:2]
    g = torch.tensor(G, dtype=weight.dtype, device=weight.device)
    taps = weight.permute(2, 3, 1, 0).reshape(9, c_in * c_out)
    return (torch.kron(g, g) @ taps).view(ALPHA * ALPHA, c_in, c_out)


def winograd_eligible(conv: nn.Module, min_channels: int = MIN_CHANNELS) -> bool:
    """Whether ``conv`` is a float32 3x3, stride-1, padding-1 (zeros), ungrouped, undilated
    ``nn.Conv2d`` with at least ``min_channels`` input and output channels."""
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and conv.weight.dtype == torch.float32
        and min(conv.in_channels, conv.out_channels) >= min_channels
    )


class WinogradConv2d(nn.Module):
    """Inference-only stand-in for an eligible ``nn.Conv2d`` (see :func:`winograd_eligible`).

    Holds the transformed filters ``U`` of shape ``(36, C_in, C_out)``, the bias ``(C_out,)``
    and the convolution itself, ``direct``, which it runs for maps larger than
    :data:`MAX_PIXELS`. ``forward`` maps ``(N, C_in, H, W)`` to ``(N, C_out, H, W)``; any
    ``H, W >= 1`` (edges are padded to whole tiles and cropped).
    """

    u: torch.Tensor  # buffers, registered in __init__
    bias: torch.Tensor

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not winograd_eligible(conv, min_channels=1):
            raise ValueError(f"WinogradConv2d needs a 3x3/stride-1/padding-1 Conv2d; got {conv}.")
        self.register_buffer("u", filter_transform(conv.weight.detach()))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(conv.weight[:, 0, 0, 0])
        self.register_buffer("bias", bias.detach().clone())
        self.direct = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if h * w > MAX_PIXELS:
            return self.direct(x)
        rows, cols = -(-h // TILE), -(-w // TILE)  # tiles down and across
        # (N, H + pad, W + pad, C): zero padding 1 plus whatever completes the last tile.
        image = F.pad(x, (1, 1 + TILE * cols - w, 1, 1 + TILE * rows - h)).permute(0, 2, 3, 1)
        image = image.contiguous()
        row_t = x.new_empty(ALPHA, n, rows, image.shape[2], c)
        input_transform(
            [image[:, i : i + TILE * rows : TILE] for i in range(ALPHA)],
            [row_t[k] for k in range(ALPHA)],
        )
        v = x.new_empty(ALPHA, ALPHA, n, rows, cols, c)
        input_transform(
            [row_t[:, :, :, j : j + TILE * cols : TILE] for j in range(ALPHA)],
            [v[:, k] for k in range(ALPHA)],
        )
        m = torch.bmm(v.view(ALPHA * ALPHA, n * rows * cols, c), self.u)
        m[_BIAS_SLOT] += self.bias
        out_c = m.shape[-1]
        m = m.view(ALPHA, ALPHA, n, rows, cols, out_c)
        half = x.new_empty(TILE, ALPHA, n, rows, cols, out_c)
        output_transform([m[a] for a in range(ALPHA)], [half[p] for p in range(TILE)])
        out = x.new_empty(n, TILE * rows, TILE * cols, out_c)
        tiles = out.view(n, rows, TILE, cols, TILE, out_c)
        output_transform(
            [half[:, k].permute(1, 2, 0, 3, 4) for k in range(ALPHA)],
            [tiles[:, :, :, :, q] for q in range(TILE)],
        )
        return out.permute(0, 3, 1, 2)[:, :, :h, :w]


def use_winograd(module: nn.Module, min_channels: int = MIN_CHANNELS) -> int:
    """Replace, in place, every eligible ``nn.Conv2d`` in ``module`` by a
    :class:`WinogradConv2d`; returns how many were replaced. Only for a copy the caller owns."""
    replaced = 0
    for name, child in list(module.named_modules()):
        if name and winograd_eligible(child, min_channels):
            parent, _, leaf = name.rpartition(".")
            setattr(module.get_submodule(parent), leaf, WinogradConv2d(child))
            replaced += 1
    return replaced
