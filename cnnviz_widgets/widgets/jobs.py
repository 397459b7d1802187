"""Running the widgets' computations: in a background thread inside a kernel, inline elsewhere.

In a kernel, long work (CAMs of the perturbation family, saliency with many samples, activation
maximization) runs in one worker thread so the kernel keeps reading messages: the front end
stays responsive, progress is reported and a ``cancel`` message is seen while the job runs.
Jobs run one at a time in order; a cancelled job stops at its next progress report.
"""

from __future__ import annotations

import contextlib
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


def after_cell(work: Callable[[], None]) -> None:
    """Run ``work()`` once the running cell has finished (IPython's ``post_run_cell``, on the
    kernel's main thread, after the cell's output went out), or now outside IPython.

    For what the first picture does not need: the front end draws while ``work`` runs.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        work()
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        work()
        return

    def once(*_: object) -> None:
        shell.events.unregister("post_run_cell", once)
        work()

    shell.events.register("post_run_cell", once)


class Cancelled(Exception):
    """Raised inside a job (from its progress callback) when the user cancelled it."""


class JobRunner:
    """Runs ``job(check)`` callables, where ``check()`` raises :class:`Cancelled` once the job
    was cancelled.

    A cancel cancels every job submitted before it, the running one and the queued ones: each
    job remembers the cancel count at its submission, and ``check()`` compares. Queued jobs
    still start, so that each can answer its request ("cancelled") at its first check.

    Args:
        background: run jobs in a daemon worker thread (True) or inline in the caller (False).
    """

    def __init__(self, background: bool):
        self.background = background
        self._cancels = 0
        self._queue: queue.Queue[tuple[Callable[[Callable[[], None]], None],
                                       Callable[[], None]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.running = threading.Event()
        """Set while a job runs (in either mode)."""

    def submit(self, job: Callable[[Callable[[], None]], None]) -> None:
        """Run ``job(check)`` now (inline) or after the jobs queued before it (background)."""
        submitted = self._cancels

        def check() -> None:
            if self._cancels != submitted:
                raise Cancelled

        if not self.background:
            self._run(job, check)
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="cnnviz-jobs", daemon=True
                )
                self._thread.start()
        self._queue.put((job, check))

    def cancel(self) -> None:
        """Cancel the running job and the queued ones (each stops at its next check)."""
        with self._lock:
            self._cancels += 1

    def close(self) -> None:
        """Stop the worker after the current job (cancelled)."""
        self.cancel()
        self._queue.put(None)

    def _run(self, job: Callable[[Callable[[], None]], None], check: Callable[[], None]) -> None:
        self.running.set()
        try:
            job(check)
        except Cancelled:
            pass
        finally:
            self.running.clear()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            with contextlib.suppress(Exception):  # a job reports its own errors
                self._run(*item)
