"""Images in any form -> a model-ready tensor plus the RGB picture a person sees.

Two jobs:

* :func:`load_image` turns a path, PIL image, numpy array or tensor into the normalised
  ``(1, 3, H, W)`` float tensor a model takes and the ``(H, W, 3)`` uint8 RGB image with the same
  geometry (for overlays), optionally following a torchvision ``weights`` entry's transforms and
  exposing its class names.
* :func:`prepare_input` checks a batch tensor against the model before an engine call (rank,
  channels, finite values) and moves it to the model's device and dtype.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from .devices import model_device, model_dtype

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ImageNet's statistics of the grey image (0.299 R + 0.587 G + 0.114 B): the default for a model
# whose first convolution takes one channel, when its own normalisation is not given
IMAGENET_GREY_MEAN = (0.449,)
IMAGENET_GREY_STD = (0.226,)

ImageSource = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor


class ImageInputError(ValueError):
    """An image or input tensor that cannot be used; the message names the problem and fix."""


@dataclass(frozen=True)
class LoadedImage:
    """Result of :func:`load_image`; unpacks as ``tensor, rgb = load_image(...)``.

    Attributes:
        tensor: ``(1, C, H, W)`` float32, normalised with ``mean``/``std``; ready for the model
            (``C`` = 3, or 1 for a grayscale model: one ``mean`` and ``std`` value).
        rgb: ``(H, W, 3)`` uint8, the same pixels before normalisation (for display/overlays;
            grey in all three channels for a grayscale input).
        classes: class names from the weights' metadata, or ``None``.
        mean, std: the per-channel normalisation that was applied.
    """

    tensor: torch.Tensor
    rgb: np.ndarray
    classes: tuple[str, ...] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __iter__(self) -> Iterator[Any]:
        yield self.tensor
        yield self.rgb


def _to_pil(src: ImageSource) -> Image.Image:
    """Any supported source -> an RGB PIL image (grayscale expanded, alpha dropped)."""
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if not os.path.exists(path):
            raise FileNotFoundError(f"No image file at {path!r}. Check the path.")
        try:
            with Image.open(path) as img:
                img.load()
                return _pil_rgb(img)
        except UnidentifiedImageError as err:
            raise ImageInputError(
                f"{path!r} is not an image file Pillow can read (PNG, JPEG, BMP, ...). Pass an "
                "image file, a PIL image, a numpy array or a tensor."
            ) from err
    if isinstance(src, Image.Image):
        return _pil_rgb(src)
    if isinstance(src, torch.Tensor):
        return _pil_from_tensor(src)
    if isinstance(src, np.ndarray):
        return _pil_from_array(src)
    raise ImageInputError(
        f"Cannot read an image from {type(src).__name__}. Pass a file path, a PIL image, a numpy "
        "array (H, W) or (H, W, 1|3|4), or a tensor (3, H, W) / (1, 3, H, W) with values in "
        "[0, 1]."
    )


def _pil_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


def _pil_from_array(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        raise ImageInputError(
            f"The numpy array has shape {arr.shape}, which looks channels-first (C, H, W). "
            "Numpy images are taken as (H, W, C): pass arr.transpose(1, 2, 0)."
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ImageInputError(
            f"A numpy image must have shape (H, W) or (H, W, C) with C in 1, 3, 4; got {arr.shape}."
        )
    if arr.dtype == np.uint8:
        u8 = arr
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageInputError("The image array contains NaN or Inf values.")
        if arr.min() < 0 or arr.max() > 1:
            raise ImageInputError(
                f"A float image array must have values in [0, 1]; got [{arr.min():.3g}, "
                f"{arr.max():.3g}]. Scale it (e.g. arr / 255) or pass uint8."
            )
        u8 = np.round(arr * 255).astype(np.uint8)
    else:
        raise ImageInputError(
            f"A numpy image must be uint8 (0-255) or float in [0, 1]; got dtype {arr.dtype}."
        )
    if u8.shape[-1] == 1:
        return Image.fromarray(u8[:, :, 0], mode="L").convert("RGB")
    if u8.shape[-1] == 4:
        return _pil_rgb(Image.fromarray(np.ascontiguousarray(u8), mode="RGBA"))
    return Image.fromarray(np.ascontiguousarray(u8), mode="RGB")


def _pil_from_tensor(t: torch.Tensor) -> Image.Image:
    t = t.detach().to("cpu", torch.float32)
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ImageInputError(
                f"load_image takes one image; got a batch of {t.shape[0]}. Pass x[i], or pass "
                "the batch straight to the engine functions."
            )
        t = t[0]
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
        raise ImageInputError(
            f"An image tensor must be (3, H, W), (1, H, W) or (1, 3, H, W); got {tuple(t.shape)}."
        )
    if not torch.isfinite(t).all():
        raise ImageInputError("The image tensor contains NaN or Inf values.")
    if t.min() < 0 or t.max() > 1:
        raise ImageInputError(
            f"An image tensor for load_image must hold values in [0, 1] (as ToTensor gives); got "
            f"[{t.min():.3g}, {t.max():.3g}]. If it is already normalised for the model, pass it "
            "directly to the engine functions instead."
        )
    arr = (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return _pil_from_array(arr)


def _resize_crop(img: Image.Image, resize: int | None, crop: int | None) -> Image.Image:
    """Resize the shorter side to ``resize`` then centre-crop ``crop`` (either may be None)."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    if resize is not None:
        img = F.resize(img, resize, interpolation=InterpolationMode.BILINEAR, antialias=True)
    if crop is not None:
        img = F.center_crop(img, [crop, crop])
    return img


