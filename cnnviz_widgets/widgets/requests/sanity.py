"""``sanity``: does the shown method's map depend on the model? (model-parameter randomisation).

One request runs :func:`~cnnviz_widgets.engine.metrics.sanity_check` on the explorer's image
for one CAM or saliency method, in cascade or independent mode, and replies with the original
map and each randomised layer's map (one map stack), the similarity of each to the original
(Spearman, SSIM, HOG), the random-logit test and the engine's verdict.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ...engine.metrics import sanity_check
from ...engine.metrics.sanity_result import MODES, RANDOM_LOGIT, SanityCheck
from ..cache import Reply
from ..i18n import Msg
from ..serialize import stack_message
from ..subject import Subject
from .base import Job, MessageError, Params, RequestKind, canonical, check_target, check_version
from .cam import explained

ORIGINAL = "original"
"""The label of the unchanged model's map in the stack."""
SIMILARITY = "spearman"
"""The similarity the verdict reads (the engine's default of :meth:`SanityCheck.fails`)."""


def _fails_default(name: str) -> Any:
    return inspect.signature(SanityCheck.fails).parameters[name].default


THRESHOLD: float = float(_fails_default("threshold"))
"""The engine's threshold of the verdict (mean similarity above it: the method fails)."""
OVER: str = str(_fails_default("over"))
"""Which similarity the verdict reads: the mean over the steps (``"average"``) or the last."""


def _floats(values: np.ndarray) -> list[float | None]:
    """Per-image scores as JSON numbers (``None`` for NaN)."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, np.float64)]


class Sanity(RequestKind):
    """Reply meta: ``method``, ``mode``, ``target``/``class_name``/``prob`` (what is explained),
    ``stack`` (the original map, then one map per step, labels = the randomised layer, then
    the random-logit map, labelled ``"random logit"``), ``steps`` (per randomised layer:
    ``layer`` and ``scores`` ``{spearman, ssim, hog}``), ``random_logit`` (``target``,
    ``class_name``, ``scores``) or ``None``, and the verdict: ``similarity``, ``threshold``,
    ``over``, ``value`` (the similarity the verdict reads) and ``fails``."""

    kind = "sanity"

    def __init__(self, cam_methods: list[str], saliency_methods: list[str]):
        self.methods = list(cam_methods) + [m for m in saliency_methods if m not in cam_methods]

    def key(self, p: Params) -> str:
        return f"sanity|{p['version']}|{p['method']}|{p['mode']}|{p['target']}"

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        version = check_version(subject, msg)
        method = canonical(msg.get("method"), self.methods, "method")
        mode = msg.get("mode")
        if mode not in MODES:
            shown = mode if isinstance(mode, str) else type(mode).__name__
            raise MessageError(f"unknown sanity-check mode {shown[:80]!r}; choose from "
                               f"{list(MODES)}")
        return {"version": version, "method": method, "mode": mode,
                "target": check_target(subject, msg.get("target"))}

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        def progress(done: int, total: int) -> None:  # raises Cancelled after a cancel
            job.progress(done, total, Msg("progress.sanity", method=p["method"], done=done,
                                          total=total))

        with subject.lock:  # the engine randomises a deep copy; the model stays as it is
            job.progress(0, 1, Msg("progress.sanity_start", method=p["method"]))
            result = sanity_check(subject.model, subject.x, p["method"], target=p["target"],
                                  mode=p["mode"], progress=progress)
        return sanity_reply(subject, result)


def sanity_reply(subject: Subject, result: SanityCheck) -> Reply:
    """The reply of a sanity check of one image (see :class:`Sanity`)."""
    maps = [result.original[0]]
    labels = [ORIGINAL]
    for step in result.steps:
        assert step.maps is not None
        maps.append(step.maps[0])
        labels.append(step.layer)
    logit = result.random_logit
    if logit is not None and logit.maps is not None:
        maps.append(logit.maps[0])
        labels.append(RANDOM_LOGIT)
    stack = np.nan_to_num(np.stack(maps).astype(np.float32))
    meta, buffers = stack_message(stack, labels=labels, range_dtype="float32")
    target = int(result.targets[0])
    # "final" reads the last cascade step; an independent run has none: its average
    over = OVER if result.mode == "cascade" else "average"
    value = result.average_similarity(SIMILARITY) if over == "average" else (
        result.final_similarity(SIMILARITY))
    random_logit = None
    if logit is not None and result.random_targets is not None:
        other = int(result.random_targets[0])
        random_logit = {"target": other, "class_name": subject.class_name(other),
                        "scores": {k: _floats(v)[0] for k, v in logit.scores.items()}}
    return Reply({
        "stack": meta,
        "method": result.method,
        "mode": result.mode,
        **explained(subject, target),
        "steps": [{"layer": s.layer, "scores": {k: _floats(v)[0] for k, v in s.scores.items()}}
                  for s in result.steps],
        "random_logit": random_logit,
        "similarity": SIMILARITY,
        "threshold": THRESHOLD,
        "over": over,
        "value": None if not np.isfinite(value) else float(value),
        "fails": bool(result.fails(THRESHOLD, SIMILARITY, over)) if result.steps else None,
    }, buffers)
