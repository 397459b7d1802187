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
from typing import Any

import numpy as np
import torch
from torch import nn

from ..dryrun import trace_modules
from ..layers import LayerRef, resolve_layer
from ..targets import OutputSelector, Target
from ._common import MapsLike, class_indices, class_scores, class_targets
from .explain import MethodLike, prepare
from .sanity_result import (
    MODES,
    RANDOM_LOGIT,
    RandomisationStep,
    SanityCheck,
    check_similarity,
)
from .similarity import Similarity, hog_similarity, spearman_abs, ssim


def _other_classes(
    scores: torch.Tensor,
    classes: torch.Tensor,
    seed: int,
    random_target: int | Sequence[int] | torch.Tensor | None,
) -> torch.Tensor:
    """The random-logit test's other classes: ``random_target`` (resolved against the ``(N, K)``
    ``scores``), else :func:`random_classes` drawn with ``seed``, on ``classes``' device."""
    if random_target is None:
        return random_classes(classes, scores.shape[1], seed).to(classes.device)
    chosen = random_target.tolist() if isinstance(random_target, torch.Tensor) else random_target
    return class_indices(scores, chosen)


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
    x, resolved = prepare(model, x, method, layer, options, method_options)
    names = _layer_names(model, x, layers)
    scores = class_scores(model, x, target, output)
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

    others = _other_classes(scores, classes, seed, random_target)
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
    check_similarity(similarity)
    x, resolved = prepare(model, x, method, layer, options, method_options)
    classes = class_targets(model, x, target, output)
    base = resolved.maps(model, x, classes, maps)
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
    check_similarity(similarity)
    x, resolved = prepare(model, x, method, layer, options, method_options)
    scores = class_scores(model, x, target, output)
    classes = class_indices(scores, target)
    base = resolved.maps(model, x, classes, maps)
    other = resolved.explain(model, x, _other_classes(scores, classes, seed, random_target))
    return _SIMILARITY_FUNCS[similarity](base, other).cpu().numpy()
