"""The bundled demo detector and segmenter: scenes, loading, quality on held-out scenes, the
Grad-CAM of a detected box, the quality measures themselves, and reproducible training.

Quality is measured on scenes from a seed never used in training (epochs use
``TRAIN_SEED_BASE[task] + e``, the script's report ``VALIDATION_SEED``, the samples
``SCENE_SAMPLE_SEED``).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pytest
import torch
from torchvision.models.detection import FCOS
from torchvision.models.segmentation import FCN

import cnnviz_widgets as cw
from cnnviz_widgets.demo import (
    SCENE_CLASSES,
    SHAPE_CLASSES,
    DemoTask,
    demo_detector,
    demo_segmenter,
    make_scenes,
)
from cnnviz_widgets.demo import detection as demo_detection
from cnnviz_widgets.demo.train_detection import (
    TRAIN_SEED_BASE,
    VALIDATION_SEED,
    average_precision,
    evaluate_detector,
    evaluate_segmenter,
    mean_average_precision,
    mean_iou,
    train,
)
from cnnviz_widgets.engine.dryrun import default_layer

HELD_OUT_SEED = 31_415
"""Scenes of the quality tests: a seed no training epoch nor the script's report uses."""
HELD_OUT_SCENES = 300
CAM_SCENES = 30
MAX_WEIGHT_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def detector() -> DemoTask:
    return demo_detector()


@pytest.fixture(scope="module")
def segmenter() -> DemoTask:
    return demo_segmenter()


@pytest.fixture(scope="module")
def held_out():
    return make_scenes(HELD_OUT_SCENES, seed=HELD_OUT_SEED)


def test_held_out_seeds_are_unused_in_training():
    epochs_used = 100  # far more than the script's default epochs
    for seed in (HELD_OUT_SEED, demo_detection.SCENE_SAMPLE_SEED, VALIDATION_SEED):
        for base in TRAIN_SEED_BASE.values():
            assert not base <= seed < base + epochs_used
    assert len({HELD_OUT_SEED, demo_detection.SCENE_SAMPLE_SEED, VALIDATION_SEED}) == 3


# ---------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------


def test_scenes_types_ranges_and_determinism():
    a = make_scenes(40, size=96, seed=3)
    b = make_scenes(40, size=96, seed=3)
    c = make_scenes(40, size=96, seed=4)
    assert a.images.shape == (40, 3, 96, 96) and a.images.dtype == torch.float32
    assert a.masks.shape == (40, 96, 96) and a.masks.dtype == torch.int64
    assert float(a.images.min()) >= 0.0 and float(a.images.max()) <= 1.0
    assert len(a.boxes) == len(a.labels) == 40
    for x, y in zip(a, b, strict=True):
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y)
        else:
            assert all(torch.equal(p, q) for p, q in zip(x, y, strict=True))
    assert not torch.equal(a.images, c.images)
    counts = [len(lab) for lab in a.labels]
    assert min(counts) >= 1 and max(counts) <= 3 and len(set(counts)) == 3
    assert all(len(set(lab.tolist())) == len(lab) for lab in a.labels)  # distinct classes
    repeats = make_scenes(40, size=96, seed=3, distinct_classes=False).labels
    assert any(len(set(lab.tolist())) < len(lab) for lab in repeats)
    for boxes, labels in zip(a.boxes, a.labels, strict=True):
        assert boxes.dtype == torch.float32 and boxes.shape == (len(labels), 4)
        assert labels.dtype == torch.int64
        assert int(labels.min()) >= 1 and int(labels.max()) <= len(SHAPE_CLASSES)
    assert ("background", *SHAPE_CLASSES) == SCENE_CLASSES


