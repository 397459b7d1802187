"""Every CAM method against pytorch-grad-cam 1.5.x on the same model and input.

The reference gets its own deep copy of each model (it calls ``eval()``, fills parameters'
``.grad`` and registers hooks), made once per model; its ``.grad`` are cleared after each
call. In that copy only the first parameter (the first convolution's weight) keeps
``requires_grad``: the reference's graph still spans every layer after it, so every gradient it
uses is the same, but its ``backward()`` skips the weight gradients of the rest of the network
(VGG's 100M-parameter classifier above all).

Maps are compared per image: mean absolute difference <= 0.01 and Pearson correlation >= 0.99
on the [0, 1] maps; where the reference exposes them, the raw maps before normalisation are
compared too (random-init networks give tiny raw magnitudes, so a wrong eps or scale shows up
there first). EigenCAM-style projections have an arbitrary sign in the reference, so those are
compared with the reference's map and, where that does not match, with the reference run on the
negated projection, per image; each image must match one of them.

Target layers avoid a module followed by an in-place operation: on CPU the reference keeps the
layer's output tensor itself, which a following ``ReLU(inplace=True)`` overwrites, whereas the
engine (and the reference on GPU, which copies) uses the layer's true output.
"""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import pytorch_grad_cam as pgc
import torch
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from threadpoolctl import threadpool_limits
from torch import nn

from cnnviz_widgets.engine.cam import cam
from cnnviz_widgets.engine.cam.scaling import finish

MAX_MAD = 0.01
MIN_CORR = 0.99

GRADIENT_METHODS = [
    "GradCAM",
    "GradCAMPlusPlus",
    "XGradCAM",
    "HiResCAM",
    "LayerCAM",
    "GradCAMElementWise",
]
PROJECTION_METHODS = ["EigenCAM", "EigenGradCAM"]
OTHER_METHODS = ["KPCA_CAM", "FEM", "FullGrad"]
PERTURBATION_METHODS = ["ScoreCAM", "AblationCAM"]

FIGURES: dict[str, list[tuple[float, float]]] = {}


@pytest.fixture(scope="module", autouse=True)
def _print_figures():
    # One BLAS thread for the reference's numpy SVDs (two threads on two busy cores is slower).
    with threadpool_limits(1):
        yield
    if FIGURES:
        print("\nparity figures (max MAD, min correlation) per method:")
        for method, values in sorted(FIGURES.items()):
            mad = max(v[0] for v in values)
            corr = min(v[1] for v in values)
            print(f"  {method:20s} max MAD {mad:.2e}  min corr {corr:.6f}  ({len(values)} runs)")


@pytest.fixture(scope="module")
def densenet121():
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.densenet121(weights=None).eval()


class SmallNet(nn.Module):
    """A small conv net with dead channels (constant maps) and a layer with negative values."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 48, 3, stride=2, padding=1),  # features.2: negative values, 48 ch
            nn.BatchNorm2d(48),
            nn.ReLU(inplace=True),
            nn.Conv2d(48, 40, 3, padding=1),
            nn.ReLU(inplace=True),  # features.6: some channels dead (constant 0)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(40, 10)
        with torch.no_grad():
            bn = self.features[3]
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            conv = self.features[5]
            conv.weight[:4] = 0
            conv.bias[:4] = -1.0  # four dead channels
            self.fc.weight *= 10

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@pytest.fixture(scope="module")
def smallnet() -> SmallNet:
    return SmallNet().eval()


def image_batch(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images (more CAM structure than white noise), normalised-looking."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 3, 6, 6, generator=g)
    smooth = nn.functional.interpolate(coarse, size=(size, size), mode="bicubic")
    return smooth + 0.3 * torch.randn(n, 3, size, size, generator=g)


_PROJECTION_USERS = (
    pgc.base_cam,
    pgc.eigen_cam,
    pgc.eigen_grad_cam,
    pgc.hirescam,
    pgc.layer_cam,
    pgc.grad_cam_elementwise,
    pgc.fullgrad_cam,
)


@contextlib.contextmanager
def negated_projection(active: bool):
    """Make the reference's ``get_2d_projection`` return the opposite sign."""
    saved = {m: m.get_2d_projection for m in _PROJECTION_USERS}
    try:
        if active:
            for module, fn in saved.items():
                module.get_2d_projection = lambda a, fn=fn: -fn(a)
        yield
    finally:
        for module, fn in saved.items():
            module.get_2d_projection = fn


