"""The Trust view: ``sanity`` requests against the engine's ``sanity_check``, ``evaluation_worst``
requests against the per-image values of an ``evaluate`` result (and, with the evaluation's
data, their thumbnails against the dataset's images and their maps against the engine's
``cam`` and ``saliency``), the ``evaluation_summary`` trait against its summary; bad requests
are clear errors and the model is left as found.
"""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from cnnviz_widgets import LayerExplorer, TrustView
from cnnviz_widgets.demo import make_shapes
from cnnviz_widgets.demo.examples import ShapeImages
from cnnviz_widgets.demo.model import MEAN, STD
from cnnviz_widgets.engine.cam import cam
from cnnviz_widgets.engine.data import Transform
from cnnviz_widgets.engine.dryrun import default_layer
from cnnviz_widgets.engine.metrics import evaluate, sanity_check
from cnnviz_widgets.engine.metrics.sanity_result import SanityCheck
from cnnviz_widgets.engine.saliency import saliency, saliency_map
from cnnviz_widgets.widgets import dispatch
from cnnviz_widgets.widgets.jobs import Cancelled
from cnnviz_widgets.widgets.recorder import Recorder
from cnnviz_widgets.widgets.requests import Job, request_key
from cnnviz_widgets.widgets.requests.evaluation import THUMB, WORST
from cnnviz_widgets.widgets.serialize import decode_stack_message

from .model_state import Fingerprint

METHODS = ["GradCAM", "vanilla"]
METRICS = ["sparseness", "deletion_auc"]


def ask(ex: LayerExplorer, rec: Recorder, kind: str, rid: int = 1, **params):
    key = request_key(kind, **params) if "bad" not in params else "bad"
    params.pop("bad", None)
    rec.request(ex, kind, rid=rid, key=key, **params)
    replies = [(c, b) for c, b in rec.sent
               if c.get("id") == rid and c["type"] in ("reply", "error")]
    assert replies, rec.sent[-3:]
    return replies[-1]


@pytest.fixture(scope="module")
def evaluation():
    ex = LayerExplorer(background=False)
    data = ShapeImages(24, seed=5)
    result = evaluate(ex.model, data, METHODS, METRICS, batch_size=12, n_boot=200)
    ex.close()
    return result


@pytest.fixture
def demo(evaluation):
    ex = LayerExplorer(background=False, evaluation=evaluation)
    return ex, Recorder(ex)


def top_class(ex: LayerExplorer) -> int:
    return int(ex._subject.probabilities().argmax())


@pytest.mark.parametrize(("method", "mode"), [("GradCAM", "cascade"), ("guided", "independent"),
                                              ("gradcamplusplus", "cascade")])
def test_a_sanity_reply_is_the_engine_check(demo, method, mode):
    ex, rec = demo
    before = Fingerprint.of(ex.model)
    target = top_class(ex)
    content, buffers = ask(ex, rec, "sanity", version=ex.image_version, method=method, mode=mode,
                           target=target)
    assert content["type"] == "reply", content
    want = sanity_check(ex.model, ex.input_tensor, method, target=target, mode=mode)
    before.assert_same(ex.model)  # the widget's check and the test's left it as found
    assert content["method"] == want.method and content["mode"] == mode
    assert content["target"] == target and content["class_name"] == ex.classes[target]
    maps = decode_stack_message(content["stack"], buffers)
    expected = np.stack([want.original[0], *[s.maps[0] for s in want.steps],
                         want.random_logit.maps[0]])
    assert content["stack"]["labels"] == ["original", *want.layers, "random logit"]
    assert maps.shape == expected.shape
    lo = expected.reshape(len(expected), -1).min(1)[:, None, None]
    hi = expected.reshape(len(expected), -1).max(1)[:, None, None]
    assert np.all(np.abs(maps - expected) <= (hi - lo) / 255 * 0.51 + 1e-6)  # 8-bit levels
    assert [s["layer"] for s in content["steps"]] == want.layers
    for step, ref in zip(content["steps"], want.steps, strict=True):
        for name in ("spearman", "ssim", "hog"):
            got, exp = step["scores"][name], float(ref.scores[name][0])
            assert (got is None and math.isnan(exp)) or got == pytest.approx(exp, abs=1e-9)
    logit = content["random_logit"]
    assert logit["target"] == int(want.random_targets[0])
    assert logit["scores"]["spearman"] == pytest.approx(float(want.random_logit.scores[
        "spearman"][0]))
    default = SanityCheck.fails.__defaults__
    assert default is not None and content["threshold"] == default[0] == 0.5
    assert content["over"] == "average" and content["similarity"] == "spearman"
    assert content["value"] == pytest.approx(want.average_similarity())
    assert content["fails"] is want.fails()


