"""A fingerprint of everything an engine call must leave as it was on the user's model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnviz_widgets.engine.borrow import HOOK_DICTS


def hook_count(model: nn.Module) -> int:
    """Total hooks registered on every module of the model."""
    return sum(len(getattr(m, attr, {}) or {}) for m in model.modules() for attr in HOOK_DICTS)


@dataclass
class Fingerprint:
    training: list[bool]
    requires_grad: list[bool]
    grads: list[torch.Tensor | None]
    state: dict[str, torch.Tensor]
    hooks: int

    @classmethod
    def of(cls, model: nn.Module) -> Fingerprint:
        return cls(
            training=[m.training for m in model.modules()],
            requires_grad=[p.requires_grad for p in model.parameters()],
            grads=[None if p.grad is None else p.grad.clone() for p in model.parameters()],
            state={k: v.detach().clone() for k, v in model.state_dict().items()},
            hooks=hook_count(model),
        )

    def assert_same(self, model: nn.Module) -> None:
        now = Fingerprint.of(model)
        assert now.hooks == self.hooks, f"hooks left behind: {self.hooks} -> {now.hooks}"
        assert now.training == self.training, "train/eval flags changed"
        assert now.requires_grad == self.requires_grad, "requires_grad changed"
        assert len(now.grads) == len(self.grads)
        for before, after in zip(self.grads, now.grads, strict=True):
            if before is None:
                assert after is None, ".grad was set on a parameter"
            else:
                assert after is not None and torch.equal(before, after), ".grad changed"
        assert now.state.keys() == self.state.keys()
        for key, value in self.state.items():
            assert torch.equal(value, now.state[key]), f"parameter/buffer {key} changed"
