"""The layer tools on detectors and segmenters: conv_layers, feature_maps (named FPN levels),
kernels, receptive_fields, default_layer, and CAMs of folded or single levels."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
from torch import nn

import cnnviz_widgets as cw
from cnnviz_widgets.engine.cam import cam
from cnnviz_widgets.engine.cam.api import default_cam_layers
from cnnviz_widgets.engine.levels import LevelNotFoundError
from cnnviz_widgets.engine.regions import BoxTarget

from .helpers.detection_models import build, mad, smooth_images
from .model_state import Fingerprint


@pytest.fixture(scope="module")
def frcnn():
    return build("fasterrcnn_mobilenet")


@pytest.fixture(scope="module")
def retinanet():
    return build("retinanet")


@pytest.fixture(scope="module")
def image():
    return smooth_images(1, seed=11)


def backbone_levels(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The hand way: the model's own transform, then its backbone."""
    with torch.no_grad():
        images, _ = model.eval().transform(list(x))
        return dict(model.backbone(images.tensors))


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("fasterrcnn_mobilenet", "backbone.body.16"),
        ("retinanet", "backbone.body.layer4"),
        ("fcos", "backbone.body.layer4"),
        ("ssdlite", "backbone.features.0"),
        ("deeplabv3", "backbone.16"),
        ("lraspp", "backbone.16"),
    ],
)
def test_default_layers(name, want):
    """The last grid of the backbone, not of the heads (``roi_heads.box_roi_pool`` and
    ``head.regression_head.bbox_reg`` before); the model is left as it was."""
    model = build(name)
    model.train()
    before = Fingerprint.of(model)
    assert cw.default_layer(model, smooth_images(1, seed=1)) == want
    before.assert_same(model)


def test_conv_layers_in_forward_order(frcnn, image):
    """Every Conv2d in the order a real forward pass first calls it (hooks of our own)."""
    order: list[str] = []
    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: order.append(name))
        for name, module in frcnn.named_modules()
        if isinstance(module, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            frcnn.eval()(image)
    finally:
        for handle in handles:
            handle.remove()
    first_calls = list(dict.fromkeys(order))
    assert list(cw.conv_layers(frcnn)) == first_calls
    convs = default_cam_layers(frcnn)  # cam_per_layer: the backbone's convs only
    assert list(convs) == [n for n in first_calls if n.startswith("backbone.body.")]


def test_feature_maps_name_every_fpn_level(frcnn, image):
    maps = cw.feature_maps(frcnn, image, ["backbone", "backbone.body.16", "backbone:pool"])
    want = backbone_levels(frcnn, image)
    # "backbone:pool" is asked twice (as a level of "backbone" and by name): one entry
    assert list(maps) == [*(f"backbone:{k}" for k in want), "backbone.body.16"]
    for key, level in want.items():
        assert torch.equal(maps[f"backbone:{key}"], level)
    assert torch.equal(maps["backbone:pool"], want["pool"])
    with pytest.raises(LevelNotFoundError, match=r"entries are '0', '1', 'pool'"):
        cw.feature_maps(frcnn, image, ["backbone:p6"])
    with pytest.raises(cw.LayerOutputError, match="not a tensor"):
        cw.feature_maps(frcnn, image, ["rpn.head"])  # a tuple of lists, not of tensors


def test_kernels_of_a_detector(frcnn):
    name = list(cw.conv_layers(frcnn))[5]
    kernels = cw.kernels(frcnn, name)
    assert torch.equal(kernels, frcnn.get_submodule(name).weight.detach())


@pytest.mark.parametrize("size", [(160, 192), (320, 384), (100, 150)])
def test_receptive_fields_in_input_pixels(retinanet, size):
    """The input pixels a unit's gradient reaches (through the detector's own resize and
    normalisation) are exactly its field, rounded out to whole pixels: the resize is 1, 1/2
    and 1.6 here. ResNet-50 has no global (squeeze-excitation) branches, so the gradient's
    support is the whole field."""
    layers = ["backbone.body.layer1", "backbone.body.layer2.0.conv2"]
    fields = cw.receptive_fields(retinanet, layers, input_size=size, containers=True)
    assert set(fields) == set(layers)
    assert cw.receptive_fields(retinanet, layers) == {}  # a detector needs input_size
    x = smooth_images(1, size=size, seed=2).requires_grad_(True)
    for layer in layers:
        got: dict[str, torch.Tensor] = {}
        handle = retinanet.get_submodule(layer).register_forward_hook(
            lambda m, i, o, got=got: got.setdefault("out", o)
        )
        try:
            images, _ = retinanet.eval().transform(list(x))
            retinanet.backbone.body(images.tensors)
        finally:
            handle.remove()
        out = got["out"]
        row, col = out.shape[-2] // 2, out.shape[-1] // 2
        (grad,) = torch.autograd.grad(out[0, :, row, col].sum(), x)
        reached = (grad.abs().sum(dim=1)[0] > 0).nonzero()
        support = (
            int(reached[:, 1].min()), int(reached[:, 0].min()),
            int(reached[:, 1].max()) + 1, int(reached[:, 0].max()) + 1,
        )
        x0, y0, x1, y1 = fields[layer].box(row, col)
        assert support == (math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)), layer


