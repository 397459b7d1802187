"""A progress bar in the running cell's output for work done before the widget is on screen.

The explorer's first pass over a large model (one forward pass recording every layer) runs in
the constructor, before ``display`` can show anything; :class:`CellProgress` shows an
``ipywidgets.IntProgress`` under the cell once that work has taken longer than ``delay``
seconds, and removes it when the work ends. Interrupting the kernel (the stop button) cancels
the pass; the model is restored as after any failed engine call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any


def _display(widget: Any) -> None:
    from IPython.display import display

    display(widget)


class CellProgress:
    """Context manager; call it as ``progress(done, total)``.

    Args:
        label: text before the bar (e.g. ``"first pass"``).
        enabled: show anything at all (False outside a kernel).
        delay: seconds of work before the bar appears, so quick work shows nothing.
        show: how to put the bar on screen (IPython's ``display``; replaceable in tests).
    """

    def __init__(
        self,
        label: str,
        enabled: bool,
        delay: float = 0.5,
        show: Callable[[Any], None] = _display,
    ) -> None:
        self.label = label
        self.enabled = enabled
        self.delay = delay
        self.show = show
        self.bar: Any = None
        self._start = time.monotonic()

    def __enter__(self) -> CellProgress:
        self._start = time.monotonic()
        return self

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.monotonic() - self._start < self.delay or done >= total:
                return
            import ipywidgets

            self.bar = ipywidgets.IntProgress(
                value=0, min=0, max=max(1, total), description=self.label,
                style={"description_width": "initial"},
            )
            self.show(self.bar)
        self.bar.max = max(1, total)
        self.bar.value = min(done, total)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.close()  # closing the widget removes its view from the cell
            self.bar = None
