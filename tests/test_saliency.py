"""Saliency methods against captum and slow re-implementations; the model is left untouched."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnviz_widgets.engine.saliency import (
    METHODS,
    GuidedBackpropError,
    available_saliency_methods,
    integration_nodes,
    saliency,
    saliency_map,
)
from cnnviz_widgets.engine.targets import TargetError

from .model_state import Fingerprint

captum_attr = pytest.importorskip("captum.attr")


class SmallNet(nn.Module):
    """Conv net with in-place ReLUs, a reused ReLU module, BatchNorm and Dropout."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.act3 = nn.ReLU()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(12, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.conv2(x) + x)  # the same ReLU module, called twice
        x = self.act3(self.conv3(x))
        return self.fc(self.drop(x.mean(dim=(2, 3))))


class FunctionalReluNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv(x)).mean(dim=(2, 3)))


class MixedReluNet(FunctionalReluNet):
    """One nn.ReLU module and one functional ReLU: guided backprop would be partial."""

    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.conv(x))
        return self.fc(torch.relu(y - 0.1).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def small() -> nn.Module:
    torch.manual_seed(1)
    model = SmallNet()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        model.bn1.running_mean.uniform_(-0.2, 0.2)
        model.bn1.running_var.uniform_(0.5, 1.5)
    return model.eval()


_TWINS: dict[int, tuple[nn.Module, nn.Module]] = {}


def _twin(model: nn.Module) -> nn.Module:
    """One deep copy per model for captum (it may add hooks or change modes on its model)."""
    if id(model) not in _TWINS:
        _TWINS[id(model)] = (model, copy.deepcopy(model).eval())
    return _TWINS[id(model)][1]


def _captum(cls, model: nn.Module, x: torch.Tensor, target, **kwargs) -> np.ndarray:
    """captum's attribution, computed on a copy of ``model``."""
    ref = cls(_twin(model)).attribute(x.clone().requires_grad_(True), target=target, **kwargs)
    return ref.detach().numpy()


def _close(ours: np.ndarray, ref: np.ndarray, label: str) -> None:
    scale = float(np.abs(ref).max())
    diff = float(np.abs(ours - ref).max())
    print(f"{label}: max |ours - reference| = {diff:.3g} (max |reference| = {scale:.3g})")
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape
    assert scale > 0
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * scale)


CAPTUM_CASES = [
    ("vanilla", "Saliency", {"abs": False}),
    ("guided", "GuidedBackprop", {}),
    ("integrated_gradients", "IntegratedGradients", {}),
    ("gradient_x_input", "InputXGradient", {}),
]


@pytest.mark.parametrize(("method", "captum_name", "kwargs"), CAPTUM_CASES)
@pytest.mark.parametrize("arch", ["small", "resnet18", "vgg11"])
def test_matches_captum(request, arch, method, captum_name, kwargs):
    model = request.getfixturevalue(arch)
    size = 24 if arch == "small" else 32
    n = 1 if arch == "vgg11" else 2  # vgg11's classifier is large: one image is enough
    x = torch.randn(n, 3, size, size)
    target = [1, 3][:n]
    before = Fingerprint.of(model)
    ours = saliency(model, x, target, method)
    before.assert_same(model)
    ref = _captum(getattr(captum_attr, captum_name), model, x, target, **kwargs)
    _close(ours, ref, f"{arch} {method}")


def test_target_none_is_predicted_class(small):
    x = torch.randn(3, 3, 20, 20)
    predicted = small(x).argmax(dim=1).tolist()
    for method in ("vanilla", "guided", "gradient_x_input"):
        np.testing.assert_array_equal(
            saliency(small, x, None, method), saliency(small, x, predicted, method)
        )


def test_single_image_and_int_target(small):
    x = torch.randn(3, 20, 20)
    out = saliency(small, x, 2)
    assert out.shape == (1, 3, 20, 20)
    np.testing.assert_array_equal(out, saliency(small, x[None], [2]))