def test_scene_boxes_and_masks_agree():
    """Each object's mask pixels lie in its box and come within 3 px of all four of its
    sides; no pixel of the class mask lies outside every box; objects do not overlap."""
    scenes = make_scenes(150, seed=5, max_objects=4)
    for i in range(150):
        mask = scenes.masks[i]
        covered = torch.zeros_like(mask, dtype=torch.bool)
        boxes = scenes.boxes[i].long()
        for (x0, y0, x1, y1), label in zip(boxes.tolist(), scenes.labels[i].tolist(), strict=True):
            assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
            inside = mask[y0:y1, x0:x1] == label
            assert inside.sum() >= 20, f"scene {i}: object {label} barely visible"
            rows = inside.any(1).nonzero()[:, 0]
            cols = inside.any(0).nonzero()[:, 0]
            # the box counts every touched pixel, the mask those covered by half: at sharp tips
            # (star, triangle, crescent horns) up to 3 px apart
            gaps = (rows[0], y1 - y0 - 1 - rows[-1], cols[0], x1 - x0 - 1 - cols[-1])
            assert max(int(g) for g in gaps) <= 3, f"scene {i}: box not tight"
            covered[y0:y1, x0:x1] = True
        assert not ((mask > 0) & ~covered).any(), f"scene {i}: mask pixels outside every box"
        # disjoint objects: within each box only its own label (or background) appears, except
        # where another box overlaps it
        for j, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
            others = torch.zeros_like(covered)
            for k, (a0, b0, a1, b1) in enumerate(boxes.tolist()):
                if k != j:
                    others[b0:b1, a0:a1] = True
            own = mask[y0:y1, x0:x1][~others[y0:y1, x0:x1]]
            assert set(own.unique().tolist()) <= {0, int(scenes.labels[i][j])}


def test_scenes_clutter_keeps_objects():
    full = make_scenes(20, seed=8)
    calm = make_scenes(20, seed=8, clutter=0.25)
    assert all(torch.equal(a, b) for a, b in zip(full.boxes, calm.boxes, strict=True))
    assert torch.equal(full.masks, calm.masks)
    assert not torch.equal(full.images, calm.images)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": -1},
        {"n": 2, "size": 16},
        {"n": 2, "max_objects": 0},
        {"n": 2, "min_objects": 3, "max_objects": 2},
        {"n": 2, "radius_range": (0.2, 0.1)},
        {"n": 2, "clutter": 1.5},
        {"n": 2, "max_objects": len(SHAPE_CLASSES) + 1},
    ],
)
def test_scenes_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        make_scenes(**kwargs)


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


def test_weight_files_are_small_and_float16():
    from importlib import resources

    data = resources.files("cnnviz_widgets").joinpath("data")
    for name in (demo_detection.DETECTOR_FILE, demo_detection.SEGMENTER_FILE):
        ref = data.joinpath(name)
        with ref.open("rb") as fh:
            blob = fh.read()
        assert len(blob) <= MAX_WEIGHT_BYTES, f"{name} is {len(blob)} bytes"
        state = cw.demo.model.bundled_state_dict(name)
        raw = torch.load(str(ref), map_location="cpu", weights_only=True)
        assert all(v.dtype == torch.float16 for v in raw.values() if v.is_floating_point())
        assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())


def _check_task(demo: DemoTask, task: str) -> None:
    assert demo.task == task and demo.trained
    assert not demo.model.training
    assert demo.classes == SCENE_CLASSES and demo.classes[0] == "background"
    assert demo.size == 128
    k = demo.samples.shape[0]
    assert k >= 3 and demo.samples.shape == (k, 3, 128, 128)
    assert float(demo.samples.min()) >= 0.0 and float(demo.samples.max()) <= 1.0
    assert len(demo.sample_boxes) == len(demo.sample_labels) == k
    assert demo.sample_masks.shape == (k, 128, 128) and demo.sample_masks.dtype == torch.int64
    for boxes, labels in zip(demo.sample_boxes, demo.sample_labels, strict=True):
        assert boxes.shape == (len(labels), 4) and len(labels) >= 2
        assert set(labels.tolist()) <= set(range(1, len(demo.classes)))
    # the samples are the scenes of their seed
    again = make_scenes(k, seed=demo_detection.SCENE_SAMPLE_SEED, min_objects=2)
    assert torch.equal(again.images, demo.samples)
    assert torch.equal(again.masks, demo.sample_masks)


def test_demo_detector_fields(detector: DemoTask):
    _check_task(detector, "detection")
    assert isinstance(detector.model, FCOS)
    assert cw.engine.detection.model_family(detector.model) == "detection"
    with pytest.raises(dataclasses.FrozenInstanceError):
        detector.trained = False  # type: ignore[misc]


