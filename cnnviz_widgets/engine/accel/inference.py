"""A faster stand-in for the model when it must score many images (ScoreCAM's masked inputs).

:func:`inference_copy` makes a copy of the model with every BatchNorm folded into the
convolution before it (``torch.fx`` tracing; the user's model is not touched) and, on the CPU,
with weights in channels-last layout, which oneDNN convolutions run faster. It computes the same
function up to float rounding (about 1e-6 relative). On the CPU, :class:`FastForward` also tries
a second copy whose wide 3x3 convolutions run as Winograd F(4x4, 3x3) (:mod:`.winograd`, about
1e-5 relative). It uses the first copy that agrees with the model itself on one image, and falls
back to the model when no copy can be made (a model ``torch.fx`` cannot trace) or none agrees.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

from ..targets import OutputSelector, select_output, select_scores
from .stem import split_stem
from .winograd import WinogradConv2d, use_winograd

CPU_CHUNK = 16
"""Images per forward pass of the copy on the CPU. Larger batches push the Winograd transforms'
buffers out of the cache: ResNet-18 at 224 px, 2 threads, runs 20-23 ms per image in chunks of
8 or 16 and 26.5 ms in chunks of 32 (the folded copy without Winograd: 23-29 ms at any size)."""


def outputs_agree(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype) -> bool:
    """Whether a faster path's output ``got`` stands in for ``want``: same shape, and equal
    within ``1e3 * eps(dtype)`` relative, and as much of ``want``'s largest magnitude."""
    tol = 1e3 * torch.finfo(dtype).eps
    got, want = got.to(torch.float32), want.to(torch.float32)
    scale = float(want.abs().max()) if want.numel() else 1.0
    return got.shape == want.shape and torch.allclose(got, want, rtol=tol, atol=tol * scale)


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
        self._split: tuple[nn.Conv2d, nn.Module] | bool | None = None
        self._device = torch.device("cpu")

    @property
    def uses_copy(self) -> bool:
        """Whether the folded copy is in use (known after the first call)."""
        return self._fast is not None

    @property
    def uses_winograd(self) -> bool:
        """Whether the copy in use runs convolutions as Winograd F(4x4, 3x3)."""
        return self._fast is not None and any(
            isinstance(m, WinogradConv2d) for m in self._fast.modules()
        )

    def split(self) -> tuple[nn.Conv2d, nn.Module] | None:
        """The copy in use cut after its first convolution (:func:`.stem.split_stem`), on the
        CPU in float32 only; ``None`` before the first call or when it cannot be cut."""
        if self._split is None and self._fast is not None:
            cpu_float = self._device.type == "cpu" and self.dtype == torch.float32
            self._split = (cpu_float and split_stem(self._fast)) or False
        return self._split if isinstance(self._split, tuple) else None

    def tail(self, stem_output: torch.Tensor) -> Any:
        """The selected model output for a first-convolution output ``stem_output``, by the rest
        of the copy (inference mode); only after :meth:`split` returned a split."""
        split = self.split()
        assert split is not None
        with torch.inference_mode():
            return select_output(split[1](stem_output), self.output)

    def _eager(self, batch: torch.Tensor) -> Any:
        return select_scores(self.model(batch), self.output)

    def _candidates(self, device: torch.device) -> list[nn.Module]:
        """Faster copies to try, fastest first."""
        folded = inference_copy(self.model, device)
        if folded is None:
            return []
        if device.type != "cpu":
            return [folded]
        winograd = copy.deepcopy(folded)
        return [winograd, folded] if use_winograd(winograd) else [folded]

    def _prepare(self, batch: torch.Tensor) -> None:
        """Build the copies and keep the first that agrees with the model on one image."""
        self._checked = True
        self._device = batch.device
        if not self.enabled:
            return
        probe = batch[:1]
        want: torch.Tensor | None = None
        for fast in self._candidates(batch.device):
            try:
                if want is None:
                    want = self._eager(probe)
                    if not isinstance(want, torch.Tensor):  # detections: the model itself
                        return
                got = select_output(fast(self._layout(probe)), self.output)
            except Exception:  # the copy does not run like the model
                continue
            if outputs_agree(got, want, self.dtype):
                self._fast = fast
                return

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
            if batch.device.type != "cpu" or batch.shape[0] <= CPU_CHUNK:
                return select_output(self._fast(self._layout(batch)), self.output)
            return torch.cat(
                [
                    select_output(self._fast(self._layout(chunk)), self.output)
                    for chunk in batch.split(CPU_CHUNK)
                ]
            )
