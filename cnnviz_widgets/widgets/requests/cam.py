"""``cam``: a class activation map of the input, by one method, for one class, at one layer."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from ...engine.cam.registry import method_class
from ..cache import Reply
from ..serialize import stack_message
from ..subject import Subject
from .base import (
    Job,
    MessageError,
    Params,
    RequestKind,
    canonical,
    check_layer,
    check_target,
    check_version,
    target_key,
)


def cam_method_name(name: Any, allowed: list[str]) -> str:
    """The canonical name of a CAM method, aliases included (``"GradCAM++"``)."""
    if isinstance(name, str):
        with contextlib.suppress(ValueError):  # canonical() raises the message with choices
            name = method_class(name).name
    return canonical(name, allowed, "CAM method")


def class_agnostic(method: str) -> bool:
    """Whether ``method``'s map is the same for every class (EigenCAM, KPCA_CAM, FEM)."""
    return not method_class(method).uses_targets


def validate_cam(subject: Subject, msg: dict[str, Any], methods: list[str]) -> Params:
    """Shared by ``cam`` and ``metrics``: version, method, layer and target (``None`` for a
    class-agnostic method, whatever the message says)."""
    method = cam_method_name(msg.get("method"), methods)
    target = None if class_agnostic(method) else check_target(subject, msg.get("target"))
    return {"version": check_version(subject, msg), "method": method,
            "target": target, "layer": check_layer(msg.get("layer"), subject.cam_layers)}


def cam_key(kind: str, p: Params) -> str:
    return f"{kind}|{p['version']}|{p['method']}|{target_key(p['target'])}|{p['layer']}"


def explained(subject: Subject, target: int | None) -> dict[str, Any]:
    """What a map explains, for its label: the class, its name and its probability."""
    if target is None:
        return {"target": None, "class_name": None, "prob": None}
    if subject.objects is not None:  # a detection or a segmented class: its name and score
        found: dict[str, Any] = subject.objects.explained(subject, target)
        return found
    return {"target": target, "class_name": subject.class_name(target),
            "prob": float(subject.probabilities()[target])}


def cam_reply(subject: Subject, p: Params, layer: str, heat: np.ndarray) -> Reply:
    meta, buffers = stack_message(heat[None], range_dtype="float32")
    return Reply({"stack": meta, "method": p["method"], "layer": layer,
                  **explained(subject, p["target"])}, buffers)


class Cam(RequestKind):
    kind = "cam"

    def __init__(self, methods: list[str]):
        self.methods = methods

    def key(self, p: Params) -> str:
        return cam_key(self.kind, p)

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        if not subject.cam_layers:
            raise MessageError("no layer of this model outputs a grid for a CAM")
        return validate_cam(subject, msg, self.methods)

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        maps = subject.cam_maps(p["method"], p["target"], p["layer"], job.progress)
        return cam_reply(subject, p, p["layer"], maps[p["layer"]])

    def also(self, subject: Subject, p: Params) -> dict[str, Reply]:
        """Replies computed on the way (every slider layer of a one-pass method), by key."""
        maps = subject.cam_maps(p["method"], p["target"], p["layer"], lambda *a: None)
        return {self.key({**p, "layer": layer}): cam_reply(subject, p, layer, m)
                for layer, m in maps.items() if layer != p["layer"]}
