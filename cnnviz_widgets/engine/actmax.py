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
  start spectrum has standard deviation :data:`SPECTRUM_INIT_STD` (0.1, Lucid's is 0.01; see
  there why).

A channel whose gradient is exactly zero at every step (dead behind a ReLU for every image
tried) keeps its start image; :class:`ActivationMaxWarning` names it.

Randomness is per channel: the start image and the random transforms of batch item ``i`` come
from a generator seeded by ``(seed, channels[i])``, so a channel's image does not depend on
which other channels are optimised with it.

The forward pass stops at the layer (a hook records its output and ends the pass), the model
runs borrowed (eval mode, parameters frozen) and is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .borrow import borrowed
from .capture import LayerNotExecutedError, LayerOutputError
from .devices import model_device, model_dtype
from .inputs import IMAGENET_MEAN, IMAGENET_STD, expected_channels, normalize
from .layers import LayerRef, resolve_layer

Progress = Callable[[int, int], Any]

# FlashTorch's GradientAscent defaults.
PLAIN_DEFAULTS = {"steps": 30, "lr": 1.0, "size": 224}
# Lucid/Lucent-style defaults.
REGULARIZED_DEFAULTS = {"steps": 256, "lr": 0.05, "size": 128}

# Square root of the ImageNet colour correlation matrix (Lucid's ``color_correlation_svd_sqrt``),
# scaled so its largest column norm is 1.
_COLOR_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float64
)
COLOR_CORRELATION = _COLOR_SQRT / np.max(np.linalg.norm(_COLOR_SQRT, axis=0))

# Lucent's standard transforms, in pixels for a 128 px image (scaled with the image size).
_PAD, _JITTER1, _JITTER2 = 12, 8, 4
_SCALES = tuple(1 + (i - 5) / 50 for i in range(11))
_ANGLES = tuple(range(-10, 11)) + (0,) * 5


