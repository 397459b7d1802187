"""ROAD against pytorch-grad-cam 1.5: thresholds, imputation and scores (noise 0 and noisy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam.metrics import road as reference
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from cnnviz_widgets.engine.cam import cam
from cnnviz_widgets.engine.metrics import road
from cnnviz_widgets.engine.metrics.imputation import linear_impute, noisy_linear_impute
from cnnviz_widgets.engine.metrics.road import percentile_thresholds, removal_masks

from .helpers.metric_models import demo, demo_batch, tiny_input, tiny_net
from .model_state import Fingerprint

# the reference's scipy/numpy calls warn (numpy 2 deprecations; a singular all-removed system)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


@pytest.fixture
def no_reference_noise(monkeypatch):
    """The reference imputer with noise 0 (its default argument patched)."""
    init = reference.NoisyLinearImputer.__init__
    monkeypatch.setattr(init, "__defaults__", (0.0, reference.neighbors_weights))


def dense_solution(img: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """The reference's own sparse system, solved densely in float64: the imputed image."""
    a, b = reference.NoisyLinearImputer.setup_sparse_system(
        (~removed).double().numpy(), img.double().numpy(), reference.neighbors_weights
    )
    out = img.double().reshape(img.shape[0], -1).clone()
    if a.shape[0]:
        idx = np.flatnonzero(removed.numpy().ravel())
        out[:, idx] = torch.from_numpy(np.linalg.solve(a.toarray(), b)).T
    return out.reshape(img.shape)


