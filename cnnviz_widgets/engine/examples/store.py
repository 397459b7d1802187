"""The file of a dataset-examples result or checkpoint, and what it was computed from.

One ``.npz`` (numpy's zip of arrays, read with ``allow_pickle=False``): per layer its indices,
scores, positions and labels, plus a JSON header with what the result was computed from: the
model's class, a hash of its weights, the layers with their channel counts, grids and
receptive fields, the data (length, fingerprint, folder) and its transform, ``k`` and the
score. Files are written atomically (a temporary file in the same folder, then a rename), so a
file at the path is always whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import DataError
from .topk import LayerTopK

FORMAT = "cnnviz-top-examples"
VERSION = 1

ExamplesError = DataError
"""Bad input to a dataset-examples pass (the data layer's :class:`~..data.DataError`)."""


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
