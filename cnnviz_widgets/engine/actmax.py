"""Activation maximization: images that make chosen channels of a layer fire strongly.

Gradient ascent on the input image, all requested channels of one layer at once as one batch
(item ``i`` of the batch maximises channel ``channels[i]``; the objective is the sum over items
of the mean activation of their channel). Two modes:

* ``regularize=False`` follows FlashTorch's ``GradientAscent`` (Ogura, 2019): the image is
  optimised directly in the model's (normalised) input space, starting from uniform noise
  (integers 150..179 out of 255, normalised with ``mean``/``std``), with ``steps`` updates
  ``x += lr * g / (rms(g) + 1e-5)`` where ``g`` is the input gradient of the objective and
  ``rms`` is taken per image; the result is shown the way FlashTorch shows it: standardised per
  image over all values, times 0.15, plus 0.7, clipped to [0, 1]. Defaults: 224 px, 30 steps,
  ``lr`` 1.0. FlashTorch's flaws are not reproduced: it accumulates ``.grad`` on the weights,
  leaves its hooks on the model, does not switch it to eval mode, runs the whole network, keeps
  the graph of every earlier step alive, reads the image gradient through a (deprecated)
  backward hook on the first 3-channel conv (wrong when the image does not go straight into
  it), accepts a filter index one past the last, and cannot be seeded.
* ``regularize=True`` (default) in the manner of Lucid/Lucent (Olah et al., 2017): the image is
  parameterised by a Fourier spectrum scaled by ``1/f`` in decorrelated colour space, mapped to
  RGB with the ImageNet colour-correlation matrix and a sigmoid (so pixels are in [0, 1]), and
  each step shows the model a randomly padded, jittered, scaled and rotated copy (normalised
  with ``mean``/``std``), optimised with Adam. Defaults: 128 px, 256 steps, ``lr`` 0.05. The
  start spectrum has standard deviation
  :data:`~cnnviz_widgets.engine.actmax_transforms.SPECTRUM_INIT_STD` (0.1, Lucid's is 0.01; see
  there why). The parameterisation and transforms are in :mod:`.actmax_transforms`.

A channel whose gradient is exactly zero at every step (dead behind a ReLU for every image
tried) keeps its start image; :class:`ActivationMaxWarning` names it.

Randomness is per channel: the start image and the random transforms of batch item ``i`` come
from a generator seeded by ``(seed, channels[i])``, so a channel's image does not depend on
which other channels are optimised with it.

The forward pass stops at the layer, and the model runs borrowed (eval mode, parameters frozen)
and is left exactly as it was. With ``fuse=True`` (default) the forward and backward passes run
on :func:`layer_copy`: the part of the model before the layer, copied with every BatchNorm
folded into the convolution before it and channels-last weights on the CPU
(:func:`~cnnviz_widgets.engine.accel.inference.inference_copy`). It is used when its layer
output for the first image agrees with the model's; else, or when ``torch.fx`` cannot trace the
model, the model itself runs, with a hook that records the layer's output and ends the pass.
The copy's weights are freed when the call returns.

In exact arithmetic each image is what optimising its channel alone gives, on the copy or on the
model. In floating point the folding and the batch size change the rounding (about 1e-6
relative per pass in float32), and gradient ascent can amplify it: a ReLU or max-pool decision
at a rounding-sized tie flips, or Adam divides a gradient entry at rounding level by its own
size, and the two runs part from there. ``tests/test_actmax.py`` checks, on resnet18, vgg11_bn
and mobilenet_v2 in both modes: in float64, the batch on the copy, each channel alone and the
batch on the model agree to the float32 rounding of the result (1e-6) after 5 steps; in float32,
one step of the batch on the copy differs from the channel alone on the model by at most 1e-3
of how far the image moved (RMS; measured up to 8e-6), and display images by at most one level.

Cost: each step is one forward pass to the layer and one backward pass to the image for the
whole batch (only the input gradient: the weights are frozen); 8 channels cost about 8 times the
arithmetic of one, so batching saves the per-step overhead, not the convolutions
(``benchmarks/bench_actmax.py``, ``benchmarks/results/actmax.json``).
"""

from __future__ import annotations

