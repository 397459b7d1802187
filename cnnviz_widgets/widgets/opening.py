"""What an explorer opens: the model, its task, input normalisation and first image.

:func:`open_model` turns the constructor's ``model=`` (a module, a torchvision model name, or
``None`` for a bundled demo) and ``task=`` into an :class:`Opened`; the widget then builds its
:class:`~.subject.Subject` from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..demo import DETECTOR_CAM_LAYER, DemoModel, demo_detector, demo_model, demo_segmenter
from ..demo.detection import ShapesFCOS
from ..engine.models import build_model, check_model
from .i18n import Msg
from .requests.objects import OBJECT_TASKS, model_task

UNNORMALISED = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
"""``(mean, std)`` of a model that takes [0, 1] RGB (torchvision's detectors normalise inside,
and so do the bundled detector and segmenter)."""


@dataclass(frozen=True)
class Opened:
    """The constructor's arguments, resolved.

    Attributes:
        model: the module (checked, on ``device`` when one was given).
        task: ``"classification"``, ``"detection"`` or ``"segmentation"``.
        weights: the torchvision weights entry (its transforms and classes), or ``None``.
        classes: class names, or ``None``.
        image: the first image (``None``: the bundled cat photo).
        mean, std: the input normalisation, or ``None`` for ImageNet's.
        size: input side in pixels for images loaded without ``weights``, or ``None``.
        note: a note for the title (untrained demo, random weights), or ``None``.
        demo: the bundled classifier demo when it was opened (its dataset examples), else
            ``None``.
        cam_layer: the layer the CAM tab and the objects view start at when it is not the
            engine's default (the demo detector's class tower, where Grad-CAM of a box points
            into the box), else ``None``.
    """

    model: nn.Module
    task: str
    weights: Any
    classes: Sequence[str] | None
    image: Any
    mean: Sequence[float] | None
    std: Sequence[float] | None
    size: int | None
    note: Msg | None
    demo: DemoModel | None
    cam_layer: str | None = None


def open_model(
    model: nn.Module | str | None,
    task: str | None,
    *,
    weights: Any,
    classes: Sequence[str] | None,
    image: Any,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    size: int | None,
    device: torch.device | str | None,
) -> Opened:
    """Resolve what an explorer opens (see :class:`~.explorer.LayerExplorer`'s arguments):
    ``model=None`` opens the bundled demo of ``task`` (ShapesNet for a classifier, the shapes
    detector or segmenter) on one of its samples; a string builds that torchvision model.
    Arguments given explicitly win over the demo's.

    Raises:
        TypeError: ``model`` is not a module instance (a class, a function, weights...).
        ValueError: an unknown ``task``, or one that contradicts the model.
    """
    note: Msg | None = None
    demo: DemoModel | None = None
    cam_layer: str | None = None
    if model is None:
        wanted = model_task(None, task)
        if wanted in OBJECT_TASKS:
            scenes = (demo_detector if wanted == "detection" else demo_segmenter)(
                allow_untrained=True)
            model, trained = scenes.model, scenes.trained
            classes = classes if classes is not None else scenes.classes
            image = scenes.samples[0] if image is None else image
            mean, std = mean or UNNORMALISED[0], std or UNNORMALISED[1]
            size = size or scenes.size
        else:
            demo = demo_model(allow_untrained=True)
            model, trained = demo.model, demo.trained
            classes = classes if classes is not None else demo.classes
            image = demo.samples[0] if image is None else image
            mean, std = mean or demo.mean, std or demo.std
            size = size or demo.size
        if not trained:
            note = Msg("title.untrained")
    elif isinstance(model, str):
        built = build_model(model, "DEFAULT" if weights is None else weights)
        if built.note:
            print(built.note)
        model, weights = built.model, built.weights
        note = None if built.weights is not None else Msg("title.random_weights")
    model = check_model(model)
    if device is not None:
        model = model.to(device)
    task = model_task(model, task)
    if isinstance(model, ShapesFCOS):  # the demo detector, opened by task= or given
        cam_layer = DETECTOR_CAM_LAYER
    if task == "detection" and weights is None:  # torchvision's detectors normalise inside
        mean, std = mean or UNNORMALISED[0], std or UNNORMALISED[1]
    return Opened(model, task, weights, classes, image, mean, std, size, note, demo, cam_layer)
