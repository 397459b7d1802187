"""load_image in every accepted form, and clear errors for bad images and input tensors."""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch
from PIL import Image

from cnnviz_widgets import IMAGENET_MEAN, IMAGENET_STD, ImageInputError, feature_maps, load_image
from cnnviz_widgets.engine.inputs import denormalize, prepare_input


@pytest.fixture
def rgb_array():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)


def test_path_pil_array_and_tensor_agree(tmp_path, rgb_array):
    path = tmp_path / "img.png"
    Image.fromarray(rgb_array).save(path)
    from_path = load_image(path, size=32)
    from_pil = load_image(Image.fromarray(rgb_array), size=32)
    from_arr = load_image(rgb_array, size=32)
    from_float = load_image(rgb_array.astype(np.float32) / 255, size=32)
    from_tensor = load_image(torch.from_numpy(rgb_array).permute(2, 0, 1).float() / 255, size=32)
    for other in (from_pil, from_arr, from_float, from_tensor):
        torch.testing.assert_close(other.tensor, from_path.tensor)
        np.testing.assert_array_equal(other.rgb, from_path.rgb)
    assert from_path.tensor.shape == (1, 3, 32, 32)
    assert from_path.rgb.shape == (32, 32, 3) and from_path.rgb.dtype == np.uint8


def test_tensor_is_the_normalised_rgb(rgb_array):
    x, rgb = load_image(rgb_array, size=None)
    assert rgb.shape == rgb_array.shape
    np.testing.assert_array_equal(rgb, rgb_array)
    back = denormalize(x[0], IMAGENET_MEAN, IMAGENET_STD).permute(1, 2, 0).numpy() * 255
    np.testing.assert_allclose(back, rgb_array.astype(np.float32), atol=1e-3)


def test_resize_shorter_side_then_centre_crop(rgb_array):
    img = load_image(rgb_array, size=20)
    expected = Image.fromarray(rgb_array).resize((30, 20), Image.BILINEAR)
    # centre crop of 20 from width 30: columns 5..25
    assert img.rgb.shape == (20, 20, 3)
    assert np.abs(img.rgb.astype(int) - np.asarray(expected)[:, 5:25].astype(int)).mean() < 8


def test_grayscale_and_rgba_become_rgb():
    gray = np.full((10, 12), 200, np.uint8)
    out = load_image(gray, size=None)
    assert out.rgb.shape == (10, 12, 3) and (out.rgb == 200).all()
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0  # transparent pixel goes on white
    out = load_image(rgba, size=None)
    assert tuple(out.rgb[1, 1]) == (255, 0, 0)
    assert tuple(out.rgb[0, 0]) == (255, 255, 255)


def test_custom_mean_std():
    arr = np.full((4, 4, 3), 128, np.uint8)
    out = load_image(arr, size=None, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    torch.testing.assert_close(out.tensor, torch.full((1, 3, 4, 4), (128 / 255 - 0.5) / 0.25))
    assert out.mean == (0.5, 0.5, 0.5)


class FakeWeights:
    """The parts of a torchvision weights entry load_image uses (no download involved)."""

    meta: typing.ClassVar[dict] = {"categories": ["cat", "dog"]}

    def transforms(self):
        from torchvision.transforms._presets import ImageClassification

        return ImageClassification(crop_size=16, resize_size=20)


def test_weights_give_transform_and_class_names(rgb_array):
    out = load_image(rgb_array, weights=FakeWeights())
    expected = FakeWeights().transforms()(Image.fromarray(rgb_array)).unsqueeze(0)
    torch.testing.assert_close(out.tensor, expected)
    assert out.rgb.shape == (16, 16, 3)
    assert out.classes == ("cat", "dog")
    back = denormalize(out.tensor[0], IMAGENET_MEAN, IMAGENET_STD).permute(1, 2, 0) * 255
    assert (back - torch.from_numpy(out.rgb).float()).abs().max() < 1.0


def test_non_image_file_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image")
    with pytest.raises(ImageInputError, match="not an image file"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No image file"):
        load_image(tmp_path / "missing.png")


def test_channels_first_numpy_is_explained():
    with pytest.raises(ImageInputError, match="channels-first"):
        load_image(np.zeros((3, 32, 32), np.uint8))


def test_float_array_out_of_range():
    with pytest.raises(ImageInputError, match=r"\[0, 1\]"):
        load_image(np.full((4, 4, 3), 2.0, np.float32))


def test_2d_tensor_input_is_refused_with_the_fix(vgg11):
    with pytest.raises(ImageInputError, match=r"\(N, C, H, W\).*x\[None, None\]"):
        feature_maps(vgg11, torch.randn(32, 32))


def test_five_channel_tensor_is_refused(vgg11):
    with pytest.raises(ImageInputError, match="5 channel.*takes 3"):
        feature_maps(vgg11, torch.randn(1, 5, 32, 32))


def test_five_dim_tensor_is_refused(vgg11):
    with pytest.raises(ImageInputError, match="5 dimension"):
        feature_maps(vgg11, torch.randn(1, 1, 3, 32, 32))


def test_nan_input_is_refused(vgg11):
    x = torch.randn(1, 3, 16, 16)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ImageInputError, match="NaN or Inf"):
        feature_maps(vgg11, x)


def test_grayscale_batch_is_expanded_for_an_rgb_model(vgg11):
    gray = torch.randn(1, 1, 16, 16)
    out = feature_maps(vgg11, gray, ["features.0"])["features.0"]
    ref = feature_maps(vgg11, gray.expand(-1, 3, -1, -1), ["features.0"])["features.0"]
    torch.testing.assert_close(out, ref)


def test_three_dim_input_gets_a_batch_axis(vgg11):
    x = torch.randn(3, 16, 16)
    assert prepare_input(vgg11, x).shape == (1, 3, 16, 16)


def test_integer_tensor_is_refused(vgg11):
    with pytest.raises(ImageInputError, match="floating-point"):
        prepare_input(vgg11, torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_inference_mode_input_works(vgg11):
    with torch.inference_mode():
        x = torch.randn(1, 3, 16, 16)
    out = prepare_input(vgg11, x)
    assert not out.is_inference()
