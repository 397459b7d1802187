"""Jupyter widgets (anywidget): state and messages; the drawing happens in the front end."""

from __future__ import annotations

from .explorer import LayerExplorer
from .views import (
    ActivationMaxView,
    CamView,
    DatasetExamplesView,
    DrawingPad,
    FeatureMapsView,
    KernelsView,
    ObjectsView,
    SaliencyView,
    TrustView,
)

__all__ = [
    "ActivationMaxView",
    "CamView",
    "DatasetExamplesView",
    "DrawingPad",
    "FeatureMapsView",
    "KernelsView",
    "LayerExplorer",
    "ObjectsView",
    "SaliencyView",
    "TrustView",
]