# Standard deviation of the start spectrum. Lucid uses 0.01, which gives an almost flat grey
# image (pixel std about 0.003); a model whose first ReLUs are all off for grey input (the
# bundled demo model is one) then passes back an exactly zero gradient and the image never
# moves. 0.1 starts from faint coloured noise (pixel std about 0.03).
SPECTRUM_INIT_STD = 0.1


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
) -> np.ndarray:
    """Images that maximise the mean activation of ``channels`` of ``layer``.

    Args:
        model: the network (left exactly as it was). It takes 3-channel images normalised with
            ``mean``/``std``.
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

    Returns:
        ``(len(channels), size, size, 3)`` uint8 RGB images; with ``raw=True`` the final
        model input, ``(len(channels), 3, size, size)`` float32 normalised with ``mean``/``std``
        (for the regularised mode the untransformed image).

    Raises:
        LayerNotFoundError, LayerNotExecutedError, LayerOutputError: a bad layer.
        ValueError: a channel out of range, a bad size/steps/seed, a model that does not take
            3-channel images.
    """
    _, module = resolve_layer(model, layer)
    chans = _channels(channels)
    defaults = REGULARIZED_DEFAULTS if regularize else PLAIN_DEFAULTS
    steps = int(defaults["steps"] if steps is None else steps)
    lr = float(defaults["lr"] if lr is None else lr)
    size = int(defaults["size"] if size is None else size)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}.")
    if size < 8:
        raise ValueError(f"size must be at least 8 px, got {size}.")
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need 3 values (RGB); got {mean!r} and {std!r}.")
    want = expected_channels(model)
    if want not in (None, 3):
        raise ValueError(
            f"activation_max makes RGB images, but {type(model).__name__}'s first convolution "
            f"takes {want} channel(s)."
        )
    generators = _generators(seed, chans)
    device, dtype = model_device(model), model_dtype(model)
    run = _optimise_regularized if regularize else _optimise_plain
    with (
        borrowed(model),
        torch.inference_mode(False),
        torch.enable_grad(),
        _LayerProbe(model, module) as probe,
    ):
        model_input, shown = run(
            probe, chans, steps, lr, size, generators, progress, mean, std, device, dtype
        )
    if raw:
        return model_input.detach().to("cpu", torch.float32).numpy()
    return to_uint8(shown)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` floats in [0, 1] -> ``(N, H, W, 3)`` uint8 (``round(v * 255)``)."""
    u8 = images.detach().to("cpu", torch.float32).mul(255).round().clamp(0, 255).to(torch.uint8)
    return u8.permute(0, 2, 3, 1).contiguous().numpy()


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
    """Hook on one layer: records its output and ends the forward pass right there."""

    def __init__(self, model: nn.Module, module: nn.Module) -> None:
        self.model = model
        self.module = module
        self.output: torch.Tensor | None = None
        self._handle: torch.utils.hooks.RemovableHandle | None = None

    def __enter__(self) -> _LayerProbe:
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(self, module: nn.Module, inputs: tuple, output: object) -> None:
        if not isinstance(output, torch.Tensor):
            raise LayerOutputError(
                f"The layer ({type(module).__name__}) returns {type(output).__name__}, not a "
                "tensor, so it has no channels to maximise. Pick one of its sub-layers."
            )
        self.output = output
        raise _LayerReached

    def __call__(self, x: torch.Tensor, channels: list[int]) -> torch.Tensor:
        """``(N,)`` mean activation of ``channels[i]`` in item ``i`` of the layer output."""
        self.output = None
        with contextlib.suppress(_LayerReached):
            self.model(x)
        out = self.output
        self.output = None
        if out is None:
            raise LayerNotExecutedError(
                f"The layer ({type(self.module).__name__}) was not called during the forward "
                "pass. Choose a layer that the model's forward() uses."
            )
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
        index = torch.as_tensor(channels, device=out.device)
        picked = out[torch.arange(out.shape[0], device=out.device), index]
        return picked.reshape(out.shape[0], -1).mean(dim=1)


# --------------------------------------------------------------------------------------------
# FlashTorch's gradient ascent
# --------------------------------------------------------------------------------------------


def plain_start(
    generators: Sequence[torch.Generator], size: int, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """FlashTorch's start images: uniform integers 150..179 / 255, normalised.

    Returns:
        ``(len(generators), 3, size, size)`` float32.
    """
    noise = torch.stack(
        [torch.randint(150, 180, (3, size, size), generator=g) for g in generators]
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
    probe: _LayerProbe,
    channels: list[int],
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
    alive = torch.zeros(len(channels), dtype=torch.bool, device=device)
    if steps == 0:
        probe(x, channels)  # validates the layer and channels
    for step in range(1, steps + 1):
        leaf = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(probe(leaf, channels).sum(), leaf)
        alive |= grad.reshape(len(channels), -1).ne(0).any(dim=1)
        rms = grad.pow(2).reshape(grad.shape[0], -1).mean(dim=1).sqrt().view(-1, 1, 1, 1)
        x = x + lr * grad / (rms + 1e-5)
        if progress is not None:
            progress(step, steps)
    _warn_stalled(channels, alive, steps)
    return x, display_plain(x)


# --------------------------------------------------------------------------------------------
# Lucid-style regularised ascent
# --------------------------------------------------------------------------------------------


def fft_scale(size: int, decay_power: float = 1.0) -> torch.Tensor:
    """``1 / max(f, 1/size) ** decay_power`` for the rFFT frequencies of a ``size``^2 image.

    Returns:
        ``(size, size // 2 + 1)`` float32, frequencies in cycles per pixel.
    """
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    freqs = np.sqrt(fx * fx + fy * fy)
    return torch.as_tensor(1.0 / np.maximum(freqs, 1.0 / size) ** decay_power, dtype=torch.float32)


def spectrum_to_rgb(spectrum: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Fourier parameters -> RGB in (0, 1).

    Args:
        spectrum: ``(N, 3, H, W // 2 + 1, 2)`` real/imaginary parts in decorrelated colour.
        scale: ``(H, W // 2 + 1)`` from :func:`fft_scale`.

    Returns:
        ``(N, 3, H, W)``: inverse FFT (orthonormal) of the scaled spectrum, divided by 4 (Lucid's
        constant), mapped through :data:`COLOR_CORRELATION`, then a sigmoid.
    """
    size = spectrum.shape[2]
    complex_spec = torch.view_as_complex(spectrum) * scale
    image = torch.fft.irfft2(complex_spec, s=(size, size), norm="ortho") / 4.0
    corr = torch.as_tensor(COLOR_CORRELATION, dtype=image.dtype, device=image.device)
    image = torch.einsum("dc,nchw->ndhw", corr, image)
    return torch.sigmoid(image)


def random_transform(
    image: torch.Tensor, generators: Sequence[torch.Generator], size: int
) -> torch.Tensor:
    """Lucent's standard transforms as one affine resampling per image.

    Pads with grey (0.5) by ``12 * size / 128`` px, then shifts by up to ``8`` and ``4 * size /
    128`` px (two uniform integer jitters), scales by one of 0.9..1.1 and rotates by one of
    -10..10 degrees (0 more likely), each drawn per image from its generator. Bilinear sampling.

    Args:
        image: ``(N, 3, H, W)`` in [0, 1].

    Returns:
        ``(N, 3, H + 2 pad, W + 2 pad)``.
    """
    k = size / 128
    pad = max(1, round(_PAD * k))
    j1, j2 = max(1, round(_JITTER1 * k)), max(1, round(_JITTER2 * k))
    padded = F.pad(image, (pad, pad, pad, pad), mode="constant", value=0.5)
    side = padded.shape[-1]
    thetas = []
    for g in generators:
        shift = torch.randint(-j1, j1 + 1, (2,), generator=g) + torch.randint(
            -j2, j2 + 1, (2,), generator=g
        )
        scale = _SCALES[int(torch.randint(len(_SCALES), (1,), generator=g))]
        angle = math.radians(_ANGLES[int(torch.randint(len(_ANGLES), (1,), generator=g))])
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        tx, ty = (2.0 * shift.double() / side).tolist()
        thetas.append([[cos, -sin, tx], [sin, cos, ty]])
    theta = torch.tensor(thetas, dtype=image.dtype, device=image.device)
    grid = F.affine_grid(theta, list(padded.shape), align_corners=False)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _optimise_regularized(
    probe: _LayerProbe,
    channels: list[int],
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
    freq = size // 2 + 1
    spectrum = torch.stack(
        [torch.randn((3, size, freq, 2), generator=g) * SPECTRUM_INIT_STD for g in generators]
    ).to(device=device, dtype=dtype)
    alive = torch.zeros(len(channels), dtype=torch.bool, device=device)
    spectrum.requires_grad_(True)
    scale = fft_scale(size).to(device=device, dtype=dtype)
    optimizer = torch.optim.Adam([spectrum], lr=lr)
    if steps == 0:
        with torch.no_grad():
            probe(normalize(spectrum_to_rgb(spectrum, scale), mean, std), channels)
    for step in range(1, steps + 1):
        rgb = spectrum_to_rgb(spectrum, scale)
        seen = normalize(random_transform(rgb, generators, size), mean, std)
        loss = -probe(seen, channels).sum()
        (spectrum.grad,) = torch.autograd.grad(loss, spectrum)
        alive |= spectrum.grad.reshape(len(channels), -1).ne(0).any(dim=1)
        optimizer.step()
        if progress is not None:
            progress(step, steps)
    _warn_stalled(channels, alive, steps)
    with torch.no_grad():
        rgb = spectrum_to_rgb(spectrum, scale)
    return normalize(rgb, mean, std), rgb
