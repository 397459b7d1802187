"""Choosing between equivalent computations by timing them on the work itself.

Every fast path here computes the same function as the plain one (to float rounding), so
which is fastest is only a matter of speed, and that depends on the CPU, the model, the layer
and the input size in ways no fixed threshold captured (see :mod:`.winograd`). A
:class:`Trial` therefore runs the candidates side by side on the first real batches (each
candidate on the same batch, one after the other, so that load from other processes falls on
all alike), discards the first round (allocations, oneDNN primitive creation) and compares the
candidates by their fastest run of the next :data:`RUNS` rounds. Other processes only ever add
time to a run, and on a shared machine they add a lot: a 1 ms convolution that the scheduler
interrupts takes 5 ms, which decided a third of DenseNet-121's 58 choices when one timed
round of each was compared, so the fastest of three is taken (a run is rarely interrupted three
times). The outputs of the trial runs are used, not thrown away: the only cost is running the
losers a few times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")

RUNS = 3
"""Timed rounds (every candidate once on the same work), after one untimed warm-up round."""

clock = time.perf_counter
"""The timer (seconds); tests replace it."""

CLEAR = 2.0
"""After two timed rounds, a trial ends early if every candidate's best time is above this
multiple of the preferred one's or below its inverse (a clear verdict is not worth more runs)."""


class Trial(Generic[T]):
    """Times candidates ``name -> fn()`` on the same work until one is chosen.

    Args:
        names: the candidates, the preferred one first (its output is returned during the
            trial; it is kept unless another is faster than ``margin`` times its time).
        margin: another candidate replaces the preferred one if its best time is below this
            multiple of the preferred one's.
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
        if timed >= self.runs or (timed >= 2 and self.clear()):
            self.choice = self.decide()
        return outputs[self.names[0]]

    def best(self) -> dict[str, float]:
        """Each candidate's fastest timed run (seconds per item; warm-up excluded), plus its
        overhead."""
        return {
            name: min(s[1:] or s) + self.overhead.get(name, 0.0)
            for name, s in self.seconds.items()
            if s
        }

    def ratios(self) -> dict[str, float]:
        """Each candidate's best time over the preferred one's."""
        best = self.best()
        preferred = max(best[self.names[0]], 1e-12)
        return {name: t / preferred for name, t in best.items()}

    def clear(self) -> bool:
        """Whether every other candidate is clearly slower or faster than the preferred one."""
        ratios = self.ratios()
        others = [r for name, r in ratios.items() if name != self.names[0]]
        return all(r > CLEAR or r < 1 / CLEAR for r in others)

    def decide(self) -> str:
        """The candidate with the smallest best time, if below ``margin`` times the preferred
        one's; else the preferred one."""
        ratios = self.ratios()
        fastest = min(ratios, key=ratios.__getitem__)
        return fastest if ratios[fastest] < self.margin else self.names[0]
