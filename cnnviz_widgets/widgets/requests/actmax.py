"""``actmax``: images optimised to excite chosen channels, each sent as soon as it is done."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...engine import actmax
from ..cache import Reply
from ..i18n import Msg
from ..subject import Subject
from .base import Job, MessageError, Params, RequestKind, check_layer

MAX_CHANNELS = 64
BATCH = 8
"""Channels optimised together in one batch."""


class ActivationMax(RequestKind):
    kind = "actmax"
    per_image = False
    shown = False  # images stream as items; the tab keeps them

    def key(self, p: Params) -> str:
        mode = "regularized" if p["regularize"] else "plain"
        return f"actmax|{p['layer']}|{','.join(str(c) for c in p['channels'])}|{mode}"

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        layer = check_layer(msg.get("layer"), subject.layer_names)
        channels = msg.get("channels")
        n = subject.layer_channels(layer)
        if n is None:
            raise MessageError(f"{layer} has no channels to optimise")
        if (
            not isinstance(channels, list)
            or not channels
            or len(channels) > MAX_CHANNELS
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in channels)
        ):
            raise MessageError(f"channels must be a list of 1 to {MAX_CHANNELS} integers")
        bad = [c for c in channels if not 0 <= c < n]
        if bad:
            raise MessageError(f"channel {bad[0]} out of range: {layer} has {n}")
        regularize = msg.get("regularize", True)
        if not isinstance(regularize, bool):
            raise MessageError("regularize must be true (Lucid-style) or false (plain ascent)")
        return {"layer": layer, "channels": sorted(set(channels)), "regularize": regularize}

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        channels = p["channels"]
        size = int(subject.x.shape[-1])
        # Channels are optimised together, BATCH at a time (each image its own objective and
        # its own random stream: the same image as alone); each batch's images are sent as
        # soon as it is done.
        batches = [channels[i: i + BATCH] for i in range(0, len(channels), BATCH)]
        done = 0
        for batch in batches:

            def report(step: int, total: int, batch: list[int] = batch,
                       before: int = done) -> None:
                job.progress(before * total + step * len(batch), len(channels) * total,
                             Msg("progress.actmax", first=batch[0], last=batch[-1], step=step,
                                 steps=total, done=before + len(batch), count=len(channels)))

            with subject.lock:
                images = actmax.activation_max(subject.model, p["layer"], batch, size=size,
                                               seed=0, progress=report, mean=subject.mean,
                                               std=subject.std, regularize=p["regularize"])
            for c, img in zip(batch, images, strict=True):
                job.item({"index": int(c), "rgb": {"shape": [1, *img.shape]}},
                         [np.ascontiguousarray(img).tobytes()])
            done += len(batch)
        return Reply({"layer": p["layer"], "channels": channels, "count": len(channels),
                      "regularize": p["regularize"]}, [])
