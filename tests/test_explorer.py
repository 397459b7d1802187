"""LayerExplorer without a browser: state, message handling, caching, validation, export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnviz_widgets import LayerExplorer, feature_maps, kernels
from cnnviz_widgets.widgets.cache import Reply, ReplyCache
from cnnviz_widgets.widgets.recorder import Recorder
from cnnviz_widgets.widgets.requests import KIND_NAMES, request_key
from cnnviz_widgets.widgets.serialize import decode_stack_message, stack_message


def request(ex: LayerExplorer, kind: str, rid: int = 1, **params) -> None:
    key = params.pop("key", f"{kind}-key")
    ex._on_msg(ex, {"type": "request", "id": rid, "key": key, "kind": kind, **params}, [])


@pytest.fixture
def demo():
    ex = LayerExplorer(background=False)
    return ex, Recorder(ex)


@pytest.fixture
def small_resnet(resnet18):
    ex = LayerExplorer(resnet18, np.full((40, 40, 3), 128, np.uint8), size=32,
                       background=False)
    return ex, Recorder(ex)


def test_demo_explorer_state(demo):
    ex, _ = demo
    names = [info["name"] for info in ex.layers]
    assert names == ["features.0", "features.3", "features.6", "features.9", "features.11"]
    assert ex.layers[0]["shape"] == [16, 64, 64]
    assert ex.layers[1]["kernel_shape"] == [32, 16, 3, 3]
    # receptive fields for the hover outline: 3 x 3 convs, 2 x 2 pools between them
    assert ex.layers[0]["rf"] == {"size": [3.0, 3.0], "jump": [1.0, 1.0], "start": [0.5, 0.5],
                                  "input": [64, 64]}
    assert ex.layers[1]["rf"]["size"] == [8.0, 8.0] and ex.layers[1]["rf"]["jump"] == [2.0, 2.0]
    assert ex.layer == "features.0"
    assert ex.image.shape == (64, 64, 3) and ex.image.dtype == np.uint8
    assert ex.input_image["shape"] == [1, 64, 64, 3]
    assert len(ex.input_image["data"]) == 64 * 64 * 3
    assert ex.classes is not None and len(ex.classes) == 8
    assert set(ex.colormaps) >= {"viridis", "magma", "bwr"}
    assert all(len(t) == 1024 for t in ex.colormaps.values())
    assert ex.tab == "features"
    assert ex.cam_layers[-1] == ex.cam_layer == "features"
    lo, hi = ex.global_range
    ref = feature_maps(ex.model, ex.input_tensor, names)
    assert lo == pytest.approx(min(float(v.min()) for v in ref.values()))
    assert hi == pytest.approx(max(float(v.max()) for v in ref.values()))


def test_features_reply_values_and_bytes(demo):
    ex, rec = demo
    request(ex, "features", layer="features.3", version=ex.image_version, key="K")
    msg, buffers = rec.last
    assert msg["type"] == "reply" and msg["id"] == 1 and msg["key"] == "K"
    expected = feature_maps(ex.model, ex.input_tensor, ["features.3"])["features.3"][0].numpy()
    got = decode_stack_message(msg["stack"], buffers)
    span = expected.max(axis=(1, 2)) - expected.min(axis=(1, 2))
    assert np.all(np.abs(got - expected) <= span[:, None, None] / 510 * 1.05 + 2e-3)
    c, h, w = expected.shape
    assert sum(len(b) for b in buffers) <= 1.1 * c * h * w


def test_bytes_per_layer_stay_within_1_1_chw_for_many_small_maps():
    maps = np.random.default_rng(0).normal(size=(2048, 7, 7)).astype(np.float32)
    meta, buffers = stack_message(maps)
    assert sum(len(b) for b in buffers) <= 1.1 * maps.size
    decoded = decode_stack_message(meta, buffers)
    span = maps.max(axis=(1, 2)) - maps.min(axis=(1, 2))
    # float16 ranges widen the span by at most one float16 step at each end
    assert np.all(np.abs(decoded - maps) <= span[:, None, None] / 510 * 1.02 + 1e-3)
    # big values fall back to exact float32 ranges
    meta, _ = stack_message(maps * 1e6)
    assert meta["range_dtype"] == "float32"


def test_kernels_reply_first_layer_has_rgb_filters(demo):
    ex, rec = demo
    request(ex, "kernels", layer="features.0")
    msg, buffers = rec.last
    assert msg["kernel_shape"] == [16, 3, 3, 3]
    assert msg["rgb"]["shape"] == [16, 3, 3, 3] and len(buffers) == 4
    k = kernels(ex.model, "features.0").numpy()
    np.testing.assert_allclose(decode_stack_message(msg["stack"], buffers),
                               k.reshape(48, 3, 3), atol=float(np.ptp(k)) / 400)
    assert msg["absmax"] == pytest.approx(float(np.abs(k).max()))
    request(ex, "kernels", layer="features.3", rid=2)
    msg, buffers = rec.last
    assert "rgb" not in msg and len(buffers) == 3
    assert msg["stack"]["shape"] == [32 * 16, 3, 3]


def test_predictions_top5_with_class_names(demo):
    ex, rec = demo
    request(ex, "predictions", version=ex.image_version)
    top = rec.last[0]["top"]
    assert len(top) == 5
    with torch.no_grad():
        probs = torch.softmax(ex.model(ex.input_tensor), 1)[0]
    best = int(probs.argmax())
    assert top[0]["index"] == best and top[0]["name"] == ex.classes[best]
    assert top[0]["prob"] == pytest.approx(float(probs[best]), rel=1e-5)
    assert [t["prob"] for t in top] == sorted((t["prob"] for t in top), reverse=True)


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"kind": "features", "layer": "nope", "version": 1}, "unknown layer"),
        ({"kind": "features", "layer": ["features.0"], "version": 1}, "unknown layer"),
        ({"kind": "features", "layer": "features.0", "version": 99}, "image version"),
        ({"kind": "kernels", "layer": "features.0<script>"}, "unknown layer"),
        ({"kind": "saliency", "method": "nope", "target": 0, "version": 1}, "unknown saliency"),
        ({"kind": "saliency", "method": "vanilla", "target": 99, "version": 1}, "out of range"),
        ({"kind": "saliency", "method": "vanilla", "target": "0", "version": 1}, "integer"),
        ({"kind": "cam", "method": "GradCAM", "target": 0, "layer": "x", "version": 1},
         "unknown layer"),
        ({"kind": "actmax", "layer": "features.0", "channels": [16]}, "out of range"),
        ({"kind": "actmax", "layer": "features.0", "channels": list(range(65))}, "1 to 64"),
        ({"kind": "actmax", "layer": "features.0", "channels": "0-3"}, "list"),
    ],
)
def test_bad_requests_get_an_error_reply(demo, params, pattern):
    ex, rec = demo
    ex._on_msg(ex, {"type": "request", "id": 7, "key": "k", **params}, [])
    msg, _ = rec.last
    assert msg["type"] == "error" and msg["id"] == 7
    assert re.search(pattern, msg["message"]), msg["message"]
    assert ex.error == ""


@pytest.mark.parametrize(
    "content",
    [
        "not a dict",
        {"type": "exec", "code": "import os"},
        {"type": "request", "id": -1, "key": "k", "kind": "features"},
        {"type": "request", "id": 1, "key": "k" * 5000, "kind": "features"},
        {"type": "request", "id": 1, "key": "k", "kind": "__class__"},
        {"type": "set_image", "height": 4, "width": 4},
    ],
)
def test_malformed_messages_show_an_error_and_never_raise(demo, content):
    ex, rec = demo
    ex._on_msg(ex, content, [])
    assert ex.error.startswith("Ignored a message")
    assert rec.sent == []


def test_set_image_from_a_drawing(demo):
    ex, rec = demo
    version = ex.image_version
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[16:48, 16:48] = [255, 255, 255, 255]
    ex._on_msg(ex, {"type": "set_image", "height": 64, "width": 64}, [rgba.tobytes()])
    assert ex.image_version == version + 1
    np.testing.assert_array_equal(ex.image, rgba[:, :, :3])
    # wrong size: rejected, image unchanged
    ex._on_msg(ex, {"type": "set_image", "height": 64, "width": 64}, [b"\0" * 10])
    assert "bytes" in ex.error and ex.image_version == version + 1
    # the features follow the drawing; the old version is refused
    request(ex, "features", layer="features.0", version=version)
    assert rec.last[0]["type"] == "error"
    request(ex, "features", layer="features.0", version=version + 1)
    got = decode_stack_message(rec.last[0]["stack"], rec.last[1])
    want = feature_maps(ex.model, ex.input_tensor, ["features.0"])["features.0"][0].numpy()
    assert np.abs(got - want).max() < 0.05 * (np.ptp(want) + 1e-6)


def test_python_properties(demo):
    ex, _ = demo
    ex.layer = "features.6"
    assert ex.layer_name == "features.6"
    ex.layer = ex.model.features[3]
    assert ex.layer == "features.3"
    with pytest.raises(ValueError, match="not one of the explorer's layers"):
        ex.layer = "features.1"
    with pytest.raises(ValueError, match=r"'features.8' is not.*Closest: 'features.9'") as err:
        ex.layer = "features.8"  # a module of the model, but not an explorer layer
    assert "features.7" not in str(err.value)
    ex.target = 3
    assert ex.target_class == 3 and ex.target == 3
    ex.target = ex.classes[2]
    assert ex.target == 2
    ex.target = None
    assert ex.target_class == -1
    with pytest.raises(ValueError, match="out of range"):
        ex.target = 50
    ex.method = ex.cam_methods[0].lower()
    assert ex.method == ex.cam_methods[0]
    ex.method = "GradCAM++"  # the engine's aliases work here too
    assert ex.method == "GradCAMPlusPlus"
    with pytest.raises(ValueError, match=r"Unknown CAM method 'GradCAM\+\+\+'"):
        ex.method = "GradCAM+++"
    version = ex.image_version
    ex.image = np.zeros((100, 80, 3), np.uint8)
    assert ex.image.shape == (64, 64, 3) and ex.image_version == version + 1


def test_opening_an_explorer_runs_the_model_once(resnet18):
    """``LayerExplorer(model)`` with the default layers: one forward pass gives the maps, the
    predictions, the default CAM layer and the convs' forward order (no dry run first); its
    slider lists exactly ``conv_layers(model)``, and its shown maps are the first conv's."""
    from cnnviz_widgets import conv_layers
    from cnnviz_widgets.engine.dryrun import default_layer

    calls: list[int] = []
    handle = resnet18.register_forward_pre_hook(lambda module, inputs: calls.append(1))
    try:
        ex = LayerExplorer(resnet18, size=64, background=False)
        assert len(calls) == 1
        assert [info["name"] for info in ex.layers] == list(conv_layers(resnet18))
        assert len(calls) == 1  # the explorer's pass left the forward order known
        assert ex.layer == "conv1"
        assert ex.cam_layer == default_layer(resnet18, ex.input_tensor) == "layer4"
        shown = ex.shown_features
        assert shown["key"] == f"features|{ex.image_version}|conv1"
        got = decode_stack_message(shown["content"]["stack"], shown["buffers"])
        want = feature_maps(resnet18, ex.input_tensor, ["conv1"])["conv1"][0].numpy()
        span = want.max(axis=(1, 2)) - want.min(axis=(1, 2))  # one 8-bit step per map
        assert np.all(np.abs(got - want) <= span[:, None, None] / 510 * 1.05 + 2e-3)
        ex.close()
    finally:
        handle.remove()


