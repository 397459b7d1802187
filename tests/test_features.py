"""feature_maps equals a manual forward, for several architectures; one pass; any module."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnviz_widgets import conv_layers, feature_maps
from tools.zoo_cases import hooked_outputs as manual_outputs  # the independent reference


def test_vgg11_layer3_equals_the_course_slice(vgg11):
    x = torch.randn(2, 3, 64, 64)
    maps = feature_maps(vgg11, x, ["features.3"])
    with torch.no_grad():
        expected = vgg11.features[:4](x)
    assert list(maps) == ["features.3"]
    assert maps["features.3"].shape == (2, 128, 32, 32)
    torch.testing.assert_close(maps["features.3"], expected, rtol=0, atol=0)


def test_in_place_relu_does_not_alter_conv_output(vgg11):
    x = torch.randn(1, 3, 32, 32)
    maps = feature_maps(vgg11, x, ["features.0", "features.1"])
    with torch.no_grad():
        conv = vgg11.features[0](x)
    torch.testing.assert_close(maps["features.0"], conv, rtol=0, atol=0)
    assert (maps["features.0"] < 0).any()  # pre-ReLU values survive the in-place ReLU
    torch.testing.assert_close(maps["features.1"], conv.clamp(min=0), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("ctor", "size"),
    [
        (torchvision.models.vgg11, 32),
        (torchvision.models.resnet18, 64),
        (torchvision.models.mobilenet_v3_small, 64),
        (torchvision.models.densenet121, 64),
    ],
)
def test_all_conv_maps_equal_a_manual_forward(ctor, size):
    torch.manual_seed(0)
    model = ctor(weights=None).eval()
    x = torch.randn(1, 3, size, size)
    maps = feature_maps(model, x)
    names = list(conv_layers(model))
    assert list(maps) == names
    # the reference needs the conv output before any in-place op: hook every conv and clone
    expected = manual_outputs(model, x, names)
    for name in names:
        torch.testing.assert_close(maps[name], expected[name], rtol=1e-5, atol=1e-6)


def test_any_module_not_only_convs(resnet18):
    x = torch.randn(1, 3, 64, 64)
    maps = feature_maps(resnet18, x, ["layer4", "relu", resnet18.layer2[0].bn1])
    assert list(maps) == ["layer4", "relu", "layer2.0.bn1"]
    with torch.no_grad():
        stem = resnet18.relu(resnet18.bn1(resnet18.conv1(x)))
        torch.testing.assert_close(maps["relu"], stem, rtol=1e-5, atol=1e-6)
        h = resnet18.layer3(resnet18.layer2(resnet18.layer1(resnet18.maxpool(stem))))
        torch.testing.assert_close(maps["layer4"], resnet18.layer4(h), rtol=1e-4, atol=1e-5)


def test_one_forward_pass_for_many_layers(vgg11):
    calls = []
    handle = vgg11.register_forward_pre_hook(lambda m, i: calls.append(1))
    try:
        feature_maps(vgg11, torch.randn(1, 3, 32, 32), ["features.0", "features.6", "features.18"])
    finally:
        handle.remove()
    assert len(calls) == 1


def test_a_reused_module_records_its_first_call(resnet18):
    # BasicBlock calls its single ReLU twice: after bn1 and after the residual sum.
    x = torch.randn(1, 3, 64, 64)
    block = resnet18.layer1[0]
    maps = feature_maps(resnet18, x, ["maxpool", "layer1.0.relu"])
    with torch.no_grad():
        expected = block.relu(block.bn1(block.conv1(maps["maxpool"])))
    torch.testing.assert_close(maps["layer1.0.relu"], expected, rtol=1e-5, atol=1e-6)


def test_outputs_are_float32_cpu_for_a_double_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).double()
    maps = feature_maps(model, torch.randn(1, 3, 8, 8))
    assert maps["0"].dtype == torch.float32 and maps["0"].device.type == "cpu"


def test_demo_model_maps_equal_its_own_layers():
    from cnnviz_widgets.demo import demo_model

    demo = demo_model()
    x = demo.transform(demo.samples[:2])
    maps = feature_maps(demo.model, x)
    assert list(maps) == ["features.0", "features.3", "features.6", "features.9", "features.11"]
    with torch.no_grad():
        for name in maps:
            index = int(name.split(".")[1])
            expected = demo.model.features[: index + 1](x)
            torch.testing.assert_close(maps[name], expected, rtol=1e-5, atol=1e-6)


class _DefinedOutOfOrder(nn.Module):
    """Convs defined in another order than they run, and one that never runs (an auxiliary
    head): the forward order must come from a pass, not from the definitions."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 3, 1)
        self.late = nn.Conv2d(8, 4, 3)
        self.early = nn.Conv2d(3, 8, 3, padding=1)
        self.aux = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.late(torch.relu_(self.early(self.stem(x))))


@pytest.mark.parametrize("ctor", [_DefinedOutOfOrder, torchvision.models.googlenet])
def test_whole_pass_with_default_layers_orders_them_by_its_own_trace(ctor):
    """``whole_pass(model, x)``: the convs in forward order without a dry run first (one
    forward pass in all), the same maps as ``feature_maps`` with ``conv_layers``, and the order
    remembered, so that ``conv_layers`` afterwards runs nothing."""
    from cnnviz_widgets.engine.features import whole_pass

    torch.manual_seed(0)
    model = ctor(init_weights=True, aux_logits=True) if ctor is torchvision.models.googlenet \
        else ctor()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    calls: list[int] = []
    handle = model.register_forward_pre_hook(lambda module, inputs: calls.append(1))
    try:
        recorded = whole_pass(model, x)
        assert len(calls) == 1  # no dry run before the pass
        order = list(conv_layers(model))
        assert len(calls) == 1  # the pass's trace was remembered
    finally:
        handle.remove()
    assert list(recorded.maps) == order
    assert "aux" not in order and not any(name.startswith("aux") for name in order)
    reference = feature_maps(model, x, order)
    for name in order:  # in-place ReLUs after a conv do not reach its recorded map
        torch.testing.assert_close(recorded.maps[name], reference[name], rtol=0, atol=0)
    if ctor is _DefinedOutOfOrder:
        assert order == ["stem", "early", "late"]
        with torch.no_grad():
            torch.testing.assert_close(recorded.maps["early"], model.early(model.stem(x)),
                                       rtol=0, atol=0)
