"""Every CAM method against a slow, obviously-correct re-implementation of its formula.

The model is cut by hand into ``features`` (the target layer's output ``A``) and ``head``, so
the expected maps come from plain autograd on ``head(A)`` and loops over channels, with none
of the engine's hooks, chunking or vectorisation. Raw maps (``raw=True``: after the method's
ReLU, before normalisation) are compared at 1e-5.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from sklearn.decomposition import KernelPCA
from threadpoolctl import threadpool_limits
from torch import nn

from cnnviz_widgets.engine.cam import cam

TARGETS = [3, 7]


def make_model(inplace: bool = False) -> nn.Sequential:
    """``Sequential(features, head)``: conv/BN/ReLU features, pooled linear head (10 classes)."""
    torch.manual_seed(1)
    features = nn.Sequential(
        nn.Conv2d(3, 12, 3, padding=1),
        nn.ReLU(inplace=inplace),
        nn.Conv2d(12, 20, 3, stride=2, padding=1),
        nn.BatchNorm2d(20),
        nn.ReLU(inplace=inplace),
        nn.Conv2d(20, 24, 3, padding=1, bias=False),
        nn.BatchNorm2d(24),
        nn.ReLU(inplace=inplace),
    )
    for bn in (features[3], features[6]):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10))
    head[2].weight.data *= 20  # scores that respond clearly to masked/ablated inputs
    return nn.Sequential(features, head).eval()


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def model() -> nn.Sequential:
    return make_model()


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(2, 3, 24, 24, generator=torch.Generator().manual_seed(2))


def acts_and_grads(model: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``A = features(x)`` and ``G[n] = d head(A)[n, target_n] / d A[n]`` by plain autograd."""
    with torch.no_grad():
        a = model[0](x)
    a = a.clone().requires_grad_(True)
    scores = model[1](a)
    y = sum(scores[n, t] for n, t in enumerate(TARGETS))
    (g,) = torch.autograd.grad(y, a)
    return a.detach().double(), g.double()


def assert_raw_close(ours: np.ndarray, expected: torch.Tensor) -> None:
    expected = expected.detach().double().numpy()
    scale = max(float(np.abs(expected).max()), 1e-30)
    assert float(np.abs(expected).max()) > 0, "degenerate expected map"
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5 * scale)


def raw(model: nn.Module, x: torch.Tensor, method: str, **kw) -> np.ndarray:
    return cam(model, x, "0", method, target=TARGETS, raw=True, **kw)


def channel_sum(weights, a: torch.Tensor) -> torch.Tensor:
    """``relu(sum_c w[n][c] * A[n, c])`` with explicit loops."""
    out = torch.zeros(a.shape[0], *a.shape[2:], dtype=torch.float64)
    for n in range(a.shape[0]):
        for c in range(a.shape[1]):
            out[n] += weights[n][c] * a[n, c]
    return out.clamp_min(0)


def test_gradcam(model, x):
    a, g = acts_and_grads(model, x)
    w = [[g[n, c].mean() for c in range(a.shape[1])] for n in range(a.shape[0])]
    assert_raw_close(raw(model, x, "GradCAM"), channel_sum(w, a))


def test_gradcam_plusplus(model, x):
    a, g = acts_and_grads(model, x)
    w = []
    for n in range(a.shape[0]):
        row = []
        for c in range(a.shape[1]):
            total_a = a[n, c].sum()
            weight = 0.0
            for i in range(a.shape[2]):
                for j in range(a.shape[3]):
                    gij = g[n, c, i, j]
                    if gij == 0:
                        continue
                    alpha = gij**2 / (2 * gij**2 + total_a * gij**3 + 1e-6)
                    weight += max(float(gij), 0.0) * alpha
            row.append(weight)
        w.append(row)
    assert_raw_close(raw(model, x, "GradCAMPlusPlus"), channel_sum(w, a))


def test_xgradcam(model, x):
    a, g = acts_and_grads(model, x)
    w = [
        [(g[n, c] * a[n, c]).sum() / (a[n, c].sum() + 1e-7) for c in range(a.shape[1])]
        for n in range(a.shape[0])
    ]
    assert_raw_close(raw(model, x, "XGradCAM"), channel_sum(w, a))


