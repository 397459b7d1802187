"""``arithmetic``: how one conv unit's value is made (patch x kernel, summed, plus the bias)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from ...engine.arithmetic import unit_arithmetic
from ..cache import Reply
from ..subject import Subject
from .base import Job, MessageError, Params, RequestKind, check_layer, check_version


class Arithmetic(RequestKind):
    """Reply meta: the unit, ``kernel_shape`` ``[C_in/groups, kh, kw]``, ``bias``, ``value``,
    ``output``, ``input_channels``, ``box``; buffers: patch, kernel and products as float32
    little-endian (exact values: the point is that they add up)."""

    kind = "arithmetic"
    shown = False  # asked for when a unit is pinned; not part of the saved picture

    def key(self, p: Params) -> str:
        return f"arithmetic|{p['version']}|{p['layer']}|{p['channel']}|{p['row']}|{p['col']}"

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        layer = check_layer(msg.get("layer"), subject.layer_names)
        if not isinstance(subject.modules[layer], nn.Conv2d):
            raise MessageError(f"{layer} is not a Conv2d: its units are not kernel sums")
        info = next(i for i in subject.layer_infos if i.name == layer)
        shape = info.shape or [0, 0, 0]
        unit = [msg.get(k) for k in ("channel", "row", "col")]
        inside = [v for v, n in zip(unit, shape, strict=True)
                  if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < n]
        if len(inside) != 3:
            raise MessageError(f"channel, row and col must be integers inside {shape}")
        channel, row, col = inside
        return {"version": check_version(subject, msg), "layer": layer, "channel": channel,
                "row": row, "col": col}

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        with subject.lock:
            a = unit_arithmetic(subject.model, subject.x, p["layer"], p["channel"], p["row"],
                                p["col"])
        meta = {"layer": a.layer, "channel": a.channel, "row": a.row, "col": a.col,
                "kernel_shape": list(a.kernel.shape), "bias": a.bias, "value": a.value,
                "output": a.output, "input_channels": a.input_channels, "box": list(a.box)}
        buffers = [np.ascontiguousarray(t.numpy(), "<f4").tobytes()
                   for t in (a.patch, a.kernel, a.products)]
        return Reply(meta, buffers)
