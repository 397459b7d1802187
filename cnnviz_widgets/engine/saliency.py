"""Gradient saliency: which input pixels the score of a class is sensitive to.

:func:`saliency` computes signed, per-channel attributions ``(N, C, H, W)`` with one of

* ``"vanilla"``: the input gradient of the target score (Simonyan et al. 2014); equals captum's
  ``Saliency(model).attribute(x, target, abs=False)``.
* ``"guided"``: guided backpropagation (Springenberg et al. 2015): at every ``nn.ReLU`` the
  backward gradient is clamped to positive values and masked by the ReLU's forward input being
  positive; equals captum's ``GuidedBackprop``.
* ``"smoothgrad"``: the mean vanilla gradient over noisy copies of the input (Smilkov et al.
  2017).
* ``"integrated_gradients"``: path integral of the gradient from a baseline to the input
  (Sundararajan et al. 2017), with captum's defaults (zero baseline, 50 Gauss-Legendre nodes).
* ``"gradient_x_input"``: the input gradient times the input; equals captum's ``InputXGradient``.
* ``"guided_gradcam"``: guided backpropagation times the (upsampled, [0, 1]) GradCAM map of a
  layer (Selvaraju et al. 2017).

:func:`saliency_map` reduces attributions over channels to one ``(N, H, W)`` map for display.

Every method runs on a borrowed model (eval mode, parameters frozen, so the input is the only
tensor that requires a gradient), takes gradients with ``torch.autograd.grad`` and leaves the
model exactly as it was, hooks and parameters' ``.grad`` included, also when it raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .borrow import borrowed
from .detection import check_batch, model_family
from .dryrun import default_layer
from .inputs import prepare_input
from .layers import LayerRef, conv_layers
from .targets import (
    OutputSelector,
    Target,
    check_targets_fit,
    resolve_targets,
    select_scores,
    target_scores,
)

METHODS: tuple[str, ...] = (
    "vanilla",
    "guided",
    "smoothgrad",
    "integrated_gradients",
    "gradient_x_input",
    "guided_gradcam",
)

# Accepted spellings (lower case, without "_", "-" or spaces), captum's class names included.
_ALIASES: dict[str, str] = {
    "vanilla": "vanilla",
    "saliency": "vanilla",
    "gradient": "vanilla",
    "guided": "guided",
    "guidedbackprop": "guided",
    "guidedbackpropagation": "guided",
    "smoothgrad": "smoothgrad",
    "integratedgradients": "integrated_gradients",
    "ig": "integrated_gradients",
    "gradientxinput": "gradient_x_input",
    "inputxgradient": "gradient_x_input",
    "gradientinput": "gradient_x_input",
    "guidedgradcam": "guided_gradcam",
}

# Options each method takes (beyond model, x, target, output).
_OPTIONS: dict[str, tuple[str, ...]] = {
    "vanilla": (),
    "guided": (),
    "smoothgrad": ("n_samples", "noise_level", "seed", "internal_batch_size"),
    "integrated_gradients": ("baseline", "n_steps", "integration", "internal_batch_size"),
    "gradient_x_input": (),
    "guided_gradcam": ("layer",),
}

REDUCTIONS: tuple[str, ...] = ("absmax", "sum_abs", "max")

_MANY_COPIES = ("smoothgrad", "integrated_gradients")
"""Methods that run many forward/backward passes and report progress."""

DEFAULT_INTERNAL_BATCH = 32
"""Images per forward pass for the methods that evaluate many copies of each input."""


class GuidedBackpropError(ValueError):
    """Guided backpropagation cannot be applied to this model (no ReLU runs in it)."""


def available_saliency_methods() -> tuple[str, ...]:
    """Canonical names of the saliency methods, in the order a menu shows them."""
    return METHODS


def canonical_method(method: str) -> str:
    """The canonical name for ``method`` (case, ``_``/``-``/spaces and captum names tolerated).

    Raises:
        ValueError: an unknown method; the message lists the valid names.
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}.")
    key = method.lower().replace("_", "").replace("-", "").replace(" ", "")
    if key not in _ALIASES:
        raise ValueError(
            f"Unknown saliency method {method!r}. Valid methods: "
            + ", ".join(repr(m) for m in METHODS)
            + " (case-insensitive)."
        )
    return _ALIASES[key]


