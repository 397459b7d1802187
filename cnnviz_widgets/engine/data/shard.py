"""torch.distributed for dataset passes: this process's rank, its batches, and all-gather.

Two ways to split a dataset of ``n`` items between ``world`` processes, both without padded
duplicates (unlike ``DistributedSampler``, which repeats items to even the shards out):

* ``split="items"``: process ``r`` reads the items ``range(r, n, world)``, in batches of
  ``batch_size`` (what ``DistributedSampler(shuffle=False, drop_last=False)`` gives, less its
  padding). For passes whose per-image result does not depend on the batch it was in.
* ``split="batches"``: the dataset is cut into the batches a single process would read,
  ``range(0, n, batch_size)``, and process ``r`` reads the batches ``r, r + world, ...``. Every
  batch is then the single-process batch, item for item, so per-batch randomness (seeded by
  the batch's first index) and per-batch rounding are those of one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Sampler

SPLITS: tuple[str, ...] = ("items", "batches")


def distributed() -> tuple[int, int]:
    """``(rank, world size)`` of an initialised ``torch.distributed`` group, else ``(0, 1)``."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather(obj: Any) -> list[Any]:
    """Every process's ``obj`` (``torch.distributed.all_gather_object``), in rank order."""
    dist = torch.distributed
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, obj)
    return everyone


def shard_batches(n: int, rank: int, world: int, batch_size: int, split: str) -> list[range]:
    """The batches of dataset indices that process ``rank`` of ``world`` reads (see the module
    docstring for ``split``); the last one may be shorter."""
    if split == "items":
        shard = range(rank, n, world)
        return [shard[i : i + batch_size] for i in range(0, len(shard), batch_size)]
    if split == "batches":
        return [range(i, min(i + batch_size, n)) for i in range(0, n, batch_size)][rank::world]
    raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")


class ShardBatches(Sampler[list[int]]):
    """A ``DataLoader`` ``batch_sampler``: this process's batches (:func:`shard_batches`), from
    shard position ``start`` on (the first ``start`` items of the shard are skipped: a resumed
    pass).

    Attributes:
        size: the number of items of this process's shard (skipped ones included).
    """

    def __init__(
        self,
        n: int,
        rank: int,
        world: int,
        batch_size: int,
        start: int = 0,
        split: str = "items",
    ) -> None:
        self.batches = shard_batches(n, rank, world, batch_size, split)
        self.size = sum(len(b) for b in self.batches)
        self.start = start

    def _left(self) -> Iterator[range]:
        skip = self.start
        for batch in self.batches:
            if skip >= len(batch):
                skip -= len(batch)
                continue
            yield batch[skip:]
            skip = 0

    def __len__(self) -> int:
        return sum(1 for _ in self._left())

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._left():
            yield list(batch)
