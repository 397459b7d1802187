"""The objects view of detectors and segmenters: ``objects`` replies against the engine's
``detections`` / ``segmentation``, ``object_cam`` maps against ``cam`` with a ``BoxTarget`` or
``RegionTarget`` (quantised), the other tabs' requests on these models (kernels, feature maps,
saliency of the chosen object, receptive fields at the detector's real input size), the
``task=`` and ``views=`` choices, the saved state, cancel, and bad requests as clear errors
with the model left as found. Random-init torchvision models (tests/helpers) and the demos.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnviz_widgets import LayerExplorer, ObjectsView
from cnnviz_widgets.engine import feature_maps, kernels
from cnnviz_widgets.engine.cam import cam
from cnnviz_widgets.engine.detection import detections, segmentation
from cnnviz_widgets.engine.dryrun import default_layer
from cnnviz_widgets.engine.receptive import receptive_fields
from cnnviz_widgets.engine.regions import BoxTarget, RegionTarget
from cnnviz_widgets.engine.saliency import saliency, saliency_map
from cnnviz_widgets.widgets.jobs import Cancelled
from cnnviz_widgets.widgets.recorder import Recorder
from cnnviz_widgets.widgets.requests import Job, request_key
from cnnviz_widgets.widgets.requests.objects import SCORE_FLOOR
from cnnviz_widgets.widgets.serialize import decode_stack_message

from .helpers.detection_models import build, smooth_images
from .model_state import Fingerprint

IMAGE = smooth_images(1, seed=7)[0]
"""A smooth random 160 x 192 image; the explorer shows its 224 x 224 centre crop."""
SEG_IMAGE = smooth_images(1, seed=1)[0]
"""An image where the random LRASPP predicts four of its five classes (not class 2)."""


def ask(ex: LayerExplorer, rec: Recorder, kind: str, rid: int = 1, **params):
    """Send a request as the front end does; its reply or error ``(content, buffers)``."""
    rec.request(ex, kind, rid=rid, key=request_key(kind, **params), **params)
    replies = [(c, b) for c, b in rec.sent if c.get("id") == rid and c["type"] in ("reply",
                                                                                 "error")]
    assert replies, rec.sent[-3:]
    return replies[-1]


def close_to(got: np.ndarray, want: np.ndarray) -> bool:
    """``got`` is ``want`` quantised to 8-bit levels of its own range (half a level)."""
    assert got.shape == want.shape
    span = float(want.max() - want.min())
    return bool(np.all(np.abs(got - want) <= span / 255 * 0.51 + 1e-6))


@pytest.fixture(scope="module")
def faster():
    model = build("fasterrcnn_mobilenet")
    ex = LayerExplorer(model, IMAGE, background=False)
    return ex, Recorder(ex)


@pytest.fixture(scope="module")
def segmenter():
    model = build("lraspp")
    ex = LayerExplorer(model, SEG_IMAGE, background=False)
    return ex, Recorder(ex)


def found_boxes(ex: LayerExplorer):
    """What the detector predicts for the explorer's input, highest score first."""
    d = detections(ex.model, ex.input_tensor, score_threshold=SCORE_FLOOR)[0]
    order = torch.sort(-d.scores, stable=True).indices
    return d.boxes[order], d.labels[order], d.scores[order]


# ---------------------------------------------------------------------- detectors


def test_a_detectors_explorer_opens_on_its_objects(faster):
    ex, _ = faster
    assert ex.task == "detection"
    assert ex.views == ["kernels", "features", "objects", "saliency", "actmax", "draw"]
    assert ex.tab == "objects"
    # torchvision's detectors normalise inside: the input stays [0, 1]
    x = ex.input_tensor
    assert x.shape == (1, 3, 224, 224) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert torch.equal(x[0], torch.from_numpy(ex.image).permute(2, 0, 1).float() / 255)


