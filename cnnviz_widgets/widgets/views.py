"""Widgets for one view each: a layer's kernels, a layer's feature maps."""

from __future__ import annotations

import torch
from torch import nn

from ..engine import feature_maps, kernels, load_image, resolve_layer
from ..engine.inputs import LoadedImage
from .base import MapGridWidget
from .serialize import map_stack


class FeatureMapView(MapGridWidget):
    """Every channel of one layer's output for one image, as a hover-to-zoom grid.

    Args:
        model: the network (borrowed, left as it was).
        x: model-ready input ``(1, C, H, W)``, or anything :func:`load_image` accepts.
        layer: layer name or module.
        cmap: matplotlib colormap name.
    """

    def __init__(
        self, model: nn.Module, x: torch.Tensor | object, layer: str | nn.Module, *, cmap="viridis"
    ):
        super().__init__(cmap=cmap)
        if not isinstance(x, torch.Tensor):
            x = x.tensor if isinstance(x, LoadedImage) else load_image(x).tensor
        name, _ = resolve_layer(model, layer)
        maps = feature_maps(model, x[:1], [name])[name][0]
        self.maps = map_stack(maps, labels=[f"channel {c}" for c in range(maps.shape[0])])
        self.title = f"{name} — {maps.shape[0]} × {maps.shape[1]} × {maps.shape[2]}"


class KernelView(MapGridWidget):
    """The 2-D kernels of one filter of a conv layer, diverging colours centred on zero."""

    def __init__(
        self, model: nn.Module, layer: str | nn.Module, out_channel: int = 0, *, cmap="bwr"
    ):
        super().__init__(cmap=cmap)
        name, _ = resolve_layer(model, layer)
        k = kernels(model, name)
        if not 0 <= out_channel < k.shape[0]:
            raise IndexError(f"{name} has {k.shape[0]} filters; use 0..{k.shape[0] - 1}.")
        self.symmetric = True
        self.color_scale = "layer"
        self.maps = map_stack(
            k[out_channel], labels=[f"input channel {c}" for c in range(k.shape[1])]
        )
        self.title = (
            f"{name} — filter {out_channel}: {k.shape[1]} kernels of {k.shape[2]}×{k.shape[3]}"
        )
