"""Offline demo material: the bundled ShapesNet model, its image generator, sample photos.

``demo_model()`` returns a small CNN trained on procedurally generated shape images (see
:mod:`cnnviz_widgets.demo.shapes`), so kernels, feature maps and Grad-CAM can be explored
without downloading pretrained weights. ``sample_photo()`` gives two public-domain photos
for use with torchvision's pretrained ImageNet models.
"""

from __future__ import annotations

from cnnviz_widgets.demo.model import DemoModel, ShapesNet, demo_model
from cnnviz_widgets.demo.photos import SAMPLE_PHOTOS, sample_photo
from cnnviz_widgets.demo.shapes import SHAPE_CLASSES, make_shapes

__all__ = [
    "SAMPLE_PHOTOS",
    "SHAPE_CLASSES",
    "DemoModel",
    "ShapesNet",
    "demo_model",
    "make_shapes",
    "sample_photo",
]
