"""What a gradient is taken of: picking the model's output tensor and the score per sample.

* :func:`select_output` finds the score tensor in whatever the model returns: a tensor, a tuple
  or list (first tensor), a dict (``"logits"``, ``"out"``, else the first tensor), an object with
  ``.logits`` (Hugging Face style), or a namedtuple (``.logits`` / first tensor field). An
  ``output=`` selector overrides that: a key, an attribute name, an index or a callable.
* :func:`target_scores` turns a ``target`` (None = predicted class, an int, one int per sample,
  or a callable on one sample's output like pytorch-grad-cam's ``ClassifierOutputTarget``, or a
  list of such callables) into the ``(N,)`` scores to differentiate.
* :func:`select_scores` is :func:`select_output` that also keeps a detection model's output, a
  list of one ``{"boxes", "labels", "scores"}`` dict per image, as it is (:data:`Scores`), for
  callable targets such as :class:`~cnnviz_widgets.engine.regions.BoxTarget`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

OutputSelector = str | int | Callable[[Any], torch.Tensor] | None
Target = int | Sequence[Any] | Callable[[Any], torch.Tensor] | None
Scores = torch.Tensor | list[Mapping[str, torch.Tensor]]
"""What targets score: a ``(N, ...)`` tensor, or one detection dict per image."""


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


def _apply_selector(output: Any, selector: OutputSelector) -> Any:
    try:
        if callable(selector):
            return selector(output)
        if isinstance(selector, str):
            return output[selector] if isinstance(output, Mapping) else getattr(output, selector)
        if isinstance(selector, int):
            return output[selector]
    except (KeyError, IndexError, AttributeError) as err:
        raise OutputSelectionError(
            f"output={selector!r} does not select anything from the model's output "
            f"({_describe(output)})."
        ) from err
    raise OutputSelectionError(
        f"output= must be a key/attribute name, an index or a callable; got "
        f"{type(selector).__name__}."
    )


def select_output(output: Any, selector: OutputSelector = None) -> torch.Tensor:
    """The tensor of scores inside a model's output (see module docstring)."""
    if selector is not None:
        chosen = _apply_selector(output, selector)
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


def is_detection_output(output: Any) -> bool:
    """Whether ``output`` is a torchvision detector's eval output: a non-empty list or tuple of
    dicts, each with ``"boxes"``, ``"labels"`` and ``"scores"``."""
    return (
        isinstance(output, (list, tuple))
        and len(output) > 0
        and all(
            isinstance(o, Mapping) and all(k in o for k in ("boxes", "labels", "scores"))
            for o in output
        )
    )


def select_scores(output: Any, selector: OutputSelector = None) -> Scores:
    """What targets are computed on: :func:`select_output`, except that a detection model's
    output (:func:`is_detection_output`, also when ``output=`` selects it) is returned as a
    list of its per-image dicts."""
    chosen = output if selector is None else _apply_selector(output, selector)
    if is_detection_output(chosen):
        return list(chosen)
    return select_output(output, selector)


def batch_count(scores: Scores) -> int:
    """Number of images ``N`` that :data:`Scores` cover."""
    return len(scores) if isinstance(scores, list) else int(scores.shape[0])


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


_SEVERAL_BOXES = (
    " To explain several boxes (or regions, or classes) of one image, call "
    "cam_per_target(model, x, layer, method, targets) for one map per target, or pass "
    "BoxTarget(labels, boxes) for one map of them all."
)


def resolve_targets(
    scores: Scores, target: Target, *, require_match: bool = True
) -> list[int | Callable]:
    """One target per sample: a class index or a callable on that sample's output.

    ``scores`` is the selected model output (:func:`select_scores`): ``(N, K)`` for a
    classifier (any ``(N, ...)`` works with callable targets), or one detection dict per image
    (callable targets only, e.g. ``BoxTarget``).

    ``require_match``: ``scores`` are those of the unperturbed input, so a target that can
    check whether it has anything to explain there (``BoxTarget.check_match``: a box that
    matches no detection) raises :class:`TargetError` now instead of giving an empty map.
    Pass ``False`` for perturbed inputs (noisy copies, interpolation paths).
    """
    n = batch_count(scores)
    if target is None:
        if isinstance(scores, list):
            raise TargetError(
                "A detection model has no single predicted class per image, so target= is "
                "needed: a BoxTarget(label, box) per image, e.g. from "
                "cnnviz_widgets.detections(model, x)[i].box_target()."
            )
        if scores.ndim != 2:
            raise TargetError(
                f"The model output has shape {tuple(scores.shape)}, not (N, classes), so there "
                "is no predicted class to use by default. Pass target= a callable that reduces "
                "one sample's output to a score (RegionTarget(label, mask) for a segmentation "
                "model)."
            )
        return [int(i) for i in scores.detach().argmax(dim=1).tolist()]
    if callable(target):
        resolved: list[int | Callable] = [target] * n
        if require_match:
            _check_matches(scores, resolved)
        return resolved
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
            several = len(target) > n and all(callable(t) for t in target)
            raise TargetError(
                f"target has {len(target)} entries but the batch has {n} images; give one per "
                "image, or a single int for all." + (_SEVERAL_BOXES if several else "")
            )
        items = list(target)
    else:
        items = [target] * n
    resolved = []
    for i, item in enumerate(items):
        if callable(item):
            resolved.append(item)
            continue
        if isinstance(scores, list) or scores.ndim != 2:
            got = (
                "one {'boxes', 'labels', 'scores'} dict per image (a detection model)"
                if isinstance(scores, list)
                else f"shape {tuple(scores.shape)}"
            )
            raise TargetError(
                f"An integer target needs (N, classes) model output; got {got}. Pass a "
                "callable target instead: BoxTarget(label, box) for a detection model, "
                "RegionTarget(label, mask) for a segmentation model."
            )
        where = "target" if len(items) == 1 or not isinstance(target, Sequence) else f"target[{i}]"
        resolved.append(_check_class(item, scores.shape[1], where))
    if require_match:
        _check_matches(scores, resolved)
    return resolved


def _check_matches(scores: Scores, targets: Sequence[int | Callable]) -> None:
    """Let each target that can (``check_match(output, image)``) say it has nothing to explain."""
    for i, t in enumerate(targets):
        check = getattr(t, "check_match", None)
        if callable(check):
            check(scores[i], i)


def check_targets_fit(target: Target, height: int, width: int) -> None:
    """Check targets that know input geometry (``check_image(height, width)``: a box outside
    the input) before any pass runs; other targets are left to :func:`resolve_targets`."""
    items = target if isinstance(target, (list, tuple)) else [target]
    for item in items:
        check = getattr(item, "check_image", None)
        if callable(check):
            check(height, width)


def target_scores(scores: Scores, targets: Sequence[int | Callable]) -> torch.Tensor:
    """``(N,)`` scores: ``scores[i, t]`` for a class index, ``t(scores[i])`` for a callable."""
    values = []
    for i, t in enumerate(targets):
        if callable(t):
            sample = scores[i]
            value = t(sample)
            if not isinstance(value, torch.Tensor):
                ref = sample if isinstance(sample, torch.Tensor) else sample["scores"]
                value = torch.as_tensor(value, dtype=ref.dtype, device=ref.device)
            values.append(value.reshape(()) if value.numel() == 1 else value.sum())
        else:
            if isinstance(scores, list):
                raise TargetError("An integer target cannot score a detection model's output.")
            values.append(scores[i, t])
    return torch.stack(values)
