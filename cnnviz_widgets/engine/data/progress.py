"""The progress of a dataset pass: a tqdm bar (a notebook bar in Jupyter, a text bar in a
terminal) or the caller's callback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import DataError

ProgressLike = None | bool | str | Callable[[int, int], object]
"""``None``/``False``: nothing; ``True``/``"tqdm"``: a tqdm bar when tqdm is installed; a
callable: ``progress(images_done, images_total)`` after each batch."""


class Progress:
    """Reports ``done`` of ``total`` images.

    Args:
        progress: see :data:`ProgressLike`.
        total: images this process reads.
        done: images already read (a resumed pass).
        desc: the bar's label.
        bar: whether a bar may be shown here (``False`` on every process but rank 0).
    """

    def __init__(
        self, progress: ProgressLike, total: int, done: int = 0, desc: str = "", bar: bool = True
    ) -> None:
        known = progress is None or isinstance(progress, bool) or progress == "tqdm"
        if not known and not callable(progress):
            raise DataError(
                    f"progress must be None, True, False, 'tqdm' or a callable; got {progress!r}."
                )
        self.total = total
        self.callback = progress if callable(progress) else None
        self.bar: Any = None
        if bar and (progress is True or progress == "tqdm"):
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, initial=done, unit="img", desc=desc, dynamic_ncols=True)

    def update(self, done: int) -> None:
        """``done`` images are read now."""
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        elif self.callback is not None:
            self.callback(done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
