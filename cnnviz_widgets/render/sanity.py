"""The figure of a sanity check: maps degrading (or not) layer by layer, and the scores."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from ..engine.metrics.sanity import SanityCheck
from ..engine.metrics.similarity import SIMILARITIES
from .plots import NotebookFigure

_LABELS = {"spearman": "Spearman |.|", "ssim": "SSIM", "hog": "HOG"}


def _display(m: np.ndarray) -> np.ndarray:
    """``|m| / max |m|`` (a zero map stays zero)."""
    a = np.abs(np.asarray(m, dtype=np.float32))
    peak = float(a.max()) if a.size else 0.0
    return a / peak if peak > 0 else a


def _rgb(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(N, H, W, 3)`` float in [0, 1] from ``(N, 3, H, W)`` or ``(N, H, W, 3)`` images,
    each stretched to its own range (model-normalised inputs are shown as they are)."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    arr = arr.astype(np.float32)
    if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    lo = arr.min(axis=(1, 2, 3), keepdims=True)
    hi = arr.max(axis=(1, 2, 3), keepdims=True)
    return (arr - lo) / np.where(hi > lo, hi - lo, 1.0)


def plot_sanity_check(
    result: SanityCheck,
    images: np.ndarray | torch.Tensor | None = None,
    *,
    show: int | Sequence[int] = 3,
    cmap: str = "jet",
    tile: float = 1.25,
) -> Figure:
    """The maps of each randomisation step next to the original, and the similarity curves.

    Args:
        result: a :func:`~cnnviz_widgets.engine.metrics.sanity.sanity_check` result computed
            with ``keep_maps=True``.
        images: the ``(N, 3, H, W)`` (or ``(N, H, W, 3)``) inputs, drawn in a first column.
        show: how many images (the first ones), or which ones, get a row of maps.
        cmap: the colormap of the maps (each shown as ``|map| / max |map|``).
        tile: inches per map.

    Returns:
        A figure: one row of maps per shown image (original, then one column per step in
        randomisation order, then the random-logit map), and below them the mean similarity
        to the original map (Spearman of absolute values, SSIM, HOG) at each step, with the
        random-logit scores as dashed lines.
    """
    rows = list(range(min(show, len(result.targets)))) if isinstance(show, int) else list(show)
    steps = [s for s in result.steps]
    if any(s.maps is None for s in steps):
        raise ValueError("plot_sanity_check needs the maps: run sanity_check(keep_maps=True).")
    logit = result.random_logit
    columns: list[tuple[str, np.ndarray | None]] = [("original", result.original)]
    columns += [(s.layer, s.maps) for s in steps]
    if logit is not None and logit.maps is not None:
        columns.append(("random logit", logit.maps))
    lead = 1 if images is not None else 0
    ncols = lead + len(columns)
    nrows = len(rows)
    fig = NotebookFigure(figsize=(tile * ncols + 0.4, tile * nrows + 2.6), layout="constrained")
    grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[tile] * nrows + [2.2])
    colormap = matplotlib.colormaps[cmap]
    rgb = _rgb(images) if images is not None else None
    for r, i in enumerate(rows):
        if rgb is not None:
            ax = fig.add_subplot(grid[r, 0])
            ax.imshow(rgb[i])
            ax.set_axis_off()
            if r == 0:
                ax.set_title("image", fontsize=7)
        for c, (title, maps) in enumerate(columns):
            assert maps is not None
            ax = fig.add_subplot(grid[r, lead + c])
            ax.imshow(colormap(_display(maps[i]))[..., :3])
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title, fontsize=7, rotation=30 if len(title) > 10 else 0)
    ax = fig.add_subplot(grid[nrows, :])
    xs = np.arange(1, len(steps) + 1)
    colours = matplotlib.colormaps["tab10"]
    for k, name in enumerate(SIMILARITIES):
        if not steps:
            break
        ax.plot(xs, result.mean_scores(name), marker="o", color=colours(k), label=_LABELS[name])
        if logit is not None:
            values = logit.scores[name]
            ok = values[~np.isnan(values)]
            if ok.size:
                ax.axhline(float(ok.mean()), color=colours(k), linestyle="--", linewidth=0.8)
    ax.axhline(0.0, color="0.6", linewidth=0.6)
    ax.set_xticks(xs)
    ax.set_xticklabels([s.layer for s in steps], rotation=30, ha="right", fontsize=7)
    ax.set_ylim(-1.05, 1.05)
    kind = "cascading" if result.mode == "cascade" else "independent"
    ax.set_ylabel("similarity to original", fontsize=8)
    ax.set_title(f"{result.method}: {kind} randomisation (dashed: random logit)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return fig
