"""The model-zoo sweep: one small member of every torchvision family and the checks run on it.

Shared by ``tests/test_zoo.py`` (every check must pass, model left as found) and
``tools/zoo_table.py`` (runs the same checks and writes ``docs/zoo.md``). Each check takes a
:class:`ZooRun` (model, input, target) and returns a short detail string, or raises: an
``AssertionError`` when a value is wrong, the library's own error when a call fails.

Models are random-init (``weights=None``, ``torch.manual_seed(0)``), in eval mode, at the
smallest input the family's sweep needs (64 px; Inception v3 needs at least 75 px). Values are
checked against small independent re-implementations (a plain forward hook for feature maps,
``torch.autograd.grad`` for saliency, the Grad-CAM formula with pytorch-grad-cam's scaling for
CAM), not only shapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from cnnviz_widgets.engine import conv_layers, default_layer, feature_maps, saliency
from cnnviz_widgets.engine.cam import cam, cam_per_layer
from cnnviz_widgets.engine.cam.api import default_cam_layers
from cnnviz_widgets.engine.dryrun import trace_modules
from cnnviz_widgets.engine.tokens import channels_last_to_first, tokens_to_grid

Reshape = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ZooCase:
    """One family of the sweep.

    Attributes:
        family: the torchvision family name (``"resnet"``).
        builder: the ``torchvision.models`` function of its smallest member (``"resnet18"``).
        size: input side in pixels.
        kwargs: extra builder arguments (Inception's ``aux_logits=False`` ...).
        reshape: the pytorch-grad-cam style ``reshape_transform`` the Grad-CAM oracle uses at the
            default layer (``None`` for CNNs), written by hand, independent of the automatic one.
        note: why the case differs from a plain ``builder(weights=None)``.
    """

    family: str
    builder: str
    size: int = 64
    kwargs: dict[str, Any] = field(default_factory=dict)
    reshape: Reshape | None = None
    note: str = ""

    def build(self) -> nn.Module:
        """The seeded random-init model in eval mode."""
        torch.manual_seed(0)
        model = getattr(torchvision.models, self.builder)(weights=None, **self.kwargs)
        head = getattr(getattr(model, "heads", None), "head", None)
        if isinstance(head, nn.Linear) and not bool(head.weight.any()):
            # torchvision's ViT zero-initialises its head, so every score (and gradient) is 0
            nn.init.normal_(head.weight, std=0.02)
        return model.eval()

    def input(self) -> torch.Tensor:
        """``(1, 3, size, size)`` seeded standard-normal input."""
        generator = torch.Generator().manual_seed(1)
        return torch.randn(1, 3, self.size, self.size, generator=generator)


# torchvision's defaults keep the auxiliary heads (inception_v3's pretrained weights have them);
# init_weights=True is the default made explicit (it silences a FutureWarning)
_AUX = {"init_weights": True}

CASES: tuple[ZooCase, ...] = (
    ZooCase("alexnet", "alexnet"),
    ZooCase("vgg", "vgg11"),
    ZooCase("resnet", "resnet18"),
    ZooCase("resnext", "resnext50_32x4d"),
    ZooCase("wide_resnet", "wide_resnet50_2"),
    ZooCase("densenet", "densenet121"),
    ZooCase("squeezenet", "squeezenet1_1"),
    ZooCase("googlenet", "googlenet", kwargs=_AUX,
            note="with its auxiliary heads, which run only in training mode"),
    ZooCase("inception_v3", "inception_v3", size=75, kwargs=_AUX,
            note="with its auxiliary head; 75 px is its minimum input"),
    ZooCase("mobilenet_v2", "mobilenet_v2"),
    ZooCase("mobilenet_v3", "mobilenet_v3_small"),
    ZooCase("mnasnet", "mnasnet0_5"),
    ZooCase("shufflenet_v2", "shufflenet_v2_x0_5"),
    ZooCase("efficientnet", "efficientnet_b0"),
    ZooCase("efficientnet_v2", "efficientnet_v2_s"),
    ZooCase("regnet", "regnet_y_400mf"),
    ZooCase("convnext", "convnext_tiny"),
    ZooCase("vit", "vit_b_16", kwargs={"image_size": 64}, reshape=tokens_to_grid(prefix=1),
            note="image_size=64; zero-initialised head re-drawn (std 0.02)"),
    ZooCase("swin", "swin_t", reshape=channels_last_to_first),
)
"""Every family of the sweep, smallest member first-class; ``FAMILIES`` lists their names."""

FAMILIES: tuple[str, ...] = tuple(case.family for case in CASES)


@dataclass
class ZooRun:
    """One model under test: the case, the model, its input and the class explained.

    Attributes:
        case: the :class:`ZooCase`.
        model: the built model.
        x: ``(1, 3, S, S)`` input.
        target: the model's top class for ``x`` (so every check explains the same class).
    """

    case: ZooCase
    model: nn.Module
    x: torch.Tensor
    target: int
    _layer: str | None = None

    @classmethod
    def start(cls, case: ZooCase) -> ZooRun:
        model = case.build()
        x = case.input()
        with torch.no_grad():
            target = int(model(x).argmax(dim=1)[0])
        return cls(case, model, x, target)

    @property
    def layer(self) -> str:
        """The default CAM layer (:func:`default_layer` of the input)."""
        if self._layer is None:
            self._layer = default_layer(self.model, self.x)
        return self._layer


# --------------------------------------------------------------------------------------------
# Independent references


def hooked_outputs(model: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """Each named module's first output for ``model(x)`` by plain forward hooks (cloned)."""
    modules = dict(model.named_modules())
    found: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:

        def hook(_m: nn.Module, _i: tuple, out: torch.Tensor, name: str = name) -> None:
            found.setdefault(name, out.detach().clone())

        handles.append(modules[name].register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return found


def _minmax(m: torch.Tensor) -> torch.Tensor:
    m = m - m.flatten(1).amin(1)[:, None, None]
    return m / (1e-7 + m.flatten(1).amax(1)[:, None, None])


def gradcam_reference(
    model: nn.Module, x: torch.Tensor, layer: str, target: int, reshape: Reshape | None
) -> np.ndarray:
    """Grad-CAM from its formula: ``relu(sum_c mean(dS/dA_c) A_c)``, then pytorch-grad-cam's
    ``minmax -> bilinear resize (half-pixel) -> minmax``; ``(N, H, W)`` float32."""
    module = dict(model.named_modules())[layer]
    stored: list[torch.Tensor] = []

    def hook(_m: nn.Module, _i: tuple, out: torch.Tensor) -> torch.Tensor | None:
        if stored:
            return None
        stored.append(out)
        return out.clone()  # in-place ops downstream must not touch the recorded output

    handle = module.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            scores = model(x)
            (grad,) = torch.autograd.grad(scores[:, target].sum(), stored[0])
    finally:
        handle.remove()
    acts = stored[0].detach()
    if reshape is not None:
        acts, grad = reshape(acts), reshape(grad)
    raw = (grad.mean(dim=(2, 3), keepdim=True) * acts).sum(dim=1).clamp_min(0)
    scaled = F.interpolate(_minmax(raw)[:, None], size=x.shape[-2:], mode="bilinear",
                           align_corners=False)[:, 0]
    return _minmax(scaled).numpy()


def _check_map(maps: np.ndarray, n: int, size: int, what: str) -> None:
    assert maps.shape == (n, size, size), f"{what}: shape {maps.shape}"
    assert maps.dtype == np.float32, f"{what}: dtype {maps.dtype}"
    assert np.isfinite(maps).all(), f"{what}: not finite"
    assert maps.min() >= 0 and maps.max() <= 1, f"{what}: outside [0, 1]"
    assert maps.max() - maps.min() > 0.5, f"{what}: (nearly) constant map"


# --------------------------------------------------------------------------------------------
# The checks


def check_conv_layers(run: ZooRun) -> str:
    """Every Conv2d the forward pass calls, in the order it calls them."""
    convs = conv_layers(run.model)
    assert convs and all(isinstance(m, nn.Conv2d) for m in convs.values())
    order = trace_modules(run.model, run.x).call_order
    every = {n for n, m in run.model.named_modules() if isinstance(m, nn.Conv2d)}
    assert set(convs) == every & set(order), "conv_layers differs from the Conv2d that run"
    ranks = [order.index(n) for n in convs]
    assert ranks == sorted(ranks), "conv_layers is not in forward order"
    unused = len(every) - len(convs)
    return f"{len(convs)} convs" + (f" ({unused} unused in eval mode)" if unused else "")


def check_feature_maps(run: ZooRun) -> str:
    """Maps of every conv from one pass; the first, middle and last equal plain hooks."""
    convs = list(conv_layers(run.model))
    maps = feature_maps(run.model, run.x)
    assert list(maps) == convs, "feature_maps keys differ from conv_layers"
    for name, m in maps.items():
        assert m.ndim == 4 and m.shape[0] == 1 and m.dtype == torch.float32, name
        assert bool(torch.isfinite(m).all()), f"{name}: not finite"
    picked = list(dict.fromkeys([convs[0], convs[len(convs) // 2], convs[-1]]))
    expected = hooked_outputs(run.model, run.x, picked)
    for name in picked:
        torch.testing.assert_close(maps[name], expected[name], rtol=1e-4, atol=1e-5)
        assert float(maps[name].std()) > 0, f"{name}: constant feature map"
    return f"{len(maps)} maps"


def check_gradcam(run: ZooRun) -> str:
    """GradCAM at the default layer equals the formula (pytorch-grad-cam's scaling)."""
    maps = cam(run.model, run.x, None, "GradCAM", target=run.target)
    _check_map(maps, 1, run.case.size, "GradCAM")
    ref = gradcam_reference(run.model, run.x, run.layer, run.target, run.case.reshape)
    diff = float(np.abs(maps - ref).max())
    assert diff < 1e-3, f"GradCAM differs from the formula by {diff:.2g}"
    return f"max diff {diff:.1e}"


def _two_layers(run: ZooRun) -> list[str]:
    convs = list(conv_layers(run.model))
    other = convs[-1] if convs[-1] != run.layer else convs[-2]
    return [other, run.layer]


def check_cam_per_layer(run: ZooRun) -> str:
    """Two layers from one pass equal ``cam`` per layer; the default layer set all in [0, 1]."""
    layers = _two_layers(run)
    per = cam_per_layer(run.model, run.x, layers, target=run.target)
    assert list(per) == layers
    for name in layers:
        alone = cam(run.model, run.x, name, target=run.target)
        np.testing.assert_allclose(per[name], alone, atol=1e-5, err_msg=name)
    every = cam_per_layer(run.model, run.x, target=run.target)
    assert list(every) == list(default_cam_layers(run.model))
    for name, m in every.items():
        assert m.shape == (1, run.case.size, run.case.size), name
        assert np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1, name
    return f"{len(every)} layers"


def check_saliency(run: ZooRun) -> str:
    """Vanilla saliency equals the input gradient of the target score."""
    attr = saliency(run.model, run.x, target=run.target)
    assert attr.shape == tuple(run.x.shape) and attr.dtype == np.float32
    assert np.isfinite(attr).all() and np.abs(attr).max() > 0, "zero or non-finite gradient"
    leaf = run.x.clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(run.model(leaf)[0, run.target], leaf)
    scale = float(grad.abs().max())
    np.testing.assert_allclose(attr, grad.numpy(), rtol=1e-3, atol=1e-4 * scale)
    return f"max |grad| {scale:.1e}"


def check_explorer(run: ZooRun) -> str:
    """LayerExplorer builds on the model and serves features, kernels and a CAM of a layer."""
    from cnnviz_widgets import LayerExplorer
    from cnnviz_widgets.widgets.recorder import Recorder
    from cnnviz_widgets.widgets.serialize import decode_stack_message

    rgb = np.random.default_rng(0).integers(0, 256, (run.case.size, run.case.size, 3), np.uint8)
    ex = LayerExplorer(run.model, rgb, size=run.case.size, background=False)
    sent = Recorder(ex).sent
    try:
        layer = list(conv_layers(run.model))[-1]
        requests = [
            {"kind": "features", "layer": layer, "version": ex.image_version},
            {"kind": "kernels", "layer": layer},
            {"kind": "cam", "layer": ex.cam_layer, "method": "GradCAM", "target": run.target,
             "version": ex.image_version},
        ]
        for i, req in enumerate(requests):
            ex._on_msg(ex, {"type": "request", "id": i, "key": f"k{i}", **req}, [])
            msg = sent[-1][0]
            assert msg["type"] == "reply", f"{req['kind']}: {msg.get('message', msg)}"
        assert not ex.error, ex.error
        got = decode_stack_message(sent[-1][0]["stack"], sent[-1][1])[0]
        expected = cam(run.model, ex.input_tensor, ex.cam_layer, target=run.target)[0]
        assert float(np.abs(got - expected).max()) < 1 / 200, "CAM reply differs from cam()"
        return f"CAM layer {ex.cam_layer}"
    finally:
        ex.close()


CHECKS: dict[str, Callable[[ZooRun], str]] = {
    "conv_layers": check_conv_layers,
    "feature_maps": check_feature_maps,
    "GradCAM": check_gradcam,
    "cam_per_layer": check_cam_per_layer,
    "saliency": check_saliency,
    "explorer": check_explorer,
}


@dataclass
class CheckResult:
    """One check's outcome: ``error`` is ``None`` when it passed."""

    name: str
    seconds: float
    detail: str = ""
    error: str | None = None


def run_checks(run: ZooRun) -> list[CheckResult]:
    """Every check on ``run``; a failing check is recorded (first line of its error), not raised."""
    results = []
    for name, check in CHECKS.items():
        start = time.perf_counter()
        try:
            detail, error = check(run), None
        except Exception as err:  # the table says exactly why
            text = str(err).strip().splitlines()
            detail, error = "", f"{type(err).__name__}: {text[0] if text else ''}"
        results.append(CheckResult(name, time.perf_counter() - start, detail, error))
    return results
