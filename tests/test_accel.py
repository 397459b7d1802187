"""The accelerated paths of ``engine/accel`` against the plain model, on several model families.

Every path (the folded channels-last copy, Winograd convolutions, the linear stem, the
AblationCAM tail) must give the plain model's outputs. Which path runs is decided by timing
(:class:`~cnnviz_widgets.engine.accel.trial.Trial`), so the tests force each verdict
(``prefer``) and check both that the path was taken and that the outputs are the model's:
the scores of masked images and ScoreCAM's raw maps (ScoreCAM), the ablated scores and maps
(AblationCAM), on residual, inverted-residual, grouped, squeeze-excitation and dense networks
(random weights, BatchNorm statistics randomised so that folding changes the numbers).
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from cnnviz_widgets.engine.accel import describe, forget, trial
from cnnviz_widgets.engine.accel.inference import FastForward, accelerated, accelerated_entry
from cnnviz_widgets.engine.accel.masked import MaskedForward
from cnnviz_widgets.engine.accel.tail import split_after
from cnnviz_widgets.engine.accel.trial import Trial
from cnnviz_widgets.engine.accel.winograd import WinogradConv2d
from cnnviz_widgets.engine.cam import cam
from cnnviz_widgets.engine.cam.ablation import AblationCAM
from cnnviz_widgets.engine.cam.score import MASK_EPS, same_masks, upsample, upsampled_range

FAMILIES = {
    # family: (torchvision constructor, ScoreCAM layer with small maps at 32 px, channels)
    "residual": ("resnet18", "layer2"),
    "inverted-residual": ("mobilenet_v2", "features.7"),
    "grouped": ("shufflenet_v2_x0_5", "stage3"),
    "squeeze-excitation": ("regnet_y_400mf", "trunk_output.block2"),
    "dense": ("densenet121", "features.transition1.conv"),
}
SIDE = 32
FAST = frozenset({"copy", "winograd", "stem"})
PLAIN = frozenset({"model", "direct", "conv"})


def family_model(name: str) -> nn.Module:
    """A seeded torchvision model with random BatchNorm statistics (eval mode)."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    return {family: family_model(name) for family, (name, _) in FAMILIES.items()}


@pytest.fixture
def prefer(monkeypatch):
    """``prefer(names)``: every trial decides for the first of its candidates in ``names``."""

    def set_preference(names: frozenset[str]) -> None:
        def decide(self: Trial) -> str:
            return next((n for n in self.names if n in names), self.names[0])

        monkeypatch.setattr(Trial, "decide", decide)

    return set_preference


