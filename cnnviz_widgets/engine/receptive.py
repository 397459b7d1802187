"""Receptive fields: which input pixels a unit of a layer can see.

Found from the model's graph (``torch.fx`` symbolic trace, which runs nothing and leaves the
model untouched) by composing, along every path from the input, the geometry of convolutions
and pooling layers (Araujo, Norris and Sim, "Computing receptive fields of convolutional neural
networks", Distill 2019). Per axis, with ``k = dilation * (kernel - 1) + 1``::

    size'  = size + (k - 1) * jump
    jump'  = jump * stride
    start' = start + ((k - 1) / 2 - padding) * jump

``start`` is the centre of unit 0's field in input-pixel coordinates (input pixel ``i`` covers
``[i, i + 1)``, so the input itself has size 1, jump 1, start 0.5), and unit ``i`` sees
``[start - size / 2 + i * jump, start + size / 2 + i * jump)``: the same convention as
``receptiveFieldBox`` in ``js/src/zoom.ts``, which draws it.

Where branches meet (residual additions, concatenation, element-wise products) the field is
the union of theirs. Branches pooled to a single value (squeeze-and-excitation gates, which see
the whole image) are left out of that union, so the field shown is that of the spatial path.
A layer after an operation of unknown geometry (upsampling, reshapes, permutes, a model fx
cannot trace) gets no field; the explorer then outlines the proportional position instead.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .detection import input_resize
from .layers import LayerRef, resolve_layers

Pair = tuple[float, float]


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a layer's units, per axis ``(y, x)``, in input pixels.

    Attributes:
        size: extent of one unit's field (px; before clipping to the image).
        jump: distance between the fields of neighbouring units (px), the layer's total stride.
        start: centre of unit ``(0, 0)``'s field (px; 0.5 is the centre of input pixel 0).
    """

    size: Pair
    jump: Pair
    start: Pair

    def box(self, row: int, col: int) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` of unit ``(row, col)``'s field, unclipped."""
        y0 = self.start[0] - self.size[0] / 2 + row * self.jump[0]
        x0 = self.start[1] - self.size[1] / 2 + col * self.jump[1]
        return x0, y0, x0 + self.size[1], y0 + self.size[0]

    def to_json(self) -> dict[str, list[float]]:
        """``{"size": [y, x], "jump": [y, x], "start": [y, x]}`` for the front end."""
        return {"size": list(self.size), "jump": list(self.jump), "start": list(self.start)}


INPUT_FIELD = ReceptiveField(size=(1.0, 1.0), jump=(1.0, 1.0), start=(0.5, 0.5))

_UNKNOWN = object()
"""Spatial data whose field was lost (an operation of unknown geometry)."""
_GLOBAL = object()
"""Data pooled over the whole image (one value per channel)."""

_ELEMENTWISE_MODULES = (
    nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.LocalResponseNorm,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
    nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity,
)
_ELEMENTWISE_FUNCTIONS = {
    operator.add, operator.iadd, operator.mul, operator.imul, operator.sub, operator.isub,
    operator.truediv, operator.itruediv, operator.neg,
    torch.add, torch.mul, torch.sub, torch.div, torch.cat, torch.relu, torch.relu_,
    torch.sigmoid, torch.tanh, torch.clamp, torch.clone,
    F.relu, F.relu_, F.relu6, F.leaky_relu, F.gelu, F.silu, F.hardswish, F.hardsigmoid,
    F.hardtanh, F.dropout, F.batch_norm, F.sigmoid, F.tanh, F.elu,
}
_ELEMENTWISE_METHODS = {
    "add", "add_", "mul", "mul_", "sub", "sub_", "div", "div_", "relu", "relu_", "sigmoid",
    "sigmoid_", "tanh", "clamp", "clamp_", "contiguous", "clone", "float", "to", "type_as",
}
_GLOBAL_MODULES = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_GLOBAL_FUNCTIONS = {F.adaptive_avg_pool2d, F.adaptive_max_pool2d}
_RESAMPLE_FUNCTIONS = {F.interpolate, F.upsample, F.upsample_bilinear, F.upsample_nearest}
"""Resampling keeps a pooled value global (DeepLabV3's ASPP pooling branch broadcasts its
pooled features back over the grid); on a spatial grid its geometry is not followed."""


def _pair(v: Any) -> Pair:
    if isinstance(v, (tuple, list)):
        return float(v[0]), float(v[-1])
    return float(v), float(v)


def _per_axis(value: Callable[[int], float]) -> Pair:
    """``(value(0), value(1))``: a pair computed the same way on both axes."""
    return value(0), value(1)


def _compose(
    rf: ReceptiveField, kernel: Any, stride: Any, padding: Any, dilation: Any = 1
) -> ReceptiveField:
    """The field after a sliding window (convolution or pooling) over ``rf``'s grid."""
    k, s, d = _pair(kernel), _pair(stride), _pair(dilation)
    span = _per_axis(lambda i: d[i] * (k[i] - 1) + 1)
    pad: Pair
    if padding == "same":
        pad = _per_axis(lambda i: math.floor((span[i] - 1) / 2))
    elif padding == "valid":
        pad = (0.0, 0.0)
    else:
        pad = _pair(padding)
    return ReceptiveField(
        size=_per_axis(lambda i: rf.size[i] + (span[i] - 1) * rf.jump[i]),
        jump=_per_axis(lambda i: rf.jump[i] * s[i]),
        start=_per_axis(lambda i: rf.start[i] + ((span[i] - 1) / 2 - pad[i]) * rf.jump[i]),
    )


def _union(fields: Sequence[Any]) -> Any:
    """Union of the spatial fields among ``fields`` (globals and constants left out)."""
    if any(f is _UNKNOWN for f in fields):
        return _UNKNOWN
    spatial = [f for f in fields if isinstance(f, ReceptiveField)]
    if not spatial:
        return _GLOBAL if any(f is _GLOBAL for f in fields) else None
    first = spatial[0]
    if any(f.jump != first.jump for f in spatial):
        return _UNKNOWN  # grids of different strides: not one field per unit
    lo = [min(f.start[i] - f.size[i] / 2 for f in spatial) for i in (0, 1)]
    hi = [max(f.start[i] + f.size[i] / 2 for f in spatial) for i in (0, 1)]
    return ReceptiveField(
        size=(hi[0] - lo[0], hi[1] - lo[1]),
        jump=first.jump,
        start=((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2),
    )


def _flat_args(args: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for a in args:
        if isinstance(a, (list, tuple)):
            out.extend(_flat_args(a))
        else:
            out.append(a)
    return out


def _window_args(
    fn: Any, args: tuple, kwargs: dict, attribute: Any
) -> tuple[Any, Any, Any, Any] | None:
    """``(kernel, stride, padding, dilation)`` of a functional conv/pool call, or None."""
    def get(i: int, name: str, default: Any) -> Any:
        return args[i] if len(args) > i else kwargs.get(name, default)

    if fn is F.conv2d:
        weight = get(1, "weight", None)
        if not (isinstance(weight, torch.fx.Node) and weight.op == "get_attr"):
            return None
        try:
            shape = attribute(str(weight.target)).shape
        except AttributeError:
            return None
        return tuple(shape[-2:]), get(3, "stride", 1), get(4, "padding", 0), get(5, "dilation", 1)
    if fn in (F.max_pool2d, F.avg_pool2d):
        kernel = get(1, "kernel_size", None)
        stride = get(2, "stride", None) or kernel
        dilation = get(4, "dilation", 1) if fn is F.max_pool2d else 1
        return kernel, stride, get(3, "padding", 0), dilation
    return None


def _module_field(module: nn.Module, inputs: list[Any]) -> Any:
    src = _union(inputs)
    if not isinstance(src, ReceptiveField):
        return src if src is not None else _UNKNOWN
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
        return _compose(src, module.kernel_size, module.stride, module.padding, module.dilation)
    if isinstance(module, nn.AvgPool2d):
        return _compose(src, module.kernel_size, module.stride, module.padding)
    if isinstance(module, _GLOBAL_MODULES):
        return _GLOBAL
    if isinstance(module, _ELEMENTWISE_MODULES):
        return src
    return _UNKNOWN


def receptive_fields(
    model: nn.Module,
    layers: LayerRef | Sequence[LayerRef] | None = None,
    *,
    containers: bool = False,
    input_size: tuple[int, int] | None = None,
) -> dict[str, ReceptiveField]:
    """Receptive field of each of ``layers`` (default: every leaf module) that has one.

    Args:
        model: the network; traced symbolically (nothing runs, nothing is changed).
        layers: names or modules. Fields are found for modules that are single steps of the
            traced graph (convolutions, pooling, activations, ...); a module called several
            times gets the field of its first call.
        containers: also give modules made of others (a ResNet block, a ``Sequential``) the
            field of their output: that of the last step of their first call.
        input_size: ``(H, W)`` of the images the model is called with. Needed for a
            torchvision detector, which resizes every image before its ``backbone`` (by a
            factor that depends on the size): its backbone's fields are found on the resized
            image and scaled back to input pixels. Without it a detector has no fields.
            Other models ignore it.

    Returns:
        ``{name: ReceptiveField}`` for the layers whose field is known; empty when the model
        cannot be traced (data-dependent control flow) and is not a detector with
        ``input_size``. Layers without a known field are left out rather than given a wrong
        one (a detector's heads, which run on proposals).
    """
    wanted = None if layers is None else set(resolve_layers(model, layers))
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception:  # models fx cannot trace: a detector's backbone, else no fields
        return _detector_fields(model, wanted, containers, input_size)
    return _traced_fields(model, traced, wanted, containers)


def _detector_fields(
    model: nn.Module,
    wanted: set[str] | None,
    containers: bool,
    input_size: tuple[int, int] | None,
) -> dict[str, ReceptiveField]:
    """Fields of a detector's ``backbone`` layers, in input pixels (see ``input_size``)."""
    if input_size is None:
        return {}
    ratio = input_resize(model, input_size)
    if ratio is None:
        return {}
    backbone = model.get_submodule("backbone")
    try:
        traced = torch.fx.symbolic_trace(backbone)
    except Exception:
        return {}
    prefix = "backbone."
    inner = None if wanted is None else {
        n[len(prefix):] for n in wanted if n.startswith(prefix)
    }
    found = _traced_fields(backbone, traced, inner, containers)
    ry, rx = ratio
    return {
        prefix + name: ReceptiveField(
            size=(f.size[0] * ry, f.size[1] * rx),
            jump=(f.jump[0] * ry, f.jump[1] * rx),
            start=(f.start[0] * ry, f.start[1] * rx),
        )
        for name, f in found.items()
    }


def _traced_fields(
    model: nn.Module,
    traced: torch.fx.GraphModule,
    wanted: set[str] | None,
    containers: bool,
) -> dict[str, ReceptiveField]:
    """Fields of ``model``'s modules from its fx graph ``traced`` (see :func:`receptive_fields`)."""
    graph = traced.graph

    def attribute(target: str) -> Any:
        obj: Any = traced
        for part in target.split("."):
            obj = getattr(obj, part)
        return obj

    modules = dict(model.named_modules())
    fields: dict[torch.fx.Node, Any] = {}
    found: dict[str, ReceptiveField] = {}
    first_input = True
    last_in_scope: dict[str, Any] = {}  # container name -> field of its latest step so far
    for node in graph.nodes:
        inputs = [fields.get(a) for a in _flat_args(node.args) if isinstance(a, torch.fx.Node)]
        inputs += [
            fields.get(a) for a in _flat_args(node.kwargs.values()) if isinstance(a, torch.fx.Node)
        ]
        if node.op == "placeholder":
            field: Any = INPUT_FIELD if first_input else None
            first_input = False
        elif node.op == "call_module":
            field = _module_field(modules[str(node.target)], inputs)
            name = str(node.target)
            if (
                isinstance(field, ReceptiveField)
                and name not in found
                and (wanted is None or name in wanted)
            ):
                found[name] = field
        elif node.op == "call_function":
            field = _function_field(node, inputs, attribute)
        elif node.op == "call_method":
            field = _union(inputs) if node.target in _ELEMENTWISE_METHODS else (
                _UNKNOWN if any(i is not None for i in inputs) else None
            )
        else:  # get_attr (constants, parameters), output
            field = None
        fields[node] = field
        if containers and node.op != "output":
            for scope in node.meta.get("nn_module_stack", {}):
                if "@" not in scope and scope in modules and scope not in found:
                    last_in_scope[scope] = field  # '@n' scopes are later calls
    for name, field in last_in_scope.items():
        if isinstance(field, ReceptiveField) and (wanted is None or name in wanted):
            found[name] = field
    return found


def _function_field(node: torch.fx.Node, inputs: list[Any], attribute: Any) -> Any:
    fn = node.target
    src = _union(inputs)
    if fn in _GLOBAL_FUNCTIONS:
        return _GLOBAL if src is not None else None
    if fn in _RESAMPLE_FUNCTIONS and src is _GLOBAL:
        return _GLOBAL
    window = _window_args(fn, tuple(node.args), dict(node.kwargs), attribute)
    if window is not None:
        if not isinstance(src, ReceptiveField):
            return _UNKNOWN
        return _compose(src, *window)
    if fn in _ELEMENTWISE_FUNCTIONS:
        return src
    if fn is getattr or src is None:
        return None  # a tensor's attribute (its shape), or arithmetic on constants
    return _UNKNOWN
