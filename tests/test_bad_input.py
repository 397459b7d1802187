"""Issue 5's bad-input list: each case gets an error naming the problem and the fix, and the
model is left exactly as it was (``Fingerprint``), or the case works and is checked by value.

Already covered elsewhere (not repeated here): unknown layer with close matches for
``conv_layers``/``kernels`` (``test_layers_kernels.py``) and ``cam`` (``test_cam_api.py``),
wrong rank / 5 channels / 2-D / integer / NaN tensors and grayscale expansion in
``prepare_input`` (``test_inputs.py``), tuple/dict/``.logits`` outputs that work
(``test_cam_api.py``), batch of two for every CAM method (``test_cam_api.py``), guided
backprop on a functional-ReLU model (``test_saliency.py``), a training model's feature maps
(``test_model_state.py``). This file adds the remaining cases and runs each across the engine
functions (``feature_maps``, ``cam``, ``cam_per_layer``, ScoreCAM, ``saliency``).

Devices: this machine has no GPU, so an input on another device than the model is tested only
through ``prepare_input``'s path (the input always lands on the model's device and dtype) and
the meta device; a CUDA model with a CPU input is not exercised here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnviz_widgets.engine import (
    ImageInputError,
    LayerNotExecutedError,
    LayerNotFoundError,
    NoConvLayersError,
    OutputSelectionError,
    TargetError,
    activation_max,
    conv_layers,
    feature_maps,
    kernels,
    prepare_input,
    saliency,
)
from cnnviz_widgets.engine.cam import cam, cam_per_layer
from cnnviz_widgets.engine.devices import model_device

from .model_state import Fingerprint


class SmallNet(nn.Module):
    """conv-BN-ReLU x 2, pool, dropout, linear: train/eval matters (BN, dropout)."""

    def __init__(self, in_channels: int = 3, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 12, 3, padding=1, stride=2)
        self.bn2 = nn.BatchNorm2d(12)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(12, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.fc(self.drop(self.pool(x).flatten(1)))


def small_net(in_channels: int = 3) -> SmallNet:
    """Seeded, with non-trivial BatchNorm running statistics, in eval mode."""
    torch.manual_seed(0)
    model = SmallNet(in_channels)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, in_channels, 16, 16) * 2 + 0.5)
    return model.eval()


# name -> call(model, x, target); every one an engine entry point on layer "conv2"
CALLS: dict[str, Callable[[nn.Module, torch.Tensor, Any], Any]] = {
    "feature_maps": lambda m, x, t: feature_maps(m, x, ["conv2", "bn2"]),
    "cam": lambda m, x, t: cam(m, x, "conv2", target=t),
    "cam_per_layer": lambda m, x, t: cam_per_layer(m, x, ["conv1", "conv2"], target=t),
    "ScoreCAM": lambda m, x, t: cam(m, x, "conv2", "ScoreCAM", target=t),
    "saliency": lambda m, x, t: saliency(m, x, target=t),
    "guided_gradcam": lambda m, x, t: saliency(m, x, target=t, method="guided_gradcam"),
}
TARGETED = [name for name in CALLS if name != "feature_maps"]


def as_arrays(result: Any) -> dict[str, np.ndarray]:
    if isinstance(result, dict):
        return {k: np.asarray(v, np.float32) for k, v in result.items()}
    return {"": np.asarray(result, np.float32)}


def x16(n: int = 1, channels: int = 3) -> torch.Tensor:
    return torch.randn(n, channels, 16, 16, generator=torch.Generator().manual_seed(n))


# --------------------------------------------------------------------------------------------
# Layers


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x: feature_maps(m, x, ["conv_2"]),
        lambda m, x: cam(m, x, "conv_2", target=0),
        lambda m, x: cam_per_layer(m, x, ["conv1", "conv_2"], target=0),
        lambda m, x: saliency(m, x, 0, "guided_gradcam", layer="conv_2"),
        lambda m, x: kernels(m, "conv_2"),
        lambda m, x: activation_max(m, "conv_2", [0], steps=1, size=16),
    ],
    ids=["feature_maps", "cam", "cam_per_layer", "guided_gradcam", "kernels", "actmax"],
)
def test_unknown_layer_suggests_close_names(call):
    model = small_net().train()
    before = Fingerprint.of(model)
    with pytest.raises(LayerNotFoundError, match="Closest layer names: 'conv2'"):
        call(model, x16())
    before.assert_same(model)


class SkipsALayer(SmallNet):
    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Conv2d(12, 12, 1)  # defined, never called

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)


@pytest.mark.parametrize("name", ["feature_maps", "cam", "cam_per_layer", "ScoreCAM"])
def test_layer_never_executed_is_named(name):
    torch.manual_seed(0)
    model = SkipsALayer().train()
    before = Fingerprint.of(model)
    calls = {
        "feature_maps": lambda: feature_maps(model, x16(), ["conv2", "unused"]),
        "cam": lambda: cam(model, x16(), "unused", target=0),
        "cam_per_layer": lambda: cam_per_layer(model, x16(), ["conv2", "unused"], target=0),
        "ScoreCAM": lambda: cam(model, x16(), "unused", "ScoreCAM", target=0),
    }
    with pytest.raises(LayerNotExecutedError, match="'unused'.*not called.*forward"):
        calls[name]()
    before.assert_same(model)


class AuxHead(SmallNet):
    """An auxiliary head that only runs in training mode (as Inception v3's AuxLogits)."""

    def __init__(self) -> None:
        super().__init__()
        self.aux = nn.Conv2d(8, 10, 1)

    def forward(self, x: torch.Tensor) -> Any:
        h = self.relu1(self.bn1(self.conv1(x)))
        out = self.fc(self.drop(self.pool(self.relu2(self.bn2(self.conv2(h)))).flatten(1)))
        return (out, self.aux(h).mean(dim=(2, 3))) if self.training else out


def test_training_only_convs_are_not_listed_but_still_named_errors():
    torch.manual_seed(0)
    model = AuxHead().train()
    before = Fingerprint.of(model)
    assert list(conv_layers(model)) == ["conv1", "conv2"]  # the aux conv never runs in eval
    assert list(feature_maps(model, x16())) == ["conv1", "conv2"]
    assert kernels(model, "aux").shape == (10, 8, 1, 1)
    with pytest.raises(LayerNotExecutedError, match="'aux'.*auxiliary heads only run in"):
        cam(model, x16(), "aux", target=0)
    before.assert_same(model)


def test_model_without_conv2d():
    from cnnviz_widgets import LayerExplorer

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 10)).train()
    before = Fingerprint.of(mlp)
    for call in (
        lambda: conv_layers(mlp),
        lambda: feature_maps(mlp, x16()),
        lambda: cam_per_layer(mlp, x16(), target=0),
        lambda: LayerExplorer(mlp, np.zeros((16, 16, 3), np.uint8), size=16, background=False),
    ):
        with pytest.raises(NoConvLayersError, match="no nn.Conv2d.*convolutional model"):
            call()
    with pytest.raises(ValueError, match="spatial grid.*Name the layer"):
        cam(mlp, x16(), None, target=0)
    before.assert_same(mlp)
    # what does work on such a model: saliency, and feature maps of named layers
    assert saliency(mlp, x16(), target=1).shape == (1, 3, 16, 16)
    assert feature_maps(mlp, x16(), ["1"])["1"].shape == (1, 10)
    before.assert_same(mlp)


