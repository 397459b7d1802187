"""What the model predicts for an input: class probabilities and the top classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .borrow import borrowed
from .inputs import prepare_input
from .targets import OutputSelector, select_output


@dataclass(frozen=True)
class Prediction:
    """One class of a prediction: its index, its name and its softmax probability in [0, 1]."""

    index: int
    name: str
    prob: float


def class_probabilities(
    model: nn.Module, x: torch.Tensor, output: OutputSelector = None
) -> torch.Tensor:
    """Softmax probabilities of the first image of ``x`` ``(N, C, H, W)``: ``(num_classes,)``
    float32 on the CPU, from one forward pass without gradients (model left as it was)."""
    x = prepare_input(model, x)
    with borrowed(model), torch.no_grad():
        return probabilities_of(model(x[:1]), output)


def probabilities_of(model_output: Any, output: OutputSelector = None) -> torch.Tensor:
    """Softmax probabilities of the first sample of a model's output (a tensor of scores, or a
    tuple/dict/object holding one, see :func:`select_output`): ``(num_classes,)`` float32 CPU."""
    scores = select_output(model_output, output)
    return torch.softmax(scores[0].detach().float().reshape(-1), 0).cpu()


def class_name(index: int, classes: Sequence[str] | None) -> str:
    """The name of class ``index``: ``classes[index]``, or ``"class {index}"`` without names."""
    if classes is not None and 0 <= index < len(classes):
        return str(classes[index])
    return f"class {index}"


def top_predictions(
    probs: torch.Tensor, k: int = 5, classes: Sequence[str] | None = None
) -> list[Prediction]:
    """The ``k`` most probable classes of ``probs`` ``(num_classes,)``, most probable first
    (ties: lower index first)."""
    order = torch.sort(-probs, stable=True).indices[:k]
    return [Prediction(int(i), class_name(int(i), classes), float(probs[i])) for i in order]
