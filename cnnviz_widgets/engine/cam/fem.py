"""FEM, the Feature Explanation Method (Fuad et al. 2020)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .base import CamMethod, LayerData, Run


class FEM(CamMethod):
    """Channels weighted by how much of them lies above a k-sigma threshold.

    Per sample and channel: ``t_c = mean(A_c) + k * std(A_c)`` (population std over the
    positions), ``w_c = mean_ij [A_c[i, j] > t_c]`` (the fraction of positions above it), map
    ``sum_c w_c A_c``. Option ``k`` (default 2). Gradient-free and target-free; ``eigen_smooth``
    does not apply (as in the reference).
    """

    name = "FEM"
    uses_gradients = False
    uses_targets = False
    smoothable = False
    defaults: ClassVar[dict[str, Any]] = {"k": 2}

    def weights(self, layer: LayerData, run: Run) -> torch.Tensor:
        acts = layer.activations
        mean = acts.mean(dim=(2, 3), keepdim=True)
        std = acts.std(dim=(2, 3), keepdim=True, correction=0)
        above = acts > mean + self.options["k"] * std
        return above.to(acts.dtype).mean(dim=(2, 3))
