"""Turning engine tensors into display data (numpy + matplotlib colormaps)."""

from __future__ import annotations

from .colormaps import DIVERGING, SEQUENTIAL, apply_colormap, colormap_bytes, colormap_table
from .kernel_display import rgb_filters, scale_kernels
from .quantize import Quantized, dequantize, quantize

__all__ = [
    "DIVERGING",
    "SEQUENTIAL",
    "Quantized",
    "apply_colormap",
    "colormap_bytes",
    "colormap_table",
    "dequantize",
    "quantize",
    "rgb_filters",
    "scale_kernels",
]
