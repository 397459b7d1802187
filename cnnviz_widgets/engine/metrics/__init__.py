"""Is an attribution map faithful to the model? Metrics per image and over a dataset.

One module per group; :mod:`.registry` lists every metric once (name, group, whether higher is
better, reference, and its :mod:`.adapters` entry for :func:`.evaluate.evaluate`), and the docs
and tests read it from there.

* faithfulness: :mod:`.faithfulness` (deletion/insertion AUC, average drop), :mod:`.road`
  (ROAD with the noisy linear imputation of :mod:`.imputation`)
* localisation: :mod:`.localisation` (pointing game, relevance mass/rank accuracy, top-k
  intersection)
* complexity: :mod:`.complexity` (sparseness, complexity, the Gini index)
* robustness: :mod:`.robustness` (max-sensitivity)
* randomisation: :mod:`.sanity` (model-parameter randomisation and random-logit tests; the
  result in :mod:`.sanity_result`) with the similarity scores of :mod:`.similarity`
* over a dataset: :mod:`.evaluate` (per-image values; :mod:`.evaluation`: the result, bootstrap
  confidence intervals), reading data through the engine's data layer
  (:mod:`cnnviz_widgets.engine.data`)
"""

from __future__ import annotations

from ..data import Batch, load_batches
from ._common import BASELINES, gaussian_blur, make_baseline
from .complexity import complexity, gini_index, sparseness
from .evaluate import evaluate
from .evaluation import Evaluation, bootstrap_interval
from .explain import Explainer, Method, resolve_method
from .faithfulness import (
    average_drop,
    curve_auc,
    deletion_auc,
    deletion_curve,
    insertion_auc,
    insertion_curve,
    perturbation_auc,
    perturbation_curve,
)
from .localisation import (
    box_masks,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    top_k_intersection,
)
from .registry import GROUPS, METRICS, MetricSpec, available_metrics, metric_spec
from .road import PERCENTILES, road
from .robustness import max_sensitivity
from .sanity import (
    RandomisationStep,
    SanityCheck,
    model_randomisation,
    random_logit,
    randomisable_layers,
    sanity_check,
)
from .similarity import hog, hog_similarity, spearman_abs, ssim

__all__ = [
    "BASELINES",
    "GROUPS",
    "METRICS",
    "PERCENTILES",
    "Batch",
    "Evaluation",
    "Explainer",
    "Method",
    "MetricSpec",
    "RandomisationStep",
    "SanityCheck",
    "available_metrics",
    "average_drop",
    "bootstrap_interval",
    "box_masks",
    "complexity",
    "curve_auc",
    "deletion_auc",
    "deletion_curve",
    "evaluate",
    "gaussian_blur",
    "gini_index",
    "hog",
    "hog_similarity",
    "insertion_auc",
    "insertion_curve",
    "load_batches",
    "make_baseline",
    "max_sensitivity",
    "metric_spec",
    "model_randomisation",
    "perturbation_auc",
    "perturbation_curve",
    "pointing_game",
    "random_logit",
    "randomisable_layers",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "resolve_method",
    "road",
    "sanity_check",
    "sparseness",
    "spearman_abs",
    "ssim",
    "top_k_intersection",
]