_REFERENCE_COPIES: dict[int, tuple[nn.Module, nn.Module]] = {}


def reference_copy(model: nn.Module) -> nn.Module:
    """The reference's own deep copy of ``model`` (one per model, reused)."""
    entry = _REFERENCE_COPIES.get(id(model))
    if entry is None or entry[0] is not model:
        twin = copy.deepcopy(model)
        for i, param in enumerate(twin.parameters()):
            param.requires_grad_(i == 0)
        entry = (model, twin)
        _REFERENCE_COPIES[id(model)] = entry
    return entry[1]


def reference(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    layers: list[str],
    targets=None,
    *,
    negate: bool = False,
    batch_size: int | None = None,
    **call,
) -> tuple[np.ndarray, np.ndarray | None]:
    """pytorch-grad-cam's map on a deep copy of ``model``, and its raw map where it has one."""
    ref_model = reference_copy(model)
    modules = [] if method == "FullGrad" else [ref_model.get_submodule(n) for n in layers]
    raw = None
    sink = io.StringIO()
    with (
        negated_projection(negate),
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
        getattr(pgc, method)(ref_model, modules) as ref,
    ):
        if batch_size is not None:
            ref.batch_size = batch_size
        final = ref(x.clone(), targets, **call)
        wants_raw = method not in PERTURBATION_METHODS and method != "FullGrad"
        if wants_raw and len(modules) == 1 and not call.get("aug_smooth"):
            acts = ref.activations_and_grads.activations[0].numpy()
            grads = ref.activations_and_grads.gradients
            grads = grads[0].numpy() if grads else None
            cam_image = ref.get_cam_image(
                x, modules[0], targets, acts, grads, call.get("eigen_smooth", False)
            )
            raw = np.maximum(cam_image, 0)
    for param in ref_model.parameters():
        param.grad = None
    return final, raw


def metrics(ours: np.ndarray, ref: np.ndarray) -> list[tuple[float, float]]:
    """Per image ``(MAD, Pearson r)``; two constant maps count as perfectly correlated."""
    out = []
    for a, b in zip(ours, ref, strict=True):
        mad = float(np.abs(a - b).mean())
        if a.std() == 0 or b.std() == 0:
            corr = 1.0 if np.allclose(a, b, atol=1e-6) else 0.0
        else:
            corr = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
        out.append((mad, corr))
    return out


def assert_parity(label: str, ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert float(ref.max()) > 0.5, f"{label}: degenerate reference map"
    per_image = metrics(ours, ref)
    FIGURES.setdefault(label, []).extend(per_image)
    for i, (mad, corr) in enumerate(per_image):
        assert mad <= MAX_MAD and corr >= MIN_CORR, f"{label} image {i}: MAD {mad}, r {corr}"


# The reference's KernelPCA runs in float32 (kernel matrix and eigensolver); ours in float64,
# which test_cam_formulas checks against scikit-learn on float64 data at 1e-5.
RAW_TOLERANCE = {"KPCA_CAM": 2e-3}


def assert_raw_parity(ours: np.ndarray, ref: np.ndarray, tol: float = 1e-4) -> None:
    scale = float(np.abs(ref).max())
    assert scale > 0
    np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol * scale)


def check(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    layer: str,
    targets=None,
    *,
    up_to_sign: bool = False,
    batch_size: int | None = None,
    **call,
) -> None:
    """Compare final (and raw) maps of ``cam`` with the reference's."""
    our_target = targets
    kw = {} if batch_size is None else {"batch_size": batch_size}
    ours = cam(model, x, None if method == "FullGrad" else layer, method, our_target, **kw, **call)
    ref, ref_raw = reference(model, x, method, [layer], targets, batch_size=batch_size, **call)
    our_raw = None
    if ref_raw is not None:
        our_raw = cam(model, x, layer, method, our_target, raw=True, **kw, **call)
    label = method + "".join(f"+{k}" for k, v in call.items() if v)
    if not up_to_sign:
        assert_parity(label, ours, ref)
        if ref_raw is not None:
            assert_raw_parity(our_raw, ref_raw, RAW_TOLERANCE.get(method, 1e-4))
        return
    options = [(ref, ref_raw)]
    if any(mad > MAX_MAD or corr < MIN_CORR for mad, corr in metrics(ours, ref)):
        options.append(
            reference(
                model, x, method, [layer], targets, negate=True, batch_size=batch_size, **call
            )
        )
    for i in range(x.shape[0]):
        best = min(options, key=lambda o: float(np.abs(o[0][i] - ours[i]).mean()))
        assert_parity(label, ours[i : i + 1], best[0][i : i + 1])
        if best[1] is not None:
            assert_raw_parity(our_raw[i], best[1][i], RAW_TOLERANCE.get(method, 1e-4))