def test_demo_segmenter_fields(segmenter: DemoTask):
    _check_task(segmenter, "segmentation")
    assert isinstance(segmenter.model, FCN)
    assert cw.engine.detection.model_family(segmenter.model) == "segmentation"
    out = segmenter.model(segmenter.samples[:2])
    assert set(out) == {"out"} and out["out"].shape == (2, len(SCENE_CLASSES), 128, 128)


def test_sample_predictions_use_the_classes(detector: DemoTask, segmenter: DemoTask):
    """Labels the models predict index ``classes`` (never the background) and match the
    samples' objects."""
    found = cw.detections(detector.model, detector.samples, score_threshold=0.5)
    for det, labels in zip(found, detector.sample_labels, strict=True):
        assert set(det.labels.tolist()) <= set(range(1, len(SCENE_CLASSES)))
        assert sorted(det.labels.tolist()) == sorted(labels.tolist())
    pred = cw.segmentation(segmenter.model, segmenter.samples)
    assert (pred == segmenter.sample_masks).float().mean() > 0.97


@pytest.mark.parametrize("loader", [demo_detector, demo_segmenter])
def test_missing_weights(monkeypatch, loader):
    name = "DETECTOR_FILE" if loader is demo_detector else "SEGMENTER_FILE"
    trained = loader().model.state_dict()
    monkeypatch.setattr(demo_detection, name, "no_such_weights.pt")
    with pytest.raises(FileNotFoundError):
        loader()
    a, b = loader(allow_untrained=True), loader(allow_untrained=True)
    assert not a.trained and not a.model.training
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key  # seeded initial weights
    differs = [k for k, v in a.model.state_dict().items() if not torch.equal(v, trained[k])]
    assert len(differs) > len(trained) // 2


def test_default_layer_of_a_segmenter_on_a_dict_backbone(segmenter: DemoTask):
    """FCN on a backbone returning {"out": ...} that is not an IntermediateLayerGetter: the
    default CAM layer is in the backbone (its last grid), not the classifier head."""
    assert default_layer(segmenter.model, segmenter.samples[:1]) == "backbone.up0"
    assert default_layer(demo_detector(allow_untrained=True).model) == "backbone.body.layer3"


def test_body_cells_are_centred_for_half_pixel_upsampling():
    """Cell ``j`` of each stage is centred at ``(j + 1/2) x stride`` input pixels (the engine's
    receptive fields), where the bilinear upsampling of a map puts it (stride-2 3x3 convs
    would centre it at ``j x stride + 1/2``)."""
    model = demo_detector(allow_untrained=True).model
    names = [f"backbone.body.{s}" for s in ("stem", "layer1", "layer2", "layer3")]
    fields = cw.receptive_fields(model, names, containers=True, input_size=(128, 128))
    assert [fields[n].jump for n in names] == [(2.0, 2.0), (4.0, 4.0), (8.0, 8.0), (16.0, 16.0)]
    for name in names:
        assert fields[name].start == (fields[name].jump[0] / 2, fields[name].jump[1] / 2), name


def _head_outputs(model: FCOS, cls_logits: torch.Tensor):
    """FCOS's per-level head outputs and anchors for one 128 px image, from given logits."""
    from torchvision.models.detection.image_list import ImageList

    sizes = [(16, 16)]  # the detector's one level
    per_level = [h * w for h, w in sizes]
    images = ImageList(torch.zeros(1, 3, 128, 128), [(128, 128)])
    anchors = model.anchor_generator(images, [torch.zeros(1, 1, h, w) for h, w in sizes])
    n = sum(per_level)
    outputs = {
        "cls_logits": list(cls_logits.split(per_level, dim=1)),
        "bbox_regression": list(torch.full((1, n, 4), 2.0).split(per_level, dim=1)),
        "bbox_ctrness": list(torch.zeros(1, n, 1).split(per_level, dim=1)),
    }
    return outputs, [list(a.split(per_level)) for a in anchors]


