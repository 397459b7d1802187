"""The result of a dataset pass, read as tensors, and its receptive-field crops.

:class:`TopExamples` reads the per-layer running top-k (:mod:`.topk`) of
:func:`~cnnviz_widgets.engine.examples.top_examples`, crops each example to the unit's receptive
field (:meth:`TopExamples.patches`), and saves to / loads from one file (:mod:`.store`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..features import feature_maps
from ..layers import LayerNotFoundError, LayerRef, close_matches, resolve_layer
from ..receptive import ReceptiveField
from .patches import ExamplePatches, crop_box, read_items, stack_crops
from .store import (
    ExamplesError,
    check_against_model,
    read_npz,
    state_arrays,
    states_from_arrays,
    write_npz,
)
from .topk import EMPTY, LayerTopK, as_channel_maps


class TopExamples:
    """Per layer and channel, the ``k`` dataset examples that excite it most.

    Made by :func:`~cnnviz_widgets.engine.examples.top_examples` or :meth:`load`. Ranking is
    by score (descending), ties by dataset index (ascending).

    Attributes:
        layers: the recorded layer names, in the order they were asked for.
        k: examples per channel.
        score: ``"max"`` (largest activation over positions) or ``"mean"``.
        meta: the JSON header (model, data, transform, layers with channels, grids and fields).
    """

    def __init__(
        self,
        states: dict[str, LayerTopK],
        meta: dict[str, Any],
        *,
        model: nn.Module | None = None,
        data: Any = None,
    ) -> None:
        self._states = states
        self.meta = meta
        self.layers: tuple[str, ...] = tuple(states)
        self.k = int(meta["k"])
        self.score = str(meta["score"])
        self.model = model
        self.data = data

    # -- reading ---------------------------------------------------------------------------
    def _layer(self, layer: LayerRef) -> str:
        if isinstance(layer, nn.Module):
            if self.model is None:
                raise TypeError(
                    "A layer given as a module needs the model: load with "
                    "TopExamples.load(path, model=model), or name the layer."
                )
            layer = resolve_layer(self.model, layer)[0]
        if layer not in self._states:
            raise LayerNotFoundError(
                f"{layer!r} was not recorded; the recorded layers are "
                + ", ".join(repr(n) for n in self.layers)
                + ".",
                name=layer,
                suggestions=close_matches(layer, self.layers),
            )
        return layer

    def _info(self, name: str) -> dict[str, Any]:
        return next(entry for entry in self.meta["layers"] if entry["name"] == name)

    def indices(self, layer: LayerRef) -> torch.Tensor:
        """``(C, k)`` int64 dataset indices, best first."""
        return self._states[self._layer(layer)].indices.clone()

    def scores(self, layer: LayerRef) -> torch.Tensor:
        """``(C, k)`` float32 scores, best first."""
        return self._states[self._layer(layer)].scores.clone()

    def positions(self, layer: LayerRef) -> torch.Tensor:
        """``(C, k, 2)`` int64 ``(row, column)`` of each example's maximum in the layer's grid."""
        return self._states[self._layer(layer)].positions.clone()

    def labels(self, layer: LayerRef) -> torch.Tensor | None:
        """``(C, k)`` int64 labels of the examples, or ``None`` when the data has no labels."""
        labels = self._states[self._layer(layer)].labels
        return None if bool((labels < 0).all()) else labels.clone()

    def channels(self, layer: LayerRef) -> int:
        """Number of channels of ``layer``."""
        return self._states[self._layer(layer)].channels

    def grid(self, layer: LayerRef) -> tuple[int, int]:
        """``(H, W)`` of the layer's output for the dataset's images."""
        return self._states[self._layer(layer)].grid

    def receptive_field(self, layer: LayerRef) -> ReceptiveField | None:
        """The layer's receptive field, or ``None`` where it is not known."""
        field = self._info(self._layer(layer)).get("field")
        if field is None:
            return None
        return ReceptiveField(
            size=tuple(field["size"]), jump=tuple(field["jump"]), start=tuple(field["start"])
        )

    @property
    def classes(self) -> list[str] | None:
        """Class names of the data's labels, where known."""
        return self.meta["data"].get("classes")

    def __repr__(self) -> str:
        data = self.meta["data"]
        return (
            f"TopExamples({self.meta['model']['class']}, {len(self.layers)} layer(s), "
            f"k={self.k}, score={self.score!r}, {data['length']} images from "
            f"{data['description']})"
        )

    # -- crops -----------------------------------------------------------------------------
    def patches(
        self, layer: LayerRef, channel: int, data: Any = None, *, model: nn.Module | None = None
    ) -> ExamplePatches:
        """Crops of ``channel``'s top examples around the unit at each example's maximum.

        Args:
            layer: a recorded layer (name, or module with a model at hand).
            channel: the channel number.
            data: the data the result was computed from; default: the data of the run that
                made this object, or the folder recorded in the file.
            model: for the activation maps; default: the model the result was computed or
                loaded with. Without one, ``maps`` is ``None``.
        """
        name = self._layer(layer)
        state = self._states[name]
        if not 0 <= channel < state.channels:
            raise IndexError(f"{name!r} has {state.channels} channels; got channel {channel}.")
        model = model if model is not None else self.model
        keep = state.indices[channel] != EMPTY
        indices = state.indices[channel][keep]
        x, rgb = self._items(indices.tolist(), data)
        height, width = rgb.shape[1:3]
        field = self.receptive_field(name)
        boxes = torch.tensor(
            [
                crop_box(field, state.grid, (int(r), int(c)), (height, width))
                for r, c in state.positions[channel][keep].tolist()
            ],
            dtype=torch.int64,
        ).reshape(-1, 4)
        maps = None
        if model is not None and len(indices):
            fmap = feature_maps(model, x, [name])[name]
            fmap = as_channel_maps(fmap)[:, channel : channel + 1]
            maps = F.interpolate(fmap, size=(height, width), mode="bilinear", align_corners=False)
            maps = maps[:, 0]
        crops, crop_maps = [], []
        for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
            crops.append(rgb[i, y0:y1, x0:x1])
            if maps is not None:
                crop_maps.append(maps[i, y0:y1, x0:x1])
        h = int((boxes[:, 3] - boxes[:, 1]).max()) if len(boxes) else 0
        w = int((boxes[:, 2] - boxes[:, 0]).max()) if len(boxes) else 0
        return ExamplePatches(
            images=stack_crops(crops, (h, w, 3), torch.uint8),
            maps=None if maps is None else stack_crops(crop_maps, (h, w), torch.float32),
            boxes=boxes,
            indices=indices,
            scores=state.scores[channel][keep].clone(),
            labels=state.labels[channel][keep].clone(),
            positions=state.positions[channel][keep].clone(),
            field=field,
        )

    def best_patches(self, layer: LayerRef, data: Any = None, *, chunk: int = 64) -> ExamplePatches:
        """Every channel's best example, cropped as :meth:`patches` crops it: a layer overview.

        The result's entries are per channel (``images`` ``(C, h, w, 3)``, ``indices``
        ``(C,)``, ...); ``maps`` is ``None``. Images are read ``chunk`` at a time, so memory
        stays bounded on layers of thousands of channels.
        """
        name = self._layer(layer)
        state = self._states[name]
        best = state.indices[:, 0]
        if bool((best == EMPTY).any()):
            raise ExamplesError(f"{name!r} has channels without any example.")
        field = self.receptive_field(name)
        wanted = sorted(set(best.tolist()))
        crops: list[torch.Tensor | None] = [None] * state.channels
        boxes = torch.zeros(state.channels, 4, dtype=torch.int64)
        for start in range(0, len(wanted), chunk):
            part = wanted[start: start + chunk]
            _, rgb = self._items(part, data)
            row = {index: i for i, index in enumerate(part)}
            size = (int(rgb.shape[1]), int(rgb.shape[2]))
            for c in (best.unsqueeze(1) == torch.tensor(part)).any(1).nonzero()[:, 0].tolist():
                r, col = state.positions[c, 0].tolist()
                x0, y0, x1, y1 = crop_box(field, state.grid, (int(r), int(col)), size)
                boxes[c] = torch.tensor([x0, y0, x1, y1])
                crops[c] = rgb[row[int(best[c])], y0:y1, x0:x1]
        h = int((boxes[:, 3] - boxes[:, 1]).max())
        w = int((boxes[:, 2] - boxes[:, 0]).max())
        return ExamplePatches(
            images=stack_crops([c for c in crops if c is not None], (h, w, 3), torch.uint8),
            maps=None,
            boxes=boxes,
            indices=best.clone(),
            scores=state.scores[:, 0].clone(),
            labels=state.labels[:, 0].clone(),
            positions=state.positions[:, 0].clone(),
            field=field,
        )

    def _items(self, indices: list[int], data: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Model input ``(k, C, H, W)`` and display RGB ``(k, H, W, 3)`` of dataset items."""
        if data is None:
            data = self.data
        if data is None and self.meta["data"].get("root"):
            data = self.meta["data"]["root"]
        return read_items(self.meta, data, indices)

    # -- file ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write one ``.npz`` file (atomically); :meth:`load` reads it back."""
        return write_npz(path, {**self.meta, "kind": "result"}, state_arrays(self._states))

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        model: nn.Module | None = None,
        *,
        data: Any = None,
        check_weights: bool = True,
    ) -> TopExamples:
        """Read a file written by :meth:`save` (or the ``top-examples`` command).

        Args:
            path: the file.
            model: the model to use it with; checked against the file (its class, the layers
                and their channel counts, and, with ``check_weights``, its weights).
            data: the data, for :meth:`patches` (a folder recorded in the file is found
                without it).

        Raises:
            ExamplesMismatchError: ``model`` is not the model the file was computed with.
        """
        meta, arrays = read_npz(path)
        if meta.get("kind") != "result":
            raise ExamplesError(
                f"{os.fspath(path)!r} is a checkpoint of an unfinished run, not a result. Run "
                "top_examples again with the same arguments and checkpoint= to finish it."
            )
        if model is not None:
            check_against_model(meta, model, os.fspath(path), check_weights=check_weights)
        return cls(states_from_arrays(meta["layers"], arrays), meta, model=model, data=data)
