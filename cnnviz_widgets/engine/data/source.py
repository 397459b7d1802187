"""Where the images of a dataset pass come from: :func:`resolve_source` turns the caller's
``data`` into a :class:`Source`, :func:`make_loader` reads this process's shard of it with
torch's ``DataLoader``, :func:`load_items` reads a few items again by index (to show them)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset
from torch.utils.data._utils.collate import default_collate

from .errors import DataError
from .files import ImageFiles
from .items import Batch, Collate, split_item
from .shard import ShardBatches
from .transform import ImageFunction, Transform, display_rgb

DEFAULT_BATCH_SIZE = 32


@dataclass
class Source:
    """A resolved ``data`` argument.

    Attributes:
        dataset: the map-style dataset read (an :class:`ImageFiles` for a folder).
        batch_size: images per forward pass.
        num_workers: DataLoader worker processes.
        collate: the user's collate function (from their DataLoader), or ``None``.
        kind: ``"folder"`` or ``"dataset"``.
        classes: class names, where the data has them.
        transform: how files and PIL items become input, and how tensors are shown.
    """

    dataset: Any
    batch_size: int
    num_workers: int
    collate: Callable[[list[Any]], Any] | None
    kind: str
    classes: list[str] | None
    transform: Transform

    @property
    def root(self) -> str | None:
        return str(self.dataset.root) if isinstance(self.dataset, ImageFiles) else None

    def describe(self) -> str:
        if isinstance(self.dataset, ImageFiles):
            return f"folder {self.dataset.root}"
        return f"{type(self.dataset).__name__} of {len(self.dataset)} items"


def resolve_source(
    data: Any, batch_size: int | None, num_workers: int, transform: Transform
) -> Source:
    """Turn a pass's ``data`` argument into a :class:`Source`.

    Args:
        data: a folder path; a map-style ``Dataset``; a ``DataLoader`` over one (its dataset,
            workers and collate function are used, its batch size when ``batch_size`` is
            ``None``; not its sampler); an ``(N, C, H, W)`` tensor; or a tuple of tensors
            ``(images, labels[, masks or boxes])`` with one row per image.
        batch_size: images per batch (``None``: the DataLoader's, else 32).
        num_workers: DataLoader worker processes (0: the DataLoader's).
        transform: for files and PIL items.
    """
    collate: Callable[[list[Any]], Any] | None = None
    if isinstance(data, (str, os.PathLike)):
        dataset: Any = ImageFiles(data, transform)
        kind = "folder"
    else:
        kind = "dataset"
        if isinstance(data, DataLoader):
            dataset = data.dataset
            if batch_size is None:
                batch_size = data.batch_size
            num_workers = data.num_workers if num_workers == 0 else num_workers
            if data.collate_fn is not default_collate:
                collate = data.collate_fn
        elif isinstance(data, torch.Tensor):
            if data.ndim != 4:
                raise DataError(
                    f"A tensor of images must have shape (N, C, H, W); got {tuple(data.shape)}."
                )
            dataset = TensorDataset(data)
        elif isinstance(data, (tuple, list)) and data and _tensors(data):
            if len({int(t.shape[0]) for t in data}) != 1:
                raise DataError(
                    "The tensors of a tuple (images, labels, ...) must have one row per image; "
                    f"got {', '.join(str(int(t.shape[0])) for t in data)} rows."
                )
            dataset = TensorDataset(*data)
        else:
            dataset = data
        if isinstance(dataset, IterableDataset) or not (
            hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")
        ):
            raise DataError(
                f"data must be a folder path, a map-style torch Dataset (with __len__ and "
                f"__getitem__), a DataLoader over one, an (N, C, H, W) tensor or a tuple of "
                f"tensors; got {type(dataset).__name__}. An IterableDataset has no indices to "
                "name images by: wrap its items in a map-style Dataset."
            )
    if batch_size is None:
        batch_size = DEFAULT_BATCH_SIZE
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer; got {batch_size!r}.")
    classes = getattr(dataset, "classes", None)
    if not (isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes)):
        classes = None
    return Source(dataset, batch_size, num_workers, collate, kind, _list(classes), transform)


def _tensors(values: Sequence[Any]) -> bool:
    return all(isinstance(t, torch.Tensor) and t.ndim >= 1 for t in values)


def _list(value: Sequence[str] | None) -> list[str] | None:
    return None if value is None else list(value)


class Indexed(Dataset):
    """``dataset[i]`` as ``(i, dataset[i])``, so a batch carries its dataset indices."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[int, Any]:
        return index, self.dataset[index]


def make_loader(
    source: Source,
    batch_size: int,
    rank: int = 0,
    world: int = 1,
    start: int = 0,
    pin_memory: bool = False,
    split: str = "items",
) -> DataLoader:
    """torch's ``DataLoader`` over this process's shard (:class:`~.shard.ShardBatches`), from
    shard position ``start`` on; it yields :class:`~.items.Batch` es. Its ``batch_sampler``'s
    ``size`` is the number of images of the shard."""
    return DataLoader(
        Indexed(source.dataset),
        batch_sampler=ShardBatches(len(source.dataset), rank, world, batch_size, start, split),
        num_workers=source.num_workers,
        collate_fn=Collate(source.transform, source.collate),
        pin_memory=pin_memory,
    )


def load_batches(
    data: Any,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    transform: Transform | ImageFunction | None = None,
    num_workers: int = 0,
    shard: tuple[int, int] | None = None,
) -> Iterator[Batch]:
    """The :class:`~.items.Batch` es of ``data`` (see :func:`resolve_source`), in index order.

    Args:
        data: a folder, ``Dataset``, ``DataLoader``, tensor or tuple of tensors.
        batch_size: images per batch (not for a ``DataLoader``: its own).
        transform: for files and PIL items: a :class:`~.transform.Transform` or a function
            (PIL image -> ``(C, H, W)`` tensor); default: ``Transform()`` (ImageNet's
            normalisation, the images' own size).
        num_workers: ``DataLoader`` worker processes.
        shard: ``(rank, world_size)``: only the batches ``i`` with ``i % world_size == rank``
            of the single-process batching (``split="batches"``; indices stay global).
    """
    if transform is None:
        transform = Transform()
    elif not isinstance(transform, Transform):
        transform = Transform(function=transform)
    size = None if isinstance(data, DataLoader) else batch_size
    source = resolve_source(data, size, num_workers, transform)
    rank, world = shard if shard is not None else (0, 1)
    yield from make_loader(source, source.batch_size, rank, world, split="batches")


def load_items(source: Source, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The items ``indices`` of ``source``'s dataset, read again as a pass reads them.

    Returns:
        Model input ``(k, C, H, W)`` (as :class:`~.items.Collate` makes it from each item's
        image) and display RGB ``(k, H, W, 3)`` uint8: an image file's own pixels (resized and
        cropped as the input), else the input shown by :func:`~.transform.display_rgb`.
        Empty indices give ``(0, 3, 1, 1)`` and ``(0, 1, 1, 3)``.
    """
    if not indices:
        return torch.zeros(0, 3, 1, 1), torch.zeros(0, 1, 1, 3, dtype=torch.uint8)
    dataset, transform = source.dataset, source.transform
    if isinstance(dataset, ImageFiles) and transform.function is None:
        loaded = [dataset.load(i) for i in indices]
        x = torch.cat([item.tensor for item in loaded])
        rgb = torch.stack([torch.from_numpy(item.rgb) for item in loaded])
        return x, rgb
    convert = Collate(transform)
    x = torch.stack([convert.image_tensor(split_item(dataset[i], i).image, i) for i in indices])
    return x, display_rgb(x, transform)


def fingerprint(source: Source, items: int = 4) -> str:
    """A short hash of the data: its length and, for a folder, every file name; for a dataset,
    the shape, dtype and bytes of its first ``items`` images and their labels."""
    digest = hashlib.blake2b(digest_size=12)
    dataset = source.dataset
    digest.update(f"{source.kind}:{len(dataset)}".encode())
    if isinstance(dataset, ImageFiles):
        for name in dataset.files:
            digest.update(name.encode() + b"\0")
        digest.update(repr(dataset.classes).encode())
        return digest.hexdigest()
    collate = Collate(source.transform, source.collate)
    batch = collate([(i, dataset[i]) for i in range(min(items, len(dataset)))])
    images = batch.images
    labels = batch.labels
    if labels is None:
        labels = torch.full((images.shape[0],), -1, dtype=torch.int64)
    digest.update(f"{tuple(images.shape)}:{images.dtype}".encode())
    digest.update(images.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    digest.update(labels.numpy().tobytes())
    return digest.hexdigest()
