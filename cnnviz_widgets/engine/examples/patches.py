"""Crops of dataset examples: each example cut to the unit's receptive field at its maximum.

:class:`ExamplePatches` is what :meth:`~.result.TopExamples.patches` and
:meth:`~.result.TopExamples.best_patches` return; :func:`crop_box` places a crop,
:func:`read_items` reads the examples' images again from the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ..data import Transform, load_items, resolve_source
from ..receptive import ReceptiveField
from .store import ExamplesError, ExamplesMismatchError


@dataclass(frozen=True)
class ExamplePatches:
    """One channel's top examples cropped to the unit's receptive field at its maximum.

    Attributes:
        images: ``(k, h, w, 3)`` uint8 crops, best example first. Every crop has the field's
            size (clipped to the image), moved inside the image where the field overhangs it.
        maps: ``(k, h, w)`` float32 activation of the channel over the same crop (the layer's
            map resized bilinearly to the input size), or ``None`` without a model.
        boxes: ``(k, 4)`` int64 ``(x0, y0, x1, y1)`` of each crop in input pixels (exclusive).
        indices, scores, labels: ``(k,)`` of the examples (labels ``-1`` where unknown).
        positions: ``(k, 2)`` ``(row, column)`` of the maximum in the layer's grid.
        field: the layer's receptive field, or ``None`` (then the crop is the proportional
            cell of the unit's position).
    """

    images: torch.Tensor
    maps: torch.Tensor | None
    boxes: torch.Tensor
    indices: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    positions: torch.Tensor
    field: ReceptiveField | None


def read_items(
    meta: dict[str, Any], data: Any, indices: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model input ``(k, C, H, W)`` and display RGB ``(k, H, W, 3)`` of the dataset items
    ``indices`` of ``data``, the data a result with header ``meta`` was computed from
    (a folder path, a ``Dataset`` or a ``DataLoader``; ``None`` is an error that says so),
    read by the data layer (:func:`~cnnviz_widgets.engine.data.load_items`)."""
    transform = Transform.from_description(meta["transform"])
    if data is None:
        raise ExamplesError(
            "patches() needs the data the examples were computed from: pass it as "
            "patches(layer, channel, data)."
        )
    source = resolve_source(data, None, 0, transform)
    if len(source.dataset) != meta["data"]["length"]:
        raise ExamplesMismatchError(
            f"The data has {len(source.dataset)} items, but the examples were computed on "
            f"{meta['data']['length']}. Pass the same data."
        )
    return load_items(source, indices)


def crop_box(
    field: ReceptiveField | None,
    grid: tuple[int, int],
    position: tuple[int, int],
    image: tuple[int, int],
) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of a unit's crop: its receptive field (or, unknown, its proportional
    cell), clipped to the image's size and moved inside it."""
    row, col = position
    height, width = image
    if field is not None:
        box = field.box(row, col)
        spans = (box[3] - box[1], box[2] - box[0])
        centres = ((box[1] + box[3]) / 2, (box[0] + box[2]) / 2)
    else:
        cell = (height / grid[0], width / grid[1])
        spans = cell
        centres = ((row + 0.5) * cell[0], (col + 0.5) * cell[1])
    out = []
    for span, centre, limit in zip(spans, centres, (height, width), strict=True):
        size = max(1, min(limit, math.ceil(span - 1e-9)))
        start = min(max(round(centre - size / 2), 0), limit - size)
        out.append((start, start + size))
    (y0, y1), (x0, x1) = out
    return x0, y0, x1, y1


def stack_crops(
    items: list[torch.Tensor], shape: tuple[int, ...], dtype: torch.dtype
) -> torch.Tensor:
    """Stack crops of possibly different sizes, zero-padded at the bottom and right."""
    out = torch.zeros((len(items), *shape), dtype=dtype)
    for i, item in enumerate(items):
        out[i, : item.shape[0], : item.shape[1]] = item
    return out