def saliency(
    model: nn.Module,
    x: torch.Tensor,
    target: Target = None,
    method: str = "vanilla",
    *,
    output: OutputSelector = None,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> np.ndarray:
    """Signed per-pixel, per-channel attributions of the target score to the input.

    Args:
        model: the network; left exactly as it was.
        x: ``(N, C, H, W)`` (or ``(C, H, W)``) model-ready input (normalised as the model
            expects); moved to the model's device and dtype.
        target: ``None`` (each image's predicted class), a class index, one index per image, or
            a callable on one image's output (see :mod:`~cnnviz_widgets.engine.targets`):
            ``BoxTarget`` for a detection model, ``RegionTarget`` for a segmentation model
            (:mod:`~cnnviz_widgets.engine.regions`). For SmoothGrad and integrated gradients
            the predicted class is that of the clean input, and a box must match a detection
            of the clean input (a noisy or scaled copy where it matches none scores 0).
        method: one of :data:`METHODS` (case-insensitive; captum class names such as
            ``"IntegratedGradients"`` or ``"InputXGradient"`` are accepted too).
        output: which part of the model's output holds the scores (see ``select_output``).
        progress: ``progress(done, total)`` after each forward/backward pass over a batch of
            copies (SmoothGrad, integrated gradients; ``done`` counts copies); an exception
            it raises stops the computation (the model is restored).
        **options: method options:

            * ``smoothgrad``: ``n_samples`` (default 50) noisy copies per image;
              ``noise_level`` (default 0.15): the noise standard deviation as a fraction of
              each image's value range ``max - min``; ``seed`` (int) makes the noise
              reproducible (``None`` draws from torch's global generator);
              ``internal_batch_size`` (default 32) images per forward pass.
            * ``integrated_gradients``: ``baseline`` (default 0: a float, or a tensor that
              broadcasts to ``x``); ``n_steps`` (default 50); ``integration``
              (``"gausslegendre"`` (default, captum's), ``"riemann_left"``,
              ``"riemann_right"``, ``"riemann_middle"`` or ``"riemann_trapezoid"``);
              ``internal_batch_size`` (default 32) images per forward pass.
            * ``guided_gradcam``: ``layer`` (name or module) for GradCAM; default: the last
              ``nn.Conv2d`` in forward order (for a torchvision detector or segmenter, the
              default CAM layer of its backbone).

    Returns:
        ``(N, C, H, W)`` float32 numpy array, signed. Gradient methods (``vanilla``,
        ``guided``, ``smoothgrad``, ``guided_gradcam``) are in score units per input unit;
        ``gradient_x_input`` and ``integrated_gradients`` are in score units (integrated
        gradients sum to about ``score(x) - score(baseline)``).

    Raises:
        ValueError: unknown method; :class:`GuidedBackpropError` for ``guided`` /
            ``guided_gradcam`` on a model that applies ReLU functionally.
        TypeError: an option the method does not take.
        TargetError, OutputSelectionError, ImageInputError: bad target, output or input.
    """
    name = canonical_method(method)
    unknown = sorted(set(options) - set(_OPTIONS[name]))
    if unknown:
        valid = ", ".join(_OPTIONS[name]) or "none"
        raise TypeError(
            f"saliency method {name!r} does not take option(s) {', '.join(unknown)}; its "
            f"options are: {valid}."
        )
    check_batch(x)
    x = prepare_input(model, x)
    check_targets_fit(target, x.shape[-2], x.shape[-1])
    if name == "guided_gradcam":
        result = _guided_gradcam(model, x, target, output, **options)
    else:
        with borrowed(model), _gradients_on():
            if name in _MANY_COPIES:
                options["progress"] = progress
            result = _METHOD_FUNCS[name](model, x, target, output, **options)
    return result.detach().to("cpu", torch.float32).numpy()


def saliency_map(attr: np.ndarray | torch.Tensor, reduce: str = "absmax") -> np.ndarray:
    """Reduce ``(N, C, H, W)`` (or ``(C, H, W)``) attributions over channels to ``(N, H, W)``.

    Args:
        attr: attributions from :func:`saliency`.
        reduce: ``"absmax"``: the largest magnitude over channels, ``max_c |a_c|`` (how
            FlashTorch draws saliency maps); ``"sum_abs"``: ``sum_c |a_c|``; ``"max"``: the
            signed maximum over channels (FlashTorch's ``take_max``).

    Returns:
        ``(N, H, W)`` float32 numpy array, non-negative for ``absmax`` and ``sum_abs``; raw
        values, not rescaled.
    """
    arr = attr.detach().cpu().numpy() if isinstance(attr, torch.Tensor) else np.asarray(attr)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(
            f"saliency_map takes (N, C, H, W) or (C, H, W) attributions; got shape {arr.shape}."
        )
    arr = arr.astype(np.float32, copy=False)
    key = reduce.lower() if isinstance(reduce, str) else reduce
    if key == "absmax":
        return np.abs(arr).max(axis=1)
    if key == "sum_abs":
        return np.abs(arr).sum(axis=1)
    if key == "max":
        return arr.max(axis=1)
    raise ValueError(
        f"Unknown reduce {reduce!r}; use one of " + ", ".join(repr(r) for r in REDUCTIONS) + "."
    )


# --------------------------------------------------------------------------------------------
# Shared gradient step
# --------------------------------------------------------------------------------------------


def _input_gradient(
    model: nn.Module,
    x: torch.Tensor,
    target: Target | Sequence[int | Callable],
    output: OutputSelector,
    *,
    clean: bool = True,
) -> tuple[torch.Tensor, list[int | Callable]]:
    """Gradient of each image's target score w.r.t. ``x`` ``(N, C, H, W)``, and the targets.

    Images in a batch are independent in eval mode, so the gradient of the summed scores is
    each image's own gradient. ``clean``: ``x`` is the unperturbed input (a box target must
    match a detection there); ``False`` for noisy or scaled copies, where a score that does
    not depend on the input (no box matches in any copy of the batch) has a zero gradient.
    """
    leaf = x.detach().requires_grad_(True)
    scores = select_scores(model(leaf), output)
    targets = resolve_targets(scores, target, require_match=clean)
    values = target_scores(scores, targets)
    if not clean and not values.requires_grad:
        return torch.zeros_like(leaf), targets
    (grad,) = torch.autograd.grad(values.sum(), leaf)
    return grad, targets


@contextmanager
def _gradients_on() -> Iterator[None]:
    """Autograd on, also when the caller is inside ``torch.no_grad()`` or inference mode."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def _clean_targets(
    model: nn.Module, x: torch.Tensor, target: Target, output: OutputSelector
) -> list[int | Callable]:
    """Targets resolved on the clean input (predicted classes for ``target=None``)."""
    with torch.no_grad():
        return resolve_targets(select_scores(model(x), output), target)


def _chunks(total: int, size: int) -> Iterator[slice]:
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def _batch_size(value: Any) -> int:
    if value is None:
        return DEFAULT_INTERNAL_BATCH
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"internal_batch_size must be a positive int, got {value!r}.")
    return value


# --------------------------------------------------------------------------------------------
# Methods (called inside borrowed(model) and _gradients_on())
# --------------------------------------------------------------------------------------------


def _vanilla(
    model: nn.Module, x: torch.Tensor, target: Target, output: OutputSelector
) -> torch.Tensor:
    return _input_gradient(model, x, target, output)[0]


def _gradient_x_input(
    model: nn.Module, x: torch.Tensor, target: Target, output: OutputSelector
) -> torch.Tensor:
    return _input_gradient(model, x, target, output)[0] * x


def _guided(
    model: nn.Module, x: torch.Tensor, target: Target, output: OutputSelector
) -> torch.Tensor:
    with guided_relus(model):
        return _input_gradient(model, x, target, output)[0]


def _smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    output: OutputSelector,
    n_samples: int = 50,
    noise_level: float = 0.15,
    seed: int | None = None,
    internal_batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Mean input gradient over ``n_samples`` copies ``x + noise``, noise ~ N(0, sigma^2).

    ``sigma = noise_level * (max - min)`` of each image. The noise of sample ``k`` for the whole
    batch is drawn as one ``torch.randn(x.shape)`` call (CPU generator), samples in order, so
    the result does not depend on ``internal_batch_size``.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
    if not noise_level >= 0:
        raise ValueError(f"noise_level must be >= 0, got {noise_level!r}.")
    batch = _batch_size(internal_batch_size)
    generator = None
    if seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    targets = _clean_targets(model, x, target, output)
    n = x.shape[0]
    flat = x.reshape(n, -1)
    sigma = (noise_level * (flat.max(dim=1).values - flat.min(dim=1).values)).view(n, 1, 1, 1)
    total = torch.zeros_like(x)
    per_group = max(1, batch // n)
    for group in _chunks(n_samples, per_group):
        noise = torch.stack(
            [
                torch.randn(x.shape, generator=generator, dtype=torch.float32)
                for _ in range(group.stop - group.start)
            ]
        ).to(device=x.device, dtype=x.dtype)
        noisy = (x.unsqueeze(0) + noise * sigma).reshape(-1, *x.shape[1:])
        copies = noisy.shape[0]
        for part in _chunks(copies, batch):
            idx = range(part.start, part.stop)
            grad, _ = _input_gradient(
                model, noisy[part], [targets[j % n] for j in idx], output, clean=False
            )
            index = torch.arange(part.start, part.stop, device=x.device) % n
            total.index_add_(0, index, grad)
            if progress is not None:
                progress(group.start * n + part.stop, n_samples * n)
    return total / n_samples


def integration_nodes(
    n_steps: int, integration: str = "gausslegendre"
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``alphas`` in [0, 1] and weights of a quadrature of ``f`` over [0, 1].

    ``"gausslegendre"`` matches captum's nodes and weights. The Riemann rules use ``n_steps``
    equal steps of ``1 / n_steps`` (left, right, middle points); ``"riemann_trapezoid"`` puts
    ``n_steps`` nodes on ``linspace(0, 1)`` with weights ``1 / (n_steps - 1)`` (halved at the
    ends), which sum to exactly 1 (captum's trapezoid weights use ``1 / n_steps`` instead).

    Returns:
        ``(alphas, weights)``, float64 arrays of length ``n_steps``.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive int, got {n_steps!r}.")
    key = integration.lower()
    if key == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return 0.5 * (1 + nodes), 0.5 * weights
    if key.startswith("riemann_") and n_steps < 2:
        raise ValueError("The Riemann rules need n_steps >= 2.")
    n = n_steps
    if key == "riemann_left":
        return np.arange(n) / n, np.full(n, 1 / n)
    if key == "riemann_right":
        return np.arange(1, n + 1) / n, np.full(n, 1 / n)
    if key == "riemann_middle":
        return (np.arange(n) + 0.5) / n, np.full(n, 1 / n)
    if key == "riemann_trapezoid":
        weights = np.full(n, 1 / (n - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0, 1, n), weights
    raise ValueError(
        f"Unknown integration {integration!r}; use 'gausslegendre', 'riemann_left', "
        "'riemann_right', 'riemann_middle' or 'riemann_trapezoid'."
    )


def _integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    output: OutputSelector,
    baseline: float | torch.Tensor | None = None,
    n_steps: int = 50,
    integration: str = "gausslegendre",
    internal_batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """``(x - b) * sum_s w_s * grad(b + alpha_s (x - b))``, copies in steps-major order."""
    batch = _batch_size(internal_batch_size)
    alphas, weights = integration_nodes(n_steps, integration)
    if baseline is None:
        base = torch.zeros_like(x)
    else:
        base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
    targets = _clean_targets(model, x, target, output)
    n = x.shape[0]
    delta = x - base
    alpha_t = torch.as_tensor(alphas, dtype=x.dtype, device=x.device)
    weight_t = torch.as_tensor(weights, dtype=torch.float32, device=x.device).to(x.dtype)
    total = torch.zeros_like(x)
    for part in _chunks(n_steps * n, batch):
        flat = torch.arange(part.start, part.stop, device=x.device)
        step, image = flat // n, flat % n
        scaled = base[image] + alpha_t[step].view(-1, 1, 1, 1) * delta[image]
        grad, _ = _input_gradient(
            model, scaled, [targets[i] for i in image.tolist()], output, clean=False
        )
        total.index_add_(0, image, grad * weight_t[step].view(-1, 1, 1, 1))
        if progress is not None:
            progress(part.stop, n_steps * n)
    return total * delta


def _guided_gradcam(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    output: OutputSelector,
    layer: LayerRef | None = None,
) -> torch.Tensor:
    """Guided backpropagation times the GradCAM map of ``layer`` (``[0, 1]``, input size)."""
    from .cam import cam  # lazy: the CAM family is optional for the other methods

    if layer is None:  # a detector's or segmenter's heads are not on the path: its backbone
        layer = default_layer(model, x[:1]) if model_family(model) else list(conv_layers(model))[-1]
    # The guided forward pass computes the plain scores, so the targets resolve on it.
    with borrowed(model), _gradients_on(), guided_relus(model):
        guided, targets = _input_gradient(model, x, target, output)
    kwargs: dict[str, Any] = {} if output is None else {"output": output}
    maps = cam(model, x, layer, method="GradCAM", target=targets, **kwargs)
    maps_t = torch.as_tensor(np.asarray(maps), dtype=guided.dtype, device=guided.device)
    if maps_t.shape != (x.shape[0], *x.shape[2:]):
        raise RuntimeError(
            f"GradCAM returned maps of shape {tuple(maps_t.shape)}, expected "
            f"{(x.shape[0], *x.shape[2:])}."
        )
    return guided * maps_t.unsqueeze(1)


_METHOD_FUNCS: dict[str, Callable[..., torch.Tensor]] = {
    "vanilla": _vanilla,
    "guided": _guided,
    "smoothgrad": _smoothgrad,
    "integrated_gradients": _integrated_gradients,
    "gradient_x_input": _gradient_x_input,
}


# --------------------------------------------------------------------------------------------
# Guided backpropagation through nn.ReLU modules
# --------------------------------------------------------------------------------------------


class _PositiveGradient(torch.autograd.Function):
    """Identity forward; backward passes only the positive part of the gradient.

    Placed after a ReLU, whose own backward masks by its forward input being positive, the
    gradient reaching the ReLU's input is ``clamp(g, min=0) * (input > 0)``: guided backprop.
    """

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor) -> torch.Tensor:
        return y.clone()  # a fresh tensor, so in-place ops downstream are allowed

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp(min=0)


class _GuidedReluInPlace(torch.autograd.Function):
    """A ReLU applied in place (``x.relu_()``, ``F.relu(x, inplace=True)``) with the guided
    rule in its backward: ``clamp(g, min=0) * (x > 0)``. The same tensor comes back, so code
    that ignores the result of the in-place call still uses the guided one."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.mark_dirty(x)
        return x.clamp_(min=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (positive,) = ctx.saved_tensors
        return grad.clamp(min=0) * positive


_RELU_FUNCTIONS = frozenset({"relu", "relu_"})


class _GuidedFunctionalRelus(TorchFunctionMode):
    """Applies the guided rule to ReLUs run as functions (``F.relu``, ``torch.relu``,
    ``x.relu()``, in place too) outside ``nn.ReLU`` modules, which module hooks cannot reach
    (torchvision's DenseNet applies its last ReLU so); counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # > 0 while an nn.ReLU module runs (its hook applies the rule)
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if (self.depth == 0 and name in _RELU_FUNCTIONS and args
                and isinstance(args[0], torch.Tensor) and args[0].requires_grad):
            self.count += 1
            in_place = name == "relu_" or kwargs.get("inplace") is True or (
                len(args) > 1 and args[1] is True)
            if in_place:
                return _GuidedReluInPlace.apply(args[0])
            return _PositiveGradient.apply(func(*args, **kwargs))
        return func(*args, **kwargs)


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[None]:
    """Inside the block, every ReLU of ``model`` backpropagates guided gradients.

    ``nn.ReLU`` modules get forward hooks (removed on exit, whatever happens) that follow each
    call with :class:`_PositiveGradient`; works with ``ReLU(inplace=True)`` and with a ReLU
    module called several times. ReLUs applied as functions (``F.relu``, ``torch.relu``,
    ``x.relu()``, in place or not) get the same rule through a ``TorchFunctionMode`` active
    only inside the block. (captum's ``GuidedBackprop`` hooks modules only, so on such models
    its result silently differs: the functional ReLUs stay unguided.)

    Raises:
        GuidedBackpropError: no ReLU ran at all in the forward pass (guided backpropagation
            would equal the plain gradient).
    """
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    functional = _GuidedFunctionalRelus()
    module_calls = [0]

    def enter(module: nn.Module, inputs: tuple) -> None:
        functional.depth += 1

    def leave(module: nn.Module, inputs: tuple, out: torch.Tensor) -> torch.Tensor:
        functional.depth -= 1
        module_calls[0] += 1
        return _PositiveGradient.apply(out)

    handles = []
    try:
        for relu in relus:
            handles.append(relu.register_forward_pre_hook(enter))
            handles.append(relu.register_forward_hook(leave))
        with functional:
            yield
    finally:
        for handle in handles:
            handle.remove()
    if module_calls[0] == 0 and functional.count == 0:
        raise GuidedBackpropError(
            f"No ReLU ran in {type(model).__name__}'s forward pass, so guided backpropagation "
            "would equal the plain gradient. Use saliency method 'vanilla' (or a model with "
            "ReLU activations)."
        )
