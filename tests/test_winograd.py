"""Winograd F(4x4, 3x3) convolution of ScoreCAM's CPU inference copy, against direct convolution."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from cnnviz_widgets.engine.accel import trial
from cnnviz_widgets.engine.accel.inference import FastForward
from cnnviz_widgets.engine.accel.winograd import (
    AT,
    BT,
    CHUNK_PIXELS,
    MARGIN,
    G,
    WinogradConv2d,
    input_transform,
    output_transform,
    set_winograd_mode,
    use_winograd,
    winograd_eligible,
)
from cnnviz_widgets.engine.cam import cam


def slow_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Zero-padded 3x3 cross-correlation written out as loops over the kernel, in float64."""
    x, weight = x.double(), weight.double()
    n, _, h, w = x.shape
    padded = torch.zeros(n, x.shape[1], h + 2, w + 2, dtype=torch.float64)
    padded[:, :, 1:-1, 1:-1] = x
    out = torch.zeros(n, weight.shape[0], h, w, dtype=torch.float64)
    for i in range(3):
        for j in range(3):
            window = padded[:, :, i : i + h, j : j + w]  # (N, C_in, H, W)
            out += torch.einsum("nchw,oc->nohw", window, weight[:, :, i, j])
    if bias is not None:
        out += bias.double()[None, :, None, None]
    return out


def conv(c_in: int, c_out: int, bias: bool = True, seed: int = 0) -> nn.Conv2d:
    torch.manual_seed(seed)
    layer = nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias)
    if bias:
        nn.init.normal_(layer.bias)
    return layer


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want).abs().max() / want.abs().max())


# ---------------------------------------------------------------------------------------------
# The transform matrices


def test_matrices_compute_a_1d_correlation_exactly():
    """``A^T [(G g) * (B^T d)]`` is the 4-output correlation of a 6-sample ``d`` with ``g``."""
    rng = np.random.default_rng(0)
    bt, g_mat, at = np.array(BT, float), np.array(G, float), np.array(AT, float)
    for _ in range(20):
        d, g = rng.normal(size=6), rng.normal(size=3)
        want = [sum(d[i + k] * g[k] for k in range(3)) for i in range(4)]
        np.testing.assert_allclose(at @ ((g_mat @ g) * (bt @ d)), want, rtol=1e-12, atol=1e-12)


def test_matrices_compute_a_2d_tile_exactly():
    rng = np.random.default_rng(1)
    bt, g_mat, at = np.array(BT, float), np.array(G, float), np.array(AT, float)
    d, g = rng.normal(size=(6, 6)), rng.normal(size=(3, 3))
    want = [[(d[i : i + 3, j : j + 3] * g).sum() for j in range(4)] for i in range(4)]
    got = at @ ((g_mat @ g @ g_mat.T) * (bt @ d @ bt.T)) @ at.T
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("transform", "matrix"), [(input_transform, BT), (output_transform, AT)], ids=["B^T", "A^T"]
)
def test_transform_helpers_equal_the_matrix_product(transform, matrix):
    torch.manual_seed(2)
    d = torch.randn(6, 5, 7, dtype=torch.float64)
    out = torch.empty(len(matrix), 5, 7, dtype=torch.float64)
    transform(list(d), list(out))
    want = torch.einsum("ki,ixy->kxy", torch.tensor(matrix, dtype=torch.float64), d)
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# The convolution


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (4, 4), (5, 7), (7, 7), (8, 12), (14, 14)])
@pytest.mark.parametrize("bias", [True, False])
def test_equals_the_slow_convolution(size, bias):
    layer = conv(6, 5, bias=bias)
    torch.manual_seed(3)
    x = torch.randn(3, 6, *size)
    want = slow_conv3x3(x, layer.weight.detach(), layer.bias.detach() if bias else None)
    with torch.inference_mode():
        got = WinogradConv2d(layer, mode="winograd")(x)
    assert got.shape == want.shape
    assert relative_error(got, want) < 1e-5


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_any_input_layout(layout):
    layer = conv(8, 4)
    torch.manual_seed(4)
    x = torch.randn(2, 8, 9, 20)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        x = x[:, :, :, ::2]  # (2, 8, 9, 10), not contiguous in any format
    want = slow_conv3x3(x, layer.weight.detach(), layer.bias.detach())
    with torch.inference_mode():
        got = WinogradConv2d(layer, mode="winograd")(x)
    assert relative_error(got, want) < 1e-5


