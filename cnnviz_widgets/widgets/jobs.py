"""Running the widgets' computations: in a background thread inside a kernel, inline elsewhere.

In a kernel, long work (CAMs of the perturbation family, saliency with many samples, activation
maximization) runs in one worker thread so the kernel keeps reading messages: the front end
stays responsive, progress is reported and a ``cancel`` message is seen while the job runs.
Jobs run one at a time in order; a cancelled job stops at its next progress report.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


def in_kernel() -> bool:
    """Whether this code runs inside a Jupyter kernel (where jobs go to a worker thread)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Cancelled(Exception):
    """Raised inside a job (from its progress callback) when the user cancelled it."""


class JobRunner:
    """Runs ``job(check)`` callables, where ``check()`` raises :class:`Cancelled` after a cancel.

    Args:
        background: run jobs in a daemon worker thread (True) or inline in the caller (False).
    """

    def __init__(self, background: bool):
        self.background = background
        self._cancel = threading.Event()
        self._queue: queue.Queue[Callable[[Callable[[], None]], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the running job was cancelled."""
        if self._cancel.is_set():
            raise Cancelled

    def submit(self, job: Callable[[Callable[[], None]], None]) -> None:
        """Run ``job(self.check)`` now (inline) or after the jobs queued before it (background)."""
        if not self.background:
            self._cancel.clear()
            job(self.check)
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="cnnviz-jobs", daemon=True
                )
                self._thread.start()
        self._queue.put(job)

    def cancel(self) -> None:
        """Cancel the running job and drop the queued ones."""
        self._cancel.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    def close(self) -> None:
        """Stop the worker after the current job."""
        self.cancel()
        self._queue.put(None)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._cancel.clear()
            try:
                job(self.check)
            except Cancelled:
                pass
            except Exception:  # a job reports its own errors; never kill the worker
                pass
