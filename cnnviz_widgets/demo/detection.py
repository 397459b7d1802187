"""The bundled demo detector and segmenter: small torchvision models trained on shape scenes.

Both are real torchvision model classes, so every engine function that takes a torchvision
detector or segmenter takes them (``detections``, ``segmentation``, ``BoxTarget``,
``RegionTarget``, the CAM and saliency methods, the layer tools):

* :func:`shapes_detector` builds a ``torchvision.models.detection.FCOS`` (with one more,
  class-agnostic, non-maximum suppression: :class:`ShapesFCOS`) on a small plain CNN
  (:class:`ShapesBody`, 3x3 convolutions with batch norm, 2x2 max pooling) whose two last
  stages are merged top-down into one stride-8 level (:class:`ShapesFPN`; a 16 x 16 grid on
  a 128 px scene), and an FCOS head with one convolution per tower. It takes [0, 1] RGB
  images of any size (128 px scenes are not resized: its transform has ``min_size =
  max_size = 128``) and normalises them inside, as torchvision's detectors do. Grad-CAM of a
  detected box at ``head.classification_head.conv`` (the class tower,
  :data:`DETECTOR_CAM_LAYER`) peaks inside the box.
* :func:`shapes_segmenter` builds a ``torchvision.models.segmentation.FCN`` whose backbone
  (:class:`ShapesUNet`) normalises [0, 1] RGB input itself, runs the same kind of body and a
  small decoder back to stride 2 (a U-Net), and returns ``{"out": features}``; a 1x1
  convolution classifies each pixel and FCN upsamples the scores to the input size.

:func:`demo_detector` and :func:`demo_segmenter` load the weights shipped in
``cnnviz_widgets/data`` (``shapes_detector.pt``, ``shapes_segmenter.pt``, float16; produced by
``python -m cnnviz_widgets.demo.train_detection``) and return them with sample scenes
(:class:`DemoTask`). Class ``0`` is the background, class ``i >= 1`` is
``SHAPE_CLASSES[i - 1]`` (:data:`~cnnviz_widgets.demo.scenes.SCENE_CLASSES`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.segmentation import FCN
from torchvision.ops import nms

from cnnviz_widgets.demo.model import MEAN, STD, bundled_state_dict
from cnnviz_widgets.demo.scenes import SCENE_CLASSES, make_scenes

__all__ = [
    "DETECTOR_CAM_LAYER",
    "DETECTOR_FILE",
    "LOGIT_CLAMP",
    "SAMPLE_SCENES",
    "SCENE_SAMPLE_SEED",
    "SCENE_SIZE",
    "SEGMENTER_FILE",
    "DemoTask",
    "ImageNormalize",
    "ShapesBody",
    "ShapesFCOS",
    "ShapesFPN",
    "ShapesUNet",
    "demo_detector",
    "demo_segmenter",
    "shapes_detector",
    "shapes_segmenter",
]

SCENE_SIZE = 128
"""Side, in pixels, of the square scenes both models were trained on."""
DETECTOR_FILE = "shapes_detector.pt"
"""Name of the detector's weight file inside the ``cnnviz_widgets.data`` directory."""
SEGMENTER_FILE = "shapes_segmenter.pt"
"""Name of the segmenter's weight file inside the ``cnnviz_widgets.data`` directory."""
SCENE_SAMPLE_SEED = 20_240_602
"""Seed of the sample scenes in :attr:`DemoTask.samples` (never used for training)."""
SAMPLE_SCENES = 6
"""Number of sample scenes in :attr:`DemoTask.samples`."""