def test_scores_keep_finite_gradients_where_a_sigmoid_underflows():
    """FCOS's score sqrt(sigmoid(class) * sigmoid(centre-ness)) has a NaN gradient where a
    logit is so low that the sigmoid is 0; ShapesFCOS clamps the logits first."""
    model = demo_detection.shapes_detector().eval()
    base = torch.full((1, 256, len(SCENE_CLASSES)), -200.0)
    base[0, 40, 3] = 4.0  # one confident location, class 3
    plain_fcos = functools.partial(FCOS.postprocess_detections, model)
    for postprocess, finite in ((model.postprocess_detections, True), (plain_fcos, False)):
        logits = base.clone().requires_grad_(True)
        outputs, anchors = _head_outputs(model, logits)
        found = postprocess(outputs, anchors, [(128, 128)])[0]
        assert found["labels"].tolist() == [3]
        found["scores"].sum().backward()
        assert bool(torch.isfinite(logits.grad).all()) == finite
        if finite:
            assert float(logits.grad[0, 40, 3]) > 0
            assert float(found["scores"][0].detach()) == pytest.approx(
                (torch.sigmoid(torch.tensor(4.0)) * 0.5).sqrt().item(), rel=1e-6
            )


def test_one_box_per_object(detector: DemoTask, held_out):
    """No two returned boxes overlap by more than the NMS threshold, whatever their labels
    (FCOS alone suppresses per class and often returns an object under two labels)."""
    from torchvision.ops import box_iou

    with torch.no_grad():
        outputs = detector.model(held_out.images[:100])
    pairs = 0
    for out in outputs:
        iou = box_iou(out["boxes"], out["boxes"])
        iou.fill_diagonal_(0.0)
        assert float(iou.max()) <= detector.model.nms_thresh if iou.numel() else True
        pairs += len(out["boxes"]) ** 2
    assert pairs > 100


# ---------------------------------------------------------------------------------------
# Quality on held-out scenes
# ---------------------------------------------------------------------------------------


def test_detector_map(detector: DemoTask, held_out):
    m_ap, per_class = evaluate_detector(detector.model, held_out)
    print(f"\ndemo detector: mAP@0.5 {m_ap:.3f} on {HELD_OUT_SCENES} held-out scenes; per class "
          + ", ".join(f"{SCENE_CLASSES[k]} {v:.2f}" for k, v in per_class.items()))  # fmt: skip
    assert set(per_class) == set(range(1, len(SCENE_CLASSES)))
    assert m_ap >= 0.8


def test_segmenter_miou(segmenter: DemoTask, held_out):
    miou, ious = evaluate_segmenter(segmenter.model, held_out)
    named = zip(SCENE_CLASSES, ious, strict=True)
    print(f"\ndemo segmenter: mIoU {miou:.3f} on {HELD_OUT_SCENES} held-out scenes; per class "
          + ", ".join(f"{c} {v:.2f}" for c, v in named))  # fmt: skip
    assert not any(math.isnan(v) for v in ious)
    assert miou >= 0.8


def test_gradcam_of_a_box_peaks_inside_it(detector: DemoTask, held_out):
    """The Grad-CAM of each detected box (score >= 0.5) at the layer the demo names, the FCOS
    class tower (only the class score's gradient reaches it), has its maximum inside that box
    in at least 90% of the boxes; the maps are finite."""
    assert demo_detection.DETECTOR_CAM_LAYER == "head.classification_head.conv"
    model = detector.model
    inside, total = 0, 0
    for i in range(CAM_SCENES):
        x = held_out.images[i : i + 1]
        found = cw.detections(model, x, score_threshold=0.5)[0]
        if len(found) == 0:
            continue
        maps = cw.cam_per_target(
            model, x, demo_detection.DETECTOR_CAM_LAYER, "GradCAM", found.targets()
        )
        assert np.isfinite(maps).all()
        for k in range(len(found)):
            y, xx = np.unravel_index(int(np.argmax(maps[k])), maps[k].shape)
            x0, y0, x1, y1 = found.boxes[k].tolist()
            inside += int(x0 <= xx + 0.5 <= x1 and y0 <= y + 0.5 <= y1)
            total += 1
    print(f"\nGrad-CAM maximum inside its box: {inside}/{total} = {inside / total:.3f}")
    assert total >= CAM_SCENES
    assert inside >= 0.9 * total


# ---------------------------------------------------------------------------------------
# The quality measures, against hand-computed values
# ---------------------------------------------------------------------------------------


