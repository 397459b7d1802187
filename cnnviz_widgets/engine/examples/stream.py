"""The pass itself: this process's shard read once by torch's ``DataLoader``, one forward pass
per batch recording every layer, the running top-k updated, checkpoints, and the merge of every
process's top-k under torch.distributed.

Per batch, ONE forward pass records every requested layer (:class:`~..capture.Capture`, cut
short after the last one); each layer's output is reduced to ``(N, C)`` scores inside its hook
(no copy of it is made) and merged into the running top-k (:mod:`.topk`), so no activation
outlives its layer's hook. Every batch has the same size (the last one is padded by repeating
its last image; the padding is never scored), which is what makes an image's activations, and
hence the scores, the same bit for bit whatever the number of processes: torch may round a
convolution differently for batches of different sizes.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..borrow import borrowed
from ..capture import Capture
from ..data import Progress, ProgressLike, Source, all_gather, different_sizes, make_loader
from ..devices import model_device
from ..inputs import prepare_input
from ..layers import resolve_layers
from .checkpoint import save_checkpoint
from .store import ExamplesError
from .topk import LayerTopK, as_channel_maps, batch_entry, merge


@dataclass
class PassState:
    """Where a pass stands: the running top-k per layer, the images of this process's shard
    done, and the input size ``(H, W)`` of the images (``None`` before the first batch)."""

    states: dict[str, LayerTopK]
    done: int = 0
    input_size: tuple[int, int] | None = None


def run_pass(
    model: nn.Module,
    source: Source,
    selected: list[str],
    start: PassState,
    identity: dict[str, Any],
    path: Path | None,
    checkpoint_every: int,
    progress: ProgressLike,
    amp_dtype: torch.dtype | None,
) -> PassState:
    """Read this process's shard from position ``start.done`` on; return the final state.

    ``identity`` holds the run's arguments (``k``, ``score``, ``batch_size``, ``rank``,
    ``world``); the state is saved to ``path`` every ``checkpoint_every`` batches, at the end
    and on KeyboardInterrupt.
    """
    device = model_device(model)
    batch, rank, world = identity["batch_size"], identity["rank"], identity["world"]
    loader = make_loader(
        source, batch, rank, world, start.done, pin_memory=device.type == "cuda"
    )
    shard = len(range(rank, len(source.dataset), world))
    modules = resolve_layers(model, selected)
    bar = Progress(progress, shard, start.done, desc="top examples", bar=rank == 0)
    now = PassState(dict(start.states), start.done, start.input_size)
    batches = 0
    amp = (
        torch.autocast(device.type, dtype=amp_dtype)
        if amp_dtype is not None
        else contextlib.nullcontext()
    )
    first_index: int | None = None  # an image of size input_size, for the message
    try:
        with borrowed(model), torch.no_grad():
            for item in loader:
                size = (int(item.images.shape[-2]), int(item.images.shape[-1]))
                if now.input_size is None:
                    now.input_size, first_index = size, int(item.indices[0])
                elif size != now.input_size:
                    raise ExamplesError(
                        different_sizes(first_index, now.input_size, int(item.indices[0]), size)
                    )
                labels = item.labels
                if labels is None:
                    labels = torch.full_like(item.indices, -1)
                x = _padded(prepare_input(model, item.images), batch)
                new = _step(
                    model, modules, x, item.indices.to(device), labels.to(device),
                    identity["k"], identity["score"], now.states, amp,
                )
                # one assignment: a consistent state
                now = PassState(new, now.done + len(item.indices), now.input_size)
                batches += 1
                if path is not None and batches % checkpoint_every == 0:
                    save_checkpoint(path, identity, now.states, now.done, now.input_size)
                bar.update(now.done)
    except KeyboardInterrupt:
        if path is not None and now.states:
            save_checkpoint(path, identity, now.states, now.done, now.input_size)
            print(
                f"Stopped after {now.done} of {shard} images; the checkpoint {path} is saved: "
                "run again with the same arguments to resume.",
                file=sys.stderr,
            )
        raise
    finally:
        bar.close()
    if path is not None:
        save_checkpoint(path, identity, now.states, now.done, now.input_size)
    return now


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


def gather_states(
    states: dict[str, LayerTopK], input_size: tuple[int, int] | None, selected: list[str]
) -> tuple[dict[str, LayerTopK], tuple[int, int] | None]:
    """Merge every process's top-k (``all_gather_object``); every process gets the result."""
    everyone = all_gather((states or None, input_size))
    parts = [part for part, _ in everyone if part]
    sizes = [size for _, size in everyone if size is not None]
    merged = {name: merge([part[name] for part in parts]) for name in selected}
    return merged, ((int(sizes[0][0]), int(sizes[0][1])) if sizes else None)
