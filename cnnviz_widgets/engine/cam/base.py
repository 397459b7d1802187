"""What every CAM method shares: the data of one target layer, the run, and the method base class.

A method turns one layer's activations ``A`` (and, for gradient methods, ``G = d score / d A``)
into a raw map. The shared pipeline (:mod:`.pipeline`) then rectifies it (ReLU), min-max
normalises, resizes to the input and normalises again, exactly as pytorch-grad-cam's
``BaseCAM`` does. Like the reference's ``BaseCAM``, a method usually only says how it weights
channels (:meth:`CamMethod.weights`, giving ``sum_c w_c A_c``) or how it combines ``A`` and ``G``
elementwise (:meth:`CamMethod.weighted`, summed over channels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..targets import OutputSelector, Scores, Target, select_scores, target_scores
from .errors import CamMethodError
from .progress import Progress
from .projection import first_component

Reshape = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class LayerData:
    """One target layer after the capture pass.

    Attributes:
        name: qualified layer name.
        module: the layer itself.
        output: the layer's output as the model produced it, detached, in the model's dtype and
            layout (before ``reshape``); what AblationCAM ablates and feeds on.
        activations: ``(N, C, h, w)`` float32, ``reshape(output)``.
        gradients: ``(N, C, h, w)`` float32, ``d(sum_i score_i) / d activations`` (the per-sample
            gradient, since samples are independent in eval mode), or ``None`` for gradient-free
            methods.
    """

    name: str
    module: nn.Module
    output: torch.Tensor
    activations: torch.Tensor
    gradients: torch.Tensor | None

    @property
    def required_gradients(self) -> torch.Tensor:
        """:attr:`gradients`, for a method that uses them (the capture pass keeps them for a
        method with ``uses_gradients``); raises ``RuntimeError`` if they were not captured."""
        if self.gradients is None:
            raise RuntimeError(f"No gradients were captured for layer {self.name!r}.")
        return self.gradients


@dataclass
class Run:
    """Everything a method may need besides the layer: the model, the input, the targets.

    Attributes:
        model: the borrowed model (eval mode, parameters frozen).
        x: ``(N, C, H, W)`` model-ready input on the model's device and dtype.
        targets: one class index or callable per sample (``None`` for methods without targets).
        target_values: ``(N,)`` float32 scores of the unperturbed input, or ``None``.
        output: the ``output=`` selector for the model's return value.
        batch_size: images per forward pass for the perturbation methods.
        eigen_smooth: replace the channel sum by the first principal component.
        progress: counts channels done by the perturbation methods.
        reshape: the ``reshape=`` function applied to layer outputs and gradients, or ``None``.
        cache: per-call storage methods may share across layers (e.g. a folded model copy).
    """

    model: nn.Module
    x: torch.Tensor
    targets: list[Any] | None
    target_values: torch.Tensor | None
    output: OutputSelector
    batch_size: int
    eigen_smooth: bool
    progress: Progress
    reshape: Reshape | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def required_targets(self) -> list[Any]:
        """:attr:`targets`, for a method that uses them (``uses_targets``); raises
        ``RuntimeError`` if the run has none."""
        if self.targets is None:
            raise RuntimeError("This run has no targets (the method does not use targets).")
        return self.targets

    @property
    def required_target_values(self) -> torch.Tensor:
        """:attr:`target_values`, for a method that uses targets; raises ``RuntimeError`` if
        the run has none."""
        if self.target_values is None:
            raise RuntimeError("This run has no target values (the method does not use targets).")
        return self.target_values

    def forward(self, batch: torch.Tensor) -> Scores:
        """Scores of the model for ``batch`` (inference mode, model dtype, no hooks): a tensor,
        or one detection dict per image (see :func:`..targets.select_scores`)."""
        with torch.inference_mode():
            return select_scores(self.model(batch.to(self.x.dtype)), self.output)


def score_rows(outputs: Scores, target: Any) -> torch.Tensor:
    """``(B,)`` float32 scores of one target on every row of a ``(B, ...)`` output batch (or
    on each of ``B`` detection dicts)."""
    if isinstance(target, int) and isinstance(outputs, torch.Tensor):
        return outputs[:, target].to(torch.float32)
    return target_scores(outputs, [target] * len(outputs)).to(torch.float32)


class CamMethod:
    """Base class of a CAM method; subclasses set the class attributes and override one hook.

    Class attributes:
        name: the pytorch-grad-cam class name.
        uses_gradients: needs ``d score / d A`` (one backward pass).
        uses_targets: needs the target scores (gradient-free projections do not).
        smoothable: ``eigen_smooth`` applies (the reference ignores it for the projections).
        iterative: runs extra forward passes per channel (reports progress).
        whole_model: ignores target layers and maps the whole model (:meth:`full_map`).
        per_layer_cost: its cost grows steeply with a layer's positions (a kernel matrix over
            them), so callers should map the layers they show, not every layer at once.
        defaults: the method's options and their default values.
    """

    name: ClassVar[str] = ""
    uses_gradients: ClassVar[bool] = True
    uses_targets: ClassVar[bool] = True
    smoothable: ClassVar[bool] = True
    iterative: ClassVar[bool] = False
    whole_model: ClassVar[bool] = False
    per_layer_cost: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            accepted = ", ".join(sorted(self.defaults)) or "none"
            raise CamMethodError(
                f"{self.name} does not take the option(s) {', '.join(unknown)}; its options "
                f"are: {accepted}."
            )
        self.options = {**self.defaults, **options}

    def weights(self, layer: LayerData, run: Run) -> torch.Tensor:
        """``(N, C)`` channel weights ``w`` of the map ``sum_c w_c A_c``."""
        raise NotImplementedError

    def weighted(self, layer: LayerData, run: Run) -> torch.Tensor:
        """``(N, C, h, w)`` per-channel contributions whose channel sum is the raw map."""
        return self.weights(layer, run)[:, :, None, None] * layer.activations

    def raw_map(self, layer: LayerData, run: Run) -> torch.Tensor:
        """``(N, h, w)`` float32 map before rectification (ReLU) and normalisation."""
        if run.eigen_smooth and self.smoothable:
            return first_component(self.weighted(layer, run))
        return self.combine(layer, run)

    def combine(self, layer: LayerData, run: Run) -> torch.Tensor:
        """The un-smoothed ``(N, h, w)`` map: ``sum_c`` of :meth:`weighted`."""
        if type(self).weighted is CamMethod.weighted:
            return torch.einsum("nc,nchw->nhw", self.weights(layer, run), layer.activations)
        return self.weighted(layer, run).sum(dim=1)

    def full_map(
        self,
        model: nn.Module,
        x: torch.Tensor,
        target: Target,
        output: OutputSelector,
        eigen_smooth: bool,
    ) -> torch.Tensor:
        """``(N, H, W)`` map of a whole-model method (``whole_model = True``, e.g. FullGrad)
        before its final min-max normalisation; layer methods do not implement it."""
        raise NotImplementedError

    def work(self, layer: LayerData) -> int:
        """Units of progress this method reports for ``layer`` (channels x samples if iterative)."""
        n, c = layer.activations.shape[:2]
        return n * c if self.iterative else 0
