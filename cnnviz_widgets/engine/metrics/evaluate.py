"""Metrics over a dataset: per-image values and bootstrap confidence intervals.

::

    from cnnviz_widgets.engine.metrics import evaluate

    result = evaluate(model, loader, ["GradCAM", "ScoreCAM"], ["road_combined", "sparseness"])
    result.summary            # records: method, metric, mean, 95 % interval, n, direction
    result.to_pandas()        # the same as a DataFrame (pandas needed)
    result.worst("GradCAM", "road_combined", k=5)   # dataset indices of the worst images

Data is read by the engine's data layer (:mod:`cnnviz_widgets.engine.data`: a DataLoader, a
Dataset, an image folder, tensors) with torch's ``DataLoader``. Per batch, each method's maps
are computed once, scaled to [0, 1] per image (min-max; CAM maps already are), and every metric
scores them; each batch's random draws are seeded by ``seed`` and the batch's first dataset
index. Under ``torchrun`` (``torch.distributed`` initialised) the dataset is cut into the
batches one process would read and process ``r`` scores the batches ``r, r + world, ...``
(:mod:`~cnnviz_widgets.engine.data.shard`, ``split="batches"``); the per-image values are
gathered with ``all_gather_object`` and ordered by dataset index, so every process returns
the :class:`~.evaluation.Evaluation` of one process, bit for bit (the same batches, seeds and
rounding; with one torch thread per process, torchrun's default, and in the single process).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data import (
    Batch,
    ImageFunction,
    Progress,
    ProgressLike,
    Transform,
    all_gather,
    as_transform,
    distributed,
    make_loader,
    resolve_source,
    shard_batches,
)
from ..inputs import prepare_input
from ..layers import LayerRef
from ..targets import OutputSelector
from ._common import class_targets
from .adapters import Context
from .evaluation import Evaluation, merge_partial, minmax, summarise
from .explain import Method, MethodLike, resolve_method
from .localisation import box_masks
from .registry import METRICS, metric_spec

# the batch starting at dataset index p of an evaluation with seed s uses seed s * stride + p
_SEED_STRIDE = 1_000_003


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
    transform: Transform | ImageFunction | None = None,
    num_workers: int = 0,
    n_boot: int = 1000,
    confidence: float = 0.95,
    output: OutputSelector = None,
) -> Evaluation:
    """Score attribution methods with metrics over a dataset.

    Args:
        model: the classifier (left exactly as it was).
        data: a ``DataLoader`` (its dataset, batch size, workers and collate function; not its
            sampler), ``Dataset``, image folder, ``(N, C, H, W)`` tensor or tuple of tensors
            ``(images, labels[, masks or boxes])`` (:func:`~cnnviz_widgets.engine.data.
            resolve_source`); items carrying masks or boxes enable the localisation metrics.
        methods: CAM or saliency method names, or ``{name: method or explainer callable}``.
        metrics: metric names from :data:`~cnnviz_widgets.engine.metrics.registry.METRICS`
            (default: all of them, less the localisation ones when the data has no objects).
        layer: the CAM layer (default: each CAM method's default layer).
        target: ``None`` (each image's predicted class), a class index, or ``"label"`` (the
            data's labels).
        batch_size: images per batch (not for a ``DataLoader``: its own).
        progress: ``True``/``"tqdm"`` for a progress bar (a notebook widget in Jupyter), or a
            callable ``progress(images_done, total)``; under ``torchrun`` only rank 0 reports,
            counting its own share.
        seed: seeds every random draw (ROAD's noise, max-sensitivity's perturbations, the
            randomised model, random classes) and the bootstrap.
        options: per-metric options, ``{"road_combined": {"noise": 0}, ...}``, over the
            registry's defaults.
        method_options: per-method options, ``{"smoothgrad": {"n_samples": 20}}``.
        transform: how image files and PIL items become model input: a
            :class:`~cnnviz_widgets.engine.data.Transform`, a function (PIL image ->
            ``(C, H, W)`` tensor), or ``None``: as :func:`~cnnviz_widgets.engine.inputs.
            load_image` makes it (the bundled demo model's own size and normalisation; for
            other models ImageNet's normalisation at the images' own size).
        num_workers: ``DataLoader`` workers (0: a ``DataLoader``'s own).
        n_boot: bootstrap resamples per interval.
        confidence: the intervals' confidence level.
        output: which part of the model's output holds the logits.

    Returns:
        An :class:`~.evaluation.Evaluation`, in dataset order (identical on every process
        under ``torchrun``, and to a single process's).
    """
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
    unknown = set(options or {}) - set(METRICS)
    if unknown:
        raise ValueError(f"options for unknown metric(s): {', '.join(sorted(unknown))}.")
    rank, world = distributed()
    size = None if isinstance(data, DataLoader) else batch_size
    source = resolve_source(data, size, num_workers, as_transform(transform, model))
    n, per_batch = len(source.dataset), source.batch_size
    loader = make_loader(source, per_batch, rank, world, split="batches")
    total = sum(len(b) for b in shard_batches(n, rank, world, per_batch, "batches"))
    scorer = _Scorer(
        model, named, requested, layer, target, seed, options, method_options, output
    )
    report = Progress(progress if rank == 0 else None, total, desc="evaluate")
    done = 0
    try:
        for batch in loader:
            done += scorer(batch)
            report.update(done)
    finally:
        report.close()
    local = scorer.local()
    if world > 1:
        local = _gather(local)
    order = np.argsort(local["indices"], kind="stable")
    values = {k: v[order] for k, v in local["values"].items()}
    labels = local["labels"]
    return Evaluation(
        methods=tuple(name for name, _ in named),
        metrics=tuple(local["metrics"]),
        indices=local["indices"][order],
        targets=local["targets"][order],
        labels=None if labels is None else labels[order],
        values=values,
        summary=summarise(values, n_boot, confidence, seed),
        seconds=local["seconds"],
        confidence=confidence,
        layers={name: m.layer for name, m in scorer.resolved.items()},
        method_options={k: dict(v) for k, v in (method_options or {}).items()},
        transform=source.transform,
        explainers=dict(scorer.resolved),
    )


def _gather(local: dict[str, Any]) -> dict[str, Any]:
    """Every process's partial results (``torch.distributed.all_gather_object``), merged."""
    return merge_partial(all_gather(local))


class _Scorer:
    """One process's share of an evaluation: per batch, each method's maps once and every
    metric on them; the values, classes and labels kept until :meth:`local`."""

    def __init__(
        self,
        model: nn.Module,
        named: list[tuple[str, MethodLike]],
        requested: list[str] | None,
        layer: LayerRef | None,
        target: int | str | None,
        seed: int,
        options: Mapping[str, Mapping[str, Any]] | None,
        method_options: Mapping[str, Mapping[str, Any]] | None,
        output: OutputSelector,
    ) -> None:
        if isinstance(target, str) and target != "label":
            raise ValueError(f"target must be None, an int or 'label'; got {target!r}.")
        self.model, self.named, self.requested = model, named, requested
        self.layer, self.target, self.seed, self.output = layer, target, seed, output
        self.options = dict(options or {})
        self.method_options = dict(method_options or {})
        self.resolved: dict[str, Method] = {}
        self.chosen: list[str] = []
        self.cache: dict[str, Any] = {}
        self.parts: dict[tuple[str, str], list[np.ndarray]] = {}
        self.seconds: dict[tuple[str, str], float] = {}
        self.indices: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        self.labels: list[np.ndarray] | None = []

    def __call__(self, batch: Batch) -> int:
        """Score one batch; returns its number of images."""
        x = prepare_input(self.model, batch.images)
        masks = None if batch.masks is None else (batch.masks != 0).to(x.device)
        boxes = batch.boxes
        if boxes is None and masks is not None:
            boxes = _mask_boxes(masks)
        if masks is None and boxes is not None:
            masks = box_masks(boxes, (x.shape[2], x.shape[3]), x.device)
        self._choose(masks is not None)
        if self.target == "label":
            if batch.labels is None:
                raise ValueError("target='label' needs labels in the data.")
            classes = batch.labels.to(x.device)
        else:
            assert not isinstance(self.target, str)
            classes = class_targets(self.model, x, self.target, self.output)
        for name, method in self.named:
            if name not in self.resolved:
                self.resolved[name] = resolve_method(
                    self.model, method, layer=self.layer, x=x, **self.method_options.get(name, {})
                )
            m = self.resolved[name]
            start = time.perf_counter()
            maps = minmax(m.explain(self.model, x, classes))
            self._clock((name, "maps"), start)
            ctx = Context(
                self.model, x, maps, classes, m, masks=masks, boxes=boxes,
                seed=self.seed * _SEED_STRIDE + int(batch.indices[0]), run_seed=self.seed,
                output=self.output, cache=self.cache,
            )
            for metric in self.chosen:
                spec = METRICS[metric]
                opts = {**spec.defaults, **self.options.get(metric, {})}
                start = time.perf_counter()
                vals = np.asarray(spec.compute(ctx, opts), dtype=np.float64)
                self._clock((name, metric), start)
                self.parts.setdefault((name, metric), []).append(vals)
        self.indices.append(batch.indices.numpy())
        self.targets.append(classes.cpu().numpy())
        if batch.labels is None or self.labels is None:
            self.labels = None
        else:
            self.labels.append(batch.labels.numpy())
        return int(x.shape[0])

    def _choose(self, objects: bool) -> None:
        """The metrics, chosen at the first batch; localisation needs objects in every batch."""
        if not self.chosen:
            self.chosen = (
                self.requested
                if self.requested is not None
                else [n for n, s in METRICS.items() if not s.needs or objects]
            )
        blind = [n for n in self.chosen if METRICS[n].needs == "masks"]
        if blind and not objects:
            raise ValueError(
                f"{', '.join(blind)} need(s) object masks or boxes in the data: give items "
                "(image, label, mask) or (image, label, box), or leave them out."
            )

    def _clock(self, key: tuple[str, str], start: float) -> None:
        """Add the seconds since ``start`` (``time.perf_counter()``) to ``key``'s time."""
        self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - start

    def local(self) -> dict[str, Any]:
        """This process's partial result (what :func:`~.evaluation.merge_partial` merges)."""
        empty = np.empty(0, np.int64)
        return {
            "indices": np.concatenate(self.indices) if self.indices else empty,
            "targets": np.concatenate(self.targets) if self.targets else empty,
            "labels": np.concatenate(self.labels) if self.labels else None,
            "values": {k: np.concatenate(v) for k, v in self.parts.items()},
            "seconds": self.seconds,
            "metrics": self.chosen,
        }


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
