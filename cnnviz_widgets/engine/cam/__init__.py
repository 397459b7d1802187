"""The CAM family with pytorch-grad-cam 1.5.x semantics, computed in torch on the model's device.

::

    from cnnviz_widgets.engine.cam import cam, cam_per_layer, available_cam_methods

    maps = cam(model, x, "layer4", "GradCAMPlusPlus", target=281)   # (N, H, W) in [0, 1]
    per_block = cam_per_layer(model, x)                              # one forward + backward

Modules: :mod:`.pipeline` (capture, gradients, rectify), :mod:`.scaling` (normalise and
resize), :mod:`.projection` (principal components, sign rule), :mod:`.augment` (aug_smooth),
one module per method group (:mod:`.gradient`, :mod:`.elementwise`, :mod:`.eigen`,
:mod:`.fem`, :mod:`.score`, :mod:`.ablation`, :mod:`.fullgrad`), :mod:`.registry` (names).
"""

from __future__ import annotations

from .api import cam, cam_per_layer, default_cam_layers
from .base import CamMethod
from .errors import CamMethodError, LayerShapeError, NoGradientPathError
from .multi import cam_per_target
from .registry import CAM_METHODS, available_cam_methods

__all__ = [
    "CAM_METHODS",
    "CamMethod",
    "CamMethodError",
    "LayerShapeError",
    "NoGradientPathError",
    "available_cam_methods",
    "cam",
    "cam_per_layer",
    "cam_per_target",
    "default_cam_layers",
]
