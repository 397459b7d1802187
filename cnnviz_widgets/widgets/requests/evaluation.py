"""``evaluation_worst``: the images of a dataset evaluation where a method does worst.

``LayerExplorer(model, evaluation=evaluate(model, data, methods, metrics))`` shows the
evaluation's summary (trait ``evaluation_summary``); a click on one of its rows asks for the
:data:`WORST` images where that method scores worst on that metric: their dataset indices,
values, explained classes and labels, in the order of :meth:`Evaluation.worst` (the metric's
worse end first, NaN last). The :class:`~cnnviz_widgets.engine.metrics.Evaluation` keeps no
images, so the reply carries none (``images: false``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...engine.metrics import Evaluation
from ...engine.metrics.registry import METRICS
from ..cache import Reply
from ..subject import Subject
from .base import Job, MessageError, Params, RequestKind

WORST = 6
"""How many images a drill-down shows."""


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


class EvaluationWorst(RequestKind):
    """Reply meta: ``method``, ``metric``, ``better``, per image (worst first) ``indices``
    (dataset positions), ``values``, ``targets`` and ``labels`` (or ``None``) with their
    class names ``target_names`` and ``label_names``, ``n`` (images
    in the evaluation) and ``images`` (``False``: the evaluation keeps no images)."""

    kind = "evaluation_worst"
    per_image = False
    shown = False

    def key(self, p: Params) -> str:
        return f"evaluation_worst|{p['method']}|{p['metric']}"

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        result = subject.evaluation
        if result is None:
            raise MessageError("this explorer has no evaluation: pass evaluation=evaluate(model, "
                               "data, methods, metrics) to LayerExplorer")
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
        result = subject.evaluation
        assert result is not None
        return worst_reply(result, p["method"], p["metric"], subject.class_name)


def worst_reply(result: Evaluation, method: str, metric: str,
                name: Callable[[int], str] = str, k: int = WORST) -> Reply:
    """The reply of a drill-down (see :class:`EvaluationWorst`); ``name``: a class's name."""
    indices = result.worst(method, metric, k)
    where = {int(v): i for i, v in enumerate(result.indices.tolist())}
    rows = [where[i] for i in indices]
    values = result.value(method, metric)
    return Reply({
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
        "images": False,
    }, [])
