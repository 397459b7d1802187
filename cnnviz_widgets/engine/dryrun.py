"""Observe a model's forward pass once: which modules run, in what order, with what output shape.

Used for the forward order of ``conv_layers`` and for choosing default layers. The trace runs
without gradients in eval mode on the model's own device and dtype, and leaves the model as it
was (see :mod:`.borrow`).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .borrow import borrowed
from .detection import backbone_scope
from .devices import model_device, model_dtype
from .tokens import token_default_layer


@dataclass(frozen=True)
class Trace:
    """What one forward pass did.

    Attributes:
        call_order: qualified names of the modules in the order of their first call.
        output_shapes: ``{name: shape}`` of each module's first tensor output (absent for
            modules whose output is not a tensor).
    """

    call_order: tuple[str, ...]
    output_shapes: dict[str, tuple[int, ...]]


def trace_modules(model: nn.Module, x: torch.Tensor) -> Trace:
    """Run ``model(x)`` once (no grad, eval mode) and record each module's first call."""
    with borrowed(model), tracing(model) as trace, torch.no_grad():
        model(x)
    return trace


@contextlib.contextmanager
def tracing(model: nn.Module) -> Iterator[Trace]:
    """Record, in the returned :class:`Trace`, each module's first call during the forward
    passes run inside the block (hooks removed on exit, whatever happens). Used by
    :func:`trace_modules`, and by passes that record something else at the same time."""
    trace = Trace((), {})
    order: list[str] = []
    handles = []

    def make_hook(name: str):
        def hook(module: nn.Module, inputs: tuple, output: object) -> None:
            if name in trace.output_shapes or name in order:
                return
            order.append(name)
            if isinstance(output, torch.Tensor):
                trace.output_shapes[name] = tuple(output.shape)

        return hook

    try:
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_hook(make_hook(name)))
        yield trace
    finally:
        for handle in handles:
            handle.remove()
        object.__setattr__(trace, "call_order", tuple(order))