def test_python_cache_is_bounded(resnet18):
    ex = LayerExplorer(resnet18, np.zeros((64, 64, 3), np.uint8), size=64,
                       cache_bytes=200_000, background=False)
    assert ex._cache.nbytes <= 200_000
    rec = Recorder(ex)
    for i, info in enumerate(ex.layers):
        request(ex, "features", rid=i, layer=info["name"], version=ex.image_version)
        assert rec.last[0]["type"] == "reply"
        assert ex._cache.nbytes <= max(200_000, Reply({}, rec.last[1]).nbytes)


def test_reply_cache_lru():
    cache = ReplyCache(1000)
    for k in "abc":
        cache.put(k, Reply({}, [b"x" * 300]))  # 556 bytes each with the overhead
    assert "a" not in cache and "b" not in cache and "c" in cache
    cache.put("d", Reply({}, [b"x" * 100]))
    assert cache.get("c") is not None and "d" in cache and cache.nbytes <= 1000
    cache.put("e", Reply({}, [b"x" * 5000]))  # larger than the budget: kept alone
    assert len(cache) == 1 and "e" in cache
    cache.drop(["e"])
    assert len(cache) == 0 and cache.nbytes == 0


def test_request_keys_match_the_golden_cases_the_front_end_reads_too():
    cases = json.loads((Path(__file__).parent / "data" / "request_keys.json").read_text())
    kinds = {case["kind"] for case in cases["cases"]}
    assert kinds == set(KIND_NAMES)  # every kind has a golden case
    for case in cases["cases"]:
        assert request_key(case["kind"], **case["params"]) == case["key"], case


