"""Activation maximization: FlashTorch's algorithm reproduced, ascent works, model untouched;
batched images equal to each channel optimised alone, on the layer copy and on the model."""

from __future__ import annotations

import copy
import gc
import weakref

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz_widgets.engine import actmax
from cnnviz_widgets.engine.actmax import ActivationMaxWarning, layer_copy
from cnnviz_widgets.engine.actmax import activation_max as activation_max_
from cnnviz_widgets.engine.actmax_transforms import (
    draw_transforms,
    fft_scale,
    random_transform,
    spectrum_to_rgb,
    transform,
    transform_pad,
)
from cnnviz_widgets.engine.capture import LayerNotExecutedError
from cnnviz_widgets.engine.inputs import IMAGENET_MEAN, IMAGENET_STD, denormalize
from cnnviz_widgets.engine.layers import LayerNotFoundError

from .model_state import Fingerprint


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 10, 3, padding=1, stride=2)
        self.unused = nn.Conv2d(10, 10, 1)
        self.fc = nn.Linear(10, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.relu(self.bn(self.conv1(x))))
        return self.fc(self.relu(x).mean(dim=(2, 3)))


class Boom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the forward pass should have stopped before this layer")


@pytest.fixture(scope="module")
def small() -> nn.Module:
    torch.manual_seed(2)
    model = SmallNet()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.1, 0.1)
        model.bn.running_var.uniform_(0.5, 1.5)
    return model.eval()


def activation_max(*args, **kwargs):
    """``activation_max`` that also checks the model comes back exactly as it was."""
    model = args[0] if args else kwargs["model"]
    before = Fingerprint.of(model)
    try:
        return activation_max_(*args, **kwargs)
    finally:
        before.assert_same(model)


# --------------------------------------------------------------------------------------------
# FlashTorch's GradientAscent, written out plainly (one filter at a time, whole network)
# --------------------------------------------------------------------------------------------


def flashtorch_ascent(model, layer_name, channel, x0, steps, lr=1.0):
    """``GradientAscent._ascent`` for one filter: x += lr * g / (rms(g) + 1e-5)."""
    model = copy.deepcopy(model).eval()
    layer = dict(model.named_modules())[layer_name]
    record = {}
    layer.register_forward_hook(lambda m, i, o: record.__setitem__("act", o[:, channel].mean()))
    x = x0.clone()
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        model(x)
        (grad,) = torch.autograd.grad(record["act"], x)
        grad = grad / (torch.sqrt(torch.mean(grad * grad)) + 1e-5)
        x = x + grad * lr
    return x.detach()


def flashtorch_display(x):
    """``format_for_plotting(standardize_and_clip(x, saturation=0.15, brightness=0.7))``."""
    t = x[0]
    mean, std = t.mean(), t.std()
    if std == 0:
        std = std + 1e-7
    shown = ((t - mean) / std * 0.15 + 0.7).clamp(0.0, 1.0).permute(1, 2, 0)
    return (shown * 255).round().to(torch.uint8).numpy()


def layer_activation(model, layer_name, images, channels):
    """Mean activation of ``channels[i]`` in ``images[i]`` (model-ready input)."""
    layer = dict(model.named_modules())[layer_name]
    record = {}
    handle = layer.register_forward_hook(lambda m, i, o: record.__setitem__("out", o.detach()))
    try:
        with torch.no_grad():
            model(torch.as_tensor(images))
    finally:
        handle.remove()
    out = record["out"]
    return np.array([out[i, c].mean().item() for i, c in enumerate(channels)])


