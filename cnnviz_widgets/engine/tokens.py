"""Token layers as CAM grids: vision transformers without a hand-written ``reshape=``.

A CAM needs an ``(N, C, h, w)`` feature map. Transformer layers give other layouts:

* ViT (torchvision ``VisionTransformer``, timm ``VisionTransformer``): a token sequence
  ``(N, P + h*w, D)`` with ``P`` prefix tokens (the class token, a distillation token, register
  tokens) before the ``h x w`` patch tokens in row-major order.
* Swin (torchvision ``SwinTransformer``): channels-last grids ``(N, h, w, C)`` inside
  ``features`` and ``norm``, permuted to ``(N, C, h, w)`` only before pooling.

:class:`AutoReshape` turns such outputs into ``(N, C, h, w)`` when the layout is unambiguous,
as pytorch-grad-cam's documented ``reshape_transform`` functions do by hand (drop the prefix
tokens, fold the rest into the grid, move channels first). The rules:

* 4-D output of a model that is not channels-last: already ``(N, C, h, w)``, unchanged.
* 4-D output of a channels-last model (one whose top-level children include a
  ``torchvision.ops.misc.Permute([0, 3, 1, 2])``, as torchvision's Swin): ``(N, h, w, C)`` when
  ``(h, w)`` is a grid of the input and ``(w, C)`` is not; the reverse keeps it as it is; both
  or neither is ambiguous.
* 3-D output ``(N, L, D)``: ``P`` prefix tokens, from the model (``num_prefix_tokens``, or one
  per ``class_token`` / ``cls_token`` / ``dist_token`` attribute); unknown ``P`` is inferred
  when exactly one of ``P = 0`` and ``P = 1`` leaves a grid of the input. ``L - P`` tokens form
  the grid ``(h, w)`` of the input (see :func:`token_grid`).
* anything else, or an ambiguous case: :class:`TokenLayoutError` naming the layer(s), the shape
  and the fix (``reshape=tokens_to_grid(...)`` or ``reshape=channels_last_to_first``).

:func:`token_default_layer` gives the default CAM layer of such models: the first norm of the
last transformer block (``ln_1`` for torchvision ViT, ``norm1`` for Swin and timm), the layer
pytorch-grad-cam recommends (``model.blocks[-1].norm1``). In a ViT the head reads the class
token only, so the last block's *output* patch tokens get no gradient (a GradCAM there is
zero); the last block's attention input is the latest place where patch tokens still reach the
class token.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


class LayerShapeError(ValueError):
    """A target layer whose output is not a 4-D ``(N, C, H, W)`` feature map."""


TOKEN_NORMS = ("ln_1", "norm1")
"""Names (last part) of the first norm in a transformer block: torchvision ViT, Swin, timm."""

PREFIX_ATTRS = ("class_token", "cls_token", "dist_token")


class TokenLayoutError(LayerShapeError):
    """A layer's output whose layout cannot be turned into a grid without help."""


