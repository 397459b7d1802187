"""Dataset examples of the demo model: the generated shapes that excite each channel most.

The demo explorer shows these in its "Dataset examples" view. They are computed on first use
(about a second for 1,024 images at 64 px on one CPU core) from images that
:func:`~cnnviz_widgets.demo.shapes.make_shapes` generates with a seed of their own, so they
are never the training images nor the sample images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.utils.data import Dataset

from cnnviz_widgets.demo.model import INPUT_SIZE, MEAN, STD, DemoModel, demo_model
from cnnviz_widgets.demo.shapes import SHAPE_CLASSES, make_shapes

if TYPE_CHECKING:
    from cnnviz_widgets.engine.examples import TopExamples

__all__ = ["DEMO_EXAMPLE_IMAGES", "EXAMPLES_SEED", "ShapeImages", "demo_examples"]

DEMO_EXAMPLE_IMAGES = 1024
"""Generated images the demo explorer's dataset examples are taken from."""

EXAMPLES_SEED = 31_337
"""``make_shapes`` seed of the demo's example images (not a training or validation seed)."""


class ShapeImages(Dataset):
    """Generated shape images as the demo model takes them: ``(image, label)`` items.

    Attributes:
        inputs: ``(n, 3, 64, 64)`` float32, normalised with the demo's mean and std.
        labels: ``(n,)`` int64 indices into :attr:`classes`.
        classes: the shape names (what ``top_examples`` records as the data's classes).
    """

    def __init__(self, n: int = DEMO_EXAMPLE_IMAGES, seed: int = EXAMPLES_SEED) -> None:
        images, labels, _ = make_shapes(n, size=INPUT_SIZE, seed=seed)
        mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        std = torch.tensor(STD).view(1, 3, 1, 1)
        self.inputs = (images - mean) / std
        self.labels = labels
        self.classes = list(SHAPE_CLASSES)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.inputs[index], int(self.labels[index])


def demo_examples(
    n: int = DEMO_EXAMPLE_IMAGES,
    k: int = 9,
    *,
    demo: DemoModel | None = None,
    progress: bool | Callable[[int, int], None] = False,
) -> TopExamples:
    """Top-``k`` generated shapes for every conv layer of the demo model.

    Args:
        n: number of generated images.
        k: examples kept per channel.
        demo: the demo model to use (default: :func:`demo_model`).
        progress: as :func:`~cnnviz_widgets.engine.examples.top_examples`.

    Returns:
        A :class:`~cnnviz_widgets.engine.examples.TopExamples` whose data is a
        :class:`ShapeImages` (so ``patches`` works without passing data).
    """
    from cnnviz_widgets.engine.examples import top_examples  # the engine imports demo

    demo = demo if demo is not None else demo_model(allow_untrained=True)
    return top_examples(demo.model, ShapeImages(n), k=k, mean=MEAN, std=STD,
                        batch_size=128, progress=progress)
