"""Layers whose output is several feature maps: FPN levels and other dict or list outputs.

A detector's backbone returns an ordered dict of pyramid levels (torchvision's Faster R-CNN:
``{"0": (N, 256, H/4, W/4), ..., "pool": (N, 256, H/64, W/64)}``); other modules return lists
or tuples of tensors. Such a layer is used two ways:

* **named levels**: ``"backbone:0"``, ``"backbone:pool"``, ``"head.module:2"`` name one entry
  (dict key, or list index) of a module's output; wherever a layer name is taken, such a name
  is accepted, and :func:`~cnnviz_widgets.engine.features.feature_maps` of the bare module
  name returns every entry under these names.
* **folded into a grid**: a CAM of the bare module name folds the levels into one
  ``(N, C, h, w)`` grid with :func:`fold_levels`, pytorch-grad-cam's
  ``fasterrcnn_reshape_transform`` (absolute values, bilinear resize to the smallest level,
  channels concatenated), unless ``reshape=`` is given (it then receives the dict of levels,
  as the reference's reshape functions do). Gradient methods fold the levels' gradients the
  same way, as the reference applies its reshape to both (it cannot take gradients of a dict
  output at all): the folded gradients are absolute values, so GradCAM's channel weights are
  never negative there. For signed gradients take one level (``"backbone:0"``) or a tensor
  layer (the default layer, ``backbone.body``'s last stage).

:class:`LevelCapture` is :class:`~cnnviz_widgets.engine.capture.Capture` that records such
layers: a named level as a tensor in ``outputs``, a whole structured output as ``{key: tensor}``
in ``levels``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .capture import Capture, LayerOutputError, _StopForward

LEVEL_SEP = ":"
"""Separates a module's qualified name from the key of one entry of its output."""

Levels = dict[str, torch.Tensor]


class LevelNotFoundError(LayerOutputError):
    """A ``"module:key"`` name whose key is not an entry of the module's output."""


def split_ref(name: str) -> tuple[str, str | None]:
    """``"backbone:pool"`` -> ``("backbone", "pool")``; ``"layer4"`` -> ``("layer4", None)``."""
    module, sep, key = name.partition(LEVEL_SEP)
    return (module, key) if sep else (name, None)


def level_tensors(output: Any) -> Levels | None:
    """``{key: tensor}`` of a dict, list or tuple whose entries are all tensors, else ``None``.

    List and tuple entries are keyed by their index (``"0"``, ``"1"``, ...).
    """
    if isinstance(output, torch.Tensor):
        return None
    if isinstance(output, Mapping):
        items = [(str(k), v) for k, v in output.items()]
    elif isinstance(output, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(output)]
    else:
        return None
    if not items or not all(isinstance(v, torch.Tensor) for _, v in items):
        return None
    return dict(items)


def _key_of(output: Any, key: str) -> Any:
    """The container key for ``key`` (a dict key by its string form, or a list index)."""
    if isinstance(output, Mapping):
        for k in output:
            if str(k) == key:
                return k
        return None
    if isinstance(output, (list, tuple)) and key.isdigit() and int(key) < len(output):
        return int(key)
    return None


def _describe_keys(output: Any) -> str:
    levels = level_tensors(output)
    if levels is None:
        return f"its output is a {type(output).__name__}, which has no named entries"
    return "its entries are " + ", ".join(repr(k) for k in levels)


def select_level(output: Any, key: str, name: str) -> torch.Tensor:
    """Entry ``key`` of a module's dict/list output, for the layer name ``name``."""
    k = _key_of(output, key)
    value = None if k is None else output[k]
    if not isinstance(value, torch.Tensor):
        module = split_ref(name)[0]
        raise LevelNotFoundError(
            f"Layer {name!r} names entry {key!r} of {module!r}'s output, but "
            f"{_describe_keys(output)}. Use one of those after {LEVEL_SEP!r}, or the bare name "
            f"{module!r} for all of them."
        )
    return value


def replace_level(output: Any, key: str, value: torch.Tensor) -> Any:
    """A copy of a dict/list/tuple ``output`` with entry ``key`` replaced by ``value``."""
    k = _key_of(output, key)
    if isinstance(output, Mapping):
        copied = OrderedDict(output) if isinstance(output, OrderedDict) else dict(output)
        copied[k] = value
        return copied
    items = list(output)
    items[k] = value
    return type(output)(items) if isinstance(output, tuple) else items


def rebuild(output: Any, values: Levels) -> Any:
    """``output``'s container (dict, list or tuple) holding ``values`` instead."""
    if isinstance(output, Mapping):
        copied = OrderedDict(output) if isinstance(output, OrderedDict) else dict(output)
        for k in list(copied):
            copied[k] = values[str(k)]
        return copied
    items = [values[str(i)] for i in range(len(output))]
    return type(output)(items) if isinstance(output, tuple) else items


