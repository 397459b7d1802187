"""One calling convention for every attribution method the metrics re-run.

Robustness, randomisation and dataset-level evaluation compute maps again (on perturbed inputs,
on a randomised copy of the model, for another class). They take the method as a name (a CAM
method of :func:`~cnnviz_widgets.engine.cam.cam` or a saliency method of
:func:`~cnnviz_widgets.engine.saliency.saliency`) or as a callable, and turn it into an
:data:`Explainer`: ``explainer(model, x, classes) -> (N, H, W)`` float32 maps on ``x``'s device,
at ``x``'s spatial size, one per image, for the class indices ``classes`` ``(N,)``.

CAM maps are the engine's ``[0, 1]`` maps. Saliency attributions ``(N, C, H, W)`` are reduced
over channels with :func:`~cnnviz_widgets.engine.saliency.saliency_map` (``reduce``, default
``"absmax"``: non-negative, raw scale).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..cam import cam
from ..cam.errors import CamMethodError
from ..cam.registry import method_class
from ..dryrun import default_layer
from ..inputs import prepare_input
from ..layers import LayerRef, resolve_layer
from ..saliency import canonical_method, saliency, saliency_map
from ._common import MapsLike, maps_for

Explainer = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
"""``explainer(model, x, classes)``: ``x`` ``(N, C, H, W)`` model-ready, ``classes`` ``(N,)``
int64; returns ``(N, H, W)`` float32 maps on ``x``'s device."""

MethodLike = str | Explainer


@dataclass(frozen=True)
class Method:
    """A resolved attribution method.

    Attributes:
        name: the canonical name (``"GradCAM"``, ``"guided"``) or, for a callable, its
            ``__name__``.
        kind: ``"cam"``, ``"saliency"`` or ``"callable"``.
        explain: the :data:`Explainer`.
        layer: the CAM layer's qualified name (``None`` for the others).
    """

    name: str
    kind: str
    explain: Explainer
    layer: str | None = None

    def maps(
        self, model: nn.Module, x: torch.Tensor, classes: torch.Tensor, given: MapsLike | None
    ) -> torch.Tensor:
        """``(N, H, W)`` maps of ``x`` for ``classes``: ``given`` (resized to ``x`` if needed)
        when the caller computed them already, else explained now."""
        return self.explain(model, x, classes) if given is None else maps_for(given, x)


def _as_tensor(maps: np.ndarray | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    t = maps if isinstance(maps, torch.Tensor) else torch.from_numpy(np.asarray(maps))
    t = t.detach().to(device=x.device, dtype=torch.float32)
    if t.ndim == 4 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 3 or t.shape[0] != x.shape[0]:
        raise ValueError(
            f"An explainer must return (N, H, W) maps, one per image; got shape "
            f"{tuple(t.shape)} for {x.shape[0]} images."
        )
    return t


def resolve_method(
    model: nn.Module,
    method: MethodLike,
    *,
    layer: LayerRef | None = None,
    x: torch.Tensor | None = None,
    reduce: str = "absmax",
    **options: Any,
) -> Method:
    """Turn a method name or callable into a :class:`Method`.

    Args:
        model: the model the method will explain (used to resolve ``layer``; a copy of it with
            the same module names can be explained later).
        method: a CAM method name (``"GradCAM"``, case-insensitive), a saliency method name
            (``"vanilla"``, ``"guided"``, ...), or a callable ``f(model, x, classes)`` returning
            ``(N, H, W)`` maps (numpy or torch).
        layer: the CAM layer (name or module); ``None``: the default layer, found by a dry run
            of ``x[:1]`` (or of a zero image). Also the GradCAM layer of ``guided_gradcam``.
        x: an input batch, for the default layer's dry run.
        reduce: how saliency attributions are reduced over channels
            (:func:`~cnnviz_widgets.engine.saliency.saliency_map`).
        **options: passed to ``cam`` / ``saliency`` (e.g. ``n_samples`` for SmoothGrad).

    Raises:
        ValueError: a name that is neither a CAM nor a saliency method.
    """
    if callable(method):
        fn = method

        def explain_callable(m: nn.Module, xb: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
            return _as_tensor(fn(m, xb, classes), xb)

        return Method(getattr(method, "__name__", "callable"), "callable", explain_callable)
    if not isinstance(method, str):
        raise TypeError(f"method must be a name or a callable; got {type(method).__name__}.")
    try:
        cam_name: str | None = method_class(method).name
    except CamMethodError:
        cam_name = None
    if cam_name is not None:
        layer_name = _layer_name(model, layer, x)

        def explain_cam(m: nn.Module, xb: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
            maps = cam(m, xb, layer_name, cam_name, classes.tolist(), **options)
            return _as_tensor(maps, xb)

        return Method(cam_name, "cam", explain_cam, layer_name)
    try:
        sal_name = canonical_method(method)
    except ValueError:
        raise ValueError(
            f"Unknown method {method!r}: neither a CAM method (GradCAM, ScoreCAM, ...) nor a "
            "saliency method (vanilla, guided, smoothgrad, integrated_gradients, "
            "gradient_x_input, guided_gradcam)."
        ) from None
    sal_options = dict(options)
    sal_layer: str | None = None
    if sal_name == "guided_gradcam" and layer is not None:
        sal_layer = _layer_name(model, layer, x)
        sal_options["layer"] = sal_layer

    def explain_saliency(m: nn.Module, xb: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        attr = saliency(m, xb, classes.tolist(), sal_name, **sal_options)
        return _as_tensor(saliency_map(attr, reduce), xb)

    return Method(sal_name, "saliency", explain_saliency, sal_layer)


def prepare(
    model: nn.Module,
    x: torch.Tensor,
    method: MethodLike,
    layer: LayerRef | None,
    options: Mapping[str, Any],
    method_options: Mapping[str, Any] | None,
) -> tuple[torch.Tensor, Method]:
    """``x`` made ready for ``model`` (:func:`~cnnviz_widgets.engine.inputs.prepare_input`) and
    ``method`` resolved (:func:`resolve_method`) with a metric's ``**options`` and, over them,
    its ``method_options`` (for names that clash with the metric's own arguments)."""
    x = prepare_input(model, x)
    merged = {**options, **(method_options or {})}
    return x, resolve_method(model, method, layer=layer, x=x, **merged)


def _layer_name(model: nn.Module, layer: LayerRef | None, x: torch.Tensor | None) -> str:
    """A layer's qualified name (so that it resolves on a deep copy of ``model`` too)."""
    if layer is None:
        return default_layer(model, None if x is None else x[:1])
    return resolve_layer(model, layer)[0]
