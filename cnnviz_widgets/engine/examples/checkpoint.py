"""Checkpoints of a dataset-examples pass: the running state saved as it goes, and resumed only
by a run with the same arguments; under torch.distributed one file per process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data import all_gather
from .store import (
    FORMAT,
    VERSION,
    ExamplesError,
    ExamplesMismatchError,
    read_npz,
    state_arrays,
    states_from_arrays,
    write_npz,
)
from .topk import LayerTopK


class CheckpointMismatchError(ExamplesMismatchError):
    """A checkpoint written by a run with other arguments (model, data, layers, k, ...)."""


def rank_path(path: Path, rank: int, world: int) -> Path:
    """``path`` alone; ``<stem>.rank<r>-of-<world><suffix>`` for process ``r`` of several."""
    if world == 1:
        return path
    return path.with_name(f"{path.stem}.rank{rank}-of-{world}{path.suffix}")


def same_on_every_rank(identity: dict[str, Any]) -> None:
    """Raise on every rank when the processes were given different models, data or arguments."""
    mine = {key: value for key, value in identity.items() if key != "rank"}
    everyone = all_gather(mine)
    differ = sorted({key for other in everyone for key in mine if other[key] != mine[key]})
    if differ:
        raise ExamplesError(
            "The processes of this distributed run differ in " + ", ".join(differ) + ". Every "
            "process must build the same model (seed it) and read the same data with the same "
            "arguments."
        )


def resume(
    path: Path, identity: dict[str, Any]
) -> tuple[dict[str, LayerTopK], int, tuple[int, int] | None]:
    """``(states, images done, input size)`` of the checkpoint at ``path``.

    Raises:
        CheckpointMismatchError: the file is a finished result, or ``identity`` (the run's
            model, data and arguments) differs from the one it was written with.
    """
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


def save_checkpoint(
    path: Path,
    identity: dict[str, Any],
    states: dict[str, LayerTopK],
    done: int,
    input_size: tuple[int, int] | None,
) -> None:
    """Write the running ``states`` after ``done`` images of this process's shard."""
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
