"""Computed replies and the bounded cache that keeps them on the Python side."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

REPLY_OVERHEAD_BYTES = 256
"""What a reply costs beyond its buffers (its JSON meta), for the cache's byte budget."""


@dataclass
class Reply:
    """A computed reply: JSON meta and binary buffers."""

    meta: dict[str, Any]
    buffers: list[bytes]

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.buffers) + REPLY_OVERHEAD_BYTES


class ReplyCache:
    """Least-recently-used replies, bounded by a byte budget (the newest entry always stays)."""

    def __init__(self, budget: int):
        self.budget = int(budget)
        self._items: OrderedDict[str, Reply] = OrderedDict()
        self.nbytes = 0

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> Reply | None:
        reply = self._items.get(key)
        if reply is not None:
            self._items.move_to_end(key)
        return reply

    def put(self, key: str, reply: Reply) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._items[key] = reply
        self.nbytes += reply.nbytes
        while self.nbytes > self.budget and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self.nbytes -= dropped.nbytes

    def drop(self, prefixes: Sequence[str]) -> None:
        """Forget every reply whose key starts with one of ``prefixes`` (``[""]``: all)."""
        for key in [k for k in self._items if k.startswith(tuple(prefixes))]:
            self.nbytes -= self._items.pop(key).nbytes