# --------------------------------------------------------------------------------------------
# Images


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize(
    ("x", "pattern"),
    [
        (torch.randn(16, 16), r"\(N, C, H, W\).*x\[None, None\]"),
        (torch.randn(1, 1, 3, 16, 16), r"\(N, C, H, W\).*5 dimension"),
        (torch.randn(1, 4, 16, 16), r"4 channel.*takes 3.*alpha"),
        (torch.randn(1, 6, 16, 16), r"6 channel.*takes 3"),
        (torch.randint(0, 255, (1, 3, 16, 16), dtype=torch.uint8), r"floating-point.*255"),
        (torch.zeros(0, 3, 16, 16), r"empty"),
    ],
    ids=["2d", "5d", "rgba", "6ch", "uint8", "empty"],
)
def test_wrong_rank_channels_or_dtype(name, x, pattern):
    model = small_net().train()
    before = Fingerprint.of(model)
    with pytest.raises(ImageInputError, match=pattern):
        CALLS[name](model, x, 0)
    before.assert_same(model)


@pytest.mark.parametrize("name", list(CALLS))
def test_grayscale_into_rgb_model_is_converted(name):
    model = small_net()
    grey = x16()[:, :1]
    got = as_arrays(CALLS[name](model, grey, 2))
    expected = as_arrays(CALLS[name](model, grey.expand(-1, 3, -1, -1), 2))
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(CALLS))
def test_four_channel_model_takes_four_channels_and_refuses_three(name):
    model = small_net(in_channels=4)
    before = Fingerprint.of(model)
    result = as_arrays(CALLS[name](model, x16(channels=4), 1))
    assert all(np.isfinite(v).all() for v in result.values())
    with pytest.raises(ImageInputError, match=r"3 channel.*takes 4.*\(N, 4, H, W\)"):
        CALLS[name](model, x16(), 1)
    before.assert_same(model)


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_input(name, bad):
    model = small_net().train()
    x = x16(2)
    x[1, 2, 3, 4] = bad
    before = Fingerprint.of(model)
    with pytest.raises(ImageInputError, match="1 NaN or Inf value.*normalised"):
        CALLS[name](model, x, 0)
    before.assert_same(model)


