"""ScoreCAM's first convolution by linearity (`engine/accel/stem.py`) vs convolving each mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import fx, nn

from cnnviz_widgets.engine.accel import forget
from cnnviz_widgets.engine.accel.inference import accelerated_entry, inference_copy
from cnnviz_widgets.engine.accel.stem import LinearStem, split_stem, stem_fits
from cnnviz_widgets.engine.accel.trial import Trial
from cnnviz_widgets.engine.cam import cam
from cnnviz_widgets.engine.cam.score import MASK_EPS, upsample


def masked_conv(conv, image, maps, low, scale):
    """The definition: build every mask, multiply, convolve."""
    masks = (upsample(maps, tuple(image.shape[-2:])) - low[:, None, None]) * scale[:, None, None]
    return conv(image[None] * masks[:, None])


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(3, 16, 7, stride=2, padding=3),
        nn.Conv2d(3, 8, 5, padding=2, bias=False),
        nn.Conv2d(4, 6, 3, padding=1, padding_mode="reflect"),
        nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2),
    ],
    ids=["7x7-stride-2", "no-bias", "reflect", "groups"],
)
def test_linear_stem_equals_convolving_each_mask(conv):
    torch.manual_seed(0)
    image = torch.rand(conv.in_channels, 30, 26)
    maps = torch.randn(5, 4, 3) + 0.5  # minimum not 0: the offset term counts
    low = maps.flatten(1).amin(1)
    scale = 1.0 / (maps.flatten(1).amax(1) - low + MASK_EPS)
    with torch.no_grad():
        want = masked_conv(conv, image, maps, low, scale)
        stem = LinearStem(conv, image, (4, 3), upsample, batch=8)
        got = stem(maps, low, scale)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        # The buffer is reused: a second, smaller call is right too.
        torch.testing.assert_close(
            stem(maps[:2], low[:2], scale[:2]), want[:2], rtol=1e-5, atol=1e-5
        )


def test_split_stem_cuts_a_traced_resnet_after_conv1():
    torch.manual_seed(1)
    model = torchvision.models.resnet18().eval()
    copy = inference_copy(model, torch.device("cpu"))
    conv, rest = split_stem(copy)
    assert conv is copy.conv1
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(rest(conv(x)), model(x), rtol=1e-4, atol=1e-5)


class TwoUses(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x).mean((2, 3)) + x.mean()


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(2 * x).mean((2, 3))


@pytest.mark.parametrize(
    "model",
    [
        fx.symbolic_trace(TwoUses()),
        fx.symbolic_trace(Scaled()),
        fx.symbolic_trace(nn.Sequential(nn.Conv2d(3, 4, 3))),  # nothing after the convolution
        fx.symbolic_trace(nn.Sequential(nn.ConvTranspose2d(3, 4, 3), nn.ReLU())),
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()),  # not traced
    ],
    ids=["input-used-twice", "op-before-conv", "conv-only", "not-conv2d", "not-traced"],
)
def test_split_stem_refuses(model):
    assert split_stem(model) is None


def test_stem_fits_only_with_fewer_multiply_adds_and_a_small_basis():
    resnet_stem = nn.Conv2d(3, 64, 7, stride=2, padding=3)
    assert stem_fits(resnet_stem, (7, 7), (224, 224))  # 50 terms vs 147
    assert stem_fits(resnet_stem, (11, 11), (128, 128))  # 122 terms vs 147: timed
    assert not stem_fits(resnet_stem, (14, 14), (224, 224))  # 197 terms
    assert not stem_fits(nn.Conv2d(3, 64, 3, padding=1), (7, 7), (224, 224))  # VGG: 27
    assert not stem_fits(resnet_stem, (7, 7), (1024, 1024))  # basis over the byte cap


@pytest.fixture
def stem_verdict(monkeypatch):
    """``stem_verdict(model)``: ScoreCAM's cached stem decisions for the model, with every
    trial deciding for the stem (so that the check, not the timing, decides)."""

    def decide(self: Trial) -> str:
        return "stem" if "stem" in self.names else self.names[0]

    monkeypatch.setattr(Trial, "decide", decide)

    def verdict(model):
        entry = accelerated_entry(model)
        assert entry is not None
        return {k: v for k, v in entry.notes.items() if k[0] == "stem" and len(k) == 3}

    return verdict


def test_scorecam_uses_the_stem_and_matches_the_plain_path(stem_verdict):
    torch.manual_seed(2)
    model = torchvision.models.resnet18().eval()
    forget(model)
    x = torch.rand(1, 3, 64, 64)
    fast = cam(model, x, "layer3", "ScoreCAM", batch_size=16)  # 256 maps of 4x4: 17 terms
    assert stem_verdict(model) == {("stem", (64, 64), (4, 4)): True}
    plain = cam(model, x, "layer3", "ScoreCAM", fuse=False)
    assert np.abs(fast - plain).mean() < 1e-5
    assert np.corrcoef(fast.ravel(), plain.ravel())[0, 1] > 0.9999


def test_a_disagreeing_stem_is_dropped(monkeypatch, stem_verdict):
    torch.manual_seed(3)
    model = torchvision.models.resnet18().eval()
    forget(model)
    x = torch.rand(1, 3, 64, 64)
    real = LinearStem.__call__
    monkeypatch.setattr(LinearStem, "__call__", lambda self, *a: real(self, *a) + 1.0)
    fast = cam(model, x, "layer3", "ScoreCAM", batch_size=16)
    assert stem_verdict(model) == {("stem", (64, 64), (4, 4)): False}
    plain = cam(model, x, "layer3", "ScoreCAM", fuse=False)
    assert np.abs(fast - plain).mean() < 1e-5