@pytest.mark.parametrize(("arch", "layer"), [("small", "conv2"), ("vgg11", "features.3")])
def test_plain_mode_is_flashtorch(request, arch, layer):
    model = request.getfixturevalue(arch)
    channels, steps = [2, 5], 4
    kwargs = {"regularize": False, "seed": 3, "size": 32}
    start = activation_max(model, layer, channels, steps=0, raw=True, **kwargs)
    # FlashTorch's start: uniform integers 150..179 (of 255), normalised.
    pixels = denormalize(torch.from_numpy(start), IMAGENET_MEAN, IMAGENET_STD).numpy() * 255
    np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-3)
    assert pixels.min() > 149.5 and pixels.max() < 179.5 and np.unique(np.round(pixels)).size > 20
    raw = activation_max(model, layer, channels, steps=steps, raw=True, **kwargs)
    shown = activation_max(model, layer, channels, steps=steps, **kwargs)
    for i, channel in enumerate(channels):
        ref = flashtorch_ascent(model, layer, channel, torch.from_numpy(start[i : i + 1]), steps)
        diff = np.abs(raw[i] - ref[0].numpy()).max()
        print(f"{arch} channel {channel}: max |ours - reference| = {diff:.3g}")
        np.testing.assert_allclose(raw[i], ref[0].numpy(), rtol=1e-4, atol=1e-4)
        assert np.abs(shown[i].astype(int) - flashtorch_display(ref).astype(int)).max() <= 1


