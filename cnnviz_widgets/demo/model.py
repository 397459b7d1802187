"""ShapesNet, the small CNN bundled with the package, and loading of its trained weights.

The weights in ``cnnviz_widgets/data/shapesnet.pt`` are produced by
``python -m cnnviz_widgets.demo.train`` from procedurally generated images (see
:mod:`cnnviz_widgets.demo.shapes`), so the visualisations work without downloading anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import torch
from torch import Tensor, nn

from cnnviz_widgets.demo.shapes import SHAPE_CLASSES, make_shapes

__all__ = [
    "INPUT_SIZE",
    "MEAN",
    "SAMPLE_SEED",
    "STD",
    "WEIGHTS_FILE",
    "DemoModel",
    "Normalize",
    "ShapesNet",
    "bundled_state_dict",
    "demo_model",
    "fuse_batch_norm",
]

INPUT_SIZE = 64
"""Side, in pixels, of the square RGB images ShapesNet was trained on."""
MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
"""Per-channel mean subtracted from [0, 1] RGB input."""
STD: tuple[float, float, float] = (0.25, 0.25, 0.25)
"""Per-channel standard deviation dividing [0, 1] RGB input."""
WEIGHTS_FILE = "shapesnet.pt"
"""Name of the weight file inside the ``cnnviz_widgets.data`` directory."""
SAMPLE_SEED = 20_240_601
"""Seed of the sample images in :attr:`DemoModel.samples` (never used for training)."""

# (out_channels, max-pool after this conv?) for each 3x3 conv layer.
_CONV_PLAN: tuple[tuple[int, bool], ...] = (
    (16, True),
    (32, True),
    (64, True),
    (64, False),
    (128, False),
)


class ShapesNet(nn.Module):
    """Plain five-layer CNN for 64x64 shape images, laid out like torchvision's VGG.

    ``features`` is an ``nn.Sequential`` of 3x3 convolutions (padding 1), ReLUs and 2x2
    max-pools (after the first three convolutions); ``avgpool`` averages the last feature
    map over space and ``classifier`` is one linear layer. Layer names therefore read
    ``features.0`` (first conv), ..., ``features.11`` (last conv), ``features.12`` (its
    ReLU), ``classifier.0``.

    Shapes for a ``(N, 3, 64, 64)`` input: 16 x 32 x 32 after ``features.2``, 32 x 16 x 16
    after ``features.5``, 64 x 8 x 8 after ``features.8``, 128 x 8 x 8 at the last conv
    (an 8 x 8 grid, 8 input pixels per cell, for Grad-CAM), logits ``(N, num_classes)``.

    Args:
        num_classes: number of output classes.
        batch_norm: insert ``BatchNorm2d`` after each convolution (used during training;
            :func:`fuse_batch_norm` folds it back into the convolutions for shipping, so
            the bundled model has no normalisation layers).
    """

    def __init__(self, num_classes: int = len(SHAPE_CLASSES), batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for out_ch, pool in _CONV_PLAN:
            layers.append(nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU(inplace=True))
            if pool:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(in_ch, num_classes))
        self.num_classes = num_classes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Map normalised images ``(N, 3, H, W)`` to class logits ``(N, num_classes)``."""
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def fuse_batch_norm(model: ShapesNet) -> ShapesNet:
    """Return a plain (``batch_norm=False``) ShapesNet equivalent to ``model`` in eval mode.

    Each ``BatchNorm2d`` (running statistics) is folded into the weight and bias of the
    preceding convolution, so the returned network computes the same logits (up to
    float rounding) with conv/ReLU/pool layers only. ``model`` is left unchanged.
    """
    fused = ShapesNet(num_classes=model.num_classes, batch_norm=False)
    src = list(model.features)
    dst_convs = [m for m in fused.features if isinstance(m, nn.Conv2d)]
    src_convs: list[tuple[nn.Conv2d, nn.BatchNorm2d | None]] = []
    for i, m in enumerate(src):
        if isinstance(m, nn.Conv2d):
            after = src[i + 1] if i + 1 < len(src) else None
            src_convs.append((m, after if isinstance(after, nn.BatchNorm2d) else None))
    with torch.no_grad():
        for dst, (conv, bn) in zip(dst_convs, src_convs, strict=True):
            w = conv.weight.detach().clone()
            b = (
                conv.bias.detach().clone()
                if conv.bias is not None
                else torch.zeros(conv.out_channels)
            )
            if bn is not None:
                if bn.running_mean is None or bn.running_var is None:
                    raise ValueError("fuse_batch_norm needs BatchNorm2d running statistics.")
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                w = w * scale[:, None, None, None]
                b = (b - bn.running_mean) * scale + bn.bias
            assert dst.bias is not None  # ShapesNet(batch_norm=False) convolutions have a bias
            dst.weight.copy_(w)
            dst.bias.copy_(b)
        fused.classifier.load_state_dict(model.classifier.state_dict())
    return fused.eval()


