"""Dataset items and batches: what is the image, the label, the object's mask or box, and how
items are collated into a :class:`Batch`.

An item (or, from a user's ``collate_fn``, a whole batch) is an image; a tuple
``(image, label[, mask or box[, box or mask]])``; or a dict with the image under ``image``
(or ``images``, ``x``, ``input``, ``inputs``, ``pixel_values``), the label under ``label``
(``labels``, ``target``, ``targets``, ``y``), the mask under ``mask`` (``masks``,
``segmentation``) and the box under ``box`` (``boxes``, ``bbox``). A mask is ``(H, W)``
(non-zero = object), a box ``(4,)`` ``(x0, y0, x1, y1)`` with ``x1``, ``y1`` exclusive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from .errors import DataError, different_sizes, not_an_image
from .transform import Transform

_IMAGE_KEYS = ("image", "images", "x", "input", "inputs", "pixel_values")
_LABEL_KEYS = ("label", "labels", "target", "targets", "y")
_MASK_KEYS = ("mask", "masks", "segmentation")
_BOX_KEYS = ("box", "boxes", "bbox")


@dataclass
class Batch:
    """One batch of a dataset pass.

    Attributes:
        indices: ``(B,)`` int64 dataset indices of the images.
        images: ``(B, C, H, W)`` floating-point model input.
        labels: ``(B,)`` int64 labels (``-1`` for an item without one), or ``None`` when no
            item of the batch has a label.
        masks: ``(B, H, W)`` object masks (non-zero = object), or ``None``.
        boxes: ``(B, 4)`` int64 object boxes ``(x0, y0, x1, y1)``, or ``None``.
    """

    indices: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    boxes: torch.Tensor | None = None


class Parts(NamedTuple):
    """An item's (or a collated batch's) parts; ``label``, ``mask``, ``box`` ``None`` if absent."""

    image: Any
    label: Any
    mask: Any
    box: Any


def split_item(item: Any, index: int, *, batched: bool = False) -> Parts:
    """The :class:`Parts` of dataset item ``index`` (``batched``: of a collated batch, where a
    mask is ``(B, H, W)`` and a box ``(B, 4)``)."""
    if isinstance(item, Mapping):

        def pick(keys: Sequence[str]) -> Any:
            return next((item[k] for k in keys if k in item), None)

        image = pick(_IMAGE_KEYS)
        if image is None:
            raise DataError(
                f"Dataset item {index} is a dict without an image: put it under one of "
                f"{', '.join(_IMAGE_KEYS)}; got keys {', '.join(map(str, item))}."
            )
        return Parts(image, pick(_LABEL_KEYS), pick(_MASK_KEYS), pick(_BOX_KEYS))
    if isinstance(item, (tuple, list)):
        if not item:
            raise DataError(not_an_image(index, item))
        found: dict[str, Any] = {}
        for extra in item[2:4]:
            kind = _mask_or_box(extra, batched)
            if kind is not None:
                found.setdefault(kind, extra)
        label = item[1] if len(item) > 1 else None
        return Parts(item[0], label, found.get("mask"), found.get("box"))
    return Parts(item, None, None, None)


def _mask_or_box(value: Any, batched: bool) -> str | None:
    """``"box"`` for a ``(4,)`` array, ``"mask"`` for an ``(H, W)`` one (one more leading
    dimension when ``batched``), else ``None`` (the value is ignored)."""
    if not isinstance(value, (torch.Tensor, np.ndarray)):
        return None
    ndim = value.ndim - (1 if batched else 0)
    if ndim == 1 and value.shape[-1] == 4:
        return "box"
    return "mask" if ndim == 2 else None


def label_of(value: Any) -> int:
    """An item's label as an int: ``-1`` when it has none or it is not an integer."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        return int(value.item())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return -1


class Collate:
    """Items ``(index, item)`` -> a :class:`Batch`. Names the item and the fix when an item is
    not an image or the images do not share one size.

    Args:
        transform: how PIL and numpy images become model input.
        user_collate: a ``DataLoader``'s own ``collate_fn`` (its output is split as a batch).
    """

    def __init__(self, transform: Transform, user_collate: Callable | None = None) -> None:
        self.transform = transform
        self.user_collate = user_collate

    def __call__(self, batch: list[tuple[int, Any]]) -> Batch:
        indices = torch.tensor([i for i, _ in batch], dtype=torch.int64)
        if self.user_collate is not None:
            return self._from_user(indices, [item for _, item in batch])
        parts = [split_item(item, index) for index, item in batch]
        images = [
            self.image_tensor(p.image, index) for (index, _), p in zip(batch, parts, strict=True)
        ]
        first = images[0]
        for (index, _), image in zip(batch, images, strict=True):
            if image.shape != first.shape:
                raise DataError(different_sizes(batch[0][0], first.shape, index, image.shape))
        labels = [label_of(p.label) for p in parts]
        return Batch(
            indices=indices,
            images=torch.stack(images),
            labels=None if all(v == -1 for v in labels) else torch.tensor(labels),
            masks=_stacked([p.mask for p in parts]),
            boxes=_stacked([p.box for p in parts], torch.int64),
        )

    def image_tensor(self, image: Any, index: int) -> torch.Tensor:
        """One item's image as a ``(C, H, W)`` floating tensor."""
        if isinstance(image, (Image.Image, np.ndarray)):
            return self.transform.tensor(image)
        if not isinstance(image, torch.Tensor):
            raise DataError(not_an_image(index, image))
        if image.ndim == 2:
            image = image[None]
        if image.ndim != 3:
            raise DataError(
                f"Dataset item {index} is a tensor of shape {tuple(image.shape)}, not one image "
                "(C, H, W). Make the dataset return one image per item, or (image, label)."
            )
        if not image.is_floating_point():
            raise DataError(
                f"Dataset item {index} is a {image.dtype} tensor; the model takes floating-point "
                "input. Give the dataset a transform that converts and normalises it (for "
                "example transforms.ToTensor() and transforms.Normalize(mean, std))."
            )
        return image

    def _from_user(self, indices: torch.Tensor, items: list[Any]) -> Batch:
        assert self.user_collate is not None
        out = self.user_collate(items)
        parts = split_item(out, int(indices[0]), batched=True)
        images, labels = parts.image, parts.label
        if not (isinstance(images, torch.Tensor) and images.ndim == 4):
            raise DataError(
                f"The DataLoader's collate_fn returned {type(images).__name__}, not a batch of "
                "images (N, C, H, W), a tuple (images, labels, ...) or a dict with 'image'. Pass "
                "the Dataset itself, or a DataLoader whose batches are (images, labels)."
            )
        n = images.shape[0]
        if not (
            isinstance(labels, torch.Tensor)
            and labels.shape == (n,)
            and not (labels.is_floating_point() or labels.is_complex())
        ):
            labels = None
        return Batch(
            indices=indices,
            images=images,
            labels=None if labels is None else labels.to(torch.int64),
            masks=None if parts.mask is None else torch.as_tensor(parts.mask),
            boxes=None if parts.box is None else torch.as_tensor(parts.box).to(torch.int64),
        )


def _stacked(values: list[Any], dtype: torch.dtype | None = None) -> torch.Tensor | None:
    """The items' masks (or boxes) stacked, or ``None`` unless every item has one."""
    if any(v is None for v in values):
        return None
    out = torch.stack([torch.as_tensor(v) for v in values])
    return out if dtype is None else out.to(dtype)
