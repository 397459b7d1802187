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
from dataclasses import dataclass
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


# --------------------------------------------------------------------------------------
# Building blocks shared by make_shapes (one object per image) and make_scenes (several,
# in cnnviz_widgets.demo.scenes): random draws of the background and of the objects'
# colours, and the rendering of a background, of a shape's coverage and of the noise.
# --------------------------------------------------------------------------------------


def _check_clutter(clutter: float) -> None:
    if not 0.0 <= clutter <= 1.0:
        raise ValueError(f"clutter must lie in [0, 1], got {clutter}")


@dataclass(frozen=True)
class _Background:
    """Random draws of ``n`` backgrounds (gradient, texture, lines, blobs); ``s``: side, px."""

    c0: np.ndarray  # (n, 3) gradient start colour
    c1: np.ndarray  # (n, 3) gradient end colour
    grad_phi: np.ndarray  # (n,) gradient direction, radians
    tex_amp: np.ndarray  # (n,) texture amplitude
    tex: np.ndarray  # (n, 3, 5, 5) texture samples
    line_on: np.ndarray  # (n, L) bool
    line_pts: np.ndarray  # (n, L, 4) end points, px
    line_w: np.ndarray  # (n, L) width, px
    line_col: np.ndarray  # (n, L, 3)
    line_alpha: np.ndarray  # (n, L)
    blob_on: np.ndarray  # (n, B) bool
    blob_c: np.ndarray  # (n, B, 2) centre, px
    blob_r: np.ndarray  # (n, B) radius, px
    blob_col: np.ndarray  # (n, B, 3)

    @staticmethod
    def draw(rng: np.random.Generator, n: int, s: float, clutter: float) -> _Background:
        """Draw ``n`` backgrounds of side ``s`` px from ``rng`` (in a fixed order)."""
        # Linear gradient between two colours plus a smooth 5x5 colour texture.
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
        return _Background(
            c0, c1, grad_phi, tex_amp, tex,
            line_on, line_pts, line_w, line_col, line_alpha,
            blob_on, blob_c, blob_r, blob_col,
        )  # fmt: skip


def _draw_colours(
    rng: np.random.Generator, shape: tuple[int, ...], clutter: float
) -> tuple[np.ndarray, np.ndarray]:
    """Contrast ``shape`` and unit colour direction ``(*shape, 3)`` of objects.

    An object's colour is the background colour under its centre pushed away along the
    direction by the contrast (small for the low-contrast objects).
    """
    low = rng.uniform(size=shape) < _LOW_CONTRAST_P * clutter
    contrast = np.where(
        low, rng.uniform(0.15, 0.25, size=shape), rng.uniform(0.35, 0.9, size=shape)
    )
    direction = rng.normal(size=(*shape, 3))
    direction /= np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-6)
    return contrast, direction