BODY_WIDTHS: tuple[int, int, int, int] = (16, 32, 64, 128)
"""Output channels of the body's stages ``stem`` (stride 2), ``layer1`` (4), ``layer2`` (8),
``layer3`` (16)."""
FPN_CHANNELS = 64
"""Channels of the detector's feature map (the FCOS head's input) and head towers."""
ANCHOR_SIZE = 8
"""FCOS anchor size, px: the stride of the detector's one level, as FCOS's default."""
HEAD_CONVS = 1
"""Convolutions of each FCOS head tower (class; box and centre-ness) before its prediction
layers. The class tower's output, ``head.classification_head.conv``, is reached by the
gradient of a box's class score only, and its channels are read linearly by the class scores,
which makes it the layer where Grad-CAM of a box is class-discriminative; the body's layers
also get the gradient of the centre-ness factor of the score, the same for every class,
through the box tower."""
DETECTOR_CAM_LAYER = "head.classification_head.conv"
"""The layer to explain the demo detector's boxes at with Grad-CAM: the class tower (see
``HEAD_CONVS``). On held-out scenes the Grad-CAM of every detected box peaked inside it there
(318 of 318 boxes), against 46% at the engine's default layer, ``backbone.body.layer3``,
whose channel weights light up other objects too; HiResCAM, which weighs each location by its
own gradient, peaks inside the box at both (100% and 98%). Grad-CAM is class-discriminative,
not instance-discriminative: of two objects of one class (scenes with
``distinct_classes=False``) it picks either (29 of 58 boxes inside)."""
DECODER_CHANNELS: tuple[int, int, int] = (64, 32, 16)
"""Channels of the segmenter's decoder at strides 8, 4 and 2 (its ``"out"`` has the last)."""


def _conv_bn(in_ch: int, out_ch: int) -> nn.Sequential:
    """3x3 convolution (padding 1, no bias), batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class ImageNormalize(nn.Module):
    """``(x - mean) / std`` per channel, as a layer: lets a model take [0, 1] RGB directly.

    Input and output ``(N, 3, H, W)``; ``mean`` and ``std`` are buffers (saved with the
    weights).
    """

    def __init__(
        self,
        mean: tuple[float, float, float] = MEAN,
        std: tuple[float, float, float] = STD,
    ) -> None:
        super().__init__()
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``(N, 3, H, W)`` [0, 1] RGB."""
        return (x - self.mean) / self.std


