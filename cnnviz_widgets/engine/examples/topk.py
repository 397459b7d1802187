"""Running top-k per channel: the bounded state of a dataset pass and its exact merge.

For every recorded layer the state holds, per channel, the ``k`` best dataset examples seen so
far: their score, dataset index, label and the ``(row, column)`` of the maximum in the layer's
grid. Examples are ranked by score (descending), ties by dataset index (ascending), so the
state after any sequence of batches, or after merging the states of several processes, is the
top-k of the union of what was seen: it does not depend on batching or on order. Memory is
``layers x channels x k``, whatever the size of the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

EMPTY = torch.iinfo(torch.int64).max
"""Dataset index of an empty slot (ranks after every real index at equal score)."""

SCORES = ("max", "mean")


def as_channel_maps(output: torch.Tensor) -> torch.Tensor:
    """A layer's output as ``(N, C, H, W)``: ``(N, C)`` -> ``(N, C, 1, 1)``, ``(N, C, L)`` ->
    ``(N, C, 1, L)``; other ranks are a :class:`ValueError`."""
    if output.ndim == 4:
        return output
    if output.ndim == 2:
        return output[:, :, None, None]
    if output.ndim == 3:
        return output[:, :, None, :]
    raise ValueError(
        f"A layer output of shape {tuple(output.shape)} has no channels to rank; pick a layer "
        "whose output is (N, C, H, W), (N, C, L) or (N, C)."
    )


def channel_scores(maps: torch.Tensor, score: str) -> torch.Tensor:
    """``(N, C)`` float32 score of every map in ``(N, C, H, W)`` ``maps``.

    ``"max"`` is the largest value over positions, ``"mean"`` their mean (accumulated in
    float32). NaN becomes ``-inf`` (ranked last). Each row is reduced on its own, so a map's
    score does not depend on which batch it was part of.
    """
    flat = maps.flatten(2)
    if score == "max":
        out = flat.amax(-1).to(torch.float32)
    elif score == "mean":
        out = flat.mean(-1, dtype=torch.float32)
    else:  # pragma: no cover - checked by the caller
        raise ValueError(f"score must be one of {SCORES}; got {score!r}")
    return torch.nan_to_num(out, nan=float("-inf"), posinf=float("inf"), neginf=float("-inf"))


@dataclass
class LayerTopK:
    """The running top-k of one layer.

    Attributes:
        scores: ``(C, k)`` float32, best first; ``-inf`` in empty slots.
        indices: ``(C, k)`` int64 dataset indices; :data:`EMPTY` in empty slots.
        positions: ``(C, k, 2)`` int64 ``(row, column)`` of the maximum in the layer's grid.
        labels: ``(C, k)`` int64 labels of the examples; ``-1`` where unknown.
        grid: ``(H, W)`` of the layer's output.
    """

    scores: torch.Tensor
    indices: torch.Tensor
    positions: torch.Tensor
    labels: torch.Tensor
    grid: tuple[int, int]

    @classmethod
    def empty(
        cls, channels: int, k: int, grid: tuple[int, int], device: torch.device | str = "cpu"
    ) -> LayerTopK:
        return cls(
            scores=torch.full((channels, k), float("-inf"), device=device),
            indices=torch.full((channels, k), EMPTY, dtype=torch.int64, device=device),
            positions=torch.zeros((channels, k, 2), dtype=torch.int64, device=device),
            labels=torch.full((channels, k), -1, dtype=torch.int64, device=device),
            grid=grid,
        )

    @property
    def channels(self) -> int:
        return int(self.scores.shape[0])

    @property
    def k(self) -> int:
        return int(self.scores.shape[1])

    def to(self, device: torch.device | str) -> LayerTopK:
        return LayerTopK(
            self.scores.to(device),
            self.indices.to(device),
            self.positions.to(device),
            self.labels.to(device),
            self.grid,
        )

    def candidates(self, scores: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """``(N, C)`` bool: which of a batch's ``(N, C)`` scores could enter the top-k.

        An entry that ranks below the current k-th one on its channel can never enter, so its
        position need not be computed.
        """
        kth_score = self.scores[:, -1]
        kth_index = self.indices[:, -1]
        return (scores > kth_score) | ((scores == kth_score) & (indices[:, None] < kth_index))

    def update(
        self,
        scores: torch.Tensor,
        indices: torch.Tensor,
        positions: torch.Tensor,
        labels: torch.Tensor,
    ) -> LayerTopK:
        """A new state: this one merged with a batch.

        Args:
            scores: ``(N, C)`` float32 batch scores.
            indices: ``(N,)`` int64 dataset indices of the batch (all different, none in
                the state).
            positions: ``(N, C, 2)`` int64; only entries that are :meth:`candidates` are read.
            labels: ``(N,)`` int64 (``-1`` where unknown).
        """
        n = scores.shape[0]
        return select(
            torch.cat([self.scores, scores.t()], 1),
            torch.cat([self.indices, indices[None, :].expand(self.channels, n)], 1),
            torch.cat([self.positions, positions.transpose(0, 1)], 1),
            torch.cat([self.labels, labels[None, :].expand(self.channels, n)], 1),
            self.k,
            self.grid,
        )


def select(
    scores: torch.Tensor,
    indices: torch.Tensor,
    positions: torch.Tensor,
    labels: torch.Tensor,
    k: int,
    grid: tuple[int, int],
) -> LayerTopK:
    """The best ``k`` of ``(C, M)`` candidates per channel: score descending, then index ascending.

    Two stable sorts (by index, then by score) give that order exactly, ties included.
    (``sort(...).indices``: on the CPU, ``argsort(stable=True, descending=True)`` of float32 is
    several times slower than ``sort`` with the same arguments.)
    """
    by_index = torch.sort(indices, dim=1, stable=True).indices
    by_score = torch.sort(scores.gather(1, by_index), dim=1, descending=True, stable=True).indices
    order = by_index.gather(1, by_score)[:, :k]
    return LayerTopK(
        scores=scores.gather(1, order),
        indices=indices.gather(1, order),
        positions=positions.gather(1, order[:, :, None].expand(-1, -1, 2)),
        labels=labels.gather(1, order),
        grid=grid,
    )


def merge(states: list[LayerTopK]) -> LayerTopK:
    """The top-k of the union of several states of one layer (e.g. one per process)."""
    first = states[0]
    return select(
        torch.cat([s.scores for s in states], 1),
        torch.cat([s.indices for s in states], 1),
        torch.cat([s.positions for s in states], 1),
        torch.cat([s.labels for s in states], 1),
        first.k,
        first.grid,
    )


def batch_entry(
    maps: torch.Tensor, score: str, state: LayerTopK | None, indices: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores ``(N, C)`` and positions ``(N, C, 2)`` of one batch of ``(N, C, H, W)`` maps.

    The position of the maximum (its first occurrence in row-major order, as torch documents
    for ``argmax``) is computed only for the entries that could enter ``state``'s top-k (all
    of them when ``state`` is None); the others hold zeros and are never selected.
    """
    scores = channel_scores(maps, score)
    flat = maps.flatten(2)
    width = maps.shape[-1]
    mask = None if state is None else state.candidates(scores, indices.to(scores.device))
    if mask is None or int(mask.sum()) * 4 > mask.numel():  # many: one pass over everything
        where = flat.argmax(-1)
        return scores, torch.stack([where // width, where % width], -1)
    positions = torch.zeros((*scores.shape, 2), dtype=torch.int64, device=scores.device)
    if bool(mask.any()):
        where = flat[mask].argmax(-1)  # only the candidates' rows are copied
        positions[mask] = torch.stack([where // width, where % width], -1)
    return scores, positions
