"""Region targets on torchvision segmenters, against pytorch-grad-cam's
``SemanticSegmentationTarget`` (the reference runs its own copy of the model inside its
tutorial's ``SegmentationModelOutputWrapper``; ours takes the model's dict output as it is).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

import cnnviz_widgets as cw
from cnnviz_widgets.engine.cam import cam, cam_per_target
from cnnviz_widgets.engine.regions import RegionTarget
from cnnviz_widgets.engine.saliency import saliency
from cnnviz_widgets.engine.targets import TargetError

from .helpers.detection_models import (
    MAX_MAD,
    SIZE,
    Parity,
    build,
    mad,
    reference_cam,
    smooth_images,
)
from .model_state import Fingerprint

PARITY = Parity("segmentation")


@pytest.fixture(scope="module", autouse=True)
def _print_figures():
    yield
    PARITY.report()


assert_parity = PARITY.check


def region(seed: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """An ``(H, W)`` float32 0/1 mask: an ellipse and a rectangle, placed by ``seed``."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    mask = ((yy - cy) / 30) ** 2 + ((xx - cx) / 45) ** 2 <= 1
    y0, x0 = int(rng.integers(0, h - 30)), int(rng.integers(0, w - 40))
    mask[y0 : y0 + 25, x0 : x0 + 35] = True
    return mask.astype(np.float32)


@pytest.fixture(scope="module")
def deeplab():
    return build("deeplabv3")


@pytest.fixture(scope="module")
def lraspp():
    return build("lraspp")


@pytest.fixture(scope="module")
def image():
    return smooth_images(1, seed=3)


@pytest.mark.parametrize(
    "method",
    ["GradCAM", "GradCAMPlusPlus", "XGradCAM", "LayerCAM", "HiResCAM", "GradCAMElementWise"],
)
def test_gradient_methods_match_reference_on_deeplab(deeplab, image, method):
    mask = region(1)
    ours = cam(deeplab, image, None, method, RegionTarget(2, mask))
    ref = reference_cam(
        deeplab, image, method, ["backbone.16"], [SemanticSegmentationTarget(2, mask)], wrap=True
    )
    assert_parity(f"{method} deeplabv3_mobilenet", ours, ref)


@pytest.mark.parametrize(
    ("name", "layer", "methods", "size"),
    [
        ("lraspp", "backbone.16", ["GradCAM", "GradCAMPlusPlus", "LayerCAM"], SIZE),
        ("fcn", "backbone.layer4", ["GradCAM", "XGradCAM"], (96, 112)),  # 2048 channels
    ],
)
def test_gradient_methods_match_reference_on_other_segmenters(name, layer, methods, size):
    model = build(name)
    x = smooth_images(1, size=size, seed=4)
    mask = region(2, size)
    for method in methods:
        ours = cam(model, x, layer, method, RegionTarget(1, mask))
        ref = reference_cam(model, x, method, [layer], [SemanticSegmentationTarget(1, mask)],
                            wrap=True)
        assert_parity(f"{method} {name}", ours, ref)
    ours = cam(model, x, layer, "EigenCAM")
    ref = reference_cam(model, x, "EigenCAM", [layer], None, wrap=True)
    if mad(ours, ref) > MAX_MAD:  # a principal component's sign is arbitrary
        ref = reference_cam(model, x, "EigenCAM", [layer], None, wrap=True, negate=True)
    assert_parity(f"EigenCAM {name}", ours, ref)


@pytest.mark.parametrize("method", ["ScoreCAM", "AblationCAM"])
def test_perturbation_methods_match_reference_on_lraspp(lraspp, method):
    """One masked (ScoreCAM) or ablated (AblationCAM) forward pass per channel of an early
    16-channel layer, each scored with the region target."""
    x = smooth_images(1, size=(64, 80), seed=6)
    mask = np.zeros((64, 80), np.float32)
    mask[10:40, 20:60] = 1
    batch = 16 if method == "ScoreCAM" else 32  # the reference's defaults
    ours = cam(lraspp, x, "backbone.1", method, RegionTarget(3, mask), batch_size=batch)
    ref = reference_cam(
        lraspp, x, method, ["backbone.1"], [SemanticSegmentationTarget(3, mask)], wrap=True
    )
    assert_parity(f"{method} lraspp", ours, ref)
    plain = cam(lraspp, x, "backbone.1", "EigenCAM")
    assert mad(ours, plain) > 1e-3  # the channels are weighted, not summed alike