def test_the_objects_reply_is_the_engines_detections(faster):
    ex, _ = faster
    shown = ex.shown_objects
    assert shown is not None and shown["key"] == f"objects|{ex.image_version}"
    meta, buffers = shown["content"], shown["buffers"]
    boxes, labels, scores = found_boxes(ex)
    k = len(labels)
    assert k >= 5  # a calibrated random detector finds boxes: the test compares something
    assert meta["task"] == "detection" and meta["size"] == [224, 224]
    assert meta["floor"] == SCORE_FLOOR and meta["boxes"]["shape"] == [k, 4]
    assert meta["labels"] == labels.tolist()
    assert meta["label_names"] == [f"class {v}" for v in labels.tolist()]  # no names given
    got_boxes = np.frombuffer(buffers[0], "<f4").reshape(k, 4)
    got_scores = np.frombuffer(buffers[1], "<f4")
    assert np.array_equal(got_boxes, boxes.numpy()) and np.array_equal(got_scores,
                                                                       scores.numpy())
    assert np.all(np.diff(got_scores) <= 0) and got_scores.min() >= SCORE_FLOOR


@pytest.mark.parametrize(("method", "index", "normalize"), [
    ("GradCAM", 1, False), ("GradCAM", 0, True), ("EigenCAM", 2, False)])
def test_a_box_map_is_cam_of_its_box_target(faster, method, index, normalize):
    ex, rec = faster
    before = Fingerprint.of(ex.model)
    boxes, labels, scores = found_boxes(ex)
    layer = ex.cam_layer
    content, buffers = ask(ex, rec, "object_cam", version=ex.image_version, method=method,
                           layer=layer, object=index, normalize=normalize)
    assert content["type"] == "reply", content
    target = BoxTarget(int(labels[index]), boxes[index])
    want = cam(ex.model, ex.input_tensor, layer, method=method, target=target,
               normalize_in_boxes=normalize)[0]
    before.assert_same(ex.model)
    got = decode_stack_message(content["stack"], buffers)[0]
    assert close_to(got, want)
    assert content["object"] == index and content["label"] == int(labels[index])
    assert content["class_name"] == f"class {int(labels[index])} #{index + 1}"
    assert content["score"] == pytest.approx(float(scores[index]))
    assert content["box"] == pytest.approx(boxes[index].tolist())
    assert content["layer"] == layer and content["normalize"] is normalize
    if normalize:  # zero outside the box's pixels
        x1, y1, x2, y2 = boxes[index].tolist()
        outside = np.ones_like(got, bool)
        outside[int(np.floor(y1)):int(np.ceil(y2)), int(np.floor(x1)):int(np.ceil(x2))] = False
        assert outside.any() and float(got[outside].max()) == 0.0
    # what a saved notebook shows
    assert ex.shown_object_cam["key"] == (f"object_cam|{ex.image_version}|{method}|{index}|"
                                          f"{layer}|{'box' if normalize else 'image'}")


def test_the_other_tabs_work_on_a_detector(faster):
    ex, rec = faster
    x = ex.input_tensor
    boxes, labels, scores = found_boxes(ex)
    # the class buttons of other tabs are its boxes
    top = ex.shown_predictions["content"]["top"]
    assert [p["index"] for p in top] == [0, 1, 2, 3, 4]
    assert [p["prob"] for p in top] == pytest.approx(scores[:5].tolist())
    # kernels and feature maps of a backbone layer
    name = "backbone.body.4.block.0.0"
    content, buffers = ask(ex, rec, "kernels", rid=2, layer=name)
    assert content["type"] == "reply", content
    k = kernels(ex.model, name)
    assert content["kernel_shape"] == list(k.shape)
    got = decode_stack_message(content["stack"], buffers)
    assert close_to(got[:8], k.reshape(-1, *k.shape[2:])[:8].numpy())
    content, buffers = ask(ex, rec, "features", rid=3, version=ex.image_version, layer=name)
    assert content["type"] == "reply", content
    want = feature_maps(ex.model, x, [name])[name][0].numpy()
    got = decode_stack_message(content["stack"], buffers)
    assert got.shape == want.shape and all(close_to(g, w) for g, w in zip(got, want,
                                                                          strict=True))
    # saliency of a box: the engine's saliency of its BoxTarget
    content, buffers = ask(ex, rec, "saliency", rid=4, version=ex.image_version,
                           method="vanilla", target=1)
    assert content["type"] == "reply", content
    want = saliency_map(saliency(ex.model, x, target=BoxTarget(int(labels[1]), boxes[1]),
                                 method="vanilla"))[0]
    assert close_to(decode_stack_message(content["stack"], buffers)[0], np.asarray(want))
    assert content["target"] == 1 and content["prob"] == pytest.approx(float(scores[1]))


