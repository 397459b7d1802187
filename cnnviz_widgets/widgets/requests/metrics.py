"""``metrics``: faithfulness figures of the shown CAM (deletion / insertion AUC, average drop)."""

from __future__ import annotations

import numpy as np

from ...engine.metrics import average_drop, deletion_auc, insertion_auc
from ..cache import Reply
from ..i18n import Msg
from ..subject import Subject
from .base import Job, Params
from .cam import Cam

BETTER = {"deletion_auc": "lower", "insertion_auc": "higher", "average_drop": "lower"}
"""Which direction is better for each figure (shown beside it)."""


class Metrics(Cam):
    """The figures of the map a ``cam`` request with the same parameters shows."""

    kind = "metrics"

    def also(self, subject: Subject, p: Params) -> dict[str, Reply]:
        return {}

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        maps = subject.cam_maps(p["method"], p["target"], p["layer"], job.progress)
        heat = maps[p["layer"]][None]
        x, t = subject.x, p["target"]
        figures: dict[str, float] = {}
        with subject.lock:
            job.progress(0, 3, Msg("progress.deletion"))
            figures["deletion_auc"] = float(deletion_auc(subject.model, x, heat, t)[0])
            job.progress(1, 3, Msg("progress.insertion"))
            figures["insertion_auc"] = float(insertion_auc(subject.model, x, heat, t)[0])
            job.progress(2, 3, Msg("progress.average_drop"))
            figures["average_drop"] = float(
                np.asarray(average_drop(subject.model, x, heat, t)).reshape(-1)[0])
        return Reply({"figures": figures, "better": BETTER}, [])
