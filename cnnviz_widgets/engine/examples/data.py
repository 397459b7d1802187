"""Where the images of a dataset pass come from, and how they become model input.

``data`` is a map-style torch ``Dataset`` (items an image tensor, a PIL image, or a tuple
``(image, label, ...)``), a ``DataLoader`` over one (its dataset, batch size, workers and
collate function are used; its sampler is not, the pass reads every item once), a
``(N, C, H, W)`` tensor, or a folder of image files (one sub-folder per class, or flat).
Image files and PIL items are read like :func:`~cnnviz_widgets.engine.inputs.load_image`
reads them: a torchvision ``weights`` entry's transforms, or ``size``/``mean``/``std``, or, for
the bundled demo model, its own size and normalisation. Tensor items are taken as model input
as they are (the dataset's own transform made them); ``mean``/``std`` then only say how to
show them.

Each process of a torch.distributed run reads its own shard ``range(rank, N, world)``, with no
padded duplicates; every batch has the same size (the last one is padded by repeating its last
image, and the padding is dropped before scoring), so an image's activations are computed the
same way whatever the number of processes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset
from torch.utils.data._utils.collate import default_collate

from ..inputs import IMAGENET_MEAN, IMAGENET_STD, LoadedImage, denormalize, load_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
DEFAULT_BATCH_SIZE = 32


class ExamplesError(ValueError):
    """Bad input to a dataset-examples pass; the message names the problem and the fix."""


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
    """

    size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    weights: Any = None

    def load(self, src: Any) -> LoadedImage:
        """A file path, PIL image or numpy image -> ``(1, 3, H, W)`` input and ``(H, W, 3)`` RGB."""
        return load_image(
            src,
            size=self.size,
            mean=self.mean or IMAGENET_MEAN,
            std=self.std or IMAGENET_STD,
            weights=self.weights,
        )

    def describe(self) -> dict[str, Any]:
        """JSON description (the weights entry by its ``Enum`` name)."""
        return {
            "size": self.size,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "weights": None if self.weights is None else weights_name(self.weights),
        }

    @classmethod
    def from_description(cls, desc: dict[str, Any]) -> Transform:
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


def weights_name(weights: Any) -> str:
    """``"ResNet50_Weights.IMAGENET1K_V2"`` for a torchvision weights entry."""
    return f"{type(weights).__name__}.{getattr(weights, 'name', weights)}"