def test_the_demo_sanity_check_is_shown_and_kept_in_the_widget_state(demo):
    ex, rec = demo
    target = top_class(ex)
    content, _ = ask(ex, rec, "sanity", version=ex.image_version, method="GradCAM",
                     mode="cascade", target=target)
    assert ex.shown_sanity is not None
    assert ex.shown_sanity["key"] == f"sanity|{ex.image_version}|GradCAM|cascade|{target}"
    # demo model: GradCAM's maps change once the top layers are random
    assert content["fails"] is False
    ex.image = ex.image  # a new image: what was shown is for the old one
    assert ex.shown_sanity is None


def test_sanity_progress_per_randomised_layer(demo, monkeypatch):
    monkeypatch.setattr(dispatch, "PROGRESS_INTERVAL_S", 0.0)  # every report is sent
    ex, rec = demo
    target = top_class(ex)
    ask(ex, rec, "sanity", version=ex.image_version, method="vanilla", mode="cascade",
        target=target)
    progress = [c for c, _ in rec.sent if c["type"] == "progress" and c["kind"] == "sanity"]
    layers = 6  # the demo model's randomisable layers
    dones = [c["done"] for c in progress if c["total"] == layers + 2]
    assert dones == list(range(1, layers + 3))
    assert "sanity check of vanilla: map 3 / 8" in [c["text"] for c in progress]


def test_a_cancel_stops_the_check_between_layers_and_leaves_the_model(demo):
    ex, _ = demo
    before = Fingerprint.of(ex.model)
    handler = ex._handlers["sanity"]
    subject = ex._subject
    p = handler.validate(subject, {"version": ex.image_version, "method": "GradCAM",
                                   "mode": "independent", "target": top_class(ex)})
    calls = []

    def progress(done, total, text=""):
        calls.append(done)
        if len(calls) == 3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        handler.compute(subject, p, Job(progress=progress, item=lambda meta, buffers: None))
    assert len(calls) == 3
    before.assert_same(ex.model)


@pytest.mark.parametrize(("params", "says"), [
    ({"method": "NoSuchCAM", "mode": "cascade", "target": 0}, "unknown method 'NoSuchCAM'"),
    ({"method": "GradCAM", "mode": "sideways", "target": 0}, "unknown sanity-check mode"),
    ({"method": "GradCAM", "mode": "cascade", "target": 99}, "out of range"),
    ({"method": "GradCAM", "mode": "cascade", "target": "1"}, "class index"),
    ({"method": "GradCAM", "mode": "cascade", "target": 0, "version": 77}, "image version"),
])
def test_bad_sanity_requests_are_clear_errors(demo, params, says):
    ex, rec = demo
    before = Fingerprint.of(ex.model)
    content, _ = ask(ex, rec, "sanity", bad=True, **{"version": ex.image_version, **params})
    assert content["type"] == "error" and says in content["message"], content
    before.assert_same(ex.model)