@pytest.mark.parametrize(
    ("method", "contribution"),
    [
        ("HiResCAM", lambda g, a: g * a),
        ("LayerCAM", lambda g, a: g.clamp_min(0) * a),
        ("GradCAMElementWise", lambda g, a: (g * a).clamp_min(0)),
    ],
)
def test_elementwise(model, x, method, contribution):
    a, g = acts_and_grads(model, x)
    expected = torch.zeros(a.shape[0], *a.shape[2:], dtype=torch.float64)
    for n in range(a.shape[0]):
        for c in range(a.shape[1]):
            expected[n] += contribution(g[n, c], a[n, c])
    assert_raw_close(raw(model, x, method), expected.clamp_min(0))


def pca_projection(stack: torch.Tensor) -> torch.Tensor:
    """First-principal-component projection per sample with the documented sign rule.

    Positions are observations, channels variables (centred over positions); the sign makes
    the projection correlate positively with the channel sum of ``stack``.
    """
    out = []
    for sample in stack.double().numpy():
        c, h, w = sample.shape
        matrix = np.stack([sample[k].reshape(-1) for k in range(c)], axis=1)  # (hw, C)
        centred = matrix - matrix.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        projection = centred @ vt[0]
        guide = matrix.sum(axis=1)
        if np.sum(projection * (guide - guide.mean())) < 0:
            projection = -projection
        out.append(projection.reshape(h, w))
    return torch.from_numpy(np.stack(out))


def test_eigencam(model, x):
    a, _ = acts_and_grads(model, x)
    assert_raw_close(raw(model, x, "EigenCAM"), pca_projection(a).clamp_min(0))


def test_eigengradcam(model, x):
    a, g = acts_and_grads(model, x)
    assert_raw_close(raw(model, x, "EigenGradCAM"), pca_projection(g * a).clamp_min(0))


def test_eigen_sign_rule_orients_towards_channel_sum(model, x):
    """The documented rule, checked on the un-rectified projection through the public API:
    flipping every activation's sign cannot flip the map (it is oriented by the data)."""
    a, _ = acts_and_grads(model, x)
    ours = raw(model, x, "EigenCAM")
    guide = a.sum(dim=1).numpy()
    for n in range(a.shape[0]):
        positive = ours[n] > 0
        assert guide[n][positive].mean() > guide[n].mean()


@pytest.mark.parametrize("method", ["GradCAM", "LayerCAM", "ScoreCAM"])
def test_eigen_smooth(model, x, method):
    a, g = acts_and_grads(model, x)
    if method == "GradCAM":
        stack = g.mean(dim=(2, 3), keepdim=True) * a
    elif method == "LayerCAM":
        stack = g.clamp_min(0) * a
    else:
        stack = score_weights(model, x, a)[:, :, None, None] * a
    ours = raw(model, x, method, eigen_smooth=True)
    assert_raw_close(ours, pca_projection(stack).clamp_min(0))


@pytest.mark.parametrize("kernel", ["sigmoid", "rbf", "linear"])
def test_kpca_cam(model, x, kernel):
    a, _ = acts_and_grads(model, x)
    expected = []
    for sample in a.numpy():
        matrix = sample.reshape(sample.shape[0], -1).T
        matrix = matrix - matrix.mean(axis=0)
        kpca = KernelPCA(n_components=1, kernel=kernel, eigen_solver="dense")
        expected.append(kpca.fit_transform(matrix).reshape(sample.shape[1:]))
    expected = torch.from_numpy(np.stack(expected)).clamp_min(0)
    assert_raw_close(raw(model, x, "KPCA_CAM", kernel=kernel), expected)


def test_fem(model, x):
    a, _ = acts_and_grads(model, x)
    w = []
    for n in range(a.shape[0]):
        row = []
        for c in range(a.shape[1]):
            values = a[n, c].flatten().tolist()
            mean = sum(values) / len(values)
            std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
            row.append(sum(v > mean + 2 * std for v in values) / len(values))
        w.append(row)
    assert_raw_close(raw(model, x, "FEM"), channel_sum(w, a))