def resolve_transform(
    model: nn.Module,
    weights: Any,
    size: int | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> Transform:
    """The :class:`Transform` a pass uses: ``weights``' transforms, else ``size``/``mean``/``std``,
    else (the bundled demo model) its own input size and normalisation."""
    if weights is not None:
        if isinstance(weights, str):
            import torchvision

            weights = torchvision.models.get_weight(weights)
        if not hasattr(weights, "transforms"):
            raise ExamplesError(
                f"weights must be a torchvision weights entry (e.g. ResNet50_Weights.DEFAULT) or "
                f"its name; got {type(weights).__name__}."
            )
        transform = weights.transforms()
        return Transform(
            size=None,
            mean=tuple(float(v) for v in transform.mean),  # type: ignore[arg-type]
            std=tuple(float(v) for v in transform.std),  # type: ignore[arg-type]
            weights=weights,
        )
    for name, value in (("mean", mean), ("std", std)):
        if value is not None and len(value) != 3:
            raise ExamplesError(f"{name} needs 3 values (RGB); got {value!r}.")
    if size is None and mean is None and std is None and _is_demo_model(model):
        from ...demo.model import INPUT_SIZE, MEAN, STD

        return Transform(size=INPUT_SIZE, mean=MEAN, std=STD)
    return Transform(
        size=size,
        mean=None if mean is None else tuple(float(v) for v in mean),  # type: ignore[arg-type]
        std=None if std is None else tuple(float(v) for v in std),  # type: ignore[arg-type]
    )


def _is_demo_model(model: nn.Module) -> bool:
    cls = type(model)
    return cls.__name__ == "ShapesNet" and cls.__module__.startswith("cnnviz_widgets.demo")


class ImageFiles(Dataset):
    """The image files of a folder: one sub-folder per class (labels in sorted folder order),
    or flat (no labels). Items are ``((3, H, W) float32 model input, label)``; ``label`` is
    ``-1`` in a flat folder.

    Attributes:
        root: the folder.
        files: paths relative to ``root`` (POSIX separators), sorted; item ``i`` is ``files[i]``.
        labels: class index per file, or ``None`` for a flat folder.
        classes: sub-folder names, or ``None``.
    """

    def __init__(self, root: str | os.PathLike, transform: Transform) -> None:
        self.root = Path(root).expanduser().resolve()
        self.transform = transform
        if not self.root.is_dir():
            raise ExamplesError(
                f"{os.fspath(root)!r} is not a folder. Pass a folder of image files (one "
                "sub-folder per class, or flat), a torch Dataset or a DataLoader."
            )
        flat = sorted(p.name for p in self.root.iterdir() if p.is_file() and _is_image_name(p))
        classes: list[str] = []
        files: list[str] = []
        labels: list[int] = []
        for sub in sorted(p for p in self.root.iterdir() if p.is_dir() and not _hidden(p)):
            found = _image_files(sub)
            if found:
                labels.extend([len(classes)] * len(found))
                classes.append(sub.name)
                files.extend(f"{sub.name}/{f}" for f in found)
        if files and flat:
            raise ExamplesError(
                f"{self.root} holds both image files ({flat[0]!r}, ...) and class sub-folders "
                f"({classes[0]!r}, ...). Move the loose files into a sub-folder of their class, "
                "or use a folder of one kind."
            )
        if not files and not flat:
            raise ExamplesError(
                f"No image files in {self.root} (looked for {', '.join(IMAGE_SUFFIXES)}, in the "
                "folder and in its sub-folders). Put images in it, flat or one sub-folder per "
                "class, or pass another folder."
            )
        self.files = files or flat
        self.labels: list[int] | None = labels if files else None
        self.classes: list[str] | None = classes if files else None

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> LoadedImage:
        """The file at ``index`` as model input and display RGB."""
        return self.transform.load(self.root / self.files[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.load(index).tensor[0]
        return image, -1 if self.labels is None else self.labels[index]


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _is_image_name(path: Path) -> bool:
    return not _hidden(path) and path.suffix.lower() in IMAGE_SUFFIXES


def _image_files(folder: Path) -> list[str]:
    """Image files under ``folder`` (recursively), relative POSIX paths, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = Path(dirpath)
        for name in filenames:
            path = base / name
            if _is_image_name(path):
                found.append(path.relative_to(folder).as_posix())
    return sorted(found)


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
    """Turn ``top_examples``' ``data`` argument into a :class:`Source`."""
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
                raise ExamplesError(
                    f"A tensor of images must have shape (N, C, H, W); got {tuple(data.shape)}."
                )
            dataset = TensorDataset(data)
        else:
            dataset = data
        if isinstance(dataset, IterableDataset) or not (
            hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")
        ):
            raise ExamplesError(
                f"data must be a folder path, a map-style torch Dataset (with __len__ and "
                f"__getitem__), a DataLoader over one, or an (N, C, H, W) tensor; got "
                f"{type(dataset).__name__}. An IterableDataset has no indices to name examples "
                "by: wrap its items in a map-style Dataset."
            )
    if batch_size is None:
        batch_size = DEFAULT_BATCH_SIZE
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ExamplesError(f"batch_size must be a positive integer; got {batch_size!r}.")
    classes = getattr(dataset, "classes", None)
    if not (isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes)):
        classes = None
    return Source(dataset, batch_size, num_workers, collate, kind, _list(classes), transform)


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


class ShardBatches:
    """Batches of dataset indices for one process: its shard ``range(rank, n, world)`` from
    shard position ``start`` on, ``batch_size`` at a time (the last batch may be shorter)."""

    def __init__(self, n: int, rank: int, world: int, batch_size: int, start: int = 0) -> None:
        self.shard = range(rank, n, world)
        self.batch_size = batch_size
        self.start = start

    def __len__(self) -> int:
        left = max(len(self.shard) - self.start, 0)
        return -(-left // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for first in range(self.start, len(self.shard), self.batch_size):
            yield list(self.shard[first : first + self.batch_size])


class Collate:
    """Items ``(index, item)`` -> ``(indices (N,) int64, images (N, C, H, W) float, labels (N,)
    int64)``; ``-1`` labels where unknown. Names the item and the fix when an item is not an
    image or the images do not share one size."""

    def __init__(self, transform: Transform, user_collate: Callable | None = None) -> None:
        self.transform = transform
        self.user_collate = user_collate

    def __call__(
        self, batch: list[tuple[int, Any]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        indices = torch.tensor([i for i, _ in batch], dtype=torch.int64)
        if self.user_collate is not None:
            images, labels = self._from_user([item for _, item in batch])
            return indices, images, labels
        images_list, labels_list = [], []
        for index, item in batch:
            image, label = split_item(item, index)
            images_list.append(self.image_tensor(image, index))
            labels_list.append(label)
        first = images_list[0]
        for (index, _), image in zip(batch, images_list, strict=True):
            if image.shape != first.shape:
                raise ExamplesError(different_sizes(batch[0][0], first.shape, index, image.shape))
        return indices, torch.stack(images_list), torch.tensor(labels_list, dtype=torch.int64)

    def image_tensor(self, image: Any, index: int) -> torch.Tensor:
        """One item's image as a ``(C, H, W)`` floating tensor."""
        if isinstance(image, (Image.Image, np.ndarray)):
            return self.transform.load(image).tensor[0]
        if not isinstance(image, torch.Tensor):
            raise ExamplesError(not_an_image(index, image))
        if image.ndim == 2:
            image = image[None]
        if image.ndim != 3:
            raise ExamplesError(
                f"Dataset item {index} is a tensor of shape {tuple(image.shape)}, not one image "
                "(C, H, W). Make the dataset return one image per item, or (image, label)."
            )
        if not image.is_floating_point():
            raise ExamplesError(
                f"Dataset item {index} is a {image.dtype} tensor; the model takes floating-point "
                "input. Give the dataset a transform that converts and normalises it (for "
                "example transforms.ToTensor() and transforms.Normalize(mean, std))."
            )
        return image

    def _from_user(self, items: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.user_collate is not None
        out = self.user_collate(items)
        images, labels = out, None
        if isinstance(out, (tuple, list)) and out:
            images = out[0]
            labels = out[1] if len(out) > 1 else None
        if not (isinstance(images, torch.Tensor) and images.ndim == 4):
            raise ExamplesError(
                f"The DataLoader's collate_fn returned {type(images).__name__}, not a batch of "
                "images (N, C, H, W) or a tuple (images, labels, ...). Pass the Dataset itself, "
                "or a DataLoader whose batches are (images, labels)."
            )
        n = images.shape[0]
        if isinstance(labels, torch.Tensor) and labels.shape == (n,) and not (
            labels.is_floating_point() or labels.is_complex()
        ):
            return images, labels.to(torch.int64)
        return images, torch.full((n,), -1, dtype=torch.int64)


def split_item(item: Any, index: int) -> tuple[Any, int]:
    """``(image, label)`` of a dataset item (label ``-1`` when it has none or not an integer)."""
    label: Any = -1
    if isinstance(item, (tuple, list)):
        if not item:
            raise ExamplesError(not_an_image(index, item))
        image = item[0]
        if len(item) > 1:
            label = item[1]
    else:
        image = item
    if isinstance(label, torch.Tensor) and label.numel() == 1 and not label.is_floating_point():
        label = int(label.item())
    elif isinstance(label, np.integer):
        label = int(label)
    if not isinstance(label, int) or isinstance(label, bool):
        label = -1
    return image, label


def not_an_image(index: int, image: Any) -> str:
    return (
        f"Dataset item {index} is {type(image).__name__} ({_short(image)}), not an image. Items "
        "must be an image tensor (C, H, W), a PIL image, or a tuple (image, label, ...); give "
        "the dataset a transform that returns one (for example transforms.ToTensor())."
    )


def different_sizes(i: int | None, shape_i: Any, j: int, shape_j: Any) -> str:
    first = "an earlier item" if i is None else f"item {i}"
    return (
        f"Images of different sizes: {first} is {'x'.join(map(str, shape_i))} and item {j} is "
        f"{'x'.join(map(str, shape_j))}; they cannot be batched, and examples must share one "
        "grid. Pass size=N (command line: --size N) to resize and centre-crop every image, or "
        "give the dataset a transform that does (transforms.Resize(N) + CenterCrop(N))."
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def make_loader(
    source: Source, rank: int, world: int, batch_size: int, start: int, pin_memory: bool
) -> DataLoader:
    """torch's DataLoader over this process's shard, from shard position ``start`` on."""
    n = len(source.dataset)
    return DataLoader(
        Indexed(source.dataset),
        batch_sampler=ShardBatches(n, rank, world, batch_size, start),
        num_workers=source.num_workers,
        collate_fn=Collate(source.transform, source.collate),
        pin_memory=pin_memory,
    )


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
    _, images, labels = collate([(i, dataset[i]) for i in range(min(items, len(dataset)))])
    digest.update(f"{tuple(images.shape)}:{images.dtype}".encode())
    digest.update(images.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    digest.update(labels.numpy().tobytes())
    return digest.hexdigest()


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