def test_the_evaluation_summary_trait_is_the_summary(demo, evaluation):
    ex, _ = demo
    rows = ex.evaluation_summary
    assert len(rows) == len(evaluation.summary) == len(METHODS) * len(METRICS)
    for got, want in zip(rows, evaluation.summary, strict=True):
        assert (got["method"], got["metric"], got["n"]) == (want["method"], want["metric"],
                                                             want["n"])
        for k in ("mean", "ci_low", "ci_high"):
            assert got[k] == pytest.approx(want[k])
        assert got["better"] == ("higher" if want["higher_is_better"] else "lower")
    assert "trust" in ex.views
    assert LayerExplorer(background=False).evaluation_summary is None


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("metric", METRICS)
def test_the_worst_images_are_the_per_image_values_sorted(demo, evaluation, method, metric):
    ex, rec = demo
    content, buffers = ask(ex, rec, "evaluation_worst", method=method, metric=metric)
    assert content["type"] == "reply", content
    values = evaluation.value(method, metric)
    higher = metric != "deletion_auc"  # sparseness: higher is better
    order = sorted(range(len(values)), key=lambda i: (math.isnan(values[i]),
                                                      values[i] if higher else -values[i]))
    want = order[:WORST]
    assert content["indices"] == [int(evaluation.indices[i]) for i in want]
    assert content["values"] == pytest.approx([float(values[i]) for i in want])
    assert content["targets"] == [int(evaluation.targets[i]) for i in want]
    assert content["labels"] == [int(evaluation.labels[i]) for i in want]
    assert content["target_names"] == [ex.classes[int(evaluation.targets[i])] for i in want]
    assert content["label_names"] == [ex.classes[int(evaluation.labels[i])] for i in want]
    assert content["better"] == ("higher" if higher else "lower")
    assert content["n"] == 24 and content["images"] is False and buffers == []
    worst = content["values"]
    assert worst == (sorted(worst) if higher else sorted(worst, reverse=True))
    rest = [float(values[i]) for i in order[WORST:]]
    assert all((v >= max(worst)) if higher else (v <= min(worst)) for v in rest)


@pytest.mark.parametrize(("params", "says"), [
    ({"method": "ScoreCAM", "metric": "sparseness"}, "no method 'ScoreCAM'"),
    ({"method": "GradCAM", "metric": "road_combined"}, "no metric 'road_combined'"),
    ({"method": 3, "metric": "sparseness"}, "no method 'int'"),
])
def test_bad_drill_downs_are_clear_errors(demo, params, says):
    ex, rec = demo
    content, _ = ask(ex, rec, "evaluation_worst", bad=True, **params)
    assert content["type"] == "error" and says in content["message"], content


def test_without_an_evaluation_a_drill_down_says_how_to_make_one():
    ex = LayerExplorer(background=False)
    rec = Recorder(ex)
    content, _ = ask(ex, rec, "evaluation_worst", method="GradCAM", metric="sparseness")
    assert content["type"] == "error"
    assert "evaluation=evaluate(model, data, methods, metrics)" in content["message"]


def test_evaluation_must_be_an_evaluation():
    with pytest.raises(TypeError, match=r"evaluate\(model, data, methods, metrics\)"):
        LayerExplorer(background=False, evaluation={"GradCAM": 1})


def test_trust_view_shows_one_tab(evaluation):
    view = TrustView(background=False, evaluation=evaluation)
    assert view.views == ["trust"] and view.tab == "trust"
    assert view.evaluation_summary
    with pytest.raises(TypeError, match="one view"):
        TrustView(views=["cam"])
    assert torch.is_tensor(view.input_tensor)


# ---------------------------------------------------------------- the drill-down's pictures


def engine_maps(model, x: torch.Tensor, method: str, layer: str | None,
                targets: list[int]) -> np.ndarray:
    """The maps the evaluation scored, made here by the engine's own functions: a CAM method's
    map at its layer (already in [0, 1]) or the channel-absmax of a saliency attribution,
    each min-max scaled to [0, 1]."""
    if method == "vanilla":
        maps = saliency_map(saliency(model, x, targets, "vanilla"), "absmax")
    else:
        maps = cam(model, x, layer, method, targets)
    maps = torch.as_tensor(maps).detach().to(torch.float64).cpu().numpy()
    lo = maps.reshape(len(maps), -1).min(1)[:, None, None]
    hi = maps.reshape(len(maps), -1).max(1)[:, None, None]
    return ((maps - lo) / np.where(hi > lo, hi - lo, 1)).astype(np.float32)