def test_integrated_gradients_options(small):
    x = torch.randn(2, 3, 16, 16)
    base = saliency(small, x, [0, 4], "integrated_gradients", internal_batch_size=7)
    np.testing.assert_allclose(
        base, saliency(small, x, [0, 4], "IntegratedGradients"), rtol=1e-5, atol=1e-8
    )
    # captum's Riemann left/right/middle rules and a custom baseline.
    baseline = torch.full_like(x, 0.3)
    for rule in ("riemann_left", "riemann_right", "riemann_middle"):
        ours = saliency(
            small,
            x,
            [0, 4],
            "integrated_gradients",
            n_steps=8,
            integration=rule,
            baseline=baseline,
        )
        ref = _captum(
            captum_attr.IntegratedGradients,
            small,
            x,
            [0, 4],
            n_steps=8,
            method=rule,
            baselines=baseline,
        )
        _close(ours, ref, f"IG {rule}")


def test_integrated_gradients_completeness(small):
    """Sum of attributions = F(x) - F(baseline) (up to the quadrature error)."""
    x = torch.randn(1, 3, 16, 16)
    attr = saliency(small, x, 2, "integrated_gradients", n_steps=64)
    with torch.no_grad():
        gap = (small(x)[0, 2] - small(torch.zeros_like(x))[0, 2]).item()
    assert attr.sum() == pytest.approx(gap, rel=2e-2, abs=1e-4)


def test_integration_nodes():
    alphas, weights = integration_nodes(5, "riemann_trapezoid")
    np.testing.assert_allclose(alphas, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(weights, [0.125, 0.25, 0.25, 0.25, 0.125])
    alphas, weights = integration_nodes(50)
    assert weights.sum() == pytest.approx(1.0)
    # Gauss-Legendre with 3 nodes integrates t^5 on [0, 1] exactly.
    alphas, weights = integration_nodes(3)
    assert (weights * alphas**5).sum() == pytest.approx(1 / 6)
    with pytest.raises(ValueError, match="integration"):
        integration_nodes(5, "simpson")


def _slow_smoothgrad(model, x, targets, n_samples, noise_level, seed):
    """SmoothGrad one noisy sample at a time, with plain autograd on a private copy."""
    model = copy.deepcopy(model).eval()
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros_like(x)
    for _ in range(n_samples):
        noise = torch.randn(x.shape, generator=gen)
        for i in range(x.shape[0]):
            sigma = noise_level * (x[i].max() - x[i].min())
            xi = (x[i : i + 1] + noise[i : i + 1] * sigma).requires_grad_(True)
            (grad,) = torch.autograd.grad(model(xi)[0, targets[i]], xi)
            total[i] += grad[0]
    return (total / n_samples).numpy()


def test_smoothgrad_equals_slow_loop_and_is_reproducible(small):
    x = torch.randn(3, 3, 16, 16)
    targets = [0, 2, 4]
    kwargs = {"n_samples": 6, "noise_level": 0.2, "seed": 7}
    ours = saliency(small, x, targets, "smoothgrad", internal_batch_size=4, **kwargs)
    ref = _slow_smoothgrad(small, x, targets, **kwargs)
    _close(ours, ref, "smoothgrad vs slow loop")
    again = saliency(small, x, targets, "SmoothGrad", internal_batch_size=32, **kwargs)
    np.testing.assert_allclose(again, ours, rtol=1e-5, atol=1e-8)
    other = saliency(small, x, targets, "smoothgrad", **{**kwargs, "seed": 8})
    assert not np.allclose(other, ours)
    # No noise: the mean of identical gradients is the vanilla gradient.
    quiet = saliency(small, x, targets, "smoothgrad", n_samples=3, noise_level=0.0, seed=0)
    np.testing.assert_allclose(quiet, saliency(small, x, targets), rtol=1e-5, atol=1e-8)


def test_smoothgrad_targets_from_clean_input(small):
    x = torch.randn(2, 3, 16, 16)
    predicted = small(x).argmax(dim=1).tolist()
    np.testing.assert_allclose(
        saliency(small, x, None, "smoothgrad", n_samples=4, seed=3),
        saliency(small, x, predicted, "smoothgrad", n_samples=4, seed=3),
    )


def test_guided_ignores_negative_gradients():
    """Guided backprop by hand on conv -> ReLU -> linear: relu(w_fc) * (pre > 0) through conv."""
    torch.manual_seed(3)
    conv = nn.Conv2d(1, 2, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(2 * 25, 2)).eval()
    x = torch.randn(1, 1, 5, 5)
    ours = saliency(model, x, 1, "guided")
    pre = conv(x).detach()
    upstream = model[3].weight[1].detach().view(1, 2, 5, 5)
    grad_pre = upstream.clamp(min=0) * (pre > 0)
    expected = torch.nn.grad.conv2d_input(x.shape, conv.weight.detach(), grad_pre, padding=1)
    np.testing.assert_allclose(ours, expected.numpy(), rtol=1e-5, atol=1e-7)


class ModuleReluNet(FunctionalReluNet):
    """FunctionalReluNet with its ReLU as a module: what module hooks (and captum) reach."""

    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.conv(x)).mean(dim=(2, 3)))


