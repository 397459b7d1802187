"""The bundled front end every cnnviz widget runs (one ES module built from ``js/``)."""

from __future__ import annotations

from importlib.resources import files


def front_end() -> str:
    """The text of ``cnnviz_widgets/static/widget.js``.

    Raises:
        RuntimeError: a source checkout whose front end was never built (says how to build it).
    """
    path = files("cnnviz_widgets") / "static" / "widget.js"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise RuntimeError(
            "The widget front end (cnnviz_widgets/static/widget.js) is missing. Install the "
            "package with pip (it builds js/), or run `cd js && npm ci && npm run build`."
        ) from err