def test_plain_mode_on_a_grayscale_model_is_flashtorch():
    """A model whose first conv takes one channel (MNIST): one-channel start images (the same
    150..179 noise), FlashTorch's steps, grey display images; the regularised mode (RGB by
    construction) names the fix."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 8, 3, padding=1), nn.ReLU()).eval()
    mean, std = [0.1307], [0.3081]
    kwargs = {"regularize": False, "seed": 3, "size": 28, "mean": mean, "std": std}
    channels, steps = [1, 6], 4
    start = activation_max(model, "3", channels, steps=0, raw=True, **kwargs)
    assert start.shape == (2, 1, 28, 28)
    pixels = denormalize(torch.from_numpy(start), mean, std).numpy() * 255
    np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-3)
    assert pixels.min() > 149.5 and pixels.max() < 179.5
    raw = activation_max(model, "3", channels, steps=steps, raw=True, **kwargs)
    shown = activation_max(model, "3", channels, steps=steps, **kwargs)
    assert shown.shape == (2, 28, 28, 3)
    assert (shown[..., 0] == shown[..., 1]).all() and (shown[..., 1] == shown[..., 2]).all()
    for i, channel in enumerate(channels):
        ref = flashtorch_ascent(model, "3", channel, torch.from_numpy(start[i : i + 1]), steps)
        np.testing.assert_allclose(raw[i], ref[0].numpy(), rtol=1e-4, atol=1e-4)
        assert np.abs(shown[i, ..., :1].astype(int)
                      - flashtorch_display(ref).astype(int)).max() <= 1
    with pytest.raises(ValueError, match="grayscale model.*regularize=False"):
        activation_max(model, "3", [0], steps=1, size=28, mean=mean, std=std)
    with pytest.raises(ValueError, match=r"need 1 value\(s\) each \(a grayscale model\)"):
        activation_max(model, "3", [0], steps=1, size=28, regularize=False)


def test_plain_defaults_are_flashtorch_defaults(small):
    calls = []
    out = activation_max(
        small, "conv2", 1, regularize=False, seed=0, progress=lambda *a: calls.append(a)
    )
    assert out.shape == (1, 224, 224, 3)
    assert calls[-1] == (30, 30)
    ref = flashtorch_ascent(
        small,
        "conv2",
        1,
        torch.from_numpy(
            activation_max(small, "conv2", 1, steps=0, regularize=False, seed=0, raw=True)
        ),
        30,
    )
    assert np.abs(out[0].astype(int) - flashtorch_display(ref).astype(int)).max() <= 1


@pytest.mark.parametrize("regularize", [False, True])
@pytest.mark.parametrize(
    ("arch", "layer", "steps"), [("small", "conv2", 25), ("vgg11", "features.3", 15)]
)
def test_ascent_increases_the_activation(request, arch, layer, steps, regularize):
    model = request.getfixturevalue(arch)
    channels = [0, 3, 7]
    kwargs = {"regularize": regularize, "seed": 5, "size": 40, "raw": True}
    start = activation_max(model, layer, channels, steps=0, **kwargs)
    final = activation_max(model, layer, channels, steps=steps, **kwargs)
    before = layer_activation(model, layer, start, channels)
    after = layer_activation(model, layer, final, channels)
    print(f"{arch} regularize={regularize}: {np.round(before, 3)} -> {np.round(after, 3)}")
    assert (after > before).all()


def test_class_logit_of_a_linear_layer(small):
    start = activation_max(small, "fc", [1, 3], steps=0, size=24, seed=1, raw=True)
    final = activation_max(small, "fc", [1, 3], steps=20, size=24, seed=1, raw=True)
    with torch.no_grad():
        before = small(torch.from_numpy(start))[[0, 1], [1, 3]]
        after = small(torch.from_numpy(final))[[0, 1], [1, 3]]
    assert (after > before).all()


@pytest.mark.parametrize("regularize", [False, True])
def test_output_dtype_shape_and_range(small, regularize):
    out = activation_max(small, "conv1", [0, 1, 2], steps=2, size=24, regularize=regularize, seed=0)
    assert out.dtype == np.uint8 and out.shape == (3, 24, 24, 3)
    assert out.max() > out.min()
    raw = activation_max(
        small, small.conv1, 4, steps=2, size=24, regularize=regularize, seed=0, raw=True
    )
    assert raw.dtype == np.float32 and raw.shape == (1, 3, 24, 24)
    if regularize:  # the untransformed image, sigmoid-bounded, normalised for the model
        rgb = denormalize(torch.from_numpy(raw), IMAGENET_MEAN, IMAGENET_STD)
        assert rgb.min() > 0 and rgb.max() < 1


@pytest.mark.parametrize("regularize", [False, True])
def test_batch_equals_each_channel_alone(small, regularize):
    channels = [1, 4, 6]
    kwargs = {"regularize": regularize, "seed": 11, "size": 32, "steps": 6}
    batch_raw = activation_max(small, "conv2", channels, raw=True, **kwargs)
    batch = activation_max(small, "conv2", channels, **kwargs)
    for i, channel in enumerate(channels):
        alone_raw = activation_max(small, "conv2", [channel], raw=True, **kwargs)
        np.testing.assert_allclose(batch_raw[i], alone_raw[0], rtol=1e-5, atol=1e-5)
        alone = activation_max(small, "conv2", channel, **kwargs)
        assert np.abs(batch[i].astype(int) - alone[0].astype(int)).max() <= 1


@pytest.mark.parametrize("regularize", [False, True])
def test_seed_and_progress(small, regularize):
    calls = []
    kwargs = {"regularize": regularize, "size": 24, "steps": 3}
    a = activation_max(
        small, "conv2", [0, 1], seed=4, progress=lambda s, t: calls.append((s, t)), **kwargs
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    b = activation_max(small, "conv2", [0, 1], seed=4, **kwargs)
    c = activation_max(small, "conv2", [0, 1], seed=5, **kwargs)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    torch.manual_seed(9)
    d = activation_max(small, "conv2", [0, 1], **kwargs)
    torch.manual_seed(9)
    np.testing.assert_array_equal(d, activation_max(small, "conv2", [0, 1], **kwargs))


def test_model_untouched_in_train_mode(small):
    model = copy.deepcopy(small).train()
    model.fc.weight.grad = torch.full_like(model.fc.weight, 2.0)
    model.conv1.bias.requires_grad_(False)
    for regularize in (False, True):
        activation_max(model, "conv2", [0, 1], steps=2, size=24, regularize=regularize, seed=0)
    assert model.training and model.bn.training


def test_forward_stops_at_the_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), Boom()).eval()
    for regularize in (False, True):
        out = activation_max(model, "0", [0, 3], steps=2, size=16, regularize=regularize, seed=0)
        assert out.shape == (2, 16, 16, 3)


def test_errors_leave_the_model_untouched(small):
    with pytest.raises(ValueError, match="10 channels"):
        activation_max(small, "conv2", [1, 10], steps=1, size=16, seed=0)
    with pytest.raises(ValueError, match="10 channels"):
        activation_max(small, "conv2", 12, steps=0, size=16, regularize=False, seed=0)
    with pytest.raises(LayerNotExecutedError):
        activation_max(small, "unused", 0, steps=1, size=16, seed=0)
    with pytest.raises(LayerNotFoundError, match="conv2"):
        activation_max(small, "conv3", 0, steps=1, size=16)
    with pytest.raises(ValueError, match="channel"):
        activation_max(small, "conv2", [-1], steps=1, size=16)
    with pytest.raises(ValueError, match="seed"):
        activation_max(small, "conv2", [0], steps=1, size=16, seed=-3)


def test_parameterisation_pieces():
    scale = fft_scale(16)
    assert scale.shape == (16, 9) and scale[0, 0] == 16 and scale[0, 1] == pytest.approx(16)
    assert scale[8, 8] == pytest.approx(1 / np.sqrt(0.5))
    spectrum = torch.randn(2, 3, 16, 9, 2)
    rgb = spectrum_to_rgb(spectrum, scale)
    assert rgb.shape == (2, 3, 16, 16) and rgb.min() > 0 and rgb.max() < 1
    np.testing.assert_allclose(spectrum_to_rgb(torch.zeros(1, 3, 16, 9, 2), scale), 0.5)
    grey = torch.full((2, 3, 128, 128), 0.5)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    moved = random_transform(grey, gens, 128)
    assert moved.shape == (2, 3, 152, 152)
    np.testing.assert_allclose(moved, 0.5, atol=1e-6)
    image = torch.rand(2, 3, 128, 128)
    a = random_transform(image, [torch.Generator().manual_seed(i) for i in range(2)], 128)
    b = random_transform(image, [torch.Generator().manual_seed(i) for i in range(2)], 128)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("regularize", [False, True])
def test_dead_channel_warns(regularize):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 2, 3)
    with torch.no_grad():
        conv.bias[1] = -1e4  # channel 1 is off after the ReLU for any image
    model = nn.Sequential(conv, nn.ReLU()).eval()
    with pytest.warns(ActivationMaxWarning, match=r"channel\(s\) 1 received a zero gradient"):
        out = activation_max(model, "1", [0, 1], steps=3, size=16, regularize=regularize, seed=0)
    assert out.shape == (2, 16, 16, 3)


def test_demo_model_class_images():
    """Every class logit of the bundled demo model rises, in both modes (64 px, its size)."""
    try:
        from cnnviz_widgets.demo import demo_model

        demo = demo_model()
    except (ImportError, FileNotFoundError, OSError, RuntimeError) as err:
        pytest.skip(f"demo model not available yet: {err}")
    classes = list(range(len(demo.classes)))
    for regularize in (False, True):
        kwargs = {"regularize": regularize, "seed": 0, "size": demo.size, "raw": True}
        kwargs.update(mean=demo.mean, std=demo.std)
        start = activation_max(demo.model, "classifier.0", classes, steps=0, **kwargs)
        final = activation_max(demo.model, "classifier.0", classes, steps=12, **kwargs)
        with torch.no_grad():
            before = demo.model(torch.from_numpy(start))[classes, classes]
            after = demo.model(torch.from_numpy(final))[classes, classes]
        print(
            f"demo regularize={regularize}: {before.numpy().round(2)} -> {after.numpy().round(2)}"
        )
        assert (after > before).all()


# --------------------------------------------------------------------------------------------
# The batched run on the layer copy: each image equals its channel optimised alone
# --------------------------------------------------------------------------------------------

# (model, layer, channels): a block of a residual network, a ReLU of a VGG with BatchNorm, an
# inverted-residual block (depthwise convolutions), and the first of two calls of a ReLU.
TORCHVISION_CASES = [
    ("resnet18", "layer2", [0, 5, 9]),
    ("vgg11_bn", "features.10", [1, 3, 6]),
    ("mobilenet_v2", "features.5", [0, 5, 9]),
    ("resnet18", "layer1.0.relu", [2, 7]),
]


def torchvision_model(name: str, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A seeded random-init torchvision model, eval mode, with random BatchNorm statistics and
    affine parameters (so that folding them into the convolutions changes the weights)."""
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, num_classes=10)
    if name.startswith("vgg"):  # the classifier's 100 M weights play no part here
        model.classifier = nn.Linear(512 * 7 * 7, 10)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval().to(dtype)


