"""A faster stand-in for the model when it must score many images (ScoreCAM's masked inputs).

:func:`inference_copy` makes a copy of the model with every BatchNorm folded into the
convolution before it (``torch.fx`` tracing; the user's model is not touched) and, on the CPU,
with weights in channels-last layout, which oneDNN convolutions run faster. It computes the same
function up to float rounding (about 1e-6 relative). On the CPU in float32, the copy's 3x3
convolutions are :class:`~.winograd.WinogradConv2d`, each of which times Winograd F(4x4, 3x3)
against the direct convolution at first use and keeps the faster (about 1e-5 relative).

:class:`FastForward` checks the copy against the model itself on the first image of every call
(first with every Winograd convolution forced on, then, if that disagrees, with none), and on
its first batches times the copy against the model itself and keeps the faster: nothing is
decided by a fixed rule. It falls back to the model when no copy can be made (a model
``torch.fx`` cannot trace) or the copy disagrees. The copy and the decisions are cached per
model (:class:`Accelerated`, weakly keyed, so the cache never keeps a model alive) and rebuilt
when any of its parameters or buffers changed (new tensor, or an in-place update such as an
optimiser step) or it was moved.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..targets import OutputSelector, select_output, select_scores
from .stem import split_stem
from .trial import RUNS, Trial
from .winograd import WinogradConv2d, set_winograd_mode, use_winograd

SETTLE_CALLS = 1 + RUNS
"""Batches of a shape the copy runs alone first where it has Winograd convolutions, so that
they have decided (each runs both of its paths on its first ``1 + RUNS`` inputs of a shape)
before the copy is timed against the model."""

TRIAL_SLICE = 8
"""Images of each batch on which the copy and the model are timed against each other (the
copy runs the rest of the batch alone): the model's runs are the trial's only waste."""


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


def fingerprint(model: nn.Module) -> tuple[Any, ...]:
    """What a cached copy depends on: every parameter's and buffer's identity, storage,
    version counter (bumped by in-place updates), shape, dtype and device, and the modules'
    types in order."""
    tensors = tuple(
        (name, id(t), t.data_ptr(), t._version, tuple(t.shape), t.dtype, t.device)
        for name, t in model.state_dict(keep_vars=True).items()
    )
    return tensors, tuple(type(m) for m in model.modules())


@dataclass
class Accelerated:
    """A model's cached inference copy and the decisions measured for it.

    Attributes:
        fingerprint: :func:`fingerprint` of the model when the decisions were made.
        copy: the folded copy; held for the most recently used model only (a copy doubles the
            weights: 0.8 GB for VGG-16 with its Winograd filters), made again when needed.
        traceable: ``False`` once no copy could be made.
        winograd: whether the copy's Winograd convolutions passed the check (else they are
            set to ``"direct"``).
        notes: per-shape decisions: the copy-or-model :class:`~.trial.Trial` of batches of
            ``(C, H, W)`` images (key ``("copy or model", (C, H, W))``), each Winograd
            convolution's trials (``("winograd", name)``, kept across copies) and the callers'
            own (e.g. the linear stem's).
    """

    fingerprint: tuple[Any, ...]
    copy: nn.Module | None = None
    traceable: bool = True
    winograd: bool = False
    notes: dict[Hashable, Any] = field(default_factory=dict)


_CACHE: weakref.WeakKeyDictionary[nn.Module, Accelerated] = weakref.WeakKeyDictionary()


def accelerated(model: nn.Module, device: torch.device) -> Accelerated:
    """The cached :class:`Accelerated` of ``model`` (anew if the model changed), with its copy
    made if it has none; every other model's copy is let go."""
    stamp = fingerprint(model)
    entry = _CACHE.get(model)
    if entry is None or entry.fingerprint != stamp:
        entry = Accelerated(stamp)
        _CACHE[model] = entry
    if entry.copy is None and entry.traceable:
        for other, held in list(_CACHE.items()):
            if other is not model:
                held.copy = None
        entry.copy = inference_copy(model, device)
        entry.traceable = entry.copy is not None
        dtype = next((p.dtype for p in model.parameters()), torch.float32)
        if entry.copy is not None and device.type == "cpu" and dtype == torch.float32:
            use_winograd(entry.copy)
            for name, module in entry.copy.named_modules():
                if isinstance(module, WinogradConv2d):  # decisions outlive the copy
                    module.trials = entry.notes.setdefault(("winograd", name), {})
    return entry


def accelerated_entry(model: nn.Module) -> Accelerated | None:
    """``model``'s cached :class:`Accelerated`, if any (without checking it is current)."""
    return _CACHE.get(model)


def forget(model: nn.Module) -> None:
    """Drop ``model``'s cached copy and decisions (the next call measures again)."""
    _CACHE.pop(model, None)


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
        self.entry: Accelerated | None = None
        self._fast: nn.Module | None = None
        self._checked = False
        self._split: tuple[nn.Conv2d, nn.Module] | bool | None = None
        self._device = torch.device("cpu")
        self._image_shape: tuple[int, ...] = ()

    @property
    def uses_copy(self) -> bool:
        """Whether the folded copy is in use (known after the first call)."""
        return self._fast is not None

    @property
    def uses_winograd(self) -> bool:
        """Whether the copy in use may run convolutions as Winograd F(4x4, 3x3)."""
        return (
            self._fast is not None
            and self.entry is not None
            and self.entry.winograd
            and any(isinstance(m, WinogradConv2d) for m in self._fast.modules())
        )

    def note(self, key: Hashable) -> Any:
        """A caller's cached decision for this model (``None`` if none yet)."""
        return None if self.entry is None else self.entry.notes.get(key)

    def set_note(self, key: Hashable, value: Any) -> None:
        """Cache a caller's decision for this model (kept while the copy is)."""
        if self.entry is not None:
            self.entry.notes[key] = value

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

    def _copy_agrees(self, fast: nn.Module, probe: torch.Tensor, want: torch.Tensor) -> bool:
        try:
            got = select_output(fast(self._layout(probe)), self.output)
        except Exception:  # the copy does not run like the model
            return False
        return isinstance(got, torch.Tensor) and outputs_agree(got, want, self.dtype)

    def _prepare(self, batch: torch.Tensor) -> None:
        """Get the model's copy (cached) and keep it if it agrees with the model on one image:
        with Winograd forced on where it has Winograd convolutions, else with them off."""
        self._checked = True
        self._device = batch.device
        if not self.enabled:
            return
        probe = batch[:1]
        want = self._eager(probe)
        if not isinstance(want, torch.Tensor):  # detections: the model itself
            return
        entry = accelerated(self.model, batch.device)
        self.entry = entry
        fast = entry.copy
        if fast is None:
            return
        has_winograd = any(isinstance(m, WinogradConv2d) for m in fast.modules())
        if has_winograd:
            set_winograd_mode(fast, "winograd")
            entry.winograd = self._copy_agrees(fast, probe, want)
            set_winograd_mode(fast, "auto" if entry.winograd else "direct")
            if entry.winograd:
                self._fast = fast
                return
        if self._copy_agrees(fast, probe, want):
            self._fast = fast

    def _layout(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.device.type == "cpu" and batch.ndim == 4:
            return batch.contiguous(memory_format=torch.channels_last)
        return batch

    def _run_copy(self, batch: torch.Tensor) -> Any:
        assert self._fast is not None
        return select_output(self._fast(self._layout(batch)), self.output)

    def _choice(self, shape: tuple[int, ...]) -> str | None:
        """The decided path for images of ``shape``: ``"copy"`` or ``"model"``; ``None`` while
        undecided."""
        if self._fast is None or self.entry is None:
            return "model"
        if self._device.type != "cpu":
            return "copy"
        trial = self.entry.notes.get(("copy or model", shape))
        return trial.choice if isinstance(trial, Trial) else None

    def _trial(self, batch: torch.Tensor) -> Trial[Any] | None:
        """The trial of the copy against the model for batches of images shaped like
        ``batch``'s, made after the copy ran :data:`SETTLE_CALLS` of them (``None`` until then:
        run the copy)."""
        assert self.entry is not None
        key = ("copy or model", tuple(batch.shape[1:]))
        trial = self.entry.notes.get(key)
        if isinstance(trial, Trial):
            return trial
        settled = int(trial or 0) + 1
        if settled <= SETTLE_CALLS and self.uses_winograd:
            self.entry.notes[key] = settled
            return None
        trial = self.entry.notes[key] = Trial(("copy", "model"))
        return trial

    def prefers_copy(self) -> bool:
        """Whether the copy is in use and, once decided, chosen over the model."""
        return self._fast is not None and self._choice(self._image_shape) != "model"

    def decided(self) -> bool:
        """Whether the choice between the copy and the model is made (after the first call)."""
        return self._checked and self._choice(self._image_shape) is not None

    def __call__(self, batch: torch.Tensor) -> Any:
        """The selected output tensor for ``batch`` (inference mode, no hooks of ours)."""
        batch = batch.to(self.dtype)
        with torch.inference_mode():
            if not self._checked:
                self._prepare(batch)
            if self._fast is None:
                return self._eager(batch)
            self._image_shape = tuple(batch.shape[1:])
            choice = self._choice(self._image_shape)
            if choice is not None:
                return self._eager(batch) if choice == "model" else self._run_copy(batch)
            trial = self._trial(batch)
            if trial is None:
                return self._run_copy(batch)
            part, rest = batch[:TRIAL_SLICE], batch[TRIAL_SLICE:]
            paths = {"copy": lambda: self._run_copy(part), "model": lambda: self._eager(part)}
            first = trial.run(paths, part.shape[0])
            return first if rest.shape[0] == 0 else torch.cat([first, self._run_copy(rest)])