def within_levels(got: np.ndarray, want: np.ndarray, slack: float = 1e-6) -> bool:
    """Whether quantised maps ``got`` are ``want`` to half an 8-bit level of each map's range."""
    lo = want.reshape(len(want), -1).min(1)[:, None, None]
    hi = want.reshape(len(want), -1).max(1)[:, None, None]
    return bool(np.all(np.abs(got - want) <= (hi - lo) / 255 * 0.51 + slack))


@pytest.fixture(scope="module")
def data():
    return ShapeImages(24, seed=5)


@pytest.fixture
def pictured(evaluation, data):
    ex = LayerExplorer(background=False, evaluation=evaluation, evaluation_data=data)
    return ex, Recorder(ex)


@pytest.mark.parametrize("method", METHODS)
def test_the_drill_down_shows_each_worst_image_and_the_method_map(pictured, evaluation, data,
                                                                   method):
    ex, rec = pictured
    before = Fingerprint.of(ex.model)
    content, buffers = ask(ex, rec, "evaluation_worst", method=method, metric="sparseness")
    before.assert_same(ex.model)
    assert content["type"] == "reply" and content["images"] is True, content
    indices = content["indices"]
    assert indices == evaluation.worst(method, "sparseness", WORST)
    k = len(indices)
    # 64 px demo images: sent as they are, the dataset's pixels (its inputs un-normalised)
    images, _, _ = make_shapes(24, size=64, seed=5)
    assert content["rgb"]["shape"] == [k, 64, 64, 3]
    thumbs = np.frombuffer(buffers[0], np.uint8).reshape(k, 64, 64, 3)
    want_rgb = (images[indices].permute(0, 2, 3, 1).numpy() * 255).round()
    assert np.abs(thumbs.astype(float) - want_rgb).max() <= 1  # normalised and back: rounding
    # the map of each image for the class the evaluation explained, as the engine makes it
    rows = [int(np.flatnonzero(evaluation.indices == i)[0]) for i in indices]
    targets = [int(evaluation.targets[r]) for r in rows]
    assert content["targets"] == targets
    layer = content["layer"]
    x = torch.stack([data[i][0] for i in indices])
    # the evaluation's CAM layer: the default one (no layer= given); none for saliency
    assert layer == (default_layer(ex.model, x[:1]) if method == "GradCAM" else None)
    want = engine_maps(ex.model, x, method, layer, targets)
    got = decode_stack_message(content["maps"], buffers[1:])
    assert got.shape == want.shape == (k, 64, 64)
    assert within_levels(got, want)
    # another image's map is not that one's (the test can tell maps apart)
    assert not within_levels(got[[1, 0, *range(2, k)]], want)
    # the drill-down on screen is in the widget state, and outlives a new input image
    assert ex.shown_evaluation_worst["key"] == f"evaluation_worst|{method}|sparseness"
    ex.image = ex.image
    assert ex.shown_evaluation_worst is not None


