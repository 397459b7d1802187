"""Maps from the elementwise product of gradients and activations: HiResCAM, LayerCAM and
GradCAMElementWise. Per sample, with ``A_c`` and ``G_c = d y / d A_c`` as ``(h, w)`` maps, the
raw map is ``sum_c`` of the contribution below (or its first principal component with
``eigen_smooth``)."""

from __future__ import annotations

import torch

from .base import CamMethod, LayerData, Run


class HiResCAM(CamMethod):
    """Draelos & Carin 2020: contribution ``G_c * A_c``."""

    name = "HiResCAM"

    def weighted(self, layer: LayerData, run: Run) -> torch.Tensor:
        return layer.required_gradients * layer.activations


class LayerCAM(CamMethod):
    """Jiang et al. 2021: contribution ``relu(G_c) * A_c``."""

    name = "LayerCAM"

    def weighted(self, layer: LayerData, run: Run) -> torch.Tensor:
        return layer.required_gradients.clamp_min(0) * layer.activations


class GradCAMElementWise(CamMethod):
    """pytorch-grad-cam's variant: contribution ``relu(G_c * A_c)``."""

    name = "GradCAMElementWise"

    def weighted(self, layer: LayerData, run: Run) -> torch.Tensor:
        return (layer.required_gradients * layer.activations).clamp_min(0)
