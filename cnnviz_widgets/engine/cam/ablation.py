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

Cost: the ablated copies are injected by a forward hook on the layer, ``batch_size`` at a time
under ``torch.inference_mode``. The part of the network before the layer runs on the single
sample and only the part after it on the batch of copies (tensors from before the layer that
join later broadcast over the copies); if the model does not allow that (an error, a wrong
output batch, or an un-ablated copy that does not reproduce ``y``), every chunk runs the whole
network on ``batch_size`` copies of the input instead, as the reference does. A channel that
already equals the ablation value everywhere is not run: ablating it changes nothing, and its
activation is then 0 under the zero rule, so its weight cannot change the map.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..targets import Scores
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
        self._broadcast: bool | None = None
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
                ablated[n, index] = self._scores(run, layer, n, copies, original[n])
                run.progress.advance(count)
        return (original[:, None] - ablated) / original[:, None]

    def _scores(
        self, run: Run, layer: LayerData, n: int, copies: torch.Tensor, original: torch.Tensor
    ) -> torch.Tensor:
        """``(B,)`` target scores with the layer's output replaced by each of ``copies``."""
        count = copies.shape[0]
        target = run.required_targets[n]
        sample_x = run.x[n : n + 1]
        if self._broadcast is None:
            # First chunk: try the single-input path with one extra un-ablated copy as a check.
            check = torch.cat([copies, layer.output[n : n + 1]])
            try:
                outputs = forward_replacing(run, layer.module, sample_x, check)
                ok = len(outputs) == count + 1
                if ok:
                    scores = score_rows(outputs, target)
                    tol = 1e3 * torch.finfo(run.x.dtype).eps * max(1.0, abs(float(original)))
                    ok = abs(float(scores[-1]) - float(original)) <= tol
            except RuntimeError:
                ok = False
            self._broadcast = ok
            if ok:
                return scores[:-1]
        if self._broadcast:
            return score_rows(forward_replacing(run, layer.module, sample_x, copies), target)
        full_x = sample_x.expand(count, *sample_x.shape[1:])
        return score_rows(forward_replacing(run, layer.module, full_x, copies), target)
