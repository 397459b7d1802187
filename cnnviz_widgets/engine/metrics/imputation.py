"""ROAD's noisy linear imputation (Rong et al., 2022), batched in torch.

Each removed pixel becomes the weighted mean of its eight neighbours (weight 1/6 for the four
edge neighbours, 1/12 for the four corners; neighbours outside the image are left out and the
weights of the rest are not renormalised, exactly as the reference), where a neighbour that is
itself removed is an unknown of the same system. Per image and channel this is the linear system

.. math::  d_i z_i - \\sum_{j \\in R} w_{ij} z_j = \\sum_{j \\notin R} w_{ij} x_j
           \\qquad (i \\in R),

with :math:`R` the removed pixels and :math:`d_i = \\sum_j w_{ij}` over the neighbours inside
the image. Completed by :math:`z_i = 0` for the kept pixels, its matrix :math:`M` is symmetric,
and positive definite as soon as one pixel is kept (every connected group of removed pixels
touches a kept one).

:func:`linear_impute` solves it exactly (a direct method, no tolerance). In raster order the
matrix is block tridiagonal, one block per image row (a row's pixels couple only to the rows
above and below), so block Gaussian elimination, ``S_0 = D_0``,
``S_k = D_k - E_{k-1}^T S_{k-1}^{-1} E_{k-1}``, then forward and backward substitution, needs
one Cholesky factorisation per row; each row block is restricted to that row's removed pixels
(kept pixels only contribute to the right-hand side), so a row with ``n`` removed pixels costs
``O(n^3)``. It runs in float64, batched over every image and removal mask of a call (the
channels share the matrix; masks with similar numbers of removed pixels are batched together),
on the input's device. Images wider than tall are transposed first (the stencil is symmetric).
The result equals a dense float64 solve of the reference's system to 1e-15.

:func:`noisy_linear_impute` then adds ``noise * N(0, 1)`` to the removed pixels, as the reference
(``pytorch_grad_cam.metrics.road.NoisyLinearImputer``, from the ROAD authors' code, which builds
a scipy sparse matrix per image and solves it on the CPU) does.
"""

from __future__ import annotations

import torch

EDGE_WEIGHT = 1 / 6
CORNER_WEIGHT = 1 / 12

# Systems solved together: at most this many, and at most this much memory for the stored
# row factors (up to H * W * W float64 per system).
_CHUNK_BYTES = 256 * 1024 * 1024
_CHUNK_SYSTEMS = 32


def neighbour_sum(t: torch.Tensor) -> torch.Tensor:
    """``sum_j w_ij t_j`` over each pixel's eight neighbours inside the grid, for ``(..., H, W)``.

    The kernel is ``([1, 2, 1]^T [1, 2, 1] - 4 delta) / 12`` (1/6 edges, 1/12 corners, 0 at the
    centre): two separable passes of shifted in-place additions, many times faster than a
    float64 ``conv2d`` on the CPU. Zero outside the grid.
    """
    s = t * 2
    s[..., 1:, :] += t[..., :-1, :]
    s[..., :-1, :] += t[..., 1:, :]
    o = s * 2
    o[..., 1:] += s[..., :-1]
    o[..., :-1] += s[..., 1:]
    return o.sub_(t, alpha=4).div_(12)