import contextlib
import gc
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from .accel.inference import inference_copy, outputs_agree
from .actmax_transforms import (
    draw_transforms,
    fft_scale,
    spectrum_to_rgb,
    start_spectrum,
    transform,
)
from .borrow import borrowed
from .capture import LayerNotExecutedError, LayerOutputError
from .devices import model_device, model_dtype
from .inputs import IMAGENET_MEAN, IMAGENET_STD, check_normalization, expected_channels, normalize
from .layers import LayerRef, resolve_layer

Progress = Callable[[int, int], Any]

# FlashTorch's GradientAscent defaults.
PLAIN_DEFAULTS = {"steps": 30, "lr": 1.0, "size": 224}
# Lucid/Lucent-style defaults.
REGULARIZED_DEFAULTS = {"steps": 256, "lr": 0.05, "size": 128}


class ActivationMaxWarning(UserWarning):
    """Some channels received no gradient at all, so their images did not change."""


class _LayerReached(Exception):
    """Raised by the layer hook to end the forward pass once the layer's output is recorded."""


def activation_max(
    model: nn.Module,
    layer: LayerRef,
    channels: int | Sequence[int],
    steps: int | None = None,
    lr: float | None = None,
    size: int | None = None,
    regularize: bool = True,
    seed: int | None = None,
    progress: Progress | None = None,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    raw: bool = False,
    fuse: bool = True,
) -> np.ndarray:
    """Images that maximise the mean activation of ``channels`` of ``layer``.

    Args:
        model: the network (left exactly as it was). It takes 3-channel images normalised with
            ``mean``/``std``, or grey one-channel images (one ``mean`` and ``std`` value; plain
            mode only: the regularised parameterisation is RGB).
        layer: name or module of any layer whose output is ``(N, C, ...)`` (a conv, a block, a
            ReLU, a linear layer for class logits, ...).
        channels: one channel index or a sequence of them, optimised together as one batch.
        steps: number of gradient steps (default 30 plain, 256 regularised); 0 returns the
            start image.
        lr: step size (default 1.0 plain, in normalised input units per RMS-normalised
            gradient; 0.05 regularised, Adam's learning rate).
        size: side of the square image in pixels (default 224 plain, 128 regularised).
        regularize: Lucid-style parameterisation and transforms (True) or FlashTorch's plain
            gradient ascent (False); see the module docstring.
        seed: makes the result reproducible (with ``seed`` None a seed is drawn from torch's
            global generator). Non-negative int.
        progress: called as ``progress(step, total)`` after each step (``step`` from 1).
        mean, std: the per-channel normalisation the model expects (ImageNet's by default).
        raw: return the final model input instead of display images (see Returns).
        fuse: run the passes on :func:`layer_copy` where it agrees with the model (see the
            module docstring); False runs the model itself.

    Returns:
        ``(len(channels), size, size, 3)`` uint8 RGB images (grey for a grey model); with
        ``raw=True`` the final model input, ``(len(channels), C, size, size)`` float32
        normalised with ``mean``/``std``
        (for the regularised mode the untransformed image).

    Raises:
        LayerNotFoundError, LayerNotExecutedError, LayerOutputError: a bad layer.
        ValueError: a channel out of range, a bad size/steps/seed, a model that takes neither
            3 nor 1 channel(s), a grey model in the regularised mode, ``mean``/``std`` that do
            not fit the model's channels.
    """
    name, module = resolve_layer(model, layer)
    chans = _channels(channels)
    defaults = REGULARIZED_DEFAULTS if regularize else PLAIN_DEFAULTS
    steps = int(defaults["steps"] if steps is None else steps)
    lr = float(defaults["lr"] if lr is None else lr)
    size = int(defaults["size"] if size is None else size)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}.")
    if size < 8:
        raise ValueError(f"size must be at least 8 px, got {size}.")
    want = expected_channels(model)
    if want == 1 and regularize:
        raise ValueError(
            f"{type(model).__name__}'s first convolution takes 1 channel (a grayscale model): "
            "the regularised mode makes RGB images (its colours are decorrelated like "
            "ImageNet's); use regularize=False (FlashTorch's gradient ascent) with one mean and "
            "std value."
        )
    if want not in (None, 1, 3):
        raise ValueError(
            f"activation_max makes RGB or grey images, but {type(model).__name__}'s first "
            f"convolution takes {want} channel(s)."
        )
    check_normalization(model, mean, std)
    generators = _generators(seed, chans)
    device, dtype = model_device(model), model_dtype(model)
    run = _optimise_regularized if regularize else _optimise_plain
    with borrowed(model), torch.inference_mode(False), torch.enable_grad():
        objective = _Objective(_LayerProbe(model, module), name, chans, fuse=fuse and steps > 0)
        try:
            model_input, shown = run(
                objective, steps, lr, size, generators, progress, mean, std, device, dtype
            )
        finally:
            objective.close()
    if raw:
        return model_input.detach().to("cpu", torch.float32).numpy()
    return to_uint8(shown)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` (or ``(N, 1, H, W)``: grey) floats in [0, 1] -> ``(N, H, W, 3)`` uint8
    (``round(v * 255)``)."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    u8 = images.detach().to("cpu", torch.float32).mul(255).round().clamp(0, 255).to(torch.uint8)
    return u8.permute(0, 2, 3, 1).contiguous().numpy()


def layer_copy(model: nn.Module, name: str, device: torch.device) -> nn.Module | None:
    """A copy of ``model`` from its input to the output of the first call of the layer ``name``,
    for fast forward and backward passes.

    The model is traced (``torch.fx``; nothing runs) and its graph cut after the last node
    traced inside the layer's first call; the cut graph goes through
    :func:`~cnnviz_widgets.engine.accel.inference.inference_copy` (a deep copy with every
    BatchNorm folded into the convolution before it, channels-last weights on the CPU), so only
    the part of the model before the layer is copied, and a convolution that is the layer keeps
    its own output (its BatchNorm, after the cut, is not folded into it). Parameters frozen; the
    user's model is not touched.

    Returns:
        The copy (on the CPU, feed it channels-last input), or ``None`` when the model cannot be
        traced or the layer left no node in the graph (a layer inside a module that ``torch.fx``
        does not trace through). Whether it computes what the layer outputs is for the caller
        to check: the last node traced inside a module is almost always its output, not always.
    """
    with _cycles_collected():
        copy_ = _cut_and_copy(model, name, device)
    if copy_ is None or _storages(copy_) & _storages(model):
        return None  # no copy, or not a copy: it must never be changed or freed (_release)
    copy_.requires_grad_(False)
    return copy_


def _cut_and_copy(model: nn.Module, name: str, device: torch.device) -> nn.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = fx.symbolic_trace(model)
    except Exception:  # data-dependent control flow, untraceable calls: no copy
        return None
    last = None
    for node in traced.graph.nodes:
        if name in (node.meta.get("nn_module_stack") or {}):  # '<name>@1', ...: later calls
            last = node
        elif last is not None:
            break
    if last is None or last.op in ("placeholder", "output"):
        return None
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in traced.graph.nodes:
        env[node] = graph.node_copy(node, env.__getitem__)
        if node is last:
            break
    graph.output(env[last])
    return inference_copy(fx.GraphModule(traced, graph), device)


@contextlib.contextmanager
def _cycles_collected() -> Iterator[None]:
    """Frees the reference cycles left behind in the block. ``torch.fx`` modules refer to their
    graphs and back, so the deep copy that the folding makes of the cut module (as large as the
    model's part before the layer) would otherwise live until Python's next full collection,
    which in a long session may be far off. Automatic collection pauses in the block, so what it
    makes stays in the youngest generation, and collecting that generation alone visits only
    those objects (milliseconds)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect(0)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _channels(channels: int | Sequence[int]) -> list[int]:
    items = [channels] if isinstance(channels, (int, np.integer)) else list(channels)
    if not items:
        raise ValueError("channels is empty; give at least one channel index.")
    out = []
    for c in items:
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0:
            raise ValueError(f"channel indices must be non-negative ints, got {c!r}.")
        out.append(int(c))
    return out


def _warn_stalled(channels: list[int], alive: torch.Tensor, steps: int) -> None:
    """Warn about batch items whose gradient was exactly zero at every step."""
    stalled = [c for c, ok in zip(channels, alive.tolist(), strict=True) if not ok]
    if steps > 0 and stalled:
        warnings.warn(
            f"activation_max: channel(s) {', '.join(map(str, stalled))} received a zero "
            "gradient at every step, so their images did not change: the channel (or every "
            "unit before it) is inactive for these images, e.g. behind a ReLU. Try another "
            "seed, the other mode (regularize=...), or the layer before the ReLU.",
            ActivationMaxWarning,
            stacklevel=4,
        )


def _generators(seed: int | None, channels: list[int]) -> list[torch.Generator]:
    """One CPU generator per batch item, seeded by ``(seed, channel)``."""
    if seed is None:
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}.")
    gens = []
    for c in channels:
        state = np.random.SeedSequence([int(seed), c]).generate_state(2, dtype=np.uint32)
        gens.append(torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1))
    return gens


class _LayerProbe:
    """Runs the model up to one layer: a hook, registered for the forward pass only (so that the
    model carries none while it is copied), records the layer's output and ends the pass."""

    def __init__(self, model: nn.Module, module: nn.Module) -> None:
        self.model = model
        self.module = module
        self.output: torch.Tensor | None = None

    def _hook(self, module: nn.Module, inputs: tuple, output: object) -> None:
        if not isinstance(output, torch.Tensor):
            raise LayerOutputError(
                f"The layer ({type(module).__name__}) returns {type(output).__name__}, not a "
                "tensor, so it has no channels to maximise. Pick one of its sub-layers."
            )
        self.output = output
        raise _LayerReached

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's output for the model input ``x``."""
        self.output = None
        handle = self.module.register_forward_hook(self._hook)
        try:
            with contextlib.suppress(_LayerReached):
                self.model(x)
        finally:
            handle.remove()
        out = self.output
        self.output = None
        if out is None:
            raise LayerNotExecutedError(
                f"The layer ({type(self.module).__name__}) was not called during the forward "
                "pass. Choose a layer that the model's forward() uses."
            )
        return out


class _Objective:
    """What each step maximises: ``(N,)``, the mean activation of ``channels[i]`` in item ``i``.

    At the first call with ``fuse``, :func:`layer_copy` is made and kept when its layer output
    for the first image agrees with the model's (``outputs_agree``); the layer's output comes
    from the copy from then on, else from the model through ``probe``.
    """

    def __init__(
        self, probe: _LayerProbe, name: str, channels: list[int], *, fuse: bool
    ) -> None:
        self.probe = probe
        self.name = name
        self.channels = channels
        self.copy: nn.Module | None = None
        self._undecided = fuse

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._undecided:
            self._undecided = False
            self.copy = self._checked_copy(x[:1].detach())
        out = self.probe(x) if self.copy is None else self.copy(_layout(x))
        return self._pick(out)

    def _checked_copy(self, first: torch.Tensor) -> nn.Module | None:
        with torch.no_grad():
            want = self.probe(first)
            self._pick(want)  # a bad layer or channel fails here, before any copy is made
            copy = layer_copy(self.probe.model, self.name, first.device)
            if copy is None:
                return None
            try:
                got = copy(_layout(first))
                agrees = isinstance(got, torch.Tensor) and outputs_agree(got, want, first.dtype)
            except Exception:  # the copy does not run like the model: use the model
                agrees = False
        if not agrees:
            _release(copy)
            return None
        return copy

    def close(self) -> None:
        """Frees the copy's weights (see :func:`_release`)."""
        if self.copy is not None:
            _release(self.copy)
            self.copy = None

    def _pick(self, out: torch.Tensor) -> torch.Tensor:
        channels = self.channels
        if out.ndim < 2:
            raise LayerOutputError(
                f"The layer output has shape {tuple(out.shape)}; activation maximization needs "
                "(N, C, ...) with a channel dimension."
            )
        if max(channels) >= out.shape[1]:
            raise ValueError(
                f"Channel {max(channels)} is out of range: the layer has {out.shape[1]} "
                f"channels (0..{out.shape[1] - 1})."
            )
        n = out.shape[0]
        index = torch.as_tensor(channels[:n], device=out.device)
        picked = out[torch.arange(n, device=out.device), index]
        return picked.reshape(n, -1).mean(dim=1)


def _storages(module: nn.Module) -> set[int]:
    """Addresses of the (non-empty) parameters and buffers of ``module``."""
    tensors = [*module.parameters(), *module.buffers()]
    return {t.data_ptr() for t in tensors if t.numel() and not t.is_meta}


def _release(copy: nn.Module) -> None:
    """Frees a copy now. A ``torch.fx`` module and its graph refer to each other, so Python
    would free them (and weights as large as the model's part before the layer) only at a
    later cyclic collection, in a long session perhaps much later. Moving the copy to the meta
    device drops its weights; unlinking the graph from it lets the modules go as soon as the
    last reference does (the graph's nodes, small, wait for the collector)."""
    copy.to("meta")
    if isinstance(copy, fx.GraphModule):
        copy.graph.owning_module = None


def _layout(x: torch.Tensor) -> torch.Tensor:
    """Channels-last on the CPU (what the copy's oneDNN convolutions run fastest on)."""
    if x.device.type == "cpu" and x.ndim == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


# --------------------------------------------------------------------------------------------
# FlashTorch's gradient ascent
# --------------------------------------------------------------------------------------------


def plain_start(
    generators: Sequence[torch.Generator], size: int, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """FlashTorch's start images: uniform integers 150..179 / 255, normalised.

    Returns:
        ``(len(generators), C, size, size)`` float32, ``C = len(mean)`` (3, or 1 for grey).
    """
    channels = len(mean)
    noise = torch.stack(
        [torch.randint(150, 180, (channels, size, size), generator=g) for g in generators]
    ).float()
    return normalize(noise / 255, mean, std)


def display_plain(x: torch.Tensor) -> torch.Tensor:
    """FlashTorch's display of an optimised input: per image ``(x - mean) / std * 0.15 + 0.7``.

    Mean and (unbiased) standard deviation over all of an image's values; clipped to [0, 1].
    ``x`` is ``(N, 3, H, W)``; returns the same shape.
    """
    flat = x.reshape(x.shape[0], -1)
    mu = flat.mean(dim=1).view(-1, 1, 1, 1)
    sd = flat.std(dim=1).view(-1, 1, 1, 1)
    sd = torch.where(sd == 0, torch.full_like(sd, 1e-7), sd)
    return ((x - mu) / sd * 0.15 + 0.7).clamp(0, 1)


def _optimise_plain(
    objective: _Objective,
    steps: int,
    lr: float,
    size: int,
    generators: list[torch.Generator],
    progress: Progress | None,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(final model input, display image in [0, 1])``, both ``(N, 3, H, W)``."""
    x = plain_start(generators, size, mean, std).to(device=device, dtype=dtype)
    n = x.shape[0]
    alive = torch.zeros(n, dtype=torch.bool, device=device)
    if steps == 0:
        with torch.no_grad():
            objective(x)  # validates the layer and channels
    for step in range(1, steps + 1):
        leaf = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(leaf).sum(), leaf)
        flat = grad.reshape(n, -1)
        alive |= flat.ne(0).any(dim=1)
        rms = flat.pow(2).mean(dim=1).sqrt().view(-1, 1, 1, 1)
        x = x + lr * grad / (rms + 1e-5)
        if progress is not None:
            progress(step, steps)
    _warn_stalled(objective.channels, alive, steps)
    return x, display_plain(x)


# --------------------------------------------------------------------------------------------
# Lucid-style regularised ascent
# --------------------------------------------------------------------------------------------


def _optimise_regularized(
    objective: _Objective,
    steps: int,
    lr: float,
    size: int,
    generators: list[torch.Generator],
    progress: Progress | None,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(final model input, RGB image in [0, 1])``, both ``(N, 3, H, W)``."""
    spectrum = start_spectrum(generators, size).to(device=device, dtype=dtype)
    thetas = draw_transforms(generators, size, steps).to(device=device, dtype=dtype)
    n = spectrum.shape[0]
    alive = torch.zeros(n, dtype=torch.bool, device=device)
    spectrum.requires_grad_(True)
    scale = fft_scale(size).to(device=device, dtype=dtype)
    optimizer = torch.optim.Adam([spectrum], lr=lr)
    if steps == 0:
        with torch.no_grad():
            objective(normalize(spectrum_to_rgb(spectrum, scale), mean, std))
    for step in range(1, steps + 1):
        rgb = spectrum_to_rgb(spectrum, scale)
        seen = normalize(transform(rgb, thetas[step - 1]), mean, std)
        loss = -objective(seen).sum()
        (spectrum.grad,) = torch.autograd.grad(loss, spectrum)
        alive |= spectrum.grad.reshape(n, -1).ne(0).any(dim=1)
        optimizer.step()
        if progress is not None:
            progress(step, steps)
    _warn_stalled(objective.channels, alive, steps)
    with torch.no_grad():
        rgb = spectrum_to_rgb(spectrum, scale)
    return normalize(rgb, mean, std), rgb
