"""Jupyter widgets (anywidget): state and messages; the drawing happens in the front end."""

from __future__ import annotations

from .base import MapGridWidget
from .views import FeatureMapView, KernelView

__all__ = ["FeatureMapView", "KernelView", "MapGridWidget"]