# ---------------------------------------------------------------------------------------------
# Gradient, projection and activation methods on the three torchvision models


MODEL_CASES = {
    "resnet18": ("layer3", 96),  # 6x6 map, 256 channels
    "vgg11": ("features.19", 64),  # the last ReLU (in-place), 4x4, 512 channels
    "densenet121": ("features.transition2", 96),  # 6x6, 256 channels
}
BATCH = {"resnet18": 2, "vgg11": 2, "densenet121": 1}


@pytest.fixture(params=list(MODEL_CASES))
def case(request, resnet18, vgg11, densenet121):
    models = {"resnet18": resnet18, "vgg11": vgg11, "densenet121": densenet121}
    layer, size = MODEL_CASES[request.param]
    x = image_batch(BATCH[request.param], size, seed=len(request.param))
    return models[request.param], layer, x


@pytest.mark.parametrize("method", GRADIENT_METHODS + OTHER_METHODS)
def test_matches_reference(case, method):
    model, layer, x = case
    check(model, x, method, layer)


@pytest.mark.parametrize("method", PROJECTION_METHODS)
def test_projection_methods_match_reference_up_to_sign(case, method):
    model, layer, x = case
    check(model, x, method, layer, up_to_sign=True)


def test_explicit_targets_match_reference(resnet18):
    x = image_batch(2, 64, seed=3)
    targets = [ClassifierOutputTarget(7), ClassifierOutputTarget(500)]
    for method in ("GradCAM", "GradCAMPlusPlus", "HiResCAM"):
        check(resnet18, x, method, "layer3", targets)


# ---------------------------------------------------------------------------------------------
# ScoreCAM and AblationCAM (one forward pass per channel: small inputs, few channels)


PERTURBATION_CASES = {
    "resnet18": ("layer2", 48, 1),  # 128 channels, 6x6
    "vgg11": ("features.2", 32, 1),  # 64 channels, 16x16
    "densenet121": ("features.transition1", 32, 1),  # 128 channels, 4x4
    "smallnet-dead-channels": ("features.6", 32, 2),  # 40 channels, 4 of them constant
    "smallnet-negative": ("features.2", 32, 2),  # 48 channels with negative minima
}


@pytest.mark.parametrize("method", PERTURBATION_METHODS)
@pytest.mark.parametrize("name", list(PERTURBATION_CASES))
def test_perturbation_methods_match_reference(name, method, resnet18, vgg11, densenet121, smallnet):
    models = {"resnet18": resnet18, "vgg11": vgg11, "densenet121": densenet121}
    model = models.get(name, smallnet)
    layer, size, n = PERTURBATION_CASES[name]
    x = image_batch(n, size, seed=11)
    # The reference's defaults: ScoreCAM 16 images per pass, AblationCAM 32. Ours runs ScoreCAM
    # at 32, which cannot change its result; AblationCAM at the reference's own batch size.
    check(model, x, method, layer, batch_size=16 if method == "ScoreCAM" else 32)


def test_ablation_inside_a_residual_block_matches_reference(resnet18):
    """The ablated copies meet the block's skip connection (a tensor from before the layer)."""
    x = image_batch(2, 32, seed=14)
    check(resnet18, x, "AblationCAM", "layer2.0.conv2", batch_size=32)


def test_scorecam_batch_size_does_not_change_result(smallnet):
    x = image_batch(2, 32, seed=12)
    a = cam(smallnet, x, "features.6", "ScoreCAM", batch_size=5)
    b = cam(smallnet, x, "features.6", "ScoreCAM", batch_size=64)
    np.testing.assert_allclose(a, b, atol=1e-6)
    ref, _ = reference(smallnet, x, "ScoreCAM", ["features.6"])
    assert_parity("ScoreCAM", a, ref)


# ---------------------------------------------------------------------------------------------
# Options: aug_smooth, eigen_smooth, several target layers