def first_conv_channels(model: nn.Module) -> int:
    """Input channels of the first Conv2d in definition order (3 when there is none)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return 3


# Input sizes tried for the order dry run: small first (cheap), then the ImageNet size for
# models that need it (vision transformers, Inception's minimum of 75 px).
_DRY_RUN_SIZES = (64, 224, 299)

_order_cache: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, dict[str, int]]] = (
    weakref.WeakKeyDictionary()
)


def _structure_key(model: nn.Module) -> tuple:
    return tuple((name, id(module)) for name, module in model.named_modules())


def order_known(model: nn.Module) -> bool:
    """Whether :func:`execution_order` of ``model`` is cached (no dry run would run)."""
    cached = _order_cache.get(model)
    return cached is not None and cached[0] == _structure_key(model)


def remember_order(model: nn.Module, trace: Trace) -> dict[str, int]:
    """``trace``'s call order as :func:`execution_order` gives it, cached as ``model``'s: a
    whole forward pass that traced every module (an explorer's first pass) makes the dry run
    unneeded."""
    order = {name: i for i, name in enumerate(trace.call_order)}
    with contextlib.suppress(TypeError):  # a model that cannot be weakly referenced
        _order_cache[model] = (_structure_key(model), order)
    return order


def execution_order(model: nn.Module) -> dict[str, int]:
    """Qualified module name -> index of its first call in a forward pass of a zero image.

    Cached per model while its module structure is unchanged. Returns ``{}`` if no image of
    (64, 224, 299) px with the first conv's channel count, 3 or 1 channels runs through it.
    """
    key = _structure_key(model)
    cached = _order_cache.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    order: dict[str, int] = {}
    device, dtype = model_device(model), model_dtype(model)
    # the first conv in definition order usually takes the image; if not, RGB or grey does
    channel_options = dict.fromkeys((first_conv_channels(model), 3, 1))
    attempts = [(c, s) for c in channel_options for s in _DRY_RUN_SIZES]
    for channels, size in attempts:
        x = torch.zeros(1, channels, size, size, device=device, dtype=dtype)
        try:
            trace = trace_modules(model, x)
        except Exception:
            continue
        order = {name: i for i, name in enumerate(trace.call_order)}
        break
    # a model that cannot be weakly referenced is simply not cached
    with contextlib.suppress(TypeError):
        _order_cache[model] = (key, order)
    return order


# Modules whose output grid is not the network's own (resampled to a fixed size, or a no-op):
# a CAM at such a layer shows the pooling, not the features, so they are never the default.
_NOT_A_FEATURE_LAYER = (
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
)


def default_layer(
    model: nn.Module, x: torch.Tensor | None = None, trace: Trace | None = None
) -> str:
    """The layer a CAM uses when none is named: the last one whose output is still a grid.

    Among the modules in the order they finish during a dry run (of ``x``, or of a zero image
    of 224 px), the last whose output is ``(N, C, H, W)`` with ``H * W > 1``; adaptive pooling,
    dropout and identity layers are passed over. A container finishes after its children, so a
    block is preferred to its last sub-layer (``layer4`` for a ResNet, ``features`` for VGG and
    DenseNet, ``Mixed_7c`` for Inception v3), the layers the reference libraries recommend.
    Transformers (token outputs) get the first norm of their last block instead
    (:func:`~cnnviz_widgets.engine.cam.tokens.token_default_layer`: ``encoder.layers.
    encoder_layer_11.ln_1`` for torchvision's ``vit_b_16``, ``features.7.1.norm1`` for
    ``swin_t``), as pytorch-grad-cam recommends; a CAM there folds the tokens into a grid.
    Torchvision detectors and segmenters get the last such layer of their backbone
    (:func:`~cnnviz_widgets.engine.detection.backbone_scope`: ``backbone.body.layer4`` for
    Faster R-CNN, RetinaNet and FCOS on ResNet-50, ``backbone.layer4`` for FCN/DeepLabV3),
    not of their heads, whose outputs are per proposal or per class.

    ``trace``: a :class:`Trace` of a forward pass already run (of ``x``), so that none is run
    again here.

    Raises:
        ValueError: no module outputs a spatial grid (e.g. a vision transformer without a
            token-to-grid reshape); the message says what to pass instead.
    """
    if trace is not None:
        return _default_from_trace(model, trace, None if x is None else tuple(x.shape))
    if x is None:
        channels = first_conv_channels(model)
        side = getattr(model, "image_size", 224)  # torchvision's ViT takes only its own size
        side = side if isinstance(side, int) and not isinstance(side, bool) else 224
        device, dtype = model_device(model), model_dtype(model)
        x = torch.zeros(1, channels, side, side, device=device, dtype=dtype)
    return _default_from_trace(model, trace_modules(model, x), tuple(x.shape))


def _default_from_trace(model: nn.Module, trace: Trace, shape: tuple[int, ...] | None) -> str:
    token_layer = token_default_layer(model, trace.call_order, trace.output_shapes)
    if token_layer is not None:
        return token_layer
    modules = dict(model.named_modules())

    def grid(name: str) -> bool:
        shape = trace.output_shapes.get(name)
        return shape is not None and len(shape) == 4 and shape[2] * shape[3] > 1

    def in_pooled_branch(name: str) -> bool:
        # inside a branching block (not a plain Sequential) whose own output has no grid:
        # a branch of Inception's Mixed_7a at 75 px, not the network's main path
        parts = name.split(".")
        parents = (".".join(parts[:i]) for i in range(1, len(parts)))
        return any(
            not isinstance(modules[p], (nn.Sequential, nn.ModuleList, nn.ModuleDict))
            and not grid(p)
            for p in parents
        )

    candidates = [
        name
        for name in trace.call_order
        if grid(name) and not isinstance(modules[name], _NOT_A_FEATURE_LAYER)
    ]
    main_path = [name for name in candidates if not in_pooled_branch(name)]
    ranked = main_path or candidates
    scope = backbone_scope(model)  # detectors, segmenters: their backbone, not their heads

    def in_scope(names: list[str]) -> list[str]:
        return [n for n in names if any(n == p or n.startswith(p) for p in scope)]

    # a backbone returning a dict (a U-Net's {"out": ...}) looks like a pooled branch to the
    # main-path rule; the backbone scope comes first
    ranked = in_scope(ranked) or in_scope(candidates) or ranked
    if not ranked:
        raise ValueError(
            f"No layer of {type(model).__name__} outputs a spatial grid (N, C, H, W) for an "
            f"input of shape {shape}, so there is no default layer for a class "
            "activation map. Name the layer explicitly, or use a larger input."
        )
    return ranked[-1]

