"""Small random-init torchvision detectors and segmenters for the tests, and the reference's
view of them.

Randomly initialised detection backbones are degenerate: MobileNet features die (all zero) and
ResNet features blow up (every score 1.0), so every box looks the same. :func:`calibrated`
gives the backbone's BatchNorm layers the running statistics of a few smooth random images
(the usual recalibration; weights stay random, seeded), after which boxes, labels and scores
differ and the maps have structure. Images are small (160 x 192) and the detectors are built
with ``min_size=160`` so that they do not upsample them.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Callable

import numpy as np
import pytorch_grad_cam as pgc
import torch
from torch import nn

SIZE = (160, 192)


def smooth_images(n: int, size: tuple[int, int] = SIZE, seed: int = 0) -> torch.Tensor:
    """``(n, 3, H, W)`` smooth random images in [0, 1] (detectors normalise internally)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=g)
    fine = 0.1 * torch.rand(n, 3, *size, generator=g)
    return (nn.functional.interpolate(coarse, size=size, mode="bicubic") + fine).clamp(0, 1)


def calibrated(model: nn.Module, size: tuple[int, int] = SIZE) -> nn.Module:
    """``model`` with its BatchNorm running statistics set from 4 smooth images, in eval mode."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a plain average over the calibration batches
            module.reset_running_stats()
    model.train()
    with torch.no_grad():
        images = smooth_images(4, size, seed=123)
        transform = getattr(model, "transform", None)
        if transform is not None:
            batch, _ = transform(list(images))
            model.backbone(batch.tensors)
        else:
            model.backbone(images)
    stats = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(int(m.num_batches_tracked) > 0 and bool((m.running_var > 0).all()) for m in stats), (
        "a BatchNorm of the backbone was not calibrated")
    return model.eval()


def build(name: str) -> nn.Module:
    """A seeded, calibrated random-init model by short name."""
    from torchvision.models import detection as D
    from torchvision.models import segmentation as S

    small = {"min_size": SIZE[0], "max_size": 256}
    builders: dict[str, Callable[[], nn.Module]] = {
        "fasterrcnn_mobilenet": lambda: D.fasterrcnn_mobilenet_v3_large_fpn(
            weights=None, weights_backbone=None, num_classes=5, box_score_thresh=0.0,
            box_detections_per_img=30, **small,
        ),
        "retinanet": lambda: D.retinanet_resnet50_fpn(
            weights=None, weights_backbone=None, num_classes=5, score_thresh=0.0,
            detections_per_img=30, **small,
        ),
        "fcos": lambda: D.fcos_resnet50_fpn(
            weights=None, weights_backbone=None, num_classes=5, score_thresh=0.0,
            detections_per_img=30, **small,
        ),
        "ssdlite": lambda: D.ssdlite320_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=5, score_thresh=0.0,
            detections_per_img=30,
        ),
        "maskrcnn": lambda: D.maskrcnn_resnet50_fpn(
            weights=None, weights_backbone=None, num_classes=5, box_score_thresh=0.0,
            box_detections_per_img=5, **small,
        ),
        "keypointrcnn": lambda: D.keypointrcnn_resnet50_fpn(
            weights=None, weights_backbone=None, num_classes=2, num_keypoints=5,
            box_score_thresh=0.0, box_detections_per_img=5, **small,
        ),
        "deeplabv3": lambda: S.deeplabv3_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=5
        ),
        "lraspp": lambda: S.lraspp_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=5
        ),
        "fcn": lambda: S.fcn_resnet50(weights=None, weights_backbone=None, num_classes=5),
    }
    torch.manual_seed(0)
    return calibrated(builders[name]())


class OutWrapper(nn.Module):
    """The reference's ``SegmentationModelOutputWrapper``: a segmenter's ``"out"`` tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]


_COPIES: dict[int, tuple[nn.Module, nn.Module]] = {}


def reference_copy(model: nn.Module) -> nn.Module:
    """pytorch-grad-cam's own deep copy of ``model`` (it calls ``eval()`` and fills ``.grad``);
    only the first parameter keeps ``requires_grad``, so its backward pass spans the whole
    network without computing every weight's gradient."""
    entry = _COPIES.get(id(model))
    if entry is None or entry[0] is not model:
        twin = copy.deepcopy(model)
        for i, param in enumerate(twin.parameters()):
            param.requires_grad_(i == 0)
        entry = (model, twin)
        _COPIES[id(model)] = entry
    return entry[1]


@contextlib.contextmanager
def negated_projection(active: bool):
    """Make the reference's ``get_2d_projection`` (EigenCAM) return the opposite sign: a
    principal component's sign is arbitrary, and the reference fixes none."""
    saved = pgc.eigen_cam.get_2d_projection
    try:
        if active:
            pgc.eigen_cam.get_2d_projection = lambda a: -saved(a)
        yield
    finally:
        pgc.eigen_cam.get_2d_projection = saved


def reference_cam(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    layers: list[str],
    targets: list | None,
    *,
    wrap: bool = False,
    reshape: Callable | None = None,
    negate: bool = False,
) -> np.ndarray:
    """pytorch-grad-cam's ``(N, H, W)`` map on its copy of ``model`` (``wrap``: the copy inside
    :class:`OutWrapper`, as its segmentation tutorial; ``negate``: EigenCAM's other sign)."""
    ref = reference_copy(model)
    runner = OutWrapper(ref) if wrap else ref
    modules = [ref.get_submodule(n) for n in layers]
    sink = io.StringIO()
    with (
        contextlib.redirect_stdout(sink),
        negated_projection(negate),
        getattr(pgc, method)(runner, modules, reshape_transform=reshape) as engine,
    ):
        result = engine(x.clone(), targets)
    for param in ref.parameters():
        param.grad = None
    assert result.shape == (x.shape[0], *x.shape[-2:]) and np.isfinite(result).all(), (
        f"the reference gave {result.shape} for input {tuple(x.shape)}")
    return result


MAX_MAD = 1e-5
"""The issue's parity bound: mean absolute difference per map from pytorch-grad-cam."""


class Parity:
    """Checks maps against the reference (each within :data:`MAX_MAD`) and keeps the figures
    per label, printed by :meth:`report` (the worst MAD per method and model)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.figures: dict[str, list[float]] = {}

    def check(self, label: str, ours: np.ndarray, ref: np.ndarray) -> None:
        assert ours.shape == ref.shape and ours.dtype == np.float32
        for i in range(ref.shape[0]):
            assert float(ref[i].max()) > 0.5, f"{label}: degenerate reference map {i}"
            value = mad(ours[i], ref[i])
            self.figures.setdefault(label, []).append(value)
            assert value <= MAX_MAD, f"{label} image {i}: MAD {value}"

    def report(self) -> None:
        if self.figures:
            print(f"\n{self.title} parity (max MAD per method and model):")
            for label, values in sorted(self.figures.items()):
                print(f"  {label:40s} max MAD {max(values):.2e}  ({len(values)} maps)")


def mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two arrays of the same shape (no broadcasting)."""
    assert np.shape(a) == np.shape(b), f"comparing shapes {np.shape(a)} and {np.shape(b)}"
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).mean())
