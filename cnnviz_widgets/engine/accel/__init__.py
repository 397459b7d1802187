"""Faster ways to run a model many times on one image's variants (ScoreCAM's masked inputs).

Everything here computes what the plain model computes, to float rounding, and is checked
against it before use; which of the equivalent ways runs is decided by timing them on the first
real batches (:mod:`.trial`), never by a fixed rule, and the decisions are cached per model.

Modules: :mod:`.inference` (the BatchNorm-folded, channels-last copy, :class:`FastForward`, the
per-model cache), :mod:`.winograd` (Winograd F(4x4, 3x3) convolutions that time themselves),
:mod:`.stem` (the first convolution of masked images by linearity), :mod:`.masked` (ScoreCAM's
masked forward passes, choosing the stem), :mod:`.trial` (timing candidates on the work).
"""

from __future__ import annotations

from torch import nn

from .inference import FastForward, accelerated_entry, forget, inference_copy, outputs_agree
from .trial import Trial

__all__ = [
    "FastForward",
    "Trial",
    "describe",
    "forget",
    "inference_copy",
    "outputs_agree",
]


def describe(model: nn.Module) -> str:
    """What the first-use trials chose for ``model``, in words: the copy or the model itself
    per input shape, the linear stem, and how many Winograd convolutions run as Winograd for
    at least one input shape (``""`` if nothing is cached for the model)."""
    entry = accelerated_entry(model)
    if entry is None:
        return ""
    parts = []
    if not entry.traceable:
        parts.append("no copy")
    for key, value in entry.notes.items():
        if not isinstance(key, tuple) or not key:
            continue
        if key[0] == "copy or model" and isinstance(value, Trial) and value.choice:
            parts.append(value.choice)
        elif key[0] == "stem" and len(key) == 3 and value is True:
            parts.append("stem")
    convs = [v for k, v in entry.notes.items() if isinstance(k, tuple) and k[0] == "winograd"]
    if convs and not entry.winograd:
        parts.append("winograd off")
    elif convs:
        chosen = sum(any(t.choice == "winograd" for t in trials.values()) for trials in convs)
        parts.append(f"winograd {chosen}/{len(convs)}")
    return ", ".join(parts)