def test_saliency_reply_is_the_engine_map(demo):
    from cnnviz_widgets.engine.saliency import saliency, saliency_map

    ex, rec = demo
    request(ex, "saliency", method="gradient_x_input", target=2, version=ex.image_version)
    msg, buffers = rec.last
    assert msg["type"] == "reply", msg
    got = decode_stack_message(msg["stack"], buffers)[0]
    want = saliency_map(saliency(ex.model, ex.input_tensor, target=2,
                                 method="gradient_x_input"))[0]
    assert got.shape == (64, 64)
    assert np.abs(got - want).max() <= np.ptp(want) / 500 + 1e-6


def test_actmax_optimises_channels_in_batches_and_sends_each_batch_when_done(
        demo, monkeypatch):
    import cnnviz_widgets.engine.actmax as actmax
    from cnnviz_widgets.widgets.requests import actmax as handler

    calls = []

    def fake(model, layer, channels, size=None, seed=None, progress=None, **kw):
        calls.append((layer, list(channels), size))
        progress(1, 2)
        progress(2, 2)
        return np.stack([np.full((size, size, 3), c, np.uint8) for c in channels])

    monkeypatch.setattr(actmax, "activation_max", fake)
    monkeypatch.setattr(handler, "BATCH", 2)
    ex, rec = demo
    request(ex, "actmax", layer="features.3", channels=[4, 1, 9])
    kinds = [m["type"] for m, _ in rec.sent if m["type"] != "progress"]
    assert kinds == ["item", "item", "item", "reply"]  # each image as soon as it is done
    assert rec.sent[0][0]["type"] == "progress"
    first_item = next(i for i, (m, _) in enumerate(rec.sent) if m["type"] == "item")
    assert any(m["type"] == "progress" for m, _ in rec.sent[first_item:])  # then batch 2 runs
    done = [m for m, _ in rec.sent if m["type"] == "progress"][-1]
    assert (done["done"], done["total"]) == (6, 6)
    items = [(m, b) for m, b in rec.sent if m["type"] == "item"]
    assert [m["index"] for m, _ in items] == [1, 4, 9]
    assert items[1][1][0] == bytes([4]) * (64 * 64 * 3)
    assert calls == [("features.3", [1, 4], 64), ("features.3", [9], 64)]