class ShapesBody(nn.Sequential):
    """The plain CNN under both demo models: four stages, each halving the resolution.

    ``stem``: a 3x3 conv to ``widths[0]`` channels, then 2x2 max pooling; ``layer1`` ..
    ``layer3``: 2x2 max pooling, then two 3x3 convs to ``widths[1..3]`` channels; every conv
    (padding 1) followed by batch norm and ReLU. For ``(N, 3, 128, 128)`` input: ``stem``
    64 x 64, ``layer1`` 32 x 32, ``layer2`` 16 x 16, ``layer3`` 8 x 8 (receptive field
    130 px).

    The resolution is halved by max pooling, not by strided convolutions, so that cell ``j``
    of a stage with stride ``s`` is centred at ``(j + 1/2) s`` input pixels, where bilinear
    upsampling with half-pixel centres (the engine's, pytorch-grad-cam's ``cv2.resize``) puts
    it. A chain of stride-2 3x3 convolutions (padding 1) centres it at ``j s + 1/2``: its
    maps come out shifted right and down by almost half a cell (7.5 px at stride 16), which
    put the Grad-CAM peak of one box in seven just outside the box.
    """

    def __init__(self, widths: tuple[int, int, int, int] = BODY_WIDTHS) -> None:
        w0, w1, w2, w3 = widths

        def stage(in_ch: int, out_ch: int) -> nn.Sequential:
            return nn.Sequential(nn.MaxPool2d(2), _conv_bn(in_ch, out_ch), _conv_bn(out_ch, out_ch))

        super().__init__(
            OrderedDict(
                stem=nn.Sequential(_conv_bn(3, w0), nn.MaxPool2d(2)),
                layer1=stage(w0, w1),
                layer2=stage(w1, w2),
                layer3=stage(w2, w3),
            )
        )
        self.widths = widths
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class ShapesFPN(nn.Module):
    """The detector's backbone: :class:`ShapesBody` and a top-down merge of its two last
    stages into one stride-8 map, the finest level of a feature pyramid.

    ``body`` returns ``{"0": layer2, "1": layer3}``; the output is ``{"0": smooth(lateral(
    layer2) + top(layer3) upsampled x2 nearest)}`` with 1x1 ``lateral`` and ``top`` and 3x3
    ``smooth`` convolutions to ``out_channels``, as torchvision's ``FeaturePyramidNetwork``
    computes its finest level. One level: the shapes (17 to 49 px) fit one scale, and the
    FCOS head, called once per level, is then called once, so its layers have one output
    each to explain.
    """

    def __init__(self, out_channels: int = FPN_CHANNELS) -> None:
        super().__init__()
        body = ShapesBody()
        _, _, w2, w3 = body.widths
        self.body = IntermediateLayerGetter(body, return_layers={"layer2": "0", "layer3": "1"})
        self.lateral = nn.Conv2d(w2, out_channels, kernel_size=1)
        self.top = nn.Conv2d(w3, out_channels, kernel_size=1)
        self.smooth = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``(N, 3, H, W)`` normalised images to ``{"0": (N, C, H/8, W/8)}``."""
        stages = self.body(x)
        fine = self.lateral(stages["0"])
        coarse = F.interpolate(self.top(stages["1"]), size=fine.shape[-2:], mode="nearest")
        return OrderedDict([("0", self.smooth(fine + coarse))])


class ShapesUNet(nn.Module):
    """The segmenter's backbone: normalisation, :class:`ShapesBody`, a context layer and a
    decoder back to stride 2 that adds each upsampled stage to a projection of the body's
    output at its resolution (a small U-Net).

    ``normalize`` (:class:`ImageNormalize`) maps [0, 1] RGB to the body's input; ``context``
    (3x3 conv, batch norm, ReLU at stride 16) widens the receptive field to 162 px, enough to
    see a whole object from any of its pixels; ``up2``, ``up1``, ``up0`` (the sum of the
    bilinearly upsampled coarser stage and a 1x1 projection of the body's stage, then 3x3
    conv, batch norm, ReLU) give stride 8, 4 and 2 with ``DECODER_CHANNELS`` channels.
    Returns ``{"out": (N, DECODER_CHANNELS[-1], H/2, W/2)}``.
    """

    def __init__(self, channels: tuple[int, int, int] = DECODER_CHANNELS) -> None:
        super().__init__()
        self.normalize = ImageNormalize()
        self.body = ShapesBody()
        w0, w1, w2, w3 = self.body.widths
        c2, c1, c0 = channels
        self.context = _conv_bn(w3, w3)
        self.top = nn.Conv2d(w3, c2, kernel_size=1)
        self.skip2 = nn.Conv2d(w2, c2, kernel_size=1)
        self.up2 = _conv_bn(c2, c1)
        self.skip1 = nn.Conv2d(w1, c1, kernel_size=1)
        self.up1 = _conv_bn(c1, c0)
        self.skip0 = nn.Conv2d(w0, c0, kernel_size=1)
        self.up0 = _conv_bn(c0, c0)
        self.out_channels = c0

    @staticmethod
    def _merge(coarse: Tensor, skip: Tensor) -> Tensor:
        up = F.interpolate(coarse, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return skip + up

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``(N, 3, H, W)`` [0, 1] RGB to ``{"out": (N, C, H/2, W/2)}``."""
        x = self.normalize(x)
        stages = []
        for stage in self.body:  # stem, layer1, layer2, layer3
            x = stage(x)
            stages.append(x)
        s0, s1, s2, s3 = stages
        y = self.up2(self._merge(self.top(self.context(s3)), self.skip2(s2)))
        y = self.up1(self._merge(y, self.skip1(s1)))
        y = self.up0(self._merge(y, self.skip0(s0)))
        return OrderedDict(out=y)


LOGIT_CLAMP = 30.0
"""Class and centre-ness logits are clamped to ``[-LOGIT_CLAMP, LOGIT_CLAMP]`` before FCOS
turns them into scores (``sqrt(sigmoid(class) * sigmoid(centre-ness))``); see
:class:`ShapesFCOS`."""


