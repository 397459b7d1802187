"""The anywidget base every cnnviz widget shares: the bundled front end and the map-grid traits."""

from __future__ import annotations

from importlib.resources import files

import anywidget
import traitlets

from ..render.colormaps import colormap_bytes


def _front_end() -> str:
    path = files("cnnviz_widgets") / "static" / "widget.js"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as err:  # a source checkout whose front end was never built
        raise RuntimeError(
            "The widget front end (cnnviz_widgets/static/widget.js) is missing. Install the "
            "package with pip (it builds js/), or run `cd js && npm ci && npm run build`."
        ) from err


class MapGridWidget(anywidget.AnyWidget):
    """A grid of 2-D maps drawn on a canvas, with hover-to-zoom showing real values.

    Traits (all synced to the front end):
        maps: map-stack payload (:func:`cnnviz_widgets.widgets.serialize.map_stack`).
        colormap: 256x4 RGBA colour table bytes.
        title: plain text above the grid.
        color_scale: ``"map"``, ``"layer"`` or ``"global"`` (with ``value_range``).
        symmetric: centre the colour range on zero (diverging colormaps).
    """

    _esm = traitlets.Unicode().tag(sync=True)
    maps = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    colormap = traitlets.Bytes(default_value=b"").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    color_scale = traitlets.Enum(["map", "layer", "global"], default_value="map").tag(sync=True)
    symmetric = traitlets.Bool(False).tag(sync=True)
    value_range = traitlets.List(traitlets.Float(), allow_none=True, default_value=None).tag(
        sync=True
    )

    def __init__(self, *, cmap: str = "viridis", **kwargs):
        super().__init__(_esm=_front_end(), colormap=colormap_bytes(cmap), **kwargs)

    def set_colormap(self, name: str) -> None:
        """Use the matplotlib colormap ``name`` (applied in the front end, no recompute)."""
        self.colormap = colormap_bytes(name)
