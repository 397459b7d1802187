"""One context manager that hooks any set of layers for one forward pass and always unhooks.

``Capture`` records each hooked layer's output. Two modes:

* ``grad=False`` (feature maps): the output is stored as a detached copy, so an in-place
  operation further on (``ReLU(inplace=True)`` after a conv) cannot change what was recorded.
  With ``reduce=fn``, ``fn(name, output)`` is stored instead, computed inside the hook (before
  anything downstream runs), so a summary of a large output costs no copy of it.
  With ``stop_early=True`` the forward pass is cut short as soon as every hooked layer has run,
  which saves the rest of the network when only early layers are wanted.
* ``grad=True`` (CAM, gradients): the stored output is part of the autograd graph and the hook
  hands the rest of the network a clone of it, so in-place operations downstream act on the
  clone and ``torch.autograd.grad(score, capture.outputs_list())`` gives the gradient with
  respect to the true layer output. When the model's parameters are frozen (see
  :func:`~cnnviz_widgets.engine.borrow.borrowed`) and the input needs no gradient, the first
  hooked output becomes the start of the graph, so nothing before it is differentiated.

A module called more than once in one forward pass (ResNet blocks reuse one ReLU) is recorded
at its first call; later calls pass through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType

import torch
from torch import nn


class LayerOutputError(TypeError):
    """A hooked layer returned something other than a tensor."""


class LayerNotExecutedError(RuntimeError):
    """A hooked layer was never called during the forward pass."""


class _StopForward(Exception):
    """Raised inside a hook to end a forward pass once every wanted layer has run."""


class Capture:
    """Hook ``layers`` (``{name: module}``) of ``model`` for one forward pass.

    Use as a context manager; hooks are removed on exit whatever happens::

        with Capture(model, {"layer4": model.layer4}, grad=True) as cap:
            logits = model(x)
        activation = cap.outputs["layer4"]      # (N, C, H, W), in the graph

    ``on_record(name, recorded, total)`` (``grad=False`` only) is called after each layer is
    recorded, e.g. to report progress through a long forward pass. ``reduce(name, output)``
    (``grad=False`` only) is stored in place of the copy of ``output``.

    Attributes:
        outputs: ``{name: tensor}`` of the recorded outputs, in the order the layers ran.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Mapping[str, nn.Module],
        *,
        grad: bool = False,
        stop_early: bool = False,
        on_record: Callable[[str, int, int], None] | None = None,
        reduce: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if grad and stop_early:
            raise ValueError("stop_early cannot be used with grad=True: the output is needed.")
        self.model = model
        self.layers = dict(layers)
        self.grad = grad
        self.stop_early = stop_early
        self.on_record = on_record
        self.reduce = reduce
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook_for(self, name: str):
        def hook(module: nn.Module, inputs: tuple, output: object) -> object:
            if name in self.outputs:
                return None  # a reused module: keep its first call
            if not isinstance(output, torch.Tensor):
                raise LayerOutputError(
                    f"Layer {name!r} ({type(module).__name__}) returns "
                    f"{type(output).__name__}, not a tensor, so it has no feature map. Pick a "
                    "layer whose output is a tensor, for example one of its sub-layers."
                )
            if not self.grad:
                self.outputs[name] = (
                    output.detach().clone()
                    if self.reduce is None
                    else self.reduce(name, output.detach())
                )
                if self.on_record is not None:
                    self.on_record(name, len(self.outputs), len(self.layers))
                if self.stop_early and len(self.outputs) == len(self.layers):
                    raise _StopForward
                return None
            if not output.requires_grad:
                output = output.detach().requires_grad_(True)
            self.outputs[name] = output
            return output.clone()

        return hook

    def __enter__(self) -> Capture:
        try:
            for name, module in self.layers.items():
                self._handles.append(module.register_forward_hook(self._hook_for(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self.remove()
        return exc_type is _StopForward

    def remove(self) -> None:
        """Remove every hook this capture registered (idempotent)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def require_all(self) -> None:
        """Raise :class:`LayerNotExecutedError` naming any hooked layer that never ran."""
        self._require([name for name in self.layers if name not in self.outputs])

    def _require(self, missing: list[str]) -> None:
        if missing:
            raise LayerNotExecutedError(
                f"Layer(s) {', '.join(repr(m) for m in missing)} of {type(self.model).__name__} "
                "were not called during the forward pass, so they have no output for this "
                "input. Choose layers that the model's forward() uses (auxiliary heads only run "
                "in training mode)."
            )

    def outputs_list(self) -> list[torch.Tensor]:
        """The recorded outputs in the hooked layers' order (for ``torch.autograd.grad``)."""
        self.require_all()
        return [self.outputs[name] for name in self.layers]
