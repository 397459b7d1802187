"""``objects`` and ``object_cam``: what a detector or segmenter predicts, and the map of one
predicted object.

For a detection or segmentation model (:func:`~cnnviz_widgets.engine.detection.model_family`,
or ``LayerExplorer(task=...)``) the explorer's targets are objects, not classes:

* a detector's object ``i`` is its ``i``-th detection of the input (boxes with a score of at
  least :data:`SCORE_FLOOR`, highest score first), explained by
  ``BoxTarget(label, box)`` of that detection (pytorch-grad-cam's ``FasterRCNNBoxScoreTarget``);
* a segmenter's object ``c`` is class ``c`` over the pixels predicted as ``c``, explained by
  ``RegionTarget(c, prediction == c)`` (``SemanticSegmentationTarget``).

:class:`ObjectTask` (kept on the :class:`~..subject.Subject` as ``subject.objects``) finds the
objects once per image and turns an object index into the engine's target, so that the other
tabs that explain a target (saliency, and the CAM tab where shown) explain the chosen object.

Replies (binary, little-endian; see ``js/src/objects.ts``):

* ``objects {version}``: ``task``, ``size`` ``[H, W]`` of the input, ``labels`` and
  ``label_names``; a detector adds ``floor`` and the buffers ``[boxes (K x 4 float32, input
  pixels x1, y1, x2, y2), scores (K float32)]``; a segmenter's ``labels`` are the classes it
  predicts somewhere (most pixels first, background last), with ``pixels`` per class and the
  buffer ``[mask]``: ``mask.shape`` ``[H, W]`` uint8, each pixel the position of its class in
  ``labels``.
* ``object_cam {version, method, layer, object, normalize}``: the map of one object as a
  one-map stack (what ``cam(model, x, layer, method, target)`` gives, quantised), with what
  it explains (``object``, ``label``, ``class_name``, ``score``, ``box``). ``normalize``:
  rescale the map inside the box and zero it outside (detectors only,
  :func:`~cnnviz_widgets.engine.detection.normalize_in_boxes`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ...engine import cam as cam_engine
from ...engine.detection import Detections, detections, model_family, segmentation
from ...engine.predictions import Prediction, class_name
from ...engine.regions import BoxTarget, RegionTarget
from ..cache import Reply
from ..i18n import Msg
from ..serialize import stack_message
from ..subject import Subject
from .base import Job, MessageError, Params, RequestKind, check_layer, check_version
from .cam import cam_method_name

TASKS = ("classification", "detection", "segmentation")
"""What an explorer's model does (``LayerExplorer(task=...)``)."""
OBJECT_TASKS = ("detection", "segmentation")
SCORE_FLOOR = 0.05
"""Lowest score of a detection sent to the front end (its slider filters above it);
torchvision's detectors drop boxes under 0.05 themselves by default."""
BACKGROUND = 0
"""The label of the background class (torchvision's and the demos' convention)."""