def layer_maps(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """``(C, h, w)`` float32 output of ``layer`` for the first image."""
    seen: list[torch.Tensor] = []
    handle = model.get_submodule(layer).register_forward_hook(
        lambda m, i, o: seen.append(o.detach())
    )
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen[0][0].float()


def image(seed: int = 2) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(1, 3, SIDE, SIDE)


# ---------------------------------------------------------------------------------------------
# Trial


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(trial, "clock", fake)
    return fake


def costing(clock: Clock, seconds: dict[str, list[float]], ran: list[str]):
    """Candidates that advance the clock by their next listed cost and return their name."""

    def make(name: str):
        def fn() -> str:
            ran.append(name)
            costs = seconds[name]
            clock.now += costs.pop(0) if len(costs) > 1 else costs[0]
            return name

        return fn

    return {name: make(name) for name in seconds}


def test_trial_runs_all_on_the_same_work_then_only_the_fastest(clock):
    ran: list[str] = []
    fns = costing(clock, {"a": [1.0], "b": [0.7], "c": [0.9]}, ran)
    t = Trial(("a", "b", "c"))
    outputs = [t.run(fns, items=2) for _ in range(6)]
    assert t.choice == "b"
    assert outputs[:4] == ["a"] * 4  # the preferred candidate's output while timing
    assert ran[:12].count("a") == ran[:12].count("b") == ran[:12].count("c") == 4
    assert ran[12:] == ["b", "b"] and outputs[4:] == ["b", "b"]
    assert t.seconds["a"] == [0.5] * 4  # per item


def test_trial_ignores_the_warm_up_round_and_runs_slowed_by_other_processes(clock):
    """The warm-up round (slow for "a") is left out, and so is each candidate's slowest timed
    run: load from other processes only ever adds time, so the fastest run is the measure."""
    ran: list[str] = []
    fns = costing(clock, {"a": [9.0, 1.0, 3.0, 5.0], "b": [1.0, 4.0, 1.1, 1.2]}, ran)
    t = Trial(("a", "b"))
    for _ in range(3):
        t.run(fns)
    assert t.choice is None  # 1.1 after two timed rounds: not clear, a third round is run
    t.run(fns)
    assert t.ratios()["b"] == pytest.approx(1.1)
    assert t.best() == {"a": pytest.approx(1.0), "b": pytest.approx(1.1)}
    assert t.choice == "a"


def test_trial_margin_and_overhead(clock):
    ran: list[str] = []
    margin = Trial(("a", "b"), margin=0.9)
    fns = costing(clock, {"a": [1.0], "b": [0.95]}, ran)
    for _ in range(4):
        margin.run(fns)
    assert margin.choice == "a"  # 5% faster is not enough
    overhead = Trial(("a", "b"), overhead={"b": 0.5})
    fns = costing(clock, {"a": [1.0], "b": [0.6]}, ran)
    for _ in range(4):
        overhead.run(fns)
    assert overhead.ratios()["b"] == pytest.approx(1.1)
    assert overhead.choice == "a"  # faster per item, but not once its set-up is counted


def test_trial_stops_early_on_a_clear_verdict(clock):
    ran: list[str] = []
    fns = costing(clock, {"a": [1.0], "b": [3.0]}, ran)
    t = Trial(("a", "b"))
    t.run(fns)
    t.run(fns)
    assert t.choice is None  # one timed round is never enough
    t.run(fns)  # warm-up and two timed rounds: b is 3x slower
    assert t.choice == "a" and len(ran) == 6


# ---------------------------------------------------------------------------------------------
# ScoreCAM: the copy, Winograd and the stem against the plain model


def masked_outputs(model: nn.Module, x: torch.Tensor, layer: str, rounds: int, batch: int):
    """The masked forward's outputs and the model's own for ``rounds`` batches of masks (the
    layer's live channels, cycled) on the first image; also the scorer."""
    maps = layer_maps(model, x, layer)
    size = (SIDE, SIDE)
    low, high = upsampled_range(maps, size)
    live = torch.nonzero(high > low).flatten()
    forward = FastForward(model, None, torch.float32, enabled=True)
    masked = MaskedForward(forward, x[0], upsample, MASK_EPS, rounds * batch)
    got, want = [], []
    for r in range(rounds):
        index = live[torch.arange(r * batch, (r + 1) * batch) % live.numel()]
        got.append(masked(maps[index], low[index], high[index]))
        with torch.no_grad():
            want.append(model(masked.masked(maps[index], low[index], high[index])))
    return torch.cat(got), torch.cat(want), forward, masked


def winograd_choices(forward: FastForward) -> list[bool]:
    assert forward.entry is not None and forward.entry.copy is not None
    return [
        t.choice == "winograd"
        for m in forward.entry.copy.modules()
        if isinstance(m, WinogradConv2d)
        for t in m.trials.values()
    ]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fast_paths_give_the_models_scores_of_masked_images(family, models, prefer):
    model = models[family]
    forget(model)
    prefer(FAST)
    got, want, forward, masked = masked_outputs(model, image(), FAMILIES[family][1], 12, 8)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    assert forward.uses_copy and forward.prefers_copy()
    assert masked.stem is not None  # the stem was built, checked and kept
    assert "stem" in describe(model)
    if family in ("residual", "dense"):  # they have ungrouped 3x3 stride-1 convolutions
        assert forward.uses_winograd and any(winograd_choices(forward))


@pytest.mark.parametrize("family", ["residual", "squeeze-excitation"])
def test_plain_verdicts_give_the_models_scores_too(family, models, prefer):
    model = models[family]
    forget(model)
    prefer(PLAIN)
    got, want, forward, masked = masked_outputs(model, image(), FAMILIES[family][1], 10, 8)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    assert not forward.prefers_copy() and masked.stem is None
    if family == "residual":
        assert not any(winograd_choices(forward))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_scorecam_raw_maps_equal_the_plain_models(family, models, prefer):
    """Cold (trials run during the call) and cached (the next call reuses the verdicts)."""
    model = models[family]
    forget(model)
    prefer(FAST)
    x = torch.cat([image(3), image(4)]) if family == "residual" else image(3)
    layer = FAMILIES[family][1]
    plain = cam(model, x, layer, "ScoreCAM", raw=True, fuse=False, batch_size=8)
    for _ in range(2):
        fast = cam(model, x, layer, "ScoreCAM", raw=True, batch_size=8)
        np.testing.assert_allclose(fast, plain, rtol=1e-4, atol=1e-5 * float(plain.max()))
    assert "copy" in describe(model)


def test_a_disagreeing_stem_is_dropped_for_the_model(models, prefer, monkeypatch):
    from cnnviz_widgets.engine.accel.stem import LinearStem

    model = models["residual"]
    forget(model)
    prefer(FAST)
    real = LinearStem.__call__
    monkeypatch.setattr(LinearStem, "__call__", lambda self, *a: real(self, *a) + 1.0)
    got, want, forward, masked = masked_outputs(model, image(), "layer2", 10, 8)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    assert masked.stem is None
    assert forward.note(("stem", (SIDE, SIDE), (4, 4))) is False


# ---------------------------------------------------------------------------------------------
# The per-model cache


def test_the_cache_follows_the_models_parameters():
    model = family_model("resnet18")
    first = accelerated(model, torch.device("cpu"))
    assert accelerated(model, torch.device("cpu")) is first
    with torch.no_grad():
        model.fc.bias.add_(1.0)  # in place, as an optimiser step
    second = accelerated(model, torch.device("cpu"))
    assert second is not first
    with torch.no_grad():
        x = image()
        second.copy.eval()
        torch.testing.assert_close(
            second.copy(x.contiguous(memory_format=torch.channels_last)),
            model(x),
            rtol=1e-4,
            atol=1e-4,
        )


def test_only_the_latest_models_copy_is_held_and_decisions_outlive_it():
    a, b = family_model("resnet18"), family_model("shufflenet_v2_x0_5")
    first = accelerated(a, torch.device("cpu"))
    trials = first.notes[("winograd", "layer1.0.conv1")]
    trials["marker"] = Trial(("direct", "winograd"))  # stands for a decision made earlier
    assert first.copy is not None
    accelerated(b, torch.device("cpu"))
    assert first.copy is None  # let go: it doubles a's weights
    again = accelerated(a, torch.device("cpu"))
    assert again is first and again.copy is not None
    conv = again.copy.get_submodule("layer1.0.conv1")
    assert isinstance(conv, WinogradConv2d) and conv.trials is trials
    assert accelerated_entry(b).copy is None


def test_the_cache_does_not_keep_the_model_alive():
    model = family_model("shufflenet_v2_x0_5")
    cam(model, image(), "stage3", "ScoreCAM", batch_size=32)
    assert accelerated_entry(model) is not None
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


# ---------------------------------------------------------------------------------------------
# AblationCAM: only the part of the network after the layer


@pytest.mark.parametrize(
    ("name", "layer"),
    [
        ("resnet18", "layer3"),
        ("mobilenet_v2", "features.10"),
        ("densenet121", "features.denseblock2"),
        ("regnet_y_400mf", "trunk_output.block3"),
        ("vgg11", "features.10"),
    ],
)
def test_the_tail_gives_the_models_output(name, layer):
    model = family_model(name)
    tail = split_after(model, layer)
    assert tail is not None and not tail.needs_sample
    x = image()
    with torch.inference_mode():
        out = layer_maps(model, x, layer)[None]
        torch.testing.assert_close(tail(out.expand(3, -1, -1, -1)), model(x).expand(3, -1))


class Skip(nn.Module):
    """The layer's input is added back after it: the tail needs a value from before."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        s = self.stem(x)
        return self.head((self.block(s) + s).mean((2, 3)))


def test_the_tail_expands_values_from_before_the_layer():
    model = Skip().eval()
    tail = split_after(model, "block")
    assert tail is not None and tail.needs_sample
    x = image()
    with torch.inference_mode():
        out = tail.prepare(x)
        torch.testing.assert_close(out, model.block(model.stem(x)))
        copies = out.expand(2, -1, -1, -1).clone()
        copies[1, 3] = 0.0
        got = tail(copies)
        want = model.head((copies + model.stem(x)).mean((2, 3)))
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize(("name", "layer"), [("vgg11_bn", "features"), ("alexnet", "features")])
def test_one_channel_through_the_linear_equals_the_whole_tail(name, layer):
    """Copies ablating channels in any order, one copy unchanged, one channel set to a
    non-zero value: the ``Linear`` by the changed block equals running the tail on them."""
    model = family_model(name)
    tail = split_after(model, layer)
    assert tail is not None and tail.linear is not None
    side = 32 if name.startswith("vgg") else 64
    torch.manual_seed(8)
    x = torch.rand(1, 3, side, side)
    with torch.inference_mode():
        sample = layer_maps(model, x, layer)[None]
        channels = torch.tensor([5, 0, 3, 7, 2])
        copies = sample.expand(5, -1, -1, -1).clone()
        copies[torch.arange(4), channels[:4]] = 0.0
        copies[4, 2] = -3.5  # the fifth copy: channel 2 set to a non-zero value
        got = tail.one_channel(sample, copies, channels)
        want = tail(copies)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))
        unchanged = tail.one_channel(sample, sample, torch.tensor([1]))
        torch.testing.assert_close(unchanged, model(x), rtol=1e-4, atol=1e-5)


class InPlace(nn.Module):
    """The layer is followed by an in-place ReLU, then pooling, a flatten and a ``Linear``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(9)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(6 * 4, 3)

    def forward(self, x):
        pooled = nn.functional.adaptive_avg_pool2d(self.relu(self.conv(x)), 2)
        return self.fc(torch.flatten(pooled, 1))


def test_ablation_through_an_in_place_relu_leaves_the_layer_output_alone(monkeypatch):
    """The shortcut's per-channel part runs on copies: the in-place ReLU must not clamp the
    layer's recorded output (the map's activations), as running the whole network does not."""
    model = InPlace().eval()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(10))
    shortcut = cam(model, x, "conv", "AblationCAM", raw=True)
    real = AblationCAM._forward
    monkeypatch.setattr(AblationCAM, "_forward", lambda self, way, *a: real(self, "full", *a))
    whole = cam(model, x, "conv", "AblationCAM", raw=True)
    np.testing.assert_allclose(shortcut, whole, rtol=1e-4, atol=1e-6 * float(np.abs(whole).max()))


