"""The result of a sanity check (:func:`.sanity.sanity_check`): one
:class:`RandomisationStep` per randomised layer and the random-logit test, read as similarity
scores per step and image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .similarity import SIMILARITIES

MODES: tuple[str, ...] = ("cascade", "independent")
RANDOM_LOGIT = "random logit"


@dataclass
class RandomisationStep:
    """One comparison with the original maps.

    Attributes:
        layer: the layer randomised at this step (``"random logit"`` for the random-logit test).
        scores: ``{"spearman" | "ssim" | "hog": (N,) float64}`` similarity to the original maps.
        maps: ``(N, H, W)`` float32 maps of this step (``None`` with ``keep_maps=False``).
    """

    layer: str
    scores: dict[str, np.ndarray]
    maps: np.ndarray | None = None


@dataclass
class SanityCheck:
    """The result of :func:`sanity_check`.

    Attributes:
        method: the method's canonical name.
        mode: ``"cascade"`` or ``"independent"``.
        seed: the seed of the randomisation.
        targets: ``(N,)`` the explained classes.
        original: ``(N, H, W)`` float32 maps of the unchanged model.
        steps: one :class:`RandomisationStep` per randomised layer, in randomisation order
            (cascade: from the output towards the input).
        random_logit: the maps for ``random_targets`` compared with ``original``.
        random_targets: ``(N,)`` the random other classes.
    """

    method: str
    mode: str
    seed: int
    targets: np.ndarray
    original: np.ndarray
    steps: list[RandomisationStep] = field(default_factory=list)
    random_logit: RandomisationStep | None = None
    random_targets: np.ndarray | None = None

    @property
    def layers(self) -> list[str]:
        """The randomised layers, in the order of :attr:`steps`."""
        return [s.layer for s in self.steps]

    def scores(self, similarity: str = "spearman") -> np.ndarray:
        """``(L, N)`` similarity of each step's maps to the original maps."""
        check_similarity(similarity)
        return (
            np.stack([s.scores[similarity] for s in self.steps])
            if self.steps
            else np.empty((0, len(self.targets)))
        )

    def mean_scores(self, similarity: str = "spearman") -> np.ndarray:
        """``(L,)`` the mean over images (NaN scores left out) of :meth:`scores`."""
        s = self.scores(similarity)
        out = np.full(s.shape[0], np.nan)
        for i, row in enumerate(s):
            ok = row[~np.isnan(row)]
            if ok.size:
                out[i] = ok.mean()
        return out

    def final_similarity(self, similarity: str = "spearman") -> float:
        """Mean similarity once every layer is randomised (the last cascade step)."""
        if self.mode != "cascade" or not self.steps:
            raise ValueError("final_similarity needs a cascade with at least one step.")
        return float(self.mean_scores(similarity)[-1])

    def average_similarity(self, similarity: str = "spearman") -> float:
        """Mean over the steps of :meth:`mean_scores` (Quantus's ``MPRT`` with
        ``return_average_correlation``)."""
        means = self.mean_scores(similarity)
        ok = means[~np.isnan(means)]
        return float(ok.mean()) if ok.size else float("nan")

    def fails(
        self, threshold: float = 0.5, similarity: str = "spearman", over: str = "average"
    ) -> bool:
        """Whether the method fails the model-randomisation test: its maps stay similar to the
        original ones while the weights are randomised, the mean ``similarity`` over the steps
        (``over="average"``) or at the last cascade step (``over="final"``) above
        ``threshold``. The paper reads the curves; 0.5 is a convention, not theirs."""
        if over == "average":
            return self.average_similarity(similarity) > threshold
        if over == "final":
            return self.final_similarity(similarity) > threshold
        raise ValueError(f"over must be 'average' or 'final'; got {over!r}.")

    def records(self) -> list[dict[str, Any]]:
        """One record per step and similarity: ``layer``, ``step`` (0-based; the random-logit
        test is ``-1``), ``similarity``, ``mean`` and ``values`` (the per-image list)."""
        rows: list[dict[str, Any]] = []
        steps = list(enumerate(self.steps))
        if self.random_logit is not None:
            steps.append((-1, self.random_logit))
        for i, step in steps:
            for name, values in step.scores.items():
                ok = values[~np.isnan(values)]
                rows.append(
                    {
                        "method": self.method,
                        "mode": self.mode,
                        "step": i,
                        "layer": step.layer,
                        "similarity": name,
                        "mean": float(ok.mean()) if ok.size else float("nan"),
                        "values": values.tolist(),
                    }
                )
        return rows


def check_similarity(name: str) -> None:
    """A ValueError unless ``name`` is one of :data:`~.similarity.SIMILARITIES`."""
    if name not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}; got {name!r}.")
