"""Sanity checks for saliency maps (Adebayo et al., NeurIPS 2018): does the map depend on the
model's weights and on the class?

* **Model-parameter randomisation.** The layers' parameters are re-initialised, on a deep copy
  of the model, either in a cascade from the output towards the input (step ``k`` has the last
  ``k`` layers randomised) or one layer at a time (``mode="independent"``), and each time the
  map is computed again and compared with the original one. A method whose maps stay similar
  while the weights become random shows the image, not what the model learned: it fails.
* **Random logit** (Sixt et al., 2020; Quantus's ``RandomLogit``): the map for a random other
  class, compared with the map for the target class.

Similarity scores (:mod:`.similarity`): Spearman rank correlation of the absolute values, SSIM
and the HOG similarity the paper uses. Layers are the modules with ``reset_parameters`` that run
in a forward pass, in the order of their first call; each is re-initialised by its own
``reset_parameters()`` right after ``torch.manual_seed(seed + 1)``, which is what Quantus 0.6's
``MPRT`` does (its ``top_down`` order is the reversed definition order, the same as the
reversed forward order for sequentially defined models), so the randomised weights, maps and
Spearman scores equal Quantus's. Torch's global random state is restored afterwards, and the
user's model is never touched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..borrow import borrowed
from ..dryrun import trace_modules
from ..inputs import prepare_input
from ..layers import LayerRef, resolve_layer
from ..targets import OutputSelector, Target, select_output
from ._common import MapsLike, class_indices, class_targets, maps_for
from .explain import MethodLike, resolve_method
from .similarity import SIMILARITIES, Similarity, hog_similarity, spearman_abs, ssim

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
        _check_similarity(similarity)
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


def _as_target(value: int | Sequence[int] | torch.Tensor) -> Target:
    return value.tolist() if isinstance(value, torch.Tensor) else value


def _check_similarity(name: str) -> None:
    if name not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}; got {name!r}.")


def randomisable_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Qualified names of the modules with ``reset_parameters`` that run in ``model(x[:1])``,
    in the order of their first call (input side first)."""
    trace = trace_modules(model, x[:1])
    modules = dict(model.named_modules())
    return [
        name
        for name in trace.call_order
        if name and callable(getattr(modules.get(name), "reset_parameters", None))
    ]


def _devices(model: nn.Module) -> list[int]:
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


def randomise_layer(module: nn.Module, seed: int) -> None:
    """``torch.manual_seed(seed + 1); module.reset_parameters()`` (Quantus's MPRT step),
    with torch's global random state restored afterwards."""
    with torch.random.fork_rng(devices=_devices(module)):
        torch.manual_seed(seed + 1)
        with torch.no_grad():
            module.reset_parameters()  # type: ignore[operator]


def randomised_copy(
    model: nn.Module, x: torch.Tensor, seed: int = 0, layers: Sequence[LayerRef] | None = None
) -> nn.Module:
    """A deep copy of ``model`` with every layer of :func:`randomisable_layers` (or ``layers``)
    re-initialised as at the end of :func:`sanity_check`'s cascade."""
    names = _layer_names(model, x, layers)
    twin = copy.deepcopy(model)
    modules = dict(twin.named_modules())
    for name in reversed(names):
        randomise_layer(modules[name], seed)
    return twin


def random_classes(classes: torch.Tensor, num_classes: int, seed: int = 0) -> torch.Tensor:
    """For each class index, a class drawn uniformly among the ``num_classes - 1`` others
    (a seeded CPU ``torch.Generator``), on ``classes``' device."""
    if num_classes < 2:
        raise ValueError("The random-logit test needs a model with at least two classes.")
    gen = torch.Generator().manual_seed(int(seed))
    offset = torch.randint(0, num_classes - 1, (classes.shape[0],), generator=gen)
    return (classes.cpu() + 1 + offset) % num_classes


def _layer_names(model: nn.Module, x: torch.Tensor, layers: Sequence[LayerRef] | None) -> list[str]:
    """Layers in forward order: all randomisable ones, or ``layers`` (resolved, sorted)."""
    found = randomisable_layers(model, x)
    if layers is None:
        return found
    rank = {name: i for i, name in enumerate(found)}
    names = [resolve_layer(model, layer)[0] for layer in layers]
    missing = [n for n in names if n not in rank]
    if missing:
        raise ValueError(
            f"Cannot randomise {', '.join(map(repr, missing))}: not a module with "
            "reset_parameters() that runs in the forward pass."
        )
    return sorted(dict.fromkeys(names), key=rank.__getitem__)