def test_a_detectors_receptive_fields_are_found_at_its_real_input_size(faster):
    ex, _ = faster
    name = "backbone.body.4.block.0.0"
    info = next(i for i in ex.layers if i["name"] == name)
    # the detector resizes 224 px to 160 px (min_size=160) before its backbone
    want = receptive_fields(ex.model, [name], input_size=(224, 224))[name].to_json()
    assert info["rf"] == {**want, "input": [224, 224]}
    at_own = receptive_fields(ex.model, [name], input_size=(160, 160))[name].to_json()
    assert want["size"] != at_own["size"]  # a field at the wrong size would differ


# ---------------------------------------------------------------------- segmenters


def test_the_objects_reply_of_a_segmenter_is_its_class_mask(segmenter):
    ex, _ = segmenter
    assert ex.task == "segmentation" and "objects" in ex.views and "cam" not in ex.views
    meta, buffers = ex.shown_objects["content"], ex.shown_objects["buffers"]
    pred = segmentation(ex.model, ex.input_tensor)[0]
    classes, counts = torch.unique(pred, return_counts=True)
    assert len(classes) == 4  # several classes: the order and the mask are tested
    count = dict(zip(classes.tolist(), counts.tolist(), strict=True))
    assert meta["task"] == "segmentation" and meta["mask"]["shape"] == list(pred.shape)
    assert sorted(meta["labels"]) == sorted(count)
    assert meta["pixels"] == [count[c] for c in meta["labels"]]
    # most pixels first, the background (0) last
    foreground = [c for c in meta["labels"] if c != 0]
    assert [count[c] for c in foreground] == sorted((count[c] for c in foreground),
                                                    reverse=True)
    if 0 in count:
        assert meta["labels"][-1] == 0
    mask = np.frombuffer(buffers[0], np.uint8).reshape(pred.shape)
    assert np.array_equal(np.asarray(meta["labels"])[mask], pred.numpy())


def test_a_large_mask_is_kept_smaller_in_the_saved_state():
    """A 600 x 600 class mask (352 KiB) is over the widget state's budget: the state keeps every
    second pixel (the middle of each 2 x 2 cell), the counts of the full mask, and the display
    picture scales it back up; the full mask still goes to the front end by message."""
    from cnnviz_widgets.widgets.dispatch import SHOWN_BYTES
    from cnnviz_widgets.widgets.picture import view_pixels

    ex = LayerExplorer(task="segmentation", size=600, background=False)
    rec = Recorder(ex)
    pred = segmentation(ex.model, ex.input_tensor)[0]
    assert pred.shape == (600, 600) and len(pred.unique()) >= 3
    meta, buffers = ex.shown_objects["content"], ex.shown_objects["buffers"]
    assert meta["mask"]["shape"] == [300, 300] and meta["partial"] == {"step": 2}
    assert sum(len(b) for b in buffers) <= SHOWN_BYTES
    small = np.asarray(meta["labels"])[np.frombuffer(buffers[0], np.uint8).reshape(300, 300)]
    assert np.array_equal(small, pred.numpy()[1::2, 1::2])
    classes, counts = torch.unique(pred, return_counts=True)
    count = dict(zip(classes.tolist(), counts.tolist(), strict=True))
    assert meta["pixels"] == [count[c] for c in meta["labels"]]  # of the full mask
    # the display picture: the classes' colours over the image where the scaled-up mask has a
    # shape (the same mask the front end draws: cell (r, c) of the kept mask covers pixels
    # 2r, 2r + 1 and 2c, 2c + 1)
    pixels, _, _ = view_pixels(ex)
    shape = np.repeat(np.repeat(small != 0, 2, axis=0), 2, axis=1)
    changed = np.abs(pixels[:, :600].astype(int) - ex.image.astype(int)).sum(axis=2) > 0
    assert changed[shape].mean() > 0.95 and changed[~shape].mean() < 0.05
    # asked for by the front end, the whole mask comes by message
    content, buffers = ask(ex, rec, "objects", version=ex.image_version)
    assert content["mask"]["shape"] == [600, 600] and "partial" not in content
    full = np.asarray(content["labels"])[np.frombuffer(buffers[0], np.uint8).reshape(600, 600)]
    assert np.array_equal(full, pred.numpy())


