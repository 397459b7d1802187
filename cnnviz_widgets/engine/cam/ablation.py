"""AblationCAM (Desai & Ramaswamy 2020): channels weighted by the score drop when ablated.

For each sample and channel ``c``: replace the layer's output by a copy with channel ``c`` set
to the ablation value, finish the forward pass, and take ``w_c = (y - y_c) / y`` where ``y`` is
the unperturbed score and ``y_c`` the ablated one.

Ablation value (pytorch-grad-cam's ``AblationLayer``): 0 when the sample's activation minimum
is exactly 0 (the usual post-ReLU case); otherwise the reference writes ``min - 1e7`` into the
first copy of each batch of ``batch_size`` copies, and, because it recomputes the minimum of
the batch after every write, ``min - 2e7`` into the second, and so on. That rule is followed
exactly (float arithmetic in the activation dtype) so results match the reference at the same
``batch_size`` (its default is 32, as here). Option ``ablation_value=v`` sets every ablated
channel to ``v`` instead (``0.0`` is the paper's choice).

Cost: ``batch_size`` ablated copies at a time under ``torch.inference_mode``, by the first of
these ways that works for the model (checked on the first batch, which carries one extra
un-ablated copy that must reproduce ``y``; an error or a wrong output batch also moves on):

1. only the part of the network after the layer (:mod:`~cnnviz_widgets.engine.accel.tail`: the
   model traced with ``torch.fx`` and cut after the layer; the part before it runs once per
   sample, and the values it passes on are expanded over the copies), and where the layer's
   output reaches a ``Linear`` only through per-channel operations and a flatten (AlexNet's
   and VGG's classifier), that ``Linear`` by the ablated channel's block of inputs alone (also
   checked on two ablated copies of the first batch against the whole tail);
2. the whole model on the single sample with the layer's output replaced by the copies by a
   forward hook (the part before the layer runs once per batch, on one image; tensors from
   before the layer that join later broadcast over the copies);
3. the whole network on ``batch_size`` copies of the input, as the reference does.

A channel that already equals the ablation value everywhere is not run: ablating it changes
nothing, and its activation is then 0 under the zero rule, so its weight cannot change the map.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..accel.inference import outputs_agree
from ..accel.tail import Tail, split_after
from ..targets import Scores, select_scores
from .base import CamMethod, LayerData, Run, score_rows
from .errors import CamMethodError

ABLATION_OFFSET = 1e7
"""The reference's ``ABLATION_VALUE``: distance below the minimum for non-zero minima."""


def reference_values(sample: torch.Tensor, count: int) -> torch.Tensor:
    """Ablation values for positions ``0..count-1`` of one batch of copies, as the reference.

    ``sample`` is one sample's ``(C, h, w)`` layer output; the result has its dtype.
    """
    low = sample.min()
    if bool(low == 0):
        return torch.zeros(count, dtype=sample.dtype, device=sample.device)
    values = []
    current = low
    for _ in range(count):
        current = current - ABLATION_OFFSET
        values.append(current)
    return torch.stack(values)


def forward_replacing(
    run: Run, module: nn.Module, x: torch.Tensor, replacement: torch.Tensor
) -> Scores:
    """Model scores for input ``x`` with ``module``'s first output replaced by ``replacement``."""

    fired: list[bool] = []

    def hook(mod: nn.Module, inputs: tuple, output: object) -> torch.Tensor | None:
        if fired:
            return None
        fired.append(True)
        return replacement

    handle = module.register_forward_hook(hook)
    try:
        return run.forward(x)
    finally:
        handle.remove()


