"""``top_examples``: one pass over a dataset, a running top-k per channel, checkpoints, and
torch.distributed.

Per batch, ONE forward pass records every requested layer (:class:`~..capture.Capture`, cut
short after the last one); each layer's output is reduced to ``(N, C)`` scores inside its hook
(no copy of it is made) and merged into the running top-k (:mod:`.topk`), so no activation
outlives its layer's hook.

Under torchrun (``torch.distributed`` initialised) each process reads its shard
``range(rank, N, world)`` and keeps its own top-k; at the end they are exchanged with
``all_gather_object`` and merged, so every process returns the single-process result. Every
batch has the same size everywhere (the last one padded), which is what makes an image's
activations, and hence the scores, the same bit for bit: torch may round a convolution
differently for batches of different sizes. With several CPU threads per process, torch may
also split a batch between threads differently; torchrun's default of one thread per process
(``OMP_NUM_THREADS=1``) and a single-process run with ``torch.set_num_threads(1)`` agree.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..borrow import borrowed
from ..capture import Capture
from ..devices import model_device
from ..inputs import prepare_input
from ..layers import LayerRef, conv_layers, resolve_layers
from ..models import check_model
from ..receptive import receptive_fields
from .data import (
    ExamplesError,
    Source,
    different_sizes,
    fingerprint,
    make_loader,
    resolve_source,
    resolve_transform,
)
from .result import (
    FORMAT,
    VERSION,
    ExamplesMismatchError,
    TopExamples,
    model_hash,
    read_npz,
    state_arrays,
    states_from_arrays,
    write_npz,
)
from .topk import SCORES, LayerTopK, as_channel_maps, batch_entry, merge

Progress = Callable[[int, int], None]


class CheckpointMismatchError(ExamplesMismatchError):
    """A checkpoint written by a run with other arguments (model, data, layers, k, ...)."""


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
    progress: bool | Progress = True,
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
    rank, world = _distributed()
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
        _same_on_every_rank(identity)
    path = None if checkpoint is None else _rank_path(Path(checkpoint), rank, world)
    states: dict[str, LayerTopK] = {}
    done = 0
    input_size: tuple[int, int] | None = None
    if path is not None and path.exists():
        states, done, input_size = _resume(path, identity)
    shard = len(range(rank, n, world))
    states = {name: state.to(run_device) for name, state in states.items()}
    if done < shard:
        states, done, input_size = _pass(
            runner, source, selected, states, done, input_size, identity, path,
            checkpoint_every, progress, amp_dtype, rank, world, shard,
        )
    states = {name: state.to("cpu") for name, state in states.items()}
    if world > 1:
        states, input_size = _gather(states, input_size, selected)
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


def _distributed() -> tuple[int, int]:
    """``(rank, world size)``; ``(0, 1)`` unless torch.distributed is initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _rank_path(path: Path, rank: int, world: int) -> Path:
    if world == 1:
        return path
    return path.with_name(f"{path.stem}.rank{rank}-of-{world}{path.suffix}")


def _same_on_every_rank(identity: dict[str, Any]) -> None:
    """Raise on every rank when the processes were given different models, data or arguments."""
    import torch.distributed as dist

    mine = {key: value for key, value in identity.items() if key != "rank"}
    everyone: list[Any] = [None] * identity["world"]
    dist.all_gather_object(everyone, mine)
    differ = sorted({key for other in everyone for key in mine if other[key] != mine[key]})
    if differ:
        raise ExamplesError(
            "The processes of this distributed run differ in " + ", ".join(differ) + ". Every "
            "process must build the same model (seed it) and read the same data with the same "
            "arguments."
        )


def _resume(
    path: Path, identity: dict[str, Any]
) -> tuple[dict[str, LayerTopK], int, tuple[int, int] | None]:
    meta, arrays = read_npz(path)
    if meta.get("kind") != "checkpoint":
        raise CheckpointMismatchError(
            f"{path} is not a checkpoint (it is a finished result). Pass another checkpoint path."
        )
    theirs = meta["identity"]
    differ = [
        f"{key}: {_show(theirs.get(key))} there, {_show(identity[key])} here"
        for key in identity
        if theirs.get(key) != identity[key]
    ]
    if differ:
        raise CheckpointMismatchError(
            f"The checkpoint {path} was written by a run with other arguments ("
            + "; ".join(differ)
            + "). Run with the same arguments to resume it, or delete the file (or pass another "
            "checkpoint path) to start over."
        )
    size = meta.get("input_size")
    return (
        states_from_arrays(meta["layers"], arrays),
        int(meta["done"]),
        None if size is None else (int(size[0]), int(size[1])),
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _save_checkpoint(
    path: Path,
    identity: dict[str, Any],
    states: dict[str, LayerTopK],
    done: int,
    input_size: tuple[int, int] | None,
) -> None:
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "kind": "checkpoint",
        "identity": identity,
        "done": done,
        "input_size": None if input_size is None else list(input_size),
        "layers": [
            {"name": name, "channels": s.channels, "grid": list(s.grid)}
            for name, s in states.items()
        ],
    }
    write_npz(path, meta, state_arrays(states))


