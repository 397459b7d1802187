"""Projections of a stack of maps onto its first principal component (EigenCAM and friends).

The reference (``utils/svd_on_activations.py``) treats each sample's ``(C, h, w)`` stack as
``h*w`` observations of ``C`` variables, centres every variable (channel) over the positions,
and projects the observations onto the first right singular vector. NaNs count as 0.

Sign rule. A singular vector's sign is arbitrary (the reference keeps whatever LAPACK returns,
and the CAM's ReLU then keeps one side or the other). Here the projection is oriented so that it
correlates positively with the channel sum of the same stack, ``stack.sum(dim=1)``: for EigenCAM
the summed activation, for EigenGradCAM the summed gradient x activation (HiResCAM's map), for
``eigen_smooth`` the method's own un-smoothed map. So the positive side is the side that agrees
with what the stack says without smoothing. Exactly uncorrelated projections keep LAPACK's sign.
"""

from __future__ import annotations

import torch


def first_component(stack: torch.Tensor) -> torch.Tensor:
    """Per-sample projection of ``(N, C, h, w)`` onto its first principal component.

    Computed in float64 (an SVD of the centred ``(h*w, C)`` matrix) and returned as float32
    ``(N, h, w)`` in the units of ``stack`` (the projection's scale is the first singular value
    times the unit left singular vector). Oriented by the module's sign rule.
    """
    n, c, h, w = stack.shape
    data = torch.nan_to_num(stack.detach(), nan=0.0).to(torch.float64)
    data = data.reshape(n, c, h * w).transpose(1, 2)  # (N, hw, C): positions x channels
    centred = data - data.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    projection = (centred @ vh[:, 0, :].unsqueeze(-1)).squeeze(-1)  # (N, hw)
    guide = data.sum(dim=2)
    agreement = (projection * (guide - guide.mean(dim=1, keepdim=True))).sum(dim=1)
    sign = torch.where(agreement < 0, -1.0, 1.0).to(projection)
    return (projection * sign[:, None]).reshape(n, h, w).to(torch.float32)


KERNELS = ("linear", "poly", "rbf", "sigmoid", "cosine")

EXACT_POSITIONS = 1024
"""Most positions (h * w) whose kernel matrix gets the reference's full float64 ``eigh``."""


def _top_eigenpair(k: torch.Tensor, exact: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Largest eigenvalue and its unit eigenvector of the symmetric matrix ``k``."""
    if exact:
        values, vectors = torch.linalg.eigh(k)
        return values[-1], vectors[:, -1]
    generator = torch.Generator().manual_seed(0)  # a fixed start: the same map every time
    start = torch.randn(k.shape[0], 1, generator=generator, dtype=k.dtype)
    # tol 1e-4: the vector agrees with eigh to about 1e-4 of its largest entry, below the
    # 1/255 steps in which a map is shown
    values, vectors = torch.lobpcg(k, k=1, X=start, largest=True, tol=1e-4, niter=200)
    return values[0], vectors[:, 0]


def _kernel_matrix(
    x: torch.Tensor, kernel: str, gamma: float, degree: float, coef0: float
) -> torch.Tensor:
    """scikit-learn's ``pairwise_kernels(x, x, metric=kernel)`` for ``(P, C)`` observations."""
    if kernel == "linear":
        return x @ x.T
    if kernel == "poly":
        return (x @ x.T).mul_(gamma).add_(coef0).pow_(degree)
    if kernel == "sigmoid":
        return (x @ x.T).mul_(gamma).add_(coef0).tanh_()
    if kernel == "rbf":
        sq = (x * x).sum(dim=1)
        dist = (sq[:, None] + sq[None, :] - 2 * (x @ x.T)).clamp_min(0)
        return torch.exp(-gamma * dist)
    if kernel == "cosine":
        unit = x / x.norm(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        return unit @ unit.T
    raise ValueError(f"Unknown kernel {kernel!r}; use one of {', '.join(KERNELS)}.")


def kernel_component(
    stack: torch.Tensor,
    kernel: str = "sigmoid",
    gamma: float | None = None,
    degree: float = 3,
    coef0: float = 1.0,
) -> torch.Tensor:
    """Per-sample first kernel principal component of ``(N, C, h, w)`` -> ``(N, h, w)`` float32.

    scikit-learn's ``KernelPCA(n_components=1, kernel=kernel, gamma=gamma).fit_transform`` on
    the channel-centred ``(h*w, C)`` matrix, as the reference's KPCA_CAM: the centred kernel
    matrix's top eigenvector scaled by the square root of its eigenvalue (0 when the
    eigenvalue is not positive). ``gamma=None`` means ``1 / C``. The sign is scikit-learn's
    (``svd_flip``): the entry of largest magnitude is positive.

    Up to :data:`EXACT_POSITIONS` positions the kernel matrix is decomposed in float64 with a
    full ``eigh``, as the reference. Above (ResNet's 112 x 112 first layer has 12,544
    positions, where a full ``eigh`` takes minutes and the float64 matrix 1.3 GB) the matrix is
    float32 and only its top eigenpair is found (LOBPCG): seconds, and half the memory.
    """
    n, c, h, w = stack.shape
    gamma = 1.0 / c if gamma is None else float(gamma)
    exact = h * w <= EXACT_POSITIONS
    data = torch.nan_to_num(stack.detach(), nan=0.0)
    data = data.to(torch.float64 if exact else torch.float32)
    data = data.reshape(n, c, h * w).transpose(1, 2)
    out = []
    for sample in data:
        x = sample - sample.mean(dim=0, keepdim=True)
        k = _kernel_matrix(x, kernel, gamma, degree, coef0)
        # centred in place: the matrix of a large layer is the memory that counts
        col, row, total = k.mean(dim=0, keepdim=True), k.mean(dim=1, keepdim=True), k.mean()
        k.sub_(col).sub_(row).add_(total)
        value, vector = _top_eigenpair(k, exact)
        del k
        value = value.clamp_min(0)
        vector = vector * torch.sign(vector[vector.abs().argmax()])
        out.append(vector * value.sqrt())
    return torch.stack(out).reshape(n, h, w).to(torch.float32)
