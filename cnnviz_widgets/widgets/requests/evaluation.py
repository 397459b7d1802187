"""``evaluation_worst``: the images of a dataset evaluation where a method does worst.

``LayerExplorer(model, evaluation=evaluate(model, data, methods, metrics),
evaluation_data=data)`` shows the evaluation's summary (trait ``evaluation_summary``); a click
on one of its rows asks for the :data:`WORST` images where that method scores worst on that
metric: their dataset indices, values, explained classes and labels, in the order of
:meth:`Evaluation.worst` (the metric's worse end first, NaN last), and, with the data, a
thumbnail of each image (at most :data:`THUMB` pixels a side) with the method's map for the
explained class, computed as the evaluation computed it (same method, layer and class, scaled
to [0, 1]). The :class:`~cnnviz_widgets.engine.metrics.Evaluation` keeps no images: without
``evaluation_data`` the reply has none (``images: false``). The drill-down on screen is kept
in the trait ``shown_evaluation_worst``. A ``set_image`` message with ``evaluation_index``
makes one of the evaluated images the explorer's input (:func:`evaluation_image`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...engine.data import Source
from ...engine.inputs import IMAGENET_MEAN, IMAGENET_STD, LoadedImage
from ...engine.metrics import Evaluation
from ...engine.metrics.registry import METRICS
from ..cache import Reply
from ..serialize import stack_message
from ..subject import Subject
from .base import Job, MessageError, Params, RequestKind

WORST = 6
"""How many images a drill-down shows."""
THUMB = 96
"""Largest side of a drill-down's thumbnails, pixels (smaller images are sent as they are)."""


def _number(v: Any) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def better_of(metric: str) -> str:
    """``"higher"`` or ``"lower"``: which direction of ``metric`` is better."""
    return "higher" if METRICS[metric].higher_is_better else "lower"


def evaluation_summary(result: Evaluation) -> list[dict[str, Any]]:
    """The ``evaluation_summary`` trait: one record per method and metric of the summary:
    ``method``, ``metric``, ``group``, ``n``, ``mean``, ``ci_low``, ``ci_high`` (``None`` for
    NaN) and ``better`` (``"higher"`` or ``"lower"``)."""
    rows = []
    for r in result.summary:
        rows.append({
            "method": str(r["method"]),
            "metric": str(r["metric"]),
            "group": str(r.get("group", "")),
            "n": int(r.get("n", 0)),
            "mean": _number(r["mean"]),
            "ci_low": _number(r["ci_low"]),
            "ci_high": _number(r["ci_high"]),
            "better": "higher" if r["higher_is_better"] else "lower",
        })
    return rows


def check_evaluation(result: Any) -> Evaluation:
    """``result`` if it is an :class:`Evaluation`, else a TypeError naming the fix."""
    if not isinstance(result, Evaluation):
        raise TypeError(
            "evaluation= takes the result of evaluate(model, data, methods, metrics) (an "
            f"Evaluation); got {type(result).__name__}.")
    return result


class EvaluationSource:
    """The explorer's evaluation (kept on the :class:`~cnnviz_widgets.widgets.subject.Subject`)
    and, when given, the data it was computed on, to show its images.

    Args:
        result: what ``evaluate(model, data, methods, metrics)`` returned.
        data: what ``evaluate`` was given (a ``DataLoader``, ``Dataset``, image folder or
            tensors), or ``None``.

    Raises:
        TypeError: ``result`` is not an :class:`Evaluation`.
        ValueError: ``data`` has another number of items than the evaluation has images.
    """

    def __init__(self, result: Any, data: Any = None) -> None:
        self.result = check_evaluation(result)
        self.data: Source | None = None
        if data is not None:
            try:
                self.data = self.result.source(data)
            except ValueError as err:
                raise ValueError(f"evaluation_data: {err}") from None


def evaluation_image(subject: Subject, index: Any) -> LoadedImage:
    """Dataset item ``index`` of the explorer's evaluation data as an input image (the model
    input the evaluation explained, and its display RGB).

    Raises:
        MessageError: no evaluation data, or an index that is not an evaluated image.
    """
    source = subject.evaluation
    if source is None or source.data is None:
        raise MessageError("this explorer has no evaluation data: pass evaluation_data=data "
                           "(what evaluate(model, data, ...) was given) to LayerExplorer")
    if not isinstance(index, int) or isinstance(index, bool):
        raise MessageError(f"evaluation_index must be an integer; got {type(index).__name__}")
    try:
        source.result.rows([index])
    except ValueError as err:
        raise MessageError(str(err)) from None
    x, rgb = source.result.images(source.data, [index])
    transform = source.data.transform
    return LoadedImage(x[:1], rgb[0].numpy(), None, transform.mean or IMAGENET_MEAN,
                       transform.std or IMAGENET_STD)


