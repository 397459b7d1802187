"""Reading a dataset for the metrics: one function, :func:`load_batches`.

Kept in one place so that it can be merged with the dataset-examples streaming layer
(``engine/examples``) later: it only turns "some data" into batches of images plus whatever
labels, masks or boxes come with them, through ``torch.utils.data.DataLoader``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

_IMAGE_KEYS = ("image", "images", "x", "input", "inputs", "pixel_values")
_LABEL_KEYS = ("label", "labels", "target", "targets", "y")
_MASK_KEYS = ("mask", "masks", "segmentation")
_BOX_KEYS = ("box", "boxes", "bbox")


@dataclass
class Batch:
    """One batch of a dataset.

    Attributes:
        images: ``(B, C, H, W)`` images as the data gives them (the model's input).
        labels: ``(B,)`` int64 class labels, or ``None``.
        masks: ``(B, H, W)`` object masks (non-zero = object), or ``None``.
        boxes: ``(B, 4)`` object boxes ``(x0, y0, x1, y1)``, or ``None``.
        indices: ``(B,)`` int64 positions of the images in the data (in iteration order).
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    masks: torch.Tensor | None
    boxes: torch.Tensor | None
    indices: torch.Tensor


class ImageFiles(Dataset):
    """The image files of a folder, sorted by name, each through ``transform`` (a PIL image in,
    a ``(C, H, W)`` tensor out). Used for a folder without class sub-folders; items are images
    only (no labels)."""

    def __init__(self, root: str | Path, transform: Callable[[Any], torch.Tensor]) -> None:
        self.files = sorted(
            p for p in Path(root).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self.files:
            raise ValueError(f"No image files ({', '.join(IMAGE_SUFFIXES)}) in {root}.")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        from PIL import Image

        with Image.open(self.files[i]) as img:
            return self.transform(img.convert("RGB"))


def _folder(root: Path, transform: Callable[[Any], torch.Tensor] | None) -> Dataset:
    """An ``ImageFolder`` (class sub-folders give labels) or :class:`ImageFiles`."""
    from torchvision import datasets, transforms

    tf = transform if transform is not None else transforms.ToTensor()
    if any(p.is_dir() for p in root.iterdir()):
        return datasets.ImageFolder(str(root), transform=tf)
    return ImageFiles(root, tf)


def _extra(t: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """A third item: ``(B, 4)`` boxes, else ``(B, H, W)`` masks."""
    if t.ndim == 2 and t.shape[1] == 4:
        return None, t
    return t, None


def _split(item: Any) -> tuple[torch.Tensor, Any, Any, Any]:
    """``(images, labels, masks, boxes)`` from one collated batch."""
    if isinstance(item, torch.Tensor):
        return item, None, None, None
    if isinstance(item, Mapping):

        def pick(keys: Sequence[str]) -> Any:
            return next((item[k] for k in keys if k in item), None)

        images = pick(_IMAGE_KEYS)
        if images is None:
            raise ValueError(
                f"A batch dict needs the images under one of {', '.join(_IMAGE_KEYS)}; got "
                f"keys {', '.join(map(str, item))}."
            )
        return images, pick(_LABEL_KEYS), pick(_MASK_KEYS), pick(_BOX_KEYS)
    if isinstance(item, (tuple, list)) and item and isinstance(item[0], torch.Tensor):
        images = item[0]
        labels = item[1] if len(item) > 1 else None
        masks, boxes = _extra(item[2]) if len(item) > 2 else (None, None)
        if len(item) > 3:
            more_masks, more_boxes = _extra(item[3])
            masks = masks if masks is not None else more_masks
            boxes = boxes if boxes is not None else more_boxes
        return images, labels, masks, boxes
    raise TypeError(
        "Each batch must be a tensor of images, a tuple (images, labels[, masks or boxes]) or "
        f"a dict with an 'image' key; got {type(item).__name__}."
    )


def load_batches(
    data: Any,
    batch_size: int = 32,
    *,
    transform: Callable[[Any], torch.Tensor] | None = None,
    num_workers: int = 0,
    shard: tuple[int, int] | None = None,
) -> Iterator[Batch]:
    """Batches of images (with labels, masks or boxes when the data has them), in order.

    Args:
        data: a ``DataLoader`` (used as it is; ``batch_size`` is then ignored); a ``Dataset``
            (read in order by a ``DataLoader``); a folder path (class sub-folders make an
            ``ImageFolder`` with labels, a flat folder gives images only); an ``(N, C, H, W)``
            tensor; or a tuple of tensors ``(images, labels[, masks or boxes])``. An item or
            batch is a tensor, a tuple ``(image, label[, mask (H, W) or box (4,)])`` or a dict
            with ``image``/``label``/``mask``/``box`` keys.
        batch_size: images per batch (not for a ``DataLoader``).
        transform: for a folder: PIL image -> model-ready ``(C, H, W)`` tensor (default:
            ``ToTensor()``; images of different sizes need one that resizes).
        num_workers: ``DataLoader`` worker processes (not for a ``DataLoader``).
        shard: ``(rank, world_size)``: yield only batches ``i`` with ``i % world_size == rank``
            (each process of a ``torchrun`` job takes its share; ``indices`` stay global).

    Yields:
        :class:`Batch` es.
    """
    if isinstance(data, DataLoader):
        loader: Any = data
    else:
        if isinstance(data, (str, Path)):
            root = Path(data)
            if not root.is_dir():
                raise ValueError(f"{data} is not a folder.")
            dataset: Dataset = _folder(root, transform)
        elif isinstance(data, torch.Tensor):
            dataset = TensorDataset(data)
        elif (
            isinstance(data, (tuple, list))
            and data
            and all(isinstance(t, torch.Tensor) for t in data)
        ):
            dataset = TensorDataset(*data)
        elif isinstance(data, Dataset):
            dataset = data
        else:
            raise TypeError(
                "data must be a DataLoader, a Dataset, an image folder path, a tensor of images "
                f"or a tuple of tensors; got {type(data).__name__}."
            )
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    start = 0
    for i, item in enumerate(loader):
        if isinstance(item, (tuple, list)) and len(item) == 1:
            item = item[0]
        images, labels, masks, boxes = _split(item)
        count = int(images.shape[0])
        if shard is None or i % shard[1] == shard[0]:
            yield Batch(
                images=images,
                labels=None if labels is None else torch.as_tensor(labels).to(torch.int64),
                masks=None if masks is None else torch.as_tensor(masks),
                boxes=None if boxes is None else torch.as_tensor(boxes).to(torch.int64),
                indices=torch.arange(start, start + count),
            )
        start += count
