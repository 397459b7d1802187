"""How :func:`.evaluate.evaluate` calls each metric on one batch: the :class:`Context` of a
batch, and the adapters (``compute(ctx, options) -> (N,)``) that the registry's entries hold."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..targets import OutputSelector
from .explain import Method
from .road import road_means
from .sanity import model_randomisation, randomised_copy


@dataclass
class Context:
    """One batch as the metrics see it.

    Attributes:
        model: the user's model (borrowed by every metric, never changed).
        x: ``(N, C, H, W)`` model-ready images on the model's device.
        maps: ``(N, H, W)`` float32 maps of ``method`` in [0, 1] (min-max per image), same device.
        classes: ``(N,)`` int64 explained classes.
        method: the resolved method (to explain again: robustness, randomisation).
        masks: ``(N, H, W)`` bool object masks, or ``None``.
        boxes: ``(N, 4)`` object boxes ``(x0, y0, x1, y1)``, or ``None``.
        seed: the seed for this batch (noise, random classes).
        run_seed: the evaluation's seed (the one randomised model of an evaluation).
        output: which part of the model's output holds the logits.
        cache: shared by every batch of one evaluation (the randomised model copy).
        local: shared by the metrics of this batch and method (ROAD's two orders, computed
            together once for ``road_morf``, ``road_lerf`` and ``road_combined``).
    """

    model: nn.Module
    x: torch.Tensor
    maps: torch.Tensor
    classes: torch.Tensor
    method: Method
    masks: torch.Tensor | None = None
    boxes: torch.Tensor | None = None
    seed: int = 0
    run_seed: int = 0
    output: OutputSelector = None
    cache: dict[str, Any] = field(default_factory=dict)
    local: dict[Any, Any] = field(default_factory=dict)


Compute = Callable[[Context, Mapping[str, Any]], np.ndarray]


def _seed(ctx: Context, options: Mapping[str, Any]) -> dict[str, Any]:
    opts = dict(options)
    opts.setdefault("seed", ctx.seed)
    return opts


def on_model(fn: Callable[..., np.ndarray]) -> Compute:
    """The adapter of ``fn(model, x, maps, classes, output=..., **options)`` (faithfulness)."""

    def compute(c: Context, o: Mapping[str, Any]) -> np.ndarray:
        return fn(c.model, c.x, c.maps, c.classes.tolist(), output=c.output, **o)

    return compute


def on_maps(fn: Callable[..., np.ndarray], objects: str = "") -> Compute:
    """The adapter of ``fn(maps, **options)``, or with ``objects`` ``"masks"``/``"boxes"``
    ``fn(maps, masks_or_boxes, **options)`` (localisation, complexity)."""

    def compute(c: Context, o: Mapping[str, Any]) -> np.ndarray:
        if not objects:
            return fn(c.maps, **o)
        found = c.masks if objects == "masks" else c.boxes
        if found is None:
            raise ValueError(f"This metric needs object {objects} (or the other) in the data.")
        return np.asarray(fn(c.maps, found, **o), dtype=np.float64)

    return compute


def on_method(fn: Callable[..., np.ndarray]) -> Compute:
    """The adapter of ``fn(model, x, explain, classes, maps=..., output=..., seed=...,
    **options)``: the metrics that explain again (robustness, randomisation); the seed is the
    batch's unless the options give one."""

    def compute(c: Context, o: Mapping[str, Any]) -> np.ndarray:
        explain, classes = c.method.explain, c.classes.tolist()
        return fn(c.model, c.x, explain, classes, maps=c.maps, output=c.output, **_seed(c, o))

    return compute


def road_order(order: str) -> Compute:
    def compute(ctx: Context, options: Mapping[str, Any]) -> np.ndarray:
        opts = _seed(ctx, options)
        key = ("road", tuple(sorted((k, repr(v)) for k, v in opts.items())))
        if key not in ctx.local:  # both orders in one pass, shared by the three ROAD metrics
            classes = ctx.classes.tolist()
            ctx.local[key] = road_means(
                ("most", "least"), ctx.model, ctx.x, ctx.maps, classes, output=ctx.output, **opts
            )
        means = ctx.local[key]
        if order == "combined":
            return (means["least"] - means["most"]) / 2
        return means[order]

    return compute


def model_randomisation_adapter(ctx: Context, options: Mapping[str, Any]) -> np.ndarray:
    """:func:`.sanity.model_randomisation` against one randomised copy of the model per
    evaluation (seeded by the evaluation's seed, or the options' ``seed``)."""
    opts = dict(options)
    layers = opts.pop("layers", None)
    opts.setdefault("seed", ctx.run_seed)
    key = f"randomised:{opts['seed']}:{layers}"
    if key not in ctx.cache:
        ctx.cache[key] = randomised_copy(ctx.model, ctx.x, opts["seed"], layers)
    return on_method(model_randomisation)(ctx, {**opts, "randomised": ctx.cache[key]})
