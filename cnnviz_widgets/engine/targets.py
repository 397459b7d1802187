"""What a gradient is taken of: picking the model's output tensor and the score per sample.

* :func:`select_output` finds the score tensor in whatever the model returns: a tensor, a tuple
  or list (first tensor), a dict (``"logits"``, ``"out"``, else the first tensor), an object with
  ``.logits`` (Hugging Face style), or a namedtuple (``.logits`` / first tensor field). An
  ``output=`` selector overrides that: a key, an attribute name, an index or a callable.
* :func:`target_scores` turns a ``target`` (None = predicted class, an int, one int per sample,
  or a callable on one sample's output like pytorch-grad-cam's ``ClassifierOutputTarget``, or a
  list of such callables) into the ``(N,)`` scores to differentiate.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

OutputSelector = str | int | Callable[[Any], torch.Tensor] | None
Target = int | Sequence[Any] | Callable[[torch.Tensor], torch.Tensor] | None


class OutputSelectionError(TypeError):
    """The model's output holds no tensor that can be scored, or the selector does not fit."""


class TargetError(ValueError):
    """A target that does not fit the model output (out of range, wrong type or count)."""


def _describe(output: Any) -> str:
    if isinstance(output, torch.Tensor):
        return f"Tensor{tuple(output.shape)}"
    if isinstance(output, Mapping):
        return "dict with keys " + ", ".join(repr(k) for k in output)
    if isinstance(output, (tuple, list)):
        return f"{type(output).__name__} of " + ", ".join(_describe(o) for o in output)
    return type(output).__name__


def select_output(output: Any, selector: OutputSelector = None) -> torch.Tensor:
    """The tensor of scores inside a model's output (see module docstring)."""
    if selector is not None:
        try:
            if callable(selector):
                chosen = selector(output)
            elif isinstance(selector, str):
                chosen = (
                    output[selector] if isinstance(output, Mapping) else getattr(output, selector)
                )
            elif isinstance(selector, int):
                chosen = output[selector]
            else:
                raise OutputSelectionError(
                    f"output= must be a key/attribute name, an index or a callable; got "
                    f"{type(selector).__name__}."
                )
        except (KeyError, IndexError, AttributeError) as err:
            raise OutputSelectionError(
                f"output={selector!r} does not select anything from the model's output "
                f"({_describe(output)})."
            ) from err
        if not isinstance(chosen, torch.Tensor):
            raise OutputSelectionError(
                f"output={selector!r} selected a {type(chosen).__name__}, not a tensor."
            )
        return chosen
    found = _default_tensor(output)
    if found is None:
        raise OutputSelectionError(
            f"The model returned {_describe(output)}, which holds no tensor of scores. Pass "
            "output=... to say which part to use: a dict key, an attribute name, a tuple index "
            "or a function of the output."
        )
    return found


def _default_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        for key in ("logits", "out"):
            if isinstance(output.get(key), torch.Tensor):
                return output[key]
        for value in output.values():
            found = _default_tensor(value)
            if found is not None:
                return found
        return None
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)):
        for value in output:
            found = _default_tensor(value)
            if found is not None:
                return found
    return None


def _check_class(index: Any, num_classes: int, where: str) -> int:
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        if isinstance(index, torch.Tensor) and index.numel() == 1 and not index.is_floating_point():
            index = int(index)
        else:
            raise TargetError(
                f"{where} must be an integer class index; got {index!r} ({type(index).__name__})."
            )
    index = int(index)
    if not 0 <= index < num_classes:
        raise TargetError(
            f"{where} = {index} is out of range: the model has {num_classes} outputs, so use "
            f"0..{num_classes - 1}."
        )
    return index


def resolve_targets(scores: torch.Tensor, target: Target) -> list[int | Callable]:
    """One target per sample: a class index or a callable on that sample's output.

    ``scores`` is the selected model output, ``(N, K)`` for a classifier (any ``(N, ...)``
    works with callable targets).
    """
    n = scores.shape[0]
    if target is None:
        if scores.ndim != 2:
            raise TargetError(
                f"The model output has shape {tuple(scores.shape)}, not (N, classes), so there "
                "is no predicted class to use by default. Pass target= a callable that reduces "
                "one sample's output to a score."
            )
        return [int(i) for i in scores.detach().argmax(dim=1).tolist()]
    if callable(target):
        return [target] * n
    if isinstance(target, (str, bytes)):
        raise TargetError(f"target must be an int, a list or a callable; got {target!r}.")
    if isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.is_complex():
            raise TargetError(
                f"target must be an integer class index (or one per image); got a {target.dtype} "
                "tensor. Pass target.long() if its values are whole class numbers."
            )
        target = target.tolist() if target.ndim else int(target)
    if isinstance(target, Sequence):
        if len(target) != n:
            raise TargetError(
                f"target has {len(target)} entries but the batch has {n} images; give one per "
                "image, or a single int for all."
            )
        items = list(target)
    else:
        items = [target] * n
    resolved: list[int | Callable] = []
    for i, item in enumerate(items):
        if callable(item):
            resolved.append(item)
            continue
        if scores.ndim != 2:
            raise TargetError(
                f"An integer target needs (N, classes) model output; got shape "
                f"{tuple(scores.shape)}. Pass a callable target instead."
            )
        where = "target" if len(items) == 1 or not isinstance(target, Sequence) else f"target[{i}]"
        resolved.append(_check_class(item, scores.shape[1], where))
    return resolved


def target_scores(scores: torch.Tensor, targets: Sequence[int | Callable]) -> torch.Tensor:
    """``(N,)`` scores: ``scores[i, t]`` for a class index, ``t(scores[i])`` for a callable."""
    values = []
    for i, t in enumerate(targets):
        if callable(t):
            value = t(scores[i])
            if not isinstance(value, torch.Tensor):
                value = torch.as_tensor(value, dtype=scores.dtype, device=scores.device)
            values.append(value.reshape(()) if value.numel() == 1 else value.sum())
        else:
            values.append(scores[i, t])
    return torch.stack(values)