class _Canvas:
    """Pixel-centre coordinates and the texture upsampling of ``size`` x ``size`` images."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.up = _bilinear_matrix(size, 5)
        coords = np.arange(size, dtype=_F) + _F(0.5)
        self.x = coords[None, None, :]  # (1, 1, S)
        self.y = coords[None, :, None]  # (1, S, 1)


def _col(a: np.ndarray) -> _FArray:
    """``(c,)`` -> float32 ``(c, 1, 1)``."""
    return np.asarray(a, dtype=_F)[:, None, None]


def _over(under: _FArray, alpha: _FArray, colour: np.ndarray) -> _FArray:
    """``colour`` (m, 3) with coverage ``alpha`` (m, H, W) over ``under`` (m, 3, H, W)."""
    return under + (colour.astype(_F)[:, :, None, None] - under) * alpha[:, None]


_BLOB_PATCH = 10  # blob patch side, px; holds a blob of radius <= 3 plus anti-aliasing


def _render_background(bg: _Background, sl: slice, canvas: _Canvas) -> _FArray:
    """Images ``sl`` of ``bg``: ``(c, 3, S, S)`` float32 in [0, 1], without objects or noise.

    Clutter is only rendered in the images that contain it, and blobs only in a small
    patch around their centre.
    """
    size, x, y = canvas.size, canvas.x, canvas.y
    s = float(size)
    t = (x - _F(s / 2)) * _col(np.cos(bg.grad_phi[sl])) + (y - _F(s / 2)) * _col(
        np.sin(bg.grad_phi[sl])
    )
    t = t * _F(0.5 / (s * 0.7072)) + _F(0.5)  # (c, S, S) in [0, 1]
    a0 = bg.c0[sl].astype(_F)[:, :, None, None]
    a1 = bg.c1[sl].astype(_F)[:, :, None, None]
    img = canvas.up @ (bg.tex[sl] * bg.tex_amp[sl, None, None, None]).astype(_F) @ canvas.up.T
    img += a0
    img += (a1 - a0) * t[:, None]  # (c, 3, S, S)

    for k in range(_MAX_LINES):
        idx = np.nonzero(bg.line_on[sl, k])[0]
        p = bg.line_pts[sl, k][idx]
        d = _sd_segment(x, y, _col(p[:, 0]), _col(p[:, 1]), _col(p[:, 2]), _col(p[:, 3]))
        alpha = _coverage(d - _col(bg.line_w[sl, k][idx] / 2))
        alpha *= _col(bg.line_alpha[sl, k][idx])
        img[idx] = _over(img[idx], alpha, bg.line_col[sl, k][idx])
    patch = _BLOB_PATCH
    patch_offsets = np.arange(patch)
    for k in range(_MAX_BLOBS):
        idx = np.nonzero(bg.blob_on[sl, k])[0]
        bx, by = bg.blob_c[sl, k][idx, 0], bg.blob_c[sl, k][idx, 1]
        x0 = np.clip(np.floor(bx).astype(np.int64) - patch // 2, 0, size - patch)
        y0 = np.clip(np.floor(by).astype(np.int64) - patch // 2, 0, size - patch)
        px = x0[:, None] + patch_offsets  # (m, P) pixel columns
        py = y0[:, None] + patch_offsets
        ddx = (px + 0.5 - bx[:, None]).astype(_F)[:, None, :]
        ddy = (py + 0.5 - by[:, None]).astype(_F)[:, :, None]
        alpha = _coverage(_norm(ddx, ddy) - _col(bg.blob_r[sl, k][idx]))
        where = (
            idx[:, None, None, None],
            np.arange(3)[None, :, None, None],
            py[:, None, :, None],
            px[:, None, None, :],
        )
        img[where] = _over(img[where], alpha, bg.blob_col[sl, k][idx])
    np.clip(img, 0.0, 1.0, out=img)
    return img


def _shape_coverage(
    labels: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    radius: np.ndarray,
    theta: np.ndarray,
    canvas: _Canvas,
) -> _FArray:
    """Anti-aliased coverage ``(m, S, S)`` in [0, 1] of ``m`` shapes.

    ``labels``: class indices into :data:`SHAPE_CLASSES`; ``cx, cy``: centres in px;
    ``radius``: px (every shape fits in the disk of this radius); ``theta``: rotation,
    radians. All ``(m,)``.
    """
    r = _col(radius)
    dx, dy = canvas.x - _col(cx), canvas.y - _col(cy)
    ct, st = _col(np.cos(theta)), _col(np.sin(theta))
    u = (dx * ct + dy * st) / r
    v = (dy * ct - dx * st) / r
    sd = np.empty((len(labels), canvas.size, canvas.size), dtype=_F)
    for k, sdf in enumerate(_SDFS):
        idx = np.nonzero(labels == k)[0]
        if idx.size:
            sd[idx] = sdf(u[idx], v[idx]) * r[idx]
    return _coverage(sd)


def _object_colour(
    img: _FArray, cx: np.ndarray, cy: np.ndarray, direction: np.ndarray, contrast: np.ndarray
) -> np.ndarray:
    """``(m, 3)`` colours of ``m`` objects centred at ``(cx, cy)`` px over ``img`` (m, 3, S, S).

    The background colour under the centre pushed along ``direction`` (m, 3) by ``contrast``
    (m,), or the other way where that leaves [0, 1].
    """
    size = img.shape[-1]
    ix = np.clip(cx.astype(int), 0, size - 1)
    iy = np.clip(cy.astype(int), 0, size - 1)
    bg_c = img[np.arange(img.shape[0]), :, iy, ix].astype(np.float64)  # (m, 3)
    delta = direction * contrast[:, None]
    obj = bg_c + delta
    flip = (obj > 1.0) | (obj < 0.0)
    return np.clip(np.where(flip, bg_c - delta, obj), 0.0, 1.0)


def _add_noise(
    rng: np.random.Generator, img: _FArray, noise_sigma: np.ndarray, out: _FArray
) -> None:
    """Uniform sensor noise of standard deviation ``noise_sigma`` (c,) over ``img``
    (c, 3, S, S), drawn from random bytes of ``rng`` (fast), clipped to [0, 1] into ``out``."""
    c, _, height, width = img.shape
    noise_scale = noise_sigma * np.sqrt(12.0) / 256.0
    noise = np.frombuffer(rng.bytes(c * 3 * height * width), dtype=np.uint8)
    noise = noise.reshape(c, 3, height, width).astype(_F)
    noise -= _F(127.5)
    noise *= noise_scale.astype(_F)[:, None, None, None]
    img += noise
    np.clip(img, 0.0, 1.0, out=out)


def _tight_boxes(masks: _FArray) -> np.ndarray:
    """``(n, 4)`` int64 boxes ``(x0, y0, x1, y1)`` of the pixels where ``masks`` (n, S, S) is
    positive, ``x1``/``y1`` exclusive. Each mask must touch at least one pixel."""
    n, size = masks.shape[0], masks.shape[-1]
    boxes = np.zeros((n, 4), dtype=np.int64)
    if n:
        cols_on = masks.max(axis=1) > 0  # (n, S)
        rows_on = masks.max(axis=2) > 0
        boxes[:, 0] = cols_on.argmax(axis=1)
        boxes[:, 1] = rows_on.argmax(axis=1)
        boxes[:, 2] = size - cols_on[:, ::-1].argmax(axis=1)
        boxes[:, 3] = size - rows_on[:, ::-1].argmax(axis=1)
    return boxes


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
    _check_clutter(clutter)
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
    bg = _Background.draw(rng, n, s, clutter)
    contrast, direction = _draw_colours(rng, (n,), clutter)
    noise_sigma = rng.uniform(0.0, 0.05, size=n) * clutter

    # ---- rendering, in chunks to bound memory -----------------------------------------
    images = np.empty((n, 3, size, size), dtype=_F)
    masks = np.zeros((n, size, size), dtype=_F)
    canvas = _Canvas(size)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        img = _render_background(bg, sl, canvas)  # clutter is painted under the object
        cover = _shape_coverage(lab[sl], cx[sl], cy[sl], radius[sl], theta[sl], canvas)
        masks[sl] = cover
        obj = _object_colour(img, cx[sl], cy[sl], direction[sl], contrast[sl])
        if draw_objects:
            img = _over(img, cover, obj)
        _add_noise(rng, img, noise_sigma[sl], images[sl])  # over everything

    # Tight boxes of the pixels the object touches, (x0, y0, x1, y1), x1/y1 exclusive.
    return images, lab, _tight_boxes(masks), masks


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
