"""``features``: every channel of one layer's output for the input image."""

from __future__ import annotations

from typing import Any

import torch

from ...engine import feature_maps
from ..cache import Reply
from ..serialize import stack_message
from ..subject import Subject
from .base import Job, Params, RequestKind, check_layer, check_version


def features_reply(layer: str, maps: torch.Tensor) -> Reply:
    """The reply for ``maps`` ``(C, H, W)`` of ``layer``."""
    meta, buffers = stack_message(maps)
    return Reply({"layer": layer, "stack": meta}, buffers)


def first_maps(reply: Reply, budget: int) -> Reply | None:
    """The first maps of a map-stack reply that fit ``budget`` bytes (``content.partial`` says
    how many of how many); ``None`` when not even one fits."""
    stack = reply.meta["stack"]
    c, h, w = stack["shape"]
    range_bytes = len(reply.buffers[1]) // max(c, 1)
    k = min(c, budget // max(h * w + 2 * range_bytes, 1))
    if k < 1:
        return None
    labels = stack.get("labels")
    cut = {**stack, "shape": [k, h, w], **({"labels": labels[:k]} if labels else {})}
    buffers = [reply.buffers[0][: k * h * w], reply.buffers[1][: k * range_bytes],
               reply.buffers[2][: k * range_bytes], *reply.buffers[3:]]
    return Reply({**reply.meta, "stack": cut, "partial": {"channels": k, "of": c}}, buffers)


class Features(RequestKind):
    kind = "features"

    def key(self, p: Params) -> str:
        return f"features|{p['version']}|{p['layer']}"

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        return {"version": check_version(subject, msg),
                "layer": check_layer(msg.get("layer"), subject.layer_names)}

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        with subject.lock:
            # the first pass's maps when no request has taken them yet (then the cache has them)
            out = (subject.pending_maps.pop(p["layer"], None)
                   if p["version"] == subject.version else None)
            if out is None:
                out = feature_maps(subject.model, subject.x, [p["layer"]])[p["layer"]][0]
        return features_reply(p["layer"], out)

    def snapshot(self, reply: Reply, budget: int) -> Reply | None:
        return first_maps(reply, budget)
