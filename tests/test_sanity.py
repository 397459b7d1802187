"""Sanity checks (Adebayo et al. 2018): similarity scores against scipy/scikit-image, the
randomisation against Quantus 0.6's MPRT and RandomLogit, the model left as it was."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from cnnviz_widgets.engine.cam import cam
from cnnviz_widgets.engine.metrics import (
    model_randomisation,
    random_logit,
    randomisable_layers,
    sanity_check,
)
from cnnviz_widgets.engine.metrics._common import class_targets
from cnnviz_widgets.engine.metrics.similarity import (
    Similarity,
    hog,
    hog_similarity,
    spearman_abs,
    ssim,
    window_means,
)
from cnnviz_widgets.engine.targets import TargetError
from cnnviz_widgets.render.sanity import plot_sanity_check

from .helpers.metric_models import demo, demo_batch, tiny_input, tiny_net
from .model_state import Fingerprint

quantus = pytest.importorskip("quantus")
sk_hog = pytest.importorskip("skimage.feature").hog
structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def maps_pair(seed: int = 0, shape=(3, 30, 26)):
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=gen) - 0.2
    b = a + 0.4 * torch.rand(shape, generator=gen)
    a[0, :8] = 0  # ties
    b[1, 3:9] = 0.5
    return a, b


def quantus_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Quantus's ssim on 2-D maps, after its normalise_by_max of each map."""
    a, b = a / np.abs(a).max(), b / np.abs(b).max()
    return float(quantus.similarity_func.ssim(a, b))


def test_spearman_of_absolute_values_equals_scipy():
    a, b = maps_pair()
    ours = spearman_abs(a, b).numpy()
    for i in range(3):
        want = scipy.stats.spearmanr(a[i].abs().numpy().ravel(), b[i].abs().numpy().ravel())[0]
        assert abs(ours[i] - want) <= 1e-12
    assert np.isnan(spearman_abs(torch.zeros(1, 5, 5), torch.rand(1, 5, 5)).item())


def test_ssim_equals_scikit_image_with_quantus_conventions():
    a, b = maps_pair(1)
    ours = ssim(a, b).numpy()
    for i in range(3):
        assert abs(ours[i] - quantus_ssim(a[i].double().numpy(), b[i].double().numpy())) <= 1e-12
    shifted = a[:1] * 0.5 + 0.1
    raw = ssim(a[:1], shifted, normalise=False).item()
    x, y = a[0].double().numpy(), shifted[0].double().numpy()
    span = max(x.max(), y.max()) - min(x.min(), y.min())
    assert abs(raw - structural_similarity(x, y, data_range=span)) <= 1e-12


def test_window_means_equal_average_pooling():
    a, _ = maps_pair(3, (2, 41, 29))
    for win in (1, 3, 7):
        want = torch.nn.functional.avg_pool2d(a.double()[:, None], win, stride=1)[:, 0]
        assert torch.allclose(window_means(a.double(), win), want, rtol=0, atol=1e-14)


def test_similarity_against_one_reference_equals_the_pairwise_scores():
    a, b = maps_pair(4, (3, 40, 33))
    scores = Similarity(a)(b)
    want = {"spearman": spearman_abs(a, b), "ssim": ssim(a, b), "hog": hog_similarity(a, b)}
    for name, values in want.items():
        assert torch.allclose(scores[name], values, rtol=0, atol=1e-12), name
    assert not torch.allclose(scores["ssim"], Similarity(b)(b)["ssim"])  # b against b: 1


def test_given_classes_need_one_image_forward_and_are_still_checked():
    d = demo()
    x = demo_batch(4)[0]
    seen = []
    hook = d.model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    try:
        assert class_targets(d.model, x, [1, 0, 2, 1], None).tolist() == [1, 0, 2, 1]
        assert seen == [1]
        assert class_targets(d.model, x, 2, None).tolist() == [2] * 4
        predicted = class_targets(d.model, x, None, None)
        assert seen[-1] == 4  # predicted classes: the whole batch
        assert predicted.tolist() == d.model(x).argmax(1).tolist()
        with pytest.raises(TargetError, match="out of range"):
            class_targets(d.model, x, [1, 0, 99, 1], None)
        with pytest.raises(TargetError, match="4 images"):
            class_targets(d.model, x, [1, 0], None)
    finally:
        hook.remove()


def test_hog_equals_scikit_image():
    a, b = maps_pair(2, (2, 40, 33))
    for maps in (a, b):
        ours = hog(maps).numpy()
        want = np.stack([sk_hog(m.double().numpy()) for m in maps])
        assert ours.shape == want.shape
        assert np.abs(ours - want).max() <= 1e-6  # scikit-image sums cells in float32
    sim = hog_similarity(a, b).numpy()
    for i in range(2):
        fa = sk_hog((a[i] / a[i].abs().max()).double().numpy())
        fb = sk_hog((b[i] / b[i].abs().max()).double().numpy())
        assert abs(sim[i] - scipy.stats.pearsonr(fa, fb)[0]) <= 1e-6
    with pytest.raises(ValueError, match="too small"):
        hog(torch.rand(1, 20, 20))


