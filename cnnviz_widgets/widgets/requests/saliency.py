"""``saliency``: which input pixels the class score is sensitive to."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...engine.saliency import saliency, saliency_map
from ..cache import Reply
from ..i18n import Msg
from ..serialize import stack_message
from ..subject import Subject
from .base import Job, Params, RequestKind, canonical, check_target, check_version
from .cam import explained


class Saliency(RequestKind):
    kind = "saliency"

    def __init__(self, methods: list[str]):
        self.methods = methods

    def key(self, p: Params) -> str:
        return f"saliency|{p['version']}|{p['method']}|{p['target']}"

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        return {"version": check_version(subject, msg),
                "method": canonical(msg.get("method"), self.methods, "saliency method"),
                "target": check_target(subject, msg.get("target"))}

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        with subject.lock:
            attr = saliency(subject.model, subject.x, target=subject.engine_target(p["target"]),
                            method=p["method"],
                            progress=lambda done, total: job.progress(
                                done, total, Msg("progress.saliency", method=p["method"],
                                                 done=done, total=total)))
        sal = np.asarray(saliency_map(attr), np.float32)[0]
        meta, buffers = stack_message(sal[None], range_dtype="float32")
        return Reply({"stack": meta, "method": p["method"],
                      **explained(subject, p["target"])}, buffers)