def test_meta_input_and_device_path():
    model = small_net()
    with pytest.raises(ImageInputError, match="meta-device.*no values"):
        prepare_input(model, torch.empty(1, 3, 16, 16, device="meta"))
    for x in (x16().double(), x16().half(), x16().to(torch.bfloat16)):
        ready = prepare_input(model, x)
        assert ready.device == model_device(model) and ready.dtype == torch.float32
    np.testing.assert_allclose(cam(model, x16().double(), "conv2", target=1),
                               cam(model, x16(), "conv2", target=1), atol=1e-5)


# --------------------------------------------------------------------------------------------
# Targets and outputs


@pytest.mark.parametrize("name", TARGETED)
@pytest.mark.parametrize(
    ("target", "pattern"),
    [
        (10, r"target = 10 is out of range.*10 outputs.*0\.\.9"),
        (-1, r"target = -1 is out of range"),
        (2.5, r"integer class index; got 2\.5"),
        (True, r"integer class index; got True"),
        (torch.tensor(1.0), r"integer class index"),
        ([1, 2, 3], r"3 entries but the batch has 2"),
        ([1, 99], r"target\[1\] = 99 is out of range"),
        ("cat", r"int, a list or a callable"),
    ],
    ids=["10", "-1", "2.5", "True", "float-tensor", "count", "per-sample", "str"],
)
def test_bad_targets(name, target, pattern):
    model = small_net().train()
    before = Fingerprint.of(model)
    with pytest.raises(TargetError, match=pattern):
        CALLS[name](model, x16(2), target)
    before.assert_same(model)


class Wrapped(SmallNet):
    """:func:`small_net` whose output is wrapped by ``wrap``."""

    def __init__(self, wrap: Callable[[torch.Tensor], Any]):
        super().__init__()
        self.load_state_dict(small_net().state_dict())
        self.wrap = wrap

    def forward(self, x: torch.Tensor) -> Any:
        return self.wrap(super().forward(x))


class Opaque:
    def __init__(self, scores: torch.Tensor):
        self.scores = scores


@pytest.mark.parametrize("name", TARGETED)
@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: {"label": "cat", "count": 3},
        lambda s: ("cat", None),
        lambda s: Opaque(s),
    ],
    ids=["dict", "tuple", "object"],
)
def test_output_without_a_selectable_tensor(name, wrap):
    model = Wrapped(wrap).train()
    before = Fingerprint.of(model)
    with pytest.raises(OutputSelectionError, match="holds no tensor of scores.*output="):
        CALLS[name](model, x16(), 0)
    before.assert_same(model)


def test_output_selector_that_does_not_fit_and_one_that_does():
    model = Wrapped(lambda s: Opaque(s)).eval()
    before = Fingerprint.of(model)
    with pytest.raises(OutputSelectionError, match="output='logits' does not select"):
        cam(model, x16(), "conv2", target=0, output="logits")
    before.assert_same(model)
    plain = small_net()
    got = cam(model, x16(), "conv2", target=0, output="scores")
    np.testing.assert_allclose(got, cam(plain, x16(), "conv2", target=0), atol=1e-6)
    sal = saliency(model, x16(), target=0, output=lambda out: out.scores)
    np.testing.assert_allclose(sal, saliency(plain, x16(), target=0), atol=1e-7)


