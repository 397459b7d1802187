"""Localisation, complexity and robustness metrics against Quantus 0.6 on the same maps and
noise; the metric registry; dataset-level evaluation."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from cnnviz_widgets.engine.cam import cam
from cnnviz_widgets.engine.metrics import (
    GROUPS,
    METRICS,
    available_metrics,
    bootstrap_interval,
    box_masks,
    complexity,
    evaluate,
    max_sensitivity,
    model_randomisation,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    road,
    sparseness,
    top_k_intersection,
)
from cnnviz_widgets.engine.metrics.robustness import sensitivity_noise
from cnnviz_widgets.engine.saliency import saliency, saliency_map

from .helpers.metric_models import demo, demo_batch
from .model_state import Fingerprint

quantus = pytest.importorskip("quantus")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fixture():
    """The demo model, 6 generated images with exact masks and boxes, GradCAM and vanilla
    gradient maps (the first has ties: zeros after its ReLU)."""
    d = demo()
    x, labels, boxes, masks = demo_batch(6, seed=21)
    maps = {
        "GradCAM": cam(d.model, x, "features.11", "GradCAM"),
        "vanilla": saliency_map(saliency(d.model, x, labels, "vanilla")),
    }
    return d.model, x, labels, boxes, masks, maps


def _quantus(metric, model, x, labels, maps, **kwargs):
    return np.asarray(
        metric(
            model=model, x_batch=x.numpy(), y_batch=labels.numpy(), a_batch=maps[:, None], **kwargs
        ),
        dtype=np.float64,
    )


@pytest.mark.parametrize("method", ["GradCAM", "vanilla"])
@pytest.mark.parametrize("objects", ["masks", "boxes"])
def test_localisation_equals_quantus(fixture, method, objects):
    model, x, labels, boxes, masks, all_maps = fixture
    maps = all_maps[method]
    if objects == "masks":
        s, kw = (masks.numpy() > 0), {"masks": masks}
    else:
        s, kw = box_masks(boxes, (64, 64)).numpy(), {"boxes": boxes}
    s_batch = s[:, None].astype(np.float32)
    cases = [
        (quantus.RelevanceMassAccuracy(disable_warnings=True), relevance_mass_accuracy, {}),
        (quantus.RelevanceRankAccuracy(disable_warnings=True), relevance_rank_accuracy, {}),
        (quantus.TopKIntersection(k=500, disable_warnings=True), top_k_intersection, {"k": 500}),
        (
            quantus.TopKIntersection(k=300, concept_influence=True, disable_warnings=True),
            top_k_intersection,
            {"k": 300, "concept_influence": True},
        ),
    ]
    for metric, ours_fn, extra in cases:
        want = _quantus(metric, model, x, labels, maps, s_batch=s_batch)
        ours = ours_fn(maps, **kw, **extra)
        assert np.abs(ours - want).max() <= 1e-6, type(metric).__name__


def test_rank_ties_are_broken_in_raster_order():
    maps = torch.tensor([[[1.0, 1.0, 1.0], [0.0, 0.0, 2.0]]])
    mask = torch.tensor([[[0, 1, 1], [0, 0, 1]]])
    # |S| = 3: the top three are (1, 2), then the tied ones in raster order (0, 0), (0, 1)
    assert relevance_rank_accuracy(maps, mask)[0] == pytest.approx(2 / 3)
    assert top_k_intersection(maps, mask, k=2)[0] == 0.5
    assert relevance_mass_accuracy(maps, mask)[0] == pytest.approx(4 / 5)
    assert np.isnan(relevance_mass_accuracy(maps, torch.zeros_like(mask))[0])


@pytest.mark.parametrize("method", ["GradCAM", "vanilla"])
def test_complexity_equals_quantus_per_image(fixture, method):
    model, x, labels, _, _, all_maps = fixture
    maps = all_maps[method]
    for metric, ours_fn in (
        (quantus.Sparseness(disable_warnings=True), sparseness),
        (quantus.Complexity(disable_warnings=True), complexity),
    ):
        # Quantus divides by the maximum of everything in one call: one image per call
        want = np.concatenate(
            [
                _quantus(metric, model, x[i : i + 1], labels[i : i + 1], maps[i : i + 1])
                for i in range(len(maps))
            ]
        )
        assert np.abs(ours_fn(maps) - want).max() <= 1e-5, type(metric).__name__


@pytest.mark.parametrize("method", ["GradCAM", "vanilla"])
def test_max_sensitivity_equals_quantus_with_the_same_noise(fixture, method):
    model, x, labels, _, _, all_maps = fixture
    x, labels, maps = x[:4], labels[:4], all_maps[method][:4]

    def explain(model, inputs, targets, **kwargs):
        xb, t = torch.as_tensor(inputs), [int(c) for c in targets]
        if method == "GradCAM":
            return cam(model, xb, "features.11", "GradCAM", t)
        return saliency_map(saliency(model, xb, t, "vanilla"))

    noise = iter(list(sensitivity_noise(x, 4, 0.2, seed=9)))

    def perturb(arr, indices, **kwargs):
        return arr + next(noise).numpy().reshape(arr.shape)

    metric = quantus.MaxSensitivity(nr_samples=4, perturb_func=perturb, disable_warnings=True)
    want = _quantus(metric, model, x, labels, maps, explain_func=explain)
    before = Fingerprint.of(model)
    ours = max_sensitivity(
        model, x, method, labels, layer="features.11", samples=4, seed=9, maps=maps
    )
    before.assert_same(model)
    assert np.abs(ours - want).max() <= 1e-5
    computed = max_sensitivity(
        model, x, method, labels, layer="features.11", samples=4, seed=9, batch_size=4
    )
    assert np.abs(computed - ours).max() <= 1e-5  # maps computed here, one sample per call


def test_every_metric_is_registered_once_and_documented():
    doc = (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
    assert set(available_metrics()) == set(METRICS)
    assert sum(len(available_metrics(g)) for g in GROUPS) == len(METRICS)
    for name, spec in METRICS.items():
        assert spec.group in GROUPS
        assert spec.name == name and callable(spec.function) and spec.reference
        row = re.search(rf"^\| `{name}` \|(.*)$", doc, flags=re.MULTILINE)
        assert row, f"docs/methods.md has no table row for metric {name!r}"
        direction = "higher" if spec.higher_is_better else "lower"
        assert spec.group in row.group(1) and direction in row.group(1), name


def test_bootstrap_interval():
    values = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    mean, low, high = bootstrap_interval(values, n_boot=2000, seed=1)
    assert mean == 2.5 and 1.0 <= low < 2.5 < high <= 4.0
    rng = np.random.default_rng(1)
    means = values[:4][rng.integers(0, 4, size=(2000, 4))].mean(axis=1)
    assert (low, high) == tuple(np.quantile(means, [0.025, 0.975]))
    assert bootstrap_interval(np.array([2.0, 2.0])) == (2.0, 2.0, 2.0)
    assert np.isnan(bootstrap_interval(np.array([np.nan]))[0])


def test_evaluate_equals_the_functions_and_reads_every_kind_of_data(fixture, tmp_path):
    model, x, labels, boxes, masks, maps = fixture
    metrics = [
        "road_morf",
        "road_combined",
        "pointing_game",
        "relevance_mass_accuracy",
        "relevance_rank_accuracy",
        "top_k_intersection",
        "sparseness",
        "complexity",
        "random_logit",
    ]
    opts = {
        "road_morf": {"noise": 0.0},
        "road_combined": {"noise": 0.0},
        "top_k_intersection": {"k": 400},
    }
    before = Fingerprint.of(model)
    seen: list[tuple[int, int]] = []
    result = evaluate(
        model,
        (x, labels, masks),
        ["GradCAM", "vanilla"],
        metrics,
        layer="features.11",
        target="label",
        batch_size=4,
        options=opts,
        progress=lambda done, total: seen.append((done, total)),
    )
    before.assert_same(model)
    assert seen == [(4, 6), (6, 6)]
    assert result.methods == ("GradCAM", "vanilla") and result.metrics == tuple(metrics)
    np.testing.assert_array_equal(result.indices, np.arange(6))
    np.testing.assert_array_equal(result.targets, labels.numpy())
    for method, m in maps.items():
        m01 = m - m.min(axis=(1, 2), keepdims=True)
        m01 = m01 / m01.max(axis=(1, 2), keepdims=True)
        direct = {
            "road_morf": road(model, x, m01, labels, noise=0.0),
            "relevance_mass_accuracy": relevance_mass_accuracy(m01, masks),
            "relevance_rank_accuracy": relevance_rank_accuracy(m01, masks),
            "top_k_intersection": top_k_intersection(m01, masks, k=400),
            "sparseness": sparseness(m01),
            "complexity": complexity(m01),
        }
        for metric, want in direct.items():
            got = result.value(method, metric)
            assert np.abs(got - want).max() <= 1e-5, (method, metric)
    assert len(result.summary) == 2 * len(metrics)
    row = next(r for r in result.summary if r["metric"] == "road_combined")
    assert row["higher_is_better"] and row["group"] == "faithfulness"
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    table = result.to_pandas()
    assert list(table.columns[:2]) == ["method", "metric"] and len(table) == len(result.summary)
    assert len(result.to_pandas(per_image=True)) == 2 * len(metrics) * 6
    worst = result.worst("GradCAM", "relevance_mass_accuracy", k=2)
    rma = result.value("GradCAM", "relevance_mass_accuracy")
    assert worst == list(np.argsort(rma)[:2])
    # the same values from a DataLoader, a Dataset of dicts and an image folder
    cheap = ["sparseness", "relevance_mass_accuracy"]
    want = evaluate(model, (x, labels, boxes), ["GradCAM"], cheap, layer="features.11")
    loader = DataLoader(TensorDataset(x, labels, boxes), batch_size=5)

    class Dicts(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 6

        def __getitem__(self, i: int) -> dict:
            return {"image": x[i], "label": labels[i], "box": boxes[i]}

    for data in (loader, Dicts()):
        got = evaluate(model, data, ["GradCAM"], cheap, layer="features.11", batch_size=4)
        for key, vals in want.values.items():
            np.testing.assert_allclose(got.values[key], vals, rtol=0, atol=1e-6)
    from PIL import Image

    rgb = (demo().samples[:3].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    for i, img in enumerate(rgb):
        Image.fromarray(img).save(tmp_path / f"{i}.png")
    folder = evaluate(model, tmp_path, ["GradCAM"], ["sparseness"], transform=_demo_transform)
    assert folder.value("GradCAM", "sparseness").shape == (3,) and folder.labels is None
    # without a transform, files are read as load_image reads them for the demo model
    from cnnviz_widgets import load_image
    from cnnviz_widgets.demo.model import MEAN, STD

    loaded = torch.cat([load_image(tmp_path / f"{i}.png", 64, MEAN, STD).tensor for i in range(3)])
    plain = evaluate(model, tmp_path, ["GradCAM"], ["sparseness", "complexity"])
    same = evaluate(model, loaded, ["GradCAM"], ["sparseness", "complexity"])
    for key, vals in same.values.items():
        np.testing.assert_array_equal(plain.values[key], vals)
    with pytest.raises(ValueError, match="masks or boxes"):
        evaluate(model, x[:2], ["GradCAM"], ["pointing_game"])
    with pytest.raises(ValueError, match="Unknown metric"):
        evaluate(model, x[:2], ["GradCAM"], ["accuracy"])


def _demo_transform(img):
    from torchvision.transforms.functional import to_tensor

    return demo().transform(to_tensor(img))


def test_evaluate_sharded_over_processes_equals_one_process(fixture, monkeypatch):
    """Under torchrun each process takes every world_size-th batch and the pieces are
    gathered: simulated here with two ranks in one process (the real torchrun run is in
    test_evaluate_distributed.py)."""
    # the module, not the function of the same name that the package exports
    module = importlib.import_module("cnnviz_widgets.engine.metrics.evaluate")

    model, x, labels, boxes, _, _ = fixture
    data = (x, labels, boxes)
    args = (model, data, ["GradCAM", "vanilla"], ["road_lerf", "relevance_rank_accuracy"])
    kwargs = {"layer": "features.11", "batch_size": 2, "seed": 3}
    single = evaluate(*args, **kwargs)
    pieces: list[dict] = []
    monkeypatch.setattr(module, "_gather", lambda local: pieces.append(local) or local)
    for rank in (1, 0):
        monkeypatch.setattr(module, "distributed", lambda rank=rank: (rank, 2))
        evaluate(*args, **kwargs)
    monkeypatch.setattr(module, "_gather", lambda local: module.merge_partial(pieces))
    both = evaluate(*args, **kwargs)  # rank 0 again, returning the merge of the two pieces
    np.testing.assert_array_equal(both.indices, single.indices)
    np.testing.assert_array_equal(both.targets, single.targets)
    for key, vals in single.values.items():
        np.testing.assert_array_equal(both.values[key], vals)  # bit for bit, ROAD noise too
    assert both.summary == single.summary


def test_evaluate_randomises_the_model_once_with_its_seed(fixture, monkeypatch):
    """model_randomisation over a dataset compares every batch with ONE randomised copy of the
    model, made from the evaluation's seed (not one copy per batch, from the batch's seed)."""
    module = importlib.import_module("cnnviz_widgets.engine.metrics.adapters")
    model, x, labels, _, _, _ = fixture
    made: list[int] = []
    copy_model = module.randomised_copy

    def counted(*args, **kwargs):
        made.append(1)
        return copy_model(*args, **kwargs)

    monkeypatch.setattr(module, "randomised_copy", counted)
    result = evaluate(
        model, (x, labels), ["GradCAM"], ["model_randomisation"], layer="features.11",
        target="label", batch_size=2, seed=5,
    )
    assert len(made) == 1
    maps = cam(model, x, "features.11", "GradCAM", labels.tolist())
    twin = copy_model(model, x, 5)
    want = np.concatenate([
        model_randomisation(
            model, x[i : i + 2], "GradCAM", labels[i : i + 2], layer="features.11",
            maps=maps[i : i + 2], randomised=twin,
        )
        for i in range(0, 6, 2)
    ])
    np.testing.assert_allclose(result.value("GradCAM", "model_randomisation"), want, atol=1e-12)