class ShapesFCOS(FCOS):
    """torchvision's ``FCOS`` with two changes to what it returns in eval mode.

    * One more, class-agnostic, non-maximum suppression. FCOS scores every class at every
      location and suppresses overlapping boxes per class only, so an object often comes out
      twice, with the same box under two labels (a cross at 0.70 and a star at 0.50). The
      second copy is noise for a viewer, and a box target for it cannot be explained:
      pytorch-grad-cam's box score, which :class:`~cnnviz_widgets.BoxTarget` follows, takes the
      detection of highest IoU, the first copy, and finds its label wrong. Here the boxes FCOS
      returns go through ``torchvision.ops.nms`` once more over all classes (same
      ``nms_thresh``), keeping the best-scoring label of each object.
    * Logits clamped to ``[-LOGIT_CLAMP, LOGIT_CLAMP]`` before the scores. FCOS computes
      ``sqrt(sigmoid(class) * sigmoid(centre-ness))`` at every location and class, then keeps
      the best; where a logit is below about -88 the sigmoid is 0 in float32, and the
      gradient of the square root there is ``0 / 0``: NaN, which backpropagates into every
      gradient map (Grad-CAM of a box came out NaN). The clamp changes no score above
      ``sigmoid(-30) ** 0.5``, about 3e-7.

    Training (the losses) is FCOS's unchanged.
    """

    def postprocess_detections(
        self,
        head_outputs: dict[str, list[Tensor]],
        anchors: list[list[Tensor]],
        image_shapes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        """FCOS's detections (sorted by decreasing score) from clamped logits, then
        class-agnostic NMS."""
        clamped = dict(head_outputs)
        for key in ("cls_logits", "bbox_ctrness"):
            clamped[key] = [t.clamp(-LOGIT_CLAMP, LOGIT_CLAMP) for t in head_outputs[key]]
        detections = super().postprocess_detections(clamped, anchors, image_shapes)
        kept = []
        for found in detections:
            keep = nms(found["boxes"], found["scores"], self.nms_thresh)
            kept.append({key: value[keep] for key, value in found.items()})
        return kept


def shapes_detector(score_thresh: float = 0.05, detections_per_img: int = 20) -> ShapesFCOS:
    """A fresh (untrained) demo detector: torchvision ``FCOS`` (:class:`ShapesFCOS`, with a
    class-agnostic NMS) on :class:`ShapesFPN`.

    Args:
        score_thresh: FCOS's own score threshold for returned boxes.
        detections_per_img: most boxes returned per image.

    Returns:
        ``ShapesFCOS`` with ``len(SCENE_CLASSES)`` classes (0, the background, never predicted
        positive), [0, 1] RGB input (normalised inside with the ShapesNet mean and std), no
        resize of 128 px images.
    """
    backbone = ShapesFPN()
    anchors = AnchorGenerator(((ANCHOR_SIZE,),), ((1.0,),))
    head = FCOSHead(backbone.out_channels, 1, len(SCENE_CLASSES), num_convs=HEAD_CONVS)
    return ShapesFCOS(
        backbone,
        num_classes=len(SCENE_CLASSES),
        min_size=SCENE_SIZE,
        max_size=SCENE_SIZE,
        image_mean=list(MEAN),
        image_std=list(STD),
        anchor_generator=anchors,
        head=head,
        score_thresh=score_thresh,
        nms_thresh=0.5,
        detections_per_img=detections_per_img,
        topk_candidates=100,
    )


def shapes_segmenter() -> FCN:
    """A fresh (untrained) demo segmenter: torchvision ``FCN`` on :class:`ShapesUNet`.

    Takes [0, 1] RGB ``(N, 3, H, W)`` (``H``, ``W`` multiples of 16), returns
    ``{"out": (N, len(SCENE_CLASSES), H, W)}`` class scores (logits).
    """
    backbone = ShapesUNet()
    classifier = nn.Conv2d(backbone.out_channels, len(SCENE_CLASSES), kernel_size=1)
    return FCN(backbone, classifier)


@dataclass(frozen=True)
class DemoTask:
    """A bundled demo detector or segmenter with sample scenes.

    Attributes:
        model: the torchvision model, in eval mode; takes [0, 1] RGB ``(N, 3, S, S)``.
        task: ``"detection"`` (output: one ``{"boxes", "labels", "scores"}`` dict per image)
            or ``"segmentation"`` (output: ``{"out": (N, len(classes), S, S)}``).
        classes: class names indexed by the model's labels; ``classes[0] == "background"``.
        size: scene side in pixels.
        samples: float32 ``(K, 3, size, size)`` sample scenes in [0, 1], from a seed never
            used in training.
        sample_boxes: ``K`` float32 ``(k_i, 4)`` true boxes ``(x1, y1, x2, y2)``, pixels.
        sample_labels: ``K`` int64 ``(k_i,)`` true labels (indices into ``classes``).
        sample_masks: int64 ``(K, size, size)`` true class per pixel (0: background).
        trained: False when the weights were missing and ``allow_untrained`` gave the
            initial weights.
    """

    model: nn.Module
    task: Literal["detection", "segmentation"]
    classes: tuple[str, ...]
    size: int
    samples: Tensor
    sample_boxes: list[Tensor]
    sample_labels: list[Tensor]
    sample_masks: Tensor
    trained: bool = True


def _load(
    model: nn.Module,
    task: Literal["detection", "segmentation"],
    weights: str,
    device: torch.device | str | None,
    allow_untrained: bool,
) -> DemoTask:
    trained = True
    try:
        model.load_state_dict(bundled_state_dict(weights))
    except FileNotFoundError:
        if not allow_untrained:
            raise
        trained = False
    model.eval()
    scenes = make_scenes(SAMPLE_SCENES, size=SCENE_SIZE, seed=SCENE_SAMPLE_SEED, min_objects=2)
    images, boxes, labels, masks = scenes
    if device is not None:
        model = model.to(device)
        images, masks = images.to(device), masks.to(device)
        boxes = [b.to(device) for b in boxes]
        labels = [lab.to(device) for lab in labels]
    return DemoTask(
        model=model,
        task=task,
        classes=SCENE_CLASSES,
        size=SCENE_SIZE,
        samples=images,
        sample_boxes=boxes,
        sample_labels=labels,
        sample_masks=masks,
        trained=trained,
    )


def demo_detector(
    device: torch.device | str | None = None, allow_untrained: bool = False
) -> DemoTask:
    """Load the bundled, trained demo detector (:func:`shapes_detector`) and sample scenes.

    Args:
        device: where to put the model and sample tensors (default: CPU).
        allow_untrained: when the weights file is missing (a source checkout before
            training), return the detector with its initial weights (seed 0) and
            ``trained=False`` instead of raising.

    Returns:
        A :class:`DemoTask` with ``task="detection"``; the model is in eval mode.

    Raises:
        FileNotFoundError: the weights are missing and ``allow_untrained`` is False.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = shapes_detector()
    return _load(model, "detection", DETECTOR_FILE, device, allow_untrained)


def demo_segmenter(
    device: torch.device | str | None = None, allow_untrained: bool = False
) -> DemoTask:
    """Load the bundled, trained demo segmenter (:func:`shapes_segmenter`) and sample scenes.

    Args:
        device: where to put the model and sample tensors (default: CPU).
        allow_untrained: when the weights file is missing, return the segmenter with its
            initial weights (seed 0) and ``trained=False`` instead of raising.

    Returns:
        A :class:`DemoTask` with ``task="segmentation"``; the model is in eval mode.

    Raises:
        FileNotFoundError: the weights are missing and ``allow_untrained`` is False.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = shapes_segmenter()
    return _load(model, "segmentation", SEGMENTER_FILE, device, allow_untrained)
