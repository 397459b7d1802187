"""Static matplotlib figures for print and nbconvert, with the widgets' colour conventions.

Kernels use a diverging colormap centred on zero (``bwr``); a first layer on RGB input is shown
as colour filters. Feature maps use a sequential colormap (``viridis``), each map scaled to its
own range unless ``scale="layer"``. Figures are built without pyplot, so nothing is shown twice
and nothing is left open; a returned figure shows itself in Jupyter as a PNG (its ``_repr_png_``,
whether or not ``%matplotlib inline`` ran), ``fig.savefig(path)`` writes it.
"""

from __future__ import annotations

import io
from typing import Literal

import matplotlib
import numpy as np
import torch
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from torch import nn

from ..engine import feature_maps, kernels, resolve_layer
from .kernel_display import KernelScale, rgb_filters, scale_kernels
from .mosaic import grid_shape, mosaic
from .quantize import as_numpy


class NotebookFigure(Figure):
    """A matplotlib ``Figure`` that IPython displays as a PNG without pyplot."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def _with_white_gaps(cmap: str) -> Colormap:
    """The colormap with NaN (the gaps between tiles) drawn white."""
    return matplotlib.colormaps[cmap].with_extremes(bad="white")


def _figure_for_grid(rows: int, cols: int, tile_px: float, extra_cols: int = 0) -> Figure:
    width = max(3.0, min(16.0, (cols + extra_cols) * tile_px / 40 + 0.5))
    height = max(2.0, min(16.0, width * rows / max(cols + extra_cols, 1) + 0.8))
    return NotebookFigure(figsize=(width, height), layout="constrained")


def plot_kernels(
    model: nn.Module,
    layer: str | nn.Module,
    out_channel: int | None = None,
    *,
    scale: KernelScale = "kernel",
    cmap: str = "bwr",
    ncols: int | None = None,
) -> Figure:
    """A figure of a conv layer's kernels.

    * First layer on RGB input (``in_channels == 3``) and no ``out_channel``: every filter as a
      colour image (scaled per filter).
    * Otherwise: the ``in_channels`` kernels of filter ``out_channel`` (default 0), each 2-D
      kernel drawn with ``cmap``, zero at the colormap's centre.
    """
    name, _ = resolve_layer(model, layer)
    k = kernels(model, name)
    o, i, kh, kw = k.shape
    if i == 3 and out_channel is None:
        tiles = rgb_filters(k, scale="filter")
        rows, cols = grid_shape(o, ncols)
        fig = _figure_for_grid(rows, cols, kw * 6)
        ax = fig.add_subplot()
        ax.imshow(mosaic(tiles, cols, gap=1, fill=255), interpolation="nearest")
        ax.set_title(f"{name}: {o} filters, {kh}×{kw}, RGB")
    else:
        f = 0 if out_channel is None else int(out_channel)
        if not 0 <= f < o:
            raise IndexError(f"{name} has {o} filters; out_channel must be in 0..{o - 1}.")
        scaled = scale_kernels(k[f : f + 1], scale=scale, symmetric=True)[0]
        rows, cols = grid_shape(i, ncols)
        fig = _figure_for_grid(rows, cols, kw * 6)
        ax = fig.add_subplot()
        ax.imshow(
            mosaic(scaled, cols, gap=1),
            cmap=_with_white_gaps(cmap),
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.set_title(f"{name}: filter {f} — its {i} kernels of {kh}×{kw} ({scale} scale)")
    ax.set_axis_off()
    return fig


def plot_feature_maps(
    model: nn.Module,
    x: torch.Tensor,
    layer: str | nn.Module,
    *,
    image: np.ndarray | None = None,
    index: int = 0,
    cmap: str = "viridis",
    scale: Literal["map", "layer"] = "map",
    order: Literal["index", "mean"] = "index",
    max_maps: int | None = None,
    ncols: int | None = None,
) -> Figure:
    """A figure of every channel of ``layer``'s output for image ``index`` of batch ``x``.

    Args:
        image: the ``(H, W, 3)`` uint8 input shown beside the grid (e.g. ``load_image``'s rgb).
        scale: ``"map"``: each map stretched to its own range; ``"layer"``: one shared range.
        order: ``"index"`` (channel order) or ``"mean"`` (strongest mean activation first).
        max_maps: draw at most this many maps (all by default).
    """
    name, _ = resolve_layer(model, layer)
    maps = as_numpy(feature_maps(model, x, [name])[name][index])
    if maps.ndim != 3:
        raise ValueError(f"{name}'s output is not a stack of 2-D maps: shape {maps.shape}.")
    channels = np.arange(maps.shape[0])
    if order == "mean":
        channels = np.argsort(-maps.mean(axis=(1, 2)), kind="stable")
    if max_maps is not None:
        channels = channels[:max_maps]
    shown = maps[channels]
    axes = (1, 2) if scale == "map" else (0, 1, 2)
    lo = shown.min(axis=axes, keepdims=True)
    span = shown.max(axis=axes, keepdims=True) - lo
    normed = np.divide(shown - lo, span, out=np.zeros_like(shown), where=span > 0)
    rows, cols = grid_shape(len(channels), ncols)
    extra = cols // 2 if image is not None else 0
    fig = _figure_for_grid(rows, cols, maps.shape[2], extra_cols=extra)
    if image is not None:
        grid_spec = fig.add_gridspec(1, 2, width_ratios=[1, 2])
        ax_img = fig.add_subplot(grid_spec[0])
        ax_img.imshow(image)
        ax_img.set_title("input")
        ax_img.set_axis_off()
        ax = fig.add_subplot(grid_spec[1])
    else:
        ax = fig.add_subplot()
    ax.imshow(
        mosaic(normed, cols, gap=1),
        cmap=_with_white_gaps(cmap),
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    what = f"{len(channels)} of {maps.shape[0]}" if len(channels) < maps.shape[0] else maps.shape[0]
    ax.set_title(f"{name}: {what} maps of {maps.shape[1]}×{maps.shape[2]} ({scale} scale)")
    ax.set_axis_off()
    return fig


def show_cam(
    image: np.ndarray,
    maps: np.ndarray | dict[str, np.ndarray],
    *,
    cmap: str = "jet",
    alpha: float = 0.5,
    ncols: int | None = None,
) -> Figure:
    """The input image with class activation maps laid over it, one panel per map.

    Args:
        image: ``(H, W, 3)`` uint8 RGB (e.g. ``load_image``'s rgb).
        maps: one ``(H, W)`` map in [0, 1], or ``{title: map}`` for side-by-side panels
            (e.g. several methods, or :func:`~cnnviz_widgets.cam_per_layer`'s layers);
            ``(1, H, W)`` maps from :func:`~cnnviz_widgets.cam` are accepted as they are.
        alpha: opacity of the map over the image.
    """
    panels = maps if isinstance(maps, dict) else {"": maps}
    rows, cols = grid_shape(len(panels), ncols)
    fig = NotebookFigure(figsize=(2.6 * cols, 2.6 * rows + 0.3), layout="constrained")
    colormap = matplotlib.colormaps[cmap]
    for i, (title, m) in enumerate(panels.items()):
        m = np.asarray(m, dtype=np.float32)
        m = m[0] if m.ndim == 3 else m
        if m.shape != image.shape[:2]:
            raise ValueError(
                f"Map {title!r} is {m.shape} but the image is {image.shape[:2]}: compute the "
                "map for this image (cam() returns maps at the input size)."
            )
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(image)
        ax.imshow(colormap(np.clip(m, 0, 1))[..., :3], alpha=alpha)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    return fig
