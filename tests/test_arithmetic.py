"""A conv unit's value is its kernel dotted with the input patch, plus the bias."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnviz_widgets.engine.arithmetic import UnitError, unit_arithmetic
from cnnviz_widgets.engine.features import feature_maps

from .model_state import Fingerprint


def units(out: torch.Tensor) -> list[tuple[int, int, int]]:
    c, h, w = out.shape[1:]
    return [(0, 0, 0), (c - 1, h - 1, w - 1), (c // 2, h // 2, 0), (1 % c, 0, w - 1)]


@pytest.mark.parametrize(("build", "layer"), [
    (lambda: torchvision.models.resnet18(weights=None), "conv1"),          # 7x7, stride 2, pad 3
    (lambda: torchvision.models.resnet18(weights=None), "layer2.0.downsample.0"),  # 1x1 s2
    (lambda: torchvision.models.mobilenet_v3_small(weights=None), "features.1.block.0.0"),  # dw
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=2, dilation=2, bias=True)), "0"),
    (lambda: nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, padding_mode="reflect", groups=3)),
     "0"),
])
def test_value_is_the_dot_product_and_equals_the_feature_map(build, layer):
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(1, 3, 48, 48)
    before = Fingerprint.of(model)
    out = feature_maps(model, x, [layer])[layer]
    for c, r, col in units(out):
        a = unit_arithmetic(model, x, layer, c, r, col)
        assert a.value == pytest.approx(float(out[0, c, r, col]), abs=1e-4, rel=1e-4)
        assert a.output == pytest.approx(float(out[0, c, r, col]), abs=1e-6)
        assert a.patch.shape == a.kernel.shape == a.products.shape
        assert float(a.products.sum()) + a.bias == pytest.approx(a.value, abs=1e-4)
        module = dict(model.named_modules())[layer]
        torch.testing.assert_close(a.kernel, module.weight.detach()[c])
    before.assert_same(model)


def test_the_patch_is_the_input_under_the_kernel_with_zero_padding():
    conv = nn.Conv2d(2, 1, 3, stride=2, padding=1, bias=False)
    model = nn.Sequential(conv)
    x = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(1, 2, 5, 5)
    a = unit_arithmetic(model, x, "0", 0, 0, 0)  # top-left: one row and column of padding
    assert a.box == (-1, -1, 2, 2)
    torch.testing.assert_close(a.patch[:, 0, :], torch.zeros(2, 3))
    torch.testing.assert_close(a.patch[:, 1:, 1:], x[0, :, 0:2, 0:2])
    b = unit_arithmetic(model, x, "0", 0, 1, 2)
    torch.testing.assert_close(b.patch[:, :, :2], x[0, :, 1:4, 3:5])


def test_bad_units_say_what_is_wrong():
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(UnitError, match="is a ReLU"):
        unit_arithmetic(model, x, "relu", 0, 0, 0)
    with pytest.raises(UnitError, match="outside conv1's output of 64 x 16 x 16"):
        unit_arithmetic(model, x, "conv1", 0, 16, 0)


def test_the_explorer_answers_an_arithmetic_request_with_exact_floats():
    import numpy as np

    from cnnviz_widgets import LayerExplorer
    from cnnviz_widgets.widgets.recorder import Recorder

    ex = LayerExplorer(background=False)
    rec = Recorder(ex)
    msg, buffers = rec.request(ex, "arithmetic", layer="features.3", channel=5, row=10, col=0,
                               version=ex.image_version)
    assert msg["type"] == "reply", msg
    patch, kernel, products = (np.frombuffer(b, "<f4").reshape(msg["kernel_shape"])
                               for b in buffers)
    out = feature_maps(ex.model, ex.input_tensor, ["features.3"])["features.3"][0, 5, 10, 0]
    assert float(products.astype(np.float64).sum()) + msg["bias"] == pytest.approx(
        float(out), abs=1e-4)
    np.testing.assert_allclose(products, patch * kernel, rtol=1e-6)
    msg, _ = rec.request(ex, "arithmetic", rid=2, layer="features.3", channel=99, row=0, col=0,
                         version=ex.image_version)
    assert msg["type"] == "error" and "inside [32, 32, 32]" in msg["message"]


def test_an_in_place_relu_after_the_conv_does_not_change_the_values_kept():
    """ReLU(inplace=True) right after the conv (the demo model, VGG) clamps the conv's output
    tensor during the forward; the unit's output and value must be the conv's, negatives too."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True),
                          nn.Conv2d(4, 2, 3), nn.ReLU(inplace=True)).eval()
    x = torch.randn(1, 3, 12, 12)
    for layer in ("0", "2"):
        out = feature_maps(model, x, [layer])[layer][0]
        negative = (out < -0.05).nonzero()
        assert len(negative), "the case needs a negative unit"
        c, r, col = negative[0].tolist()
        a = unit_arithmetic(model, x, layer, c, r, col)
        assert a.output == pytest.approx(float(out[c, r, col]), abs=1e-6)
        assert a.value == pytest.approx(a.output, abs=1e-5)
    # the second conv's patch is the first ReLU's output: no negatives in it
    a = unit_arithmetic(model, x, "2", 0, 0, 0)
    assert float(a.patch.min()) >= 0
