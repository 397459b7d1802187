"""Channel weights from gradients: GradCAM, GradCAM++ and XGradCAM.

Notation (per sample): ``A_c`` the layer's channel ``c`` ``(h, w)`` map, ``G_c = d y / d A_c``
the gradient of the target score ``y``; sums run over the spatial positions ``(i, j)``.
The map is ``sum_c w_c A_c`` (then ReLU and normalisation).
"""

from __future__ import annotations

import torch

from .base import CamMethod, LayerData, Run


class GradCAM(CamMethod):
    """Selvaraju et al. 2017: ``w_c = mean_ij G_c[i, j]`` (global-average-pooled gradient)."""

    name = "GradCAM"

    def weights(self, layer: LayerData, run: Run) -> torch.Tensor:
        return layer.required_gradients.mean(dim=(2, 3))


class GradCAMPlusPlus(CamMethod):
    """Chattopadhay et al. 2018 (eq. 19), with the reference's closed form and eps.

    ``alpha_c[i, j] = G^2 / (2 G^2 + (sum_ij A_c) G^3 + 1e-6)``, set to 0 where ``G == 0``;
    ``w_c = sum_ij relu(G_c[i, j]) * alpha_c[i, j]``.
    """

    name = "GradCAMPlusPlus"
    EPS = 1e-6

    def weights(self, layer: LayerData, run: Run) -> torch.Tensor:
        grads, acts = layer.required_gradients, layer.activations
        g2 = grads * grads
        g3 = g2 * grads
        sum_acts = acts.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + sum_acts * g3 + self.EPS)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        return (grads.clamp_min(0) * alpha).sum(dim=(2, 3))


class XGradCAM(CamMethod):
    """Fu et al. 2020: ``w_c = sum_ij G_c[i, j] A_c[i, j] / (sum_ij A_c + 1e-7)``."""

    name = "XGradCAM"
    EPS = 1e-7

    def weights(self, layer: LayerData, run: Run) -> torch.Tensor:
        grads, acts = layer.required_gradients, layer.activations
        sum_acts = acts.sum(dim=(2, 3), keepdim=True)
        return (grads * acts / (sum_acts + self.EPS)).sum(dim=(2, 3))