def thumbnails(rgb: torch.Tensor, maps: torch.Tensor,
               side: int = THUMB) -> tuple[torch.Tensor, torch.Tensor]:
    """``(k, H, W, 3)`` uint8 images and their ``(k, H, W)`` maps shrunk to at most ``side``
    pixels a side (aspect kept; bilinear with antialiasing, images rounded back to uint8);
    images already that small are returned as they are."""
    h, w = int(rgb.shape[1]), int(rgb.shape[2])
    scale = side / max(h, w)
    if scale >= 1:
        return rgb, maps
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = F.interpolate(rgb.permute(0, 3, 1, 2).float(), size=size, mode="bilinear",
                          align_corners=False, antialias=True)
    small_rgb = small.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    small_maps = F.interpolate(maps[:, None].float(), size=size, mode="bilinear",
                               align_corners=False, antialias=True)[:, 0]
    return small_rgb, small_maps


class EvaluationWorst(RequestKind):
    """Reply meta: ``method``, ``metric``, ``better``, per image (worst first) ``indices``
    (dataset positions), ``values``, ``targets`` and ``labels`` (or ``None``) with their
    class names ``target_names`` and ``label_names``, ``n`` (images in the evaluation),
    ``layer`` (the CAM layer of the method, or ``None``) and ``images``: with the evaluation's
    data ``True``, ``rgb`` ``{shape: [k, h, w, 3]}`` (the thumbnails) and ``maps`` (a map stack
    of the method's maps over them); else ``False``. Buffers: the thumbnails, then the map
    stack's three."""

    kind = "evaluation_worst"
    per_image = False

    def key(self, p: Params) -> str:
        return f"evaluation_worst|{p['method']}|{p['metric']}"

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        source = subject.evaluation
        if source is None:
            raise MessageError("this explorer has no evaluation: pass evaluation=evaluate(model, "
                               "data, methods, metrics) to LayerExplorer")
        result = source.result
        method, metric = msg.get("method"), msg.get("metric")
        if not isinstance(method, str) or method not in result.methods:
            shown = method if isinstance(method, str) else type(method).__name__
            raise MessageError(f"the evaluation has no method {shown[:80]!r}; it has "
                               f"{list(result.methods)}")
        if not isinstance(metric, str) or (method, metric) not in result.values:
            shown = metric if isinstance(metric, str) else type(metric).__name__
            raise MessageError(f"the evaluation has no metric {shown[:80]!r} for {method!r}; it "
                               f"has {list(result.metrics)}")
        return {"method": method, "metric": metric}

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        source = subject.evaluation
        assert source is not None
        if source.data is None:
            return worst_reply(source.result, p["method"], p["metric"], subject.class_name)
        with subject.lock:  # the evaluation's model is the explorer's: one user at a time
            return worst_reply(source.result, p["method"], p["metric"], subject.class_name,
                               data=source.data, model=subject.model)


def worst_reply(result: Evaluation, method: str, metric: str,
                name: Callable[[int], str] = str, k: int = WORST, *,
                data: Source | None = None, model: nn.Module | None = None) -> Reply:
    """The reply of a drill-down (see :class:`EvaluationWorst`); ``name``: a class's name;
    with ``data`` (the evaluation's, :meth:`Evaluation.source`) and ``model``, the thumbnails
    and the method's maps."""
    indices = result.worst(method, metric, k)
    rows = result.rows(indices).tolist()
    values = result.value(method, metric)
    explainer = result.explainers.get(method) if model is None else result.explainer(model, method)
    meta: dict[str, Any] = {
        "method": method,
        "metric": metric,
        "better": better_of(metric),
        "indices": indices,
        "values": [_number(values[r]) for r in rows],
        "targets": [int(result.targets[r]) for r in rows],
        "labels": None if result.labels is None else [int(result.labels[r]) for r in rows],
        "target_names": [name(int(result.targets[r])) for r in rows],
        "label_names": None if result.labels is None else [
            name(int(result.labels[r])) for r in rows],
        "n": len(result.indices),
        "layer": result.layers.get(method) if explainer is None else explainer.layer,
        "images": False,
    }
    if data is None or model is None or explainer is None or not indices:
        return Reply(meta, [])
    x, rgb = result.images(data, indices)
    maps = result.maps(model, x, method, indices).detach().cpu()
    small_rgb, small_maps = thumbnails(rgb, maps)
    maps_meta, map_buffers = stack_message(torch.nan_to_num(small_maps))
    meta.update(images=True, rgb={"shape": [int(s) for s in small_rgb.shape]}, maps=maps_meta)
    return Reply(meta, [np.ascontiguousarray(small_rgb.numpy()).tobytes(), *map_buffers])