def _explain(layer: str, method: str = "GradCAM"):
    def explain(model, inputs, targets, **kwargs):
        return cam(model, torch.as_tensor(inputs), layer, method, [int(t) for t in targets])

    return explain


@pytest.mark.parametrize("mode, order", [("cascade", "top_down"), ("independent", "independent")])
def test_randomisation_equals_quantus_mprt(mode, order):
    model, x = tiny_net(), tiny_input(3, 24)
    with torch.no_grad():
        y = model(x).argmax(1).numpy()
    before = Fingerprint.of(model)
    rng = torch.get_rng_state()
    ours = sanity_check(model, x, "GradCAM", layer="conv2", mode=mode, seed=42)
    before.assert_same(model)
    assert torch.equal(rng, torch.get_rng_state())  # torch's global generator untouched
    metric = quantus.MPRT(layer_order=order, seed=42, disable_warnings=True)
    want = metric(
        model=model, x_batch=x.numpy(), y_batch=y, a_batch=None, explain_func=_explain("conv2")
    )
    assert ours.layers == ["fc", "conv2", "bn1", "conv1"]  # from the output to the input
    assert set(ours.layers) == set(want) - {"original"}  # Quantus: "independent" input first
    for step in ours.steps:
        assert np.abs(step.scores["spearman"] - np.asarray(want[step.layer])).max() <= 1e-9


def test_random_logit_equals_quantus():
    model, x = tiny_net(), tiny_input(3, 24)
    with torch.no_grad():
        y = model(x).argmax(1).numpy()
    seen: list[int] = []
    explain = _explain("conv2")

    def recording(model, inputs, targets, **kwargs):
        seen.extend(int(t) for t in targets)
        return explain(model, inputs, targets)

    def ssim_2d(a, b, batched=False, **kwargs):  # Quantus flattens the maps (a 1-D SSIM)
        a, b = a.reshape(len(a), 24, 24), b.reshape(len(b), 24, 24)
        return np.asarray(quantus.similarity_func.ssim(a, b, batched=True))

    want, others = [], []
    for i in range(3):  # one image per call: Quantus normalises by the batch's maximum
        seen.clear()
        metric = quantus.RandomLogit(
            num_classes=5, seed=42, similarity_func=ssim_2d, disable_warnings=True
        )
        want += metric(
            model=model,
            x_batch=x[i : i + 1].numpy(),
            y_batch=y[i : i + 1],
            a_batch=None,
            explain_func=recording,
        )
        others.append(seen[-1])
    ours = random_logit(model, x, "GradCAM", layer="conv2", random_target=others)
    assert np.abs(ours - np.asarray(want)).max() <= 1e-6
    check = sanity_check(model, x, "GradCAM", layer="conv2", random_target=others)
    assert check.random_logit is not None
    assert np.abs(check.random_logit.scores["ssim"] - ours).max() <= 1e-12
    drawn = sanity_check(model, x, "GradCAM", layer="conv2", seed=5).random_targets
    assert drawn is not None and (drawn != check.targets).all()


def test_cascade_on_the_demo_model_and_the_figure():
    d = demo()
    x = demo_batch(3)[0]
    before = Fingerprint.of(d.model)
    result = sanity_check(d.model, x, "GradCAM", mode="cascade", seed=0)
    guided = sanity_check(d.model, x, "guided", seed=0, layers=["classifier.0", "features.11"])
    before.assert_same(d.model)
    names = randomisable_layers(d.model, x)
    assert result.layers == names[::-1]  # from the output towards the input
    assert result.layers[0] == "classifier.0"
    assert result.original.shape == (3, 64, 64)
    assert all(s.maps is not None and s.maps.shape == (3, 64, 64) for s in result.steps)
    assert result.scores("hog").shape == (len(names), 3)
    final = model_randomisation(d.model, x, "GradCAM", seed=0)
    np.testing.assert_allclose(final, result.steps[-1].scores["spearman"], equal_nan=True)
    assert guided.layers == ["classifier.0", "features.11"]
    # guided backpropagation barely depends on the top layers (the paper's finding)
    assert guided.mean_scores("spearman")[0] > 0.7
    assert guided.fails() and guided.average_similarity() > result.average_similarity()
    assert result.fails(over="final") == (result.final_similarity() > 0.5)
    records = result.records()
    assert {r["similarity"] for r in records} == {"spearman", "ssim", "hog"}
    fig = plot_sanity_check(result, d.samples[:3], show=2)
    assert len(fig.axes) == 2 * (2 + len(names) + 1) + 1
    with pytest.raises(ValueError, match="mode"):
        sanity_check(d.model, x, "GradCAM", mode="sideways")
    with pytest.raises(ValueError, match="reset_parameters"):
        sanity_check(d.model, x, "GradCAM", layers=["features.1"])