def test_cancel_stops_a_running_job(demo, monkeypatch):
    import cnnviz_widgets.engine.actmax as actmax

    ex, rec = demo

    def slow(model, layer, channels, size=None, seed=None, progress=None, **kw):
        ex._on_msg(ex, {"type": "cancel"}, [])  # the user presses Cancel mid-job
        progress(1, 10)
        raise AssertionError("not reached")

    monkeypatch.setattr(actmax, "activation_max", slow)
    request(ex, "actmax", layer="features.0", channels=[0])
    msg, _ = rec.last
    assert msg["type"] == "error" and msg["message"] == "cancelled"


def test_save_html_is_self_contained(demo, tmp_path):
    ex, _ = demo
    path = ex.save_html(tmp_path / "page.html")
    text = path.read_text()
    assert "http://" not in text and "https://" not in text  # no CDN
    data = json.loads(re.search(r'id="cnnviz-page">(.*?)</script>', text, re.S).group(1))
    keys = set(data["replies"])
    v = ex.image_version
    assert {f"features|{v}|{info['name']}" for info in ex.layers} <= keys
    assert "kernels|features.0" in keys and f"predictions|{v}" in keys
    assert data["state"]["_view"] == "explorer"
    assert "draw" not in data["state"]["views"]
    esm = json.loads(re.search(r'id="cnnviz-esm">(.*?)</script>', text, re.S).group(1))
    import base64

    assert base64.b64decode(esm).decode() == ex._esm


