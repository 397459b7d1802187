"""The result of :func:`~.evaluate.evaluate`: per-image values, their summary with bootstrap
confidence intervals, the merge of the pieces of a distributed evaluation, and the images and
maps of some of its items again (to look at the ones where a method does worst)."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import Source, Transform, load_items, resolve_source
from ..inputs import prepare_input
from .explain import Method, resolve_method
from .registry import METRICS


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
        layers: each method's CAM layer as the evaluation resolved it (``None`` for the
            others).
        method_options: the options each method was called with (``evaluate``'s
            ``method_options``).
        transform: how the data's image files and PIL items became model input (``None``:
            as :class:`~cnnviz_widgets.engine.data.Transform` does by default), to read items
            again (:meth:`images`).
        explainers: the methods as the evaluation resolved them, by name, to explain items
            again (:meth:`maps`). Not pickled (they are closures): an unpickled evaluation
            resolves a method given by name again, at its :attr:`layers` entry with its
            :attr:`method_options` (:meth:`explainer`); a method given as a callable cannot be.
        transform_lost: the transform had a function that could not be pickled, so this
            (unpickled) evaluation cannot read the data's items again.
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
    layers: dict[str, str | None] = field(default_factory=dict)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    transform: Transform | None = field(default=None, repr=False, compare=False)
    explainers: dict[str, Method] = field(default_factory=dict, repr=False, compare=False)
    transform_lost: bool = field(default=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        """What pickling keeps: all but :attr:`explainers`, and the transform only when its
        function (if any) can be pickled too (else :attr:`transform_lost`)."""
        state = dict(self.__dict__)
        state["explainers"] = {}
        function = None if self.transform is None else self.transform.function
        if function is not None:
            try:
                pickle.dumps(function)
            except Exception:  # a lambda or a local function: the items cannot be read again
                state["transform"], state["transform_lost"] = None, True
        return state

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


    def source(self, data: Any) -> Source:
        """``data``, what :func:`~.evaluate.evaluate` was given (a ``DataLoader``, ``Dataset``,
        image folder or tensors), resolved by the data layer with the evaluation's transform.

        Raises:
            ValueError: the data has another number of items than the evaluation has images
                (the message names both).
        """
        if self.transform_lost:
            raise ValueError(
                "This evaluation was unpickled without its transform function (it could not be "
                "pickled), so the data's items cannot be read as the evaluation read them. Set "
                "evaluation.transform = Transform(function=...) (cnnviz_widgets.engine.data) first."
            )
        transform = self.transform if self.transform is not None else Transform()
        source = resolve_source(data, None, 0, transform)
        items, images = len(source.dataset), len(self.indices)
        if items != images:
            raise ValueError(
                f"The data has {items} items, but the evaluation scored {images} images: pass "
                "the data that evaluate(model, data, ...) was given."
            )
        return source

    def images(self, data: Any, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Model input ``(k, C, H, W)`` and display RGB ``(k, H, W, 3)`` uint8 of the dataset
        items ``indices`` of ``data`` (or of a :meth:`source`), read as the evaluation read
        them (:func:`~cnnviz_widgets.engine.data.load_items`)."""
        source = data if isinstance(data, Source) else self.source(data)
        return load_items(source, [int(i) for i in indices])

    def maps(
        self, model: nn.Module, x: torch.Tensor, method: str, indices: Sequence[int]
    ) -> torch.Tensor:
        """``(k, H, W)`` float32 maps of ``method`` for the images ``x`` (the dataset items
        ``indices``, from :meth:`images`), for the classes the evaluation explained, scaled to
        [0, 1] per image: the maps its metrics scored, on the model's device.

        Raises:
            KeyError: a method that :meth:`explainer` cannot give.
            ValueError: an index that is not one of the evaluated images.
        """
        explainer = self.explainer(model, method)
        if explainer is None:
            raise KeyError(
                f"Cannot explain with {method!r} again: not one of this evaluation's methods "
                f"({', '.join(self.methods)}), or a callable not kept (an unpickled evaluation)."
            )
        rows = self.rows(indices)
        x = prepare_input(model, x)
        classes = torch.as_tensor(self.targets[rows], dtype=torch.int64, device=x.device)
        return minmax(explainer.explain(model, x, classes))

    def explainer(self, model: nn.Module, method: str) -> Method | None:
        """How the evaluation explained with ``method``: the kept :attr:`explainers` entry, or,
        for a method given by name, the name resolved again for ``model`` at its
        :attr:`layers` entry with its :attr:`method_options`; ``None`` when neither can be."""
        found = self.explainers.get(method)
        if found is not None or method not in self.methods:
            return found
        try:
            found = resolve_method(model, method, layer=self.layers.get(method),
                                   **self.method_options.get(method, {}))
        except (TypeError, ValueError):  # the name of a callable: not a method name
            return None
        self.explainers[method] = found
        return found

    def rows(self, indices: Sequence[int]) -> np.ndarray:
        """Positions in :attr:`indices` (and in every values array) of dataset indices.

        Raises:
            ValueError: an index that is not one of the evaluated images.
        """
        where = {int(v): i for i, v in enumerate(self.indices.tolist())}
        missing = [int(i) for i in indices if int(i) not in where]
        if missing:
            raise ValueError(
                f"Dataset index {missing[0]} is not one of the evaluation's {len(where)} images."
            )
        return np.asarray([where[int(i)] for i in indices], dtype=np.int64)


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Each ``(H, W)`` map of ``(N, H, W)`` scaled to [0, 1] (a constant map becomes 0): how
    the evaluation scales every method's maps before scoring them."""
    flat = maps.flatten(1)
    lo = flat.amin(dim=1).view(-1, 1, 1)
    span = (flat.amax(dim=1) - flat.amin(dim=1)).view(-1, 1, 1)
    return torch.where(span > 0, (maps - lo) / torch.where(span > 0, span, 1.0), maps - lo)


def summarise(
    values: dict[tuple[str, str], np.ndarray], n_boot: int, confidence: float, seed: int
) -> list[dict[str, Any]]:
    """One :attr:`Evaluation.summary` record per ``(method, metric)`` of ``values``: its mean
    and percentile-bootstrap interval (:func:`bootstrap_interval` with ``seed``)."""
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
    return summary


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