def hooked_output(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """The output of the first call of ``layer`` in ``model(x)``."""
    record: list[torch.Tensor] = []
    handle = model.get_submodule(layer).register_forward_hook(
        lambda m, i, o: record.append(o.detach().clone())
    )
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return record[0]


def leaves_called_after(model: nn.Module, layer: str, x: torch.Tensor) -> set[str]:
    """Leaf modules whose first call ends after the first call of ``layer`` ends."""
    done: list[str] = []
    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: done.append(name))
        for name, module in model.named_modules()
        if name == layer or not any(True for _ in module.children())
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    cut = done.index(layer)
    return set(done[cut + 1 :]) - set(done[: cut + 1])


@pytest.fixture
def copies(monkeypatch) -> list[nn.Module | None]:
    """Each time ``activation_max`` looked for a layer copy: the copy it kept, or None."""
    kept: list[nn.Module | None] = []
    checked_copy = actmax._Objective._checked_copy

    def spy(self, first):
        copy_ = checked_copy(self, first)
        kept.append(copy_)
        return copy_

    monkeypatch.setattr(actmax._Objective, "_checked_copy", spy)
    return kept


@pytest.mark.parametrize(("arch", "layer", "channels"), TORCHVISION_CASES)
def test_layer_copy_is_the_folded_model_cut_after_the_layer(arch, layer, channels):
    model = torchvision_model(arch)
    before = Fingerprint.of(model)
    copy_ = layer_copy(model, layer, torch.device("cpu"))
    before.assert_same(model)
    assert copy_ is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in copy_.modules())
    assert not any(p.requires_grad for p in copy_.parameters())
    # Nothing after the layer: no leaf module first called after the layer's first call is in
    # the copy (the ReLU of a residual block, called again later, is kept for its first call).
    later = leaves_called_after(model, layer, torch.randn(1, 3, 40, 40))
    assert later and not later & {name for name, _ in copy_.named_modules()}
    x = torch.randn(2, 3, 40, 40)
    want = hooked_output(model, layer, x)
    got = copy_(x.contiguous(memory_format=torch.channels_last))
    scale = float(want.abs().max())
    print(f"{arch} {layer}: max |copy - model| = {float((got - want).abs().max()):.3g}")
    assert got.shape == want.shape and scale > 0
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("layer", ["layer1.0.conv1", "layer1.0.bn1"])
def test_layer_copy_of_a_convolution_or_its_batchnorm(layer):
    """The graph is cut before folding: a convolution keeps its own output (its BatchNorm comes
    after the cut) and a BatchNorm layer is folded into the convolution before it."""
    model = torchvision_model("resnet18", torch.float64)
    copy_ = layer_copy(model, layer, torch.device("cpu"))
    assert copy_ is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in copy_.modules())
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    conv, bn = (hooked_output(model, f"layer1.0.{n}", x) for n in ("conv1", "bn1"))
    assert not torch.allclose(conv, bn, atol=1e-2)  # the BatchNorm does change the values
    torch.testing.assert_close(copy_(x), conv if layer.endswith("conv1") else bn)


