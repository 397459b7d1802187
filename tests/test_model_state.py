"""The model is borrowed: hooks, flags, requires_grad, parameters and .grad are left as found."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnviz_widgets import ImageInputError, LayerNotExecutedError, feature_maps, kernels
from cnnviz_widgets.engine import Capture, borrowed

from .model_state import Fingerprint, hook_count


def training_resnet():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    model.train()
    model.layer2.eval()  # a mixed state must come back mixed
    model.fc.weight.requires_grad_(False)
    model.conv1.weight.grad = torch.ones_like(model.conv1.weight)
    model.layer1[0].register_forward_hook(lambda m, i, o: None)  # the user's own hook stays
    return model


def test_feature_maps_leave_the_model_as_found():
    model = training_resnet()
    before = Fingerprint.of(model)
    feature_maps(model, torch.randn(2, 3, 64, 64))
    before.assert_same(model)
    kernels(model, "conv1")
    before.assert_same(model)
    assert hook_count(model) == 1


def test_results_use_eval_mode_even_for_a_training_model():
    model = training_resnet()
    x = torch.randn(2, 3, 64, 64)
    got = feature_maps(model, x, ["layer1"])["layer1"]
    model.eval()
    with torch.no_grad():
        h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        expected = model.layer1(h)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


class ExplodesMidway(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        x = self.bn(self.conv(x))
        raise RuntimeError("boom")


def test_a_call_that_raises_midway_leaves_nothing_behind():
    model = ExplodesMidway().train()
    before = Fingerprint.of(model)
    with pytest.raises(RuntimeError, match="boom"):
        feature_maps(model, torch.randn(1, 3, 8, 8), ["head"])
    before.assert_same(model)


def test_layer_never_executed_is_named():
    class SkipsHead(ExplodesMidway):
        def forward(self, x):
            return self.bn(self.conv(x))

    model = SkipsHead()
    before = Fingerprint.of(model)
    with pytest.raises(LayerNotExecutedError, match="'head'"):
        feature_maps(model, torch.randn(1, 3, 8, 8), ["conv", "head"])
    before.assert_same(model)


def test_bad_input_leaves_model_untouched(vgg11):
    before = Fingerprint.of(vgg11)
    with pytest.raises(ImageInputError):
        feature_maps(vgg11, torch.randn(1, 5, 16, 16))
    before.assert_same(vgg11)


def test_borrowed_restores_after_an_exception():
    model = training_resnet()
    before = Fingerprint.of(model)
    with pytest.raises(ValueError), borrowed(model):
        assert not model.training
        assert not any(p.requires_grad for p in model.parameters())
        model.layer3.register_forward_hook(lambda m, i, o: None)
        raise ValueError
    before.assert_same(model)


def test_capture_removes_hooks_on_error(vgg11):
    before = hook_count(vgg11)
    with pytest.raises(RuntimeError), Capture(vgg11, {"features.0": vgg11.features[0]}):
        assert hook_count(vgg11) == before + 1
        raise RuntimeError
    assert hook_count(vgg11) == before


def test_input_on_model_device_and_outputs_on_cpu(vgg11):
    # the CPU-only machine can still check the contract: outputs always come back on the CPU
    out = feature_maps(vgg11, torch.randn(1, 3, 16, 16, dtype=torch.float64), ["features.0"])
    assert out["features.0"].device.type == "cpu"
    assert out["features.0"].dtype == torch.float32