def test_average_precision_hand_computed():
    # 5 detections, 3 true objects; by score: TP, FP, TP, FP, TP.
    # precision 1, 1/2, 2/3, 2/4, 3/5 at recall 1/3, 1/3, 2/3, 2/3, 1; envelope 1, 2/3, 2/3,
    # 3/5, 3/5: AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/5 = 0.7555...
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    matched = [True, False, True, False, True]
    assert average_precision(scores, matched, 3) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # order of the input does not matter, only the scores
    perm = [3, 0, 4, 2, 1]
    assert average_precision([scores[p] for p in perm], [matched[p] for p in perm], 3) == (
        pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    )
    # a missed object caps recall: TP, TP of 4 objects -> AP = 1/2
    assert average_precision([0.9, 0.8], [True, True], 4) == pytest.approx(0.5)
    assert average_precision([], [], 2) == 0.0
    assert average_precision([0.3, 0.9], [True, False], 1) == pytest.approx(0.5)


def test_mean_average_precision_hand_computed():
    t = torch.tensor
    true_boxes = [t([[0.0, 0, 10, 10], [20, 20, 30, 30]]), t([[0.0, 0, 10, 10]])]
    true_labels = [t([1, 2]), t([1])]
    # image 0: a good class-1 box (0.9), its duplicate (0.8, FP), a class-2 box of IoU 0.47
    # with its object (25 / 53, FP at 0.5); image 1: a class-1 box of IoU 0.81 (TP, 0.7)
    pred_boxes = [
        t([[0.0, 0, 10, 10], [0.0, 0, 10, 10], [22.0, 22, 32, 32]]),
        t([[0.0, 0, 9, 9]]),
    ]
    pred_labels = [t([1, 1, 2]), t([1])]
    pred_scores = [t([0.9, 0.8, 0.95]), t([0.7])]
    m_ap, per_class = mean_average_precision(
        pred_boxes, pred_labels, pred_scores, true_boxes, true_labels
    )
    # class 1 by score: TP (0.9), FP (0.8), TP (0.7) -> precision 1, 1/2, 2/3 at recall
    # 1/2, 1/2, 1 -> AP = 1/2 * 1 + 1/2 * 2/3; class 2: FP only -> 0
    assert per_class == {1: pytest.approx(0.5 + 1 / 3), 2: 0.0}
    assert m_ap == pytest.approx((0.5 + 1 / 3) / 2)
    # at IoU 0.4 the class-2 box counts
    _, loose = mean_average_precision(
        pred_boxes, pred_labels, pred_scores, true_boxes, true_labels, iou_threshold=0.4
    )
    assert loose[2] == pytest.approx(1.0)


def test_mean_iou_hand_computed():
    true = torch.tensor([[[0, 0, 1, 1], [0, 2, 2, 1]]])
    pred = torch.tensor([[[0, 1, 1, 1], [0, 2, 0, 1]]])
    # class 0: pred {0,4,6}, true {0,1,4} -> 2 / 4; class 1: pred {1,2,3,7}, true {2,3,7}
    # -> 3 / 4; class 2: pred {5}, true {5,6} -> 1 / 2; class 3 absent
    miou, ious = mean_iou(pred, true, num_classes=4)
    assert ious[:3] == pytest.approx([0.5, 0.75, 0.5]) and math.isnan(ious[3])
    assert miou == pytest.approx((0.5 + 0.75 + 0.5) / 3)
    assert mean_iou(true, true, 4)[0] == 1.0
    with pytest.raises(ValueError):
        mean_iou(pred[:, :1], true)


# ---------------------------------------------------------------------------------------
# Reproducible training
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_training_is_reproducible(task):
    def run(seed: int) -> dict[str, torch.Tensor]:
        model = train(task, epochs=1, scenes_per_epoch=8, batch_size=4, seed=seed, log_every=0)
        assert not model.training
        return model.state_dict()

    first, again, other = run(0), run(0), run(1)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    torch.manual_seed(0)  # the initial weights of run(0)
    build = (
        demo_detection.shapes_detector if task == "detection" else demo_detection.shapes_segmenter
    )
    initial = build().state_dict()
    changed = [
        k for k, v in initial.items() if v.is_floating_point() and not torch.equal(first[k], v)
    ]
    assert len(changed) > len(initial) // 2  # the steps trained the weights