def test_a_class_map_is_cam_of_its_region_target(segmenter):
    ex, rec = segmenter
    before = Fingerprint.of(ex.model)
    pred = segmentation(ex.model, ex.input_tensor)[0]
    label = ex.shown_objects["content"]["labels"][0]
    content, buffers = ask(ex, rec, "object_cam", version=ex.image_version, method="GradCAM",
                           layer=ex.cam_layer, object=label, normalize=False)
    assert content["type"] == "reply", content
    want = cam(ex.model, ex.input_tensor, ex.cam_layer, method="GradCAM",
               target=RegionTarget(label, pred == label))[0]
    before.assert_same(ex.model)
    assert close_to(decode_stack_message(content["stack"], buffers)[0], want)
    share = float((pred == label).float().mean())
    assert content["box"] is None and content["score"] == pytest.approx(share)
    assert content["class_name"] == f"class {label}"
    # saliency of the class's region
    content, buffers = ask(ex, rec, "saliency", rid=2, version=ex.image_version,
                           method="vanilla", target=label)
    want = saliency_map(saliency(ex.model, ex.input_tensor,
                                 target=RegionTarget(label, pred == label), method="vanilla"))[0]
    assert close_to(decode_stack_message(content["stack"], buffers)[0], np.asarray(want))


# ---------------------------------------------------------------------- bad requests


@pytest.mark.parametrize(("which", "params", "says"), [
    ("faster", {"object": 999}, "object 999 out of range: the detector found"),
    ("faster", {"object": -1}, "out of range"),
    ("faster", {"object": "0"}, "must be an integer"),
    ("faster", {"normalize": 1}, "normalize must be true or false"),
    ("faster", {"method": "NoSuchCAM"}, "unknown CAM method"),
    ("faster", {"layer": "roi_heads.box_head"}, "unknown layer"),
    ("faster", {"version": 77}, "image version"),
    ("segmenter", {"object": 2}, "class 2 is predicted nowhere in this image"),
    ("segmenter", {"normalize": True}, "a segmenter's region has no box"),
])
def test_bad_object_requests_are_clear_errors(request, which, params, says):
    ex, rec = request.getfixturevalue(which)
    before = Fingerprint.of(ex.model)
    first = ex.shown_objects["content"]["labels"][0] if which == "segmenter" else 0
    msg = {"version": ex.image_version, "method": "GradCAM", "layer": ex.cam_layer,
           "object": first, "normalize": False, **params}
    rec.request(ex, "object_cam", rid=9, key="bad", **msg)
    content, _ = rec.last
    assert content["type"] == "error" and says in content["message"], content
    before.assert_same(ex.model)


def test_a_classifier_has_no_objects():
    ex = LayerExplorer(background=False)
    rec = Recorder(ex)
    assert "objects" not in ex.views and ex.shown_objects is None and ex.task == "classification"
    rec.request(ex, "objects", rid=1, key="k", version=ex.image_version)
    assert rec.last[0]["type"] == "error" and "classifier" in rec.last[0]["message"]
    with pytest.raises(ValueError, match="'objects' view shows what a detector or segmenter"):
        LayerExplorer(views=["features", "objects"], background=False)


def test_a_box_map_can_be_cancelled_and_leaves_the_model():
    ex = LayerExplorer(task="detection", background=False)
    before = Fingerprint.of(ex.model)
    handler = ex._handlers["object_cam"]
    p = handler.validate(ex._subject, {"version": ex.image_version, "method": "ScoreCAM",
                                       "layer": ex.cam_layer, "object": 0, "normalize": False})
    calls = []

    def progress(done, total, text=""):
        calls.append((done, total, str(text)))
        if len(calls) == 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        handler.compute(ex._subject, p, Job(progress=progress, item=lambda meta, buffers: None))
    assert len(calls) == 2 and calls[0][1] > 2  # one report per batch of masked inputs
    before.assert_same(ex.model)


# ---------------------------------------------------------------------- task, views, state


