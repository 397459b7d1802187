"""conv_layers, layer resolution and kernels, on the course's VGG11 and other torchvision CNNs."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnviz_widgets import LayerNotFoundError, NoConvLayersError, conv_layers, kernels
from cnnviz_widgets.engine.layers import resolve_layer


def test_vgg11_conv_layers_match_the_course(vgg11):
    names = list(conv_layers(vgg11))
    assert names == [
        "features.0",
        "features.3",
        "features.6",
        "features.8",
        "features.11",
        "features.13",
        "features.16",
        "features.18",
    ]
    assert all(isinstance(m, nn.Conv2d) for m in conv_layers(vgg11).values())


def test_vgg11_layer3_kernels_are_its_weights(vgg11):
    k = kernels(vgg11, "features.3")
    assert k.shape == (128, 64, 3, 3)
    assert k.dtype == torch.float32 and k.device.type == "cpu"
    assert torch.equal(k, vgg11.features[3].weight.detach())
    k.zero_()  # a copy: the model's weights are unchanged
    assert vgg11.features[3].weight.abs().sum() > 0


def test_kernels_accepts_the_module_itself(vgg11):
    assert torch.equal(kernels(vgg11, vgg11.features[0]), vgg11.features[0].weight.detach())


def test_grouped_conv_kernel_shape():
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small(weights=None)
    name, module = next((n, m) for n, m in conv_layers(model).items() if m.groups > 1)
    k = kernels(model, name)
    per_group = module.in_channels // module.groups
    assert k.shape == (module.out_channels, per_group, *module.kernel_size)


class DefinedOutOfOrder(nn.Module):
    """Modules defined in a different order from the one forward() calls them in."""

    def __init__(self):
        super().__init__()
        self.late = nn.Conv2d(8, 4, 3)
        self.early = nn.Conv2d(3, 8, 3)
        self.unused = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.late(torch.relu(self.early(x)))


def test_conv_layers_follow_forward_execution_order():
    model = DefinedOutOfOrder()
    # never-executed layers come last, in definition order
    # a conv the forward pass never calls (an auxiliary head) has no feature maps: left out
    assert list(conv_layers(model)) == ["early", "late"]


@pytest.mark.parametrize(
    "ctor",
    [torchvision.models.resnet18, torchvision.models.densenet121, torchvision.models.squeezenet1_0],
)
def test_conv_layers_forward_order_on_torchvision(ctor):
    torch.manual_seed(0)
    model = ctor(weights=None).eval()
    order: list[str] = []
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    handles = [
        m.register_forward_hook(lambda mod, i, o, n=n: order.append(n) if n not in order else None)
        for n, m in convs.items()
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))
    for h in handles:
        h.remove()
    assert list(conv_layers(model)) == order
    assert len(order) == len(convs)


def test_unknown_layer_lists_close_matches(vgg11):
    with pytest.raises(LayerNotFoundError) as info:
        kernels(vgg11, "feature.3")
    message = str(info.value)
    assert "'feature.3'" in message and "'features.3'" in message
    assert isinstance(info.value, KeyError)
    assert "features.3" in info.value.suggestions


def test_module_not_in_model_is_refused(vgg11):
    with pytest.raises(LayerNotFoundError, match="not part of this model"):
        resolve_layer(vgg11, nn.Conv2d(3, 3, 3))


def test_kernels_of_a_non_conv_layer_names_the_conv_layers(vgg11):
    with pytest.raises(TypeError, match=r"ReLU, not a Conv2d.*'features.0'"):
        kernels(vgg11, "features.1")


def test_model_without_conv_is_a_clear_error():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(NoConvLayersError, match="no nn.Conv2d layer"):
        conv_layers(mlp)


def test_layer_must_be_name_or_module(vgg11):
    with pytest.raises(TypeError, match="name \\(str\\) or an nn.Module"):
        resolve_layer(vgg11, 3)
