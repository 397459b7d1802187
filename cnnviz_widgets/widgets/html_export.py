"""``LayerExplorer.save_html``: one self-contained HTML page (front end and data inlined).

The page holds the widget's traits and a table of precomputed replies keyed by request key
(``js/src/keys.ts``); a stand-in model (``js/src/static_model.ts``) answers the front
end's requests from that table, so the layer slider, hover-to-zoom and colour changes work
offline with no kernel and no network. Binary values are stored as ``{"$b64": ...}``.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
from torch import nn

from .cache import Reply
from .requests import SHOWN_KINDS
from .requests.cam import class_agnostic

if TYPE_CHECKING:
    from .explorer import LayerExplorer

# Tabs that need a kernel to compute anything new.
_LIVE_ONLY = ("actmax", "draw")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _saved(reply: Reply) -> dict[str, Any]:
    return {"content": _jsonable(reply.meta), "buffers": [_jsonable(b) for b in reply.buffers]}


def page_data(explorer: LayerExplorer, layers: Sequence[str] | None = None) -> dict[str, Any]:
    """The traits and precomputed replies the page needs (see module docstring)."""
    subject, dispatcher = explorer._subject, explorer._dispatcher
    names = list(layers) if layers is not None else list(subject.layer_names)
    unknown = [n for n in names if n not in subject.layer_names]
    if unknown:
        raise ValueError(f"Not layers of this explorer: {unknown}.")
    replies: dict[str, Any] = {}
    version = subject.version

    def add(kind: str, **params: Any) -> None:
        key, reply = dispatcher.reply_for(kind, params)
        replies[key] = _saved(reply)

    for name in names:
        add("features", version=version, layer=name)
        if isinstance(subject.modules[name], nn.Conv2d):
            add("kernels", layer=name)
    add("predictions", version=version)
    target = explorer.target
    method = explorer.cam_method
    notes = []
    explained: tuple[tuple[str, dict[str, Any]], ...]
    if subject.objects is not None:  # a detector or segmenter: its objects, the chosen one's map
        add("objects", version=version)
        if target is None:
            first = subject.objects.top(subject, 1)
            target = first[0].index if first else None
        normalize = explorer.normalize_in_boxes and subject.objects.task == "detection"
        explained = () if target is None else (
            ("object_cam", {"method": method, "layer": explorer.cam_layer, "object": target,
                            "normalize": normalize}),
            ("saliency", {"method": explorer.saliency_method, "target": target}),
        )
    else:
        if target is None:
            target = int(subject.probabilities().argmax())
        explained = (
            ("cam", {"method": method, "target": None if class_agnostic(method) else target,
                     "layer": explorer.cam_layer}),
            ("saliency", {"method": explorer.saliency_method, "target": target}),
        )
    for kind, params in explained:
        try:
            add(kind, version=version, **params)
        except (ImportError, RuntimeError, ValueError, TypeError) as err:
            notes.append(f"{kind}: {err}")
    state = {
        name: getattr(explorer, name)
        for name in sorted(set(explorer.trait_names(sync=True))
                           - set(anywidget.AnyWidget.class_trait_names(sync=True)))
        if name != "_esm" and not name.startswith("shown_")
    }
    # what a tab shows of a kind the page does not precompute (dataset examples, a sanity
    # check) stays in its shown_<kind> trait, as in a saved notebook: the page opens on it
    for kind in SHOWN_KINDS:
        shown = getattr(explorer, f"shown_{kind}")
        if shown is not None and shown["key"] not in replies:
            state[f"shown_{kind}"] = _jsonable(shown)
    state["views"] = [v for v in explorer.views if v not in _LIVE_ONLY] or ["features"]
    if state["tab"] not in state["views"]:
        state["tab"] = state["views"][0]
    state["layers"] = [i for i in explorer.layers if i["name"] in names]
    if state["layer_name"] not in names:
        state["layer_name"] = names[0]
    return {"state": _jsonable(state), "replies": replies, "notes": notes}


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ margin: 16px; font-family: system-ui, sans-serif; }}</style>
</head>
<body>
<div id="cnnviz-app"></div>
<script type="application/json" id="cnnviz-page">{data}</script>
<script type="application/json" id="cnnviz-esm">{esm}</script>
<script type="module">
const text = (id) => document.getElementById(id).textContent;
const bytes = Uint8Array.from(atob(JSON.parse(text("cnnviz-esm"))), (c) => c.charCodeAt(0));
const url = URL.createObjectURL(new Blob([bytes], {{ type: "text/javascript" }}));
const mod = await import(url);
window.cnnvizModel = mod.default.renderStatic(
  document.getElementById("cnnviz-app"), JSON.parse(text("cnnviz-page")));
</script>
</body>
</html>
"""


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no '</script>', no HTML comment openers)."""
    return (
        json.dumps(value, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def write_explorer_html(
    explorer: LayerExplorer, path: Path, layers: Sequence[str] | None = None
) -> Path:
    """Write the page to ``path`` (parents created); returns the path."""
    data = page_data(explorer, layers)
    esm = base64.b64encode(explorer._esm.encode("utf-8")).decode("ascii")
    page = PAGE.format(
        title=html.escape(f"cnnviz explorer: {explorer.title}"),
        data=_script_json({"state": data["state"], "replies": data["replies"]}),
        esm=_script_json(esm),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
