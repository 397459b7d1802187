"""cnnviz-widgets: see inside a convolutional network from a Jupyter notebook.

Engine functions (torch in, tensors out) are importable from the top level::

    from cnnviz_widgets import conv_layers, kernels, feature_maps, load_image
"""

from __future__ import annotations

from .engine import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BoxTarget,
    Detections,
    ImageInputError,
    LayerNotExecutedError,
    LayerNotFoundError,
    LayerOutputError,
    LoadedImage,
    NoConvLayersError,
    OutputSelectionError,
    ReceptiveField,
    RegionTarget,
    TargetError,
    TopExamples,
    activation_max,
    available_saliency_methods,
    average_drop,
    build_model,
    conv_layers,
    default_layer,
    deletion_auc,
    detections,
    evaluate,
    feature_maps,
    insertion_auc,
    kernels,
    load_image,
    load_pretrained,
    pointing_game,
    receptive_fields,
    road,
    saliency,
    saliency_map,
    sanity_check,
    segmentation,
    top_examples,
)
from .engine.cam import available_cam_methods, cam, cam_per_layer
from .engine.cam.multi import cam_per_target

__version__ = "0.1.0"

_WIDGETS = (
    "LayerExplorer",
    "KernelsView",
    "FeatureMapsView",
    "CamView",
    "SaliencyView",
    "ActivationMaxView",
    "DatasetExamplesView",
    "TrustView",
    "ObjectsView",
    "DrawingPad",
)


def __getattr__(name: str):
    """The widgets, imported on first use (the engine works without Jupyter packages)."""
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'cnnviz_widgets' has no attribute {name!r}")


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BoxTarget",
    "Detections",
    "ImageInputError",
    "LayerNotExecutedError",
    "LayerNotFoundError",
    "LayerOutputError",
    "LoadedImage",
    "NoConvLayersError",
    "OutputSelectionError",
    "ReceptiveField",
    "RegionTarget",
    "TargetError",
    "TopExamples",
    "__version__",
    "activation_max",
    "available_cam_methods",
    "available_saliency_methods",
    "average_drop",
    "build_model",
    "cam",
    "cam_per_layer",
    "cam_per_target",
    "conv_layers",
    "default_layer",
    "deletion_auc",
    "detections",
    "evaluate",
    "feature_maps",
    "insertion_auc",
    "kernels",
    "load_image",
    "load_pretrained",
    "pointing_game",
    "receptive_fields",
    "road",
    "saliency",
    "saliency_map",
    "sanity_check",
    "segmentation",
    "top_examples",
    *_WIDGETS,
]