class Normalize:
    """Callable mapping [0, 1] RGB ``(3, H, W)`` or ``(N, 3, H, W)`` to ShapesNet's input.

    Computes ``(x - mean) / std`` per channel; returns float32 of the same shape.
    """

    def __init__(self, mean: tuple[float, float, float], std: tuple[float, float, float]) -> None:
        self.mean = mean
        self.std = std

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() not in (3, 4) or x.shape[-3] != 3:
            raise ValueError(f"expected (3, H, W) or (N, 3, H, W), got {tuple(x.shape)}")
        x = x.float()
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


@dataclass(frozen=True)
class DemoModel:
    """The bundled ShapesNet with everything needed to feed and explain it.

    Attributes:
        model: the network, in eval mode; takes normalised ``(N, 3, size, size)`` input.
        classes: class names, indexed by the model's output.
        size: input side in pixels.
        mean: per-channel mean used to normalise [0, 1] RGB.
        std: per-channel standard deviation used to normalise [0, 1] RGB.
        transform: maps [0, 1] RGB ``(3, H, W)`` or ``(N, 3, H, W)`` to normalised input.
        samples: float32 ``(K, 3, size, size)`` example images in [0, 1], one per class.
        sample_labels: int64 ``(K,)`` true classes of ``samples``.
        sample_boxes: int64 ``(K, 4)`` object boxes ``(x0, y0, x1, y1)`` in pixels,
            ``x1``/``y1`` exclusive.
    """

    model: ShapesNet
    classes: tuple[str, ...]
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    transform: Callable[[Tensor], Tensor]
    samples: Tensor
    sample_labels: Tensor
    sample_boxes: Tensor
    trained: bool = True


def bundled_state_dict(name: str = WEIGHTS_FILE) -> dict[str, Tensor]:
    """Read bundled weights (``cnnviz_widgets/data/<name>``, ShapesNet's by default) as a
    state dict whose floating-point tensors are float32 (stored as float16 on disk); integer
    tensors (batch-norm counters) are kept as stored.

    Raises:
        FileNotFoundError: no such file (a source checkout before training).
    """
    ref = resources.files("cnnviz_widgets").joinpath("data").joinpath(name)
    with ref.open("rb") as fh:
        state = torch.load(fh, map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def demo_model(
    device: torch.device | str | None = None, allow_untrained: bool = False
) -> DemoModel:
    """Load the bundled, trained ShapesNet and its sample images.

    Args:
        device: where to put the model and sample tensors (default: CPU).
        allow_untrained: when the weights file is missing (a source checkout before
            training), return the network with its initial weights (seed 0) and
            ``trained=False`` instead of raising.

    Returns:
        A :class:`DemoModel`; ``model`` is in eval mode with float32 weights.

    Raises:
        FileNotFoundError: the bundled weights are missing and ``allow_untrained`` is False.
    """
    trained = True
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ShapesNet(num_classes=len(SHAPE_CLASSES))
    try:
        model.load_state_dict(bundled_state_dict())
    except FileNotFoundError:
        if not allow_untrained:
            raise
        trained = False
    model.eval()
    images, labels, boxes = make_shapes(
        len(SHAPE_CLASSES),
        size=INPUT_SIZE,
        seed=SAMPLE_SEED,
        labels=range(len(SHAPE_CLASSES)),
    )
    if device is not None:
        model = model.to(device)
        images, labels, boxes = images.to(device), labels.to(device), boxes.to(device)
    return DemoModel(
        model=model,
        classes=SHAPE_CLASSES,
        size=INPUT_SIZE,
        mean=MEAN,
        std=STD,
        transform=Normalize(MEAN, STD),
        samples=images,
        sample_labels=labels,
        sample_boxes=boxes,
        trained=trained,
    )