def _solve_rows(u: torch.Tensor, rhs: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Solve ``M z = rhs`` for a batch, by block elimination over the image rows.

    Args:
        u: ``(B, H, W)`` float64, 1 on the unknowns (removed pixels), 0 elsewhere.
        rhs: ``(B, C, H, W)`` float64, zero outside the unknowns.
        d: ``(H, W)`` float64, the sum of the in-grid neighbour weights of each pixel.

    Returns:
        ``(B, C, H, W)`` float64 solution, zero outside the unknowns.

    Only the unknowns take part: row ``k`` of system ``b`` is compressed to its unknown columns
    (padded to the most unknowns any system of the batch has in that row; padding is an
    identity block that couples to nothing). With ``V`` the row-to-row coupling pattern
    (1/6 straight down, 1/12 diagonally) and ``Hz`` the in-row one (1/6 beside), the diagonal
    blocks are ``D_k = diag(d) - Hz`` and the off-diagonal ones ``-C_k`` with ``C_k = V``, both
    restricted to the unknowns. Block elimination: ``S_k = D_k - X_k^T X_k`` with
    ``X_k = L_{k-1}^{-1} C_{k-1}`` and ``S_k = L_k L_k^T`` (Cholesky), the forward right-hand
    side ``g_k = b_k + X_k^T L_{k-1}^{-1} g_{k-1}``, then ``S_k z_k = g_k + C_k z_{k+1}``
    backwards.
    """
    b, c, h, w = rhs.shape
    dev = rhs.device
    f64 = torch.float64
    # row-to-row couplings by column, on an extended grid whose column w is the padding
    cols = torch.arange(w + 1, device=dev)
    gap = (cols[:, None] - cols[None, :]).abs()
    real = (cols[:, None] < w) & (cols[None, :] < w)
    zero = torch.zeros((), dtype=f64, device=dev)
    edge = torch.full((), EDGE_WEIGHT, dtype=f64, device=dev)
    corner = torch.full((), CORNER_WEIGHT, dtype=f64, device=dev)
    down = torch.where(real & (gap == 0), edge, torch.where(real & (gap == 1), corner, zero))
    batch = torch.arange(b, device=dev)[:, None]
    counts = u.sum(dim=2).to(torch.int64)  # (B, H) unknowns per row
    widths = counts.amax(dim=0).tolist()  # per row, the padded block size
    # column indices of each row's unknowns, in column order, padding = w
    order = torch.argsort(1 - u, dim=2, stable=True)  # unknown columns first
    slots = torch.arange(w, device=dev)
    index = torch.where(slots < counts.unsqueeze(2), order, w)  # (B, H, W)
    d_ext = torch.cat([d, torch.ones(h, 1, dtype=f64, device=dev)], dim=1)  # padding: 1
    rhs_ext = torch.cat([rhs, torch.zeros(b, c, h, 1, dtype=f64, device=dev)], dim=3)

    factors: list[torch.Tensor | None] = [None] * h
    couples: list[torch.Tensor | None] = [None] * h  # C_{k-1} restricted, for k >= 1
    forward: list[torch.Tensor | None] = [None] * h
    prev_factor: torch.Tensor | None = None
    reduced: torch.Tensor | None = None  # L_{k-1}^{-1} g_{k-1}
    for k in range(h):
        n = widths[k]
        if n == 0:  # no unknown in this row in any system: the chain is cut here
            prev_factor, reduced = None, None
            continue
        idx = index[:, k, :n]  # (B, n), increasing; padding (= w) last
        # in-row couplings join neighbouring columns, which are adjacent in idx: tridiagonal
        side = torch.where((idx[:, 1:] - idx[:, :-1] == 1) & (idx[:, 1:] < w), -edge, zero)
        s = torch.zeros(b, n, n, dtype=f64, device=dev)
        s.diagonal(dim1=1, dim2=2).copy_(d_ext[k][idx])
        s.diagonal(offset=1, dim1=1, dim2=2).copy_(side)
        s.diagonal(offset=-1, dim1=1, dim2=2).copy_(side)
        gk = rhs_ext[:, :, k, :].gather(2, idx.unsqueeze(1).expand(b, c, n)).mT  # (B, n, C)
        if prev_factor is not None and reduced is not None:
            prev = index[:, k - 1, : widths[k - 1]]
            couple = down[prev].gather(2, idx.unsqueeze(1).expand(-1, prev.shape[1], -1))
            x = torch.linalg.solve_triangular(prev_factor, couple, upper=False)
            s = torch.baddbmm(s, x.mT, x, alpha=-1)
            gk = torch.baddbmm(gk, x.mT, reduced)
            couples[k] = couple
        factor, info = torch.linalg.cholesky_ex(s)
        if bool((info > 0).any()):  # not for a valid mask (S_k is positive definite)
            raise RuntimeError("ROAD imputation: a row block is not positive definite.")
        factors[k], forward[k] = factor, gk
        prev_factor = factor
        reduced = torch.linalg.solve_triangular(factor, gk, upper=False)
    out = torch.zeros(b, c, h, w + 1, dtype=f64, device=dev)
    below: torch.Tensor | None = None  # z_{k+1} restricted
    for k in range(h - 1, -1, -1):
        row_factor, row_rhs = factors[k], forward[k]
        if row_factor is None or row_rhs is None:
            below = None
            continue
        link = couples[k + 1] if k + 1 < h else None
        if link is not None and below is not None:
            row_rhs = torch.baddbmm(row_rhs, link, below)
        zk = torch.cholesky_solve(row_rhs, row_factor)  # (B, n, C)
        n = zk.shape[1]
        out[batch, :, k, index[:, k, :n]] = zk
        below = zk
    return out[..., :w]


def linear_impute(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """Fill the removed pixels of each image by ROAD's linear imputation (no noise).

    Args:
        x: ``(B, C, H, W)`` images (any floating dtype; solved in float64).
        removed: ``(B, H, W)`` bool, True where a pixel is removed (all channels of a pixel).

    Returns:
        ``(B, C, H, W)`` in ``x``'s dtype: ``x`` where kept, the imputed values where removed.
        An image whose every pixel is removed has no kept value to spread: it becomes all zeros,
        which is what the reference's ``spsolve`` returns for that (singular) system.
    """
    if x.ndim != 4 or tuple(removed.shape) != (x.shape[0], *x.shape[2:]):
        raise ValueError(
            f"x must be (B, C, H, W) and removed (B, H, W); got {tuple(x.shape)} and "
            f"{tuple(removed.shape)}."
        )
    removed = removed.to(device=x.device, dtype=torch.bool)
    transpose = x.shape[3] > x.shape[2]
    xs = x.transpose(2, 3) if transpose else x
    rs = removed.transpose(1, 2) if transpose else removed
    b, _, h, w = xs.shape
    img = xs.to(torch.float64)
    u = rs.to(torch.float64)
    hopeless = rs.flatten(1).all(dim=1)  # nothing kept: singular, the reference gives zeros
    u[hopeless] = 0.0
    ones = torch.ones(h, w, dtype=torch.float64, device=x.device)
    d = neighbour_sum(ones)
    rhs = u.unsqueeze(1) * neighbour_sum((1 - u.unsqueeze(1)) * img)
    z = torch.empty_like(img)
    # systems with similar numbers of unknowns together, so that little padding is needed
    by_size = torch.argsort(u.sum(dim=(1, 2)), stable=True)
    chunk = max(1, min(_CHUNK_SYSTEMS, _CHUNK_BYTES // (h * w * w * 8 * 2)))
    for start in range(0, b, chunk):
        part = by_size[start : start + chunk]
        z[part] = _solve_rows(u[part], rhs[part], d)
    z[hopeless] = 0.0
    filled = torch.where(rs.unsqueeze(1), z, img).to(x.dtype)
    return filled.transpose(2, 3) if transpose else filled


def noisy_linear_impute(
    x: torch.Tensor,
    removed: torch.Tensor,
    noise: float = 0.01,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:func:`linear_impute` plus ``noise`` times standard normal noise on the removed pixels.

    Args:
        x: ``(B, C, H, W)``; removed: ``(B, H, W)`` bool.
        noise: standard deviation of the added noise, in ``x``'s units (the reference's
            ``NoisyLinearImputer(noise=0.01)``); 0 for none.
        generator: a seeded ``torch.Generator`` on ``x``'s device (``None``: torch's global one).

    Returns:
        ``(B, C, H, W)`` in ``x``'s dtype.
    """
    filled = linear_impute(x, removed)
    if noise:
        draw = torch.randn(filled.shape, generator=generator, device=x.device, dtype=filled.dtype)
        filled = torch.where(removed.unsqueeze(1).to(x.device), filled + noise * draw, filled)
    return filled