def sanity_check(
    model: nn.Module,
    x: torch.Tensor,
    method: MethodLike,
    target: Target = None,
    layer: LayerRef | None = None,
    mode: str = "cascade",
    seed: int = 0,
    *,
    layers: Sequence[LayerRef] | None = None,
    random_target: int | Sequence[int] | torch.Tensor | None = None,
    keep_maps: bool = True,
    output: OutputSelector = None,
    progress: Callable[[int, int], object] | None = None,
    method_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> SanityCheck:
    """Model-parameter randomisation and random-logit tests for one method on a batch.

    Args:
        model: the classifier; never modified (a deep copy is randomised).
        x: ``(N, C, H, W)`` model-ready input.
        method: a CAM method (``"GradCAM"``, ...), a saliency method (``"guided"``, ...) or an
            explainer callable (:func:`~cnnviz_widgets.engine.metrics.explain.resolve_method`).
        target: ``None`` (each image's predicted class on the original model), a class index or
            one per image; the same classes are explained at every step.
        layer: the CAM layer (name or module; default: the default layer).
        mode: ``"cascade"`` (from the output towards the input, cumulatively) or
            ``"independent"`` (one layer at a time, the others original).
        seed: seeds the re-initialisation and the random classes.
        layers: the layers to randomise (default: every module with ``reset_parameters`` that
            runs; for a deep network, a few blocks keep the check quick).
        random_target: the other classes for the random-logit test (default: drawn with
            ``seed``, uniform among the classes other than the target).
        keep_maps: keep every step's maps in the result (for figures).
        output: which part of the model's output holds the logits.
        progress: ``progress(done, total)`` after each map computation.
        method_options: method options that clash with this function's own arguments
            (SmoothGrad's ``seed``: ``method_options={"seed": 0}``).
        **options: method options (``reduce`` for saliency, ``n_samples``, ...).

    Returns:
        A :class:`SanityCheck`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}; got {mode!r}.")
    x = prepare_input(model, x)
    resolved = resolve_method(
        model, method, layer=layer, x=x, **{**options, **(method_options or {})}
    )
    names = _layer_names(model, x, layers)
    with borrowed(model), torch.no_grad():
        scores = select_output(model(x), output)
    classes = class_indices(scores, target)
    total = len(names) + 2
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    original = resolved.explain(model, x, classes)
    compare = Similarity(original)
    tick()

    def step(layer_name: str, maps: torch.Tensor) -> RandomisationStep:
        sims = {k: v.cpu().numpy() for k, v in compare(maps).items()}
        kept = maps.cpu().numpy() if keep_maps else None
        return RandomisationStep(layer_name, sims, kept)

    twin = copy.deepcopy(model)
    modules = dict(twin.named_modules())
    steps: list[RandomisationStep] = []
    for name in reversed(names):
        module = modules[name]
        saved = None
        if mode == "independent":
            saved = {k: v.clone() for k, v in module.state_dict().items()}
        randomise_layer(module, seed)
        steps.append(step(name, resolved.explain(twin, x, classes)))
        tick()
        if saved is not None:
            module.load_state_dict(saved)
    del twin

    if random_target is None:
        others = random_classes(classes, scores.shape[1], seed).to(x.device)
    else:
        others = class_indices(scores, _as_target(random_target))
    logit_step = step(RANDOM_LOGIT, resolved.explain(model, x, others))
    tick()
    return SanityCheck(
        method=resolved.name,
        mode=mode,
        seed=seed,
        targets=classes.cpu().numpy(),
        original=original.cpu().numpy(),
        steps=steps,
        random_logit=logit_step,
        random_targets=others.cpu().numpy(),
    )


_SIMILARITY_FUNCS = {"spearman": spearman_abs, "ssim": ssim, "hog": hog_similarity}


def model_randomisation(
    model: nn.Module,
    x: torch.Tensor,
    method: MethodLike,
    target: Target = None,
    *,
    layer: LayerRef | None = None,
    maps: MapsLike | None = None,
    seed: int = 0,
    layers: Sequence[LayerRef] | None = None,
    randomised: nn.Module | None = None,
    similarity: str = "spearman",
    output: OutputSelector = None,
    method_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> np.ndarray:
    """Per image: similarity of the map to the map of the fully randomised model.

    The end point of :func:`sanity_check`'s cascade (Quantus's ``MPRT`` with
    ``return_last_correlation=True``) in one explanation pass; lower is better.

    Args:
        model, x, method, target, layer, seed, layers, output, **options: as
            :func:`sanity_check`.
        maps: the ``(N, H, W)`` maps of ``x`` if already computed.
        randomised: a model from :func:`randomised_copy` to reuse (over many batches).
        similarity: ``"spearman"`` (default), ``"ssim"`` or ``"hog"``.

    Returns:
        ``(N,)`` float64.
    """
    _check_similarity(similarity)
    x = prepare_input(model, x)
    resolved = resolve_method(
        model, method, layer=layer, x=x, **{**options, **(method_options or {})}
    )
    classes = class_targets(model, x, target, output)
    base = resolved.explain(model, x, classes) if maps is None else maps_for(maps, x)
    twin = randomised if randomised is not None else randomised_copy(model, x, seed, layers)
    other = resolved.explain(twin, x, classes)
    return _SIMILARITY_FUNCS[similarity](base, other).cpu().numpy()


def random_logit(
    model: nn.Module,
    x: torch.Tensor,
    method: MethodLike,
    target: Target = None,
    *,
    layer: LayerRef | None = None,
    maps: MapsLike | None = None,
    seed: int = 0,
    random_target: int | Sequence[int] | torch.Tensor | None = None,
    similarity: str = "ssim",
    output: OutputSelector = None,
    method_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> np.ndarray:
    """Per image: similarity of the map for the target class to the map for a random other
    class (Quantus's ``RandomLogit``, SSIM by default); lower is better.

    Args: as :func:`model_randomisation`; ``random_target`` as in :func:`sanity_check`.

    Returns:
        ``(N,)`` float64.
    """
    _check_similarity(similarity)
    x = prepare_input(model, x)
    resolved = resolve_method(
        model, method, layer=layer, x=x, **{**options, **(method_options or {})}
    )
    with borrowed(model), torch.no_grad():
        scores = select_output(model(x), output)
    classes = class_indices(scores, target)
    base = resolved.explain(model, x, classes) if maps is None else maps_for(maps, x)
    if random_target is None:
        others = random_classes(classes, scores.shape[1], seed).to(x.device)
    else:
        others = class_indices(scores, _as_target(random_target))
    other = resolved.explain(model, x, others)
    return _SIMILARITY_FUNCS[similarity](base, other).cpu().numpy()
