"""Jupyter widgets (anywidget): state and messages; the drawing happens in the front end."""

from __future__ import annotations

from .base import MapGridWidget
from .explorer import (
    ActivationMaxView,
    CamView,
    DrawingPad,
    FeatureMapsView,
    KernelsView,
    LayerExplorer,
    SaliencyView,
)
from .views import FeatureMapView, KernelView

__all__ = [
    "ActivationMaxView",
    "CamView",
    "DrawingPad",
    "FeatureMapView",
    "FeatureMapsView",
    "KernelView",
    "KernelsView",
    "LayerExplorer",
    "MapGridWidget",
    "SaliencyView",
]
