"""Seeded procedural images of geometric shapes on cluttered backgrounds.

Every image holds exactly one *object*, a filled or outlined geometric shape from
:data:`SHAPE_CLASSES`, at a random position, size and rotation, painted in a random colour
on a cluttered background: a smooth colour gradient, a low-frequency colour texture, a few
thin lines and small blobs (which are never class shapes), and per-pixel sensor noise.
About one image in five is rendered at low contrast.  The class can only be told from the
object's outline: colours are drawn independently of the class.

Shapes are rasterised from analytic signed-distance functions, vectorised over a batch of
images with NumPy, and anti-aliased with one pixel of linear coverage, so generating tens of
thousands of images takes seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, overload

import numpy as np
import torch
from torch import Tensor

__all__ = ["SHAPE_CLASSES", "make_shapes"]

SHAPE_CLASSES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "diamond",
    "crescent",
)
"""Class names, indexed by label."""

# Object radius (distance from the centre to the farthest point of the shape), as a
# fraction of the image side.
_RADIUS_RANGE = (0.18, 0.30)
_LOW_CONTRAST_P = 0.2
_MAX_LINES = 3
_MAX_BLOBS = 4
_CHUNK = 256

_F = np.float32
_FArray = np.ndarray


# --------------------------------------------------------------------------------------
# Signed-distance functions of the unit shapes. ``u, v`` are coordinates in the object's
# frame, in units of the object radius (every shape fits in the unit disk); the result is
# the signed distance in the same units, negative inside.
# --------------------------------------------------------------------------------------


def _norm(a: _FArray, b: _FArray) -> _FArray:
    """``sqrt(a**2 + b**2)``; several times faster than ``np.hypot`` on float32."""
    return np.sqrt(a * a + b * b)


def _sd_box(u: _FArray, v: _FArray, bu: float, bv: float) -> _FArray:
    du = np.abs(u) - bu
    dv = np.abs(v) - bv
    outside = _norm(np.maximum(du, 0), np.maximum(dv, 0))
    return outside + np.minimum(np.maximum(du, dv), 0)


def _sd_regular_polygon(u: _FArray, v: _FArray, sides: int, inradius: float) -> _FArray:
    """Intersection of ``sides`` half-planes; exact inside, a close bound outside corners."""
    d = np.full_like(u, -np.inf)
    for j in range(sides):
        phi = 2.0 * np.pi * j / sides + np.pi / 2.0
        d = np.maximum(d, u * _F(np.cos(phi)) + v * _F(np.sin(phi)))
    return d - _F(inradius)


def _sd_circle(u: _FArray, v: _FArray) -> _FArray:
    return _norm(u, v) - _F(0.95)


def _sd_square(u: _FArray, v: _FArray) -> _FArray:
    return _sd_box(u, v, 0.68, 0.68)


def _sd_triangle(u: _FArray, v: _FArray) -> _FArray:
    # Equilateral, circumradius 1 (inradius 0.5), centred on its centroid.
    return _sd_regular_polygon(u, v, 3, 0.5)


def _sd_star(u: _FArray, v: _FArray) -> _FArray:
    # Five-pointed star of outer radius 1 and inner-to-outer ratio 0.45 (after I. Quilez's
    # exact 2-D star distance).
    k1u, k1v = _F(0.809016994375), _F(-0.587785252292)
    k2u, k2v = -k1u, k1v
    pu = np.abs(u)
    pv = v.copy()
    d = np.maximum(k1u * pu + k1v * pv, 0)
    pu, pv = pu - 2 * d * k1u, pv - 2 * d * k1v
    d = np.maximum(k2u * pu + k2v * pv, 0)
    pu, pv = pu - 2 * d * k2u, pv - 2 * d * k2v
    pu = np.abs(pu)
    pv = pv - _F(1.0)
    rf = _F(0.45)
    bau, bav = rf * -k1v, rf * k1u - _F(1.0)
    h = np.clip((pu * bau + pv * bav) / (bau * bau + bav * bav), 0, 1)
    dist = _norm(pu - bau * h, pv - bav * h)
    return dist * np.sign(pv * bau - pu * bav)


def _sd_cross(u: _FArray, v: _FArray) -> _FArray:
    return np.minimum(_sd_box(u, v, 0.95, 0.3), _sd_box(u, v, 0.3, 0.95))


def _sd_ring(u: _FArray, v: _FArray) -> _FArray:
    # Annulus from radius 0.46 to 0.98.
    return np.abs(_norm(u, v) - _F(0.72)) - _F(0.26)


def _sd_diamond(u: _FArray, v: _FArray) -> _FArray:
    # Rhombus with half-diagonals 0.98 and 0.55: not a rotated square.
    a, b = _F(0.98), _F(0.55)
    return (np.abs(u) * b + np.abs(v) * a - a * b) / _F(np.hypot(a, b))


def _sd_crescent(u: _FArray, v: _FArray) -> _FArray:
    # Disk of radius 0.95 minus a disk of radius 0.78 centred 0.42 to the side.
    outer = _norm(u, v) - _F(0.95)
    bite = _norm(u - _F(0.42), v) - _F(0.78)
    return np.maximum(outer, -bite)


_SDFS: tuple[Callable[[_FArray, _FArray], _FArray], ...] = (
    _sd_circle,
    _sd_square,
    _sd_triangle,
    _sd_star,
    _sd_cross,
    _sd_ring,
    _sd_diamond,
    _sd_crescent,
)
assert len(_SDFS) == len(SHAPE_CLASSES)


def _sd_segment(
    x: _FArray, y: _FArray, ax: _FArray, ay: _FArray, bx: _FArray, by: _FArray
) -> _FArray:
    """Distance (px) from pixel centres ``(x, y)`` to segments ``a-b`` (one per image)."""
    pax, pay = x - ax, y - ay
    bax, bay = bx - ax, by - ay
    h = np.clip((pax * bax + pay * bay) / np.maximum(bax * bax + bay * bay, 1e-6), 0, 1)
    return _norm(pax - bax * h, pay - bay * h)


def _coverage(sd_px: _FArray) -> _FArray:
    """Anti-aliased coverage in [0, 1] from a signed distance in pixels."""
    return np.clip(_F(0.5) - sd_px, 0, 1)


def _bilinear_matrix(size: int, cells: int) -> _FArray:
    """``(size, cells)`` matrix that bilinearly upsamples ``cells`` samples to ``size`` px."""
    pos = (np.arange(size, dtype=np.float64) + 0.5) / size * (cells - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, cells - 2)
    frac = pos - lo
    m = np.zeros((size, cells), dtype=np.float64)
    m[np.arange(size), lo] = 1 - frac
    m[np.arange(size), lo + 1] = frac
    return m.astype(_F)


def _generate(
    n: int,
    size: int,
    seed: int,
    labels: Sequence[int] | None,
    draw_objects: bool = True,
    clutter: float = 1.0,
) -> tuple[_FArray, _FArray, _FArray, _FArray]:
    """Render ``n`` images; returns NumPy ``images, labels, boxes, masks``.

    ``clutter`` in [0, 1] scales the difficulty (used for a training curriculum): the
    probability of each line, blob and of low contrast, and the texture and noise
    amplitudes. The random draws do not depend on it, so ``clutter=1`` (the default, what
    :func:`make_shapes` renders) and other values give the same shapes at the same places.

    With ``draw_objects=False`` the same random draws are made and the same backgrounds,
    clutter and noise are rendered, but the object is left out (used to test that the
    object's pixels lie inside its box).
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if size < 16:
        raise ValueError(f"size must be at least 16 px, got {size}")
    if not 0.0 <= clutter <= 1.0:
        raise ValueError(f"clutter must lie in [0, 1], got {clutter}")
    rng = np.random.default_rng(np.random.PCG64(seed))
    num_classes = len(SHAPE_CLASSES)
    s = float(size)

    # ---- per-image parameters, all drawn up front ------------------------------------
    drawn_labels = rng.integers(0, num_classes, size=n)
    if labels is not None:
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
        if lab.shape[0] != n:
            raise ValueError(f"labels has {lab.shape[0]} entries, expected n={n}")
        if n and (lab.min() < 0 or lab.max() >= num_classes):
            raise ValueError(f"labels must lie in [0, {num_classes})")
    else:
        lab = drawn_labels.astype(np.int64)
    radius = rng.uniform(*_RADIUS_RANGE, size=n) * s
    cx = rng.uniform(radius + 1.0, s - 1.0 - radius)
    cy = rng.uniform(radius + 1.0, s - 1.0 - radius)
    theta = rng.uniform(0.0, 2.0 * np.pi, size=n)

    # Background: linear gradient between two colours plus a smooth 5x5 colour texture.
    c0 = rng.uniform(0.0, 1.0, size=(n, 3))
    c1 = np.clip(c0 + rng.uniform(-0.5, 0.5, size=(n, 3)), 0.0, 1.0)
    grad_phi = rng.uniform(0.0, 2.0 * np.pi, size=n)
    tex_amp = rng.uniform(0.0, 0.15, size=n) * clutter
    tex = rng.uniform(-1.0, 1.0, size=(n, 3, 5, 5))

    # Clutter: thin lines and small blobs, each present with some probability.
    line_on = rng.uniform(size=(n, _MAX_LINES)) < 0.5 * clutter
    line_pts = rng.uniform(-0.1 * s, 1.1 * s, size=(n, _MAX_LINES, 4))
    line_w = rng.uniform(0.6, 1.6, size=(n, _MAX_LINES))
    line_col = rng.uniform(0.0, 1.0, size=(n, _MAX_LINES, 3))
    line_alpha = rng.uniform(0.4, 1.0, size=(n, _MAX_LINES))
    blob_on = rng.uniform(size=(n, _MAX_BLOBS)) < 0.5 * clutter
    blob_c = rng.uniform(0.0, s, size=(n, _MAX_BLOBS, 2))
    blob_r = rng.uniform(1.0, 3.0, size=(n, _MAX_BLOBS))
    blob_col = rng.uniform(0.0, 1.0, size=(n, _MAX_BLOBS, 3))

    # Object colour: background colour at the object centre, pushed away along a random
    # direction by a random contrast (small for the low-contrast images).
    low = rng.uniform(size=n) < _LOW_CONTRAST_P * clutter
    contrast = np.where(low, rng.uniform(0.15, 0.25, size=n), rng.uniform(0.35, 0.9, size=n))
    direction = rng.normal(size=(n, 3))
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-6)
    noise_sigma = rng.uniform(0.0, 0.05, size=n) * clutter

    # ---- rendering, in chunks to bound memory -----------------------------------------
    # Clutter is only rendered in the images that contain it, and blobs only in a small
    # patch around their centre.
    images = np.empty((n, 3, size, size), dtype=_F)
    masks = np.zeros((n, size, size), dtype=_F)
    up = _bilinear_matrix(size, 5)
    coords = np.arange(size, dtype=_F) + _F(0.5)
    x = coords[None, None, :]  # (1, 1, S)
    y = coords[None, :, None]  # (1, S, 1)
    # Uniform noise of standard deviation sigma from random bytes (fast to draw).
    noise_scale = noise_sigma * np.sqrt(12.0) / 256.0

    def col(a: np.ndarray) -> _FArray:  # (c,) -> (c, 1, 1) float32
        return np.asarray(a, dtype=_F)[:, None, None]

    def over(under: _FArray, alpha: _FArray, colour: np.ndarray) -> _FArray:
        """``colour`` (m, 3) with coverage ``alpha`` (m, H, W) over ``under`` (m, 3, H, W)."""
        return under + (colour.astype(_F)[:, :, None, None] - under) * alpha[:, None]

    patch = 10  # blob patch side, px; holds a blob of radius <= 3 plus anti-aliasing
    patch_offsets = np.arange(patch)

    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        c = sl.stop - sl.start

        # Background gradient + texture.
        t = (x - _F(s / 2)) * col(np.cos(grad_phi[sl])) + (y - _F(s / 2)) * col(
            np.sin(grad_phi[sl])
        )
        t = t * _F(0.5 / (s * 0.7072)) + _F(0.5)  # (c, S, S) in [0, 1]
        a0 = c0[sl].astype(_F)[:, :, None, None]
        a1 = c1[sl].astype(_F)[:, :, None, None]
        img = up @ (tex[sl] * tex_amp[sl, None, None, None]).astype(_F) @ up.T
        img += a0
        img += (a1 - a0) * t[:, None]  # (c, 3, S, S)

        # Clutter, painted under the object.
        for k in range(_MAX_LINES):
            idx = np.nonzero(line_on[sl, k])[0]
            p = line_pts[sl, k][idx]
            d = _sd_segment(x, y, col(p[:, 0]), col(p[:, 1]), col(p[:, 2]), col(p[:, 3]))
            alpha = _coverage(d - col(line_w[sl, k][idx] / 2))
            alpha *= col(line_alpha[sl, k][idx])
            img[idx] = over(img[idx], alpha, line_col[sl, k][idx])
        for k in range(_MAX_BLOBS):
            idx = np.nonzero(blob_on[sl, k])[0]
            bx, by = blob_c[sl, k][idx, 0], blob_c[sl, k][idx, 1]
            x0 = np.clip(np.floor(bx).astype(np.int64) - patch // 2, 0, size - patch)
            y0 = np.clip(np.floor(by).astype(np.int64) - patch // 2, 0, size - patch)
            px = x0[:, None] + patch_offsets  # (m, P) pixel columns
            py = y0[:, None] + patch_offsets
            ddx = (px + 0.5 - bx[:, None]).astype(_F)[:, None, :]
            ddy = (py + 0.5 - by[:, None]).astype(_F)[:, :, None]
            alpha = _coverage(_norm(ddx, ddy) - col(blob_r[sl, k][idx]))
            where = (
                idx[:, None, None, None],
                np.arange(3)[None, :, None, None],
                py[:, None, :, None],
                px[:, None, None, :],
            )
            img[where] = over(img[where], alpha, blob_col[sl, k][idx])
        np.clip(img, 0.0, 1.0, out=img)

        # The object.
        r = col(radius[sl])
        dx, dy = x - col(cx[sl]), y - col(cy[sl])
        ct, st = col(np.cos(theta[sl])), col(np.sin(theta[sl]))
        u = (dx * ct + dy * st) / r
        v = (dy * ct - dx * st) / r
        sd = np.empty((c, size, size), dtype=_F)
        chunk_labels = lab[sl]
        for k, sdf in enumerate(_SDFS):
            idx = np.nonzero(chunk_labels == k)[0]
            if idx.size:
                sd[idx] = sdf(u[idx], v[idx]) * r[idx]
        cover = _coverage(sd)
        masks[sl] = cover

        # Object colour relative to the background under its centre.
        ix = np.clip(cx[sl].astype(int), 0, size - 1)
        iy = np.clip(cy[sl].astype(int), 0, size - 1)
        bg_c = img[np.arange(c), :, iy, ix].astype(np.float64)  # (c, 3)
        delta = direction[sl] * contrast[sl, None]
        obj = bg_c + delta
        flip = (obj > 1.0) | (obj < 0.0)
        obj = np.clip(np.where(flip, bg_c - delta, obj), 0.0, 1.0)
        if draw_objects:
            img = over(img, cover, obj)

        # Sensor noise over everything.
        noise = np.frombuffer(rng.bytes(c * 3 * size * size), dtype=np.uint8)
        noise = noise.reshape(c, 3, size, size).astype(_F)
        noise -= _F(127.5)
        noise *= noise_scale[sl].astype(_F)[:, None, None, None]
        img += noise
        np.clip(img, 0.0, 1.0, out=images[sl])

    # Tight boxes of the pixels the object touches, (x0, y0, x1, y1), x1/y1 exclusive.
    boxes = np.zeros((n, 4), dtype=np.int64)
    if n:
        cols_on = masks.max(axis=1) > 0  # (n, S)
        rows_on = masks.max(axis=2) > 0
        boxes[:, 0] = cols_on.argmax(axis=1)
        boxes[:, 1] = rows_on.argmax(axis=1)
        boxes[:, 2] = size - cols_on[:, ::-1].argmax(axis=1)
        boxes[:, 3] = size - rows_on[:, ::-1].argmax(axis=1)
    return images, lab, boxes, masks


@overload
def make_shapes(
    n: int,
    size: int = ...,
    seed: int = ...,
    *,
    labels: Sequence[int] | Tensor | None = ...,
    return_masks: Literal[False] = ...,
) -> tuple[Tensor, Tensor, Tensor]: ...


@overload
def make_shapes(
    n: int,
    size: int = ...,
    seed: int = ...,
    *,
    labels: Sequence[int] | Tensor | None = ...,
    return_masks: Literal[True],
) -> tuple[Tensor, Tensor, Tensor, Tensor]: ...


@overload
def make_shapes(
    n: int,
    size: int = ...,
    seed: int = ...,
    *,
    labels: Sequence[int] | Tensor | None = ...,
    return_masks: bool,
) -> tuple[Tensor, Tensor, Tensor] | tuple[Tensor, Tensor, Tensor, Tensor]: ...


def make_shapes(
    n: int,
    size: int = 64,
    seed: int = 0,
    *,
    labels: Sequence[int] | Tensor | None = None,
    return_masks: bool = False,
) -> tuple[Tensor, Tensor, Tensor] | tuple[Tensor, Tensor, Tensor, Tensor]:
    """Generate ``n`` labelled shape images, deterministically from ``seed``.

    Args:
        n: number of images.
        size: image side in pixels (square images, at least 16).
        seed: seed of the random generator; the same ``(n, size, seed, labels)`` gives
            bit-identical output (on a given platform and NumPy version).
        labels: optional ``(n,)`` class indices to render instead of random classes (for
            example ``range(len(SHAPE_CLASSES))`` for one image per class).
        return_masks: also return each object's anti-aliased coverage mask.

    Returns:
        ``images``: float32 ``(n, 3, size, size)``, RGB in [0, 1].
        ``labels``: int64 ``(n,)``, indices into :data:`SHAPE_CLASSES`.
        ``boxes``: int64 ``(n, 4)``, the object's bounding box ``(x0, y0, x1, y1)`` in pixel
        coordinates (column, row), ``x1`` and ``y1`` exclusive; every pixel the object
        touches lies inside it.
        ``masks`` (only with ``return_masks``): float32 ``(n, size, size)``, the fraction of
        each pixel covered by the object, in [0, 1].
    """
    if isinstance(labels, Tensor):
        labels = labels.tolist()
    images, lab, boxes, masks = _generate(n, size, seed, labels)
    out = (torch.from_numpy(images), torch.from_numpy(lab), torch.from_numpy(boxes))
    if return_masks:
        return (*out, torch.from_numpy(masks))
    return out
