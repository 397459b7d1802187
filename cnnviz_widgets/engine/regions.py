"""Targets beyond classes: a detected box, a segmented region.

* :class:`BoxTarget` explains boxes of a torchvision detection model (Faster R-CNN, RetinaNet,
  FCOS, SSD/SSDlite, Mask R-CNN), whose output per image is ``{"boxes", "labels", "scores"}``.
  The score is pytorch-grad-cam's ``FasterRCNNBoxScoreTarget``: for each box given, the output
  box of highest IoU with it counts ``IoU + score`` when that IoU is above ``iou_threshold``
  (0.5) and its label is the box's label, else 0; the target's score is the sum over its boxes.
* :class:`RegionTarget` explains a class over a mask of a segmentation model (FCN, DeepLabV3,
  LRASPP: the ``"out"`` entry, ``(classes, H, W)`` per image): pytorch-grad-cam's
  ``SemanticSegmentationTarget``, ``sum(out[label] * mask)``.

Both are callables on one image's output, so they go wherever ``target=`` takes a callable, one
per image or one for the whole batch. Coordinates are input pixels: ``(x1, y1, x2, y2)`` with
pixel ``i`` covering ``[i, i + 1)``, as torchvision's boxes.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .targets import TargetError

DETECTION_KEYS = ("boxes", "labels", "scores")
"""The entries a torchvision detection model returns for each image in eval mode."""


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """``(K, M)`` IoU of ``(K, 4)`` and ``(M, 4)`` boxes ``(x1, y1, x2, y2)``.

    The arithmetic of ``torchvision.ops.box_iou`` operation for operation (same values to the
    bit), differentiable in both arguments.
    """
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    union = area1[:, None] + area2 - inter
    return inter / union


def _label(value: Any, where: str) -> int:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = int(value)
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise TargetError(f"{where} must be a non-negative integer class label; got {value!r}.")
    return int(value)


def _as_boxes(box: Any) -> torch.Tensor:
    """``(K, 4)`` float32 CPU tensor from one box or a list/array/tensor of boxes."""
    try:
        if isinstance(box, torch.Tensor):
            t = box.detach().to("cpu", torch.float32)
        else:
            t = torch.as_tensor(np.asarray(box, dtype=np.float64), dtype=torch.float32)
    except (TypeError, ValueError) as err:
        raise TargetError(
            f"BoxTarget box must be (x1, y1, x2, y2) numbers or a list of them; got {box!r}."
        ) from err
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[1] != 4 or t.shape[0] == 0:
        raise TargetError(
            f"BoxTarget box must be (x1, y1, x2, y2) or a list of such boxes, shape (4,) or "
            f"(K, 4); got shape {tuple(t.shape)}."
        )
    if not bool(torch.isfinite(t).all()):
        raise TargetError(f"BoxTarget box has NaN or infinite coordinates: {t.tolist()}.")
    return t


class BoxTarget:
    """Explain one or several boxes of a detection model (pytorch-grad-cam's
    ``FasterRCNNBoxScoreTarget``, see the module docstring).

    Args:
        label: the class label of the box, or one label per box.
        box: ``(x1, y1, x2, y2)`` in input pixels, or a list / ``(K, 4)`` array of boxes (their
            scores are summed: one map for all of them).
        iou_threshold: an output box counts when its IoU with a given box is above this.

    The gradient of the IoU term has a kink at a box equal to a detection (the min/max of the
    corners tie there, and autograd takes one side): detections a few 1e-5 px apart (a batch
    against one image) can give visibly different gradient maps for such a box. The reference
    target has the same kink.

    Attributes:
        labels: ``K`` labels, one per box.
        boxes: ``(K, 4)`` float32 CPU tensor.
    """

    def __init__(self, label: Any, box: Any, iou_threshold: float = 0.5) -> None:
        self.boxes = _as_boxes(box)
        k = self.boxes.shape[0]
        if isinstance(label, (Sequence, np.ndarray)) or (
            isinstance(label, torch.Tensor) and label.ndim > 0
        ):
            labels = [_label(v, "BoxTarget label") for v in list(label)]
            if len(labels) != k:
                raise TargetError(
                    f"BoxTarget has {len(labels)} labels for {k} boxes; give one label per box "
                    "or a single label for all."
                )
        else:
            labels = [_label(label, "BoxTarget label")] * k
        self.labels = tuple(labels)
        if not 0 <= float(iou_threshold) < 1:
            raise TargetError(f"iou_threshold must be in [0, 1); got {iou_threshold!r}.")
        self.iou_threshold = float(iou_threshold)
        bad = (self.boxes[:, 2] <= self.boxes[:, 0]) | (self.boxes[:, 3] <= self.boxes[:, 1])
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0])
            raise TargetError(
                f"BoxTarget box {self._fmt(i)} is empty: boxes are (x1, y1, x2, y2) with "
                "x1 < x2 and y1 < y2 (corners, not (x, y, width, height): convert with "
                "(x, y, x + w, y + h))."
            )

    def _fmt(self, i: int) -> str:
        return "(" + ", ".join(f"{v:g}" for v in self.boxes[i].tolist()) + ")"

    def __repr__(self) -> str:
        if len(self.labels) == 1:
            return f"BoxTarget(label={self.labels[0]}, box={self._fmt(0)})"
        return f"BoxTarget(labels={list(self.labels)}, boxes={self.boxes.tolist()})"

    @staticmethod
    def _detection(output: Any) -> Mapping[str, torch.Tensor]:
        if isinstance(output, Mapping) and all(k in output for k in DETECTION_KEYS):
            return output
        got = (
            f"a tensor of shape {tuple(output.shape)}"
            if isinstance(output, torch.Tensor)
            else type(output).__name__
        )
        raise TargetError(
            "BoxTarget explains a box of a detection model, whose output for each image is "
            f"{{'boxes', 'labels', 'scores'}} (torchvision detectors in eval mode); this model "
            f"gave {got} per image. Use an int class target for a classifier, RegionTarget for "
            "a segmentation model."
        )

    def _matches(self, output: Mapping[str, torch.Tensor]) -> list[tuple[int, torch.Tensor] | None]:
        """For each box: ``(index, IoU)`` of the output box that counts, else ``None``."""
        boxes = output["boxes"]
        if len(boxes) == 0:
            return [None] * len(self.labels)
        found: list[tuple[int, torch.Tensor] | None] = []
        for box, label in zip(self.boxes, self.labels, strict=True):
            ious = box_iou(box[None].to(boxes.device, boxes.dtype), boxes)
            index = ious.argmax()
            ok = bool(ious[0, index] > self.iou_threshold) and bool(
                output["labels"][index] == label
            )
            found.append((int(index), ious[0, index]) if ok else None)
        return found

    def __call__(self, output: Any) -> torch.Tensor:
        """The score of one image's detections: a 0-d tensor (0 when no box matches)."""
        output = self._detection(output)
        boxes = output["boxes"]
        total = torch.zeros((), device=boxes.device, dtype=boxes.dtype)
        for match in self._matches(output):
            if match is not None:
                index, iou = match
                total = total + (iou + output["scores"][index])
        return total

    def check_image(self, height: int, width: int) -> None:
        """Raise :class:`TargetError` if a box lies outside an input of ``height x width`` px."""
        b = self.boxes
        outside = (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] > width) | (b[:, 3] > height)
        if bool(outside.any()):
            i = int(torch.nonzero(outside)[0])
            raise TargetError(
                f"BoxTarget box {self._fmt(i)} is outside the {height} x {width} px input "
                f"(x in [0, {width}], y in [0, {height}]). Boxes are (x1, y1, x2, y2) in the "
                "input's pixels: scale boxes given in [0, 1] by the image size, and boxes of "
                "another image size by the ratio of sizes."
            )

    def check_match(self, output: Any, image: int) -> None:
        """Raise :class:`TargetError` when no given box matches the image's detections (its
        score would be 0 and its map empty); names the nearest detection."""
        output = self._detection(output)
        matches = self._matches(output)
        if any(m is not None for m in matches):
            return
        boxes = output["boxes"]
        if len(boxes) == 0:
            seen = "the model detected nothing in it"
        else:
            ious = box_iou(self.boxes[:1].to(boxes.device, boxes.dtype), boxes.detach())[0]
            j = int(ious.argmax())
            seen = (
                f"its nearest detection has IoU {float(ious[j]):.2f} and label "
                f"{int(output['labels'][j])} (score {float(output['scores'][j].detach()):.3f})"
            )
        raise TargetError(
            f"{self!r} matches no detection of image {image} (IoU above "
            f"{self.iou_threshold:g} and the same label): {seen}. Its score would be 0 and its "
            "map empty. Take boxes and labels from cnnviz_widgets.detections(model, x) (lower "
            "score_threshold to see more), or pass iou_threshold= lower."
        )


