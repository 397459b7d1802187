"""``examples``: the dataset images that excite a channel most, cropped to the unit's field.

The explorer's dataset examples come from an :class:`ExamplesSource` kept on the
:class:`~cnnviz_widgets.widgets.subject.Subject`: a :class:`~cnnviz_widgets.engine.examples.
TopExamples` given by the user, read from a file, or (the demo explorer) computed on first use.

Two requests:

* ``{layer, channel}``: the channel's top-k crops with its activation over each crop.
* ``{layer, channel: -1}``: the layer overview, every channel's best crop (no maps).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ...engine.examples import ExamplePatches, ExamplesError, TopExamples
from ...engine.examples.store import check_against_model
from ..cache import Reply
from ..i18n import Msg
from ..serialize import stack_message
from ..subject import Subject
from .base import Job, MessageError, Params, RequestKind

OVERVIEW = -1
"""The channel of a layer-overview request."""


class ExamplesSource:
    """The explorer's dataset examples: ready, or made by ``make`` on first use.

    Args:
        examples: a :class:`TopExamples` (checked against ``model``), or ``None``.
        make: computes them on first use (``make(progress)``), when ``examples`` is ``None``.
        layers: the layers ``make`` will record (known before it runs).
        k: the examples per channel ``make`` will keep.
        description: what the data is, for the view's caption.
    """

    def __init__(
        self,
        examples: TopExamples | None = None,
        *,
        make: Callable[[Callable[[int, int], None]], TopExamples] | None = None,
        layers: list[str] | None = None,
        k: int = 9,
        description: str = "",
    ) -> None:
        if examples is None and make is None:
            raise ValueError("ExamplesSource needs examples or a way to make them.")
        self._examples = examples
        self._make = make
        self._lock = threading.Lock()
        self.layers = list(examples.layers) if examples is not None else list(layers or [])
        self.k = examples.k if examples is not None else k
        self.description = description or (
            examples.meta["data"]["description"] if examples is not None else "")

    @classmethod
    def given(cls, examples: TopExamples | str | os.PathLike, model: nn.Module
              ) -> ExamplesSource:
        """The source of ``LayerExplorer(examples=...)``: a result or a saved file, checked
        against ``model`` by the engine (:func:`~...engine.examples.store.check_against_model`:
        the model's class, the recorded layers and their channel counts; a file's weights too).

        Raises:
            TypeError: ``examples`` is neither.
            ExamplesMismatchError: the examples were computed with another model.
        """
        if isinstance(examples, (str, os.PathLike)):
            examples = TopExamples.load(examples, model=model)
        if not isinstance(examples, TopExamples):
            raise TypeError(
                f"examples= takes a TopExamples (from top_examples(model, data)) or the path of "
                f"a file saved with TopExamples.save; got {type(examples).__name__}.")
        # in memory: the weights may have changed since (training goes on), the layers not
        check_against_model(examples.meta, model, "The examples= argument", check_weights=False)
        return cls(examples)

    @property
    def ready(self) -> bool:
        return self._examples is not None

    def get(self, progress: Callable[[int, int], None]) -> TopExamples:
        """The examples, made now if they are not yet (one maker at a time)."""
        with self._lock:
            if self._examples is None:
                assert self._make is not None
                self._examples = self._make(progress)
            return self._examples

    def to_json(self) -> dict[str, Any]:
        """The ``examples_info`` trait: layers, k, the data's description, and whether they
        are computed when first asked for (``lazy``)."""
        return {"layers": self.layers, "k": self.k, "description": self.description,
                "lazy": self._make is not None and self._examples is None}


class Examples(RequestKind):
    """Reply meta: ``layer``, ``channel``, per example ``indices``, ``scores``, ``labels``
    (``-1``: none), ``label_names`` (or ``None``), ``positions`` ``[row, col]`` in the layer's
    grid, ``boxes`` ``[x0, y0, x1, y1]`` in input pixels, ``channels`` (overview: the channel of
    each crop), ``rgb`` ``{shape: [n, h, w, 3]}`` and, for one channel, ``maps`` (a map stack of
    the activation over each crop). Buffers: the RGB crops, then the map stack's three."""

    kind = "examples"
    per_image = False

    def key(self, p: Params) -> str:
        return f"examples|{p['layer']}|{p['channel']}"

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        source = subject.examples
        if source is None:
            raise MessageError("this explorer has no dataset examples: pass "
                               "examples=top_examples(model, data) to LayerExplorer")
        layer = msg.get("layer")
        if not isinstance(layer, str) or layer not in source.layers:
            shown = layer if isinstance(layer, str) else type(layer).__name__
            raise MessageError(f"no dataset examples for layer {shown[:80]!r}; the examples "
                               f"record {source.layers}")
        channel = msg.get("channel")
        n = subject.layer_channels(layer)
        if (not isinstance(channel, int) or isinstance(channel, bool)
                or not OVERVIEW <= channel < (n if n is not None else 2**31)):
            raise MessageError(f"channel must be an integer in -1..{'C' if n is None else n}-1")
        return {"layer": layer, "channel": channel}

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        source = subject.examples
        assert source is not None
        with subject.lock:  # the examples' model is the explorer's: one user at a time
            if not source.ready:
                job.progress(0, 1, Msg("progress.collecting_examples"))
            examples = source.get(lambda done, total: job.progress(
                done, total, Msg("progress.example_images", done=done, total=total)))
            try:
                if p["channel"] == OVERVIEW:
                    patches = examples.best_patches(p["layer"])
                else:
                    patches = examples.patches(p["layer"], p["channel"], model=subject.model)
            except ExamplesError as err:
                raise MessageError(
                    f"{err} In the explorer: pass examples=TopExamples.load(path, data=...) "
                    "with the data the examples were computed from.") from None
        return patches_reply(p["layer"], p["channel"], patches, examples.classes)

    def snapshot(self, reply: Reply, budget: int) -> Reply | None:
        """The overview cut to the channels that fit (one channel's crops are small)."""
        shape = reply.meta["rgb"]["shape"]
        if "maps" in reply.meta or not shape[0]:
            return None
        per = int(np.prod(shape[1:]))
        keep = max(0, min(shape[0], (budget - 4096) // max(per, 1)))
        if keep == 0:
            return None
        meta = {key: (value[:keep] if isinstance(value, list) and len(value) == shape[0]
                      else value) for key, value in reply.meta.items()}
        meta["rgb"] = {"shape": [keep, *shape[1:]]}
        meta["partial"] = {"channels": keep, "of": shape[0]}
        return Reply(meta, [reply.buffers[0][: keep * per]])


def patches_reply(layer: str, channel: int, patches: ExamplePatches,
                  classes: list[str] | None) -> Reply:
    """The reply of one channel's crops (with maps) or of a layer overview (without)."""
    labels = [int(v) for v in patches.labels.tolist()]
    meta: dict[str, Any] = {
        "layer": layer,
        "channel": channel,
        "indices": [int(v) for v in patches.indices.tolist()],
        "scores": [float(v) for v in patches.scores.tolist()],
        "labels": labels,
        "label_names": None if classes is None else [
            classes[v] if 0 <= v < len(classes) else None for v in labels],
        "positions": [[int(r), int(c)] for r, c in patches.positions.tolist()],
        "boxes": [[int(v) for v in box] for box in patches.boxes.tolist()],
        "rgb": {"shape": [int(s) for s in patches.images.shape]},
    }
    buffers = [np.ascontiguousarray(patches.images.numpy()).tobytes()]
    if channel == OVERVIEW:
        meta["channels"] = list(range(len(labels)))
    elif patches.maps is not None and len(labels):
        maps_meta, map_buffers = stack_message(torch.nan_to_num(patches.maps))
        meta["maps"] = maps_meta
        buffers += map_buffers
    return Reply(meta, buffers)
