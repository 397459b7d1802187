"""Errors raised by the CAM family, each with a message that names the problem and the fix."""

from __future__ import annotations


class CamMethodError(ValueError):
    """An unknown CAM method name, or options that the method does not take."""


class LayerShapeError(ValueError):
    """A target layer whose output is not a 4-D ``(N, C, H, W)`` feature map."""


class NoGradientPathError(RuntimeError):
    """The target score does not depend on the target layer's output, so it has no gradient."""