def _as_mask(mask: Any) -> torch.Tensor:
    try:
        t = (
            mask.detach().to("cpu")
            if isinstance(mask, torch.Tensor)
            else torch.as_tensor(np.asarray(mask))
        )
    except (TypeError, ValueError) as err:
        raise TargetError(f"RegionTarget mask must be an (H, W) array; got {mask!r}.") from err
    if t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 2:
        raise TargetError(
            f"RegionTarget mask must be (H, W) (one image's pixels); got shape "
            f"{tuple(t.shape)}. For a batch give one RegionTarget per image."
        )
    if t.dtype != torch.bool:
        if t.is_complex() or not bool(((t == 0) | (t == 1)).all()):
            raise TargetError(
                "RegionTarget mask must be boolean or 0/1; got values other than 0 and 1. "
                "Threshold a soft mask first, e.g. mask > 0.5."
            )
        t = t != 0
    if not bool(t.any()):
        raise TargetError(
            "RegionTarget mask selects no pixel, so the score would be 0 and the map empty. "
            "Pass a mask with at least one True pixel."
        )
    return t


class RegionTarget:
    """Explain class ``label`` over ``mask`` of a segmentation model: ``sum(out[label] * mask)``
    (pytorch-grad-cam's ``SemanticSegmentationTarget``).

    Args:
        label: the class (channel of the model's ``(N, classes, H, W)`` output).
        mask: ``(H, W)`` boolean or 0/1 array or tensor, at the output's size (torchvision's
            segmentation models output at the input's size).

    The score is the class's raw score (logit) summed over the mask, so a class the model
    predicts nowhere in the mask still has a map (what raises that class's score there), not
    an empty one; the reference behaves the same.

    Attributes:
        label: the class.
        mask: ``(H, W)`` bool CPU tensor.
    """

    def __init__(self, label: Any, mask: Any) -> None:
        self.label = _label(label, "RegionTarget label")
        self.mask = _as_mask(mask)

    def __repr__(self) -> str:
        h, w = self.mask.shape
        return f"RegionTarget(label={self.label}, mask {h} x {w} with {int(self.mask.sum())} px)"

    def __call__(self, output: Any) -> torch.Tensor:
        """``sum(output[label] * mask)`` for one image's ``(classes, H, W)`` output: 0-d."""
        if not isinstance(output, torch.Tensor) or output.ndim != 3:
            got = (
                f"shape {tuple(output.shape)}"
                if isinstance(output, torch.Tensor)
                else type(output).__name__
            )
            raise TargetError(
                "RegionTarget explains a segmentation model, whose output per image is "
                f"(classes, H, W) (the 'out' entry of torchvision's FCN, DeepLabV3, LRASPP); "
                f"this model gave {got} per image. Use BoxTarget for a detection model, an "
                "int class for a classifier."
            )
        if tuple(output.shape[-2:]) != tuple(self.mask.shape):
            h, w = output.shape[-2:]
            raise TargetError(
                f"RegionTarget mask is {tuple(self.mask.shape)} but the model's output is "
                f"{h} x {w} per class: give the mask at the output's size (resize it with "
                "nearest-neighbour interpolation)."
            )
        if self.label >= output.shape[0]:
            raise TargetError(
                f"RegionTarget label {self.label} is out of range: the model outputs "
                f"{output.shape[0]} classes, so use 0..{output.shape[0] - 1}."
            )
        mask = self.mask.to(device=output.device, dtype=output.dtype)
        return (output[self.label, :, :] * mask).sum()

    def check_image(self, height: int, width: int) -> None:
        """Nothing to check against the input (the mask is checked against the output)."""


def pixel_box(box: torch.Tensor, height: int, width: int) -> tuple[int, int, int, int]:
    """The pixels a box ``(x1, y1, x2, y2)`` touches: ``floor`` of the start, ``ceil`` of the
    end, clipped to the image; as slice bounds ``(x0, y0, x1, y1)``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (
        min(max(math.floor(x1), 0), width),
        min(max(math.floor(y1), 0), height),
        min(max(math.ceil(x2), 0), width),
        min(max(math.ceil(y2), 0), height),
    )
