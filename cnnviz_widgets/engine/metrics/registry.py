"""Every metric once: its name, group, direction, reference and how :func:`.evaluate.evaluate`
calls it. The docs (``docs/methods.md``) and the tests read this table.

Each entry's ``compute(ctx, options)`` (:mod:`.adapters`) takes a :class:`~.adapters.Context`
(one batch: the model, the model-ready images, the method's maps scaled to [0, 1], the
explained classes, the objects' masks/boxes when the data has them) and returns ``(N,)``
values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .adapters import (
    Compute,
    model_randomisation_adapter,
    on_maps,
    on_method,
    on_model,
    road_order,
)
from .complexity import complexity, sparseness
from .faithfulness import average_drop, deletion_auc, insertion_auc
from .localisation import (
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    top_k_intersection,
)
from .road import road
from .robustness import max_sensitivity
from .sanity import model_randomisation, random_logit

GROUPS: tuple[str, ...] = (
    "faithfulness",
    "localisation",
    "complexity",
    "robustness",
    "randomisation",
)


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


_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "deletion_auc",
        "faithfulness",
        False,
        deletion_auc,
        "area under the target probability as the highest-ranked pixels are deleted",
        "Petsiuk et al., RISE, BMVC 2018",
        "slow loop in tests/test_metrics.py",
        on_model(deletion_auc),
    ),
    MetricSpec(
        "insertion_auc",
        "faithfulness",
        True,
        insertion_auc,
        "area under the target probability as the highest-ranked pixels are put back on a blur",
        "Petsiuk et al., RISE, BMVC 2018",
        "slow loop in tests/test_metrics.py",
        on_model(insertion_auc),
    ),
    MetricSpec(
        "average_drop",
        "faithfulness",
        False,
        average_drop,
        "drop (%) of the target probability when the model sees the image times the map",
        "Chattopadhay et al., Grad-CAM++, WACV 2018",
        "hand-computed cases in tests",
        on_model(average_drop),
    ),
    MetricSpec(
        "road_morf",
        "faithfulness",
        False,
        road,
        "mean logit change when the most relevant pixels are imputed away (10..90 %)",
        "Rong et al., ROAD, ICML 2022",
        "pytorch-grad-cam 1.5 ROADMostRelevantFirstAverage",
        road_order("most"),
    ),
    MetricSpec(
        "road_lerf",
        "faithfulness",
        True,
        road,
        "mean logit change when the least relevant pixels are imputed away (10..90 %)",
        "Rong et al., ROAD, ICML 2022",
        "pytorch-grad-cam 1.5 ROADLeastRelevantFirstAverage",
        road_order("least"),
    ),
    MetricSpec(
        "road_combined",
        "faithfulness",
        True,
        road,
        "(road_lerf - road_morf) / 2",
        "Rong et al., ROAD, ICML 2022",
        "pytorch-grad-cam 1.5 ROADCombined",
        road_order("combined"),
    ),
    MetricSpec(
        "pointing_game",
        "localisation",
        True,
        pointing_game,
        "1 when the map's maximum lies in the object's box",
        "Zhang et al., ECCV 2016",
        "hand-computed cases in tests",
        on_maps(pointing_game, "boxes"),
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
        on_maps(relevance_mass_accuracy, "masks"),
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
        on_maps(relevance_rank_accuracy, "masks"),
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
        on_maps(top_k_intersection, "masks"),
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
        on_maps(sparseness),
    ),
    MetricSpec(
        "complexity",
        "complexity",
        False,
        complexity,
        "entropy of the fractional contributions |a_p| / sum |a|",
        "Bhatt et al., IJCAI 2020",
        "Quantus 0.6 Complexity",
        on_maps(complexity),
    ),
    MetricSpec(
        "max_sensitivity",
        "robustness",
        False,
        max_sensitivity,
        "largest relative change of the map under uniform input noise",
        "Yeh et al., NeurIPS 2019",
        "Quantus 0.6 MaxSensitivity",
        on_method(max_sensitivity),
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
        model_randomisation_adapter,
    ),
    MetricSpec(
        "random_logit",
        "randomisation",
        False,
        random_logit,
        "SSIM with the map for a random other class",
        "Sixt et al., ICML 2020; Adebayo et al., NeurIPS 2018",
        "Quantus 0.6 RandomLogit",
        on_method(random_logit),
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
