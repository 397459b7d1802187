"""Small models and inputs shared by the metric tests (ROAD, sanity checks, parity)."""

from __future__ import annotations

import torch
from torch import nn

from cnnviz_widgets.demo import demo_model, make_shapes


class TinyNet(nn.Module):
    """A random-init CNN whose modules are defined in the order they run (so Quantus's
    reversed definition order is the reversed forward order), with BatchNorm."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1, stride=2)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.fc(h.mean(dim=(2, 3)))


def tiny_net(seed: int = 3) -> nn.Module:
    """A seeded :class:`TinyNet` in eval mode with non-trivial BatchNorm statistics."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyNet()
        with torch.no_grad():
            model.bn1.running_mean.uniform_(-0.2, 0.2)
            model.bn1.running_var.uniform_(0.5, 1.5)
        scores = model.eval()(tiny_input())
    # the metric tests need classes that differ: a constant output would hide their bugs
    assert torch.isfinite(scores).all() and scores.std(dim=1).min() > 0, scores
    return model


def tiny_input(n: int = 3, size: int = 24, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=gen)


_DEMO: dict[str, object] = {}


def demo():
    """The bundled demo model (loaded once per session)."""
    if "demo" not in _DEMO:
        _DEMO["demo"] = demo_model()
    return _DEMO["demo"]


def demo_batch(n: int = 4, seed: int = 11):
    """``(x, labels, boxes, masks)``: model-ready demo images with their objects."""
    d = demo()
    images, labels, boxes, masks = make_shapes(n, 64, seed=seed, return_masks=True)
    # every object inside its image and its box, so localisation metrics have a target
    assert bool((masks.flatten(1).sum(1) > 0).all()), "an image without its object"
    assert bool(((boxes[:, :2] >= 0) & (boxes[:, 2:] <= 64) & (boxes[:, 2:] > boxes[:, :2])).all())
    return d.transform(images), labels, boxes, masks
