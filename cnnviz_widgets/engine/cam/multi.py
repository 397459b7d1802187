"""Many targets of one image: :func:`cam_per_target`, one forward pass and one backward each.

Explaining ``K`` boxes of a detection (or ``K`` classes, or ``K`` regions) with :func:`~.api.cam`
costs ``K`` forward passes; here the layers are captured in one forward pass and the graph is
kept (``retain_graph``) for ``K`` backward passes, one per target. The ``K`` maps are then
computed as a batch of ``K`` copies of the image sharing its activations, so every method sees
exactly what :func:`~.api.cam` would give it for that target, and the maps equal ``K`` calls
of :func:`~.api.cam`. Gradient-free, target-free methods (EigenCAM, KPCA_CAM, FEM) compute
one map and repeat it; the perturbation methods (ScoreCAM, AblationCAM) and FullGrad still run
their own passes per target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..borrow import borrowed
from ..dryrun import default_layer
from ..layers import LayerRef, resolve_layers
from ..targets import OutputSelector, Target, TargetError, resolve_targets, select_scores
from ..targets import target_scores as scores_of
from ..tokens import auto_reshape
from .api import _check_args, _in_boxes, _numpy, _prepared
from .base import CamMethod, LayerData, Reshape, Run
from .pipeline import (
    _as_feature_map,
    check_layers_for,
    forward_capture,
    layer_data,
    layer_gradients,
    shaped_layers,
)
from .progress import Progress, ProgressArg
from .registry import method_class
from .scaling import aggregate, minmax, scale_maps


def _fan_out(data: LayerData, k: int, grads: torch.Tensor | None) -> LayerData:
    """``data`` of one image as ``k`` copies sharing its tensors (``expand``, no copy), with
    one gradient per copy."""
    def rep(t: torch.Tensor) -> torch.Tensor:
        return t.expand(k, *t.shape[1:])

    return LayerData(data.name, data.module, rep(data.output), rep(data.activations), grads)


def _per_target_data(
    model: nn.Module,
    x: torch.Tensor,
    layers: dict[str, nn.Module],
    method: CamMethod,
    targets: Sequence[Target],
    output: OutputSelector,
    reshape: Reshape | None,
) -> tuple[dict[str, LayerData], list[Any] | None, torch.Tensor | None]:
    """One forward pass over ``layers`` and one backward per target: ``{name: LayerData}`` of
    ``K`` copies of the image, the ``K`` resolved targets and their ``(K,)`` scores. A method
    without targets gets one copy and no targets."""
    check_layers_for(method, layers)
    if not method.uses_targets:
        with torch.no_grad():
            cap, _ = forward_capture(model, x, layers, grad=False, stop_early=True)
        shaped = shaped_layers(layers, cap, reshape, 1)
        return layer_data(layers, cap, shaped, [None] * len(layers), reshape), None, None
    k = len(targets)
    per_target: list[list[Any]] = []
    with torch.inference_mode(False), torch.set_grad_enabled(method.uses_gradients):
        cap, result = forward_capture(model, x, layers, grad=method.uses_gradients)
        shaped = shaped_layers(layers, cap, reshape, 1)
        scores = select_scores(result, output)
        resolved = [resolve_targets(scores, t)[0] for t in targets]
        values = [scores_of(scores, [t]) for t in resolved]
        if method.uses_gradients:
            for i, value in enumerate(values):  # the graph is kept until the last target
                per_target.append(layer_gradients(value, cap, layers, retain_graph=i < k - 1))
    one = layer_data(layers, cap, shaped, [None] * len(layers), reshape)
    data = {}
    for j, (name, item) in enumerate(one.items()):
        grads = None
        if per_target:
            grads = torch.cat(
                [
                    _as_feature_map(name, layers[name], g[j], reshape).to(torch.float32)
                    for g in per_target
                ]
            )
        data[name] = _fan_out(item, k, grads)
    return data, resolved, torch.cat([v.detach().reshape(1) for v in values]).to(torch.float32)


def cam_per_target(
    model: nn.Module,
    x: torch.Tensor,
    layer: LayerRef | Sequence[LayerRef] | None,
    method: str = "GradCAM",
    targets: Sequence[Target] = (),
    *,
    output: OutputSelector = None,
    raw: bool = False,
    eigen_smooth: bool = False,
    batch_size: int = 32,
    progress: ProgressArg = None,
    reshape: Reshape | None = None,
    normalize_in_boxes: bool = False,
    **options: Any,
) -> np.ndarray:
    """One map per target for ONE image: ``K`` boxes of a detection, ``K`` regions or ``K``
    classes, from one forward pass and ``K`` backward passes (gradient methods).

    Map ``k`` equals ``cam(model, x, layer, method, targets[k], ...)``.

    Args:
        x: one image, ``(1, C, H, W)`` or ``(C, H, W)``.
        targets: ``K`` targets, each what ``cam``'s ``target=`` takes for one image: a
            ``BoxTarget`` (e.g. ``detections(model, x)[0].targets()``), a ``RegionTarget``, a
            class index or a callable.
        normalize_in_boxes: rescale map ``k`` inside the boxes of ``targets[k]`` (all
            ``BoxTarget``) and set it to 0 outside.
        others: as :func:`~cnnviz_widgets.engine.cam.cam` (no ``aug_smooth``).

    Returns:
        ``(K, H, W)`` float32 numpy array in [0, 1] at ``x``'s size (with ``raw=True``
        ``(K, h, w)`` raw maps of the single layer).

    Raises:
        ValueError: ``x`` holds more than one image, or no target is given.
        others: as :func:`~cnnviz_widgets.engine.cam.cam`.
    """
    impl = method_class(method)(**options)
    _check_args(batch_size, raw, False, normalize_in_boxes, None)
    if isinstance(targets, (str, bytes)) or not isinstance(targets, Sequence) or not targets:
        raise ValueError(
            f"targets must be a non-empty list of targets (one map each); got {targets!r}."
        )
    x = _prepared(model, x, list(targets))
    if x.shape[0] != 1:
        raise ValueError(
            f"cam_per_target explains several targets of ONE image; x holds {x.shape[0]}. "
            "Call it once per image (x[i:i + 1]), or use cam() with one target per image."
        )
    for t in targets:
        if isinstance(t, (list, tuple)):
            raise TargetError(
                f"Each entry of targets is one image's target; got a {type(t).__name__}. For "
                "several boxes in one map pass BoxTarget(labels, boxes)."
            )
    k = len(targets)
    size = (x.shape[-2], x.shape[-1])
    if impl.whole_model:
        with borrowed(model):
            full = impl.full_map(model, x.expand(k, *x.shape[1:]), list(targets), output,
                                 eigen_smooth)
        maps = full if raw else minmax(full)
        return _numpy(_in_boxes(maps, list(targets), normalize_in_boxes))
    layers = resolve_layers(model, default_layer(model, x) if layer is None else layer)
    if raw and len(layers) > 1:
        raise ValueError("raw=True needs a single layer (layers differ in resolution).")
    if reshape is None:
        reshape = auto_reshape(model, list(layers), size)
    with borrowed(model):
        data, resolved, values = _per_target_data(model, x, layers, impl, targets, output, reshape)
        copies = k if impl.uses_targets else 1  # target-free: one map, repeated
        bar = Progress(progress, sum(impl.work(d) for d in data.values()), desc=impl.name)
        run = Run(model, x.expand(copies, *x.shape[1:]), resolved, values, output, batch_size,
                  eigen_smooth, bar, reshape)
        try:
            raws = {name: impl.raw_map(d, run).clamp_min(0) for name, d in data.items()}
        finally:
            bar.close()
    if copies != k:
        raws = {name: m.expand(k, *m.shape[1:]) for name, m in raws.items()}
    if raw:
        (result,) = raws.values()
        return _numpy(result)
    result = aggregate([scale_maps(m, size) for m in raws.values()])
    return _numpy(_in_boxes(result, list(targets), normalize_in_boxes))
