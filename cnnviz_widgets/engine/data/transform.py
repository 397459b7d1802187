"""How image files and PIL items become model input (as :func:`~..inputs.load_image` makes it),
and how model input is shown."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..inputs import IMAGENET_MEAN, IMAGENET_STD, LoadedImage, denormalize, load_image
from .errors import DataError

ImageFunction = Callable[[Image.Image], torch.Tensor]
"""A user's transform: an RGB PIL image in, a ``(C, H, W)`` model-ready tensor out."""


@dataclass(frozen=True)
class Transform:
    """How image files and PIL items become model input, and how tensors are shown.

    Attributes:
        size: side of the square the shorter side is resized to and centre-cropped at;
            ``None`` keeps images as they are (they must then all have one size).
        mean, std: per-channel normalisation of model input; ``None`` when not known (files
            are then normalised with ImageNet's, tensors shown by their value range).
        weights: a torchvision weights entry whose transforms apply (then ``size``, ``mean``
            and ``std`` come from it), or ``None``.
        function: a user's :data:`ImageFunction` used instead of all of the above (``mean`` and
            ``std`` then only say how to show tensors), or ``None``.
    """

    size: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    weights: Any = None
    function: ImageFunction | None = None

    def load(self, src: Any) -> LoadedImage:
        """A file path, PIL image or numpy image -> ``(1, 3, H, W)`` input and ``(H, W, 3)`` RGB
        (:func:`~..inputs.load_image`; not for a transform with a ``function``)."""
        if self.function is not None:
            raise DataError(
                "A dataset read with a transform function cannot be shown as loaded images; "
                "pass weights=, or size=/mean=/std=, instead of the function."
            )
        return load_image(
            src,
            size=self.size,
            mean=self.mean or IMAGENET_MEAN,
            std=self.std or IMAGENET_STD,
            weights=self.weights,
        )

    def tensor(self, src: Any) -> torch.Tensor:
        """A file path, PIL image or numpy image -> ``(C, H, W)`` model input."""
        if self.function is None:
            return self.load(src).tensor[0]
        out = self.function(_rgb(src))
        if not isinstance(out, torch.Tensor):
            raise DataError(
                f"The transform returned {type(out).__name__}, not a tensor (C, H, W); end it "
                "with transforms.ToTensor()."
            )
        return out

    def describe(self) -> dict[str, Any]:
        """JSON description (the weights entry by its ``Enum`` name)."""
        out: dict[str, Any] = {
            "size": self.size,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "weights": None if self.weights is None else weights_name(self.weights),
        }
        if self.function is not None:
            out["function"] = getattr(self.function, "__qualname__", repr(self.function))
        return out

    @classmethod
    def from_description(cls, desc: dict[str, Any]) -> Transform:
        """Inverse of :meth:`describe` (a ``function`` cannot be rebuilt and is left out)."""
        weights = None
        if desc.get("weights"):
            import torchvision

            weights = torchvision.models.get_weight(desc["weights"])
        return cls(
            size=desc.get("size"),
            mean=None if desc.get("mean") is None else tuple(desc["mean"]),
            std=None if desc.get("std") is None else tuple(desc["std"]),
            weights=weights,
        )


def _rgb(src: Any) -> Image.Image:
    """An RGB PIL image from a path, a PIL image or a numpy ``(H, W[, C])`` uint8 array."""
    if isinstance(src, (str, os.PathLike)):
        with Image.open(Path(src)) as img:
            return img.convert("RGB")
    if isinstance(src, np.ndarray):
        return Image.fromarray(src).convert("RGB")
    return src.convert("RGB")


def weights_name(weights: Any) -> str:
    """``"ResNet50_Weights.IMAGENET1K_V2"`` for a torchvision weights entry."""
    return f"{type(weights).__name__}.{getattr(weights, 'name', weights)}"


def resolve_transform(
    model: nn.Module,
    weights: Any = None,
    size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Transform:
    """The :class:`Transform` a pass uses: ``weights``' transforms, else ``size``/``mean``/``std``,
    else (the bundled demo model) its own input size and normalisation."""
    if weights is not None:
        if isinstance(weights, str):
            import torchvision

            weights = torchvision.models.get_weight(weights)
        if not hasattr(weights, "transforms"):
            raise DataError(
                f"weights must be a torchvision weights entry (e.g. ResNet50_Weights.DEFAULT) or "
                f"its name; got {type(weights).__name__}."
            )
        transform = weights.transforms()
        return Transform(
            size=None,
            mean=tuple(float(v) for v in transform.mean),
            std=tuple(float(v) for v in transform.std),
            weights=weights,
        )
    for name, value in (("mean", mean), ("std", std)):
        if value is not None and len(value) not in (1, 3):
            raise DataError(f"{name} needs 3 values (RGB) or 1 (a grayscale model: image files "
                            f"are then read as grey); got {value!r}.")
    if size is None and mean is None and std is None and _is_demo_model(model):
        from ...demo.model import INPUT_SIZE, MEAN, STD

        return Transform(size=INPUT_SIZE, mean=MEAN, std=STD)
    return Transform(
        size=size,
        mean=None if mean is None else tuple(float(v) for v in mean),
        std=None if std is None else tuple(float(v) for v in std),
    )


def as_transform(transform: Transform | ImageFunction | None, model: nn.Module) -> Transform:
    """A :class:`Transform` from what a caller passed: itself, a function (PIL image -> tensor),
    or ``None`` (:func:`resolve_transform` of ``model``: the demo model's own, else ImageNet's
    normalisation at the images' own size)."""
    if transform is None:
        return resolve_transform(model)
    if isinstance(transform, Transform):
        return transform
    if callable(transform):
        return Transform(function=transform)
    raise DataError(
        f"transform must be a Transform, a function (PIL image -> tensor) or None; got "
        f"{type(transform).__name__}."
    )


def _is_demo_model(model: nn.Module) -> bool:
    cls = type(model)
    return cls.__name__ == "ShapesNet" and cls.__module__.startswith("cnnviz_widgets.demo")


def display_rgb(images: torch.Tensor, transform: Transform) -> torch.Tensor:
    """``(N, 3, H, W)`` model input -> ``(N, H, W, 3)`` uint8 to show.

    Undoes ``transform``'s normalisation when it is known; otherwise images with values in
    [0, 1] are shown as they are and others stretched to their own range. One-channel input is
    shown as grey.
    """
    x = images.detach().to("cpu", torch.float32)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = x[:, :3]
    if transform.mean is not None and transform.std is not None:
        x = denormalize(x, transform.mean, transform.std)
    elif not (x.min() >= 0 and x.max() <= 1):
        lo = x.amin(dim=(1, 2, 3), keepdim=True)
        hi = x.amax(dim=(1, 2, 3), keepdim=True)
        x = (x - lo) / (hi - lo).clamp_min(1e-12)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
