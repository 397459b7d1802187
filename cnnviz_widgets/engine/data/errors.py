"""Bad data: one error type for every dataset pass, and the messages that name the fix."""

from __future__ import annotations

from typing import Any


class DataError(ValueError):
    """Bad input to a dataset pass (:func:`~cnnviz_widgets.engine.examples.top_examples`,
    :func:`~cnnviz_widgets.engine.metrics.evaluate`); the message names the problem and the fix.
    """


def not_an_image(index: int, image: Any) -> str:
    """The message for dataset item ``index`` whose image part is ``image``, not an image."""
    return (
        f"Dataset item {index} is {type(image).__name__} ({_short(image)}), not an image. Items "
        "must be an image tensor (C, H, W), a PIL image, a tuple (image, label, ...) or a dict "
        "with an 'image' key; give the dataset a transform that returns one (for example "
        "transforms.ToTensor())."
    )


def different_sizes(i: int | None, shape_i: Any, j: int, shape_j: Any) -> str:
    """The message for items ``i`` (``None``: an earlier one) and ``j`` of different sizes."""
    first = "an earlier item" if i is None else f"item {i}"
    return (
        f"Images of different sizes: {first} is {'x'.join(map(str, shape_i))} and item {j} is "
        f"{'x'.join(map(str, shape_j))}; they cannot be batched, and examples must share one "
        "grid. Pass size=N (command line: --size N) to resize and centre-crop every image, or "
        "give the dataset a transform that does (transforms.Resize(N) + CenterCrop(N))."
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
