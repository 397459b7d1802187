"""Seeded scenes of several shapes, with exact boxes and class masks, for the demo detector
and segmenter (:mod:`cnnviz_widgets.demo.detection`).

A scene is drawn like an image of :func:`~cnnviz_widgets.demo.shapes.make_shapes` (the same
cluttered background, shapes, colours and noise, from the same building blocks) but holds
``min_objects`` to ``max_objects`` shapes, smaller than there, by default of distinct
classes: then a class names one object of the scene, so a class-discriminative explanation
(Grad-CAM of a box, the segmenter's region of a class) has one object to point at; Grad-CAM
cannot tell two objects of one class apart. Objects never overlap: the
disks that circumscribe them are at least ``_GAP`` pixels apart, so every pixel belongs to at
most one object and each box and mask is exact. An object whose place cannot be found in a
few tries (the image is full) is left out, so a few images hold fewer objects than drawn.

Labels follow torchvision's detection convention: ``0`` is the background, object classes
are ``1 + `` their index in :data:`~cnnviz_widgets.demo.shapes.SHAPE_CLASSES`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from cnnviz_widgets.demo.shapes import (
    _CHUNK,
    _F,
    SHAPE_CLASSES,
    _add_noise,
    _Background,
    _Canvas,
    _check_clutter,
    _draw_colours,
    _object_colour,
    _over,
    _render_background,
    _shape_coverage,
    _tight_boxes,
)

__all__ = ["SCENE_CLASSES", "SCENE_RADIUS_RANGE", "Scenes", "make_scenes"]

SCENE_CLASSES: tuple[str, ...] = ("background", *SHAPE_CLASSES)
"""Class names indexed by scene label: ``0`` background, then the shape classes."""

SCENE_RADIUS_RANGE: tuple[float, float] = (0.12, 0.19)
"""Object radius range (centre to farthest point), as a fraction of the image side: 15.4 to
24.3 px in a 128 px scene."""

_GAP = 2.0  # px between the circumscribed disks of two objects
_TRIES = 12  # candidate positions per object


class Scenes(NamedTuple):
    """Scenes of :func:`make_scenes` (a tuple: ``images, boxes, labels, masks = ...``).

    Attributes:
        images: float32 ``(n, 3, S, S)``, RGB in [0, 1].
        boxes: ``n`` float32 tensors ``(k_i, 4)``, each object's box ``(x1, y1, x2, y2)`` in
            pixels (torchvision's convention: pixel ``j`` covers ``[j, j + 1)``, so ``x2`` is
            one past the last column the object touches); every pixel the object covers at
            all lies inside it.
        labels: ``n`` int64 tensors ``(k_i,)``, ``1 + `` the index in ``SHAPE_CLASSES``.
        masks: int64 ``(n, S, S)``, per pixel the label of the object covering at least half
            of it, else 0 (background).
    """

    images: Tensor
    boxes: list[Tensor]
    labels: list[Tensor]
    masks: Tensor


def _place(
    rng: np.random.Generator,
    count: np.ndarray,
    radius: np.ndarray,
    s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-overlapping centres for the objects of ``n`` images.

    ``count`` (n,): objects wanted per image; ``radius`` (n, M) px. Each object takes the
    first of ``_TRIES`` uniformly drawn candidate centres (inside the image, 1 px margin)
    whose circumscribed disk stays ``_GAP`` px away from the objects already placed.
    Returns ``cx, cy`` (n, M) px and ``placed`` (n, M) bool.
    """
    n, m = radius.shape
    cand = rng.uniform(0.0, 1.0, size=(n, m, _TRIES, 2))
    lo = radius + 1.0
    span = s - 2.0 - 2.0 * radius  # centres in [r + 1, s - 1 - r]
    cand_x = lo[:, :, None] + cand[..., 0] * span[:, :, None]  # (n, M, T)
    cand_y = lo[:, :, None] + cand[..., 1] * span[:, :, None]
    cx = np.zeros((n, m))
    cy = np.zeros((n, m))
    placed = np.zeros((n, m), dtype=bool)
    for j in range(m):
        wanted = j < count
        free = np.ones((n, _TRIES), dtype=bool)
        for i in range(j):
            dist = np.hypot(cand_x[:, j] - cx[:, i, None], cand_y[:, j] - cy[:, i, None])
            clear = dist >= radius[:, j, None] + radius[:, i, None] + _GAP
            free &= clear | ~placed[:, i, None]
        ok = wanted & free.any(axis=1)
        first = free.argmax(axis=1)
        rows = np.arange(n)
        cx[:, j] = np.where(ok, cand_x[rows, j, first], 0.0)
        cy[:, j] = np.where(ok, cand_y[rows, j, first], 0.0)
        placed[:, j] = ok
    return cx, cy, placed