def test_focused_views(demo):
    from cnnviz_widgets import CamView, FeatureMapsView, KernelsView

    k = KernelsView(background=False)
    assert k.views == ["kernels"] and k.tab == "kernels"
    assert FeatureMapsView(background=False).views == ["features"]
    assert CamView(background=False).views == ["cam"]
    with pytest.raises(ValueError, match="Unknown view"):
        LayerExplorer(background=False, views=["nope"])


def test_cam_reply_is_the_engine_map_and_metrics(demo):
    cam_api = pytest.importorskip("cnnviz_widgets.engine.cam")
    ex, rec = demo
    assert ex.cam_methods == list(cam_api.available_cam_methods())
    request(ex, "cam", method="gradcamplusplus", target=1, layer="features.6",
            version=ex.image_version)
    msg, buffers = rec.last
    assert msg["type"] == "reply", msg
    assert msg["method"] == "GradCAMPlusPlus"  # canonical name
    got = decode_stack_message(msg["stack"], buffers)[0]
    want = cam_api.cam(ex.model, ex.input_tensor, "features.6", method="GradCAMPlusPlus",
                       target=1)[0]
    assert np.abs(got - want).max() <= 1 / 500 + 1e-6
    request(ex, "metrics", method="GradCAM", target=1, layer="features", rid=9,
            version=ex.image_version)
    figures = rec.last[0]["figures"]
    assert set(figures) == {"deletion_auc", "insertion_auc", "average_drop"}
    assert all(0.0 <= v <= 1.0 for v in figures.values())