def fold_levels(levels: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> torch.Tensor:
    """Several ``(N, C_i, h_i, w_i)`` levels -> one ``(N, sum C_i, h, w)`` grid.

    pytorch-grad-cam's ``fasterrcnn_reshape_transform``, operation for operation: every level's
    absolute value resized bilinearly (``align_corners=False``) to the size of the smallest
    level (``"pool"`` of an FPN), then concatenated along channels in the levels' order.

    Raises:
        LayerOutputError: a level that is not ``(N, C, h, w)``, or levels of different ``N``.
    """
    tensors = list(levels.values()) if isinstance(levels, Mapping) else list(levels)
    if not tensors or any(t.ndim != 4 for t in tensors) or len({t.shape[0] for t in tensors}) > 1:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise LayerOutputError(
            f"Only (N, C, h, w) levels of one batch fold into a grid; got {shapes}. Name one "
            f"level with 'module{LEVEL_SEP}key', or pass reshape= a function of the levels."
        )
    smallest = min(tensors, key=lambda t: t.shape[-2] * t.shape[-1])
    size = smallest.shape[-2:]
    return torch.cat(
        [F.interpolate(torch.abs(t), size, mode="bilinear") for t in tensors], dim=1
    )


def structured_hint(name: str, output: Any) -> str:
    """How to use a layer whose output holds several tensors, for error messages."""
    levels = level_tensors(output)
    if levels is None:
        return ""
    keys = list(levels)
    return (
        f" Its output holds {len(keys)} tensors: name one as {name}{LEVEL_SEP}{keys[0]!s} "
        f"(entries: {', '.join(keys)})."
    )


class LevelCapture(Capture):
    """:class:`~cnnviz_widgets.engine.capture.Capture` that also takes ``"module:key"`` names
    (one entry of a dict/list output, recorded in ``outputs`` like a tensor layer) and modules
    whose output is a dict/list/tuple of tensors (all entries, recorded in ``levels[name]`` as
    ``{key: tensor}``); same modes, same hook removal.

    ``layers`` maps each name (plain or ``"module:key"``) to its module.
    """

    def __init__(self, model: nn.Module, layers: Mapping[str, nn.Module], **options: Any) -> None:
        super().__init__(model, layers, **options)
        self.levels: dict[str, Levels] = {}

    def _keep(self, name: str, tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What is recorded of ``tensor`` and what the network continues with (``None``: the
        tensor itself), as :class:`Capture` does."""
        if not self.grad:
            if self.reduce is not None:
                return self.reduce(name, tensor.detach()), None
            return tensor.detach().clone(), None
        if not tensor.requires_grad:
            tensor = tensor.detach().requires_grad_(True)
        return tensor, tensor.clone()

    def _recorded(self, name: str) -> None:
        done = len(self.outputs) + len(self.levels)
        if not self.grad and self.on_record is not None:
            self.on_record(name, done, len(self.layers))
        if self.stop_early and done == len(self.layers):
            raise _StopForward

    def _hook_for(self, name: str):
        key = split_ref(name)[1]

        def hook(module: nn.Module, inputs: tuple, output: Any) -> Any:
            if name in self.outputs or name in self.levels:
                return None  # a reused module: keep its first call
            if key is not None or isinstance(output, torch.Tensor):
                part = output if key is None else select_level(output, key, name)
                self.outputs[name], onward = self._keep(name, part)
                self._recorded(name)
                if onward is None:
                    return None
                return onward if key is None else replace_level(output, key, onward)
            levels = level_tensors(output)
            if levels is None:
                raise LayerOutputError(
                    f"Layer {name!r} ({type(module).__name__}) returns "
                    f"{type(output).__name__}, not a tensor (nor a dict or list of tensors), so "
                    "it has no feature map. Pick a layer whose output is a tensor, for example "
                    "one of its sub-layers."
                )
            kept = {k: self._keep(f"{name}{LEVEL_SEP}{k}", v) for k, v in levels.items()}
            self.levels[name] = {k: v[0] for k, v in kept.items()}
            self._recorded(name)
            if not self.grad:
                return None
            return rebuild(output, {k: v[1] for k, v in kept.items() if v[1] is not None})

        return hook

    def require_all(self) -> None:
        self._require([n for n in self.layers if n not in self.outputs and n not in self.levels])

    def recorded(self) -> list[torch.Tensor | Levels]:
        """Each layer's record in the layers' order: a tensor, or ``{key: tensor}`` levels."""
        self.require_all()
        return [self.levels[n] if n in self.levels else self.outputs[n] for n in self.layers]

    def outputs_list(self) -> list[torch.Tensor]:
        """Every recorded tensor, levels expanded in order (for ``torch.autograd.grad``)."""
        flat: list[torch.Tensor] = []
        for item in self.recorded():
            flat.extend(item.values() if isinstance(item, dict) else [item])
        return flat

    def regroup(self, flat: Sequence[torch.Tensor]) -> list[torch.Tensor | Levels]:
        """Tensors in :meth:`outputs_list` order (e.g. their gradients) grouped as
        :meth:`recorded`."""
        grouped: list[torch.Tensor | Levels] = []
        i = 0
        for item in self.recorded():
            if isinstance(item, dict):
                grouped.append(dict(zip(item, flat[i : i + len(item)], strict=True)))
                i += len(item)
            else:
                grouped.append(flat[i])
                i += 1
        return grouped
