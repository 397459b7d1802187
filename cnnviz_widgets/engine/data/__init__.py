"""Reading a dataset: the one data layer of every dataset pass
(:func:`~cnnviz_widgets.engine.examples.top_examples`,
:func:`~cnnviz_widgets.engine.metrics.evaluate`), from "some data" to batches of model input.

``data`` is a folder of image files (one sub-folder per class, or flat), a map-style torch
``Dataset``, a ``DataLoader`` over one (its dataset, batch size, workers and collate function
are used; not its sampler: a pass reads every item once, by index), an ``(N, C, H, W)``
tensor, or a tuple of tensors ``(images, labels[, masks or boxes])``. Image files and PIL
items become model input as :func:`~cnnviz_widgets.engine.inputs.load_image` makes it (a
torchvision ``weights`` entry's transforms, or ``size``/``mean``/``std``, or the bundled demo
model's own), or through a function of the caller's. Tensor items are model input as they
are. Everything is read by torch's ``DataLoader``; under torchrun each process reads its own
shard (:mod:`.shard`).

* :mod:`.transform`: :class:`Transform`, :func:`resolve_transform`, :func:`display_rgb`.
* :mod:`.files`: :class:`ImageFiles`, a folder of images.
* :mod:`.items`: an item's image, label, mask and box; :class:`Collate` -> :class:`Batch`.
* :mod:`.source`: :func:`resolve_source`, :func:`make_loader`, :func:`load_batches`,
  :func:`load_items`, :func:`fingerprint`.
* :mod:`.shard`: torch.distributed: rank, the shard's batches, all-gather.
* :mod:`.progress`: the progress bar or callback.
* :mod:`.errors`: :class:`DataError` and its messages.
"""

from __future__ import annotations

from .errors import DataError, different_sizes, not_an_image
from .files import IMAGE_SUFFIXES, ImageFiles
from .items import Batch, Collate, Parts, label_of, split_item
from .progress import Progress, ProgressLike
from .shard import ShardBatches, all_gather, distributed, shard_batches
from .source import (
    DEFAULT_BATCH_SIZE,
    Source,
    fingerprint,
    load_batches,
    load_items,
    make_loader,
    resolve_source,
)
from .transform import (
    ImageFunction,
    Transform,
    as_transform,
    display_rgb,
    resolve_transform,
    weights_name,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "IMAGE_SUFFIXES",
    "Batch",
    "Collate",
    "DataError",
    "ImageFiles",
    "ImageFunction",
    "Parts",
    "Progress",
    "ProgressLike",
    "ShardBatches",
    "Source",
    "Transform",
    "all_gather",
    "as_transform",
    "different_sizes",
    "display_rgb",
    "distributed",
    "fingerprint",
    "label_of",
    "load_batches",
    "load_items",
    "make_loader",
    "not_an_image",
    "resolve_source",
    "resolve_transform",
    "shard_batches",
    "split_item",
    "weights_name",
]
