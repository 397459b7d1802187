"""How similar two maps are: the three scores of the sanity checks (Adebayo et al., 2018).

* :func:`spearman_abs`: Spearman rank correlation of the absolute values (ties get their
  average rank, as ``scipy.stats.spearmanr``); Quantus's ``correlation_spearman`` on the
  absolute maps, what its ``MPRT`` reports with its defaults.
* :func:`ssim`: the structural similarity index (Wang et al., 2004) with scikit-image's
  ``structural_similarity`` defaults (7 x 7 uniform window, sample covariance, K1 = 0.01,
  K2 = 0.03, the mean over the positions where the window fits), each map divided by its
  largest absolute value and ``data_range`` the spread of the two together: Quantus's ``ssim``,
  what its ``RandomLogit`` reports.
* :func:`hog_similarity`: the Pearson correlation of the two maps' histograms of oriented
  gradients (Dalal and Triggs, 2005) as the paper uses them, with :func:`hog` equal to
  scikit-image's ``hog`` with its defaults (9 orientations, 8 x 8 pixel cells, 3 x 3 cell
  blocks, L2-Hys).

All take ``(N, H, W)`` maps (tensors or numpy), work in float64 on the first map's device and
return ``(N,)`` tensors; a score that is undefined (a constant map) is NaN.
"""

from __future__ import annotations

import torch

from ._common import MapsLike, as_maps

SIMILARITIES: tuple[str, ...] = ("spearman", "ssim", "hog")


def _pair(a: MapsLike, b: MapsLike) -> tuple[torch.Tensor, torch.Tensor]:
    ta = as_maps(a).to(torch.float64)
    tb = as_maps(b, ta.device).to(torch.float64)
    if ta.shape != tb.shape:
        raise ValueError(f"maps of different shapes: {tuple(ta.shape)} and {tuple(tb.shape)}.")
    return ta, tb


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each row of ``(N, P)`` ``a`` and ``b`` (NaN for a constant row)."""
    ca = a - a.mean(dim=1, keepdim=True)
    cb = b - b.mean(dim=1, keepdim=True)
    num = (ca * cb).sum(dim=1)
    den = torch.sqrt((ca * ca).sum(dim=1) * (cb * cb).sum(dim=1))
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), torch.nan).clamp(-1, 1)


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..P of each row of ``(N, P)``, tied values sharing their average rank
    (``scipy.stats.rankdata(method="average")``), float64."""
    n, p = values.shape
    ordered, order = torch.sort(values, dim=1, stable=True)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = torch.cumsum(starts.to(torch.int64), dim=1) - 1  # (N, P) group of each position
    group = group + torch.arange(n, device=values.device).unsqueeze(1) * p  # unique per row
    position = torch.arange(1, p + 1, dtype=torch.float64, device=values.device).expand(n, p)
    total = torch.zeros(n * p, dtype=torch.float64, device=values.device)
    count = torch.zeros(n * p, dtype=torch.float64, device=values.device)
    total.index_add_(0, group.flatten(), position.flatten())
    count.index_add_(0, group.flatten(), torch.ones_like(position).flatten())
    mean_rank = (total[group.flatten()] / count[group.flatten()]).view(n, p)
    ranks = torch.empty_like(mean_rank)
    ranks.scatter_(1, order, mean_rank)
    return ranks


def spearman_abs(a: MapsLike, b: MapsLike) -> torch.Tensor:
    """Spearman rank correlation of ``|a|`` and ``|b|``, per map.

    Returns:
        ``(N,)`` float64 in [-1, 1]; NaN when a map is constant.
    """
    ta, tb = _pair(a, b)
    n = ta.shape[0]
    return pearson(average_ranks(ta.abs().reshape(n, -1)), average_ranks(tb.abs().reshape(n, -1)))


def _by_max_abs(t: torch.Tensor) -> torch.Tensor:
    """Each ``(H, W)`` map divided by its largest absolute value (a zero map left as it is)."""
    peak = t.abs().amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, t / torch.where(peak > 0, peak, 1.0), t)


def window_means(t: torch.Tensor, win_size: int) -> torch.Tensor:
    """The mean of every ``win_size`` squared window of each ``(..., H, W)`` map, where the
    window fits: ``(..., H - win_size + 1, W - win_size + 1)``, as ``avg_pool2d(t, win_size,
    stride=1)`` gives, from running sums along each axis (a few operations per pixel instead
    of ``win_size ** 2``)."""

    def along(v: torch.Tensor, dim: int) -> torch.Tensor:
        c = torch.cumsum(v, dim=dim)
        head = c.narrow(dim, win_size - 1, 1)
        rest = c.narrow(dim, win_size, v.shape[dim] - win_size)
        return torch.cat([head, rest - c.narrow(dim, 0, v.shape[dim] - win_size)], dim=dim)

    return along(along(t, -2), -1) / (win_size * win_size)


