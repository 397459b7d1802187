"""Progress reporting for the methods that run many forward passes (ScoreCAM, AblationCAM)."""

from __future__ import annotations

from collections.abc import Callable

ProgressArg = None | str | Callable[[int, int], object]


class Progress:
    """Counts finished units of work (one unit = one channel of one sample) against a total.

    ``progress`` is ``None`` (silent), ``"tqdm"`` (a tqdm bar), or a callable
    ``progress(done, total)`` called after every chunk with the running count.
    """

    def __init__(self, progress: ProgressArg, total: int, desc: str = "") -> None:
        self.total = int(total)
        self.done = 0
        self._callback: Callable[[int, int], object] | None = None
        self._bar = None
        if progress == "tqdm":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=desc, leave=False)
        elif callable(progress):
            self._callback = progress
        elif progress is not None:
            raise ValueError(
                f"progress must be None, 'tqdm' or a callable progress(done, total); got "
                f"{progress!r}."
            )

    def advance(self, count: int) -> None:
        """Record ``count`` more finished units and report."""
        if count <= 0:
            return
        self.done += int(count)
        if self._bar is not None:
            self._bar.update(int(count))
        if self._callback is not None:
            self._callback(self.done, self.total)

    def close(self) -> None:
        """Close the tqdm bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
