"""Errors raised by the CAM family, each with a message that names the problem and the fix."""

from __future__ import annotations

from ..tokens import LayerShapeError

__all__ = ["CamMethodError", "LayerShapeError", "NoGradientPathError"]


class CamMethodError(ValueError):
    """An unknown CAM method name, or options that the method does not take."""


class NoGradientPathError(RuntimeError):
    """The target score does not depend on the target layer's output, so it has no gradient."""