def test_task_opens_the_bundled_demos_without_a_download():
    from torchvision.models.detection import FCOS
    from torchvision.models.segmentation import FCN

    for task, family in (("detection", FCOS), ("segmentation", FCN)):
        ex = LayerExplorer(task=task, background=False)
        assert ex.task == task and isinstance(ex.model, family)
        assert ex.classes[0] == "background" and ex.image.shape == (128, 128, 3)
        assert ex.tab == "objects" and ex.shown_objects["content"]["task"] == task
        # the demos take [0, 1] RGB: the input is the sample scene itself
        from cnnviz_widgets.demo import demo_detector, demo_segmenter

        demo = (demo_detector if task == "detection" else demo_segmenter)(allow_untrained=True)
        assert torch.allclose(ex.input_tensor[0], demo.samples[0], atol=1 / 255)
    view = ObjectsView(background=False)
    assert view.views == ["objects"] and view.task == "detection"


def test_the_demo_detectors_maps_start_at_its_class_tower_and_point_into_the_boxes():
    """Grad-CAM of a box at the engine's default layer of the demo detector peaks inside the
    box about half the time (demo/detection.py, DETECTOR_CAM_LAYER); the explorer opens it at
    the class tower, where each clicked box's map peaks inside that box. Other models keep
    the engine's default layer."""
    from cnnviz_widgets.demo.detection import DETECTOR_CAM_LAYER

    ex = LayerExplorer(task="detection", background=False)
    rec = Recorder(ex)
    assert ex.cam_layer == DETECTOR_CAM_LAYER and DETECTOR_CAM_LAYER in ex.cam_layers
    assert ex.cam_layer != default_layer(ex.model, ex.input_tensor)
    boxes, _, scores = found_boxes(ex)
    shown = int((scores >= 0.5).sum())
    assert shown >= 2
    for index in range(shown):
        content, buffers = ask(ex, rec, "object_cam", rid=index + 1, version=ex.image_version,
                               method="GradCAM", layer=ex.cam_layer, object=index,
                               normalize=False)
        got = decode_stack_message(content["stack"], buffers)[0]
        row, col = np.unravel_index(got.argmax(), got.shape)
        x1, y1, x2, y2 = boxes[index].tolist()
        assert x1 <= col + 0.5 <= x2 and y1 <= row + 0.5 <= y2, (index, (row, col), boxes[index])
    given = LayerExplorer(ex.model, background=False)  # the demo detector passed as a model
    assert given.cam_layer == DETECTOR_CAM_LAYER
    segmenter = LayerExplorer(task="segmentation", background=False)
    assert segmenter.cam_layer == default_layer(segmenter.model, segmenter.input_tensor)


def test_a_detector_that_finds_nothing_opens_and_draws_its_picture():
    """No box in the image (the demo detector with its score threshold at 1): an empty
    objects reply, the display picture says 0 boxes, a box index is a clear error."""
    from cnnviz_widgets.demo import demo_detector
    from cnnviz_widgets.widgets.picture import view_pixels, view_png

    blind = demo_detector().model
    blind.score_thresh = 1.0
    ex = LayerExplorer(blind, background=False)
    content = ex.shown_objects["content"]
    assert content["labels"] == [] and content["boxes"] == {"shape": [0, 4]}
    assert view_png(ex) is not None
    pixels, caption, _ = view_pixels(ex)
    assert "0 of 0 boxes" in caption and pixels.shape == (224, 224, 3)
    with pytest.raises(ValueError, match="box"):
        ex.target = 0


def test_task_and_views_are_checked():
    with pytest.raises(ValueError, match=r"Unknown task 'detect'; choose from \['classification"
                                         r"', 'detection', 'segmentation'\]"):
        LayerExplorer(task="detect", background=False)
    detector = build("fasterrcnn_mobilenet")
    with pytest.raises(ValueError, match="is a torchvision detection model: pass task="
                                         "'detection'"):
        LayerExplorer(detector, IMAGE, task="classification", background=False)
    with pytest.raises(ValueError, match=r"\['cam'\] explain a classifier's classes"):
        LayerExplorer(detector, IMAGE, views=["objects", "cam"], background=False)


