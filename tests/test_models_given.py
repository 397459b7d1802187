"""Models named or given wrongly get a TypeError with the fix; models can be named."""

from __future__ import annotations

import pytest
import torch
import torchvision

from cnnviz_widgets import LayerExplorer, conv_layers, feature_maps, kernels
from cnnviz_widgets.engine.models import build_model


@pytest.mark.parametrize(
    ("given", "fix"),
    [
        ("resnet18", r"get_model\('resnet18'"),
        (torchvision.models.resnet18, r"Call it: resnet18\(\)"),
        (torchvision.models.ResNet, r"Create an instance: ResNet\(\.\.\.\)"),
        (torchvision.models.ResNet18_Weights.DEFAULT, r"weights entry ResNet18_Weights"),
        (42, r"Pass the network itself"),
    ],
)
def test_not_a_model_names_the_fix(given, fix):
    for call in (lambda: conv_layers(given), lambda: kernels(given, "conv1"),
                 lambda: feature_maps(given, torch.zeros(1, 3, 32, 32))):
        with pytest.raises(TypeError, match=fix):
            call()


@pytest.mark.parametrize("given", [torchvision.models.resnet18, torchvision.models.ResNet])
def test_the_explorer_refuses_a_builder_or_a_class(given):
    with pytest.raises(TypeError, match="Expected a torch.nn.Module instance"):
        LayerExplorer(given, background=False)


def test_a_torchvision_name_builds_the_model_with_random_weights_offline(capsys):
    ex = LayerExplorer("resnet18", size=64, background=False)
    note = capsys.readouterr().out
    assert "could not be loaded" in note and "random weights (seed 0)" in note
    assert ex.title == "ResNet (random weights)"
    torch.manual_seed(0)
    same = torchvision.models.resnet18(weights=None)
    for a, b in zip(ex.model.parameters(), same.parameters(), strict=True):
        assert torch.equal(a, b)
    assert ex.layer == "conv1"


def test_an_unknown_name_lists_close_ones():
    with pytest.raises(ValueError, match="Did you mean resnet18"):
        build_model("resnet-18")


def test_building_does_not_move_the_global_random_state():
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    build_model("squeezenet1_0", weights=None)
    assert torch.equal(torch.rand(3), want)
