"""No leaks: 200 repeated engine calls and 200 explorer layer switches leave no hooks, no growth
of resident memory (<= 5 % after warm-up), no surviving tensors and no cache beyond its budget.

The probes (:func:`hook_total`, :func:`global_hooks`, :func:`rss_bytes`, :func:`live_tensors`,
:func:`engine_calls`, :func:`repeat`) are shared with ``benchmarks/bench_leaks.py``, which runs
the same on resnet50 at 224 px and writes the figures to ``benchmarks/results/leaks.json``.
"""

from __future__ import annotations

import gc
import os
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz_widgets.engine import feature_maps, kernels, saliency
from cnnviz_widgets.engine.cam import cam, cam_per_layer

CALLS = 200
WARMUP = 20
MAX_RSS_GROWTH = 0.05

# Per-module hook dictionaries of torch (the Fingerprint's HOOK_DICTS plus the side tables).
MODULE_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)


def hook_total(model: nn.Module) -> int:
    """Every per-module hook entry on ``model`` and its sub-modules."""
    return sum(len(getattr(m, attr, None) or {}) for m in model.modules()
               for attr in MODULE_HOOK_DICTS)


def global_hooks() -> dict[str, int]:
    """Sizes of torch's global module hook tables and of the torch-function mode stack."""
    import torch.nn.modules.module as module_mod

    sizes = {name: len(getattr(module_mod, name)) for name in dir(module_mod)
             if name.startswith("_global_") and isinstance(getattr(module_mod, name), dict)}
    sizes["torch_function_modes"] = int(torch._C._len_torch_function_stack())
    return sizes


def rss_bytes() -> int:
    """Resident set size of this process, from ``/proc/self/statm`` (pages -> bytes)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def live_tensors() -> int:
    """Number of ``torch.Tensor`` objects the garbage collector can see."""
    gc.collect()
    with warnings.catch_warnings():  # isinstance() on deprecated torch.distributed aliases
        warnings.simplefilter("ignore")
        return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))


def engine_calls(model: nn.Module, x: torch.Tensor, layers: list[str],
                 conv: str) -> dict[str, Callable[[], Any]]:
    """One zero-argument call per engine function, on ``layers`` (CAM) and ``conv`` (kernels)."""
    return {
        "feature_maps": lambda: feature_maps(model, x, layers),
        "cam_GradCAM": lambda: cam(model, x, layers[-1], "GradCAM", target=1),
        "cam_per_layer": lambda: cam_per_layer(model, x, layers, target=1),
        "saliency": lambda: saliency(model, x, target=1),
        "kernels": lambda: kernels(model, conv),
    }


@dataclass
class RepeatResult:
    """Figures of :func:`repeat`: RSS in bytes, counts, and seconds per call."""

    calls: int
    rss_after_warmup: int
    rss_after: int
    tensors_after_warmup: int
    tensors_after: int
    max_hooks: int
    globals_changed: bool
    seconds_per_call: float

    @property
    def rss_growth(self) -> float:
        return self.rss_after / self.rss_after_warmup - 1

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rss_growth": round(self.rss_growth, 5)}


def repeat(call: Callable[[], Any], model: nn.Module, calls: int, warmup: int,
           after_each: Callable[[], None] | None = None) -> RepeatResult:
    """``warmup`` calls, then ``calls`` calls, counting hooks after each and memory around."""
    import time

    hooks_before, globals_before = hook_total(model), global_hooks()
    for _ in range(warmup):
        call()
    tensors0 = live_tensors()
    rss0 = rss_bytes()
    max_hooks = 0
    start = time.perf_counter()
    for _ in range(calls):
        call()
        max_hooks = max(max_hooks, hook_total(model) - hooks_before)
        if after_each is not None:
            after_each()
    seconds = (time.perf_counter() - start) / max(calls, 1)
    tensors1 = live_tensors()
    return RepeatResult(calls, rss0, rss_bytes(), tensors0, tensors1, max_hooks,
                        global_hooks() != globals_before, seconds)


# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_net() -> nn.Module:
    from cnnviz_widgets.demo import demo_model

    return demo_model().model.eval()


NAMES = ["feature_maps", "cam_GradCAM", "cam_per_layer", "saliency", "kernels"]


@pytest.mark.parametrize("name", NAMES)
def test_repeated_engine_calls_leave_nothing_behind(demo_net, name):
    x = torch.randn(1, 3, 32, 32)
    call = engine_calls(demo_net, x, ["features.3", "features.9"], "features.3")[name]
    result = repeat(call, demo_net, CALLS, WARMUP)
    assert result.max_hooks == 0, "a call left hooks on the model"
    assert not result.globals_changed, "a call left a global hook or torch function mode"
    assert result.tensors_after <= result.tensors_after_warmup, "tensors survive the calls"
    assert result.rss_growth <= MAX_RSS_GROWTH, result.as_dict()
    assert hook_total(demo_net) == 0


def test_explorer_layer_switches_stay_within_budget_and_release_the_model():
    from cnnviz_widgets import LayerExplorer
    from cnnviz_widgets.demo.model import ShapesNet
    from cnnviz_widgets.widgets.recorder import Recorder

    torch.manual_seed(0)
    model = ShapesNet().eval()  # the demo network, 5 conv layers, 8 classes
    budget = 100_000  # below the 64 px image's feature maps of all layers together
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    ex = LayerExplorer(model, rgb, size=64, cache_bytes=budget, background=False)
    sent = Recorder(ex).sent
    layers = [info["name"] for info in ex.layers]
    cam_layers = list(ex.cam_layers)
    step = [0]

    def switch() -> None:
        i = step[0]
        step[0] += 1
        name = layers[i % len(layers)]
        ex.layer = name
        for rid, req in enumerate((
            {"kind": "features", "layer": name, "version": ex.image_version},
            {"kind": "kernels", "layer": name},
            {"kind": "cam", "layer": cam_layers[i % len(cam_layers)], "method": "GradCAM",
             "target": i % 8, "version": ex.image_version},
        )):
            ex._on_msg(ex, {"type": "request", "id": rid, "key": f"{i}-{rid}", **req}, [])
            assert sent[-1][0]["type"] == "reply", sent[-1][0]
        sent.clear()

    def within_budget() -> None:
        newest = max((r.nbytes for r in ex._cache._items.values()), default=0)
        assert ex._cache.nbytes <= max(budget, newest), ex._cache.nbytes
        assert ex._cache.nbytes == sum(r.nbytes for r in ex._cache._items.values())

    result = repeat(switch, model, CALLS, WARMUP, after_each=within_budget)
    assert result.max_hooks == 0 and not result.globals_changed
    assert result.rss_growth <= MAX_RSS_GROWTH, result.as_dict()
    assert result.tensors_after <= result.tensors_after_warmup + 5, result.as_dict()
    ref = weakref.ref(model)
    ex.close()
    del model
    gc.collect()
    assert ref() is None, "the closed explorer still holds the model"
