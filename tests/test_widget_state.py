"""What is on screen lives in the widget state, and the display bundle carries a picture of it.

A notebook saved with widget state (or executed by nbclient with ``store_widget_state``) keeps
the ``shown_<kind>`` traits: the data of the shown views as binary buffers. These tests check
their content against the engine, the budget that keeps a saved output small, the partial
snapshot of large layers, and the ``image/png`` drawn from the same data.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnviz_widgets import LayerExplorer, feature_maps, kernels
from cnnviz_widgets.widgets.dispatch import SHOWN_BYTES
from cnnviz_widgets.widgets.explorer import LayerExplorer as ExplorerClass
from cnnviz_widgets.widgets.picture import view_picture
from cnnviz_widgets.widgets.requests import SHOWN_KINDS, request_key
from cnnviz_widgets.widgets.serialize import decode_stack_message


def state_bytes(ex: LayerExplorer) -> int:
    """Bytes of the widget state as a saved notebook stores it (buffers base64-encoded)."""
    from ipywidgets.widgets.widget import _remove_buffers

    state, _paths, buffers = _remove_buffers(ex.get_state())
    return len(json.dumps(state)) + sum(4 * ((len(b) + 2) // 3) for b in buffers)


def test_every_shown_kind_has_its_trait():
    traits = ExplorerClass.class_trait_names(sync=True)
    assert {f"shown_{k}" for k in SHOWN_KINDS} <= set(traits)
    assert len([t for t in traits if t.startswith("shown_")]) == len(SHOWN_KINDS)
    assert "actmax" not in SHOWN_KINDS and "features" in SHOWN_KINDS


def test_a_new_explorer_holds_the_current_layer_kernels_and_predictions():
    ex = LayerExplorer(background=False)
    v = ex.image_version
    f = ex.shown_features
    assert f["key"] == f"features|{v}|features.0" and f["id"] is None
    want = feature_maps(ex.model, ex.input_tensor, ["features.0"])["features.0"][0].numpy()
    got = decode_stack_message(f["content"]["stack"], f["buffers"])
    span = want.max(axis=(1, 2)) - want.min(axis=(1, 2))
    assert np.all(np.abs(got - want) <= span[:, None, None] / 510 * 1.05 + 2e-3)
    k = ex.shown_kernels
    assert k["key"] == "kernels|features.0" and k["content"]["kernel_shape"] == [16, 3, 3, 3]
    want_k = kernels(ex.model, "features.0").numpy().reshape(48, 3, 3)
    np.testing.assert_allclose(decode_stack_message(k["content"]["stack"], k["buffers"]),
                               want_k, atol=float(np.ptp(want_k)) / 400)
    top = ex.shown_predictions["content"]["top"]
    with torch.no_grad():
        probs = torch.softmax(ex.model(ex.input_tensor), 1)[0]
    assert top[0]["index"] == int(probs.argmax())
    assert top[0]["prob"] == pytest.approx(float(probs.max()), rel=1e-5)


def test_setting_the_layer_from_python_updates_the_state():
    ex = LayerExplorer(background=False)
    ex.layer = "features.6"
    assert ex.shown_features["key"].endswith("|features.6")
    assert ex.shown_features["content"]["stack"]["shape"][0] == 64
    assert ex.shown_kernels["key"] == "kernels|features.6"


def test_a_new_image_clears_the_maps_of_the_old_one():
    ex = LayerExplorer(background=False)
    ex.shown_cam = {"id": 1, "key": "cam|1|GradCAM|0|features", "content": {}, "buffers": []}
    ex.image = np.zeros((64, 64, 3), np.uint8)
    assert ex.shown_cam is None
    assert ex.shown_features["key"].startswith(f"features|{ex.image_version}|")


def test_large_layers_keep_their_first_maps_within_the_budget(resnet18):
    ex = LayerExplorer(resnet18, np.full((224, 224, 3), 90, np.uint8), background=False)
    f = ex.shown_features  # conv1: 64 x 112 x 112 = 802,816 bytes in full
    c, h, w = f["content"]["stack"]["shape"]
    assert (h, w) == (112, 112) and f["content"]["partial"] == {"channels": c, "of": 64}
    assert sum(len(b) for b in f["buffers"]) <= SHOWN_BYTES
    assert c == SHOWN_BYTES // (h * w + 4)  # as many whole maps as fit
    full = feature_maps(resnet18, ex.input_tensor, ["conv1"])["conv1"][0].numpy()[:c]
    got = decode_stack_message(f["content"]["stack"], f["buffers"])
    span = full.max(axis=(1, 2)) - full.min(axis=(1, 2))
    assert np.all(np.abs(got - full) <= span[:, None, None] / 510 * 1.05 + 2e-3)
    assert state_bytes(ex) < 1_000_000


def test_saved_state_of_the_demo_is_small():
    ex = LayerExplorer(background=False)
    # most of it is the front end (177 KB as JSON with the objects view), then the first
    # layer's maps (66 KB), the input image and the colour tables
    assert state_bytes(ex) < 320_000


def test_display_bundle_has_a_picture_of_the_current_view():
    ex = LayerExplorer(background=False)
    bundle = ex._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    img = Image.open(io.BytesIO(data["image/png"])).convert("RGB")
    assert max(img.size) <= 480 and img.size[0] >= 320
    pixels = np.asarray(img)
    # a grid of 16 viridis maps: many distinct colours below the caption
    assert len(np.unique(pixels[20:].reshape(-1, 3), axis=0)) > 50
    # the 256-colour palette keeps the colours of the full-colour picture
    full = np.asarray(view_picture(ex)[0], dtype=np.int16)
    assert full.shape == pixels.shape
    assert np.abs(pixels.astype(np.int16) - full).mean() < 3
    params = {"version": ex.image_version, "method": "GradCAM", "target": 2,
              "layer": "features.11"}
    ex._on_msg(ex, {"type": "request", "id": 1, "kind": "cam",
                    "key": request_key("cam", **params), **params}, [])
    assert ex.shown_cam is not None
    ex.tab = "cam"  # an overlay on the photo: an adaptive palette
    cam_png = ex._repr_mimebundle_()
    cam_png = (cam_png[0] if isinstance(cam_png, tuple) else cam_png)["image/png"]
    overlay = np.asarray(Image.open(io.BytesIO(cam_png)).convert("RGB"), dtype=np.int16)
    assert np.abs(overlay - np.asarray(view_picture(ex)[0], dtype=np.int16)).mean() < 3
    ex.tab = "features"
    ex.tab = "kernels"
    data2 = ex._repr_mimebundle_()
    data2 = data2[0] if isinstance(data2, tuple) else data2
    assert data2["image/png"] != data["image/png"]
