"""Dataset examples: which images of a dataset excite each channel most, in one pass.

:func:`top_examples` streams a dataset once (one forward pass per batch records every
requested layer), keeps a running top-k per channel, checkpoints, and runs on several
processes under torchrun with the single-process result. :class:`TopExamples` reads the result
as tensors, crops the examples to the units' receptive fields, and saves to / loads from one
file.

* :mod:`.topk`: the bounded running state and its exact merge.
* :mod:`.data`: folders, datasets, loaders, shards, fingerprints.
* :mod:`.result`: :class:`TopExamples`, crops, the file format.
* :mod:`.run`: the pass itself, checkpoints, progress, torch.distributed.
"""

from __future__ import annotations

from .data import ExamplesError, ImageFiles
from .result import ExamplePatches, ExamplesMismatchError, TopExamples
from .run import CheckpointMismatchError, top_examples

__all__ = [
    "CheckpointMismatchError",
    "ExamplePatches",
    "ExamplesError",
    "ExamplesMismatchError",
    "ImageFiles",
    "TopExamples",
    "top_examples",
]