# --------------------------------------------------------------------------------------------
# Model state: training mode, dtypes, batches, functional ReLU


TRAINING_CALLS = {
    **CALLS,
    "AblationCAM": lambda m, x, t: cam(m, x, "conv2", "AblationCAM", target=t),
    "smoothgrad": lambda m, x, t: saliency(m, x, target=t, method="smoothgrad", n_samples=4,
                                           seed=0),
    "kernels": lambda m, x, t: kernels(m, "conv2"),
}


@pytest.mark.parametrize("name", list(TRAINING_CALLS))
def test_training_model_computes_in_eval_mode_and_is_restored_bit_for_bit(name):
    model = small_net()
    model.train()
    model.bn2.eval()  # a mixed state must come back mixed
    model.fc.weight.grad = torch.full_like(model.fc.weight, 0.5)
    evaluated = copy.deepcopy(model).eval()
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num" in k}
    assert int(model.bn1.num_batches_tracked) == 3
    before = Fingerprint.of(model)
    got = as_arrays(TRAINING_CALLS[name](model, x16(2), 4))
    before.assert_same(model)
    for key, value in stats.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert model.training and model.bn1.training and not model.bn2.training
    expected = as_arrays(TRAINING_CALLS[name](evaluated, x16(2), 4))
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["half", "bfloat16"])
@pytest.mark.parametrize("name", list(CALLS))
def test_half_and_bfloat16_models_work_and_agree_with_float32(dtype, name):
    model = small_net()
    low = copy.deepcopy(model).to(dtype)
    before = Fingerprint.of(low)
    x = x16(2)
    got = as_arrays(CALLS[name](low, x, 3))  # float32 input, converted to the model's dtype
    before.assert_same(low)
    assert all(p.dtype == dtype for p in low.parameters())
    expected = as_arrays(CALLS[name](model, x, 3))
    for key in expected:
        a, b = got[key], expected[key]
        assert a.dtype == np.float32 and np.isfinite(a).all()
        corr = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert corr > 0.97, f"{key}: correlation {corr:.4f} with float32"
        assert np.abs(a - b).mean() <= 0.02 * np.abs(b).max() + 1e-6


@pytest.mark.parametrize("name", [*CALLS, "guided", "integrated_gradients"])
def test_batch_equals_each_sample_alone(name):
    model = small_net()
    calls = {
        **CALLS,
        "guided": lambda m, x, t: saliency(m, x, target=t, method="guided"),
        "integrated_gradients": lambda m, x, t: saliency(
            m, x, target=t, method="integrated_gradients", n_steps=8),
    }
    x = x16(3)
    targets = [1, 5, 7]
    batch = as_arrays(calls[name](model, x, targets))
    for i, t in enumerate(targets):
        alone = as_arrays(calls[name](model, x[i : i + 1], t))
        for key in alone:
            np.testing.assert_allclose(batch[key][i : i + 1], alone[key], rtol=1e-5,
                                       atol=1e-6, err_msg=f"sample {i} {key}")


class FunctionalRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.act = nn.ReLU()  # a ReLU module exists, but forward also uses F.relu
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(x))
        return self.fc(F.relu(x - 0.1).mean(dim=(2, 3)))


@pytest.mark.parametrize("method", ["guided", "guided_gradcam"])
def test_functional_relu_is_guided_and_the_model_left_as_it_was(method):
    torch.manual_seed(0)
    model = FunctionalRelu().train()
    before = Fingerprint.of(model)
    attr = saliency(model, x16(), target=0, method=method)
    assert attr.shape == (1, 3, 16, 16) and np.isfinite(attr).all() and np.abs(attr).max() > 0
    before.assert_same(model)
    # nothing of the guided rule is left active: a plain backward afterwards is the plain one
    x = x16().requires_grad_(True)
    model.eval()
    score = model(x)[0, 0]
    (plain,) = torch.autograd.grad(score, x)
    np.testing.assert_allclose(saliency(model, x16(), target=0, method="vanilla"),
                               plain.numpy(), rtol=1e-5, atol=1e-8)