class AblationCAM(CamMethod):
    """Gradient-free; ``w_c = (y - y_c) / y`` (see module docstring)."""

    name = "AblationCAM"
    uses_gradients = False
    iterative = True
    defaults: ClassVar[dict[str, Any]] = {"ablation_value": None}

    def weights(self, layer: LayerData, run: Run) -> torch.Tensor:
        if run.reshape is not None and getattr(run.reshape, "changed", True):
            raise CamMethodError(
                "AblationCAM does not support reshape= yet: the ablated channels must be "
                "written back in the layer's own output layout."
            )
        output = layer.output
        n_samples, channels = output.shape[:2]
        original = run.required_target_values.to(output.device)
        ablated = original[:, None].repeat(1, channels)
        self._ways = ["one channel", "tail", "broadcast", "full"]
        self._checked = False
        self._tail_sample: int | None = None
        fixed = self.options["ablation_value"]
        for n in range(n_samples):
            sample = output[n]
            if fixed is None:
                zero_rule = bool(sample.min() == 0)
                value = 0.0 if zero_rule else None
            else:
                value = float(fixed)
            if value is not None:
                same = (sample == value).flatten(1).all(dim=1)
                run.progress.advance(int(same.sum()))
                todo = torch.nonzero(~same).flatten()
            else:
                todo = torch.arange(channels, device=output.device)
            for start in range(0, todo.numel(), run.batch_size):
                index = todo[start : start + run.batch_size]
                count = index.numel()
                if value is None:
                    values = reference_values(sample, count)
                else:
                    values = torch.full((count,), value, dtype=sample.dtype, device=sample.device)
                copies = sample.expand(count, *sample.shape).clone()
                copies[torch.arange(count, device=sample.device), index] = values[:, None, None]
                ablated[n, index] = self._scores(run, layer, n, copies, index, original[n])
                run.progress.advance(count)
        return (original[:, None] - ablated) / original[:, None]

    def _scores(
        self,
        run: Run,
        layer: LayerData,
        n: int,
        copies: torch.Tensor,
        index: torch.Tensor,
        original: torch.Tensor,
    ) -> torch.Tensor:
        """``(B,)`` target scores with the layer's output replaced by each of ``copies``
        (copy ``b`` has channel ``index[b]`` ablated)."""
        target = run.required_targets[n]
        while self._ways:
            way = self._ways[0]
            if self._checked:
                return score_rows(self._forward(way, run, layer, n, copies, index), target)
            # First batch: one extra un-ablated copy must reproduce the original score.
            check = torch.cat([copies, layer.output[n : n + 1]])
            tol = 1e3 * torch.finfo(run.x.dtype).eps * max(1.0, abs(float(original)))
            try:
                outputs = self._forward(way, run, layer, n, check, torch.cat([index, index[:1]]))
                ok = len(outputs) == check.shape[0]
                if ok:
                    scores = score_rows(outputs, target)
                    ok = abs(float(scores[-1]) - float(original)) <= tol
                if ok and way == "one channel":  # and two ablated copies the whole tail's
                    whole = self._forward("tail", run, layer, n, copies[:2], index)
                    some = score_rows(whole, target)
                    ok = outputs_agree(scores[: some.numel()], some, run.x.dtype)
            except Exception:  # this way does not run this model: the next one
                ok = False
            if ok:
                self._checked = True
                return scores[:-1]
            self._ways.pop(0)
        raise AssertionError("the whole network on copies of the input always applies")

    def _forward(
        self,
        way: str,
        run: Run,
        layer: LayerData,
        n: int,
        copies: torch.Tensor,
        index: torch.Tensor,
    ) -> Scores:
        """The model's scores for ``copies`` of the layer's output of sample ``n``, one way."""
        sample_x = run.x[n : n + 1]
        if way in ("one channel", "tail"):
            tail = self._tail_for(run, layer, n)
            if tail is None or (way == "one channel" and tail.linear is None):
                raise RuntimeError("the model cannot be cut after the layer this way")
            with torch.inference_mode():
                if way == "tail":
                    return select_scores(tail(copies), run.output)
                sample = layer.output[n : n + 1]
                return select_scores(tail.one_channel(sample, copies, index), run.output)
        if way == "broadcast":
            return forward_replacing(run, layer.module, sample_x, copies)
        full_x = sample_x.expand(copies.shape[0], *sample_x.shape[1:])
        return forward_replacing(run, layer.module, full_x, copies)

    def _tail_for(self, run: Run, layer: LayerData, n: int) -> Tail | None:
        """The model cut after the layer, prepared on sample ``n`` (cached per call)."""
        key = f"ablation_tail:{layer.name}"
        if key not in run.cache:
            run.cache[key] = split_after(run.model, layer.name)
        tail = run.cache[key]
        if tail is not None and tail.needs_sample and self._tail_sample != n:
            with torch.inference_mode():
                tail.prepare(run.x[n : n + 1])
            self._tail_sample = n
        return tail