def upsample_corners(m: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling with corners aligned, one output pixel at a time."""
    h, w = m.shape
    out = np.zeros((height, width))
    for i in range(height):
        for j in range(width):
            y = i * (h - 1) / (height - 1)
            xx = j * (w - 1) / (width - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(xx))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = y - y0, xx - x0
            out[i, j] = (
                m[y0, x0] * (1 - dy) * (1 - dx)
                + m[y0, x1] * (1 - dy) * dx
                + m[y1, x0] * dy * (1 - dx)
                + m[y1, x1] * dy * dx
            )
    return out


def score_weights(model: nn.Module, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """ScoreCAM's ``softmax_c(score(x * mask_c))`` with one forward pass per channel."""
    height, width = x.shape[-2:]
    weights = torch.zeros(a.shape[:2], dtype=torch.float64)
    for n in range(a.shape[0]):
        scores = []
        for c in range(a.shape[1]):
            up = upsample_corners(a[n, c].numpy(), height, width)
            mask = (up - up.min()) / (up.max() - up.min() + 1e-8)
            masked = x[n : n + 1] * torch.from_numpy(mask).float()
            with torch.no_grad():
                scores.append(float(model(masked)[0, TARGETS[n]]))
        weights[n] = torch.softmax(torch.tensor(scores, dtype=torch.float64), dim=0)
    return weights


def test_scorecam(model, x):
    a, _ = acts_and_grads(model, x)
    expected = channel_sum(score_weights(model, x, a), a)
    assert_raw_close(raw(model, x, "ScoreCAM", batch_size=7), expected)


def ablation_weights(model: nn.Sequential, a: torch.Tensor, value_of) -> torch.Tensor:
    """``(y - y_c) / y`` with channel ``c`` of ``A`` set to ``value_of(n, c)``, run through the
    head one channel at a time."""
    weights = torch.zeros(a.shape[:2], dtype=torch.float64)
    a32 = a.float()
    for n in range(a.shape[0]):
        with torch.no_grad():
            y = float(model[1](a32[n : n + 1])[0, TARGETS[n]])
            for c in range(a.shape[1]):
                ablated = a32[n : n + 1].clone()
                ablated[0, c] = value_of(n, c)
                y_c = float(model[1](ablated)[0, TARGETS[n]])
                weights[n, c] = (y - y_c) / y
    return weights


def test_ablationcam_zero_minimum(model, x):
    """Post-ReLU layer (minimum exactly 0): ablated channels are set to 0."""
    a, _ = acts_and_grads(model, x)
    assert all(float(a[n].min()) == 0 for n in range(a.shape[0]))
    expected = channel_sum(ablation_weights(model, a, lambda n, c: 0.0), a)
    assert_raw_close(raw(model, x, "AblationCAM", batch_size=5), expected)


def test_ablationcam_fixed_value(model, x):
    a, _ = acts_and_grads(model, x)
    expected = channel_sum(ablation_weights(model, a, lambda n, c: -0.5), a)
    ours = raw(model, x, "AblationCAM", ablation_value=-0.5, batch_size=5)
    assert_raw_close(ours, expected)


def test_ablationcam_reference_rule_for_negative_minimum():
    """A layer with negative values: the reference writes ``min - k * 1e7`` into the k-th copy
    (k = 1, 2, ... within each batch of ``batch_size`` copies)."""
    torch.manual_seed(3)
    features = nn.Sequential(nn.Conv2d(3, 10, 3, padding=1))  # no ReLU: negative minimum
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(10, 10))
    model = nn.Sequential(features, head).eval()
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(4))
    a, _ = acts_and_grads(model, x)
    batch = 4

    def value_of(n: int, c: int) -> float:
        low = a[n].float().min()
        value = low
        for _ in range(c % batch + 1):
            value = value - 1e7  # float32 steps, as the reference
        return float(value)

    expected = channel_sum(ablation_weights(model, a, value_of), a)
    assert_raw_close(raw(model, x, "AblationCAM", batch_size=batch), expected)