def test_cam_depth_slider_is_filled_by_one_cam_per_layer_pass(demo, monkeypatch):
    from cnnviz_widgets.engine import cam as cam_api

    ex, rec = demo
    request(ex, "cam", method="GradCAM", target=2, layer="features.3", version=ex.image_version)
    assert rec.last[0]["type"] == "reply"
    for layer in ex.cam_layers:
        key = request_key("cam", version=ex.image_version, method="GradCAM", target=2,
                          layer=layer)
        assert key in ex._cache, layer
        got = decode_stack_message(ex._cache.get(key).meta["stack"], ex._cache.get(key).buffers)
        want = cam_api.cam(ex.model, ex.input_tensor, layer, method="GradCAM", target=2)[0]
        assert np.abs(got[0] - want).max() <= 1 / 500 + 1e-6, layer

    # Moving the depth slider is answered from the cache: no engine call at all.
    def fail(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(cam_api, "cam", fail)
    monkeypatch.setattr(cam_api, "cam_per_layer", fail)
    request(ex, "cam", method="GradCAM", target=2, layer=ex.cam_layers[0], rid=2,
            version=ex.image_version)
    assert rec.last[0]["type"] == "reply" and rec.last[0]["layer"] == ex.cam_layers[0]
    # The faithfulness figures reuse the float map of that layer.
    request(ex, "metrics", method="GradCAM", target=2, layer="features.3", rid=3,
            version=ex.image_version)
    assert rec.last[0]["type"] == "reply", rec.last[0]


def test_progress_messages_are_throttled(demo):
    pytest.importorskip("cnnviz_widgets.engine.cam")
    ex, rec = demo
    request(ex, "cam", method="ScoreCAM", target=0, layer="features.11",
            version=ex.image_version)
    kinds = [m["type"] for m, _ in rec.sent]
    assert kinds[-1] == "reply"
    progress = [m for m, _ in rec.sent if m["type"] == "progress"]
    assert 1 <= len(progress) <= 20  # 128 channels reported, a few messages sent
    assert progress[-1]["done"] == progress[-1]["total"]


def test_close_releases_the_model_and_cached_data():
    import gc
    import weakref

    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    ref = weakref.ref(model)
    ex = LayerExplorer(model, np.full((40, 40, 3), 128, np.uint8), size=32, background=False)
    assert len(ex._cache) > 0
    ex.close()
    assert len(ex._cache) == 0 and ex.model is None
    del model
    gc.collect()
    assert ref() is None, "the closed explorer still holds the model"


def test_a_failed_construction_leaves_no_error_behind(recwarn):
    with pytest.raises(ValueError, match="Unknown view"):
        LayerExplorer(views=["nonsense"], background=False)
    import gc

    gc.collect()
    assert not [w for w in recwarn if "_jobs" in str(w.message)]


def test_class_agnostic_maps_are_computed_once_for_every_class(demo, monkeypatch):
    from cnnviz_widgets.engine import cam as cam_api

    ex, rec = demo
    assert set(ex.class_agnostic_methods) == {"EigenCAM", "KPCA_CAM", "FEM"}
    msg, buffers = rec.request(ex, "cam", method="EigenCAM", target=0, layer="features.6",
                               version=ex.image_version, key="a")
    assert msg["type"] == "reply" and msg["target"] is None and msg["class_name"] is None
    want = cam_api.cam(ex.model, ex.input_tensor, "features.6", method="EigenCAM")[0]
    assert np.abs(decode_stack_message(msg["stack"], buffers)[0] - want).max() <= 1 / 500

    def fail(*args, **kwargs):
        raise AssertionError("computed again for another class")

    monkeypatch.setattr(cam_api, "cam", fail)
    monkeypatch.setattr(cam_api, "cam_per_layer", fail)
    for rid, target in enumerate([3, None, 7], start=2):
        msg, _ = rec.request(ex, "cam", rid=rid, method="EigenCAM", target=target,
                             layer="features.6", version=ex.image_version, key=f"b{rid}")
        assert msg["type"] == "reply" and msg["id"] == rid, msg


def test_a_class_map_says_what_it_explains(demo):
    ex, rec = demo
    msg, _ = rec.request(ex, "cam", method="GradCAM", target=5, layer="features.6",
                         version=ex.image_version)
    with torch.no_grad():
        probs = torch.softmax(ex.model(ex.input_tensor), 1)[0]
    assert msg["target"] == 5 and msg["class_name"] == ex.classes[5]
    assert msg["prob"] == pytest.approx(float(probs[5]), rel=1e-5)  # outside the top 5 too


def test_kpca_cam_maps_only_the_layer_asked_for(demo, monkeypatch):
    from cnnviz_widgets.engine import cam as cam_api

    ex, rec = demo
    calls = []
    real = cam_api.cam

    def spy(model, x, layer, **kwargs):
        calls.append(layer)
        return real(model, x, layer, **kwargs)

    monkeypatch.setattr(cam_api, "cam", spy)
    monkeypatch.setattr(cam_api, "cam_per_layer", lambda *a, **k: pytest.fail("every layer"))
    msg, _ = rec.request(ex, "cam", method="KPCA_CAM", target=None, layer="features.11",
                         version=ex.image_version)
    assert msg["type"] == "reply" and calls == ["features.11"]


def test_receptive_fields_are_sent_after_the_cell_that_shows_the_explorer(monkeypatch):
    """In a kernel, tracing the graph for the hover outlines waits until the cell has run (the
    first grid does not need it); then ``layers`` gets the engine's receptive fields."""
    from cnnviz_widgets.engine.receptive import receptive_fields
    from cnnviz_widgets.widgets import explorer as explorer_module

    later: list = []
    monkeypatch.setattr(explorer_module, "after_cell", later.append)
    ex = LayerExplorer(background=False)
    assert len(later) == 1 and all(info["rf"] is None for info in ex.layers)
    later.pop()()
    names = [info["name"] for info in ex.layers]
    want = receptive_fields(ex.model, names)
    for info in ex.layers:
        assert info["rf"] == {**want[info["name"]].to_json(), "input": [64, 64]}
    ex.image = np.zeros((64, 64, 3), np.uint8)  # known now: a new image has them at once
    assert not later and all(info["rf"] is not None for info in ex.layers)


def test_after_cell_runs_once_after_the_running_cell(monkeypatch):
    import IPython
    from IPython.core.events import EventManager, available_events

    from cnnviz_widgets.widgets.jobs import after_cell

    class Shell:
        kernel = object()
        events = EventManager(None, available_events)

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell)
    calls: list[int] = []
    after_cell(lambda: calls.append(1))
    assert calls == []
    Shell.events.trigger("post_run_cell", None)
    Shell.events.trigger("post_run_cell", None)
    assert calls == [1]
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)  # plain Python: at once
    after_cell(lambda: calls.append(2))
    assert calls == [1, 2]


