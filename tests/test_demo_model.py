"""Tests of the bundled demo material: shape generator, ShapesNet weights, sample photos."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnnviz_widgets.demo import (
    SAMPLE_PHOTOS,
    SHAPE_CLASSES,
    DemoModel,
    ShapesNet,
    demo_model,
    make_shapes,
    sample_photo,
)
from cnnviz_widgets.demo.model import bundled_state_dict
from cnnviz_widgets.demo.shapes import _generate
from cnnviz_widgets.demo.train import TRAIN_SEED_BASE, VALIDATION_SEED

# Seeds of the held-out sets below: never used for training (epochs use TRAIN_SEED_BASE + e)
# nor for the validation printed by the training script.
ACCURACY_SEED = 31_337
CAM_SEED = 27_182


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def demo() -> DemoModel:
    return demo_model()


def test_held_out_seeds_are_unused_in_training():
    for seed in (ACCURACY_SEED, CAM_SEED):
        assert not TRAIN_SEED_BASE <= seed < TRAIN_SEED_BASE + 1000
        assert seed not in (VALIDATION_SEED, VALIDATION_SEED + 1)


# ---------------------------------------------------------------------------------------
# (a) generator
# ---------------------------------------------------------------------------------------


def test_generator_shapes_dtypes_and_range():
    images, labels, boxes = make_shapes(40, size=64, seed=3)
    assert images.shape == (40, 3, 64, 64) and images.dtype == torch.float32
    assert labels.shape == (40,) and labels.dtype == torch.int64
    assert boxes.shape == (40, 4) and boxes.dtype == torch.int64
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert torch.isfinite(images).all()
    assert int(labels.min()) >= 0 and int(labels.max()) < len(SHAPE_CLASSES)
    assert len(SHAPE_CLASSES) == len(set(SHAPE_CLASSES)) >= 6


def test_generator_is_deterministic():
    a = make_shapes(24, seed=11, return_masks=True)
    b = make_shapes(24, seed=11, return_masks=True)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    c = make_shapes(24, seed=12)
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[2], c[2])


def test_generator_other_size_and_forced_labels():
    wanted = list(range(len(SHAPE_CLASSES)))
    images, labels, boxes = make_shapes(len(wanted), size=48, seed=5, labels=wanted)
    assert images.shape == (len(wanted), 3, 48, 48)
    assert labels.tolist() == wanted
    assert int(boxes[:, 2:].max()) <= 48
    with pytest.raises(ValueError):
        make_shapes(3, labels=[0, 1])
    with pytest.raises(ValueError):
        make_shapes(1, labels=[len(SHAPE_CLASSES)])


def test_boxes_are_valid_and_tight():
    size = 64
    _, _, boxes, masks = make_shapes(200, size=size, seed=21, return_masks=True)
    x0, y0, x1, y1 = boxes.unbind(1)
    assert (x0 >= 0).all() and (y0 >= 0).all()
    assert (x1 <= size).all() and (y1 <= size).all()
    assert (x1 - x0 >= 8).all() and (y1 - y0 >= 8).all()
    assert masks.shape == (200, size, size)
    assert float(masks.min()) >= 0.0 and float(masks.max()) <= 1.0
    for i in range(200):
        m = masks[i] > 0
        inside = torch.zeros_like(m)
        inside[y0[i] : y1[i], x0[i] : x1[i]] = True
        assert not (m & ~inside).any(), f"object pixels outside box {i}"
        # Tight: the object touches every edge of its box.
        assert m[:, x0[i]].any() and m[:, x1[i] - 1].any()
        assert m[y0[i]].any() and m[y1[i] - 1].any()
        # The object is solid enough to see (at least some fully covered pixels).
        assert (masks[i] == 1).sum() >= 20


def test_object_pixels_lie_inside_box():
    """Rendering the same seed without the object changes pixels only inside the box."""
    with_obj, labels, boxes, masks = _generate(100, 64, 8, None, draw_objects=True)
    without, labels2, boxes2, _ = _generate(100, 64, 8, None, draw_objects=False)
    assert (labels == labels2).all() and (boxes == boxes2).all()
    differs = torch.from_numpy((with_obj != without).any(axis=1))  # (N, H, W)
    for i in range(100):
        x0, y0, x1, y1 = boxes[i].tolist()
        outside = differs[i].clone()
        outside[y0:y1, x0:x1] = False
        assert not outside.any(), f"image {i} differs outside its box"
        assert differs[i].sum() >= 0.5 * (masks[i] > 0.5).sum()


def test_generator_is_fast():
    # About 0.5 s on one idle core; the bound leaves room for a busy CI machine.
    t0 = time.perf_counter()
    make_shapes(2000, seed=1)
    assert time.perf_counter() - t0 < 20.0


# ---------------------------------------------------------------------------------------
# Bundled model
# ---------------------------------------------------------------------------------------


def test_demo_model_fields(demo: DemoModel):
    assert isinstance(demo.model, ShapesNet)
    assert not demo.model.training
    assert demo.classes == SHAPE_CLASSES
    assert demo.size == 64
    assert len(demo.mean) == 3 and len(demo.std) == 3
    k = len(SHAPE_CLASSES)
    assert demo.samples.shape == (k, 3, 64, 64)
    assert demo.sample_labels.tolist() == list(range(k))
    assert demo.sample_boxes.shape == (k, 4)
    assert float(demo.samples.min()) >= 0 and float(demo.samples.max()) <= 1
    one = demo.transform(demo.samples[0])
    batch = demo.transform(demo.samples)
    assert one.shape == (3, 64, 64) and batch.shape == (k, 3, 64, 64)
    assert torch.allclose(batch[0], one)
    mean = torch.tensor(demo.mean).view(3, 1, 1)
    std = torch.tensor(demo.std).view(3, 1, 1)
    assert torch.allclose(batch, (demo.samples - mean) / std)
    with pytest.raises(ValueError):
        demo.transform(torch.zeros(1, 64, 64))
    with pytest.raises(dataclasses.FrozenInstanceError):
        demo.size = 32  # type: ignore[misc]


def test_layer_names_and_grid(demo: DemoModel):
    names = dict(demo.model.named_modules())
    convs = [n for n, m in names.items() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0] == "features.0"
    assert len(convs) == 5
    assert all(names[n].kernel_size == (3, 3) for n in convs)
    assert isinstance(names["classifier.0"], torch.nn.Linear)
    shapes: list[torch.Size] = []
    handle = names[convs[-1]].register_forward_hook(
        lambda _m, _i, o: shapes.append(o.shape)  # append returns None: output unchanged
    )
    try:
        with torch.no_grad():
            logits = demo.model(demo.transform(demo.samples[:2]))
    finally:
        handle.remove()
    assert shapes[0] == (2, 128, 8, 8)
    assert logits.shape == (2, len(SHAPE_CLASSES))


def test_weights_file_is_tensors_only_and_small():
    state = bundled_state_dict()
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in state.values())
    n_params = sum(v.numel() for v in state.values())
    assert 50_000 < n_params < 500_000


def test_samples_are_classified_correctly(demo: DemoModel):
    with torch.no_grad():
        pred = demo.model(demo.transform(demo.samples)).argmax(1)
    assert pred.tolist() == demo.sample_labels.tolist()


# ---------------------------------------------------------------------------------------
# (b) accuracy of the shipped weights on held-out generated images
# ---------------------------------------------------------------------------------------


def test_held_out_accuracy(demo: DemoModel):
    images, labels, _ = make_shapes(1000, size=demo.size, seed=ACCURACY_SEED)
    with torch.no_grad():
        pred = torch.cat(
            [demo.model(demo.transform(images[i : i + 250])).argmax(1) for i in range(0, 1000, 250)]
        )
    acc = float((pred == labels).float().mean())
    print(f"ShapesNet held-out accuracy: {acc:.4f} (1000 images, seed {ACCURACY_SEED})")
    assert acc >= 0.95


# ---------------------------------------------------------------------------------------
# (c) Grad-CAM at the last conv layer points at the object
# ---------------------------------------------------------------------------------------


def _grad_cam(model: ShapesNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM of the predicted class at the last conv layer (after its ReLU).

    Returns the maps ``(N, H, W)`` upsampled bilinearly to the input size, and the
    predicted classes ``(N,)``.
    """
    relus = [m for m in model.features if isinstance(m, torch.nn.ReLU)]
    store: dict[str, torch.Tensor] = {}
    handle = relus[-1].register_forward_hook(lambda _m, _i, o: store.__setitem__("a", o))
    try:
        logits = model(x)
    finally:
        handle.remove()
    pred = logits.argmax(1)
    score = logits.gather(1, pred[:, None]).sum()
    acts = store["a"]
    (grads,) = torch.autograd.grad(score, acts)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * acts).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return cam[:, 0].detach(), pred


def test_grad_cam_peak_lies_in_object_box(demo: DemoModel):
    n = 200
    images, _, boxes = make_shapes(n, size=demo.size, seed=CAM_SEED)
    cam, _ = _grad_cam(demo.model, demo.transform(images))
    flat = cam.flatten(1).argmax(1)
    rows, cols = flat // demo.size, flat % demo.size
    x0, y0, x1, y1 = boxes.unbind(1)
    hit = (cols >= x0) & (cols < x1) & (rows >= y0) & (rows < y1)
    rate = float(hit.float().mean())
    print(f"Grad-CAM argmax inside the object box: {rate:.3f} ({n} images, seed {CAM_SEED})")
    assert rate >= 0.90


# ---------------------------------------------------------------------------------------
# Sample photos
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLE_PHOTOS)
def test_sample_photo(name: str):
    image = sample_photo(name)
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB"
    assert min(image.size) >= 200


def test_sample_photo_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        sample_photo("dog")
    for name in SAMPLE_PHOTOS:
        assert name in str(info.value)
    assert set(SAMPLE_PHOTOS) == {"chelsea", "coffee"}
