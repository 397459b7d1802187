"""Winograd F(4x4, 3x3) convolution for the CPU inference copy (Lavin & Gray, CVPR 2016).

A 3x3, stride-1, padding-1 convolution computes each 4x4 output tile from a 6x6 input tile
with 36 multiplications per input/output channel pair instead of 144:
``Y = A^T [ (G g G^T) * (B^T d B) ] A``. Summed over input channels, the 36 element-wise
products become 36 matrix products ``(tiles, C_in) @ (C_in, C_out)``, which BLAS runs near peak.
Whether that beats oneDNN's direct convolution depends on the CPU and on the layer: on an
AVX2 machine it made the wide 3x3 layers of a ResNet 1.4-1.9x faster (ResNet-18 at 224 px,
batch 16: ``128@28`` 24 -> 16 ms, ``512@7`` 26 -> 13 ms), while narrow layers and large maps
lost (VGG at 224 px: ``128@112`` 356 -> 675 ms), where the transforms' memory traffic dominates;
on tiny maps (AlexNet at 64 px: ``384@3``) it loses several times over, because a 3x3 map pads
to one 6x6 tile. So no threshold decides: :class:`WinogradConv2d` times itself against the
direct convolution on its first calls for each input shape (both run on the same input:
one untimed warm-up call and :data:`~.trial.RUNS` timed ones, :class:`~.trial.Trial`) and keeps
the faster, the direct one unless Winograd is faster by :data:`MARGIN` (the direct
convolution is the more exact).

The transforms use the interpolation points ``0, 1, -1, 2, -2, inf``. Results agree with the
direct convolution to a few ulp of the output's scale (about 1e-5 relative in float32, against
1e-6 for the direct convolution), measured in ``tests/test_winograd.py``.

The module is for inference only (``torch.inference_mode`` / ``no_grad``): it writes into
preallocated tensors and is not differentiable.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .trial import Trial

TILE = 4
"""Output tile side ``m`` of F(m x m, 3 x 3)."""

ALPHA = TILE + 2
"""Input tile side ``m + r - 1``."""

MIN_CHANNELS = 32
"""Narrowest convolution tried (input and output channels): below it the 36 products
``(tiles, C_in) @ (C_in, C_out)`` are too thin for BLAS to win, so the trial is not worth
its cost."""

MARGIN = 0.9
"""Winograd is kept only if its best time is below this fraction of the direct one's."""

CHUNK_PIXELS = 4096
"""Input pixels (images x ``H * W``) transformed at once. The transforms' buffers grow with the
batch and fall out of the cache: ResNet-18 at 224 px, batch 32, one thread, ``128@28``
took 245 ms in one piece against 168 ms in pieces of 8 images (6,272 pixels) and 191 ms for
oneDNN's direct convolution; ``512@7`` 106 ms in one piece (1,568 pixels) against 198 ms."""

Mode = Literal["auto", "winograd", "direct"]

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
    and the convolution itself, ``direct``. ``forward`` maps ``(N, C_in, H, W)`` to
    ``(N, C_out, H, W)``; any ``H, W >= 1`` (edges are padded to whole tiles and cropped).

    Attributes:
        mode: ``"auto"`` (default: on the first calls for each input shape ``(C_in, H, W)``,
            run both paths and time them (:class:`~.trial.Trial`), then run the faster),
            ``"winograd"`` or ``"direct"`` (always that path).
        trials: ``{(C_in, H, W): Trial}``, whose ``choice`` is the decision for that shape.
    """

    u: torch.Tensor  # buffers, registered in __init__
    bias: torch.Tensor

    def __init__(self, conv: nn.Conv2d, mode: Mode = "auto") -> None:
        super().__init__()
        if not winograd_eligible(conv, min_channels=1):
            raise ValueError(f"WinogradConv2d needs a 3x3/stride-1/padding-1 Conv2d; got {conv}.")
        self.register_buffer("u", filter_transform(conv.weight.detach()))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(conv.weight[:, 0, 0, 0])
        self.register_buffer("bias", bias.detach().clone())
        self.direct = conv
        self.mode: Mode = mode
        self.trials: dict[tuple[int, ...], Trial[torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode != "auto":
            return self.winograd(x) if self.mode == "winograd" else self.direct(x)
        key = tuple(x.shape[1:])
        trial = self.trials.get(key)
        if trial is None:
            trial = self.trials[key] = Trial(("direct", "winograd"), margin=MARGIN)
        paths = {"direct": lambda: self.direct(x), "winograd": lambda: self.winograd(x)}
        return trial.run(paths, x.shape[0])

    def uses_winograd(self, shape: tuple[int, ...]) -> bool | None:
        """Whether inputs of ``shape`` ``(C_in, H, W)`` run as Winograd (``None``: undecided)."""
        if self.mode != "auto":
            return self.mode == "winograd"
        trial = self.trials.get(shape)
        return None if trial is None or trial.choice is None else trial.choice == "winograd"

    def winograd(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of ``x`` by the Winograd transforms, :data:`CHUNK_PIXELS` input
        pixels (``N * H * W``) at a time."""
        per = max(1, CHUNK_PIXELS // max(1, x.shape[-2] * x.shape[-1]))
        if x.shape[0] <= per:
            return self._winograd(x)
        return torch.cat([self._winograd(part) for part in x.split(per)])

    def _winograd(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
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
    :class:`WinogradConv2d` (``"auto"`` mode); returns how many were replaced. Only for a copy
    the caller owns."""
    replaced = 0
    for name, child in list(module.named_modules()):
        if name and winograd_eligible(child, min_channels):
            parent, _, leaf = name.rpartition(".")
            setattr(module.get_submodule(parent), leaf, WinogradConv2d(child))
            replaced += 1
    return replaced


def set_winograd_mode(module: nn.Module, mode: Mode) -> None:
    """Set the :attr:`WinogradConv2d.mode` of every Winograd convolution in ``module``."""
    for child in module.modules():
        if isinstance(child, WinogradConv2d):
            child.mode = mode
