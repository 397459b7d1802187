"""``kernels``: a conv layer's weights, filter by filter (first layers also as RGB filters)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from ...engine import kernels
from ...render.kernel_display import rgb_filters
from ..cache import Reply
from ..serialize import stack_message
from ..subject import Subject
from .base import Job, MessageError, Params, RequestKind, check_layer
from .features import first_maps


class Kernels(RequestKind):
    kind = "kernels"
    per_image = False

    def key(self, p: Params) -> str:
        return f"kernels|{p['layer']}"

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        layer = check_layer(msg.get("layer"), subject.layer_names)
        if not isinstance(subject.modules[layer], nn.Conv2d):
            raise MessageError(f"{layer} is not a Conv2d: it has no kernels")
        return {"layer": layer}

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        k = kernels(subject.model, p["layer"])
        o, i, kh, kw = k.shape
        meta, buffers = stack_message(k.reshape(o * i, kh, kw))
        full: dict[str, Any] = {
            "stack": meta,
            "kernel_shape": [o, i, kh, kw],
            "absmax": float(k.abs().max()) if k.numel() else 1.0,
            "layer": p["layer"],
        }
        if i == 3:
            full["rgb"] = {"shape": [o, kh, kw, 3]}
            buffers.append(np.ascontiguousarray(rgb_filters(k, scale="filter")).tobytes())
        return Reply(full, buffers)

    def snapshot(self, reply: Reply, budget: int) -> Reply | None:
        if "rgb" in reply.meta:
            return None  # RGB filters are small: a first layer that does not fit is unusual
        return first_maps(reply, budget)
