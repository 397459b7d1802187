"""The explorer's dataset examples (``examples`` requests) against the engine's TopExamples.

The replies must carry exactly what :meth:`TopExamples.patches` gives (indices, scores, labels,
crops as bytes, the activation over each crop up to the 8-bit quantisation), the overview
every channel's best crop; bad input is a clear error, and the widget state keeps what is shown.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from cnnviz_widgets import (
    DatasetExamplesView,
    LayerExplorer,
    TopExamples,
    conv_layers,
    top_examples,
)
from cnnviz_widgets.demo import demo_model
from cnnviz_widgets.demo.examples import ShapeImages, demo_examples
from cnnviz_widgets.engine.examples import ExamplesMismatchError
from cnnviz_widgets.widgets.recorder import Recorder
from cnnviz_widgets.widgets.requests import request_key
from cnnviz_widgets.widgets.serialize import decode_stack_message


def ask(ex: LayerExplorer, rec: Recorder, layer: str, channel: int, rid: int = 1):
    key = request_key("examples", layer=layer, channel=channel)
    rec.request(ex, "examples", rid=rid, key=key, layer=layer, channel=channel)
    replies = [(c, b) for c, b in rec.sent
               if c.get("id") == rid and c["type"] in ("reply", "error")]
    assert replies, rec.sent[-3:]
    return replies[-1]


@pytest.fixture(scope="module")
def reference():
    """The demo examples the explorer computes on first use, computed here directly."""
    return demo_examples()


@pytest.fixture
def demo():
    ex = LayerExplorer(background=False)
    return ex, Recorder(ex)


def test_demo_explorer_has_lazy_examples_over_every_conv_layer(demo):
    ex, _ = demo
    info = ex.examples_info
    assert info["layers"] == list(conv_layers(demo_model(allow_untrained=True).model))
    assert info["k"] == 9 and info["lazy"] is True
    assert "generated shapes" in info["description"]
    assert "examples" in ex.views


@pytest.mark.parametrize(("layer", "channel"), [("features.0", 5), ("features.9", 3),
                                                ("features.11", 100)])
def test_a_channel_reply_is_the_engine_patches(demo, reference, layer, channel):
    ex, rec = demo
    content, buffers = ask(ex, rec, layer, channel)
    assert content["type"] == "reply", content
    want = reference.patches(layer, channel)
    assert content["indices"] == want.indices.tolist()
    np.testing.assert_allclose(content["scores"], want.scores.numpy(), rtol=1e-6)
    assert content["labels"] == want.labels.tolist()
    assert content["label_names"] == [reference.classes[i] for i in want.labels.tolist()]
    assert content["positions"] == want.positions.tolist()
    assert content["boxes"] == want.boxes.tolist()
    assert content["rgb"]["shape"] == list(want.images.shape)
    assert bytes(buffers[0]) == want.images.numpy().tobytes()
    maps = decode_stack_message(content["maps"], buffers[1:])
    lo = want.maps.flatten(1).min(1).values[:, None, None].numpy()
    hi = want.maps.flatten(1).max(1).values[:, None, None].numpy()
    # within one 8-bit level of each crop's own range (ranges sent as float16)
    assert np.all(np.abs(maps - want.maps.numpy()) <= (hi - lo) / 255 * 0.51 + 2e-3 * np.abs(hi))
    # the maps are the layer's grid upsampled bilinearly (convex combinations of its values):
    # never above the example's score, the grid's maximum
    tops = maps.reshape(len(maps), -1).max(1)
    assert np.all(tops <= np.asarray(content["scores"]) * (1 + 2e-3) + 1e-3)


def test_the_overview_is_every_channels_best_crop(demo, reference):
    ex, rec = demo
    layer = "features.6"
    content, buffers = ask(ex, rec, layer, -1)
    assert content["type"] == "reply", content
    channels = reference.channels(layer)
    n, h, w, _ = content["rgb"]["shape"]
    assert n == channels and content["channels"] == list(range(channels))
    assert content["indices"] == reference.indices(layer)[:, 0].tolist()
    crops = np.frombuffer(bytes(buffers[0]), np.uint8).reshape(n, h, w, 3)
    for c in (0, 7, channels - 1):
        one = reference.patches(layer, c)
        assert content["boxes"][c] == one.boxes[0].tolist()
        ch, cw = one.images.shape[1:3]
        np.testing.assert_array_equal(crops[c, :ch, :cw], one.images[0].numpy())
    assert "maps" not in content


def test_the_saved_state_keeps_what_is_shown_within_its_budget(demo):
    ex, rec = demo
    ask(ex, rec, "features.3", 2)
    state = ex.shown_examples
    assert state["key"] == request_key("examples", layer="features.3", channel=2)
    assert state["content"]["channel"] == 2 and len(state["buffers"]) == 4
    ask(ex, rec, "features.11", -1, rid=2)  # 128 crops of 54 px: more than a saved view keeps
    state = ex.shown_examples
    part = state["content"]["partial"]
    assert 0 < part["channels"] < part["of"] == 128
    n, h, w, _ = state["content"]["rgb"]["shape"]
    assert n == part["channels"] and len(state["buffers"][0]) == n * h * w * 3
    assert len(state["content"]["indices"]) == n
    assert sum(len(b) for b in state["buffers"]) <= 256 * 2**10


@pytest.mark.parametrize(("params", "pattern"), [
    ({"layer": "features.2", "channel": 0}, "no dataset examples for layer 'features.2'"),
    ({"layer": "features.0", "channel": 16}, r"channel must be an integer in -1\.\.16-1"),
    ({"layer": "features.0", "channel": -2}, "channel must be an integer"),
    ({"layer": "features.0", "channel": True}, "channel must be an integer"),
])
def test_bad_requests_get_an_error_reply(demo, params, pattern):
    ex, rec = demo
    rec.request(ex, "examples", rid=9, key="k", **params)
    content, _ = rec.last
    assert content["type"] == "error"
    assert __import__("re").search(pattern, content["message"]), content["message"]


def _small_examples(model, n=40, seed=3):
    torch.manual_seed(seed)
    data = TensorDataset(torch.randn(n, 3, 64, 64), torch.arange(n) % 4)
    return top_examples(model, data, ["features.3", "features.9"], k=4, progress=False), data


def test_given_examples_and_a_saved_file(tmp_path):
    demo = demo_model(allow_untrained=True)
    examples, data = _small_examples(demo.model)
    ex = LayerExplorer(demo.model, examples=examples, size=64, background=False)
    rec = Recorder(ex)
    assert ex.examples_info == {"layers": ["features.3", "features.9"], "k": 4,
                                "description": examples.meta["data"]["description"],
                                "lazy": False}
    content, buffers = ask(ex, rec, "features.9", 1)
    want = examples.patches("features.9", 1)
    assert content["indices"] == want.indices.tolist()
    assert bytes(buffers[0]) == want.images.numpy().tobytes()
    assert content["label_names"] is None  # a TensorDataset has no class names
    path = examples.save(tmp_path / "ex.npz")
    loaded = LayerExplorer(demo.model, examples=path, size=64, background=False)
    assert loaded.examples_info["layers"] == ["features.3", "features.9"]
    rec2 = Recorder(loaded)
    content, _ = ask(loaded, rec2, "features.9", 1)
    # a file made from a tensor dataset does not know its data: the error says what to pass
    assert content["type"] == "error"
    assert "TopExamples.load(path, data=...)" in content["message"]
    # which is the way to show them
    again = LayerExplorer(demo.model, examples=TopExamples.load(path, demo.model, data=data),
                          size=64, background=False)
    content, buffers = ask(again, Recorder(again), "features.9", 1)
    assert bytes(buffers[0]) == want.images.numpy().tobytes()


def test_examples_of_another_model_or_of_the_wrong_type_are_refused():
    demo = demo_model(allow_untrained=True)
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3))
    examples, _ = _small_examples(demo.model)
    with pytest.raises(ExamplesMismatchError, match="The examples= argument does not belong to "
                       "this model: it was computed with a ShapesNet, not a Sequential; this "
                       "model has no layer 'features.3'"):
        LayerExplorer(other, examples=examples, size=64, background=False)
    # the same class with other channel counts: the layers say so
    narrow = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3))
    own = top_examples(narrow, torch.rand(8, 3, 16, 16), k=2, batch_size=4)
    wide = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3))
    with pytest.raises(ExamplesMismatchError, match="layer '0' has 6 channels here, 5 there"):
        LayerExplorer(wide, examples=own, size=16, background=False)
    LayerExplorer(narrow, examples=own, size=16, background=False)  # its own: accepted
    with pytest.raises(TypeError, match="examples= takes a TopExamples"):
        LayerExplorer(demo.model, examples=[1, 2], size=64, background=False)


def test_no_examples(resnet18):
    ex = LayerExplorer(examples=False, background=False)
    assert ex.examples_info is None
    rec = Recorder(ex)
    rec.request(ex, "examples", rid=3, key="k", layer="features.0", channel=0)
    assert "pass examples=top_examples(model, data)" in rec.last[0]["message"]
    other = LayerExplorer(resnet18, np.zeros((32, 32, 3), np.uint8), size=32, background=False)
    assert other.examples_info is None  # only the demo model has examples of its own


def test_focused_view_and_the_model_left_as_found():
    view = DatasetExamplesView(background=False)
    assert view.views == ["examples"] and view.tab == "examples"
    rec = Recorder(view)
    model = view.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ask(view, rec, "features.6", 0)
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_shape_images_are_the_demo_input():
    data = ShapeImages(8)
    demo = demo_model(allow_untrained=True)
    x, label = data[3]
    assert x.shape == (3, 64, 64) and 0 <= label < len(demo.classes)
    assert data.classes == list(demo.classes)


def test_the_views_are_the_front_ends_tab_registry():
    """One list of views: Python's VIEWS and js/src/tabs/registry.ts name the same, in order."""
    import re
    from pathlib import Path

    from cnnviz_widgets.widgets.view_list import VIEWS

    registry = (Path(__file__).parents[1] / "js" / "src" / "tabs" / "registry.ts").read_text()
    assert tuple(re.findall(r'\{ name: "(\w+)", title:', registry)) == VIEWS


def test_a_saved_page_keeps_the_examples_on_screen(demo):
    """save_html's page keeps what the examples tab showed (its shown_examples trait, as a
    saved notebook does), so the page opens on it with no kernel."""
    from cnnviz_widgets.widgets.html_export import page_data

    ex, rec = demo
    content, buffers = ask(ex, rec, "features.9", 3)
    state = page_data(ex, layers=["features.0"])["state"]
    saved = state["shown_examples"]
    assert saved["key"] == request_key("examples", layer="features.9", channel=3)
    assert saved["content"]["indices"] == content["indices"]
    assert len(saved["buffers"]) == len(buffers)