def test_large_images_come_as_thumbnails_of_the_dataset_images():
    ex = LayerExplorer(background=False)
    side = 160
    images, labels, _ = make_shapes(8, size=side, seed=2)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    data = DataLoader(TensorDataset((images - mean) / std, labels), batch_size=4)
    result = evaluate(ex.model, data, ["GradCAM"], ["sparseness"], n_boot=50)
    ex.close()
    ex = LayerExplorer(background=False, evaluation=result, evaluation_data=data)
    rec = Recorder(ex)
    content, buffers = ask(ex, rec, "evaluation_worst", method="GradCAM", metric="sparseness")
    indices = content["indices"]
    k = len(indices)
    assert content["rgb"]["shape"] == [k, THUMB, THUMB, 3]
    thumbs = np.frombuffer(buffers[0], np.uint8).reshape(k, THUMB, THUMB, 3)
    for thumb, i in zip(thumbs, indices, strict=True):
        rgb = (images[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        want = np.asarray(Image.fromarray(rgb).resize((THUMB, THUMB), Image.BILINEAR))
        assert np.abs(thumb.astype(int) - want.astype(int)).max() <= 2  # PIL's antialiased resize
    got = decode_stack_message(content["maps"], buffers[1:])
    rows = [int(np.flatnonzero(result.indices == i)[0]) for i in indices]
    full = engine_maps(ex.model, ((images - mean) / std)[indices], "GradCAM", content["layer"],
                       [int(result.targets[r]) for r in rows])
    want = np.stack([np.asarray(Image.fromarray(m, mode="F").resize((THUMB, THUMB),
                                                                    Image.BILINEAR))
                     for m in full])
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1 / 255 + 0.01  # an 8-bit level and the two resizes


def test_a_click_makes_the_evaluated_image_the_input(pictured, evaluation, data):
    ex, _ = pictured
    index = evaluation.worst("GradCAM", "sparseness", 1)[0]
    version = ex.image_version
    ex._on_msg(ex, {"type": "set_image", "evaluation_index": index}, [])
    assert ex.error == ""
    assert ex.image_version == version + 1
    assert torch.equal(ex.input_tensor.cpu(), data[index][0][None])
    images, _, _ = make_shapes(24, size=64, seed=5)
    want = (images[index].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(ex.image.astype(float) - want).max() <= 1
    other = (index + 1) % 24
    assert not torch.equal(data[other][0][None], ex.input_tensor.cpu())
    for bad, says in ((99, "not one of the evaluation's 24 images"), ("3", "must be an integer")):
        ex._on_msg(ex, {"type": "set_image", "evaluation_index": bad}, [])
        assert says in ex.error, ex.error
        ex.error = ""
    assert ex.image_version == version + 1  # a bad index changes nothing


def test_a_click_without_the_data_says_how_to_get_it(demo):
    ex, _ = demo
    ex._on_msg(ex, {"type": "set_image", "evaluation_index": 0}, [])
    assert "evaluation_data=data" in ex.error


def test_data_of_another_length_is_a_clear_error(evaluation):
    with pytest.raises(ValueError, match=r"evaluation_data: The data has 30 items, but the "
                                         r"evaluation scored 24 images"):
        LayerExplorer(background=False, evaluation=evaluation,
                      evaluation_data=ShapeImages(30, seed=5))
    with pytest.raises(TypeError, match="evaluation_data= needs evaluation="):
        LayerExplorer(background=False, evaluation_data=ShapeImages(24, seed=5))


def test_an_unpickled_evaluation_shows_the_same_pictures(evaluation, data):
    again = pickle.loads(pickle.dumps(evaluation))
    assert again.explainers == {} and again.layers == evaluation.layers
    assert again.layers["vanilla"] is None and again.layers["GradCAM"] is not None
    replies = []
    for result in (evaluation, again):
        ex = LayerExplorer(background=False, evaluation=result, evaluation_data=data)
        replies.append(ask(ex, Recorder(ex), "evaluation_worst", method="GradCAM",
                           metric="sparseness"))
    (first, first_buffers), (second, second_buffers) = replies
    assert second["images"] is True and second["layer"] == first["layer"]
    assert second_buffers == first_buffers  # the same thumbnails and maps, byte for byte
    # a transform function that cannot be pickled: the items cannot be read again
    lost = pickle.loads(pickle.dumps(dataclasses.replace(
        evaluation, transform=Transform(function=lambda image: torch.zeros(3, 64, 64)))))
    assert lost.transform_lost and lost.transform is None
    with pytest.raises(ValueError, match="unpickled without its transform function"):
        lost.source(data)