class Doubled(nn.Module):
    """Computes ``2 x`` but returns ``x``: the last node traced inside it is not its output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _ = x * 2
        return x


class Branchy(nn.Module):
    """Data-dependent control flow: ``torch.fx`` cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y if y.mean() > -1e9 else -y


@pytest.mark.parametrize("case", ["disagrees", "untraceable"])
def test_without_a_usable_copy_the_model_itself_runs(copies, case):
    torch.manual_seed(3)
    if case == "disagrees":
        model = nn.Sequential(nn.Conv2d(3, 6, 3), Doubled(), nn.ReLU()).eval()
        layer = "1"
    else:
        model = Branchy().eval()
        layer = "conv"
    kwargs = {"steps": 3, "size": 24, "seed": 2, "raw": True}
    for regularize in (False, True):
        got = activation_max(model, layer, [1, 4], regularize=regularize, **kwargs)
        want = activation_max(model, layer, [1, 4], regularize=regularize, fuse=False, **kwargs)
        np.testing.assert_array_equal(got, want)  # the model itself ran both times
    assert copies == [None, None]


def test_the_copy_is_freed_when_the_call_returns(monkeypatch):
    """No weights wait for Python's cyclic garbage collector (which in a long session may run
    rarely): the copy goes when the call returns, and the folding's deep copy of the cut model
    (torch.fx modules refer to their graphs and back) is collected inside the call."""
    model = torchvision_model("resnet18")
    made: list[weakref.ref] = []

    def spy(*args, **kwargs):
        copy_ = layer_copy(*args, **kwargs)
        made.append(weakref.ref(copy_))
        return copy_

    monkeypatch.setattr(actmax, "layer_copy", spy)
    gc.collect()
    gc.disable()
    try:
        activation_max(model, "layer1", [0, 1], steps=1, size=24, seed=0)
        assert len(made) == 1 and made[0]() is None  # freed by reference counting alone
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, torch.Tensor) and not o.is_meta]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert sum(t.numel() for t in left) == 0


