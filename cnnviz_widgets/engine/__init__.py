"""The torch engine: model in, tensors out. Knows nothing of widgets or colour.

The CAM family lives in the subpackage :mod:`cnnviz_widgets.engine.cam` (its functions are not
re-exported here, so that ``engine.cam`` stays the subpackage); the package top level exports
``cam``, ``cam_per_layer`` and ``available_cam_methods``.
"""

from __future__ import annotations

from .actmax import activation_max
from .borrow import borrowed
from .capture import Capture, LayerNotExecutedError, LayerOutputError
from .detection import Detections, detections, normalize_in_boxes, segmentation
from .dryrun import default_layer
from .examples import TopExamples, top_examples
from .features import feature_maps
from .inputs import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageInputError,
    LoadedImage,
    denormalize,
    load_image,
    normalize,
    prepare_input,
)
from .kernels import kernels
from .layers import LayerNotFoundError, NoConvLayersError, conv_layers, resolve_layer
from .metrics import (
    average_drop,
    deletion_auc,
    evaluate,
    insertion_auc,
    pointing_game,
    road,
    sanity_check,
)
from .models import NamedModel, build_model, check_model, load_pretrained
from .predictions import Prediction, class_name, class_probabilities, top_predictions
from .receptive import ReceptiveField, receptive_fields
from .regions import BoxTarget, RegionTarget
from .saliency import available_saliency_methods, saliency, saliency_map
from .targets import OutputSelectionError, TargetError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BoxTarget",
    "Capture",
    "Detections",
    "ImageInputError",
    "LayerNotExecutedError",
    "LayerNotFoundError",
    "LayerOutputError",
    "LoadedImage",
    "NamedModel",
    "NoConvLayersError",
    "OutputSelectionError",
    "Prediction",
    "ReceptiveField",
    "RegionTarget",
    "TargetError",
    "TopExamples",
    "activation_max",
    "available_saliency_methods",
    "average_drop",
    "borrowed",
    "build_model",
    "check_model",
    "class_name",
    "class_probabilities",
    "conv_layers",
    "default_layer",
    "deletion_auc",
    "denormalize",
    "detections",
    "evaluate",
    "feature_maps",
    "insertion_auc",
    "kernels",
    "load_image",
    "load_pretrained",
    "normalize",
    "normalize_in_boxes",
    "pointing_game",
    "prepare_input",
    "receptive_fields",
    "resolve_layer",
    "road",
    "saliency",
    "saliency_map",
    "sanity_check",
    "segmentation",
    "top_examples",
    "top_predictions",
]