class InPlaceReluNet(FunctionalReluNet):
    """The ReLU applied in place, its result ignored: the tensor itself must carry the rule."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y.relu_()
        return self.fc(y.mean(dim=(2, 3)))


@pytest.mark.parametrize("cls", [FunctionalReluNet, InPlaceReluNet])
def test_guided_applies_to_functional_relus_as_to_modules(cls):
    torch.manual_seed(4)
    model = cls().eval()
    twin = ModuleReluNet().eval()
    twin.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 8, 8)
    before = Fingerprint.of(model)
    ours = saliency(model, x, [0, 2], "guided")
    before.assert_same(model)
    np.testing.assert_allclose(ours, saliency(twin, x, [0, 2], "guided"), rtol=1e-6, atol=1e-8)
    # and it is not the plain gradient
    assert not np.allclose(ours, saliency(model, x, [0, 2], "vanilla"), atol=1e-6)


def test_guided_on_a_mixed_model_guides_both_relus():
    torch.manual_seed(4)
    model = MixedReluNet().eval()
    x = torch.randn(1, 3, 8, 8)
    ours = saliency(model, x, 1, "guided")
    # by hand: the guided rule after each ReLU, i.e. backward clamps the gradient at 0 twice
    conv_out = model.conv(x).detach()
    y = torch.relu(conv_out)
    z = torch.relu(y - 0.1)
    w = model.fc.weight.detach()[1].view(1, 4, 1, 1) / (8 * 8)
    g_z = w.expand_as(z).clamp(min=0) * (y - 0.1 > 0)
    g_y = g_z.clamp(min=0) * (conv_out > 0)
    expected = torch.nn.grad.conv2d_input(x.shape, model.conv.weight.detach(), g_y, padding=1)
    np.testing.assert_allclose(ours, expected.numpy(), rtol=1e-5, atol=1e-7)


def test_guided_without_any_relu_says_so():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.LazyLinear(2)).eval()
    x = torch.randn(1, 3, 8, 8)
    model(x)
    with pytest.raises(GuidedBackpropError, match="No ReLU ran"):
        saliency(model, x, 0, "guided")


def test_guided_on_densenet_equals_captum_where_its_hooks_reach():
    """torchvision's DenseNet applies its last ReLU as F.relu; ours guides it. captum's result
    equals ours on a twin whose last ReLU is a module (on the original it leaves it unguided)."""
    captum = pytest.importorskip("captum.attr")
    import torchvision

    class ModuleLastRelu(torchvision.models.DenseNet):
        def __init__(self) -> None:
            super().__init__(32, (2, 2), 16, num_classes=5)
            self.last_relu = nn.ReLU(inplace=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.last_relu(self.features(x))
            out = torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1)
            return self.classifier(out)

    torch.manual_seed(0)
    model = torchvision.models.DenseNet(32, (2, 2), 16, num_classes=5).eval()
    twin = ModuleLastRelu().eval()
    twin.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    ours = saliency(model, x, [1, 3], "guided")
    ref = captum.GuidedBackprop(twin).attribute(x, target=[1, 3]).detach().numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-7)
    unguided = captum.GuidedBackprop(model).attribute(x, target=[1, 3]).detach().numpy()
    assert not np.allclose(unguided, ref, atol=1e-6)  # what captum silently gives there


def test_guided_gradcam_is_gradcam_times_guided(small):
    cam = _cam_function()
    x = torch.randn(2, 3, 24, 24)
    before = Fingerprint.of(small)
    ours = saliency(small, x, [1, 2], "guided_gradcam", layer="conv3")
    before.assert_same(small)
    maps = cam(small, x, "conv3", method="GradCAM", target=[1, 2])
    expected = saliency(small, x, [1, 2], "guided") * np.asarray(maps)[:, None]
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-8)
    # Default layer: the last Conv2d.
    np.testing.assert_allclose(saliency(small, x, [1, 2], "GuidedGradCam"), ours, atol=1e-8)


def _cam_function():
    """``cnnviz_widgets.engine.cam.cam``, or skip while the CAM family is not there yet."""
    try:
        from cnnviz_widgets.engine.cam import cam
    except ImportError:
        pytest.skip("cnnviz_widgets.engine.cam.cam is not available yet")
    return cam


@pytest.mark.parametrize("method", [m for m in METHODS if m != "guided_gradcam"])
def test_model_untouched_in_train_mode_with_grads(method):
    """Train mode, existing .grad and requires_grad flags survive; BatchNorm stats don't move."""
    torch.manual_seed(5)
    model = SmallNet().train()
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    model.conv2.weight.requires_grad_(False)
    before = Fingerprint.of(model)
    options = {"smoothgrad": {"n_samples": 3, "seed": 0}}.get(method, {})
    x = torch.randn(2, 3, 12, 12)
    out = saliency(model, x, [0, 1], method, **options)
    before.assert_same(model)
    # Eval mode inside: the same as running on an eval copy.
    ref = saliency(copy.deepcopy(model).eval(), x, [0, 1], method, **options)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "guided_gradcam"])