@pytest.mark.parametrize("regularize", [False, True])
@pytest.mark.parametrize(("arch", "layer", "channels"), TORCHVISION_CASES[:3])
def test_batch_on_the_copy_equals_each_channel_alone_float64(
    copies, arch, layer, channels, regularize
):
    """In float64, rounding is far below what gradient ascent can amplify (a ReLU or max-pool
    decision flipped, an Adam step on a gradient entry at rounding level): the batch on the copy,
    each channel alone on the copy, and the batch on the model itself agree to the float32
    rounding of the returned images (1e-6)."""
    model = torchvision_model(arch, torch.float64)
    kwargs = {"regularize": regularize, "seed": 3, "size": 40, "steps": 5, "raw": True}
    start = activation_max(model, layer, channels, **{**kwargs, "steps": 0})
    batch = activation_max(model, layer, channels, **kwargs)
    assert len(copies) == 1 and copies[0] is not None
    alone = np.concatenate([activation_max(model, layer, [c], **kwargs) for c in channels])
    plain = activation_max(model, layer, channels, fuse=False, **kwargs)
    assert len(copies) == 1 + len(channels) and None not in copies  # fuse=False makes none
    moved = np.abs(batch - start).reshape(len(channels), -1).max(axis=1)
    print(f"{arch} regularize={regularize}: moved {moved.round(3)}, "
          f"max |batch - alone| = {np.abs(batch - alone).max():.3g}, "
          f"max |copy - model| = {np.abs(batch - plain).max():.3g}")
    assert (moved > 1e-2).all()  # every channel's image changed: a test that can fail
    np.testing.assert_allclose(batch, alone, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(batch, plain, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("regularize", [False, True])
@pytest.mark.parametrize(("arch", "layer", "channels"), TORCHVISION_CASES[:3])
def test_batch_on_the_copy_equals_each_channel_alone_float32(arch, layer, channels, regularize):
    """In float32 one step of the batch on the copy moves each image as the channel alone on
    the model does, to rounding: the difference is at most 1e-3 of how far the image moved
    (RMS), and the display images differ by at most one level."""
    model = torchvision_model(arch)
    kwargs = {"regularize": regularize, "seed": 3, "size": 40, "steps": 1}
    start = activation_max(model, layer, channels, raw=True, **{**kwargs, "steps": 0})
    batch = activation_max(model, layer, channels, raw=True, **kwargs)
    alone = np.concatenate([activation_max(model, layer, [c], raw=True, fuse=False, **kwargs)
                            for c in channels])
    n = len(channels)
    moved = np.sqrt(((alone - start) ** 2).reshape(n, -1).mean(axis=1))
    diff = np.sqrt(((batch - alone) ** 2).reshape(n, -1).mean(axis=1))
    print(f"{arch} regularize={regularize}: RMS moved {moved.round(4)}, RMS diff {diff}")
    assert (moved > 1e-3).all()
    assert (diff <= 1e-3 * moved).all()
    shown = activation_max(model, layer, channels, **kwargs)
    shown_alone = np.concatenate([activation_max(model, layer, c, fuse=False, **kwargs)
                                  for c in channels])
    assert np.abs(shown.astype(int) - shown_alone.astype(int)).max() <= 1


def test_draw_transforms_draws_as_one_step_at_a_time():
    """All steps drawn up front equal the draws of one step after another, per generator."""
    def gens():
        return [torch.Generator().manual_seed(s) for s in (4, 9)]

    upfront = draw_transforms(gens(), 96, 5)
    one_by_one = gens()
    stepwise = torch.stack([draw_transforms(one_by_one, 96, 1)[0] for _ in range(5)])
    assert upfront.shape == (5, 2, 2, 3)
    torch.testing.assert_close(upfront, stepwise, rtol=0, atol=0)
    # Each matrix is a rotation over a scale of 0.9..1.1 and an integer-pixel shift.
    side = 96 + 2 * transform_pad(96)
    a, b = upfront[..., 0, 0], upfront[..., 1, 0]
    scale = 1 / torch.sqrt(a * a + b * b)
    assert ((scale > 0.9 - 1e-9) & (scale < 1.1 + 1e-9)).all()
    torch.testing.assert_close(upfront[..., 0, 1], -b)
    torch.testing.assert_close(upfront[..., 1, 1], a)
    shifts = upfront[..., 2] * side / 2
    torch.testing.assert_close(shifts, shifts.round())
    assert shifts.abs().max() <= 6 + 3  # 8 and 4 px at 128 px, scaled to 96 px


def test_transform_is_each_image_resampled_by_its_matrix():
    """The batched transform equals padding and resampling each image alone; a pure integer
    shift moves the padded image by whole pixels (values checked by indexing)."""
    torch.manual_seed(1)
    image = torch.rand(3, 3, 20, 20)
    theta = draw_transforms([torch.Generator().manual_seed(s) for s in range(3)], 20, 1)[0]
    batched = transform(image, theta.float())
    pad = transform_pad(20)
    for i in range(3):
        padded = torch.nn.functional.pad(image[i : i + 1], (pad,) * 4, value=0.5)
        grid = torch.nn.functional.affine_grid(theta[i : i + 1].float(), list(padded.shape),
                                               align_corners=False)
        alone = torch.nn.functional.grid_sample(padded, grid, padding_mode="border",
                                                align_corners=False)
        torch.testing.assert_close(batched[i : i + 1], alone)
    side = 20 + 2 * pad
    dx, dy = 2, -1
    shift = torch.tensor([[[1.0, 0.0, 2 * dx / side], [0.0, 1.0, 2 * dy / side]]])
    moved = transform(image[:1], shift)[0]
    padded = torch.nn.functional.pad(image[:1], (pad,) * 4, value=0.5)[0]
    # output pixel (y, x) samples input pixel (y + dy, x + dx), clamped at the border
    ys = (torch.arange(side) + dy).clamp(0, side - 1)
    xs = (torch.arange(side) + dx).clamp(0, side - 1)
    torch.testing.assert_close(moved, padded[:, ys][:, :, xs], rtol=1e-5, atol=1e-5)


def test_a_copy_sharing_the_models_weights_is_refused(monkeypatch, small, copies):
    """Were ``inference_copy`` to hand back the model's own modules, the copy would be refused
    (freeing it would empty the user's model)."""
    monkeypatch.setattr(actmax, "inference_copy", lambda model, device: model)
    assert layer_copy(small, "conv2", torch.device("cpu")) is None
    got = activation_max(small, "conv2", [0, 3], steps=2, size=16, seed=0, raw=True)
    want = activation_max(small, "conv2", [0, 3], steps=2, size=16, seed=0, raw=True, fuse=False)
    np.testing.assert_array_equal(got, want)
    assert copies == [None]