def test_thresholds_are_numpy_percentiles_bit_for_bit():
    gen = torch.Generator().manual_seed(0)
    for shape in ((4, 4096), (3, 7 * 5), (2, 1), (2, 2)):
        v = torch.rand(shape, generator=gen)
        v[0, : shape[1] // 3] = 0.0  # ties, as a ReLU'd CAM has
        pcts = (0, 10, 20, 33.3, 50, 66.7, 90, 99, 100)
        ours = percentile_thresholds(v, pcts)
        for i in range(shape[0]):
            for j, p in enumerate(pcts):
                want = np.percentile(v[i].numpy(), p)
                assert want.dtype == np.float32
                assert ours[i, j].item() == want, (shape, p)


def test_removal_masks_follow_the_reference_rule():
    gen = torch.Generator().manual_seed(1)
    maps = torch.rand(2, 9, 11, generator=gen)
    maps[1, :4] = 0
    for order, flip in (("most", False), ("least", True)):
        masks = removal_masks(maps, (10, 50, 90), order)
        for i in range(2):
            m = (1 - maps[i]) if flip else maps[i]
            for j, p in enumerate((10, 50, 90)):
                kept = m.numpy() < np.percentile(m.numpy(), p)
                assert np.array_equal(~masks[i, j].numpy(), kept)


def test_imputation_is_the_exact_solution_of_the_reference_system():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(6, 2, 9, 7, generator=gen, dtype=torch.float64)
    removed = torch.rand(6, 9, 7, generator=gen) < torch.tensor([0.1, 0.5, 0.9, 0.97, 0, 0.5])[
        :, None, None
    ].expand(6, 9, 7)
    removed[5, 4] = False  # a row with nothing removed cuts the chain of row blocks
    removed[5, 0] = True
    filled = linear_impute(x, removed)
    for i in range(6):
        want = dense_solution(x[i], removed[i])
        assert torch.allclose(filled[i], want, rtol=0, atol=1e-12)
    wide = linear_impute(x.transpose(2, 3), removed.transpose(1, 2))  # 7 x 9: transposed inside
    assert torch.allclose(wide.transpose(2, 3), filled, rtol=0, atol=1e-12)


def test_imputation_equals_the_reference_imputer_and_all_removed_gives_zeros():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(3, 3, 16, 12, generator=gen)
    removed = torch.rand(3, 16, 12, generator=gen) < 0.6
    removed[2] = True  # nothing kept: the reference's singular solve returns zeros
    ref = reference.NoisyLinearImputer(noise=0.0)
    want = torch.stack([ref(x[i], (~removed[i]).float()) for i in range(3)])
    got = linear_impute(x, removed)
    assert got.dtype == torch.float32
    assert (got - want).abs().max().item() <= 1e-6
    assert torch.equal(got[2], torch.zeros_like(got[2]))


def test_noise_is_seeded_normal_on_the_removed_pixels_only():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(4, 3, 32, 32, generator=gen)
    removed = torch.rand(4, 32, 32, generator=gen) < 0.5
    clean = linear_impute(x, removed)
    noisy = noisy_linear_impute(x, removed, 0.01, torch.Generator().manual_seed(7))
    again = noisy_linear_impute(x, removed, 0.01, torch.Generator().manual_seed(7))
    assert torch.equal(noisy, again)
    delta = (noisy - clean).permute(1, 0, 2, 3)
    assert torch.equal(delta[:, ~removed], torch.zeros_like(delta[:, ~removed]))
    drawn = delta[:, removed].double()
    assert abs(drawn.mean().item()) < 5e-4
    assert abs(drawn.std().item() - 0.01) < 5e-4


def _reference_road(cls, model, x, maps, classes):
    targets = [ClassifierOutputTarget(int(c)) for c in classes]
    return cls()(x, maps, targets, model)


@pytest.mark.parametrize("which", ["tiny", "demo"])
def test_road_equals_pytorch_grad_cam_without_noise(which, no_reference_noise):
    if which == "tiny":
        model, x, layer = tiny_net(), tiny_input(3, 20), "conv2"
    else:
        model, x, layer = demo().model, demo_batch(4)[0], "features.11"
    maps = cam(model, x, layer, "GradCAM")
    maps[-1] = torch.rand(maps.shape[1:], generator=torch.Generator().manual_seed(5)).numpy()
    with torch.no_grad():
        classes = model(x).argmax(1)
    before = Fingerprint.of(model)
    ours = road(model, x, maps, order="most", noise=0.0)
    least = road(model, x, maps, classes.tolist(), order="least", noise=0.0, batch_size=7)
    both = road(model, x, maps, order="combined", noise=0.0)
    before.assert_same(model)
    morf = _reference_road(reference.ROADMostRelevantFirstAverage, model, x, maps, classes)
    lerf = _reference_road(reference.ROADLeastRelevantFirstAverage, model, x, maps, classes)
    assert np.abs(ours - morf).max() <= 1e-5
    assert np.abs(least - lerf).max() <= 1e-5
    assert np.abs(both - (lerf - morf) / 2).max() <= 1e-5
    if which == "tiny":  # ROADCombined itself, and other percentiles
        combined = _reference_road(reference.ROADCombined, model, x, maps, classes)
        assert np.abs(both - combined).max() <= 1e-5
        pcts = [5, 25, 75]
        ref = reference.ROADMostRelevantFirstAverage(pcts)(
            x, maps, [ClassifierOutputTarget(int(c)) for c in classes], model
        )
        assert np.abs(road(model, x, maps, percentiles=pcts, noise=0.0) - ref).max() <= 1e-5


def test_road_with_noise_matches_the_reference_statistically():
    """Both draw N(0, 0.01^2) per removed pixel (the reference from torch's global generator,
    ours from a seeded one): over several seeds the two agree in mean and spread."""
    model, x = tiny_net(), tiny_input(3, 16)
    maps = cam(model, x, "conv2", "GradCAM")
    with torch.no_grad():
        classes = model(x).argmax(1)
    pcts = [20, 50, 80]
    ours = np.stack(
        [road(model, x, maps, order="most", percentiles=pcts, seed=s) for s in range(8)]
    )
    theirs = []
    for s in range(8):
        torch.manual_seed(100 + s)
        metric = reference.ROADMostRelevantFirstAverage(pcts)
        theirs.append(metric(x, maps, [ClassifierOutputTarget(int(c)) for c in classes], model))
    theirs_arr = np.stack(theirs)
    clean = road(model, x, maps, order="most", percentiles=pcts, noise=0.0)
    spread = max(ours.std(axis=0).max(), theirs_arr.std(axis=0).max(), 1e-6)
    assert np.abs(ours.mean(axis=0) - theirs_arr.mean(axis=0)).max() <= 3 * spread
    assert np.abs(ours.mean(axis=0) - clean).max() <= 3 * spread
    assert 0.3 < ours.std(axis=0).mean() / max(theirs_arr.std(axis=0).mean(), 1e-9) < 3
    again = road(model, x, maps, order="most", percentiles=pcts, seed=3)
    assert np.array_equal(again, ours[3])


def test_road_checks_its_arguments():
    model, x = tiny_net(), tiny_input(2, 16)
    maps = np.zeros((2, 16, 16), np.float32)
    with pytest.raises(ValueError, match="order"):
        road(model, x, maps, order="middle")
    with pytest.raises(ValueError, match="percentiles"):
        road(model, x, maps, percentiles=[120])
    with pytest.raises(ValueError, match="one map per image"):
        road(model, x, maps[:1])
    # maps at another size are resized to the input's; a constant map removes everything
    small = road(model, x, np.zeros((2, 8, 8), np.float32), noise=0.0)
    assert np.isfinite(small).all()
