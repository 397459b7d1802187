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
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn


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

    def prepare(self, sample: torch.Tensor) -> torch.Tensor:
        """Run the network up to and including the layer on ``sample`` (``(1, ...)``), keep
        the values the tail needs, and return the layer's output."""
        layer_output, *values = self.head(sample)
        self._values = tuple(values)
        return layer_output

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
