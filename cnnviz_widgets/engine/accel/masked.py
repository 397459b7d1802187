"""ScoreCAM's masked forward passes: a model's outputs for one image under batches of masks.

:class:`MaskedForward` computes ``forward(image * M)`` for masks
``M = (upsample(maps) - low) / (high - low + eps)``, either plainly (build the masks, multiply,
run :class:`~.inference.FastForward`) or, on the CPU where it is faster, with the first
convolution by linearity (:class:`~.stem.LinearStem`) and the rest of the copy after it. The
choice is measured, not assumed: once the copy-or-model choice for the image size is made, the
stem is built for the image (timed) and checked against convolving the first batch of masked
images, then both run side by side on the next batches (:class:`~.trial.Trial`); the stem is
kept if it is faster per mask by more than its build time spread over the image's masks. The
decision is cached with the model's copy (per image size and map size), so later images and
calls build the stem only where it paid.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from ..targets import Scores
from .inference import FastForward, outputs_agree
from .stem import LinearStem, stem_fits
from .trial import Trial

Upsample = Callable[[torch.Tensor, tuple[int, int]], torch.Tensor]


class MaskedForward:
    """Model outputs for one image under batches of ScoreCAM masks.

    Args:
        forward: the model's scorer (shared by every image of a call).
        image: ``(C, H, W)`` the unmasked input.
        upsample: ``(B, h, w) -> (B, H, W)``, linear (bilinear upsampling).
        eps: the offset in the masks' denominator.
        masks: how many masks this image will be scored under (to weigh the stem's build time).
    """

    def __init__(
        self, forward: FastForward, image: torch.Tensor, upsample: Upsample, eps: float, masks: int
    ) -> None:
        self.forward = forward
        self.image = image
        self.size = (image.shape[-2], image.shape[-1])
        self.upsample = upsample
        self.eps = eps
        self.count = masks
        self.stem: LinearStem | None = None
        self._trial: Trial[torch.Tensor] | None = None
        self._build_s = 0.0

    def masked(self, maps: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` the image under the masks of ``(B, h, w)`` maps."""
        lo = low[:, None, None]
        masks = (self.upsample(maps, self.size) - lo) / (high[:, None, None] - lo + self.eps)
        return self.image * masks[:, None]

    def plain(self, maps: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> Scores:
        """Outputs by building the masked images and running the forward on them."""
        return self.forward(self.masked(maps, low, high))

    def by_linearity(
        self, maps: torch.Tensor, low: torch.Tensor, high: torch.Tensor
    ) -> torch.Tensor:
        """Outputs with the first convolution by the stem."""
        assert self.stem is not None
        scale = 1.0 / (high - low + self.eps)
        with torch.inference_mode():
            stem = self.stem(maps, low, scale)
        return self.forward.tail(stem)

    def _key(self, maps: torch.Tensor) -> tuple[Any, ...]:
        return ("stem", self.size, tuple(maps.shape[-2:]))

    def _stem_possible(self, maps: torch.Tensor) -> bool:
        """Whether the stem may be tried: the copy is in use and chosen over the model, it can
        be cut after a first convolution, and the basis fits."""
        if not (self.forward.decided() and self.forward.prefers_copy()):
            return False
        split = self.forward.split()
        map_size = (maps.shape[-2], maps.shape[-1])
        return split is not None and stem_fits(split[0], map_size, self.size)

    def _build(self, maps: torch.Tensor) -> None:
        split = self.forward.split()
        assert split is not None
        start = time.perf_counter()
        with torch.inference_mode():
            self.stem = LinearStem(
                split[0],
                self.image.to(self.forward.dtype),
                (maps.shape[-2], maps.shape[-1]),
                self.upsample,
                maps.shape[0],
            )
        self._build_s = time.perf_counter() - start

    def _timed(self, maps: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> Scores | None:
        """Outputs with the first convolution by both paths side by side (timed); ``None`` if
        the stem disagrees with the convolution on the first batch (it is then dropped)."""
        stem, trial, split = self.stem, self._trial, self.forward.split()
        assert stem is not None and trial is not None and split is not None
        conv = split[0]
        scale = 1.0 / (high - low + self.eps)

        def convolved() -> torch.Tensor:
            images = self.masked(maps, low, high).to(self.forward.dtype)
            return conv(images.contiguous(memory_format=torch.channels_last))

        paths = {"conv": convolved, "stem": lambda: stem(maps, low, scale)}
        with torch.inference_mode():
            first = not trial.seconds["conv"]  # the first batch: check the stem
            if first and not outputs_agree(paths["stem"](), convolved(), torch.float32):
                return None
            stem_output = trial.run(paths, maps.shape[0])
        return self.forward.tail(stem_output)

    def _decide(self, maps: torch.Tensor) -> None:
        """Record the trial's verdict (the stem's time per mask counts its build time spread
        over the image's masks) and drop the stem if it lost."""
        assert self._trial is not None and self._trial.choice is not None
        keep = self._trial.choice == "stem"
        self.forward.set_note(self._key(maps), keep)
        self.forward.set_note((*self._key(maps), "trial"), self._trial)
        if not keep:
            self.stem = None

    def __call__(self, maps: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> Scores:
        """``(B, h, w)`` maps and their ``(B,)`` upsampled ranges -> the selected outputs (a
        tensor, or a detector's list of one dict per masked image)."""
        if self.stem is not None and self._trial is None:
            return self.by_linearity(maps, low, high)
        decision = self.forward.note(self._key(maps))
        if decision is False:
            return self.plain(maps, low, high)
        if decision is True:
            if self.stem is None:
                self._build(maps)
            return self.by_linearity(maps, low, high)
        if self._trial is None:
            if not self._stem_possible(maps):
                if self.forward.decided():  # for good: no stem to try
                    self.forward.set_note(self._key(maps), False)
                return self.plain(maps, low, high)
            self._build(maps)
            per_mask = self._build_s / max(1, self.count)
            self._trial = Trial(("conv", "stem"), overhead={"stem": per_mask})
        outputs = self._timed(maps, low, high)
        if outputs is None:  # the stem disagreed
            self.forward.set_note(self._key(maps), False)
            self.stem = None
            self._trial = None
            return self.plain(maps, low, high)
        if self._trial.choice is not None:
            self._decide(maps)
            self._trial = None
        return outputs
