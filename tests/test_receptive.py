"""Receptive fields from the traced graph, checked against where gradients actually reach.

The oracle: a copy of the model made linear and positive (every conv and linear weight set to
1 / fan-in, biases 0, BatchNorm and activations removed, max pooling replaced by average
pooling of the same window), so that the input gradient of one unit is non-zero on exactly the
input pixels its receptive field covers (clipped to the image). Its bounding box must equal the
field's box.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torchvision
from torch import nn

from cnnviz_widgets.engine.receptive import ReceptiveField, receptive_fields

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.Dropout)


def linear_positive(model: nn.Module) -> nn.Module:
    net = copy.deepcopy(model).double().eval()
    for name, module in list(net.named_modules()):
        parent = net.get_submodule(name.rsplit(".", 1)[0]) if "." in name else net
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(module, (nn.BatchNorm2d, *ACTIVATIONS)):
            setattr(parent, leaf, nn.Identity())
        elif isinstance(module, nn.MaxPool2d):
            setattr(parent, leaf, nn.AvgPool2d(module.kernel_size, module.stride,
                                               module.padding, ceil_mode=module.ceil_mode))
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            with torch.no_grad():
                module.weight.fill_(1.0 / module.weight[0].numel())
                if module.bias is not None:
                    module.bias.zero_()
    return net


def gradient_box(net: nn.Module, layer: str, size: int, row: int, col: int):
    """Bounding box (x0, y0, x1, y1) of the input pixels that reach unit (row, col)."""
    out: dict[str, torch.Tensor] = {}

    class Stop(Exception):
        pass

    def hook(module, inputs, output):
        out["y"] = output
        raise Stop  # the rest of the network is not needed

    handle = net.get_submodule(layer).register_forward_hook(hook)
    x = torch.ones(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    try:
        net(x)
    except Stop:
        pass
    finally:
        handle.remove()
    y = out["y"]
    row, col = min(row, y.shape[-2] - 1), min(col, y.shape[-1] - 1)
    (grad,) = torch.autograd.grad(y[0, :, row, col].sum(), x)
    ys, xs = torch.nonzero(grad[0].abs().sum(0) > 0, as_tuple=True)
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1), (row, col)


def field_box(rf: ReceptiveField, row: int, col: int, size: int):
    x0, y0, x1, y1 = rf.box(row, col)
    clip = lambda v: min(max(v, 0), size)  # noqa: E731
    return (clip(math.floor(x0)), clip(math.floor(y0)), clip(math.ceil(x1)), clip(math.ceil(y1)))


def demo_net() -> nn.Module:
    from cnnviz_widgets.demo import demo_model

    return demo_model().model


MODELS = {
    "vgg11": (lambda: torchvision.models.vgg11(weights=None).features, 64),
    "resnet18": (lambda: torchvision.models.resnet18(weights=None), 64),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(weights=None), 64),
    "demo": (demo_net, 64),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_fields_equal_the_gradient_support_of_a_linearised_copy(name):
    make, size = MODELS[name]
    torch.manual_seed(0)
    model = make().eval()
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    fields = receptive_fields(model, convs)
    assert set(fields) == set(convs), "every conv of these models has a known field"
    net = linear_positive(model)
    for layer in [*convs[:: max(1, len(convs) // 8)], convs[-1]]:
        for where in ((0, 0), (1, 2), (100, 100)):  # corner, inside, far corner (clipped)
            got, (row, col) = gradient_box(net, layer, size, *where)
            assert field_box(fields[layer], row, col, size) == got, (layer, row, col)


def test_known_textbook_values():
    torch.manual_seed(0)
    r18 = receptive_fields(torchvision.models.resnet18(weights=None), ["conv1", "layer4.1.conv2"])
    assert r18["conv1"] == ReceptiveField((7.0, 7.0), (2.0, 2.0), (0.5, 0.5))
    assert r18["layer4.1.conv2"].size == (435.0, 435.0) and r18["layer4.1.conv2"].jump == (32, 32)
    vgg = receptive_fields(torchvision.models.vgg16(weights=None), ["features.28"])
    assert vgg["features.28"].size == (196.0, 196.0)  # conv5_3, before the last pool


def test_untraceable_model_has_no_fields_and_is_left_alone():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
                return self.conv(x)
            return -self.conv(x)

    model = Branchy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert receptive_fields(model) == {}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.conv._forward_hooks


def test_layers_after_an_unknown_operation_get_no_field():
    class Upsampling(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3)
            self.b = nn.Conv2d(4, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(nn.functional.interpolate(self.a(x), scale_factor=2.0))

    fields = receptive_fields(Upsampling())
    assert "a" in fields and "b" not in fields
