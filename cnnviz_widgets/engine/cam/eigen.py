"""Principal-component maps: EigenCAM, EigenGradCAM and KPCA_CAM.

The raw map is a projection of the ``(C, h, w)`` stack onto its first (kernel) principal
component (see :mod:`.projection` for the centring and the sign rule); ``eigen_smooth`` does not
change these methods (the reference ignores it too).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .base import CamMethod, LayerData, Run
from .errors import CamMethodError
from .projection import KERNELS, first_component, kernel_component


class EigenCAM(CamMethod):
    """Muhammad & Yeasin 2020: first principal component of the activations ``A``.

    Gradient-free and target-free: ``target`` is not used, and the forward pass stops at the
    layer.
    """

    name = "EigenCAM"
    uses_gradients = False
    uses_targets = False
    smoothable = False

    def raw_map(self, layer: LayerData, run: Run) -> torch.Tensor:
        return first_component(layer.activations)


class EigenGradCAM(CamMethod):
    """First principal component of ``G * A`` (gradient x activation, per channel)."""

    name = "EigenGradCAM"
    smoothable = False

    def raw_map(self, layer: LayerData, run: Run) -> torch.Tensor:
        return first_component(layer.required_gradients * layer.activations)


class KPCA_CAM(CamMethod):
    """Karmani et al. 2024: first kernel principal component of the activations.

    Options: ``kernel`` (``"sigmoid"`` as the reference; also ``"linear"``, ``"poly"``,
    ``"rbf"``, ``"cosine"``) and ``gamma`` (``None`` = 1 / channels). Gradient-free and
    target-free. The sign is scikit-learn's deterministic one, so it matches the reference
    exactly rather than up to sign.
    """

    name = "KPCA_CAM"
    uses_gradients = False
    uses_targets = False
    smoothable = False
    per_layer_cost = True
    defaults: ClassVar[dict[str, Any]] = {"kernel": "sigmoid", "gamma": None}

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        if self.options["kernel"] not in KERNELS:
            raise CamMethodError(
                f"KPCA_CAM kernel {self.options['kernel']!r} is not supported; use one of "
                f"{', '.join(KERNELS)}."
            )

    def raw_map(self, layer: LayerData, run: Run) -> torch.Tensor:
        return kernel_component(
            layer.activations, kernel=self.options["kernel"], gamma=self.options["gamma"]
        )