def load_image(
    src: ImageSource,
    size: int | None = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    weights: Any = None,
) -> LoadedImage:
    """Load an image for a model and for display.

    Args:
        src: a file path, PIL image, numpy array (``(H, W)`` or ``(H, W, 1|3|4)``, uint8 or
            float in [0, 1]) or tensor (``(3, H, W)``, ``(1, H, W)`` or ``(1, 3, H, W)`` in
            [0, 1]). Grayscale is expanded to RGB; alpha is composited onto white.
        size: output side in pixels: the shorter side is resized to ``size`` and the centre
            ``size x size`` square is kept. ``None`` keeps the image as it is.
        mean, std: per-channel normalisation for the model (ImageNet's by default); one value
            each for a grayscale model (MNIST: ``mean=[0.1307], std=[0.3081]``): the image is
            then converted to grey (``PIL``'s ``"L"``) and the tensor has one channel.
        weights: a torchvision weights entry (e.g. ``ResNet18_Weights.DEFAULT``): its
            ``transforms()`` give the geometry and normalisation (``size``/``mean``/``std`` are
            then ignored) and ``weights.meta["categories"]`` the class names.

    Returns:
        :class:`LoadedImage`; ``tensor, rgb = load_image(...)`` unpacks the two images.
    """
    if len(mean) != len(std) or len(mean) not in (1, 3):
        raise ImageInputError(
            f"mean and std need 3 values each (RGB) or 1 each (a grayscale model); got {mean!r} "
            f"and {std!r}.")
    grey = len(mean) == 1
    if grey and weights is not None:
        raise ImageInputError("weights= gives RGB transforms; a grayscale model's input takes "
                              "size=, mean=[m] and std=[s] instead.")
    img = _to_pil(src)
    classes = None
    if weights is not None:
        transform = weights.transforms()
        resize = _first(getattr(transform, "resize_size", None))
        crop = _first(getattr(transform, "crop_size", None))
        mean = tuple(getattr(transform, "mean", mean))
        std = tuple(getattr(transform, "std", std))
        categories = getattr(weights, "meta", {}).get("categories")
        classes = tuple(categories) if categories else None
        shown = _resize_crop(img, resize, crop)
        tensor = transform(img).unsqueeze(0).to(torch.float32)
    else:
        shown = _resize_crop(img, size, size) if size is not None else img
        tensor = None
    if grey:
        luma = np.asarray(shown.convert("L"), dtype=np.uint8)
        rgb = np.repeat(luma[:, :, None], 3, axis=2)
        tensor = normalize(torch.from_numpy(luma.copy())[None, None].float() / 255, mean, std)
    else:
        rgb = np.asarray(shown, dtype=np.uint8).copy()
    if tensor is None:
        tensor = normalize(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, mean, std)
    return LoadedImage(
        tensor.contiguous(),
        rgb,
        classes,
        tuple(float(m) for m in mean),
        tuple(float(s) for s in std),
    )


