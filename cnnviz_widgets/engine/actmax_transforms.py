"""The image parameterisation and random transforms of regularised activation maximisation.

Lucid/Lucent's (Olah et al., 2017) pieces, batched: the image is a Fourier spectrum scaled by
``1/f`` in decorrelated colour space (:func:`spectrum_to_rgb`, one inverse FFT for the batch),
and each step the model sees a randomly padded, jittered, scaled and rotated copy
(:func:`transform`, one ``affine_grid`` and one ``grid_sample`` for the batch). The random draws
of batch item ``i`` come from its own generator; :func:`draw_transforms` draws every step's
parameters before the first step (in the order one step at a time would draw them), so the
optimisation loop runs no per-image Python code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

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


def fft_scale(size: int, decay_power: float = 1.0) -> torch.Tensor:
    """``1 / max(f, 1/size) ** decay_power`` for the rFFT frequencies of a ``size``^2 image.

    Returns:
        ``(size, size // 2 + 1)`` float32, frequencies in cycles per pixel.
    """
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    freqs = np.sqrt(fx * fx + fy * fy)
    return torch.as_tensor(1.0 / np.maximum(freqs, 1.0 / size) ** decay_power, dtype=torch.float32)


def start_spectrum(generators: Sequence[torch.Generator], size: int) -> torch.Tensor:
    """The start parameters: normal noise of std :data:`SPECTRUM_INIT_STD`, one draw per item.

    Returns:
        ``(len(generators), 3, size, size // 2 + 1, 2)`` float32 on the CPU.
    """
    shape = (3, size, size // 2 + 1, 2)
    return torch.stack([torch.randn(shape, generator=g) * SPECTRUM_INIT_STD for g in generators])


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


def transform_pad(size: int) -> int:
    """Grey border added on each side by :func:`transform`: ``12 * size / 128`` px, at least 1."""
    return max(1, round(_PAD * size / 128))


def draw_transforms(
    generators: Sequence[torch.Generator], size: int, steps: int
) -> torch.Tensor:
    """Every step's random transform of every item, as affine matrices for ``affine_grid``.

    Per step and item, in this order from the item's generator: a shift of up to ``8`` px and
    one of up to ``4`` px (scaled by ``size / 128``; uniform integers, x then y), one of 11
    scales 0.9..1.1 and one of 26 angles -10..10 degrees (0 six times). The matrix maps output
    to input coordinates of the padded image (``align_corners=False``): rotation over scale,
    and the shift in normalised units.

    Returns:
        ``(steps, len(generators), 2, 3)`` float64.
    """
    k = size / 128
    j1, j2 = max(1, round(_JITTER1 * k)), max(1, round(_JITTER2 * k))
    side = size + 2 * transform_pad(size)
    thetas = np.empty((steps, len(generators), 2, 3))
    for i, g in enumerate(generators):
        for step in range(steps):
            shift = torch.randint(-j1, j1 + 1, (2,), generator=g) + torch.randint(
                -j2, j2 + 1, (2,), generator=g
            )
            scale = _SCALES[int(torch.randint(len(_SCALES), (1,), generator=g))]
            angle = math.radians(_ANGLES[int(torch.randint(len(_ANGLES), (1,), generator=g))])
            cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
            tx, ty = (2.0 * shift.double() / side).tolist()
            thetas[step, i] = [[cos, -sin, tx], [sin, cos, ty]]
    return torch.from_numpy(thetas)


def transform(image: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Pad with grey (0.5) by :func:`transform_pad` and resample each image by its matrix.

    One bilinear ``grid_sample`` (border padding, ``align_corners=False``) for the batch.

    Args:
        image: ``(N, 3, H, W)`` in [0, 1], ``H == W``.
        theta: ``(N, 2, 3)`` from :func:`draw_transforms` (any float dtype and device).

    Returns:
        ``(N, 3, H + 2 pad, W + 2 pad)``.
    """
    pad = transform_pad(image.shape[-1])
    padded = F.pad(image, (pad, pad, pad, pad), mode="constant", value=0.5)
    theta = theta.to(dtype=image.dtype, device=image.device)
    grid = F.affine_grid(theta, list(padded.shape), align_corners=False)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_transform(
    image: torch.Tensor, generators: Sequence[torch.Generator], size: int
) -> torch.Tensor:
    """One random transform per image (:func:`draw_transforms` for one step, then
    :func:`transform`). ``image`` is ``(N, 3, size, size)``; returns ``(N, 3, size + 2 pad,
    size + 2 pad)``."""
    return transform(image, draw_transforms(generators, size, 1)[0])