def test_fullgrad():
    """Input term and per-bias-layer terms, each channel normalised separately (the reference's
    ``scale_accross_batch_and_channels``, with cv2 for the resize)."""
    model = make_model()
    x = torch.randn(2, 3, 24, 24, generator=torch.Generator().manual_seed(5))
    features = model[0]
    xg = x.clone().requires_grad_(True)
    z = xg
    biased = []  # (output, effective bias) of every conv/BN with a bias, in order
    for layer in features:
        z = layer(z)
        if isinstance(layer, nn.Conv2d) and layer.bias is not None:
            biased.append((z, layer.bias.detach().double()))
        elif isinstance(layer, nn.BatchNorm2d):
            bias = layer.bias - layer.running_mean * layer.weight / torch.sqrt(
                layer.running_var + layer.eps
            )
            biased.append((z, bias.detach().double()))
    scores = model[1](z)
    y = sum(scores[n, t] for n, t in enumerate(TARGETS))
    grads = torch.autograd.grad(y, [xg] + [out for out, _ in biased])

    def normalised(m: np.ndarray) -> np.ndarray:
        m = m - m.min()
        return m / (1e-7 + m.max())

    expected = np.zeros((2, 24, 24))
    for n in range(2):
        for c in range(3):
            term = np.abs(grads[0][n, c].double().numpy() * x[n, c].double().numpy())
            expected[n] += normalised(term)
        for (_, bias), grad in zip(biased, grads[1:], strict=True):
            for c in range(grad.shape[1]):
                term = normalised(np.abs(float(bias[c]) * grad[n, c].double().numpy()))
                expected[n] += cv2.resize(np.float32(term), (24, 24))
    ours = cam(model, x, None, "FullGrad", target=TARGETS, raw=True)
    assert_raw_close(ours, torch.from_numpy(expected))


def test_ablationcam_when_copies_cannot_broadcast():
    """A layer whose output is concatenated with a tensor from before it: the ablated copies
    cannot meet the single-sample tensor, so every copy runs the whole network."""

    class Concat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(6)
            self.a = nn.Conv2d(3, 5, 3, padding=1)
            self.b = nn.Conv2d(5, 6, 3, padding=1)
            self.fc = nn.Linear(11, 10)

        def head(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.cat([z, torch.relu(y)], dim=1).mean(dim=(2, 3)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = torch.relu(self.a(x))
            return self.head(z, self.b(z))

    model = Concat().eval()
    x = torch.randn(2, 3, 10, 10, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        z = torch.relu(model.a(x))
        y = model.b(z)
    weights = torch.zeros(2, 6, dtype=torch.float64)
    for n in range(2):
        with torch.no_grad():
            base = float(model.head(z[n : n + 1], y[n : n + 1])[0, TARGETS[n]])
            for c in range(6):
                ablated = y[n : n + 1].clone()
                value = y[n].min()
                for _ in range(c + 1):  # the reference's rule for a negative minimum
                    value = value - 1e7
                ablated[0, c] = value
                weights[n, c] = (
                    base - float(model.head(z[n : n + 1], ablated)[0, TARGETS[n]])
                ) / base
    expected = channel_sum(weights, y.double())
    ours = cam(model, x, "b", "AblationCAM", target=TARGETS, raw=True)
    assert_raw_close(ours, expected)


def test_kpca_top_eigenpair_of_a_large_layer_equals_the_full_decomposition(monkeypatch):
    """Above EXACT_POSITIONS positions KPCA_CAM finds only the top eigenpair (float32
    LOBPCG); it must give the reference's full float64 ``eigh`` result, sign included."""
    from cnnviz_widgets.engine.cam import projection

    torch.manual_seed(0)
    ramp = torch.linspace(0, 1, 40)[None, None, :, None]
    stack = torch.relu(torch.randn(2, 16, 40, 40)) + ramp * torch.tensor([1.0, -1.0])[:, None,
                                                                                     None, None]
    assert projection.EXACT_POSITIONS < 40 * 40
    fast = projection.kernel_component(stack)
    monkeypatch.setattr(projection, "EXACT_POSITIONS", 10**9)
    exact = projection.kernel_component(stack)
    scale = exact.abs().amax(dim=(1, 2), keepdim=True)
    assert ((fast - exact).abs() / scale).max() < 1e-3
