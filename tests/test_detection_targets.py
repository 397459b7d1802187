"""Box targets on torchvision detectors, against pytorch-grad-cam's ``FasterRCNNBoxScoreTarget``.

Every map is compared with the reference run on its own deep copy of the same random-init,
calibrated model (:mod:`.helpers.detection_models`): mean absolute difference <= 1e-5 per image for
the gradient methods, and for the EigenCAM of the reference's detection tutorial (the
backbone's FPN levels folded by ``fasterrcnn_reshape_transform``) up to the projection's sign.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
from pytorch_grad_cam.utils.reshape_transforms import fasterrcnn_reshape_transform
from torchvision.ops import box_iou as tv_box_iou

import cnnviz_widgets as cw
from cnnviz_widgets.engine.cam import cam, cam_per_layer, cam_per_target
from cnnviz_widgets.engine.detection import normalize_in_boxes
from cnnviz_widgets.engine.regions import BoxTarget, box_iou
from cnnviz_widgets.engine.saliency import integration_nodes, saliency
from cnnviz_widgets.engine.targets import TargetError

from .helpers.detection_models import MAX_MAD, Parity, build, mad, reference_cam, smooth_images
from .model_state import Fingerprint

GRADIENT_METHODS = [
    "GradCAM",
    "GradCAMPlusPlus",
    "XGradCAM",
    "LayerCAM",
    "HiResCAM",
    "GradCAMElementWise",
]
PARITY = Parity("detection")


@pytest.fixture(scope="module", autouse=True)
def _print_figures():
    yield
    PARITY.report()


assert_parity = PARITY.check


@pytest.fixture(scope="module")
def frcnn():
    return build("fasterrcnn_mobilenet")


@pytest.fixture(scope="module")
def image():
    return smooth_images(1, seed=1)


@pytest.fixture(scope="module")
def frcnn_boxes(frcnn, image):
    found = cw.detections(frcnn, image, score_threshold=0.0)[0]
    return found.boxes[:3].numpy(), found.labels[:3].tolist()


# ---------------------------------------------------------------------------------------------
# Parity with the reference


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_gradient_methods_match_reference_on_faster_rcnn(frcnn, image, frcnn_boxes, method):
    boxes, labels = frcnn_boxes
    layer = "backbone.body.16"  # the default layer (see test_default_layers)
    ours = cam(frcnn, image, layer, method, BoxTarget(labels, boxes))
    ref = reference_cam(frcnn, image, method, [layer], [FasterRCNNBoxScoreTarget(labels, boxes)])
    assert_parity(f"{method} fasterrcnn_mobilenet", ours, ref)


@pytest.mark.parametrize(
    ("name", "layer", "methods"),
    [
        ("retinanet", "backbone.body.layer4", ["GradCAM", "GradCAMPlusPlus", "LayerCAM"]),
        ("fcos", "backbone.body.layer3", ["GradCAM", "XGradCAM"]),
        ("ssdlite", "backbone.features.0", ["GradCAM", "HiResCAM"]),
        ("maskrcnn", "backbone.body.layer4", ["GradCAM"]),
        ("keypointrcnn", "backbone.body.layer4", ["GradCAM"]),
    ],
)
def test_gradient_methods_match_reference_on_other_detectors(name, layer, methods):
    model = build(name)
    x = smooth_images(1, seed=2)
    found = cw.detections(model, x, score_threshold=0.0)[0]
    boxes, labels = found.boxes[:2].numpy(), found.labels[:2].tolist()
    for method in methods:
        ours = cam(model, x, layer, method, BoxTarget(labels, boxes))
        ref = reference_cam(model, x, method, [layer], [FasterRCNNBoxScoreTarget(labels, boxes)])
        assert_parity(f"{method} {name}", ours, ref)


@pytest.mark.parametrize("method", ["ScoreCAM", "AblationCAM"])
def test_perturbation_methods_match_reference_on_faster_rcnn(frcnn, method):
    """Masked or ablated copies of a 96 x 128 image through the detector, one per channel of
    a 16-channel layer. On this random-init detector no masked or ablated copy keeps a box
    that matches the target, so every channel gets the same weight (ScoreCAM's softmax of
    equal zero scores, AblationCAM's (y - 0) / y): the maps agree, but this checks the
    detection plumbing, not the weighting (test_segmentation_targets checks that)."""
    x = smooth_images(1, size=(96, 128), seed=1)
    found = cw.detections(frcnn, x, score_threshold=0.0)[0]
    labels, boxes = found.labels[:2].tolist(), found.boxes[:2].numpy()
    batch = 16 if method == "ScoreCAM" else 32
    ours = cam(frcnn, x, "backbone.body.1", method, BoxTarget(labels, boxes), batch_size=batch)
    ref = reference_cam(
        frcnn, x, method, ["backbone.body.1"], [FasterRCNNBoxScoreTarget(labels, boxes)]
    )
    assert_parity(f"{method} fasterrcnn_mobilenet", ours, ref)


def test_eigengradcam_matches_reference_up_to_sign(frcnn, image, frcnn_boxes):
    boxes, labels = frcnn_boxes
    layer = "backbone.body.16"
    ours = cam(frcnn, image, layer, "EigenGradCAM", BoxTarget(labels, boxes))
    targets = [FasterRCNNBoxScoreTarget(labels, boxes)]
    ref = reference_cam(frcnn, image, "EigenGradCAM", [layer], targets)
    if mad(ours, ref) > MAX_MAD:  # a principal component's sign is arbitrary
        import pytorch_grad_cam as pgc

        saved = pgc.eigen_grad_cam.get_2d_projection
        pgc.eigen_grad_cam.get_2d_projection = lambda a: -saved(a)
        try:
            ref = reference_cam(frcnn, image, "EigenGradCAM", [layer], targets)
        finally:
            pgc.eigen_grad_cam.get_2d_projection = saved
    assert_parity("EigenGradCAM fasterrcnn_mobilenet", ours, ref)


def test_reference_target_object_is_accepted_and_equal(frcnn, image, frcnn_boxes):
    boxes, labels = frcnn_boxes
    theirs = cam(frcnn, image, None, "GradCAM", FasterRCNNBoxScoreTarget(labels, boxes))
    ours = cam(frcnn, image, None, "GradCAM", BoxTarget(labels, boxes))
    np.testing.assert_array_equal(ours, theirs)


def test_box_target_score_equals_reference_target(frcnn, image, frcnn_boxes):
    """Same IoU threshold, same sum: equal scores on matching, relabelled and shifted boxes."""
    boxes, labels = frcnn_boxes
    with torch.no_grad():
        out = frcnn.eval()(image)[0]
    cases = [
        (labels, boxes),
        ([(lab + 1) % 5 for lab in labels], boxes),  # wrong labels: 0
        (labels, boxes + np.float32(12.0)),  # shifted: some IoUs fall below 0.5
        (labels[:1], boxes[:1]),
    ]
    for lab, box in cases:
        want = FasterRCNNBoxScoreTarget(lab, box)(out)
        got = BoxTarget(lab, box)(out)
        assert float(got) == pytest.approx(float(want.sum()), abs=1e-6)
    assert float(BoxTarget(labels, boxes)(out)) > 1.0
    a, b = torch.rand(5, 2) * 50, torch.rand(7, 2) * 50
    boxes1, boxes2 = torch.cat([a, a + 30], 1), torch.cat([b, b + 20], 1)
    assert torch.equal(box_iou(boxes1, boxes2), tv_box_iou(boxes1, boxes2))


def test_eigencam_of_folded_fpn_matches_the_tutorial(frcnn, image, frcnn_boxes):
    """The reference's Faster R-CNN tutorial: EigenCAM of ``model.backbone`` (a dict of FPN
    levels) with ``fasterrcnn_reshape_transform``; ours folds the levels itself."""
    boxes, labels = frcnn_boxes
    ref = reference_cam(
        frcnn, image, "EigenCAM", ["backbone"], [FasterRCNNBoxScoreTarget(labels, boxes)],
        reshape=fasterrcnn_reshape_transform,
    )
    auto = cam(frcnn, image, "backbone", "EigenCAM")
    given = cam(frcnn, image, "backbone", "EigenCAM", reshape=fasterrcnn_reshape_transform)
    np.testing.assert_array_equal(auto, given)
    raw_ours = cam(frcnn, image, "backbone", "EigenCAM", raw=True)
    assert raw_ours.shape == (1, 3, 3)  # the "pool" level's grid, as the tutorial
    if mad(auto, ref) > MAX_MAD:  # a principal component's sign is arbitrary
        ref = reference_cam(
            frcnn, image, "EigenCAM", ["backbone"], None,
            reshape=fasterrcnn_reshape_transform, negate=True,
        )
    assert_parity("EigenCAM fasterrcnn_mobilenet backbone (folded)", auto, ref)


def test_every_item_of_a_batch(frcnn):
    """Two images, a box target each (grad-cam#264): each map equals the map of its image
    alone, and the reference's batch.

    The boxes are the detections shrunk by 1.5 px: at a box equal to a detection the IoU is at
    its peak, where the min/max of the corners tie and autograd takes one side's derivative,
    so the detections' float differences between a batch and a single image (3e-5 px) would
    change the IoU term's gradient (the reference's score has this kink too).
    """
    x = smooth_images(2, seed=5)
    found = cw.detections(frcnn, x, score_threshold=0.0)
    inset = torch.tensor([1.5, 1.5, -1.5, -1.5])
    moved = [(d.labels[:2].tolist(), d.boxes[:2] + inset) for d in found]
    targets = [BoxTarget(labels, boxes) for labels, boxes in moved]
    ours = cam(frcnn, x, None, "GradCAM", targets)
    for i in range(2):
        alone = cam(frcnn, x[i : i + 1], None, "GradCAM", targets[i])
        assert mad(ours[i], alone[0]) <= 1e-5
    ref = reference_cam(
        frcnn, x, "GradCAM", ["backbone.body.16"],
        [FasterRCNNBoxScoreTarget(labels, boxes.numpy()) for labels, boxes in moved],
    )
    assert_parity("GradCAM fasterrcnn_mobilenet batch", ours, ref)
    assert mad(ours[0], ours[1]) > 0.01  # two different images, two different maps


# ---------------------------------------------------------------------------------------------
# Several boxes of one image: one forward pass, one backward pass per box


def test_boxes_of_one_image_take_one_forward_pass(frcnn, image, monkeypatch):
    found = cw.detections(frcnn, image, score_threshold=0.0)[0]
    targets = found.targets()[:4]
    forwards = []
    handle = frcnn.register_forward_pre_hook(lambda module, args: forwards.append(1))
    backward_calls = []
    real_grad = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        backward_calls.append(kwargs.get("retain_graph"))
        return real_grad(*args, **kwargs)

    try:
        monkeypatch.setattr(torch.autograd, "grad", counting_grad)
        maps = cam_per_target(frcnn, image, None, "GradCAMPlusPlus", targets)
        monkeypatch.undo()
        assert len(forwards) == 1 + 1  # the default layer's dry run, then the one capture pass
        assert len(backward_calls) == 4
        assert backward_calls == [True, True, True, False]  # graph kept, freed after the last
        forwards.clear()
        maps_named = cam_per_target(frcnn, image, "backbone.body.16", "GradCAMPlusPlus", targets)
        assert len(forwards) == 1
    finally:
        handle.remove()
    np.testing.assert_array_equal(maps, maps_named)
    assert maps.shape == (4, *image.shape[-2:])
    for k, target in enumerate(targets):
        alone = cam(frcnn, image, "backbone.body.16", "GradCAMPlusPlus", target)[0]
        assert mad(maps[k], alone) <= 1e-6
        ref = reference_cam(
            frcnn, image, "GradCAMPlusPlus", ["backbone.body.16"],
            [FasterRCNNBoxScoreTarget(list(target.labels), target.boxes.numpy())],
        )
        assert_parity("GradCAMPlusPlus fasterrcnn_mobilenet per box", maps[k : k + 1], ref)


def test_cam_per_target_other_methods_equal_cam(frcnn, image):
    found = cw.detections(frcnn, image, score_threshold=0.0)[0]
    targets = found.targets()[:2]
    for method in ("EigenCAM", "XGradCAM"):
        maps = cam_per_target(frcnn, image, "backbone:0", method, targets, normalize_in_boxes=True)
        for k, t in enumerate(targets):
            alone = cam(frcnn, image, "backbone:0", method, t, normalize_in_boxes=True)[0]
            assert mad(maps[k], alone) <= 1e-6
    raw = cam_per_target(frcnn, image, "backbone.body.16", "GradCAM", targets, raw=True)
    want = np.stack([cam(frcnn, image, "backbone.body.16", "GradCAM", t, raw=True)[0]
                     for t in targets])
    np.testing.assert_allclose(raw, want, rtol=1e-5, atol=1e-7 * float(np.abs(want).max()))


# ---------------------------------------------------------------------------------------------
# Normalising inside the boxes (grad-cam#227)


def slow_normalize_in_boxes(maps: np.ndarray, boxes: list[np.ndarray]) -> np.ndarray:
    """Pixel by pixel: each box's pixels (floor of the start, ceil of the end) min-max scaled
    (eps 1e-7) and the larger value kept where boxes overlap, 0 elsewhere; then min-max."""
    out = np.zeros_like(maps, dtype=np.float64)
    n, h, w = maps.shape
    for i in range(n):
        for x1, y1, x2, y2 in boxes[i]:
            ys = range(max(int(np.floor(y1)), 0), min(int(np.ceil(y2)), h))
            xs = range(max(int(np.floor(x1)), 0), min(int(np.ceil(x2)), w))
            values = [float(maps[i, y, x]) for y in ys for x in xs]
            lo, hi = min(values), max(values)
            for y in ys:
                for x in xs:
                    scaled = (maps[i, y, x] - lo) / (1e-7 + (hi - lo))
                    out[i, y, x] = max(out[i, y, x], scaled)
        lo, hi = out[i].min(), out[i].max()
        out[i] = (out[i] - lo) / (1e-7 + (hi - lo))
    return out


def test_normalize_in_boxes_equals_slow_formula():
    g = torch.Generator().manual_seed(3)
    maps = torch.rand(2, 40, 50, generator=g)
    boxes = [
        torch.tensor([[3.2, 4.7, 20.1, 30.0], [15.0, 10.0, 45.5, 39.2]]),  # overlapping
        torch.tensor([[0.0, 0.0, 50.0, 8.0]]),
    ]
    ours = normalize_in_boxes(maps, boxes).numpy()
    want = slow_normalize_in_boxes(maps.numpy(), [b.numpy() for b in boxes])
    np.testing.assert_allclose(ours, want, atol=1e-6)
    assert ours[0, 35:, :10].max() == 0 and ours[1, 9:].max() == 0


def test_cam_normalized_in_box(frcnn, image, frcnn_boxes):
    boxes, labels = frcnn_boxes
    target = BoxTarget(labels[:1], boxes[:1])
    plain = cam(frcnn, image, None, "GradCAM", target)
    inside = cam(frcnn, image, None, "GradCAM", target, normalize_in_boxes=True)
    want = slow_normalize_in_boxes(plain, [boxes[:1]])
    np.testing.assert_allclose(inside, want, atol=1e-6)
    x0, y0, x1, y1 = (int(np.floor(boxes[0][0])), int(np.floor(boxes[0][1])),
                      int(np.ceil(boxes[0][2])), int(np.ceil(boxes[0][3])))
    assert inside[0, y0:y1, x0:x1].max() > 0.99
    outside = np.ones_like(inside[0], dtype=bool)
    outside[y0:y1, x0:x1] = False
    assert not outside.any() or inside[0][outside].max() == 0


# ---------------------------------------------------------------------------------------------
# detections()


def test_detections_are_the_models_own_output(frcnn):
    x = smooth_images(2, seed=7)
    frcnn.eval()
    with torch.no_grad():
        out = frcnn(x)
    threshold = max(float(o["scores"].median()) for o in out)
    frcnn.train()  # a detector left in training mode needs targets; detections() must not
    before = Fingerprint.of(frcnn)
    found = cw.detections(frcnn, x, score_threshold=threshold)
    before.assert_same(frcnn)
    frcnn.eval()
    assert len(found) == 2
    assert 0 < sum(len(d) for d in found) < sum(len(o["scores"]) for o in out)
    for d, o in zip(found, out, strict=True):
        keep = o["scores"] >= threshold
        assert torch.equal(d.boxes, o["boxes"][keep]) and torch.equal(d.scores, o["scores"][keep])
        assert torch.equal(d.labels, o["labels"][keep]) and d.masks is None
        if len(d) == 0:
            with pytest.raises(TargetError, match="lower score_threshold"):
                d.box_target()
            continue
        targets = d.targets()
        assert targets[0].labels == (int(d.labels[0]),)
        assert torch.equal(targets[0].boxes[0], d.boxes[0])
        assert d.box_target().boxes.shape == (len(d), 4)


def test_detections_of_mask_rcnn_carry_masks():
    model = build("maskrcnn")
    x = smooth_images(1, seed=8)
    (d,) = cw.detections(model, x, score_threshold=0.0)
    assert d.masks is not None and d.masks.shape == (len(d), *x.shape[-2:])
    assert float(d.masks.min()) >= 0 and float(d.masks.max()) <= 1


# ---------------------------------------------------------------------------------------------
# Saliency with box targets


def box_input_gradient(model, x, target) -> torch.Tensor:
    """The hand-written reference: d target(model(x)[0]) / dx on a copy of the model."""
    import copy

    twin = copy.deepcopy(model).eval()
    leaf = x.clone().requires_grad_(True)
    score = target(twin(leaf)[0]).sum()
    if not score.requires_grad:
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(score, leaf)
    return grad


def test_guided_gradcam_of_a_detector_uses_its_backbone(frcnn, image, frcnn_boxes):
    """Its default GradCAM layer is the detector's default layer, not the last conv (an RPN
    head conv, off the path to the box scores)."""
    boxes, labels = frcnn_boxes
    target = BoxTarget(labels, boxes)
    ours = saliency(frcnn, image, target, "guided_gradcam")
    guided = saliency(frcnn, image, target, "guided")
    maps = cam(frcnn, image, cw.default_layer(frcnn, image), "GradCAM", target)
    np.testing.assert_allclose(ours, guided * maps[:, None], rtol=1e-5, atol=1e-8)
    assert np.abs(ours).max() > 0


def test_saliency_of_a_box_equals_hand_gradient(frcnn, image, frcnn_boxes):
    boxes, labels = frcnn_boxes
    target = BoxTarget(labels[:2], boxes[:2])
    ours = saliency(frcnn, image, target, "vanilla")
    want = box_input_gradient(frcnn, image, FasterRCNNBoxScoreTarget(labels[:2], boxes[:2]))
    scale = float(want.abs().max())
    assert scale > 0
    np.testing.assert_allclose(ours, want.numpy(), atol=1e-5 * scale, rtol=1e-4)
    # integrated gradients: copies near the zero baseline match no box (score 0, no gradient)
    ig = saliency(frcnn, image, target, "integrated_gradients", n_steps=4)
    alphas, weights = integration_nodes(4)
    total = torch.zeros_like(image)
    for a, w in zip(alphas, weights, strict=True):
        total += float(w) * box_input_gradient(frcnn, float(a) * image, target)
    want_ig = (total * image).numpy()
    np.testing.assert_allclose(ig, want_ig, atol=1e-5 * float(np.abs(want_ig).max()), rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# The model is left as it was; bad input is named


def test_model_left_as_found_also_when_raising(frcnn, image, frcnn_boxes):
    boxes, labels = frcnn_boxes
    frcnn.train()
    first = frcnn.backbone.body.get_submodule("0.0").weight
    first.grad = torch.ones_like(first)
    try:
        before = Fingerprint.of(frcnn)
        cam(frcnn, image, None, "GradCAM", BoxTarget(labels, boxes))
        cam_per_target(frcnn, image, None, "LayerCAM", [BoxTarget(labels[0], boxes[0])] * 2)
        saliency(frcnn, image, BoxTarget(labels, boxes), "guided")
        cam_per_layer(frcnn, image, ["backbone:0", "backbone.body.16"], "GradCAM",
                      BoxTarget(labels, boxes))
        before.assert_same(frcnn)
        with pytest.raises(TargetError, match="matches no detection"):
            cam(frcnn, image, None, "GradCAM", BoxTarget(labels[0], [0, 0, 3, 3]))
        with pytest.raises(TargetError, match="matches no detection"):
            saliency(frcnn, image, BoxTarget(labels[0], [0, 0, 3, 3]))
        before.assert_same(frcnn)
    finally:
        first.grad = None
        frcnn.eval()


def _bad_inputs(classifier, frcnn, image, boxes, labels):
    w = image.shape[-1]
    return [
        (lambda: cam(frcnn, image, None, "GradCAM", BoxTarget(labels[0], [10, 10, w + 40, 50])),
         TargetError, r"outside the 160 x 192 px input"),
        (lambda: BoxTarget(1, [30, 40, 20, 10]), TargetError, r"empty.*\(x, y, x \+ w, y \+ h\)"),
        (lambda: BoxTarget([1, 2], [[0, 0, 5, 5]]), TargetError, "2 labels for 1 boxes"),
        (lambda: BoxTarget(1.5, [0, 0, 5, 5]), TargetError, "integer class label"),
        (lambda: cam(classifier, image, None, "GradCAM", BoxTarget(1, [0, 0, 20, 20])),
         TargetError, "BoxTarget explains a box of a detection model"),
        (lambda: cam(frcnn, image, None, "GradCAM", 3), TargetError, "BoxTarget"),
        (lambda: cam(frcnn, image, None, "GradCAM"), TargetError, "detections"),
        (lambda: cam(frcnn, image, None, "GradCAM", [BoxTarget(lab, b) for lab, b in
                                                     zip(labels, boxes, strict=True)]),
         TargetError, "cam_per_target"),
        (lambda: cam(frcnn, image, None, "GradCAM", BoxTarget(labels, boxes), aug_smooth=True),
         ValueError, "no longer lines up"),
        (lambda: cam(frcnn, image, None, "GradCAM", BoxTarget(labels, boxes), raw=True,
                     normalize_in_boxes=True), ValueError, "raw=True"),
        (lambda: cam(classifier, image, None, "GradCAM", 1, normalize_in_boxes=True),
         TargetError, "needs BoxTarget"),
        (lambda: cam(frcnn, image, "roi_heads.box_roi_pool", "GradCAM", BoxTarget(labels, boxes)),
         Exception, "once per proposal"),
        (lambda: cam(frcnn, image, "backbone:p9", "GradCAM", BoxTarget(labels, boxes)),
         Exception, r"entries are '0', '1', 'pool'"),
        (lambda: cw.detections(frcnn, [image[0], image[0, :, :100]]), ValueError,
         "2 different sizes"),
        (lambda: cw.detections(frcnn, [image[0], image[0]]), ValueError, "torch.stack"),
        (lambda: cw.detections(classifier, image), TargetError, "not a detection model"),
        (lambda: cam_per_target(frcnn, torch.cat([image, image]), None, "GradCAM",
                                [BoxTarget(labels, boxes)]), ValueError, "ONE image"),
        (lambda: cam_per_target(frcnn, image, None, "GradCAM", []), ValueError, "non-empty"),
    ]


def test_bad_input_is_named(resnet18, frcnn, image, frcnn_boxes):
    boxes, labels = frcnn_boxes
    state = Fingerprint.of(frcnn)
    for call, error, pattern in _bad_inputs(resnet18, frcnn, image, boxes, labels):
        with pytest.raises(error, match=pattern):
            call()
    state.assert_same(frcnn)
