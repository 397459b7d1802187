"""The torch engine: model in, tensors out. Knows nothing of widgets or colour."""

from __future__ import annotations

from .borrow import borrowed
from .capture import Capture, LayerNotExecutedError, LayerOutputError
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

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Capture",
    "ImageInputError",
    "LayerNotExecutedError",
    "LayerNotFoundError",
    "LayerOutputError",
    "LoadedImage",
    "NoConvLayersError",
    "borrowed",
    "conv_layers",
    "denormalize",
    "feature_maps",
    "kernels",
    "load_image",
    "normalize",
    "prepare_input",
    "resolve_layer",
]