def test_aug_smooth_matches_reference(resnet18):
    x = image_batch(2, 64, seed=4)
    check(resnet18, x, "GradCAM", "layer3", aug_smooth=True)
    check(resnet18, x[:1], "FullGrad", "", aug_smooth=True)


def test_aug_smooth_scorecam_matches_reference(smallnet):
    x = image_batch(1, 32, seed=5)
    check(smallnet, x, "ScoreCAM", "features.6", aug_smooth=True)


@pytest.mark.parametrize(
    "method", ["GradCAM", "GradCAMPlusPlus", "HiResCAM", "LayerCAM", "GradCAMElementWise"]
)
def test_eigen_smooth_matches_reference_up_to_sign(resnet18, method):
    x = image_batch(2, 64, seed=6)
    check(resnet18, x, method, "layer2", up_to_sign=True, eigen_smooth=True)


def test_eigen_smooth_fullgrad_matches_reference_up_to_sign(vgg11):
    x = image_batch(2, 64, seed=7)
    check(vgg11, x, "FullGrad", "", up_to_sign=True, eigen_smooth=True)


def test_eigen_smooth_scorecam_matches_reference_up_to_sign(smallnet):
    x = image_batch(2, 32, seed=8)
    check(smallnet, x, "ScoreCAM", "features.6", up_to_sign=True, eigen_smooth=True)


def test_several_target_layers_match_reference(resnet18):
    x = image_batch(2, 96, seed=9)
    for method in ("GradCAM", "XGradCAM"):
        ours = cam(resnet18, x, ["layer2", "layer3"], method)
        ref, _ = reference(resnet18, x, method, ["layer2", "layer3"])
        assert_parity(method + "+layers", ours, ref)


def test_half_precision_model_close_to_float32(smallnet):
    """A float16 model: maths in float32, maps close to the float32 model's (ours and the
    reference's, which cannot run a half model on CPU)."""
    x = image_batch(2, 32, seed=10)
    half = copy.deepcopy(smallnet).half()
    for method in ("GradCAM", "ScoreCAM", "AblationCAM", "EigenCAM", "FullGrad"):
        ours = cam(half, x, "features.6", method)
        assert ours.dtype == np.float32
        full = cam(smallnet, x, "features.6", method)
        per_image = metrics(ours, full)
        assert all(mad <= 0.02 and corr >= 0.98 for mad, corr in per_image), (method, per_image)
        if method != "EigenCAM":
            ref, _ = reference(smallnet, x, method, ["features.6"])
            per_image = metrics(ours, ref)
            assert all(mad <= 0.02 and corr >= 0.98 for mad, corr in per_image), method


# ---------------------------------------------------------------------------------------------
# The normalise/resize step itself, and the bundled demo model


def test_finish_equals_reference_scale_and_cv2_resize():
    g = torch.Generator().manual_seed(13)
    for h, w, size in [(7, 7, (224, 224)), (3, 5, (61, 96)), (8, 8, (8, 8)), (13, 17, (40, 50))]:
        raw = torch.rand(3, h, w, generator=g) * 1e-6  # tiny magnitudes: the eps matters
        expected = scale_cam_image(scale_cam_image(raw.numpy(), (size[1], size[0])))
        np.testing.assert_allclose(finish(raw, size).numpy(), expected, atol=2e-6)
        direct = np.stack(
            [cv2.resize(np.float32(m), (size[1], size[0])) for m in raw.numpy()]
        )  # cv2 alone, to show the resize is cv2's
        np.testing.assert_allclose(
            torch.nn.functional.interpolate(
                raw[:, None], size=size, mode="bilinear", align_corners=False
            )[:, 0].numpy(),
            direct,
            rtol=1e-5,
            atol=1e-12,
        )


DEMO_WEIGHTS = Path(__file__).resolve().parents[1] / "cnnviz_widgets" / "data" / "shapesnet.pt"


@pytest.mark.skipif(not DEMO_WEIGHTS.exists(), reason="bundled demo weights not built yet")
@pytest.mark.parametrize(
    "method", GRADIENT_METHODS + OTHER_METHODS + PERTURBATION_METHODS + PROJECTION_METHODS
)
def test_demo_model_matches_reference(method):
    from cnnviz_widgets.demo import demo_model

    demo = demo_model()
    x = demo.transform(demo.samples[:2])
    check(demo.model, x, method, "features.12", up_to_sign=method in PROJECTION_METHODS)
