"""Detection and segmentation models: what they predict, and where their layers are.

* :func:`detections` runs a torchvision detection model (Faster R-CNN, RetinaNet, FCOS,
  SSD/SSDlite, Mask R-CNN) on a batch and returns each image's boxes, labels and scores
  (:class:`Detections`), ready to become :class:`~cnnviz_widgets.engine.regions.BoxTarget`\\ s.
  The model runs in eval mode, as these models need (in training mode they ask for
  ground-truth targets), and is given back in the mode it was in.
* :func:`segmentation` gives a segmentation model's predicted class per pixel.
* :func:`normalize_in_boxes` rescales a map to [0, 1] inside each box and zeroes it outside
  (pytorch-grad-cam issue #227), for maps of box targets.
* :func:`model_family` / :func:`backbone_scope` / :func:`input_resize` tell the layer tools
  (default layer, receptive fields) how these models are built: the image goes through an
  internal resize (``model.transform``) and then ``model.backbone``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .borrow import borrowed
from .inputs import ImageInputError, prepare_input
from .regions import BoxTarget, pixel_box
from .targets import OutputSelector, TargetError, select_scores

EPS = 1e-7
"""The min-max denominator offset (pytorch-grad-cam's ``scale_cam_image``)."""


def model_family(model: nn.Module) -> str | None:
    """``"detection"`` for a torchvision detector (an internal ``GeneralizedRCNNTransform``
    and a ``backbone``), ``"segmentation"`` for a torchvision segmentation model (FCN,
    DeepLabV3, LRASPP), else ``None``."""
    try:
        from torchvision.models.detection.transform import GeneralizedRCNNTransform
        from torchvision.models.segmentation._utils import _SimpleSegmentationModel
        from torchvision.models.segmentation.lraspp import LRASPP
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return None
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, nn.Module):
        return None
    if isinstance(getattr(model, "transform", None), GeneralizedRCNNTransform):
        return "detection"
    if isinstance(model, (_SimpleSegmentationModel, LRASPP)):
        return "segmentation"
    return None


def backbone_scope(model: nn.Module) -> tuple[str, ...]:
    """Name prefixes among which a detector's or segmenter's default CAM layer is chosen.

    * detectors with an FPN (``backbone.body``: Faster/Mask R-CNN, RetinaNet, FCOS): the body,
      whose last stage feeds every pyramid level, so every box's score depends on it;
    * SSD/SSDlite: the first feature level (``backbone.features`` for VGG,
      ``backbone.features.0`` for MobileNet), which every later level is computed from;
    * segmentation models: the backbone (``layer4`` of a ResNet, as pytorch-grad-cam's
      tutorial).

    Empty for other models.
    """
    family = model_family(model)
    if family == "segmentation":
        return ("backbone.",)
    if family != "detection":
        return ()
    backbone = model.backbone
    if isinstance(getattr(backbone, "body", None), nn.Module):
        return ("backbone.body.",)
    features = getattr(backbone, "features", None)
    if isinstance(features, nn.Sequential) and type(backbone).__name__.startswith("SSDLite"):
        return ("backbone.features.0",)
    if isinstance(features, nn.Module):
        return ("backbone.features",)
    return ("backbone.",)