def test_no_linear_shortcut_through_a_mixing_operation():
    """ResNet's ``layer3`` reaches ``fc`` through convolutions: no shortcut."""
    tail = split_after(family_model("resnet18"), "layer3")
    assert tail is not None and tail.linear is None
    tail = split_after(family_model("resnet18"), "layer4")  # avgpool, flatten, fc
    assert tail is not None and tail.linear is not None


def test_the_tail_refuses_what_it_cannot_cut():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return self.conv(self.conv(x)).mean((1, 2, 3))

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            if float(x.sum()) > 0:  # data-dependent: fx cannot trace it
                return self.conv(x).mean((2, 3))
            return x.mean((2, 3))

    assert split_after(Twice(), "conv") is None
    assert split_after(Branchy(), "conv") is None


@pytest.mark.parametrize(
    ("name", "layer", "side", "way"),
    [
        ("resnet18", "layer3", 32, "tail"),
        ("densenet121", "features", 32, "one channel"),
        ("alexnet", "features", 64, "one channel"),
    ],
)
def test_ablationcam_on_the_tail_equals_the_whole_network(name, layer, side, way, monkeypatch):
    """The same weights whichever way the copies run (densenet's ``features`` ends in a
    BatchNorm, so its minimum is not 0: the reference's ``min - k * 1e7`` values). After
    densenet's and AlexNet's ``features`` come only per-channel operations, a flatten and a
    ``Linear``: the ablated channel's block of it suffices."""
    model = family_model(name)
    torch.manual_seed(6)
    x = torch.rand(2, 3, side, side)
    used: list[str] = []
    real = AblationCAM._forward

    def spy(self, way, *args):
        used.append(way)
        return real(self, way, *args)

    monkeypatch.setattr(AblationCAM, "_forward", spy)
    tail = cam(model, x, layer, "AblationCAM", raw=True)
    # the ways are tried in order on the first batch (one checks "one channel" against "tail");
    # the last batch ran the way kept
    assert used[-1] == way and set(used) <= {"one channel", "tail"}
    used.clear()
    monkeypatch.setattr(
        AblationCAM, "_forward", lambda self, way, *args: spy(self, "full", *args)
    )
    whole = cam(model, x, layer, "AblationCAM", raw=True)
    assert set(used) == {"full"}
    np.testing.assert_allclose(tail, whole, rtol=1e-4, atol=1e-5 * float(np.abs(whole).max()))


