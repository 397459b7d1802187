"""The public CAM API: per-layer maps, target and output forms, borrowing, errors, progress."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from cnnviz_widgets.engine.cam import (
    CAM_METHODS,
    CamMethodError,
    LayerShapeError,
    NoGradientPathError,
    available_cam_methods,
    cam,
    cam_per_layer,
    default_cam_layers,
)
from cnnviz_widgets.engine.inputs import ImageInputError
from cnnviz_widgets.engine.layers import LayerNotFoundError, conv_layers
from cnnviz_widgets.engine.targets import TargetError

from .model_state import Fingerprint

ALL_METHODS = available_cam_methods()
LAYER_METHODS = [m for m in ALL_METHODS if m != "FullGrad"]


class Net(nn.Module):
    """Small classifier with in-place ReLUs and a BatchNorm."""

    def __init__(self, inplace: bool = True) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(inplace=inplace),
            nn.Conv2d(8, 12, 3, stride=2, padding=1),
            nn.BatchNorm2d(12),
            nn.ReLU(inplace=inplace),
            nn.Conv2d(12, 16, 3, padding=1),
            nn.ReLU(inplace=inplace),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)
        with torch.no_grad():
            self.fc.weight *= 10

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@pytest.fixture
def net() -> Net:
    return Net().eval()


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(2, 3, 20, 20, generator=torch.Generator().manual_seed(1))


def same(a: np.ndarray, b: np.ndarray, atol: float = 1e-6) -> None:
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=atol)


# ---------------------------------------------------------------------------------------------
# cam_per_layer


def test_cam_per_layer_resnet_blocks_equal_cam_layer_by_layer(resnet18):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    maps = cam_per_layer(resnet18, x)
    assert list(maps) == [f"layer{s}.{b}" for s in range(1, 5) for b in range(2)]
    for name, m in maps.items():
        assert m.shape == (2, 64, 64) and m.dtype == np.float32
        same(m, cam(resnet18, x, name))


@pytest.mark.parametrize("method", ["GradCAMPlusPlus", "EigenCAM", "LayerCAM", "FEM"])
def test_cam_per_layer_equals_cam_for_other_methods(resnet18, method):
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    layers = ["layer1.1", "layer3.0", "layer4"]
    maps = cam_per_layer(resnet18, x, layers, method)
    for name in layers:
        same(maps[name], cam(resnet18, x, name, method))


@pytest.mark.parametrize("method", ["ScoreCAM", "AblationCAM"])
def test_cam_per_layer_equals_cam_for_perturbation_methods(net, x, method):
    layers = ["features.2", "features.6"]
    maps = cam_per_layer(net, x, layers, method, target=[1, 3])
    for name in layers:
        same(maps[name], cam(net, x, name, method, target=[1, 3]))


def test_cam_per_layer_options_equal_cam(net, x):
    layers = ["features.0", "features.6"]
    smooth = cam_per_layer(net, x, layers, "GradCAM", aug_smooth=True, eigen_smooth=True)
    raw = cam_per_layer(net, x, layers, "HiResCAM", raw=True)
    for name in layers:
        same(smooth[name], cam(net, x, name, "GradCAM", aug_smooth=True, eigen_smooth=True))
        same(raw[name], cam(net, x, name, "HiResCAM", raw=True), atol=0)
    assert raw["features.0"].shape == (2, 20, 20) and raw["features.6"].shape == (2, 10, 10)


def test_cam_per_layer_default_layers(net, vgg11, resnet18):
    assert list(default_cam_layers(net)) == list(conv_layers(net))
    assert list(default_cam_layers(vgg11)) == list(conv_layers(vgg11))
    assert list(default_cam_layers(resnet18))[:3] == ["layer1.0", "layer1.1", "layer2.0"]
    maps = cam_per_layer(net, torch.randn(1, 3, 16, 16))
    assert list(maps) == ["features.0", "features.2", "features.5"]


def test_cam_per_layer_uses_one_forward_and_one_backward(resnet18, monkeypatch):
    calls = {"forward": 0, "grad": 0}
    original_grad = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        calls["grad"] += 1
        return original_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    handle = resnet18.register_forward_pre_hook(
        lambda m, i: calls.__setitem__("forward", calls["forward"] + 1)
    )
    try:
        cam_per_layer(resnet18, torch.randn(1, 3, 64, 64), method="GradCAM")
    finally:
        handle.remove()
    assert calls == {"forward": 1, "grad": 1}


def test_fullgrad_has_no_per_layer_maps(net, x):
    with pytest.raises(CamMethodError, match="FullGrad"):
        cam_per_layer(net, x, method="FullGrad")


# ---------------------------------------------------------------------------------------------
# Targets and outputs


def test_target_forms_agree(net, x):
    with torch.no_grad():
        top = net(x).argmax(dim=1).tolist()
    default = cam(net, x, "features.5", target=None)
    same(default, cam(net, x, "features.5", target=top))
    same(default, cam(net, x, "features.5", target=torch.tensor(top)))
    same(
        default,
        cam(net, x, "features.5", target=[ClassifierOutputTarget(t) for t in top]),
    )
    three = cam(net, x, "features.5", target=3)
    same(three, cam(net, x, "features.5", target=[3, 3]))
    same(three, cam(net, x, "features.5", target=ClassifierOutputTarget(3)))
    same(three, cam(net, x, "features.5", target=lambda out: out[3]))
    mixed = cam(net, x, "features.5", target=[1, ClassifierOutputTarget(4)])
    same(mixed[0], cam(net, x[:1], "features.5", target=1)[0])
    same(mixed[1], cam(net, x[1:], "features.5", target=4)[0])
    assert not np.allclose(cam(net, x, "features.5", target=0), three, atol=1e-3)


class TupleOut(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x), {"aux": x.mean()}


class DictOut(TupleOut):
    def forward(self, x):
        return {"features": x.mean(), "logits": self.inner(x)}


class ObjectOut(TupleOut):
    def forward(self, x):
        result = collections.namedtuple("Result", "hidden logits")
        return result(hidden=x.mean(), logits=self.inner(x))


@pytest.mark.parametrize("wrapper", [TupleOut, DictOut, ObjectOut])
@pytest.mark.parametrize("method", ["GradCAM", "ScoreCAM", "AblationCAM", "FullGrad"])
def test_models_returning_tuple_dict_or_logits_object(net, x, wrapper, method):
    wrapped = wrapper(net).eval()
    layer = "inner.features.5"
    expected = cam(net, x, "features.5", method)
    same(cam(wrapped, x, layer, method), expected)


def test_output_selector(net, x):
    wrapped = DictOut(net).eval()
    expected = cam(net, x, "features.5", target=2)
    same(cam(wrapped, x, "inner.features.5", target=2, output="logits"), expected)
    same(cam(wrapped, x, "inner.features.5", target=2, output=lambda o: o["logits"]), expected)
    same(cam(TupleOut(net).eval(), x, "inner.features.5", target=2, output=0), expected)


# ---------------------------------------------------------------------------------------------
# Calling context, batches, inputs


@pytest.mark.parametrize("method", ["GradCAM", "ScoreCAM", "FullGrad", "EigenGradCAM"])
def test_inside_no_grad_and_inference_mode(net, x, method):
    expected = cam(net, x, "features.5", method)
    with torch.no_grad():
        same(cam(net, x, "features.5", method), expected)
    with torch.inference_mode():
        same(cam(net, x, "features.5", method), expected)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_batch_of_two_equals_each_image_alone(net, x, method):
    both = cam(net, x, "features.5", method, target=[1, 2])
    for i, t in enumerate([1, 2]):
        same(both[i], cam(net, x[i : i + 1], "features.5", method, target=t)[0], atol=1e-5)
    assert both.shape == (2, 20, 20)
    assert float(both.min()) >= 0 and float(both.max()) <= 1


def test_single_image_and_module_layer(net, x):
    expected = cam(net, x[:1], "features.5")
    same(cam(net, x[0], "features.5"), expected)  # (C, H, W) input
    same(cam(net, x[:1], net.features[5]), expected)  # the module instead of its name


def test_layer_followed_by_inplace_relu_uses_its_true_output(x):
    """The conv before an in-place ReLU: same maps as the model without in-place ReLUs."""
    inplace, plain = Net(inplace=True).eval(), Net(inplace=False).eval()
    for method in ("GradCAM", "HiResCAM", "EigenCAM", "ScoreCAM", "AblationCAM", "FEM"):
        same(
            cam(inplace, x, "features.5", method, raw=True),
            cam(plain, x, "features.5", method, raw=True),
            atol=0,
        )
        assert float(cam(plain, x, "features.5", method, raw=True).max()) > 0


def test_raw_maps_are_rectified_at_layer_resolution(net, x):
    for method in LAYER_METHODS:
        raw = cam(net, x, "features.2", method, raw=True)
        assert raw.shape == (2, 10, 10) and raw.dtype == np.float32
        assert float(raw.min()) >= 0
    full = cam(net, x, None, "FullGrad", raw=True)
    assert full.shape == (2, 20, 20)
    same(
        cam(net, x, None, "FullGrad"),
        (full - full.min((1, 2), keepdims=True))
        / (1e-7 + (full - full.min((1, 2), keepdims=True)).max((1, 2), keepdims=True)),
    )


def test_reshape_hook_for_token_layers():
    """A layer that outputs tokens ``(N, H*W, C)``: ``reshape=`` turns them into a grid."""

    class Tokens(nn.Module):
        def forward(self, z):
            return z.flatten(2).transpose(1, 2)

    class Grid(nn.Module):
        def forward(self, t):
            n, hw, c = t.shape
            side = int(hw**0.5)
            return t.transpose(1, 2).reshape(n, c, side, side)

    torch.manual_seed(0)
    conv = nn.Conv2d(3, 6, 3, padding=1)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))
    model = nn.Sequential(conv, Tokens(), Grid(), head).eval()
    x = torch.randn(2, 3, 8, 8)
    grid = Grid()
    for method in ("GradCAM", "ScoreCAM", "EigenCAM"):
        expected = cam(model, x, "2", method)
        same(cam(model, x, "1", method, reshape=grid), expected)
        # 64 tokens and no class token fold into the 8 x 8 grid without being told
        same(cam(model, x, "1", method), expected)
    with pytest.raises(CamMethodError, match="reshape"):
        cam(model, x, "1", "AblationCAM", reshape=grid)


# ---------------------------------------------------------------------------------------------
# The model is borrowed: everything is put back, also after an error


def dirty(model: nn.Module) -> nn.Module:
    """A model in a state an engine call must not disturb: training mode, a frozen layer, an
    existing gradient and a user hook."""
    model.train()
    model.features[0].weight.requires_grad_(False)
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    model.features[2].register_forward_hook(lambda m, i, o: None)
    return model


@pytest.mark.parametrize("method", ALL_METHODS)
def test_model_untouched_by_every_method(x, method):
    model = dirty(Net())
    before = Fingerprint.of(model)
    for layer in ("features.5", "features.6"):
        cam(model, x, None if method == "FullGrad" else layer, method, aug_smooth=True)
        before.assert_same(model)
    if method != "FullGrad":
        cam_per_layer(model, x, method=method, eigen_smooth=True)
        before.assert_same(model)


class Stop(Exception):
    pass


@pytest.mark.parametrize("method", ["ScoreCAM", "AblationCAM"])
def test_model_untouched_when_progress_raises_midway(x, method):
    model = dirty(Net())
    before = Fingerprint.of(model)

    def progress(done, total):
        if done > 3:
            raise Stop

    with pytest.raises(Stop):
        cam(model, x, "features.5", method, batch_size=2, progress=progress)
    before.assert_same(model)


@pytest.mark.parametrize("method", ["GradCAM", "FullGrad", "ScoreCAM"])
def test_model_untouched_when_target_raises(x, method):
    model = dirty(Net())
    before = Fingerprint.of(model)

    def target(out):
        raise Stop

    with pytest.raises(Stop):
        cam(model, x, "features.5", method, target=target)
    before.assert_same(model)


def test_model_untouched_after_bad_layer_output(x):
    model = dirty(Net())
    before = Fingerprint.of(model)
    with pytest.raises(LayerShapeError):
        cam(model, x, "fc", "GradCAM")
    before.assert_same(model)


# ---------------------------------------------------------------------------------------------
# Clear errors


def test_method_names_are_case_insensitive(net, x):
    expected = cam(net, x, "features.5", "GradCAMPlusPlus")
    for name in ("gradcamplusplus", "GRADCAMPLUSPLUS", "GradCAM++"):
        same(cam(net, x, "features.5", name), expected)
    same(cam(net, x, "features.5", "kpca_cam"), cam(net, x, "features.5", "KPCA_CAM"))
    assert set(ALL_METHODS) == set(CAM_METHODS)
    assert {"GradCAM", "ScoreCAM", "AblationCAM", "FullGrad", "KPCA_CAM", "FEM"} <= set(ALL_METHODS)


def test_unknown_method_lists_names_and_close_matches(net, x):
    with pytest.raises(CamMethodError, match="Did you mean 'GradCAM'") as err:
        cam(net, x, "features.5", "GradCAMM")
    assert isinstance(err.value, ValueError)
    assert "ScoreCAM" in str(err.value) and "EigenGradCAM" in str(err.value)
    with pytest.raises(CamMethodError, match="Did you mean 'ScoreCAM'"):
        cam(net, x, "features.5", "scorecan")


def test_unknown_layer(net, x):
    with pytest.raises(LayerNotFoundError, match="features.5"):
        cam(net, x, "features.55")
    with pytest.raises(LayerNotFoundError):
        cam_per_layer(net, x, ["features.0", "nope"])
    with pytest.raises(LayerNotFoundError):
        cam(net, x, ["features.5", "features.55"])


def test_default_layer_is_last_grid_layer(net, resnet18, x):
    same(cam(net, x, None, "GradCAM"), cam(net, x, "features", "GradCAM"))
    x64 = torch.randn(1, 3, 64, 64)
    same(cam(resnet18, x64, None, "LayerCAM"), cam(resnet18, x64, "layer4", "LayerCAM"))


@pytest.mark.parametrize("method", ["GradCAM", "ScoreCAM", "AblationCAM", "FullGrad"])
def test_bad_targets(net, x, method):
    layer = "features.5"
    with pytest.raises(TargetError, match="out of range"):
        cam(net, x, layer, method, target=5)
    with pytest.raises(TargetError, match="integer"):
        cam(net, x, layer, method, target=1.5)
    with pytest.raises(TargetError, match="2 images"):
        cam(net, x, layer, method, target=[1, 2, 3])
    with pytest.raises(TargetError, match="2 images"):
        cam(net, x, layer, method, target=[1], aug_smooth=True)


def test_bad_inputs(net):
    with pytest.raises(ImageInputError):
        cam(net, torch.randn(20, 20), "features.5")
    with pytest.raises(ImageInputError):
        cam(net, torch.randn(1, 1, 2, 20, 20), "features.5")


def test_layer_without_feature_map(net, x):
    with pytest.raises(LayerShapeError, match=r"'fc'.*\(2, 5\).*\(N, C, H, W\)"):
        cam(net, x, "fc", "GradCAM")
    with pytest.raises(LayerShapeError):
        cam(net, x, "fc", "EigenCAM")


def test_layer_off_the_output_path():
    class Side(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.main = nn.Conv2d(3, 4, 3, padding=1)
            self.side = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            self.side(x)
            return self.fc(self.main(x).mean(dim=(2, 3)))

    with pytest.raises(NoGradientPathError, match="side"):
        cam(Side().eval(), torch.randn(1, 3, 8, 8), "side", "GradCAM", target=0)


def test_bad_options(net, x):
    with pytest.raises(CamMethodError, match="ablation_value"):
        cam(net, x, "features.5", "GradCAM", ablation_value=0.0)
    with pytest.raises(CamMethodError, match="kernel"):
        cam(net, x, "features.5", "KPCA_CAM", kernel="nope")
    with pytest.raises(ValueError, match="raw=True"):
        cam(net, x, "features.5", raw=True, aug_smooth=True)
    with pytest.raises(ValueError, match="single layer"):
        cam(net, x, ["features.2", "features.5"], raw=True)
    with pytest.raises(ValueError, match="batch_size"):
        cam(net, x, "features.5", "ScoreCAM", batch_size=0)
    with pytest.raises(ValueError, match="progress"):
        cam(net, x, "features.5", "ScoreCAM", progress="bar")


# ---------------------------------------------------------------------------------------------
# Progress


@pytest.mark.parametrize("method", ["ScoreCAM", "AblationCAM"])
def test_progress_callback_counts_up_to_total(net, x, method):
    calls = []
    cam(net, x, "features.5", method, batch_size=5, progress=lambda d, t: calls.append((d, t)))
    done = [d for d, _ in calls]
    totals = {t for _, t in calls}
    assert totals == {2 * 16}
    assert done == sorted(done) and len(set(done)) == len(done)
    assert done[-1] == 2 * 16
    assert len(calls) >= 2 * (16 // 5)


def test_progress_tqdm(net, x, capsys):
    expected = cam(net, x, "features.5", "ScoreCAM")
    same(cam(net, x, "features.5", "ScoreCAM", progress="tqdm"), expected)


def test_gradient_methods_ignore_progress(net, x):
    calls = []
    cam(net, x, "features.5", "GradCAM", progress=lambda d, t: calls.append(d))
    assert calls == []


# ---------------------------------------------------------------------------------------------
# ScoreCAM's folded model copy


def test_scorecam_folded_copy_agrees_with_the_model(net, x):
    from cnnviz_widgets.engine.accel.inference import FastForward

    forward = FastForward(net.eval(), None, torch.float32, enabled=True)
    with torch.no_grad():
        expected = net(x)
    torch.testing.assert_close(forward(x), expected, rtol=1e-4, atol=1e-5)
    assert forward.uses_copy  # the BatchNorm was folded into a copy
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # not into the model
    fused = cam(net, x, "features.5", "ScoreCAM")
    plain = cam(net, x, "features.5", "ScoreCAM", fuse=False)
    same(fused, plain, atol=1e-5)


def test_scorecam_with_a_model_fx_cannot_trace(net, x):
    from cnnviz_widgets.engine.accel.inference import FastForward

    class Branchy(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, z):
            if float(z.abs().sum()) >= 0:  # data-dependent Python control flow
                return self.inner(z)
            return -self.inner(z)

    model = Branchy(net).eval()
    forward = FastForward(model, None, torch.float32, enabled=True)
    forward(x)
    assert not forward.uses_copy
    same(
        cam(model, x, "inner.features.5", "ScoreCAM"),
        cam(net, x, "features.5", "ScoreCAM", fuse=False),
        atol=1e-5,
    )
