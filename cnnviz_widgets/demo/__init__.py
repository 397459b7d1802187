"""Offline demo material: the bundled ShapesNet model, its image generator, sample photos.

``demo_model()`` returns a small CNN trained on procedurally generated shape images (see
:mod:`cnnviz_widgets.demo.shapes`), so kernels, feature maps and Grad-CAM can be explored
without downloading pretrained weights; ``demo_detector()`` and ``demo_segmenter()`` do the
same for a small torchvision FCOS detector and FCN segmenter trained on scenes of several
shapes (:mod:`cnnviz_widgets.demo.scenes`). ``sample_photo()`` gives two public-domain photos
for use with torchvision's pretrained ImageNet models.
"""

from __future__ import annotations

from cnnviz_widgets.demo.detection import (
    DETECTOR_CAM_LAYER,
    DemoTask,
    demo_detector,
    demo_segmenter,
)
from cnnviz_widgets.demo.model import DemoModel, ShapesNet, demo_model
from cnnviz_widgets.demo.photos import SAMPLE_PHOTOS, sample_photo
from cnnviz_widgets.demo.scenes import SCENE_CLASSES, make_scenes
from cnnviz_widgets.demo.shapes import SHAPE_CLASSES, make_shapes

__all__ = [
    "DETECTOR_CAM_LAYER",
    "SAMPLE_PHOTOS",
    "SCENE_CLASSES",
    "SHAPE_CLASSES",
    "DemoModel",
    "DemoTask",
    "ShapesNet",
    "demo_detector",
    "demo_model",
    "demo_segmenter",
    "make_scenes",
    "make_shapes",
    "sample_photo",
]
