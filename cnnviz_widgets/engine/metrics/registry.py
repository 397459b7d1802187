"""Every metric once: its name, group, direction, reference and how :func:`.evaluate.evaluate`
calls it. The docs (``docs/methods.md``) and the tests read this table.

Each entry's ``compute(ctx, options)`` takes a :class:`Context` (one batch: the model, the
model-ready images, the method's maps scaled to [0, 1], the explained classes, the objects'
masks/boxes when the data has them) and returns ``(N,)`` values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import nn

from ..targets import OutputSelector
from .complexity import complexity, sparseness
from .explain import Method
from .faithfulness import average_drop, deletion_auc, insertion_auc
from .localisation import (
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    top_k_intersection,
)
from .road import road, road_means
from .robustness import max_sensitivity
from .sanity import model_randomisation, random_logit, randomised_copy

GROUPS: tuple[str, ...] = (
    "faithfulness",
    "localisation",
    "complexity",
    "robustness",
    "randomisation",
)


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
    output: OutputSelector = None
    cache: dict[str, Any] = field(default_factory=dict)
    local: dict[Any, Any] = field(default_factory=dict)


Compute = Callable[[Context, Mapping[str, Any]], np.ndarray]


@dataclass(frozen=True)
class MetricSpec:
    """One metric.

    Attributes:
        name: the registry key (what ``evaluate(metrics=[...])`` takes).
        group: one of :data:`GROUPS`.
        higher_is_better: the direction of a better map.
        function: the public function computing it.
        summary: what it measures, in one line.
        reference: the paper.
        matches: the implementation it is tested against.
        needs: ``"masks"`` (an object mask or box per image) or ``""``.
        defaults: options :func:`.evaluate.evaluate` passes unless told otherwise.
        compute: the adapter ``compute(ctx, options) -> (N,)``.
    """

    name: str
    group: str
    higher_is_better: bool
    function: Callable[..., Any]
    summary: str
    reference: str
    matches: str
    compute: Compute
    needs: str = ""
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def _seed(ctx: Context, options: Mapping[str, Any]) -> dict[str, Any]:
    opts = dict(options)
    opts.setdefault("seed", ctx.seed)
    return opts


def _road(order: str) -> Compute:
    def compute(ctx: Context, options: Mapping[str, Any]) -> np.ndarray:
        opts = _seed(ctx, options)
        key = ("road", tuple(sorted((k, repr(v)) for k, v in opts.items())))
        if key not in ctx.local:  # both orders in one pass, shared by the three ROAD metrics
            ctx.local[key] = road_means(
                ctx.model,
                ctx.x,
                ctx.maps,
                ctx.classes.tolist(),
                orders=("most", "least"),
                output=ctx.output,
                **opts,
            )
        means = ctx.local[key]
        if order == "combined":
            return (means["least"] - means["most"]) / 2
        return means[order]

    return compute


def _need_masks(ctx: Context) -> torch.Tensor:
    if ctx.masks is None:
        raise ValueError("This metric needs object masks or boxes in the data.")
    return ctx.masks


def _need_boxes(ctx: Context) -> torch.Tensor:
    if ctx.boxes is None:
        raise ValueError("This metric needs object boxes (or masks) in the data.")
    return ctx.boxes


def _model_randomisation(ctx: Context, options: Mapping[str, Any]) -> np.ndarray:
    opts = _seed(ctx, options)
    key = f"randomised:{opts['seed']}:{opts.get('layers')}"
    if key not in ctx.cache:  # one randomised copy per evaluation
        ctx.cache[key] = randomised_copy(ctx.model, ctx.x, opts["seed"], opts.get("layers"))
    opts.pop("layers", None)
    return model_randomisation(
        ctx.model,
        ctx.x,
        ctx.method.explain,
        ctx.classes.tolist(),
        maps=ctx.maps,
        randomised=ctx.cache[key],
        output=ctx.output,
        **opts,
    )


def _random_logit(ctx: Context, options: Mapping[str, Any]) -> np.ndarray:
    return random_logit(
        ctx.model,
        ctx.x,
        ctx.method.explain,
        ctx.classes.tolist(),
        maps=ctx.maps,
        output=ctx.output,
        **_seed(ctx, options),
    )


_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "deletion_auc",
        "faithfulness",
        False,
        deletion_auc,
        "area under the target probability as the highest-ranked pixels are deleted",
        "Petsiuk et al., RISE, BMVC 2018",
        "slow loop in tests/test_metrics.py",
        lambda c, o: deletion_auc(c.model, c.x, c.maps, c.classes.tolist(), output=c.output, **o),
    ),
    MetricSpec(
        "insertion_auc",
        "faithfulness",
        True,
        insertion_auc,
        "area under the target probability as the highest-ranked pixels are put back on a blur",
        "Petsiuk et al., RISE, BMVC 2018",
        "slow loop in tests/test_metrics.py",
        lambda c, o: insertion_auc(c.model, c.x, c.maps, c.classes.tolist(), output=c.output, **o),
    ),
    MetricSpec(
        "average_drop",
        "faithfulness",
        False,
        average_drop,
        "drop (%) of the target probability when the model sees the image times the map",
        "Chattopadhay et al., Grad-CAM++, WACV 2018",
        "hand-computed cases in tests",
        lambda c, o: average_drop(c.model, c.x, c.maps, c.classes.tolist(), output=c.output, **o),
    ),
    MetricSpec(
        "road_morf",
        "faithfulness",
        False,
        road,
        "mean logit change when the most relevant pixels are imputed away (10..90 %)",
        "Rong et al., ROAD, ICML 2022",
        "pytorch-grad-cam 1.5 ROADMostRelevantFirstAverage",
        _road("most"),
    ),
    MetricSpec(
        "road_lerf",
        "faithfulness",
        True,
        road,
        "mean logit change when the least relevant pixels are imputed away (10..90 %)",
        "Rong et al., ROAD, ICML 2022",
        "pytorch-grad-cam 1.5 ROADLeastRelevantFirstAverage",
        _road("least"),
    ),
    MetricSpec(
        "road_combined",
        "faithfulness",
        True,
        road,
        "(road_lerf - road_morf) / 2",
        "Rong et al., ROAD, ICML 2022",
        "pytorch-grad-cam 1.5 ROADCombined",
        _road("combined"),
    ),
    MetricSpec(
        "pointing_game",
        "localisation",
        True,
        pointing_game,
        "1 when the map's maximum lies in the object's box",
        "Zhang et al., ECCV 2016",
        "hand-computed cases in tests",
        lambda c, o: pointing_game(c.maps, _need_boxes(c), **o).astype(np.float64),
        needs="masks",
    ),
    MetricSpec(
        "relevance_mass_accuracy",
        "localisation",
        True,
        relevance_mass_accuracy,
        "share of the map's total relevance inside the object",
        "Arras et al., CLEVR-XAI, Information Fusion 2022",
        "Quantus 0.6 RelevanceMassAccuracy",
        lambda c, o: relevance_mass_accuracy(c.maps, _need_masks(c), **o),
        needs="masks",
    ),
    MetricSpec(
        "relevance_rank_accuracy",
        "localisation",
        True,
        relevance_rank_accuracy,
        "share of the |object| highest-ranked pixels inside the object",
        "Arras et al., CLEVR-XAI, Information Fusion 2022",
        "Quantus 0.6 RelevanceRankAccuracy",
        lambda c, o: relevance_rank_accuracy(c.maps, _need_masks(c), **o),
        needs="masks",
    ),
    MetricSpec(
        "top_k_intersection",
        "localisation",
        True,
        top_k_intersection,
        "share of the k highest-ranked pixels inside the object",
        "Theiner et al., 2021 (arXiv:2104.14995)",
        "Quantus 0.6 TopKIntersection",
        lambda c, o: top_k_intersection(c.maps, _need_masks(c), **o),
        needs="masks",
    ),
    MetricSpec(
        "sparseness",
        "complexity",
        True,
        sparseness,
        "Gini index of the absolute map",
        "Chalasani et al., ICML 2020",
        "Quantus 0.6 Sparseness",
        lambda c, o: sparseness(c.maps, **o),
    ),
    MetricSpec(
        "complexity",
        "complexity",
        False,
        complexity,
        "entropy of the fractional contributions |a_p| / sum |a|",
        "Bhatt et al., IJCAI 2020",
        "Quantus 0.6 Complexity",
        lambda c, o: complexity(c.maps, **o),
    ),
    MetricSpec(
        "max_sensitivity",
        "robustness",
        False,
        max_sensitivity,
        "largest relative change of the map under uniform input noise",
        "Yeh et al., NeurIPS 2019",
        "Quantus 0.6 MaxSensitivity",
        lambda c, o: max_sensitivity(
            c.model,
            c.x,
            c.method.explain,
            c.classes.tolist(),
            maps=c.maps,
            output=c.output,
            **_seed(c, o),
        ),
        defaults=MappingProxyType({"samples": 10}),
    ),
    MetricSpec(
        "model_randomisation",
        "randomisation",
        False,
        model_randomisation,
        "Spearman correlation (absolute values) with the map of the fully randomised model",
        "Adebayo et al., Sanity checks for saliency maps, NeurIPS 2018",
        "Quantus 0.6 MPRT (last layer of the top-down cascade)",
        _model_randomisation,
    ),
    MetricSpec(
        "random_logit",
        "randomisation",
        False,
        random_logit,
        "SSIM with the map for a random other class",
        "Sixt et al., ICML 2020; Adebayo et al., NeurIPS 2018",
        "Quantus 0.6 RandomLogit",
        _random_logit,
    ),
)

METRICS: Mapping[str, MetricSpec] = MappingProxyType({s.name: s for s in _SPECS})
"""Every metric, keyed by name, in the order the docs list them."""


def available_metrics(group: str | None = None) -> tuple[str, ...]:
    """Metric names (of one group, or all), in registry order."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}; got {group!r}.")
    return tuple(n for n, s in METRICS.items() if group is None or s.group == group)


def metric_spec(name: str) -> MetricSpec:
    """The :class:`MetricSpec` of ``name``.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
    """
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"Unknown metric {name!r}; valid metrics: {', '.join(METRICS)}.") from None