def token_grid(count: int, size: tuple[int, int]) -> tuple[int, int] | None:
    """The ``(h, w)`` grid of ``count`` tokens for an input of ``size = (H, W)``, or ``None``.

    A grid fits when ``h * w == count`` and one integer stride ``s`` maps the input onto it
    (``h`` is ``H // s`` or ``ceil(H / s)``, and the same ``s`` gives ``w`` from ``W``), as a
    patch embedding or a padded patch merging does. ``None`` unless exactly one grid fits.
    """
    if count < 1:
        return None
    height, width = size
    found = []
    for h in range(1, count + 1):
        if count % h:
            continue
        w = count // h
        for s in range(1, max(height, width) + 1):
            if h in (height // s, -(-height // s)) and w in (width // s, -(-width // s)):
                found.append((h, w))
                break
    return found[0] if len(found) == 1 else None


def prefix_tokens(model: nn.Module) -> int | None:
    """Tokens before the patch tokens, as the model declares them; ``None`` if it does not.

    timm's ``num_prefix_tokens`` first, else one per ``class_token``/``cls_token``/
    ``dist_token`` tensor attribute of the model (torchvision's ViT has ``class_token``).
    """
    declared = getattr(model, "num_prefix_tokens", None)
    if isinstance(declared, int) and not isinstance(declared, bool):
        return declared
    found = [a for a in PREFIX_ATTRS if isinstance(getattr(model, a, None), torch.Tensor)]
    return len(found) if found else None


def channels_last_model(model: nn.Module) -> bool:
    """Whether ``model`` works channels-last and permutes to ``(N, C, H, W)`` at the end.

    True when a top-level child is ``torchvision.ops.misc.Permute([0, 3, 1, 2])`` (torchvision's
    Swin); ConvNeXt's permutes live inside its blocks, whose outputs are channels-first.
    """
    try:
        from torchvision.ops.misc import Permute
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return False
    return any(
        isinstance(child, Permute) and list(child.dims) == [0, 3, 1, 2]
        for child in model.children()
    )


def tokens_to_grid(
    prefix: int = 1, grid: tuple[int, int] | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A ``reshape=`` function for ``(N, prefix + h*w, D)`` tokens -> ``(N, D, h, w)``.

    Args:
        prefix: tokens before the patch tokens (class, distillation, register tokens).
        grid: ``(h, w)``; ``None``: square, ``h = w = sqrt(L - prefix)``.
    """

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        n, length, dim = tokens.shape
        h, w = grid if grid is not None else (math.isqrt(length - prefix),) * 2
        return tokens[:, prefix:, :].reshape(n, h, w, dim).permute(0, 3, 1, 2)

    return reshape


def channels_last_to_first(tensor: torch.Tensor) -> torch.Tensor:
    """A ``reshape=`` function for ``(N, h, w, C)`` grids (torchvision Swin) -> ``(N, C, h, w)``."""
    return tensor.permute(0, 3, 1, 2)


@dataclass
class AutoReshape:
    """The ``reshape=`` used when none is given (see the module docstring for the rules).

    Attributes:
        layers: the target layers' names (for error messages).
        size: the input's ``(H, W)``.
        prefix: the model's declared prefix tokens (:func:`prefix_tokens`), or ``None``.
        channels_last: :func:`channels_last_model` of the model.
        changed: whether any tensor was actually reshaped (a pass-through for CNNs).
    """

    layers: tuple[str, ...]
    size: tuple[int, int]
    prefix: int | None
    channels_last: bool
    changed: bool = False

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` from a token or channels-last output (unchanged if already so)."""
        if tensor.ndim == 4:
            return self._grid(tensor)
        if tensor.ndim == 3:
            return self._tokens(tensor)
        raise LayerShapeError(
            f"Layer {self._names()} gives {tuple(tensor.shape)}, but CAM methods need a 4-D "
            "(N, C, H, W) feature map (or a token sequence (N, L, D) to fold into a grid). Pick "
            "a convolutional layer or block (for example the last one before global pooling), "
            "or pass reshape= a function that turns this output into (N, C, H, W)."
        )

    def _names(self) -> str:
        return "/".join(repr(n) for n in self.layers)

    def _grid(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.channels_last:
            return tensor
        _, a, b, c = tensor.shape
        nhwc = token_grid(a * b, self.size) == (a, b)
        nchw = token_grid(b * c, self.size) == (b, c)
        if nhwc and not nchw:
            self.changed = True
            return channels_last_to_first(tensor)
        if nchw and not nhwc:
            return tensor
        raise TokenLayoutError(
            f"Layer {self._names()} of a channels-last model gives {tuple(tensor.shape)}, "
            f"which could be (N, H, W, C) or (N, C, H, W) for an input of {self.size[0]} x "
            f"{self.size[1]} px. Say which: reshape=channels_last_to_first for (N, H, W, C), "
            "or reshape=lambda t: t for (N, C, H, W) (both in cnnviz_widgets.engine.cam.tokens)."
        )

    def _tokens(self, tensor: torch.Tensor) -> torch.Tensor:
        _, length, dim = tensor.shape
        options = [self.prefix] if self.prefix is not None else [0, 1]
        fits = [(p, g) for p in options if (g := token_grid(length - p, self.size)) is not None]
        if len(fits) != 1:
            why = (
                f"{length} tokens minus the model's {self.prefix} prefix token(s) form no grid"
                if self.prefix is not None
                else f"{length} tokens form no grid, with or without one class token"
                if not fits
                else f"{length} tokens fit a grid both with and without a class token"
            )
            raise TokenLayoutError(
                f"Layer {self._names()} gives a token sequence {tuple(tensor.shape)} (N, L, D) "
                f"and {why} for an input of {self.size[0]} x {self.size[1]} px, so it cannot "
                "be folded into a grid automatically. Pass reshape=tokens_to_grid(prefix=P, "
                "grid=(h, w)) (from cnnviz_widgets.engine.cam.tokens) with P the class/"
                "register tokens before the h*w patch tokens, or your own function to "
                "(N, C, H, W)."
            )
        ((prefix, (h, w)),) = fits
        self.changed = True
        n = tensor.shape[0]
        return tensor[:, prefix:, :].reshape(n, h, w, dim).permute(0, 3, 1, 2)


def auto_reshape(model: nn.Module, layers: Sequence[str], size: tuple[int, int]) -> AutoReshape:
    """The automatic ``reshape=`` for ``layers`` of ``model`` on inputs of ``size = (H, W)``."""
    return AutoReshape(
        tuple(layers), (int(size[0]), int(size[1])), prefix_tokens(model),
        channels_last_model(model),
    )


def token_default_layer(
    model: nn.Module, call_order: Sequence[str], output_shapes: dict[str, tuple[int, ...]]
) -> str | None:
    """The default CAM layer of a transformer, or ``None`` for other models.

    The last module to run whose name ends in ``ln_1`` or ``norm1`` (the first norm of a
    transformer block) and whose output is a token sequence ``(N, L, D)``, or a channels-last
    grid in a channels-last model: ``encoder.layers.encoder_layer_11.ln_1`` for torchvision's
    ``vit_b_16``, ``features.7.1.norm1`` for ``swin_t``, ``blocks.11.norm1`` for timm's ViT.
    """
    channels_last = channels_last_model(model)
    best = None
    for name in call_order:
        shape = output_shapes.get(name)
        if name.rsplit(".", 1)[-1] not in TOKEN_NORMS or shape is None:
            continue
        if len(shape) == 3 or (len(shape) == 4 and channels_last):
            best = name
    return best
