"""``top_examples``: the ``k`` dataset examples that excite each channel most, in one pass.

The arguments are checked, the data resolved (:mod:`~cnnviz_widgets.engine.data`), a
checkpoint resumed (:mod:`.checkpoint`), this process's shard read (:mod:`.stream`), and under
torchrun (``torch.distributed`` initialised) every process's top-k merged, so every process
returns the single-process result. Each process reads its shard ``range(rank, N, world)``.
With several CPU threads per process, torch may split a batch between threads differently;
torchrun's default of one thread per process (``OMP_NUM_THREADS=1``) and a single-process run
with ``torch.set_num_threads(1)`` agree.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import ProgressLike, distributed, fingerprint, resolve_source, resolve_transform
from ..devices import model_device
from ..layers import LayerRef, conv_layers, resolve_layers
from ..models import check_model
from ..receptive import receptive_fields
from .checkpoint import rank_path, resume, same_on_every_rank
from .result import TopExamples
from .store import FORMAT, VERSION, ExamplesError, model_hash
from .stream import PassState, gather_states, run_pass
from .topk import SCORES


def top_examples(
    model: nn.Module,
    data: Any,
    layers: LayerRef | Sequence[LayerRef] | None = None,
    k: int = 9,
    score: str = "max",
    *,
    batch_size: int | None = None,
    num_workers: int = 0,
    weights: Any = None,
    size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 50,
    progress: ProgressLike = True,
    autocast: bool | torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> TopExamples:
    """The ``k`` dataset examples that excite each channel of ``layers`` most, in one pass.

    Args:
        model: the network (left exactly as it was: mode, hooks, parameters, gradients).
        data: a folder of image files (one sub-folder per class, or flat), a map-style torch
            ``Dataset`` (items an image tensor ``(C, H, W)``, a PIL image, or
            ``(image, label, ...)``), a ``DataLoader`` over one (its batch size, workers and
            collate function are used, not its sampler), or an ``(N, C, H, W)`` tensor.
            Tensor items are model input as they are.
        layers: names or modules; default: every Conv2d, in forward order. Outputs
            ``(N, C, H, W)``, ``(N, C, L)`` and ``(N, C)`` are taken.
        k: examples per channel (at most the number of images).
        score: ``"max"``: a map's largest value; ``"mean"``: its mean. The position kept is
            that of the maximum either way.
        batch_size: images per forward pass (default: the DataLoader's, else 32).
        num_workers: DataLoader worker processes.
        weights: a torchvision weights entry (or its name): image files and PIL items are
            transformed by its transforms.
        size, mean, std: without ``weights``: resize and centre-crop files and PIL items to
            ``size`` (``None``: keep their size) and normalise with ``mean``/``std``
            (default ImageNet's; for the bundled demo model, its own size and normalisation).
            For tensor items, ``mean``/``std`` only say how to show them in :meth:`patches`.
        checkpoint: a file to save the running state to every ``checkpoint_every`` batches,
            at the end, and on KeyboardInterrupt. If it exists, the run resumes from it (it
            must come from the same arguments) and ends with the same result as an
            uninterrupted run. Under torch.distributed each process has its own file,
            ``<stem>.rank<r>-of-<world><suffix>``.
        checkpoint_every: batches between checkpoints.
        progress: ``True``: a tqdm bar when tqdm is installed (a notebook bar in Jupyter, a
            text bar in a terminal; only on rank 0); ``False``: none; a callable:
            ``progress(images_done, images_total)`` after each batch (this process's shard).
        autocast: run the forward under ``torch.autocast``: ``True`` for the device's default
            dtype, or a dtype (``torch.bfloat16``). Scores are computed in float32.
        device: where to run; default: the model's device. A model elsewhere is copied there
            for the run (the caller's model is not moved).

    Returns:
        :class:`TopExamples`: per layer ``indices`` ``(C, k)`` int64, ``scores`` ``(C, k)``
        float32, ``positions`` ``(C, k, 2)`` (row, column), ``labels`` where known. Ranked by
        score, ties by the lower dataset index. The same on every process of a distributed run.

    Raises:
        ExamplesError: data that is not images, images of different sizes without a
            transform, an empty folder, ``k`` larger than the dataset, bad arguments.
        CheckpointMismatchError: ``checkpoint`` was written by a run with other arguments.
        LayerNotFoundError, LayerNotExecutedError: a layer not in the model, or never run.
    """
    check_model(model)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ExamplesError(f"k must be a positive integer; got {k!r}.")
    if score not in SCORES:
        raise ExamplesError(f"score must be one of {', '.join(map(repr, SCORES))}; got {score!r}.")
    if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise ExamplesError(
            f"checkpoint_every must be a positive integer; got {checkpoint_every!r}."
        )
    selected = list(conv_layers(model) if layers is None else resolve_layers(model, layers))
    if not selected:
        raise ExamplesError("layers is empty: name at least one layer (default: every conv).")
    transform = resolve_transform(model, weights, size, mean, std)
    source = resolve_source(data, batch_size, num_workers, transform)
    n = len(source.dataset)
    if n == 0:
        raise ExamplesError(f"The data is empty ({source.describe()}): there is nothing to rank.")
    if k > n:
        raise ExamplesError(
            f"k={k} but the data has only {n} image(s) ({source.describe()}): pass k <= {n}, "
            "or more images."
        )
    runner = _runner(model, device)
    run_device = model_device(runner)
    amp_dtype = _autocast_dtype(autocast, run_device)
    rank, world = distributed()
    batch = min(source.batch_size, n)
    data_identity = {"kind": source.kind, "length": n, "fingerprint": fingerprint(source)}
    identity: dict[str, Any] = {
        "model": type(model).__name__,
        "weights_hash": model_hash(model),
        "layers": selected,
        "data": data_identity,
        "transform": transform.describe(),
        "k": k,
        "score": score,
        "batch_size": batch,
        "autocast": None if amp_dtype is None else str(amp_dtype),
        "rank": rank,
        "world": world,
    }
    if world > 1:
        same_on_every_rank(identity)
    path = None if checkpoint is None else rank_path(Path(checkpoint), rank, world)
    now = PassState({})
    if path is not None and path.exists():
        now = PassState(*resume(path, identity))
    now.states = {name: state.to(run_device) for name, state in now.states.items()}
    if now.done < len(range(rank, n, world)):
        now = run_pass(
            runner, source, selected, now, identity, path, checkpoint_every, progress, amp_dtype
        )
    states = {name: state.to("cpu") for name, state in now.states.items()}
    input_size = now.input_size
    if world > 1:
        states, input_size = gather_states(states, input_size, selected)
    fields = receptive_fields(model, selected, containers=True)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": {
            "class": type(model).__name__,
            "module": type(model).__module__,
            "weights_hash": identity["weights_hash"],
        },
        "layers": [
            {
                "name": name,
                "channels": states[name].channels,
                "grid": list(states[name].grid),
                "field": fields[name].to_json() if name in fields else None,
            }
            for name in selected
        ],
        "data": {
            **data_identity,
            "description": source.describe(),
            "root": source.root,
            "classes": source.classes,
        },
        "transform": identity["transform"],
        "input_size": None if input_size is None else list(input_size),
        "k": k,
        "score": score,
        "batch_size": batch,
        "processes": world,
    }
    return TopExamples(states, meta, model=model, data=source.dataset)


def _runner(model: nn.Module, device: torch.device | str | None) -> nn.Module:
    """The model to run: ``model`` itself, or a copy on ``device`` when it lives elsewhere."""
    if device is None:
        return model
    device = torch.device(device)
    current = model_device(model)
    if current.type == device.type and device.index in (None, current.index):
        return model
    return copy.deepcopy(model).to(device)


def _autocast_dtype(
    autocast: bool | torch.dtype | None, device: torch.device
) -> torch.dtype | None:
    if autocast is None or autocast is False:
        return None
    if autocast is True:
        return torch.bfloat16 if device.type == "cpu" else torch.float16
    if isinstance(autocast, torch.dtype):
        return autocast
    raise ExamplesError(f"autocast must be True, False, None or a torch dtype; got {autocast!r}.")