def test_model_untouched_when_raising(small, method):
    before = Fingerprint.of(small)
    with pytest.raises(TargetError):
        saliency(small, torch.randn(1, 3, 12, 12), 99, method)
    before.assert_same(small)


def test_method_names_and_options(small):
    x = torch.randn(1, 3, 12, 12)
    np.testing.assert_array_equal(saliency(small, x, 0, "VANILLA"), saliency(small, x, 0))
    np.testing.assert_array_equal(
        saliency(small, x, 0, "InputXGradient"), saliency(small, x, 0, "gradient_x_input")
    )
    np.testing.assert_array_equal(
        saliency(small, x, 0, "GuidedBackprop"), saliency(small, x, 0, "guided")
    )
    with pytest.raises(ValueError, match="vanilla.*guided.*smoothgrad") as info:
        saliency(small, x, 0, "occlusion")
    assert "occlusion" in str(info.value)
    with pytest.raises(TypeError, match="n_steps"):
        saliency(small, x, 0, "vanilla", n_steps=3)
    assert available_saliency_methods() == METHODS


def test_saliency_map_reductions():
    rng = np.random.default_rng(0)
    attr = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(saliency_map(attr), np.abs(attr).max(axis=1))
    np.testing.assert_allclose(saliency_map(attr, "sum_abs"), np.abs(attr).sum(axis=1))
    np.testing.assert_array_equal(saliency_map(torch.from_numpy(attr), "MAX"), attr.max(axis=1))
    assert saliency_map(attr[0]).shape == (1, 4, 5)
    with pytest.raises(ValueError, match="absmax"):
        saliency_map(attr, "median")


def test_works_under_no_grad_and_inference_mode(small):
    x = torch.randn(1, 3, 12, 12)
    expected = saliency(small, x, 1, "guided")
    with torch.no_grad():
        np.testing.assert_array_equal(saliency(small, x, 1, "guided"), expected)
    with torch.inference_mode():
        np.testing.assert_array_equal(saliency(small, x, 1, "guided"), expected)


def test_callable_target_equals_class_index(small):
    x = torch.randn(2, 3, 12, 12)
    for method in ("vanilla", "integrated_gradients"):
        np.testing.assert_allclose(
            saliency(small, x, lambda out: out[3], method),
            saliency(small, x, 3, method),
            rtol=1e-6,
            atol=1e-9,
        )