def test_receptive_fields_of_deeplab_heads():
    """DeepLabV3's ASPP pooling branch is upsampled back over the grid: a pooled value stays
    global, so the projection after the ASPP keeps the union of its spatial branches."""
    model = build("deeplabv3")
    fields = cw.receptive_fields(model, ["classifier.0.project.0", "classifier.0.convs.3.0"])
    assert set(fields) == {"classifier.0.project.0", "classifier.0.convs.3.0"}
    assert fields["classifier.0.project.0"].size >= fields["classifier.0.convs.3.0"].size


def tutorial_fold(levels: dict[str, torch.Tensor], smallest: str) -> torch.Tensor:
    """pytorch-grad-cam's ``fasterrcnn_reshape_transform`` with the smallest level named."""
    size = levels[smallest].shape[-2:]
    return torch.cat(
        [F.interpolate(torch.abs(v), size, mode="bilinear") for v in levels.values()], dim=1
    )


def test_gradcam_of_folded_levels_equals_slow_formula(retinanet, image):
    """GradCAM of ``"backbone"`` (five RetinaNet levels, the smallest "p7"): the levels and
    their gradients folded as the reference's tutorial folds them, ``relu(sum_c mean(G_c)
    A_c)``; each level alone equals a reshape that picks it."""
    found = cw.detections(retinanet, image, score_threshold=0.0)[0]
    target = BoxTarget(found.labels[:2].tolist(), found.boxes[:2])
    ours = cam(retinanet, image, "backbone", "GradCAM", target, raw=True)[0]
    twin = copy.deepcopy(retinanet).eval().requires_grad_(False)
    levels: dict[str, torch.Tensor] = {}

    def keep(module, inputs, output):
        out = {k: v.detach().requires_grad_(True) for k, v in output.items()}
        levels.update(out)
        return type(output)(out)

    handle = twin.backbone.register_forward_hook(keep)
    try:
        score = FasterRCNNBoxScoreTarget(found.labels[:2].tolist(), found.boxes[:2].numpy())(
            twin(image)[0]
        ).sum()
    finally:
        handle.remove()
    grads = dict(zip(levels, torch.autograd.grad(score, list(levels.values())), strict=True))
    acts, grad = tutorial_fold(levels, "p7"), tutorial_fold(grads, "p7")
    want = torch.relu((grad.mean(dim=(2, 3))[:, :, None, None] * acts).sum(dim=1))[0].detach()
    assert float(want.max()) > 0
    np.testing.assert_allclose(ours, want.numpy(), rtol=1e-4, atol=1e-5 * float(want.max()))
    used = 0
    for key in levels:  # a box's score depends on the levels its anchors are on
        one = cam(retinanet, image, f"backbone:{key}", "GradCAM", target)
        picked = cam(retinanet, image, "backbone", "GradCAM", target,
                     reshape=lambda d, key=key: d[key])
        assert mad(one, picked) <= 1e-7
        used += one.max() > 0.5
    assert used > 0