def test_a_new_image_resets_the_chosen_object_and_its_map():
    ex = LayerExplorer(task="segmentation", background=False)
    rec = Recorder(ex)
    label = ex.shown_objects["content"]["labels"][0]
    ex.target = label
    assert ex.target == label
    ask(ex, rec, "object_cam", version=ex.image_version, method="EigenCAM", layer=ex.cam_layer,
        object=label, normalize=False)
    assert ex.shown_object_cam is not None
    with pytest.raises(ValueError, match="predicted nowhere"):
        ex.target = 99
    version = ex.image_version
    ex.image = ex.image
    assert ex.image_version == version + 1 and ex.target is None
    assert ex.shown_object_cam is None and ex.shown_objects["key"] == f"objects|{version + 1}"
    detector = LayerExplorer(task="detection", background=False)
    with pytest.raises(ValueError, match="pass a box's index"):
        detector.target = "circle"


def test_a_saved_page_holds_the_objects_and_the_chosen_objects_map(segmenter):
    from cnnviz_widgets.widgets.html_export import page_data

    ex, _ = segmenter
    ex.target = None
    data = page_data(ex, layers=[ex._subject.layer_names[0]])
    first = ex.shown_objects["content"]["labels"][0]  # the largest class: shown first
    v, method, layer = ex.image_version, ex.cam_method, ex.cam_layer
    saved = data["replies"]
    assert saved[f"objects|{v}"]["content"] == ex.shown_objects["content"]
    cam_key = f"object_cam|{v}|{method}|{first}|{layer}|image"
    assert saved[cam_key]["content"]["object"] == first
    assert f"saliency|{v}|{ex.saliency_method}|{first}" in saved
    assert not any(k.startswith("cam|") for k in saved)  # no class CAM: the view is absent
    assert data["state"]["tab"] == "objects" and data["notes"] == []
    assert "objects" in data["state"]["views"]


def test_the_class_cam_kind_and_activation_maximisation_work_on_a_detector(faster):
    """The 'cam' kind explains the chosen object too (its view is not shown for a detector:
    the objects view is its CAM view), and optimised images need no class."""
    ex, rec = faster
    boxes, labels, _ = found_boxes(ex)
    layer = ex.cam_layer
    content, buffers = ask(ex, rec, "cam", rid=5, version=ex.image_version, method="GradCAM",
                           target=2, layer=layer)
    assert content["type"] == "reply", content
    want = cam(ex.model, ex.input_tensor, layer, method="GradCAM",
               target=BoxTarget(int(labels[2]), boxes[2]))[0]
    assert close_to(decode_stack_message(content["stack"], buffers)[0], want)
    assert content["class_name"] == f"class {int(labels[2])} #3"
    before = Fingerprint.of(ex.model)
    rec.request(ex, "actmax", rid=6, key="actmax-key", layer="backbone.body.2.block.0.0",
                channels=[0, 1], regularize=False)
    items = [(c, b) for c, b in rec.sent if c.get("id") == 6 and c["type"] == "item"]
    assert [c["index"] for c, _ in items] == [0, 1] and rec.last[0]["type"] == "reply"
    images = [np.frombuffer(b[0], np.uint8) for _, b in items]
    assert images[0].size == 224 * 224 * 3 and not np.array_equal(images[0], images[1])
    before.assert_same(ex.model)


def test_the_display_picture_of_the_objects_view(faster):
    """Renderers without JavaScript get the boxes over the image and the chosen box's map."""
    from cnnviz_widgets.widgets.picture import class_colors, view_pixels

    ex, rec = faster
    ex.score_threshold = 0.0
    ask(ex, rec, "object_cam", rid=7, version=ex.image_version, method="EigenCAM",
        layer=ex.cam_layer, object=0, normalize=False)
    pixels, caption, cmap = view_pixels(ex)
    boxes, labels, scores = found_boxes(ex)
    assert pixels.shape == (224, 2 * 224 + 4, 3) and cmap is None
    assert f"{len(scores)} of {len(scores)} boxes >= 0" in caption and "EigenCAM" in caption
    # the last box drawn (the lowest score) is outlined in its class's colour
    x1, y1 = (int(v) for v in boxes[-1][:2].floor())
    assert pixels[y1, x1].tolist() == class_colors(labels[-1:].numpy())[0].tolist()
    ex.score_threshold = 1.0  # every box hidden: the image as it is
    assert np.array_equal(view_pixels(ex)[0][:, :224], ex.image)
    ex.score_threshold = 0.5
