"""The user's model is borrowed, never owned.

:func:`borrowed` snapshots what an engine call may touch and puts it back on exit, also when
the call raises: the ``training`` flag of every module, ``requires_grad`` and ``.grad`` of every
parameter, and the hooks registered on every module (any hook added during the call is removed).
Parameter values and buffers are never written by the engine (it runs in eval mode, so BatchNorm
running statistics do not move); tests check that bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from .models import check_model

# Every per-module hook dictionary that torch keeps; a hook is "left behind" when one of these
# has more entries after a call than before.
HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


@dataclass
class ModelState:
    """What an engine call may change on a model, captured so it can be restored."""

    training: dict[nn.Module, bool] = field(default_factory=dict)
    requires_grad: dict[nn.Parameter, bool] = field(default_factory=dict)
    grads: dict[nn.Parameter, torch.Tensor | None] = field(default_factory=dict)
    hooks: dict[tuple[nn.Module, str], set[int]] = field(default_factory=dict)

    @classmethod
    def snapshot(cls, model: nn.Module) -> ModelState:
        state = cls()
        for module in model.modules():
            state.training[module] = module.training
            for attr in HOOK_DICTS:
                hooks = getattr(module, attr, None)
                if hooks:
                    state.hooks[(module, attr)] = set(hooks.keys())
        for param in model.parameters():
            state.requires_grad[param] = param.requires_grad
            state.grads[param] = param.grad
        return state

    def restore(self, model: nn.Module) -> None:
        for module in model.modules():
            if module in self.training and module.training != self.training[module]:
                module.training = self.training[module]
            for attr in HOOK_DICTS:
                hooks = getattr(module, attr, None)
                if not hooks:
                    continue
                keep = self.hooks.get((module, attr), set())
                for key in [k for k in hooks if k not in keep]:
                    del hooks[key]
        for param in model.parameters():
            if param in self.requires_grad and param.requires_grad != self.requires_grad[param]:
                param.requires_grad_(self.requires_grad[param])
            if param in self.grads and param.grad is not self.grads[param]:
                param.grad = self.grads[param]


@contextmanager
def borrowed(
    model: nn.Module, *, eval_mode: bool = True, freeze: bool = True
) -> Iterator[nn.Module]:
    """Use ``model`` inside the block and give it back exactly as it was.

    Args:
        model: the user's model.
        eval_mode: switch every module to eval mode inside the block (dropout off, BatchNorm uses
            its running statistics and does not update them).
        freeze: set ``requires_grad=False`` on every parameter inside the block, so a forward
            pass records no graph for the weights and no weight gradient is ever computed;
            gradients are taken with respect to hooked activations or the input instead.
    """
    check_model(model)
    state = ModelState.snapshot(model)
    try:
        if eval_mode:
            model.eval()
        if freeze:
            for param in model.parameters():
                param.requires_grad_(False)
        yield model
    finally:
        state.restore(model)
