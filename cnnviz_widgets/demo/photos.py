"""Photographs bundled with the package, for trying pretrained ImageNet models offline.

Both come from scikit-image's sample data and are dedicated to the public domain (CC0) by
their photographers; see ``cnnviz_widgets/data/NOTICE.md``.
"""

from __future__ import annotations

from importlib import resources

from PIL import Image

__all__ = ["SAMPLE_PHOTOS", "sample_photo"]

_FILES: dict[str, str] = {
    "chelsea": "chelsea.png",  # a tabby cat, 451 x 300 px
    "coffee": "coffee.png",  # a cup of coffee on a saucer, 600 x 400 px
}

SAMPLE_PHOTOS: tuple[str, ...] = tuple(_FILES)
"""Names accepted by :func:`sample_photo`."""


def sample_photo(name: str) -> Image.Image:
    """Load a bundled photograph as an RGB ``PIL.Image`` (full resolution, 8 bits/channel).

    Args:
        name: one of :data:`SAMPLE_PHOTOS` (``"chelsea"``: a cat, 451 x 300 px;
            ``"coffee"``: a coffee cup, 600 x 400 px).

    Raises:
        ValueError: if ``name`` is not a bundled photo; the message lists the valid names.
    """
    try:
        filename = _FILES[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(n) for n in SAMPLE_PHOTOS)
        raise ValueError(f"unknown sample photo {name!r}; available: {valid}") from None
    ref = resources.files("cnnviz_widgets").joinpath("data").joinpath(filename)
    with ref.open("rb") as fh:
        image = Image.open(fh)
        image.load()
    return image.convert("RGB")
