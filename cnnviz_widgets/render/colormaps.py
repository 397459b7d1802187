"""Matplotlib colormaps as 256-entry RGBA tables, applied in numpy or sent to the front end."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# Colormaps offered in the widgets: sequential ones for activations and CAMs, diverging ones
# (centred on zero) for kernels and signed attributions.
SEQUENTIAL = ("viridis", "magma", "inferno", "plasma", "cividis", "gray", "jet", "turbo")
DIVERGING = ("bwr", "RdBu_r", "coolwarm", "seismic", "PiYG")


@lru_cache(maxsize=64)
def colormap_table(name: str) -> np.ndarray:
    """``(256, 4)`` uint8 RGBA table of a matplotlib colormap.

    Raises:
        ValueError: unknown colormap name (the message lists close matches).
    """
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        import difflib

        names = sorted(matplotlib.colormaps)
        close = difflib.get_close_matches(name, names, n=5)
        raise ValueError(
            f"Unknown colormap {name!r}."
            + (f" Did you mean {', '.join(map(repr, close))}?" if close else "")
            + f" Offered in the widgets: {', '.join(SEQUENTIAL + DIVERGING)}."
        ) from None
    table = (cmap(np.linspace(0.0, 1.0, 256)) * 255).round().astype(np.uint8)
    table.setflags(write=False)
    return table


def colormap_bytes(name: str) -> bytes:
    """The table of :func:`colormap_table` as 1024 bytes (R, G, B, A per level)."""
    return colormap_table(name).tobytes()


def apply_colormap(levels: np.ndarray, name: str) -> np.ndarray:
    """uint8 levels of any shape -> RGB uint8 with a trailing axis of 3."""
    if levels.dtype != np.uint8:
        raise TypeError(f"apply_colormap takes uint8 levels; got {levels.dtype}.")
    return colormap_table(name)[levels][..., :3]
