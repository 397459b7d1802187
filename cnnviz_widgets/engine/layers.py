"""Finding layers in a model: Conv2d layers in forward order, and name-or-module resolution.

A layer is named by its qualified name from ``model.named_modules()`` (``"features.3"``,
``"layer4.1.conv2"``); wherever a layer is taken, the module object itself is accepted too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from torch import nn

from .dryrun import execution_order
from .levels import LEVEL_SEP, split_ref
from .models import check_model

LayerRef = str | nn.Module


class LayerNotFoundError(KeyError):
    """A layer name (or module) that is not part of the model.

    Subclasses :class:`KeyError` so ``except KeyError`` keeps working; ``str()`` gives the plain
    message (``KeyError`` would wrap it in quotes).
    """

    def __init__(self, message: str, *, name: str = "", suggestions: Sequence[str] = ()):
        super().__init__(message)
        self.message = message
        self.name = name
        self.suggestions = list(suggestions)

    def __str__(self) -> str:
        return self.message


class NoConvLayersError(ValueError):
    """The model contains no ``nn.Conv2d`` layer."""


def named_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every sub-module of ``model`` keyed by its qualified name (the root itself excluded)."""
    check_model(model)
    return {name: module for name, module in model.named_modules() if name}


def close_matches(name: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """Up to ``n`` candidate names closest to ``name`` (difflib ratio, then substring hits)."""
    candidates = list(candidates)
    matches = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
    if len(matches) < n and name:
        for candidate in candidates:
            if name in candidate and candidate not in matches:
                matches.append(candidate)
            if len(matches) >= n:
                break
    return matches


def resolve_layer(model: nn.Module, layer: LayerRef) -> tuple[str, nn.Module]:
    """Return ``(qualified_name, module)`` for a layer given by name or by module object.

    Raises:
        LayerNotFoundError: the name or module is not part of ``model``; the message lists the
            closest valid names.
        TypeError: ``model`` is not a module instance, or ``layer`` is neither a string nor
            an ``nn.Module``.
    """
    check_model(model)
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise LayerNotFoundError(
            f"The module {type(layer).__name__} passed as a layer is not part of this model "
            f"({type(model).__name__}). Pass a module taken from this model, or a layer name "
            "from model.named_modules().",
            name=type(layer).__name__,
        )
    if not isinstance(layer, str):
        raise TypeError(
            f"A layer must be a name (str) or an nn.Module of the model, got "
            f"{type(layer).__name__}."
        )
    modules = dict(model.named_modules())
    if layer in modules:
        return layer, modules[layer]
    names = [n for n in modules if n]
    suggestions = close_matches(layer, names)
    hint = (
        "Closest layer names: " + ", ".join(repr(s) for s in suggestions) + "."
        if suggestions
        else "Valid names start with: " + ", ".join(repr(n) for n in names[:8]) + "."
    )
    raise LayerNotFoundError(
        f"No layer named {layer!r} in {type(model).__name__}. {hint} "
        "Use cnnviz_widgets.conv_layers(model) or model.named_modules() to list the layers.",
        name=layer,
        suggestions=suggestions,
    )


def resolve_layers(model: nn.Module, layers: LayerRef | Sequence[LayerRef]) -> dict[str, nn.Module]:
    """Resolve one layer or a sequence of layers to ``{qualified_name: module}``, keeping order.

    A name may end in ``":key"`` to take one entry of a module's dict or list output (an FPN
    level such as ``"backbone:0"``, see :mod:`~cnnviz_widgets.engine.levels`); it maps to the
    module, and the key is checked when the module runs.
    """
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    modules = dict(named_layers(model))  # once, not once per layer (ResNet-50: 53 convs)
    resolved: dict[str, nn.Module] = {}
    for layer in layers:
        if isinstance(layer, str) and layer in modules:
            resolved[layer] = modules[layer]
            continue
        if isinstance(layer, str) and LEVEL_SEP in layer:
            base, key = split_ref(layer)
            name, module = resolve_layer(model, base)
            resolved[f"{name}{LEVEL_SEP}{key}"] = module
            continue
        name, module = resolve_layer(model, layer)  # module objects, and the errors
        resolved[name] = module
    return resolved


def conv_layers(model: nn.Module) -> dict[str, nn.Conv2d]:
    """Every ``nn.Conv2d`` of ``model`` keyed by qualified name, in forward execution order.

    The order is observed once per model structure by a small dry run (one forward of a zero
    image, no gradients, eval mode, model left as it was) and cached (a whole pass with the
    default layers, such as an explorer's first, caches it too, so no dry run is needed after
    it: :func:`~.features.whole_pass`); where the model cannot be
    dry-run with an image (unusual input signature), definition order (``named_modules()``) is
    used, which is the forward order of every torchvision classification model. Convs that the
    dry run never calls are left out: the auxiliary heads of Inception v3 and GoogLeNet
    (``AuxLogits``, ``aux1``/``aux2``) run only in training mode, so they have no feature maps;
    :func:`~cnnviz_widgets.engine.kernels.kernels` still takes them by name.

    Raises:
        NoConvLayersError: the model has no Conv2d layer.
    """
    return in_forward_order(all_convs(model), execution_order(model))


def all_convs(model: nn.Module) -> dict[str, nn.Conv2d]:
    """Every ``nn.Conv2d`` of ``model`` keyed by qualified name, in definition order.

    Raises:
        NoConvLayersError: the model has no Conv2d layer.
    """
    check_model(model)
    convs = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d) and name
    }
    if not convs:
        raise NoConvLayersError(
            f"{type(model).__name__} has no nn.Conv2d layer, so there are no kernels or "
            "convolutional feature maps to show. Pass a convolutional model (for example a "
            "torchvision ResNet or VGG), or name the layers you want explicitly in "
            "feature_maps(model, x, layers=[...])."
        )
    return convs


def in_forward_order(convs: dict[str, nn.Conv2d], order: dict[str, int]) -> dict[str, nn.Conv2d]:
    """``convs`` sorted by ``order`` (:func:`~.dryrun.execution_order`), without those the
    forward pass never calls; unchanged when ``order`` is empty (no dry run possible)."""
    ranked = sorted(convs, key=lambda n: order.get(n, len(order)))
    if order:  # convs the eval-mode forward never calls (auxiliary heads) have no feature map
        ranked = [name for name in ranked if name in order] or ranked
    return {name: convs[name] for name in ranked}