# ---------------------------------------------------------------------------------------------
# ScoreCAM: one masked pass per group of the same mask


def test_same_masks_groups_maps_equal_up_to_scale_and_offset():
    maps = torch.tensor(
        [
            [[0.0, 1.0], [0.0, 0.0]],  # one position ...
            [[0.0, 3.0], [0.0, 0.0]],  # ... the same one, another value: the same tent
            [[1.0, 2.0], [3.0, 4.0]],
            [[2.0, 4.0], [6.0, 8.0]],  # 2 A
            [[3.0, 4.0], [5.0, 6.0]],  # A + 2
            [[0.0, 0.0], [0.0, 5.0]],  # another position
            [[1.0, 2.0], [3.0, 5.0]],  # not affine in the third
            [[4.0, 3.0], [2.0, 1.0]],  # -A + 5: a negative scale is another mask
        ]
    )
    first, group = same_masks(maps)
    assert group[0] == group[1] and group[2] == group[3] == group[4]
    assert len({int(group[i]) for i in (0, 2, 5, 6, 7)}) == 5
    assert first.numel() == 5
    for g, i in enumerate(first.tolist()):
        assert int(group[i]) == g and i == int(torch.nonzero(group == g)[0])  # the first one


class Spots(nn.Module):
    """Keeps channel ``c < 24`` at grid position ``c % 4`` only; channels 24 and 25 whole."""

    def __init__(self) -> None:
        super().__init__()
        mask = torch.ones(26, 2, 2)
        mask[:24] = 0.0
        for c in range(24):
            mask[c].view(-1)[c % 4] = 1.0
        self.register_buffer("mask", mask)

    def forward(self, z):
        return z * self.mask


class OneHotNet(nn.Module):
    """Its layer ``spots``: 26 positive channels on a 2x2 grid, 24 of them active at one
    position each (six per position, each with its own value)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(11)
        self.conv = nn.Conv2d(3, 26, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.spots = Spots()
        self.head = nn.Linear(26 * 4, 5)

    def forward(self, x):
        return self.head(self.spots(self.pool(self.conv(x)).abs() + 0.1).flatten(1))


def test_scorecam_runs_one_pass_per_group_and_equals_the_plain_model(monkeypatch):
    model = OneHotNet().eval()
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(12))
    sizes: list[int] = []
    real = MaskedForward.__call__

    def spy(self, maps, low, high):
        sizes.append(maps.shape[0])
        return real(self, maps, low, high)

    monkeypatch.setattr(MaskedForward, "__call__", spy)
    fast = cam(model, x, "spots", "ScoreCAM", raw=True)
    assert sum(sizes) == 4 + 2  # four one-position groups, the two whole channels
    sizes.clear()
    plain = cam(model, x, "spots", "ScoreCAM", raw=True, fuse=False)
    assert sum(sizes) == 26
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-7 * float(plain.max()))
