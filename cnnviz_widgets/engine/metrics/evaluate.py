"""Metrics over a dataset: per-image values and bootstrap confidence intervals.

::

    from cnnviz_widgets.engine.metrics import evaluate

    result = evaluate(model, loader, ["GradCAM", "ScoreCAM"], ["road_combined", "sparseness"])
    result.summary            # records: method, metric, mean, 95 % interval, n, direction
    result.to_pandas()        # the same as a DataFrame (pandas needed)
    result.worst("GradCAM", "road_combined", k=5)   # dataset positions of the worst images

Data is read by :func:`.data.load_batches` (a DataLoader, a Dataset, an image folder, tensors).
Per batch, each method's maps are computed once, scaled to [0, 1] per image (min-max; CAM maps
already are), and every metric scores them. Under ``torchrun`` (``torch.distributed``
initialised) each process takes every ``world_size``-th batch and the per-image values are
gathered, so every process returns the same :class:`Evaluation` as one process would: the
batches are the same and each batch's seed depends only on ``seed`` and its position.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..inputs import prepare_input
from ..layers import LayerRef
from ..targets import OutputSelector
from ._common import class_targets
from .data import load_batches
from .explain import Method, MethodLike, resolve_method
from .localisation import box_masks
from .registry import METRICS, Context, metric_spec

ProgressLike = None | bool | str | Callable[[int, int], object]

# the batch starting at data position p of an evaluation with seed s uses seed s * stride + p
_SEED_STRIDE = 1_000_003


def bootstrap_interval(
    values: np.ndarray, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of the non-NaN ``values`` and its percentile-bootstrap confidence interval.

    ``n_boot`` resamples (with replacement, a seeded NumPy generator) of the values; the
    interval is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of their
    means. NaN for no value; a zero-width interval for one value.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if v.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return mean, float(low), float(high)


@dataclass
class Evaluation:
    """Per-image metric values of several methods over a dataset, and their summary.

    Attributes:
        methods: method names, in the order given.
        metrics: metric names, in the order given.
        indices: ``(N,)`` positions of the images in the data.
        targets: ``(N,)`` the explained classes.
        labels: ``(N,)`` the data's labels, or ``None``.
        values: ``{(method, metric): (N,) float64}``; NaN where a value is undefined.
        summary: one record per method and metric: ``method``, ``metric``, ``group``,
            ``higher_is_better``, ``n`` (non-NaN values), ``mean``, ``ci_low``, ``ci_high``.
        seconds: ``{(method, metric): seconds}`` spent on each metric, and
            ``{(method, "maps"): seconds}`` on the maps.
        confidence: the confidence level of the intervals.
    """

    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    indices: np.ndarray
    targets: np.ndarray
    labels: np.ndarray | None
    values: dict[tuple[str, str], np.ndarray]
    summary: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    confidence: float = 0.95

    def value(self, method: str, metric: str) -> np.ndarray:
        """``(N,)`` values of one method and metric, in :attr:`indices` order."""
        try:
            return self.values[(method, metric)]
        except KeyError:
            raise KeyError(
                f"No values for ({method!r}, {metric!r}); methods: {', '.join(self.methods)}; "
                f"metrics: {', '.join(self.metrics)}."
            ) from None

    def records(self) -> list[dict[str, Any]]:
        """One record per image, method and metric: ``index``, ``target``, ``label``,
        ``method``, ``metric``, ``value``."""
        rows = []
        for (method, metric), vals in self.values.items():
            for i, v in enumerate(vals):
                rows.append(
                    {
                        "index": int(self.indices[i]),
                        "target": int(self.targets[i]),
                        "label": None if self.labels is None else int(self.labels[i]),
                        "method": method,
                        "metric": metric,
                        "value": float(v),
                    }
                )
        return rows

    def to_pandas(self, per_image: bool = False) -> Any:
        """:attr:`summary` (or :meth:`records` with ``per_image=True``) as a DataFrame.

        Raises:
            ImportError: pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas() needs pandas: pip install pandas") from err
        return pd.DataFrame(self.records() if per_image else self.summary)

    def worst(self, method: str, metric: str, k: int = 5) -> list[int]:
        """Data positions of the ``k`` images where ``method`` scores worst on ``metric``
        (lowest values for a higher-is-better metric), NaN values last."""
        vals = self.value(method, metric)
        bad = -vals if METRICS[metric].higher_is_better else vals
        order = np.argsort(np.where(np.isnan(bad), -np.inf, bad), kind="stable")[::-1]
        return [int(self.indices[i]) for i in order[:k]]


