"""What an explorer explains: one borrowed model, its explored layers and one input image.

:class:`Subject` holds the torch side of a :class:`~cnnviz_widgets.widgets.explorer.
LayerExplorer` (model, layers, the input tensor and what was computed from it) so that the
request handlers (:mod:`cnnviz_widgets.widgets.requests`) can compute from it without knowing
the widget. Every computation goes through the engine, which leaves the model as it found it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..engine import cam as cam_engine
from ..engine.cam.registry import method_class
from ..engine.detection import model_family
from ..engine.dryrun import default_layer
from ..engine.features import whole_pass
from ..engine.inputs import LoadedImage
from ..engine.layers import all_convs, resolve_layers
from ..engine.predictions import class_name, class_probabilities, probabilities_of
from ..engine.receptive import ReceptiveField, receptive_fields
from .i18n import Msg

Progress = Callable[..., None]


@dataclass
class LayerInfo:
    """One explored layer as the front end sees it (``to_json``)."""

    name: str
    type: str
    shape: list[int] | None
    kernel_shape: list[int] | None
    field: ReceptiveField | None
    input_size: tuple[int, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "shape": self.shape,
            "kernel_shape": self.kernel_shape,
            # receptive field in the input tensor's pixels (None: outline proportionally)
            "rf": None if self.field is None else {
                **self.field.to_json(), "input": list(self.input_size)
            },
        }


@dataclass
class FirstPass:
    """What one forward pass over the explored layers gave: layer infos, the maps of every
    layer ``{name: (C, H, W)}`` (grids only) and the value range over all of them."""

    layers: list[LayerInfo]
    maps: dict[str, torch.Tensor]
    value_range: tuple[float, float] | None
    cam_layers: list[str]
    cam_default: str


@dataclass
class Subject:
    """A model, its explored layers and the current input (see module docstring).

    Attributes:
        model: the user's network (borrowed).
        layer_names: the explored layers in forward order.
        classes: class names (index -> name) or ``None``.
        mean, std: the input normalisation (for optimised images).
    """

    model: nn.Module
    layer_names: list[str]
    classes: tuple[str, ...] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    modules: dict[str, nn.Module] = field(init=False)
    version: int = 0
    image: LoadedImage | None = None
    cam_layers: list[str] = field(default_factory=list)
    layer_infos: list[LayerInfo] = field(default_factory=list)
    # The model serves the job thread and the kernel's main thread (a new image): one user at
    # a time, so the engine's borrow-and-restore never interleaves.
    lock: threading.RLock = field(default_factory=threading.RLock)
    examples: Any = None
    """The dataset examples (:class:`~.requests.examples.ExamplesSource`) or ``None``."""
    evaluation: Any = None
    """A dataset evaluation for the Trust view (:class:`~.requests.evaluation.
    EvaluationSource`: ``evaluate(...)``'s result and its data), or ``None``."""
    objects: Any = None
    """A detector's or segmenter's objects (:class:`~.requests.objects.ObjectTask`): the
    targets of its maps are then objects (a detection, a predicted class's region), not
    classes; ``None`` for a classifier."""
    cam_preferred: str | None = None
    """The layer the CAM starts at when the model has one known to explain it best (the demo
    detector's class tower); ``None``: the engine's :func:`default_layer`."""
    pending_maps: dict[str, torch.Tensor] = field(default_factory=dict)
    """Float maps ``{layer: (C, H, W)}`` the first pass of the current image gave and no
    request has taken yet (quantised when asked for, not before the first paint)."""
    _fields: dict[str, ReceptiveField] | None = None
    _probs: torch.Tensor | None = None
    _cam_memo: dict[tuple[int, str, int | None], dict[str, np.ndarray]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self.modules = dict(self.model.named_modules())

    @property
    def fields_known(self) -> bool:
        """Whether :attr:`fields` was computed (the explorer defers it past the first paint)."""
        return self._fields is not None

    @property
    def fields(self) -> dict[str, ReceptiveField]:
        """Receptive fields of the explored layers (traced on first use: nothing runs). A
        detector's are found for the current input's size (it resizes images inside)."""
        if self._fields is None:
            size = None if self.image is None else (int(self.x.shape[-2]), int(self.x.shape[-1]))
            self._fields = receptive_fields(self.model, self.layer_names, input_size=size)
        return self._fields

    def fill_fields(self) -> bool:
        """Give :attr:`layer_infos` their receptive fields; whether any changed."""
        with self.lock:
            fields, changed = self.fields, False
            for info in self.layer_infos:
                found = fields.get(info.name)
                if found != info.field:
                    info.field, changed = found, True
            return changed

    @classmethod
    def create(
        cls,
        model: nn.Module,
        layers: Sequence[str | nn.Module] | None,
        classes: Sequence[str] | None,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> Subject:
        """The subject of ``model``; ``layers`` default to every Conv2d in forward order."""
        if layers is None:
            # every Conv2d; their forward order comes from the first pass (no dry run first)
            all_convs(model)  # a model without one fails here, before any pass
            names: list[str] = []
        else:
            names = list(resolve_layers(model, layers))
        if layers is not None and not names:
            raise ValueError("No layers to explore: pass layers=[...] with at least one name.")
        return cls(model, names, tuple(classes) if classes is not None else None,
                   tuple(mean), tuple(std))

    # ------------------------------------------------------------------ input

    @property
    def x(self) -> torch.Tensor:
        """The model-ready input ``(1, 3, H, W)``."""
        if self.image is None:
            raise RuntimeError("The explorer has no input image.")
        return self.image.tensor

    def set_image(self, loaded: LoadedImage, progress: Callable[[int, int], None] | None = None
                  ) -> FirstPass:
        """Use ``loaded`` as the input: a new version, and the first pass over the layers."""
        with self.lock:
            self.image = loaded
            self.version += 1
            self._probs = None
            self._cam_memo = {}
            self.pending_maps = {}
            if self._fields and model_family(self.model) == "detection":
                self._fields = None  # its fields depend on the input's size: found again
            if self.classes is None and loaded.classes is not None:
                self.classes = tuple(loaded.classes)
            first = self._first_pass(progress)
            self.layer_infos = first.layers
            self.cam_layers = first.cam_layers
            return first

    def _first_pass(self, progress: Callable[[int, int], None] | None) -> FirstPass:
        x = self.x
        # one whole forward: its output gives the predictions, its trace the default CAM
        # layer, without a second pass
        recorded = whole_pass(self.model, x, self.layer_names or None, progress=progress)
        maps = recorded.maps
        if not self.layer_names:
            self.layer_names = list(maps)
        with contextlib.suppress(Exception):  # no class scores (unusual output): asked later
            self._probs = probabilities_of(recorded.output)
        infos, grids = [], {}
        lo, hi = np.inf, -np.inf
        size = (int(x.shape[-2]), int(x.shape[-1]))
        for name in self.layer_names:
            out = maps[name][0]
            module = self.modules[name]
            infos.append(LayerInfo(
                name=name,
                type=type(module).__name__,
                shape=[int(s) for s in out.shape] if out.ndim == 3 else None,
                kernel_shape=([int(s) for s in module.weight.shape]
                              if isinstance(module, nn.Conv2d) else None),
                field=self._fields.get(name) if self._fields is not None else None,
                input_size=size,
            ))
            if out.ndim == 3 and out.numel():
                grids[name] = out
                lo, hi = min(lo, float(out.min())), max(hi, float(out.max()))
        cam_layers = [i.name for i in infos if i.shape and i.shape[1] * i.shape[2] > 1]
        default: str | None = self.cam_preferred
        if default is None:
            try:
                default = default_layer(self.model, x, trace=recorded.trace)
            except ValueError:  # no module outputs a grid at this size
                default = None
        if default and default not in cam_layers:
            cam_layers.append(default)
        return FirstPass(infos, grids, (lo, hi) if lo <= hi else None, cam_layers,
                         default if default in cam_layers else cam_layers[-1])

    def layer_channels(self, layer: str) -> int | None:
        """Output channels of an explored layer (None when its output is not a grid)."""
        for info in self.layer_infos:
            if info.name == layer and info.shape:
                return info.shape[0]
        return None

    # ------------------------------------------------------------------ predictions

    def probabilities(self) -> torch.Tensor:
        """Class probabilities for the input, ``(num_classes,)`` (one forward pass, kept)."""
        with self.lock:
            if self._probs is None:
                self._probs = class_probabilities(self.model, self.x)
            return self._probs

    def num_classes(self) -> int:
        return int(self.probabilities().numel())

    def class_name(self, index: int) -> str:
        return class_name(index, self.classes)

    def engine_target(self, target: int | None) -> Any:
        """What the engine explains for the explorer's target ``target``: the class itself
        for a classifier, the object's box or region target for a detector or segmenter."""
        if target is None or self.objects is None:
            return target
        return self.objects.target(self, target)

    # ------------------------------------------------------------------ CAMs

    def cam_maps(
        self, method: str, target: int | None, layer: str, progress: Progress
    ) -> dict[str, np.ndarray]:
        """``{layer: (H, W) float32 in [0, 1]}`` at the input's size, ``layer`` included.

        Methods that need one forward (and one backward) pass for any number of layers give
        the map of every layer of the depth slider at once (:func:`cam_per_layer`); the
        perturbation methods (ScoreCAM, AblationCAM), whole-model FullGrad and methods whose
        cost grows with the positions of every layer (KPCA_CAM) give ``layer`` only.
        ``target`` is ``None`` for class-agnostic methods.
        """
        with self.lock:
            memo_key = (self.version, method, target)
            memo = self._cam_memo.get(memo_key, {})
            if layer in memo:
                return memo
            impl = method_class(method)
            found: dict[str, np.ndarray] = {}
            one_pass = not (impl.iterative or impl.whole_model or impl.per_layer_cost)
            if one_pass and len(self.cam_layers) > 1:
                try:
                    maps = cam_engine.cam_per_layer(self.model, self.x, list(self.cam_layers),
                                         method=method, target=self.engine_target(target))
                    found = {name: np.asarray(m, np.float32)[0] for name, m in maps.items()}
                except Exception:  # one unsuitable layer of the slider: map the asked one alone
                    found = {}
            if layer not in found:

                def report(done: int, total: int) -> None:
                    progress(done, total, Msg("progress.cam", method=method, layer=layer,
                                              done=done, total=total))

                single = cam_engine.cam(self.model, self.x, layer, method=method,
                                        target=self.engine_target(target), progress=report)
                found = {**memo, layer: np.asarray(single, np.float32)[0]}
            # Float maps of the latest (image, method, class) only: for faithfulness figures.
            self._cam_memo = {memo_key: found}
            return found