def _progress_bar(progress: bool | Progress, total: int, done: int, rank: int) -> Any:
    """A tqdm bar (rank 0, tqdm installed, ``progress=True``), else ``None``."""
    if progress is not True or rank != 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=done, unit="img", desc="top examples", dynamic_ncols=True)


def _pass(
    model: nn.Module,
    source: Source,
    selected: list[str],
    states: dict[str, LayerTopK],
    done: int,
    input_size: tuple[int, int] | None,
    identity: dict[str, Any],
    path: Path | None,
    checkpoint_every: int,
    progress: bool | Progress,
    amp_dtype: torch.dtype | None,
    rank: int,
    world: int,
    shard: int,
) -> tuple[dict[str, LayerTopK], int, tuple[int, int] | None]:
    """Read this process's shard from position ``done`` on; return the final state."""
    device = model_device(model)
    batch = identity["batch_size"]
    loader = make_loader(source, rank, world, batch, done, pin_memory=device.type == "cuda")
    modules = resolve_layers(model, selected)
    bar = _progress_bar(progress, shard, done, rank)
    batches = 0
    amp = (
        torch.autocast(device.type, dtype=amp_dtype)
        if amp_dtype is not None
        else contextlib.nullcontext()
    )
    first_index: int | None = None  # an image of size input_size, for the message
    try:
        with borrowed(model), torch.no_grad():
            for indices, images, labels in loader:
                size = (int(images.shape[-2]), int(images.shape[-1]))
                if input_size is None:
                    input_size, first_index = size, int(indices[0])
                elif size != input_size:
                    raise ExamplesError(
                        different_sizes(first_index, input_size, int(indices[0]), size)
                    )
                x = _padded(prepare_input(model, images), batch)
                new = _step(
                    model, modules, x, indices.to(device), labels.to(device),
                    identity["k"], identity["score"], states, amp,
                )
                states, done = new, done + len(indices)  # one assignment: a consistent state
                batches += 1
                if path is not None and batches % checkpoint_every == 0:
                    _save_checkpoint(path, identity, states, done, input_size)
                if bar is not None:
                    bar.update(len(indices))
                elif callable(progress):
                    progress(done, shard)
    except KeyboardInterrupt:
        if path is not None and states:
            _save_checkpoint(path, identity, states, done, input_size)
            print(
                f"Stopped after {done} of {shard} images; the checkpoint {path} is saved: run "
                "again with the same arguments to resume.",
                file=sys.stderr,
            )
        raise
    finally:
        if bar is not None:
            bar.close()
    if path is not None:
        _save_checkpoint(path, identity, states, done, input_size)
    return states, done, input_size


def _padded(x: torch.Tensor, batch: int) -> torch.Tensor:
    """``x`` with its last image repeated up to ``batch`` images (padding is never scored)."""
    missing = batch - x.shape[0]
    if missing <= 0:
        return x
    return torch.cat([x, x[-1:].expand(missing, *x.shape[1:])])


def _step(
    model: nn.Module,
    modules: dict[str, nn.Module],
    x: torch.Tensor,
    indices: torch.Tensor,
    labels: torch.Tensor,
    k: int,
    score: str,
    states: dict[str, LayerTopK],
    amp: Any,
) -> dict[str, LayerTopK]:
    """One forward pass of the batch ``x`` (``(B, C, H, W)``, of which the first
    ``len(indices)`` are real); returns the new states (``states`` is not changed)."""
    n = len(indices)
    new: dict[str, LayerTopK] = {}

    def reduce(name: str, output: torch.Tensor) -> torch.Tensor:
        maps = as_channel_maps(output[:n])  # runs in the hook: no copy of the output is made
        state = states.get(name)
        grid = (int(maps.shape[-2]), int(maps.shape[-1]))
        if state is None:
            state = LayerTopK.empty(int(maps.shape[1]), k, grid, maps.device)
        elif state.channels != maps.shape[1] or state.grid != grid:
            raise ExamplesError(
                f"Layer {name!r} gave {maps.shape[1]} channels on a {grid} grid, after "
                f"{state.channels} on {state.grid} before; its output must keep one shape over "
                "the dataset."
            )
        scores, positions = batch_entry(maps, score, state, indices)
        new[name] = state.update(scores, indices, positions, labels)
        return scores

    cap = Capture(model, modules, stop_early=True, reduce=reduce)
    with cap, amp:
        model(x)
    cap.require_all()
    return {name: new[name] for name in modules}


def _gather(
    states: dict[str, LayerTopK], input_size: tuple[int, int] | None, selected: list[str]
) -> tuple[dict[str, LayerTopK], tuple[int, int] | None]:
    """Merge every process's top-k (``all_gather_object``); every process gets the result."""
    import torch.distributed as dist

    payload = (states or None, input_size)
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, payload)
    parts = [part for part, _ in everyone if part]
    sizes = [size for _, size in everyone if size is not None]
    merged = {name: merge([part[name] for part in parts]) for name in selected}
    return merged, ((int(sizes[0][0]), int(sizes[0][1])) if sizes else None)
