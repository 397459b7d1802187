"""The request kinds of the explorer, one module each, registered in one table.

``request_kinds(cam_methods, saliency_methods)`` builds the table ``{kind: handler}``; its keys
are the only list of kinds (messages, trait names ``shown_<kind>`` and tests read it).
"""

from __future__ import annotations

from typing import Any

from .actmax import ActivationMax
from .arithmetic import Arithmetic
from .base import Job, MessageError, Params, RequestKind
from .cam import Cam
from .evaluation import EvaluationWorst
from .examples import Examples
from .features import Features, features_reply
from .kernels import Kernels
from .metrics import Metrics
from .objects import ObjectCam, Objects
from .predictions import Predictions
from .saliency import Saliency
from .sanity import Sanity


def request_kinds(cam_methods: list[str], saliency_methods: list[str]) -> dict[str, RequestKind]:
    """The handler of every request kind, keyed by kind."""
    handlers: list[RequestKind] = [
        Features(), Kernels(), Predictions(), Cam(cam_methods), Metrics(cam_methods),
        Saliency(saliency_methods), ActivationMax(), Arithmetic(), Examples(),
        Sanity(cam_methods, saliency_methods), EvaluationWorst(), Objects(),
        ObjectCam(cam_methods),
    ]
    return {h.kind: h for h in handlers}


def request_key(kind: str, **p: Any) -> str:
    """The cache key of a request with validated parameters ``p``."""
    table = request_kinds([], [])
    if kind not in table:
        raise MessageError(f"unknown request kind {kind!r}")
    return table[kind].key(p)


KIND_NAMES = tuple(request_kinds([], []))
"""Every request kind."""
SHOWN_KINDS = tuple(k for k, h in request_kinds([], []).items() if h.shown)
"""Kinds whose latest reply is kept in the widget state (trait ``shown_<kind>``)."""

__all__ = [
    "KIND_NAMES",
    "SHOWN_KINDS",
    "Job",
    "MessageError",
    "Params",
    "RequestKind",
    "features_reply",
    "request_key",
    "request_kinds",
]
