"""``predictions``: the model's top classes for the input image."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ...engine.predictions import top_predictions
from ..cache import Reply
from ..subject import Subject
from .base import Job, Params, RequestKind, check_version

TOP_K = 5


class Predictions(RequestKind):
    kind = "predictions"

    def key(self, p: Params) -> str:
        return f"predictions|{p['version']}"

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        return {"version": check_version(subject, msg)}

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        if subject.objects is not None:  # a detector's boxes, a segmenter's classes
            return Reply({"top": [asdict(t) for t in subject.objects.top(subject, TOP_K)]}, [])
        top = top_predictions(subject.probabilities(), TOP_K, subject.classes)
        return Reply({"top": [asdict(t) for t in top]}, [])