def test_a_new_layer_of_the_first_pass_costs_no_forward_pass(demo, monkeypatch):
    """The first pass's maps of every layer are kept and quantised when first asked for."""
    from cnnviz_widgets.widgets.requests import features as features_module

    ex, rec = demo
    want = feature_maps(ex.model, ex.input_tensor, ["features.6"])["features.6"][0].numpy()
    monkeypatch.setattr(features_module, "feature_maps",
                        lambda *a, **k: pytest.fail("a forward pass for a kept layer"))
    request(ex, "features", layer="features.6", version=ex.image_version,
            key=request_key("features", version=ex.image_version, layer="features.6"))
    msg, buffers = rec.last
    assert msg["type"] == "reply" and msg["layer"] == "features.6"
    got = decode_stack_message(msg["stack"], buffers)
    span = want.max(axis=(1, 2)) - want.min(axis=(1, 2))
    assert np.all(np.abs(got - want) <= span[:, None, None] / 510 + 1e-6)
    assert "features.6" not in ex._subject.pending_maps  # the cache holds it now


def _grey_cnn() -> torch.nn.Module:
    """An MNIST-style network: its first convolution takes one channel."""
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()


def test_a_grayscale_model_is_explored_with_grey_input():
    """A model whose first conv takes one channel (MNIST) gets a one-channel input, normalised
    with its one mean and std (or ImageNet's grey statistics), shown as grey; every map
    request answers with the engine's values for that input."""
    from PIL import Image

    from cnnviz_widgets.engine.actmax import activation_max
    from cnnviz_widgets.engine.cam import cam
    from cnnviz_widgets.engine.inputs import ImageInputError, load_image
    from cnnviz_widgets.engine.saliency import saliency, saliency_map

    model = _grey_cnn()
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    loaded = load_image(photo, size=28, mean=[0.1307], std=[0.3081])
    luma = np.asarray(Image.fromarray(photo).convert("L"), dtype=np.float32)
    assert loaded.tensor.shape == (1, 1, 28, 28)
    np.testing.assert_allclose(loaded.tensor[0, 0].numpy(), (luma / 255 - 0.1307) / 0.3081,
                               rtol=0, atol=1e-6)
    assert (loaded.rgb == luma.astype(np.uint8)[:, :, None]).all()
    with pytest.raises(ImageInputError, match="3 values each .RGB. or 1 each"):
        load_image(photo, mean=[0.5], std=[0.2, 0.2, 0.2])

    ex = LayerExplorer(model, photo, size=28, mean=[0.1307], std=[0.3081], background=False)
    rec = Recorder(ex)
    torch.testing.assert_close(ex.input_tensor, loaded.tensor, rtol=0, atol=0)
    assert ex.image.shape == (28, 28, 3) and [i["name"] for i in ex.layers] == ["0", "3"]
    request(ex, "features", layer="3", version=ex.image_version)
    got = decode_stack_message(rec.last[0]["stack"], rec.last[1])
    want = feature_maps(model, ex.input_tensor, ["3"])["3"][0].numpy()
    assert np.abs(got - want).max() <= np.ptp(want) / 255 + 1e-6
    request(ex, "kernels", layer="0")
    got_k = decode_stack_message(rec.last[0]["stack"], rec.last[1])
    np.testing.assert_allclose(got_k, kernels(model, "0").numpy().reshape(8, 3, 3),
                               atol=float(np.ptp(kernels(model, "0").numpy())) / 400)
    request(ex, "cam", method="GradCAM", target=4, layer="3", version=ex.image_version)
    got_cam = decode_stack_message(rec.last[0]["stack"], rec.last[1])[0]
    want_cam = cam(model, ex.input_tensor, "3", method="GradCAM", target=4)[0]
    assert np.abs(got_cam - want_cam).max() <= 1 / 500 + 1e-6
    request(ex, "saliency", method="vanilla", target=4, version=ex.image_version)
    got_s = decode_stack_message(rec.last[0]["stack"], rec.last[1])[0]
    want_s = saliency_map(saliency(model, ex.input_tensor, target=4, method="vanilla"))[0]
    assert np.abs(got_s - want_s).max() <= np.ptp(want_s) / 500 + 1e-6
    # a drawing becomes a grey input too
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[8:20, 8:20] = [255, 255, 255, 255]
    ex._on_msg(ex, {"type": "set_image", "height": 28, "width": 28}, [rgba.tobytes()])
    assert ex.error == "" and ex.input_tensor.shape == (1, 1, 28, 28)
    assert float(ex.input_tensor[0, 0, 10, 10]) == pytest.approx((1 - 0.1307) / 0.3081)
    # activation maximisation: plain gradient ascent makes grey images; the regularised mode
    # (RGB by construction) says to use the plain one
    request(ex, "actmax", layer="3", channels=[0], regularize=True, rid=7)
    assert rec.last[0]["type"] == "error" and "regularize=False" in rec.last[0]["message"]
    rec.sent.clear()
    request(ex, "actmax", layer="3", channels=[2, 5], regularize=False, rid=8)
    items = [(m, b) for m, b in rec.sent if m["type"] == "item"]
    want_images = activation_max(model, "3", [2, 5], size=28, seed=0, mean=[0.1307],
                                 std=[0.3081], regularize=False)
    assert [m["index"] for m, _ in items] == [2, 5] and rec.last[0]["type"] == "reply"
    for (_, buffers), want_image in zip(items, want_images, strict=True):
        assert buffers[0] == want_image.tobytes()

    default = LayerExplorer(model, photo, size=28, background=False)  # no mean/std given
    np.testing.assert_allclose(default.input_tensor[0, 0].numpy(),
                               (luma / 255 - 0.449) / 0.226, rtol=0, atol=1e-6)
    with pytest.raises(ImageInputError, match=r"takes 1 channel.*mean=\[0.1307\]"):
        LayerExplorer(model, size=28, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