def test_every_item_of_a_batch(deeplab):
    """grad-cam#264: with one target for a batch the reference explains the first image only
    (``zip`` of one target and two outputs) and the second map is all zeros. Here one
    RegionTarget applies to every image, and one per image works too; each map equals its
    image's map alone and the reference's with one target per image."""
    x = smooth_images(2, seed=9)
    masks = [region(3), region(4)]
    per_image = cam(deeplab, x, None, "GradCAM", [RegionTarget(0, m) for m in masks])
    shared = cam(deeplab, x, None, "GradCAM", RegionTarget(0, masks[0]))
    for i in range(2):
        alone = cam(deeplab, x[i : i + 1], None, "GradCAM", RegionTarget(0, masks[i]))
        assert mad(per_image[i], alone[0]) <= 1e-6
        alone_shared = cam(deeplab, x[i : i + 1], None, "GradCAM", RegionTarget(0, masks[0]))
        assert mad(shared[i], alone_shared[0]) <= 1e-6
        assert shared[i].max() > 0.5
    ref = reference_cam(deeplab, x, "GradCAM", ["backbone.16"],
                        [SemanticSegmentationTarget(0, m) for m in masks], wrap=True)
    assert_parity("GradCAM deeplabv3_mobilenet batch", per_image, ref)
    one = reference_cam(deeplab, x, "GradCAM", ["backbone.16"],
                        [SemanticSegmentationTarget(0, masks[0])], wrap=True)
    assert one[1].max() == 0  # the reference's issue #264, for the record


def test_regions_of_one_image_take_one_forward_pass(deeplab, image):
    targets = [RegionTarget(k, region(10 + k)) for k in range(3)]
    calls = []
    handle = deeplab.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        maps = cam_per_target(deeplab, image, "backbone.16", "GradCAM", targets)
    finally:
        handle.remove()
    assert len(calls) == 1
    for k, t in enumerate(targets):
        assert mad(maps[k], cam(deeplab, image, "backbone.16", "GradCAM", t)[0]) <= 1e-6


def test_saliency_of_a_region_equals_hand_gradient(lraspp, image):
    mask = region(5)
    twin = copy.deepcopy(lraspp).eval()

    def grad_at(x: torch.Tensor) -> torch.Tensor:
        leaf = x.clone().requires_grad_(True)
        score = SemanticSegmentationTarget(4, mask)(twin(leaf)["out"][0])
        return torch.autograd.grad(score, leaf)[0]

    ours = saliency(lraspp, image, RegionTarget(4, mask), "vanilla")
    want = grad_at(image)
    np.testing.assert_allclose(ours, want.numpy(), rtol=1e-4, atol=1e-5 * float(want.abs().max()))
    smooth = saliency(lraspp, image, RegionTarget(4, mask), "smoothgrad", n_samples=3, seed=7)
    g = torch.Generator().manual_seed(7)
    sigma = 0.15 * float(image.max() - image.min())
    noisy = [image + torch.randn(image.shape, generator=g) * sigma for _ in range(3)]
    want_smooth = sum(grad_at(n) for n in noisy) / 3
    np.testing.assert_allclose(
        smooth, want_smooth.numpy(), rtol=1e-4, atol=1e-5 * float(want_smooth.abs().max())
    )


def test_segmentation_is_the_argmax(lraspp, image):
    lraspp.train()
    before = Fingerprint.of(lraspp)
    labels = cw.segmentation(lraspp, image)
    before.assert_same(lraspp)
    lraspp.eval()
    with torch.no_grad():
        want = lraspp(image)["out"].argmax(dim=1)
    assert labels.dtype == torch.int64 and torch.equal(labels, want)
    assert len(labels.unique()) > 1


def test_bad_regions_are_named(lraspp, resnet18, image):
    h, w = SIZE
    state = Fingerprint.of(lraspp)
    frcnn_like = build("ssdlite")
    cases = [
        (lambda: cam(lraspp, image, None, "GradCAM", RegionTarget(1, np.ones((h // 2, w)))),
         TargetError, r"mask is \(80, 192\) but the model's output is 160 x 192"),
        (lambda: cam(lraspp, image, None, "GradCAM", RegionTarget(7, np.ones((h, w)))),
         TargetError, "label 7 is out of range.*0..4"),
        (lambda: RegionTarget(1, np.full((h, w), 0.5)), TargetError, "boolean or 0/1"),
        (lambda: RegionTarget(1, np.zeros((h, w))), TargetError, "selects no pixel"),
        (lambda: RegionTarget(1, np.ones((2, h, w))), TargetError, "one RegionTarget per image"),
        (lambda: cam(resnet18, image, None, "GradCAM", RegionTarget(1, np.ones((h, w)))),
         TargetError, "RegionTarget explains a segmentation model"),
        (lambda: cam(frcnn_like, image, None, "GradCAM", RegionTarget(1, np.ones((h, w)))),
         TargetError, "Use BoxTarget for a detection model"),
        (lambda: cam(lraspp, image, None, "GradCAM"), TargetError, "RegionTarget"),
        (lambda: cam(lraspp, image, None, "GradCAM", 1), TargetError, "RegionTarget"),
    ]
    for call, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            call()
    state.assert_same(lraspp)
