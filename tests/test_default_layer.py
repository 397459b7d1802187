"""The default CAM layer: the last layer whose output is still a spatial grid."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnviz_widgets.engine.dryrun import default_layer

from .model_state import Fingerprint


@pytest.mark.parametrize(
    ("ctor", "expected"),
    [
        (torchvision.models.resnet18, "layer4"),
        (torchvision.models.vgg11, "features"),
        (torchvision.models.densenet121, "features"),
        (torchvision.models.mobilenet_v3_small, "features"),
    ],
)
def test_reference_recommended_layers(ctor, expected):
    torch.manual_seed(0)
    model = ctor(weights=None)
    before = Fingerprint.of(model)
    assert default_layer(model, torch.randn(1, 3, 64, 64)) == expected
    before.assert_same(model)


def test_no_grid_is_a_clear_error():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    with pytest.raises(ValueError, match="spatial grid"):
        default_layer(mlp, torch.randn(1, 3, 4, 4))