def _first(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value else None
    return int(value)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel for ``(N, C, H, W)`` or ``(C, H, W)`` input."""
    shape = (-1, 1, 1)
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - m) / s


def denormalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Inverse of :func:`normalize`."""
    shape = (-1, 1, 1)
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return x * s + m


def default_normalization(
    model: nn.Module, mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The ``(mean, std)`` images are normalised with for ``model``: those given, else
    ImageNet's (its grey statistics for a model whose first convolution takes one channel).

    Raises:
        ImageInputError: values that do not fit the model's channels (with the fix).
    """
    if mean is None or std is None:
        grey = expected_channels(model) == 1
        mean = mean if mean is not None else (IMAGENET_GREY_MEAN if grey else IMAGENET_MEAN)
        std = std if std is not None else (IMAGENET_GREY_STD if grey else IMAGENET_STD)
    check_normalization(model, mean, std)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def check_normalization(model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
    """Check that ``mean`` and ``std`` have one value per input channel of ``model`` (3 for a
    model without a Conv2d).

    Raises:
        ImageInputError: they do not (the message names the fix).
    """
    channels = expected_channels(model) or 3
    if len(mean) != channels or len(std) != channels:
        kind = "a grayscale model" if channels == 1 else "RGB"
        example = ("mean=[0.1307], std=[0.3081] for MNIST" if channels == 1
                   else "ImageNet's mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]")
        raise ImageInputError(
            f"{type(model).__name__}'s first convolution takes {channels} channel(s): mean and "
            f"std need {channels} value(s) each ({kind}), e.g. {example}; got {mean!r} and "
            f"{std!r}.")


def expected_channels(model: nn.Module) -> int | None:
    """Input channels of the model's first Conv2d (None for a model without one)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return None


def prepare_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Check an input batch against ``model`` and return it on the model's device and dtype.

    Accepts ``(N, C, H, W)``, or ``(C, H, W)`` for one image. A one-channel input for a model
    that takes three channels is repeated to RGB. The result is a fresh tensor outside any
    inference mode, so gradients can be taken through it.

    Raises:
        ImageInputError: not a floating tensor of rank 3/4, a channel count the model does not
            take, an empty spatial size, or NaN/Inf values.
    """
    if isinstance(x, LoadedImage):
        x = x.tensor
    if not isinstance(x, torch.Tensor):
        raise ImageInputError(
            f"The model input must be a torch.Tensor of shape (N, C, H, W); got "
            f"{type(x).__name__}. Use cnnviz_widgets.load_image(...) to turn an image into one."
        )
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        hint = (
            " A 2-D tensor is a single-channel image: use x[None, None] (or load_image)."
            if x.ndim == 2
            else ""
        )
        raise ImageInputError(
            f"The model input must have shape (N, C, H, W) (or (C, H, W) for one image); got "
            f"{tuple(x.shape)} with {x.ndim} dimension(s).{hint}"
        )
    if not (x.is_floating_point()):
        raise ImageInputError(
            f"The model input must be a floating-point tensor; got {x.dtype}. Convert uint8 "
            "images with load_image(...) or x.float() / 255 and normalise them for the model."
        )
    if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ImageInputError(f"The model input is empty: shape {tuple(x.shape)}.")
    want = expected_channels(model)
    have = x.shape[1]
    if want is not None and have != want:
        if have == 1 and want == 3:
            x = x.expand(-1, 3, -1, -1)
        else:
            raise ImageInputError(
                f"The input has {have} channel(s) but {type(model).__name__}'s first "
                f"convolution takes {want}. Pass (N, {want}, H, W) images"
                + (" (drop the alpha channel of RGBA images)." if have == 4 and want == 3 else ".")
            )
    if x.device.type == "meta":
        raise ImageInputError(
            "The input is a meta-device tensor: it has a shape but no values. Pass a tensor "
            "with data (on any device; it is moved to the model's device)."
        )
    with torch.inference_mode(False):
        x = x.detach().to(device=model_device(model), dtype=model_dtype(model)).clone()
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ImageInputError(
            f"The input contains {bad} NaN or Inf value(s); a model output from it would be "
            "meaningless. Check how the image was loaded or normalised."
        )
    return x
