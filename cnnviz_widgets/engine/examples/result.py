"""The result of a dataset pass, read as tensors, its receptive-field crops, and its file.

The file is one ``.npz`` (numpy's zip of arrays, read with ``allow_pickle=False``): per layer
its indices, scores, positions and labels, plus a JSON header with what the result was
computed from: the model's class, a hash of its weights, the layers with their channel counts,
grids and receptive fields, the data (length, fingerprint, folder) and its transform, ``k``
and the score. Files are written atomically (a temporary file in the same folder, then a
rename), so a file at the path is always whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..features import feature_maps
from ..layers import LayerNotFoundError, LayerRef, close_matches, resolve_layer
from ..receptive import ReceptiveField
from .data import Collate, ExamplesError, ImageFiles, Transform, display_rgb, split_item
from .topk import EMPTY, LayerTopK, as_channel_maps

FORMAT = "cnnviz-top-examples"
VERSION = 1


class ExamplesMismatchError(ExamplesError):
    """A saved result (or checkpoint) used with another model, data or arguments."""


def model_hash(model: nn.Module) -> str:
    """A short hash of every parameter and buffer: names, shapes, dtypes and bytes."""
    digest = hashlib.blake2b(digest_size=12)
    for name, value in model.state_dict().items():
        if not isinstance(value, torch.Tensor):
            continue
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
        raw = value.detach().to("cpu").contiguous()
        if raw.numel():
            digest.update(raw.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_npz(
    path: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, torch.Tensor]
) -> Path:
    """Write ``arrays`` and the JSON ``meta`` to ``path`` atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = {k: v.detach().to("cpu").numpy() for k, v in arrays.items()}
    payload["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **payload)  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_npz(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(meta, arrays)`` of a file written by :func:`write_npz`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No file at {os.fspath(path)!r}.")
    try:
        with open(path, "rb") as fh:
            data = np.load(io.BytesIO(fh.read()), allow_pickle=False)
            meta = json.loads(bytes(data["__meta__"]).decode())
            arrays = {k: torch.from_numpy(np.array(data[k])) for k in data.files if k != "__meta__"}
    except (ValueError, KeyError, OSError, json.JSONDecodeError) as err:
        raise ExamplesError(
            f"{os.fspath(path)!r} is not a dataset-examples file ({type(err).__name__}: {err}). "
            "Pass a file written by TopExamples.save or the top-examples command."
        ) from err
    if meta.get("format") != FORMAT:
        raise ExamplesError(
            f"{os.fspath(path)!r} is not a dataset-examples file (format {meta.get('format')!r})."
        )
    return meta, arrays


def state_arrays(states: dict[str, LayerTopK]) -> dict[str, torch.Tensor]:
    """Per-layer tensors keyed ``"<field>_<layer number>"`` in the layers' order."""
    arrays: dict[str, torch.Tensor] = {}
    for i, state in enumerate(states.values()):
        arrays[f"scores_{i}"] = state.scores
        arrays[f"indices_{i}"] = state.indices
        arrays[f"positions_{i}"] = state.positions
        arrays[f"labels_{i}"] = state.labels
    return arrays


def states_from_arrays(
    layers: list[dict[str, Any]], arrays: dict[str, torch.Tensor]
) -> dict[str, LayerTopK]:
    """Inverse of :func:`state_arrays` (``layers``: the header's layer list)."""
    return {
        layer["name"]: LayerTopK(
            scores=arrays[f"scores_{i}"],
            indices=arrays[f"indices_{i}"],
            positions=arrays[f"positions_{i}"],
            labels=arrays[f"labels_{i}"],
            grid=(int(layer["grid"][0]), int(layer["grid"][1])),
        )
        for i, layer in enumerate(layers)
    }


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
                _crop_box(field, state.grid, (int(r), int(c)), (height, width))
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
            images=_stack(crops, (h, w, 3), torch.uint8),
            maps=None if maps is None else _stack(crop_maps, (h, w), torch.float32),
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
                x0, y0, x1, y1 = _crop_box(field, state.grid, (int(r), int(col)), size)
                boxes[c] = torch.tensor([x0, y0, x1, y1])
                crops[c] = rgb[row[int(best[c])], y0:y1, x0:x1]
        h = int((boxes[:, 3] - boxes[:, 1]).max())
        w = int((boxes[:, 2] - boxes[:, 0]).max())
        return ExamplePatches(
            images=_stack([c for c in crops if c is not None], (h, w, 3), torch.uint8),
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
        transform = Transform.from_description(self.meta["transform"])
        if data is None:
            data = self.data
        if data is None and self.meta["data"].get("root"):
            data = self.meta["data"]["root"]
        if data is None:
            raise ExamplesError(
                "patches() needs the data the examples were computed from: pass it as "
                "patches(layer, channel, data)."
            )
        if isinstance(data, (str, os.PathLike)):
            data = ImageFiles(data, transform)
        elif isinstance(data, DataLoader):
            data = data.dataset
        if len(data) != self.meta["data"]["length"]:
            raise ExamplesMismatchError(
                f"The data has {len(data)} items, but the examples were computed on "
                f"{self.meta['data']['length']}. Pass the same data."
            )
        if isinstance(data, ImageFiles):
            loaded = [data.load(i) for i in indices]
            if not loaded:
                return torch.zeros(0, 3, 1, 1), torch.zeros(0, 1, 1, 3, dtype=torch.uint8)
            x = torch.cat([item.tensor for item in loaded])
            rgb = torch.stack([torch.from_numpy(item.rgb) for item in loaded])
            return x, rgb
        convert = Collate(transform)
        images = [convert.image_tensor(split_item(data[i], i)[0], i) for i in indices]
        if not images:
            return torch.zeros(0, 3, 1, 1), torch.zeros(0, 1, 1, 3, dtype=torch.uint8)
        x = torch.stack(images)
        return x, display_rgb(x, transform)

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


def check_against_model(
    meta: dict[str, Any], model: nn.Module, where: str, *, check_weights: bool = True
) -> None:
    """Raise :class:`ExamplesMismatchError` when ``model`` is not the one ``meta`` describes."""
    want = meta["model"]
    problems = []
    if type(model).__name__ != want["class"]:
        problems.append(f"it was computed with a {want['class']}, not a {type(model).__name__}")
    modules = dict(model.named_modules())
    for entry in meta["layers"]:
        module = modules.get(entry["name"])
        if module is None:
            problems.append(f"this model has no layer {entry['name']!r}")
            continue
        channels = _out_channels(module)
        if channels is not None and channels != entry["channels"]:
            problems.append(
                f"layer {entry['name']!r} has {channels} channels here, {entry['channels']} there"
            )
    if not problems and check_weights and model_hash(model) != want["weights_hash"]:
        problems.append(
            "the weights differ (same architecture, other values; pass check_weights=False to "
            "use it anyway)"
        )
    if problems:
        raise ExamplesMismatchError(
            f"{where} does not belong to this model: " + "; ".join(problems) + ". Load it with "
            "the model it was computed with, or compute the examples for this model."
        )


def _out_channels(module: nn.Module) -> int | None:
    for attr in ("out_channels", "out_features", "num_features"):
        value = getattr(module, attr, None)
        if isinstance(value, int):
            return value
    return None


def _crop_box(
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


def _stack(items: list[torch.Tensor], shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Stack crops of possibly different sizes, zero-padded at the bottom and right."""
    out = torch.zeros((len(items), *shape), dtype=dtype)
    for i, item in enumerate(items):
        out[i, : item.shape[0], : item.shape[1]] = item
    return out
