"""Choosing between equivalent computations by timing them on the work itself.

Every fast path here computes the same function as the plain one (to float rounding), so
which is fastest is only a matter of speed, and that depends on the CPU, the model, the layer
and the input size in ways no fixed threshold captured (see :mod:`.winograd`). A
:class:`Trial` therefore runs the candidates side by side on the first real batches (each
candidate on the same batch, one after the other, so that load from other processes falls on
all alike), discards the first round (allocations, oneDNN primitive creation) and compares
each candidate with the preferred one by the median over the next :data:`RUNS` rounds of
their time ratio on the same work. Ratios of neighbouring runs cancel most of the swings in
load from other processes that make single timings on a shared machine vary by tens of percent.
The outputs of the trial runs are used, not thrown away: the only cost is running the losers a
few times.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")

RUNS = 2
"""Timed rounds (every candidate once on the same work), after one untimed warm-up round."""

clock = time.perf_counter
"""The timer (seconds); tests replace it."""

CLEAR = 1.25
"""After the first timed round, a trial ends early if every candidate's time ratio to the
preferred one is above this or below its inverse (a clear verdict is not worth more runs)."""


class Trial(Generic[T]):
    """Times candidates ``name -> fn()`` on the same work until one is chosen.

    Args:
        names: the candidates, the preferred one first (its output is returned during the
            trial; it is kept unless another is faster than ``margin`` times its time).
        margin: another candidate replaces the preferred one if the median of its time ratios
            to it is below this.
        runs: timed rounds, after the warm-up round.
        overhead: ``{name: seconds per item}`` a candidate costs besides its runs (e.g. a
            set-up spread over the work it will do), added to its timings when comparing.

    Attributes:
        choice: the chosen name (``None`` while timing).
        seconds: ``{name: [seconds per item, ...]}``, the warm-up run's first.
    """

    def __init__(
        self,
        names: tuple[str, ...],
        margin: float = 1.0,
        runs: int = RUNS,
        overhead: dict[str, float] | None = None,
    ) -> None:
        self.names = names
        self.margin = margin
        self.runs = runs
        self.overhead = overhead or {}
        self.choice: str | None = None
        self.seconds: dict[str, list[float]] = {name: [] for name in names}

    def run(self, fns: Mapping[str, Callable[[], T]], items: int = 1) -> T:
        """The output of the chosen candidate, or, while timing, of the preferred one after
        running every candidate once (in turn-about order) on the same work of ``items``."""
        if self.choice is not None:
            return fns[self.choice]()
        order = self.names if len(self.seconds[self.names[0]]) % 2 == 0 else self.names[::-1]
        outputs: dict[str, T] = {}
        for name in order:
            start = clock()
            outputs[name] = fns[name]()
            self.seconds[name].append((clock() - start) / max(1, items))
        timed = len(self.seconds[self.names[0]]) - 1
        if timed >= self.runs or (timed >= 1 and self.clear()):
            self.choice = self.decide()
        return outputs[self.names[0]]

    def best(self) -> dict[str, float]:
        """Each candidate's fastest timed run (seconds per item; warm-up excluded)."""
        return {name: min(s[1:] or s) for name, s in self.seconds.items() if s}

    def ratios(self) -> dict[str, float]:
        """Each candidate's median time ratio (overhead included) to the preferred one over
        the timed rounds."""
        extra = self.overhead.get
        first = self.names[0]
        preferred = [p + extra(first, 0.0) for p in self.seconds[first][1:]]
        return {
            name: statistics.median(
                (t + extra(name, 0.0)) / max(p, 1e-12)
                for t, p in zip(s[1:], preferred, strict=False)
            )
            for name, s in self.seconds.items()
            if len(s) > 1
        }

    def clear(self) -> bool:
        """Whether every other candidate is clearly slower or faster than the preferred one."""
        ratios = self.ratios()
        others = [r for name, r in ratios.items() if name != self.names[0]]
        return all(r > CLEAR or r < 1 / CLEAR for r in others)

    def decide(self) -> str:
        """The candidate with the smallest median ratio, if below ``margin``; else the
        preferred one."""
        ratios = self.ratios()
        fastest = min(ratios, key=ratios.__getitem__)
        return fastest if ratios[fastest] < self.margin else self.names[0]