def model_task(model: nn.Module | None, task: str | None) -> str:
    """What ``model`` does: ``task`` when given (one of :data:`TASKS`, and not against what
    the model is), else what the model is (:func:`~cnnviz_widgets.engine.detection.
    model_family`), else ``"classification"``.

    A model that is not one of torchvision's detectors or segmenters may be declared one
    (``task="detection"`` for a model returning torchvision's ``{"boxes", "labels",
    "scores"}`` dicts, ``"segmentation"`` for one returning ``{"out": scores}``).

    Raises:
        ValueError: an unknown task, or one that contradicts the model.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; choose from {list(TASKS)}, or leave task=None "
                         "to take what the model is.")
    family = None if model is None else model_family(model)
    if task is None:
        return family or "classification"
    if family is not None and family != task:
        raise ValueError(f"task={task!r}, but {type(model).__name__} is a torchvision "
                         f"{family} model: pass task={family!r} or leave task out.")
    return task


@dataclass(frozen=True)
class Found:
    """The objects of one image: a detector's detections (highest score first), or a
    segmenter's predicted classes.

    Attributes:
        version: the image version they belong to.
        detections: ``Detections`` with a score of at least :data:`SCORE_FLOOR`, or ``None``.
        prediction: ``(H, W)`` int64 class per pixel (segmenter), or ``None``.
        classes: the classes predicted somewhere, most pixels first, background last
            (segmenter); empty for a detector.
        pixels: pixels per class of ``classes``.
    """

    version: int
    detections: Detections | None = None
    prediction: torch.Tensor | None = None
    classes: tuple[int, ...] = ()
    pixels: tuple[int, ...] = ()


def _sorted(found: Detections) -> Detections:
    """Detections ordered by score, highest first (ties: the model's order)."""
    order = torch.sort(-found.scores, stable=True).indices
    return Detections(found.boxes[order], found.labels[order], found.scores[order],
                      None if found.masks is None else found.masks[order])


class ObjectTask:
    """The objects of a detector or segmenter's input, as the explorer's targets (see the
    module docstring).

    Args:
        task: ``"detection"`` or ``"segmentation"``.
    """

    def __init__(self, task: str) -> None:
        if task not in OBJECT_TASKS:
            raise ValueError(f"ObjectTask is for {list(OBJECT_TASKS)}; got {task!r}.")
        self.task = task
        self._found: Found | None = None
        self._lock = threading.Lock()

    def found(self, subject: Subject) -> Found:
        """The objects of the current image (found once per image version)."""
        with subject.lock, self._lock:
            if self._found is None or self._found.version != subject.version:
                self._found = self._find(subject)
            return self._found

    def _find(self, subject: Subject) -> Found:
        if self.task == "detection":
            found = detections(subject.model, subject.x, score_threshold=SCORE_FLOOR)[0]
            return Found(subject.version, detections=_sorted(found))
        pred = segmentation(subject.model, subject.x)[0]
        labels, counts = torch.unique(pred, return_counts=True)
        pairs = sorted(zip(labels.tolist(), counts.tolist(), strict=True),
                       key=lambda lc: (lc[0] == BACKGROUND, -lc[1], lc[0]))
        return Found(subject.version, prediction=pred,
                     classes=tuple(int(c) for c, _ in pairs),
                     pixels=tuple(int(n) for _, n in pairs))

    # ------------------------------------------------------------------ targets

    def check(self, subject: Subject, target: Any) -> int:
        """An object index of a request; :class:`MessageError` naming the valid ones."""
        if not isinstance(target, int) or isinstance(target, bool):
            raise MessageError("the object must be an integer (a detection's index, or a "
                               "segmenter's class)")
        found = self.found(subject)
        if found.detections is not None:
            n = len(found.detections)
            if not 0 <= target < n:
                raise MessageError(
                    f"object {target} out of range: the detector found {n} boxes with a score "
                    f"of at least {SCORE_FLOOR} (objects 0..{n - 1})" if n else
                    f"object {target} out of range: the detector found no box with a score of "
                    f"at least {SCORE_FLOOR} in this image")
            return target
        if target not in found.classes:
            raise MessageError(
                f"class {target} is predicted nowhere in this image, so it has no region to "
                f"explain; the segmenter predicts classes {list(found.classes)}")
        return target

    def target(self, subject: Subject, index: int) -> BoxTarget | RegionTarget:
        """The engine's target of object ``index`` (checked)."""
        index = self.check(subject, index)
        found = self.found(subject)
        if found.detections is not None:
            return found.detections.target(index)
        assert found.prediction is not None
        return RegionTarget(index, found.prediction == index)

    def label(self, subject: Subject, index: int) -> int:
        """The class of object ``index``."""
        found = self.found(subject)
        return int(found.detections.labels[index]) if found.detections is not None else index

    def name(self, subject: Subject, index: int) -> str:
        """How object ``index`` is named: ``"circle #2"`` (a detection: its class and rank
        from 1) or ``"circle"`` (a segmenter's class)."""
        label = class_name(self.label(subject, index), subject.classes)
        return f"{label} #{index + 1}" if self.task == "detection" else label

    def score(self, subject: Subject, index: int) -> float:
        """A detection's score, or the share of the image's pixels predicted as the class."""
        found = self.found(subject)
        if found.detections is not None:
            return float(found.detections.scores[index])
        total = sum(found.pixels)
        return found.pixels[found.classes.index(index)] / total if total else 0.0

    def explained(self, subject: Subject, index: int) -> dict[str, Any]:
        """What a map of object ``index`` explains, as a class map's caption fields."""
        return {"target": index, "class_name": self.name(subject, index),
                "prob": self.score(subject, index)}

    def top(self, subject: Subject, k: int) -> list[Prediction]:
        """The first ``k`` objects as predictions (for the class buttons of other tabs)."""
        found = self.found(subject)
        indices = (range(len(found.detections)) if found.detections is not None
                   else found.classes)
        return [Prediction(int(i), self.name(subject, i), self.score(subject, i))
                for i in list(indices)[:k]]

    # ------------------------------------------------------------------ replies

    def reply(self, subject: Subject) -> Reply:
        """The ``objects`` reply of the current image (see the module docstring)."""
        found = self.found(subject)
        h, w = (int(s) for s in subject.x.shape[-2:])
        if found.detections is not None:
            d = found.detections
            labels = [int(v) for v in d.labels]
            return Reply({
                "task": "detection", "size": [h, w], "floor": SCORE_FLOOR, "labels": labels,
                "label_names": [class_name(v, subject.classes) for v in labels],
                "boxes": {"shape": [len(d), 4]}, "scores": {"shape": [len(d)]},
            }, [d.boxes.numpy().astype("<f4").tobytes(),
                d.scores.numpy().astype("<f4").tobytes()])
        assert found.prediction is not None
        if len(found.classes) > 256:
            raise ValueError(f"{len(found.classes)} classes in one image: the mask's uint8 "
                             "positions hold 256")
        position = torch.zeros(int(found.prediction.max()) + 1, dtype=torch.uint8)
        for i, c in enumerate(found.classes):
            position[c] = i
        mask = position[found.prediction].numpy()
        return Reply({
            "task": "segmentation", "size": [h, w], "labels": list(found.classes),
            "label_names": [class_name(c, subject.classes) for c in found.classes],
            "pixels": list(found.pixels), "mask": {"shape": [int(s) for s in mask.shape]},
        }, [np.ascontiguousarray(mask).tobytes()])


SNAPSHOT_OVERHEAD_BYTES = 16 * 2**10
"""Room left in the widget state's budget for the reply's JSON (labels, names, counts)."""


def object_task(subject: Subject) -> ObjectTask:
    """The subject's objects; :class:`MessageError` for a classifier."""
    if subject.objects is None:
        raise MessageError("this explorer's model is a classifier: it predicts no boxes or "
                           "regions (open LayerExplorer(detector) or LayerExplorer(task="
                           "'detection') for the objects view)")
    task: ObjectTask = subject.objects
    return task


class Objects(RequestKind):
    kind = "objects"

    def key(self, p: Params) -> str:
        return f"objects|{p['version']}"

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        object_task(subject)
        return {"version": check_version(subject, msg)}

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        return object_task(subject).reply(subject)

    def snapshot(self, reply: Reply, budget: int) -> Reply | None:
        """A segmenter's mask too large for the widget state (over about 512 x 512 px), kept
        at a lower resolution: every ``k``-th pixel in each direction (the middle one of each
        ``k`` x ``k`` cell), which the front end and the display picture scale up; the legend's
        pixel counts stay those of the full mask. A detector's reply is always small."""
        meta = reply.meta
        if meta.get("task") != "segmentation":
            return None
        h, w = (int(v) for v in meta["mask"]["shape"])
        room = budget - SNAPSHOT_OVERHEAD_BYTES
        k = 2
        while -(-h // k) * -(-w // k) > room:
            k += 1
        mask = np.frombuffer(reply.buffers[0], np.uint8).reshape(h, w)[k // 2::k, k // 2::k]
        return Reply({**meta, "mask": {"shape": [int(v) for v in mask.shape]},
                      "partial": {"step": k}}, [np.ascontiguousarray(mask).tobytes()])


class ObjectCam(RequestKind):
    kind = "object_cam"

    def __init__(self, methods: list[str]):
        self.methods = methods

    def key(self, p: Params) -> str:
        normalize = "box" if p["normalize"] else "image"
        return (f"object_cam|{p['version']}|{p['method']}|{p['object']}|{p['layer']}|"
                f"{normalize}")

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        objects = object_task(subject)
        if not subject.cam_layers:
            raise MessageError("no layer of this model outputs a grid for a CAM")
        version = check_version(subject, msg)
        method = cam_method_name(msg.get("method"), self.methods)
        layer = check_layer(msg.get("layer"), subject.cam_layers)
        normalize = msg.get("normalize", False)
        if not isinstance(normalize, bool):
            raise MessageError("normalize must be true or false")
        if normalize and objects.task != "detection":
            raise MessageError("normalize rescales the map inside a detector's box; a "
                               "segmenter's region has no box (send normalize false)")
        return {"version": version, "method": method, "layer": layer,
                "object": objects.check(subject, msg.get("object")), "normalize": normalize}

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        objects = object_task(subject)
        method, layer, index = p["method"], p["layer"], p["object"]

        def report(done: int, total: int) -> None:
            job.progress(done, total, Msg("progress.cam", method=method, layer=layer,
                                          done=done, total=total))

        with subject.lock:
            target = objects.target(subject, index)
            heat = cam_engine.cam(subject.model, subject.x, layer, method=method,
                                  target=target, normalize_in_boxes=p["normalize"],
                                  progress=report)
        meta, buffers = stack_message(np.asarray(heat, np.float32), range_dtype="float32")
        box = target.boxes[0].tolist() if isinstance(target, BoxTarget) else None
        return Reply({"stack": meta, "method": method, "layer": layer, "object": index,
                      "label": objects.label(subject, index),
                      "class_name": objects.name(subject, index),
                      "score": objects.score(subject, index), "box": box,
                      "normalize": p["normalize"]}, buffers)