def _progress_callback(progress: ProgressLike, total: int | None) -> tuple[Any, Any]:
    """``(update(done), close())`` for ``progress``."""
    if progress is None or progress is False:
        return (lambda done: None), (lambda: None)
    if progress is True or progress == "tqdm":
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="evaluate", unit="img")

        def update(done: int) -> None:
            bar.update(done - bar.n)

        return update, bar.close
    if callable(progress):
        fn = progress
        return (lambda done: fn(done, total if total is not None else -1)), (lambda: None)
    raise ValueError(f"progress must be None, True, 'tqdm' or a callable; got {progress!r}.")


def _size(data: Any) -> int | None:
    """How many images ``data`` holds, when that is known up front."""
    if isinstance(data, torch.Tensor):
        return int(data.shape[0])
    if isinstance(data, (tuple, list)) and data and isinstance(data[0], torch.Tensor):
        return int(data[0].shape[0])
    source = data.dataset if isinstance(data, torch.utils.data.DataLoader) else data
    if isinstance(source, torch.utils.data.Dataset) and hasattr(source, "__len__"):
        return len(source)
    return None


def _distributed() -> tuple[int, int]:
    """``(rank, world_size)`` of an initialised ``torch.distributed`` group, else ``(0, 1)``."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _minmax(maps: torch.Tensor) -> torch.Tensor:
    flat = maps.flatten(1)
    lo = flat.amin(dim=1).view(-1, 1, 1)
    span = (flat.amax(dim=1) - flat.amin(dim=1)).view(-1, 1, 1)
    return torch.where(span > 0, (maps - lo) / torch.where(span > 0, span, 1.0), maps - lo)


def _mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """``(N, 4)`` bounding boxes ``(x0, y0, x1, y1)`` (exclusive) of non-empty masks."""
    on = masks != 0
    cols, rows = on.any(dim=1), on.any(dim=2)
    w, h = cols.shape[1], rows.shape[1]
    x0 = cols.to(torch.int64).argmax(dim=1)
    y0 = rows.to(torch.int64).argmax(dim=1)
    x1 = w - cols.flip(1).to(torch.int64).argmax(dim=1)
    y1 = h - rows.flip(1).to(torch.int64).argmax(dim=1)
    return torch.stack([x0, y0, x1, y1], dim=1)


def evaluate(
    model: nn.Module,
    data: Any,
    methods: Sequence[MethodLike] | Mapping[str, MethodLike],
    metrics: Sequence[str] | None = None,
    layer: LayerRef | None = None,
    target: int | str | None = None,
    batch_size: int = 32,
    progress: ProgressLike = None,
    seed: int = 0,
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    transform: Callable[[Any], torch.Tensor] | None = None,
    num_workers: int = 0,
    n_boot: int = 1000,
    confidence: float = 0.95,
    output: OutputSelector = None,
) -> Evaluation:
    """Score attribution methods with metrics over a dataset.

    Args:
        model: the classifier (left exactly as it was).
        data: a ``DataLoader``, ``Dataset``, image folder or tensors
            (:func:`~cnnviz_widgets.engine.metrics.data.load_batches`); items carrying masks or
            boxes enable the localisation metrics.
        methods: CAM or saliency method names, or ``{name: method or explainer callable}``.
        metrics: metric names from :data:`~cnnviz_widgets.engine.metrics.registry.METRICS`
            (default: all of them, less the localisation ones when the data has no objects).
        layer: the CAM layer (default: each CAM method's default layer).
        target: ``None`` (each image's predicted class), a class index, or ``"label"`` (the
            data's labels).
        batch_size: images per batch (not for a ``DataLoader``).
        progress: ``True``/``"tqdm"`` for a progress bar (a notebook widget in Jupyter), or a
            callable ``progress(images_done, total)`` (``total`` is -1 when unknown); under
            ``torchrun`` only rank 0 reports, counting its own share.
        seed: seeds every random draw (ROAD's noise, max-sensitivity's perturbations, the
            randomised model, random classes) and the bootstrap.
        options: per-metric options, ``{"road_combined": {"noise": 0}, ...}``, over the
            registry's defaults.
        method_options: per-method options, ``{"smoothgrad": {"n_samples": 20}}``.
        transform: for an image folder, PIL image -> model-ready tensor.
        num_workers: ``DataLoader`` workers (not for a ``DataLoader``).
        n_boot: bootstrap resamples per interval.
        confidence: the intervals' confidence level.
        output: which part of the model's output holds the logits.

    Returns:
        An :class:`Evaluation` (identical on every process under ``torchrun``).
    """
    options = dict(options or {})
    method_options = dict(method_options or {})
    if isinstance(methods, Mapping):
        named = list(methods.items())
    else:
        named = [
            (m if isinstance(m, str) else getattr(m, "__name__", f"method{i}"), m)
            for i, m in enumerate(methods)
        ]
    if not named:
        raise ValueError("methods is empty: name at least one method.")
    requested = list(metrics) if metrics is not None else None
    for name in requested or []:
        metric_spec(name)
    unknown = set(options) - set(METRICS)
    if unknown:
        raise ValueError(f"options for unknown metric(s): {', '.join(sorted(unknown))}.")
    rank, world = _distributed()
    total = _size(data)
    update, close = _progress_callback(progress if rank == 0 else None, total)
    resolved: dict[str, Method] = {}
    chosen: list[str] = []
    cache: dict[str, Any] = {}
    parts: dict[tuple[str, str], list[np.ndarray]] = {}
    seconds: dict[tuple[str, str], float] = {}
    idx_parts: list[np.ndarray] = []
    target_parts: list[np.ndarray] = []
    label_parts: list[np.ndarray] = []
    has_labels = True
    done = 0
    try:
        for batch in load_batches(
            data,
            batch_size,
            transform=transform,
            num_workers=num_workers,
            shard=(rank, world) if world > 1 else None,
        ):
            position = int(batch.indices[0]) if batch.indices.numel() else done
            x = prepare_input(model, batch.images)
            masks = None if batch.masks is None else (batch.masks != 0).to(x.device)
            boxes = batch.boxes
            if boxes is None and masks is not None:
                boxes = _mask_boxes(masks)
            if masks is None and boxes is not None:
                masks = box_masks(boxes, (x.shape[2], x.shape[3]), x.device)
            if not chosen:
                chosen = (
                    requested
                    if requested is not None
                    else [n for n, s in METRICS.items() if not s.needs or masks is not None]
                )
            if masks is None:
                blind = [n for n in chosen if METRICS[n].needs == "masks"]
                if blind:
                    raise ValueError(
                        f"{', '.join(blind)} need(s) object masks or boxes in the data: give "
                        "items (image, label, mask) or (image, label, box), or leave them out."
                    )
            if target == "label":
                if batch.labels is None:
                    raise ValueError("target='label' needs labels in the data.")
                classes = batch.labels.to(x.device)
            else:
                if isinstance(target, str):
                    raise ValueError(f"target must be None, an int or 'label'; got {target!r}.")
                classes = class_targets(model, x, target, output)
            for name, method in named:
                if name not in resolved:
                    resolved[name] = resolve_method(
                        model, method, layer=layer, x=x, **method_options.get(name, {})
                    )
                m = resolved[name]
                start = time.perf_counter()
                maps = _minmax(m.explain(model, x, classes))
                seconds[(name, "maps")] = seconds.get((name, "maps"), 0.0) + (
                    time.perf_counter() - start
                )
                ctx = Context(
                    model,
                    x,
                    maps,
                    classes,
                    m,
                    masks=masks,
                    boxes=boxes,
                    seed=seed * _SEED_STRIDE + position,
                    output=output,
                    cache=cache,
                )
                for metric in chosen:
                    spec = METRICS[metric]
                    opts = {**spec.defaults, **options.get(metric, {})}
                    start = time.perf_counter()
                    vals = np.asarray(spec.compute(ctx, opts), dtype=np.float64)
                    key = (name, metric)
                    seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - start
                    parts.setdefault(key, []).append(vals)
            idx_parts.append(batch.indices.numpy())
            target_parts.append(classes.cpu().numpy())
            if batch.labels is None:
                has_labels = False
            else:
                label_parts.append(batch.labels.numpy())
            done += int(x.shape[0])
            update(done)
    finally:
        close()
    method_names = tuple(name for name, _ in named)
    local: dict[str, Any] = {
        "indices": np.concatenate(idx_parts) if idx_parts else np.empty(0, np.int64),
        "targets": np.concatenate(target_parts) if target_parts else np.empty(0, np.int64),
        "labels": np.concatenate(label_parts) if has_labels and label_parts else None,
        "values": {k: np.concatenate(v) for k, v in parts.items()},
        "seconds": seconds,
        "metrics": chosen,
    }
    if world > 1:
        local = _gather(local)
    order = np.argsort(local["indices"], kind="stable")
    values = {k: v[order] for k, v in local["values"].items()}
    metric_names = tuple(local["metrics"])
    summary = []
    for (method, metric), vals in values.items():
        spec = METRICS[metric]
        mean, low, high = bootstrap_interval(vals, n_boot, confidence, seed)
        summary.append(
            {
                "method": method,
                "metric": metric,
                "group": spec.group,
                "higher_is_better": spec.higher_is_better,
                "n": int((~np.isnan(vals)).sum()),
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
            }
        )
    labels = local["labels"]
    return Evaluation(
        methods=method_names,
        metrics=metric_names,
        indices=local["indices"][order],
        targets=local["targets"][order],
        labels=None if labels is None else labels[order],
        values=values,
        summary=summary,
        seconds=local["seconds"],
        confidence=confidence,
    )


def _gather(local: dict[str, Any]) -> dict[str, Any]:
    """Every process's partial results (``torch.distributed.all_gather_object``), merged."""
    dist = torch.distributed
    pieces: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(pieces, local)
    return merge_partial(pieces)


def merge_partial(pieces: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Merge the partial results of the processes of a distributed evaluation (each one's
    images, targets, labels, values and seconds), in any order: the caller sorts by index."""
    filled = [p for p in pieces if len(p["indices"])] or list(pieces[:1])
    merged: dict[str, Any] = {
        "indices": np.concatenate([p["indices"] for p in pieces]),
        "targets": np.concatenate([p["targets"] for p in pieces]),
        "labels": None
        if any(p["labels"] is None for p in filled)
        else np.concatenate([p["labels"] for p in filled]),
        "metrics": next((p["metrics"] for p in pieces if p["metrics"]), []),
        "values": {},
        "seconds": {},
    }
    keys = list(dict.fromkeys(k for p in pieces for k in p["values"]))
    for key in keys:
        merged["values"][key] = np.concatenate(
            [p["values"][key] for p in pieces if key in p["values"]]
        )
    for p in pieces:
        for key, sec in p["seconds"].items():
            merged["seconds"][key] = merged["seconds"].get(key, 0.0) + sec
    return merged
