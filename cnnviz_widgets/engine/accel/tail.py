"""The part of a network after one layer, to run on many replacements of that layer's output.

AblationCAM scores a batch of copies of one layer output, each with one channel ablated. The
network before the layer gives the same result for every copy, so :func:`split_after` traces
the model with ``torch.fx`` (the layer kept as one call) and cuts its graph after the layer:
:class:`Tail` then runs only the nodes after it, on the batch of copies, with every value from
before the layer that they use (the input, a skip connection) computed once for the sample and
expanded over the copies. The model's own modules are called (no copy of any weight is made)
and the model is not changed.

Where the model cannot be traced, calls the layer more than once, or the layer's output is not
a plain tensor node, :func:`split_after` returns ``None`` and the caller runs the whole model.

When the layer's output reaches a ``Linear`` only through per-channel operations (ReLU-like
activations, pooling, BatchNorm, eval-mode dropout) and a ``flatten(x, 1)`` (VGG's and
AlexNet's classifier after ``features``), a copy that differs from the sample in one channel
changes only that channel's block of the ``Linear``'s inputs. :meth:`Tail.one_channel` then
gets the ``Linear``'s output of each copy as the sample's plus the product of that block with
the matching columns of the weight: ``P`` instead of ``C * P`` multiply-adds per output (for
VGG at 224 px, 49 instead of 25,088), and runs the rest of the tail as usual.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

PER_CHANNEL_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.Identity,
    nn.Dropout,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.BatchNorm2d,
)
"""Modules that map each channel of ``(N, C, H, W)`` on its own (in eval mode)."""

PER_CHANNEL_FUNCTIONS = (
    torch.relu,
    F.relu,
    F.relu6,
    F.gelu,
    F.silu,
    F.hardswish,
    torch.sigmoid,
    torch.tanh,
    F.max_pool2d,
    F.avg_pool2d,
    F.adaptive_avg_pool2d,
    F.adaptive_max_pool2d,
)
"""Functions that do (their other arguments constants)."""


class _ToLinear:
    """A tail that reaches a ``Linear`` only through per-channel operations and a flatten:
    ``prefix`` (layer output -> the ``Linear``'s input), ``linear``, ``rest`` (its output ->
    the model's output)."""

    def __init__(self, prefix: fx.GraphModule, linear: nn.Linear, rest: fx.GraphModule) -> None:
        self.prefix = prefix
        self.linear = linear
        self.rest = rest
        self._base: tuple[Any, torch.Tensor, torch.Tensor] | None = None

    @staticmethod
    def _per_channel(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
        if node.op == "call_module":
            module = modules[str(node.target)]
            return isinstance(module, PER_CHANNEL_MODULES) and not module.training
        if node.op == "call_function" and node.target in PER_CHANNEL_FUNCTIONS:
            others = list(node.args[1:]) + list(node.kwargs.values())
            return not any(isinstance(a, fx.Node) for a in others)
        return False

    @staticmethod
    def _flatten(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
        if node.op == "call_module":
            module = modules[str(node.target)]
            return (
                isinstance(module, nn.Flatten)
                and bool(module.start_dim == 1)
                and bool(module.end_dim == -1)
            )
        if node.op == "call_function" and node.target is torch.flatten:
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            return bool(start == 1 and end == -1)
        return False

    @classmethod
    def cut(cls, model: nn.Module, tail: fx.GraphModule) -> _ToLinear | None:
        """The three parts of ``tail`` (one input, the layer's output), or ``None``."""
        modules = dict(tail.named_modules())
        nodes = list(tail.graph.nodes)
        node = nodes[0]  # the placeholder
        flattened = False
        while len(node.users) == 1:
            (user,) = node.users
            if not flattened and cls._per_channel(user, modules):
                pass
            elif not flattened and cls._flatten(user, modules):
                flattened = True
            elif flattened and user.op == "call_module" and isinstance(
                modules[str(user.target)], (nn.Dropout, nn.Identity)
            ):
                if modules[str(user.target)].training:
                    return None
            elif flattened and user.op == "call_module" and type(
                modules[str(user.target)]
            ) is nn.Linear:
                linear = modules[str(user.target)]
                return cls(_subgraph(tail, nodes[0], node), linear, _rest(tail, user))
            else:
                return None
            node = user
        return None

    def __call__(
        self, sample: torch.Tensor, copies: torch.Tensor, channels: torch.Tensor
    ) -> Any:
        """The tail's output for ``copies`` (``(B, C, H, W)``) that differ from ``sample``
        (``(1, C, H, W)``) at most in channel ``channels[b]`` each."""
        count, c = copies.shape[:2]
        key = (sample.data_ptr(), tuple(sample.shape), sample.dtype)
        if self._base is None or self._base[0] != key:
            features = self.prefix(sample.clone())  # (1, F); clones: in-place ReLUs
            self._base = (key, features, self.linear(features))
        _, base, base_out = self._base
        features = self.prefix(copies.clone())  # (B, F): per-channel operations only, cheap
        per = features.shape[1] // c
        rows = torch.arange(count, device=copies.device)
        delta = (features - base).view(count, c, per)[rows, channels]  # (B, P)
        weight = self.linear.weight.view(self.linear.out_features, c, per)
        # each copy's block of columns (a strided view, no copy) times its block of inputs
        change = torch.stack([weight[:, k] @ delta[b] for b, k in enumerate(channels.tolist())])
        return self.rest(base_out + change)


def _subgraph(tail: fx.GraphModule, start: fx.Node, end: fx.Node) -> fx.GraphModule:
    """``tail``'s nodes from its placeholder ``start`` to ``end`` (a chain), as a module."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    node = start
    while True:
        env[node] = graph.node_copy(node, lambda n: env[n])
        if node is end:
            break
        (node,) = node.users
    graph.output(env[end])
    return fx.GraphModule(tail, graph)


def _rest(tail: fx.GraphModule, linear: fx.Node) -> fx.GraphModule:
    """``tail``'s nodes after ``linear``, with ``linear``'s output as the input."""
    nodes = list(tail.graph.nodes)
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {linear: graph.placeholder("linear_output")}
    for node in nodes[nodes.index(linear) + 1 :]:
        env[node] = graph.node_copy(node, lambda n: env[n])
    return fx.GraphModule(tail, graph)


class _LayerLeaf(fx.Tracer):
    """Traces as usual but keeps the module named ``layer`` as one call."""

    def __init__(self, layer: str) -> None:
        super().__init__()
        self.layer = layer

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name == self.layer or super().is_leaf_module(
            m, module_qualified_name
        )


class Tail:
    """The nodes of a traced model after one layer's call, and those up to it.

    Args:
        model: the model (its modules are called, not copied).
        graph: the traced graph (the layer kept as one ``call_module`` node).
        layer_node: that node.

    :meth:`prepare` runs the part up to the layer once on one sample and keeps what the tail
    needs from it (needed only where :attr:`needs_sample`: the tail uses values from before the
    layer besides its output); calling the tail then maps ``(B, ...)`` replacements of the
    layer's output to the model's output for each.
    """

    def __init__(self, model: nn.Module, graph: fx.Graph, layer_node: fx.Node) -> None:
        nodes = list(graph.nodes)
        cut = nodes.index(layer_node)
        before, after = nodes[: cut + 1], nodes[cut + 1 :]
        used = {arg for node in after for arg in node.all_input_nodes}
        inputs = [n for n in before if n in used and n is not layer_node]
        head, tail = fx.Graph(), fx.Graph()
        env: dict[fx.Node, fx.Node] = {}
        for node in before:
            env[node] = head.node_copy(node, lambda n: env[n])
        head.output((env[layer_node], *(env[n] for n in inputs)))
        env = {layer_node: tail.placeholder("layer_output")}
        for i, node in enumerate(inputs):
            env[node] = tail.placeholder(f"before_{i}")
        for node in after:
            env[node] = tail.node_copy(node, lambda n: env[n])
        self.head = fx.GraphModule(model, head)
        self.module = fx.GraphModule(model, tail)
        self.needs_sample = bool(inputs)
        self._values: tuple[Any, ...] = ()
        self.linear: _ToLinear | None = None if inputs else _ToLinear.cut(model, self.module)

    def prepare(self, sample: torch.Tensor) -> torch.Tensor:
        """Run the network up to and including the layer on ``sample`` (``(1, ...)``), keep
        the values the tail needs, and return the layer's output."""
        layer_output, *values = self.head(sample)
        self._values = tuple(values)
        return layer_output

    def one_channel(
        self, sample: torch.Tensor, copies: torch.Tensor, channels: torch.Tensor
    ) -> Any:
        """The model's output for ``copies`` that differ from the layer's output ``sample``
        (``(1, C, H, W)``) at most in one channel each, ``channels[b]`` (``(B,)``), through the
        ``Linear`` by its changed block only; only where :attr:`linear` is set."""
        assert self.linear is not None
        return self.linear(sample, copies, channels)

    def __call__(self, replacements: torch.Tensor) -> Any:
        """The model's output for each of ``(B, ...)`` layer outputs (after :meth:`prepare`);
        the kept values of the sample are expanded over the ``B`` (a view, no copy)."""
        count = replacements.shape[0]
        expanded = [
            v.expand(count, *v.shape[1:])
            if isinstance(v, torch.Tensor) and v.ndim and v.shape[0] == 1
            else v
            for v in self._values
        ]
        return self.module(replacements, *expanded)


def split_after(model: nn.Module, layer: str) -> Tail | None:
    """The part of ``model`` after the module named ``layer`` (see :class:`Tail`), or ``None``
    when the model cannot be traced with that layer as one call, or the layer is called more
    or less than once."""
    try:
        graph = _LayerLeaf(layer).trace(model)
    except Exception:  # any failure to trace: the caller runs the whole model
        return None
    calls = [n for n in graph.nodes if n.op == "call_module" and n.target == layer]
    if len(calls) != 1:
        return None
    try:
        return Tail(model, graph, calls[0])
    except Exception:  # a graph that cannot be cut and rebuilt
        return None