def test_error_at_resnet_width_is_a_few_ulp_of_the_scale():
    """At ResNet-18 ``layer3`` width (256 channels, 14 px), as ScoreCAM runs it."""
    layer = conv(256, 256)
    torch.manual_seed(5)
    x = torch.relu(torch.randn(4, 256, 14, 14))
    want = slow_conv3x3(x, layer.weight.detach(), layer.bias.detach())
    with torch.inference_mode():
        winograd = WinogradConv2d(layer, mode="winograd")(x)
        direct = layer(x)
    assert relative_error(winograd, want) < 3e-5
    assert relative_error(direct, want) < 3e-6  # for scale: direct float32 is ~10x closer


class FakeClock:
    """The timer of :mod:`.trial`, advanced by what the timed paths say they cost."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(trial, "clock", fake)
    return fake


def costed(module: WinogradConv2d, clock: FakeClock, direct_s: float, winograd_s: float) -> list:
    """Make each path advance the fake clock by its cost per call; returns the paths run."""
    ran: list[str] = []
    direct, winograd = module.direct.forward, module.winograd

    def run_direct(x):
        ran.append("direct")
        clock.now += direct_s
        return direct(x)

    def run_winograd(x):
        ran.append("winograd")
        clock.now += winograd_s
        return winograd(x)

    module.direct.forward = run_direct  # type: ignore[method-assign]
    module.winograd = run_winograd  # type: ignore[method-assign]
    return ran


@pytest.mark.parametrize(
    ("winograd_s", "kept"), [(0.5, "winograd"), (MARGIN * 1.05, "direct"), (2.0, "direct")]
)
def test_auto_mode_times_both_paths_then_keeps_the_faster(clock, winograd_s, kept):
    """Both paths run on the first calls of a shape (the direct one's output is returned), and
    after the warm-up and the timed calls only the faster does; Winograd must beat the direct
    convolution by the margin. The outputs equal the slow convolution throughout."""
    layer = conv(8, 6)
    module = WinogradConv2d(layer)
    ran = costed(module, clock, 1.0, winograd_s)
    torch.manual_seed(10)
    x = torch.randn(4, 8, 9, 9)
    want = slow_conv3x3(x, layer.weight.detach(), layer.bias.detach())
    with torch.inference_mode():
        outputs = [module(x) for _ in range(6)]
    assert module.uses_winograd((8, 9, 9)) is (kept == "winograd")
    calls = len(ran)
    assert ran[calls - 1] == kept and ran.count(kept) > ran.count(
        "winograd" if kept == "direct" else "direct"
    )
    for out in outputs:
        assert relative_error(out, want) < 1e-5


def test_auto_mode_decides_per_input_shape(clock):
    module = WinogradConv2d(conv(8, 8))
    costed(module, clock, 1.0, 0.5)
    with torch.inference_mode():
        for _ in range(4):
            module(torch.randn(2, 8, 5, 5))
    assert module.uses_winograd((8, 5, 5)) is True
    assert module.uses_winograd((8, 12, 12)) is None  # not seen yet: undecided
    module.mode = "direct"
    assert module.uses_winograd((8, 5, 5)) is False


def test_a_batch_over_the_pixel_budget_is_transformed_in_pieces(monkeypatch):
    layer = conv(5, 4)
    module = WinogradConv2d(layer, mode="winograd")
    pieces: list[int] = []
    real = WinogradConv2d._winograd
    monkeypatch.setattr(
        WinogradConv2d, "_winograd", lambda self, x: pieces.append(x.shape[0]) or real(self, x)
    )
    side = 9
    n = CHUNK_PIXELS // (side * side) * 2 + 3  # two full pieces and a partial one
    torch.manual_seed(11)
    x = torch.randn(n, 5, side, side)
    want = slow_conv3x3(x, layer.weight.detach(), layer.bias.detach())
    with torch.inference_mode():
        got = module(x)
    per = CHUNK_PIXELS // (side * side)
    assert pieces == [per, per, 3]
    assert relative_error(got, want) < 1e-5


def test_empty_batch():
    with torch.inference_mode():
        out = WinogradConv2d(conv(4, 4), mode="winograd")(torch.zeros(0, 4, 6, 6))
    assert out.shape == (0, 4, 6, 6)


# ---------------------------------------------------------------------------------------------
# Which convolutions are replaced


@pytest.mark.parametrize(
    "layer",
    [
        nn.Conv2d(128, 128, 3, stride=2, padding=1),
        nn.Conv2d(128, 128, 3, padding=2, dilation=2),
        nn.Conv2d(128, 128, 3, padding=1, groups=2),
        nn.Conv2d(128, 128, 1),
        nn.Conv2d(128, 128, 5, padding=2),
        nn.Conv2d(128, 128, 3, padding=0),
        nn.Conv2d(128, 128, 3, padding=1, padding_mode="reflect"),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.Conv2d(3, 128, 3, padding=1),
        nn.Conv2d(128, 128, 3, padding=1).double(),
        nn.ConvTranspose2d(128, 128, 3, padding=1),
    ],
    ids=lambda m: repr(m),
)
def test_not_eligible(layer):
    assert not winograd_eligible(layer)


def test_eligible_and_refusal_message():
    assert winograd_eligible(nn.Conv2d(128, 256, 3, padding=1))
    with pytest.raises(ValueError, match="3x3/stride-1/padding-1"):
        WinogradConv2d(nn.Conv2d(8, 8, 3, stride=2, padding=1))


def test_use_winograd_replaces_only_the_stride_1_3x3_convolutions():
    torch.manual_seed(6)
    model = torchvision.models.resnet18().eval()
    copied = copy.deepcopy(model)
    assert use_winograd(copied) == 13  # 4 in layer1, 3 stride-1 3x3 convs in each of layer2..4
    kinds = {name: type(m).__name__ for name, m in copied.named_modules()}
    assert kinds["conv1"] == "Conv2d"  # 7x7, 3 input channels
    assert kinds["layer1.0.conv1"] == "WinogradConv2d"
    assert kinds["layer2.0.conv1"] == "Conv2d"  # stride 2
    assert kinds["layer2.0.downsample.0"] == "Conv2d"  # 1x1
    assert kinds["layer2.0.conv2"] == "WinogradConv2d"
    assert kinds["layer4.1.conv2"] == "WinogradConv2d"
    x = torch.rand(2, 3, 64, 64)
    set_winograd_mode(copied, "winograd")
    with torch.inference_mode():
        want, got = model(x), copied(x)
    assert relative_error(got, want.double()) < 1e-5


# ---------------------------------------------------------------------------------------------
# In ScoreCAM's inference copy


class Wide(nn.Module):
    """A BatchNorm network wide enough for Winograd layers."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(8)
        self.features = nn.Sequential(
            nn.Conv2d(3, 128, 3, padding=1),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 128, 3, padding=1),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(16, 5)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.normal_(m.bias, 0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


def test_scorecam_copy_uses_winograd_and_agrees():
    model = Wide().eval()
    torch.manual_seed(9)
    x = torch.rand(2, 3, 12, 12)
    forward = FastForward(model, None, torch.float32, enabled=True)
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(forward(x), want, rtol=1e-4, atol=1e-5)
    assert forward.uses_copy and forward.uses_winograd
    fast = cam(model, x, "features.6", "ScoreCAM")
    plain = cam(model, x, "features.6", "ScoreCAM", fuse=False)
    assert np.abs(fast - plain).mean() < 1e-5


def test_a_disagreeing_winograd_copy_falls_back_to_the_folded_one(monkeypatch):
    real = WinogradConv2d.winograd
    monkeypatch.setattr(WinogradConv2d, "winograd", lambda self, x: real(self, x) + 1.0)
    model = Wide().eval()
    x = torch.rand(1, 3, 12, 12)
    forward = FastForward(model, None, torch.float32, enabled=True)
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(forward(x), want, rtol=1e-4, atol=1e-5)
    assert forward.uses_copy and not forward.uses_winograd
    modes = {m.mode for m in forward._fast.modules() if isinstance(m, WinogradConv2d)}
    assert modes == {"direct"}  # never tried again for this model


def test_no_winograd_for_float64():
    model = Wide().eval().double()
    forward = FastForward(model, None, torch.float64, enabled=True)
    forward(torch.rand(1, 3, 8, 8, dtype=torch.float64))
    assert forward.uses_copy and not forward.uses_winograd
