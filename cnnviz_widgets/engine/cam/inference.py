"""A faster stand-in for the model when it must score many images (ScoreCAM's masked inputs).

:func:`inference_copy` makes a copy of the model with every BatchNorm folded into the
convolution before it (``torch.fx`` tracing; the user's model is not touched) and, on the CPU,
with weights in channels-last layout, which oneDNN convolutions run faster. It computes the same
function up to float rounding (about 1e-6 relative). :class:`FastForward` uses the copy after
checking it on one image against the model itself, and falls back to the model when the copy
cannot be made (a model ``torch.fx`` cannot trace) or disagrees.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from ..targets import OutputSelector, select_output


def inference_copy(model: nn.Module, device: torch.device) -> nn.Module | None:
    """A BatchNorm-folded copy of ``model`` (eval mode) for inference, or ``None``."""
    try:
        from torch.fx.experimental.optimization import fuse

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = fuse(model)
    except Exception:  # any failure to trace: use the model itself
        return None
    if device.type == "cpu":
        fused = fused.to(memory_format=torch.channels_last)
    return fused.eval()


class FastForward:
    """Score tensors of ``model`` for batches of images, on a faster copy where possible.

    Args:
        model: the borrowed model (eval mode, frozen).
        output: the ``output=`` selector.
        dtype: the model's input dtype.
        enabled: try the folded copy (else always run ``model``).
    """

    def __init__(
        self, model: nn.Module, output: OutputSelector, dtype: torch.dtype, enabled: bool
    ) -> None:
        self.model = model
        self.output = output
        self.dtype = dtype
        self.enabled = enabled
        self._fast: nn.Module | None = None
        self._checked = False

    @property
    def uses_copy(self) -> bool:
        """Whether the folded copy is in use (known after the first call)."""
        return self._fast is not None

    def _eager(self, batch: torch.Tensor) -> torch.Tensor:
        return select_output(self.model(batch), self.output)

    def _prepare(self, batch: torch.Tensor) -> None:
        """Build the copy and check it on the first image of ``batch``."""
        self._checked = True
        if not self.enabled:
            return
        fast = inference_copy(self.model, batch.device)
        if fast is None:
            return
        probe = batch[:1]
        try:
            want = self._eager(probe).to(torch.float32)
            got = select_output(fast(self._layout(probe)), self.output).to(torch.float32)
        except Exception:  # the copy does not run like the model
            return
        tol = 1e3 * torch.finfo(self.dtype).eps
        scale = float(want.abs().max()) if want.numel() else 1.0
        if got.shape == want.shape and torch.allclose(got, want, rtol=tol, atol=tol * scale):
            self._fast = fast

    def _layout(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.device.type == "cpu" and batch.ndim == 4:
            return batch.contiguous(memory_format=torch.channels_last)
        return batch

    def __call__(self, batch: torch.Tensor) -> Any:
        """The selected output tensor for ``batch`` (inference mode, no hooks of ours)."""
        batch = batch.to(self.dtype)
        with torch.inference_mode():
            if not self._checked:
                self._prepare(batch)
            if self._fast is None:
                return self._eager(batch)
            return select_output(self._fast(self._layout(batch)), self.output)