def input_resize(model: nn.Module, size: tuple[int, int]) -> tuple[float, float] | None:
    """``(ry, rx)``: input pixels per pixel of the image a detector's backbone sees, for an
    input of ``size = (H, W)``; ``None`` for models that do not resize internally.

    torchvision detectors resize every image (bilinear, half-pixel centres) before the
    backbone, which maps input coordinate ``u`` (pixel ``i`` covering ``[i, i + 1)``) to
    ``u * H' / H``; the batch padding is at the bottom and right, so no offset.
    """
    if model_family(model) != "detection":
        return None
    height, width = int(size[0]), int(size[1])
    channels = next(
        (m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 3
    )
    probe = torch.zeros(channels, height, width)
    param = next(model.parameters(), None)
    if param is not None:
        probe = probe.to(param.device, param.dtype)
    transform: Any = model.transform
    with borrowed(model), torch.no_grad():
        images, _ = transform([probe])
    resized_h, resized_w = images.image_sizes[0]
    return height / resized_h, width / resized_w


def check_batch(x: Any) -> None:
    """A clear error for a list of images (torchvision detectors' own input form)."""
    if isinstance(x, (list, tuple)) and x and all(isinstance(i, torch.Tensor) for i in x):
        sizes = {tuple(i.shape[-2:]) for i in x}
        fix = (
            "stack them into one (N, C, H, W) tensor with torch.stack(images)"
            if len(sizes) == 1
            else f"its images have {len(sizes)} different sizes, so call once per image "
            "(x[None] for a (C, H, W) image) or resize them to one size first"
        )
        raise ImageInputError(
            f"The input is a {type(x).__name__} of {len(x)} image tensors; pass one "
            f"(N, C, H, W) tensor instead: {fix}."
        )


@dataclass(frozen=True)
class Detections:
    """What a detector predicts for one image (boxes with a score above the threshold).

    Attributes:
        boxes: ``(K, 4)`` float32 CPU tensor, ``(x1, y1, x2, y2)`` in input pixels.
        labels: ``(K,)`` int64 class labels.
        scores: ``(K,)`` float32 scores in [0, 1].
        masks: ``(K, H, W)`` float32 mask probabilities (Mask R-CNN), else ``None``.
    """

    boxes: torch.Tensor
    labels: torch.Tensor
    scores: torch.Tensor
    masks: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def target(self, i: int, iou_threshold: float = 0.5) -> BoxTarget:
        """A :class:`BoxTarget` for box ``i``."""
        return BoxTarget(int(self.labels[i]), self.boxes[i], iou_threshold)

    def targets(self, iou_threshold: float = 0.5) -> list[BoxTarget]:
        """One :class:`BoxTarget` per box (for ``cam_per_target``: one map per box)."""
        return [self.target(i, iou_threshold) for i in range(len(self))]

    def box_target(self, iou_threshold: float = 0.5) -> BoxTarget:
        """One :class:`BoxTarget` of every box (one map explaining them all, as
        pytorch-grad-cam's detection tutorial)."""
        if len(self) == 0:
            raise TargetError(
                "No box is above the score threshold, so there is nothing to explain; lower "
                "score_threshold in detections(...)."
            )
        return BoxTarget(self.labels.tolist(), self.boxes, iou_threshold)


def detections(
    model: nn.Module,
    x: torch.Tensor,
    score_threshold: float = 0.5,
    *,
    output: OutputSelector = None,
) -> list[Detections]:
    """The boxes, labels and scores a detection model predicts, one :class:`Detections` per
    image, in the model's order (highest score first for torchvision's detectors).

    Args:
        model: a torchvision detection model (or one returning the same list of
            ``{"boxes", "labels", "scores"}`` dicts); run in eval mode and given back as it was.
        x: ``(N, C, H, W)`` (or ``(C, H, W)``) images, in the value range the model takes
            (torchvision's detectors normalise internally: [0, 1] RGB).
        score_threshold: keep boxes whose score is at least this. The model's own threshold
            (``box_score_thresh``, ``score_thresh``: 0.05 by default) applies before. Empty
            boxes (zero width or height, which an untrained FCOS predicts) are left out: their
            IoU with anything is undefined, so no box target could match them.
        output: selects the list of dicts when the model wraps it in something else.

    Raises:
        TargetError: the model is not a detector (its output has no boxes).
        ImageInputError: a bad input, or a list of images (stack them, or one call per size).
    """
    check_batch(x)
    x = prepare_input(model, x)
    with borrowed(model), torch.no_grad():
        result = model(x)
    scores = select_scores(result, output)
    if not isinstance(scores, list):
        raise TargetError(
            f"{type(model).__name__} returned a tensor of shape {tuple(scores.shape)}, not one "
            "{'boxes', 'labels', 'scores'} dict per image, so it is not a detection model. "
            "detections() takes torchvision's detectors (Faster R-CNN, RetinaNet, FCOS, SSD, "
            "Mask R-CNN)."
        )
    found = []
    for item in scores:
        b = item["boxes"]
        keep = (item["scores"] >= score_threshold) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        masks = item.get("masks")
        found.append(
            Detections(
                boxes=item["boxes"][keep].to("cpu", torch.float32),
                labels=item["labels"][keep].to("cpu", torch.int64),
                scores=item["scores"][keep].to("cpu", torch.float32),
                masks=None if masks is None else masks[keep][:, 0].to("cpu", torch.float32),
            )
        )
    return found


def segmentation(
    model: nn.Module, x: torch.Tensor, *, output: OutputSelector = None
) -> torch.Tensor:
    """A segmentation model's predicted class per pixel: ``(N, H, W)`` int64 CPU tensor (the
    argmax over classes of its ``"out"`` entry, or of the tensor ``output=`` selects).

    Raises:
        TargetError: the selected output is not ``(N, classes, H, W)``.
    """
    check_batch(x)
    x = prepare_input(model, x)
    with borrowed(model), torch.no_grad():
        scores = select_scores(model(x), output)
    if not isinstance(scores, torch.Tensor) or scores.ndim != 4:
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else "detections"
        raise TargetError(
            f"A segmentation model outputs (N, classes, H, W) scores; {type(model).__name__} "
            f"gave {got}. Pass output= to select them."
        )
    return scores.argmax(dim=1).to("cpu", torch.int64)


def target_boxes(target: Any, n: int) -> list[torch.Tensor]:
    """The ``(K, 4)`` boxes of each of ``n`` images' box targets (one BoxTarget for all
    images, or one per image).

    Raises:
        TargetError: a target that is not a :class:`BoxTarget`.
    """
    items: Sequence[Any] = target if isinstance(target, (list, tuple)) else [target] * n
    boxes = []
    for item in items:
        if not isinstance(item, BoxTarget):
            raise TargetError(
                "normalize_in_boxes=True rescales the map inside the target's boxes, so it "
                f"needs BoxTarget targets; got {item!r}. Pass BoxTarget(label, box) (one per "
                "image or one for all), or leave normalize_in_boxes off."
            )
        boxes.append(item.boxes)
    return boxes


def normalize_in_boxes(maps: torch.Tensor, boxes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Each ``(H, W)`` map rescaled to [0, 1] inside each of its boxes and 0 outside.

    For map ``i`` and each box of ``boxes[i]`` (``(K, 4)``, input pixels; the pixels a box
    touches, :func:`~cnnviz_widgets.engine.regions.pixel_box`): the map's values there are
    min-max scaled, ``(m - min) / (1e-7 + max(m - min))``; where boxes overlap the larger
    value is kept; the result is min-max scaled once more. pytorch-grad-cam's detection
    tutorial does this in ``renormalize_cam_in_bounding_boxes``, though its
    ``scale_cam_image`` of a 2-D map scales every row on its own.

    Args:
        maps: ``(N, H, W)`` float maps.
        boxes: ``N`` tensors of ``(K_i, 4)`` boxes.

    Returns:
        ``(N, H, W)`` float tensor in [0, 1].
    """
    out = torch.zeros_like(maps)
    height, width = maps.shape[-2:]
    for i, image_boxes in enumerate(boxes):
        for box in image_boxes:
            x0, y0, x1, y1 = pixel_box(box, height, width)
            if x1 <= x0 or y1 <= y0:
                continue
            region = maps[i, y0:y1, x0:x1]
            shifted = region - region.min()
            scaled = shifted / (EPS + shifted.max())
            out[i, y0:y1, x0:x1] = torch.maximum(out[i, y0:y1, x0:x1], scaled)
    flat = out.flatten(1)
    shifted = out - flat.amin(dim=1)[:, None, None]
    return shifted / (EPS + shifted.flatten(1).amax(dim=1)[:, None, None])
