"""Display data: quantisation round trip, colour tables, kernel scaling, mosaics, figures."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

from cnnviz_widgets.render import (
    apply_colormap,
    colormap_bytes,
    colormap_table,
    dequantize,
    quantize,
    rgb_filters,
    scale_kernels,
)
from cnnviz_widgets.render.mosaic import grid_shape, mosaic
from cnnviz_widgets.render.plots import plot_feature_maps, plot_kernels


def test_quantize_round_trip_error_is_within_half_a_level():
    rng = np.random.default_rng(0)
    maps = (rng.normal(size=(5, 7, 9)) * np.arange(1, 6)[:, None, None]).astype(np.float32)
    q = quantize(maps)
    assert q.levels.dtype == np.uint8 and q.levels.shape == maps.shape
    np.testing.assert_array_equal(q.lo, maps.reshape(5, -1).min(1))
    np.testing.assert_array_equal(q.hi, maps.reshape(5, -1).max(1))
    err = np.abs(dequantize(q) - maps)
    assert (err <= (q.hi - q.lo)[:, None, None] / 510 + 1e-6).all()
    assert (q.levels.reshape(5, -1).min(1) == 0).all() and (
        q.levels.reshape(5, -1).max(1) == 255
    ).all()


def test_quantize_constant_map_and_tensor_input():
    q = quantize(torch.full((2, 3, 3), 4.5))
    assert (q.levels == 0).all() and (q.lo == 4.5).all() and (q.hi == 4.5).all()
    np.testing.assert_array_equal(dequantize(q), np.full((2, 3, 3), 4.5, np.float32))


def test_quantize_refuses_nan_and_wrong_rank():
    with pytest.raises(ValueError, match="NaN"):
        quantize(np.array([[[np.nan]]], np.float32))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        quantize(np.zeros((3, 3), np.float32))


def test_colormap_table_matches_matplotlib():
    table = colormap_table("viridis")
    assert table.shape == (256, 4) and table.dtype == np.uint8
    expected = np.round(matplotlib.colormaps["viridis"](np.linspace(0, 1, 256)) * 255)
    np.testing.assert_array_equal(table, expected.astype(np.uint8))
    assert len(colormap_bytes("bwr")) == 1024
    # bwr's centre is white: zero weights are white in kernel grids
    assert colormap_table("bwr")[128][:3].min() >= 250


def test_unknown_colormap_suggests_names():
    with pytest.raises(ValueError, match="viridis"):
        colormap_table("viridiss")


def test_apply_colormap_indexes_the_table():
    levels = np.array([[0, 255], [128, 7]], np.uint8)
    rgb = apply_colormap(levels, "magma")
    np.testing.assert_array_equal(rgb[1, 0], colormap_table("magma")[128][:3])


def slow_scale(k: np.ndarray, scale: str, symmetric: bool) -> np.ndarray:
    out = np.zeros_like(k)
    groups = {
        "kernel": [(o, i) for o in range(k.shape[0]) for i in range(k.shape[1])],
        "filter": [(o,) for o in range(k.shape[0])],
        "layer": [()],
    }[scale]
    for g in groups:
        block = k[g]
        if symmetric:
            m = np.abs(block).max()
            out[g] = 0.5 + 0.5 * block / m if m > 0 else 0.5
        else:
            lo, hi = block.min(), block.max()
            out[g] = (block - lo) / (hi - lo) if hi > lo else 0
    return out


@pytest.mark.parametrize("scale", ["kernel", "filter", "layer"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_scale_kernels_matches_the_slow_formula(scale, symmetric):
    rng = np.random.default_rng(1)
    k = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    k[1, 2] = 0  # a dead kernel
    got = scale_kernels(k, scale=scale, symmetric=symmetric)
    np.testing.assert_allclose(got, slow_scale(k, scale, symmetric), atol=1e-6)
    if symmetric:
        assert np.isclose(got[1, 2], 0.5).all()  # zero sits at the colormap's centre


def test_rgb_filters():
    rng = np.random.default_rng(2)
    k = rng.normal(size=(6, 3, 5, 5)).astype(np.float32)
    rgb = rgb_filters(k)
    assert rgb.shape == (6, 5, 5, 3) and rgb.dtype == np.uint8
    expected = np.round(slow_scale(k, "filter", False).transpose(0, 2, 3, 1) * 255)
    np.testing.assert_array_equal(rgb, expected.astype(np.uint8))
    with pytest.raises(ValueError, match=r"\(O, 3, kh, kw\)"):
        rgb_filters(k[:, :2])


def test_grid_shape_and_mosaic_layout():
    assert grid_shape(10) == (3, 4)
    assert grid_shape(10, ncols=5) == (2, 5)
    assert grid_shape(1) == (1, 1)
    tiles = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    m = mosaic(tiles, ncols=3, gap=1)
    assert m.shape == (2 * 2 + 1, 3 * 3 + 2)
    np.testing.assert_array_equal(m[0:2, 4:7], tiles[1])
    np.testing.assert_array_equal(m[3:5, 0:3], tiles[3])
    assert np.isnan(m[2]).all() and np.isnan(m[3:5, 8:11]).all()


def test_plot_kernels_draws_the_scaled_kernels(vgg11):
    fig = plot_kernels(vgg11, "features.3", out_channel=2)
    drawn = np.ma.filled(fig.axes[0].images[0].get_array(), np.nan)
    k = vgg11.features[3].weight.detach().numpy()[2:3]
    expected = mosaic(slow_scale(k, "kernel", True)[0], ncols=8, gap=1)
    np.testing.assert_allclose(drawn, expected, atol=1e-6)
    assert "filter 2" in fig.axes[0].get_title()


def test_plot_kernels_first_layer_is_rgb(vgg11):
    fig = plot_kernels(vgg11, "features.0")
    drawn = np.asarray(fig.axes[0].images[0].get_array())
    assert drawn.shape[-1] == 3 and drawn.dtype == np.uint8
    expected = mosaic(rgb_filters(vgg11.features[0].weight.detach()), ncols=8, gap=1, fill=255)
    np.testing.assert_array_equal(drawn, expected)


def test_plot_feature_maps_draws_every_channel(vgg11):
    x = torch.randn(1, 3, 16, 16)
    rgb = np.zeros((16, 16, 3), np.uint8)
    fig = plot_feature_maps(vgg11, x, "features.3", image=rgb, order="mean")
    grid = np.ma.filled(fig.axes[1].images[0].get_array(), np.nan)
    with torch.no_grad():
        maps = vgg11.features[:4](x)[0].numpy()
    order = np.argsort(-maps.mean(axis=(1, 2)), kind="stable")
    shown = maps[order]
    lo = shown.min(axis=(1, 2), keepdims=True)
    span = shown.max(axis=(1, 2), keepdims=True) - lo
    normed = np.where(span > 0, (shown - lo) / np.where(span > 0, span, 1), 0)
    np.testing.assert_allclose(grid, mosaic(normed, ncols=12, gap=1), atol=1e-5)
    assert "128" in fig.axes[1].get_title()


def test_show_cam_overlays_each_map():
    from cnnviz_widgets.render.plots import show_cam

    image = np.zeros((8, 8, 3), np.uint8)
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8)
    fig = show_cam(image, {"a": ramp, "b": 1 - ramp[0]}, cmap="jet")
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    overlay = fig.axes[1].images[1].get_array()
    expected = matplotlib.colormaps["jet"](1 - ramp[0])[..., :3]
    np.testing.assert_allclose(overlay, expected, atol=1e-6)
    with pytest.raises(ValueError, match="the image is"):
        show_cam(image, np.zeros((4, 4), np.float32))


def test_figures_display_in_jupyter_without_pyplot():
    """IPython's own display formatter (no inline backend registered) renders them as PNG."""
    from IPython.core.formatters import DisplayFormatter

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    fig = plot_kernels(model, "0")
    data, _ = DisplayFormatter().format(fig)
    assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    image = plt_imread_png(data["image/png"])
    assert image.shape[0] > 50 and image.std() > 0.01  # a drawn figure, not a blank one


def plt_imread_png(png: bytes):
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32) / 255