def _ssim_moments(t: torch.Tensor, win_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Window means of ``(N, H, W)`` maps and of their squares."""
    return window_means(t, win_size), window_means(t * t, win_size)


def _ssim_from(
    ta: torch.Tensor,
    tb: torch.Tensor,
    moments_a: tuple[torch.Tensor, torch.Tensor],
    win_size: int,
) -> torch.Tensor:
    """SSIM of normalised ``(N, H, W)`` maps, the window moments of ``ta`` given."""
    both = torch.cat([ta, tb], dim=1).flatten(1)
    data_range = both.amax(dim=1) - both.amin(dim=1)
    c1 = ((0.01 * data_range) ** 2).view(-1, 1, 1)
    c2 = ((0.03 * data_range) ** 2).view(-1, 1, 1)
    ux, xx = moments_a
    uy, yy = _ssim_moments(tb, win_size)
    xy = window_means(ta * tb, win_size)
    cov_norm = win_size**2 / (win_size**2 - 1)
    vx = cov_norm * (xx - ux * ux)
    vy = cov_norm * (yy - uy * uy)
    vxy = cov_norm * (xy - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2))


def _check_window(t: torch.Tensor, win_size: int) -> None:
    if win_size % 2 != 1 or min(t.shape[1:]) < win_size:
        raise ValueError(f"win_size must be odd and at most the maps' side; got {win_size}.")


def ssim(a: MapsLike, b: MapsLike, *, win_size: int = 7, normalise: bool = True) -> torch.Tensor:
    """Mean structural similarity of each pair of maps (scikit-image's formula and defaults).

    Args:
        a, b: ``(N, H, W)`` maps, ``H, W >= win_size``.
        win_size: side of the uniform window (odd).
        normalise: divide each map by its largest absolute value first (as Quantus does).

    Returns:
        ``(N,)`` float64 in [-1, 1], 1 for identical maps; NaN when both maps are the same
        constant (no data range).
    """
    ta, tb = _pair(a, b)
    _check_window(ta, win_size)
    if normalise:
        ta, tb = _by_max_abs(ta), _by_max_abs(tb)
    return _ssim_from(ta, tb, _ssim_moments(ta, win_size), win_size)


def hog(
    maps: MapsLike,
    *,
    orientations: int = 9,
    pixels_per_cell: int = 8,
    cells_per_block: int = 3,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Histogram-of-oriented-gradients features of each map, as scikit-image's ``hog``.

    Central-difference gradients (0 on the border rows/columns), unsigned orientations in
    ``[0, 180)`` degrees binned into ``orientations`` bins, magnitudes averaged per cell of
    ``pixels_per_cell`` squared pixels (the right/bottom remainder is dropped), then every
    ``cells_per_block`` squared block of cells L2-Hys normalised (L2, clip at 0.2, L2 again).

    Args:
        maps: ``(N, H, W)``, at least ``cells_per_block * pixels_per_cell`` on each side.

    Returns:
        ``(N, F)`` float64 features in scikit-image's order (block row, block column, cell row,
        cell column, orientation).
    """
    m = as_maps(maps).to(torch.float64)
    n, h, w = m.shape
    cell, blk = pixels_per_cell, cells_per_block
    rows, cols = h // cell, w // cell
    if rows < blk or cols < blk:
        raise ValueError(
            f"maps of {h} x {w} px are too small for HOG: at least {blk * cell} px a side."
        )
    g_row = torch.zeros_like(m)
    g_col = torch.zeros_like(m)
    g_row[:, 1:-1, :] = m[:, 2:, :] - m[:, :-2, :]
    g_col[:, :, 1:-1] = m[:, :, 2:] - m[:, :, :-2]
    magnitude = torch.hypot(g_col, g_row)
    angle = torch.remainder(torch.atan2(g_row, g_col) * (180 / torch.pi), 180)
    # bin i holds [180 i / o, 180 (i + 1) / o), decided by comparisons as scikit-image does
    edges = torch.tensor(
        [180.0 / orientations * (i + 1) for i in range(orientations - 1)],
        dtype=torch.float64,
        device=m.device,
    )
    bins = torch.bucketize(angle, edges, right=True)  # number of edges <= angle
    # each pixel's magnitude added to its cell's bin (one add per pixel), then the cell mean
    # (on CUDA index_add_ adds in no fixed order: the last bits may differ between runs)
    bins = bins[:, : rows * cell, : cols * cell]
    magnitude = magnitude[:, : rows * cell, : cols * cell]
    cell_row = torch.arange(rows * cell, device=m.device) // cell
    cell_col = torch.arange(cols * cell, device=m.device) // cell
    cell_of = (cell_row[:, None] * cols + cell_col[None, :]) * orientations  # (H', W')
    image_of = torch.arange(n, device=m.device).view(n, 1, 1) * (rows * cols * orientations)
    slot = (image_of + cell_of + bins).flatten()
    hist = torch.zeros(n * rows * cols * orientations, dtype=torch.float64, device=m.device)
    hist.index_add_(0, slot, magnitude.flatten())
    hist = (hist / (cell * cell)).view(n, rows, cols, orientations)
    blocks = hist.unfold(1, blk, 1).unfold(2, blk, 1)  # (N, br, bc, O, blk, blk)
    blocks = blocks.permute(0, 1, 2, 4, 5, 3).reshape(n, rows - blk + 1, cols - blk + 1, -1)
    out = blocks / torch.sqrt((blocks * blocks).sum(dim=-1, keepdim=True) + eps**2)
    out = out.clamp(max=0.2)
    out = out / torch.sqrt((out * out).sum(dim=-1, keepdim=True) + eps**2)
    return out.reshape(n, -1)


def hog_similarity(a: MapsLike, b: MapsLike, *, normalise: bool = True) -> torch.Tensor:
    """Pearson correlation of the :func:`hog` features of each pair of maps.

    Args:
        a, b: ``(N, H, W)`` maps (at least 24 px a side for the default HOG).
        normalise: divide each map by its largest absolute value first.

    Returns:
        ``(N,)`` float64 in [-1, 1]; NaN when a map has no gradient at all.
    """
    ta, tb = _pair(a, b)
    if normalise:
        ta, tb = _by_max_abs(ta), _by_max_abs(tb)
    return pearson(hog(ta), hog(tb))


class Similarity:
    """The three scores of :data:`SIMILARITIES` against fixed reference maps, with what belongs
    to the reference alone (its ranks, its normalised map's SSIM window moments, its HOG
    features) computed once: a sanity check compares one original with many randomised maps.

    Args:
        reference: ``(N, H, W)`` maps.
    """

    _WIN = 7  # ssim's default window

    def __init__(self, reference: MapsLike) -> None:
        ref = as_maps(reference).to(torch.float64)
        n = ref.shape[0]
        self.reference = ref
        self.side = min(ref.shape[1:])
        self.ranks = average_ranks(ref.abs().reshape(n, -1))
        self.normalised = _by_max_abs(ref)
        self.moments = _ssim_moments(self.normalised, self._WIN) if self.side >= self._WIN else None
        self.hog = hog(self.normalised) if self.side >= 24 else None

    def __call__(self, maps: MapsLike) -> dict[str, torch.Tensor]:
        """``{"spearman", "ssim", "hog"}: (N,)`` scores of ``maps`` against the reference
        (``ssim`` NaN below 7 px a side, ``hog`` below 24 px)."""
        ref = self.reference
        other = as_maps(maps, ref.device).to(torch.float64)
        if other.shape != ref.shape:
            raise ValueError(f"maps of shape {tuple(other.shape)}, reference {tuple(ref.shape)}.")
        n = ref.shape[0]
        normalised = _by_max_abs(other)
        return {
            "spearman": pearson(self.ranks, average_ranks(other.abs().reshape(n, -1))),
            "ssim": _nan(ref) if self.moments is None else _ssim_from(
                self.normalised, normalised, self.moments, self._WIN),
            "hog": _nan(ref) if self.hog is None else pearson(self.hog, hog(normalised)),
        }


def similarities(a: MapsLike, b: MapsLike) -> dict[str, torch.Tensor]:
    """The three scores of :data:`SIMILARITIES` for each pair of maps (``ssim`` is NaN for maps
    smaller than 7 px a side, ``hog`` for maps smaller than 24 px)."""
    return Similarity(a)(b)


def _nan(t: torch.Tensor) -> torch.Tensor:
    return torch.full((t.shape[0],), torch.nan, dtype=torch.float64, device=t.device)