def make_scenes(
    n: int,
    size: int = 128,
    seed: int = 0,
    max_objects: int = 3,
    *,
    min_objects: int = 1,
    radius_range: tuple[float, float] = SCENE_RADIUS_RANGE,
    clutter: float = 1.0,
    distinct_classes: bool = True,
) -> Scenes:
    """Generate ``n`` scenes of ``min_objects`` to ``max_objects`` shapes, deterministically.

    Args:
        n: number of images.
        size: image side in pixels (square images, at least 32).
        seed: seed of the random generator; the same arguments give bit-identical output (on
            a given platform and NumPy version).
        max_objects: most objects per image (the number is uniform in
            ``[min_objects, max_objects]``; one that does not fit is left out).
        min_objects: fewest objects drawn per image (0 allows empty scenes).
        radius_range: object radius range as fractions of ``size``.
        clutter: in [0, 1], scales the background clutter, texture, noise and the share of
            low-contrast objects (as for the single-shape images; 1 is the full amount). The
            random draws do not depend on it: the same objects at the same places.
        distinct_classes: no two objects of a scene share a class (``max_objects`` at most
            the number of classes); False draws each object's class independently.

    Returns:
        :class:`Scenes` ``(images, boxes, labels, masks)``.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if size < 32:
        raise ValueError(f"size must be at least 32 px, got {size}")
    if not 0 <= min_objects <= max_objects or max_objects < 1:
        raise ValueError(
            f"need 0 <= min_objects <= max_objects and max_objects >= 1; got "
            f"min_objects={min_objects}, max_objects={max_objects}"
        )
    lo_r, hi_r = radius_range
    if not 0.0 < lo_r <= hi_r < 0.5:
        raise ValueError(f"radius_range must satisfy 0 < low <= high < 0.5; got {radius_range}")
    if hi_r * size < 4.0:
        raise ValueError(
            f"objects of radius {hi_r * size:.1f} px are too small to tell apart; use a "
            "larger size or radius_range"
        )
    _check_clutter(clutter)
    num_classes = len(SHAPE_CLASSES)
    if distinct_classes and max_objects > num_classes:
        raise ValueError(
            f"{max_objects} objects of distinct classes need at least as many classes; there "
            f"are {num_classes}. Pass distinct_classes=False or max_objects <= {num_classes}."
        )
    rng = np.random.default_rng(np.random.PCG64(seed))
    s = float(size)
    m = max_objects

    # ---- all random draws up front ----------------------------------------------------
    count = rng.integers(min_objects, max_objects + 1, size=n)
    if distinct_classes:  # the first m of a random permutation of the classes
        keys = rng.uniform(size=(n, num_classes))
        labels = np.argsort(keys, axis=1, kind="stable")[:, :m].astype(np.int64)
    else:
        labels = rng.integers(0, num_classes, size=(n, m)).astype(np.int64)
    radius = rng.uniform(lo_r, hi_r, size=(n, m)) * s
    theta = rng.uniform(0.0, 2.0 * np.pi, size=(n, m))
    cx, cy, placed = _place(rng, count, radius, s)
    bg = _Background.draw(rng, n, s, clutter)
    contrast, direction = _draw_colours(rng, (n, m), clutter)
    noise_sigma = rng.uniform(0.0, 0.05, size=n) * clutter

    # ---- rendering, in chunks ---------------------------------------------------------
    images = np.empty((n, 3, size, size), dtype=_F)
    class_masks = np.zeros((n, size, size), dtype=np.int64)
    boxes = np.zeros((n, m, 4), dtype=np.int64)
    canvas = _Canvas(size)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        img = _render_background(bg, sl, canvas)
        for j in range(m):
            idx = np.nonzero(placed[sl, j])[0]
            if not idx.size:
                continue
            rows = idx + start
            cover = _shape_coverage(
                labels[rows, j], cx[rows, j], cy[rows, j], radius[rows, j], theta[rows, j], canvas
            )
            obj = _object_colour(
                img[idx], cx[rows, j], cy[rows, j], direction[rows, j], contrast[rows, j]
            )
            img[idx] = _over(img[idx], cover, obj)
            boxes[rows, j] = _tight_boxes(cover)
            # objects do not overlap, so no pixel is covered by half by two of them
            class_masks[rows] = np.where(
                cover >= 0.5, labels[rows, j, None, None] + 1, class_masks[rows]
            )
        _add_noise(rng, img, noise_sigma[sl], images[sl])

    out_boxes = [torch.from_numpy(boxes[i][placed[i]].astype(np.float32)) for i in range(n)]
    out_labels = [torch.from_numpy(labels[i][placed[i]] + 1) for i in range(n)]
    return Scenes(torch.from_numpy(images), out_boxes, out_labels, torch.from_numpy(class_masks))
