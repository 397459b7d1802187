"""Dataset examples: which images of a dataset excite each channel most, in one pass.

:func:`top_examples` streams a dataset once (one forward pass per batch records every
requested layer), keeps a running top-k per channel, checkpoints, and runs on several
processes under torchrun with the single-process result. :class:`TopExamples` reads the result
as tensors, crops the examples to the units' receptive fields, and saves to / loads from one
file. The data is read by the engine's one data layer, :mod:`cnnviz_widgets.engine.data`.

* :mod:`.run`: :func:`top_examples`: arguments, identity, resume, merge.
* :mod:`.stream`: the pass itself: batches, one forward each, the running top-k.
* :mod:`.topk`: the bounded running state and its exact merge.
* :mod:`.checkpoint`: checkpoints and their identity.
* :mod:`.result`: :class:`TopExamples`; :mod:`.patches`: its crops; :mod:`.store`: its file.
"""

from __future__ import annotations

from ..data import ImageFiles
from .checkpoint import CheckpointMismatchError
from .patches import ExamplePatches
from .result import TopExamples
from .run import top_examples
from .store import ExamplesError, ExamplesMismatchError

__all__ = [
    "CheckpointMismatchError",
    "ExamplePatches",
    "ExamplesError",
    "ExamplesMismatchError",
    "ImageFiles",
    "TopExamples",
    "top_examples",
]
