"""ViT and Swin: CAM through tokens folded into a grid, detected automatically.

The reference is pytorch-grad-cam 1.5.x with its documented ``reshape_transform``: for ViT
(``tutorials/vision_transformers.md``, ``usage_examples/vit_example.py``) drop the class token
and fold ``(N, 1 + h*w, D)`` into ``(N, D, h, w)``; for torchvision's Swin, whose stages are
channels-last ``(N, h, w, C)``, a permute to ``(N, C, h, w)``. Target layers are the ones it
recommends: the first norm of the last block (``blocks[-1].norm1`` in timm: ``ln_1`` of the
last encoder layer in torchvision's ViT, ``norm1`` of the last Swin block).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import pytorch_grad_cam as pgc
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn
from torchvision.models import VisionTransformer
from torchvision.models.swin_transformer import SwinTransformer

from cnnviz_widgets.engine.cam import cam, cam_per_layer
from cnnviz_widgets.engine.cam.errors import CamMethodError, LayerShapeError
from cnnviz_widgets.engine.dryrun import default_layer
from cnnviz_widgets.engine.tokens import (
    TokenLayoutError,
    channels_last_to_first,
    token_grid,
    tokens_to_grid,
)

from .model_state import Fingerprint

METHODS = ["GradCAM", "GradCAMPlusPlus", "XGradCAM", "LayerCAM", "ScoreCAM"]


def tiny_vit() -> VisionTransformer:
    """32 px, 8 px patches: 4 x 4 patch tokens + the class token, width 32."""
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                              hidden_dim=32, mlp_dim=64, num_classes=10)
    nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision zero-initialises it
    return model.eval()


def tiny_swin(embed_dim: int = 12) -> SwinTransformer:
    """Two stages (4 px patches, window 4): 8 x 8 then 4 x 4 channels-last grids at 32 px."""
    torch.manual_seed(0)
    return SwinTransformer(patch_size=[4, 4], embed_dim=embed_dim, depths=[1, 1],
                           num_heads=[2, 2], window_size=[4, 4], num_classes=10).eval()


def vit_reshape(tensor: torch.Tensor, height: int = 4, width: int = 4) -> torch.Tensor:
    """pytorch-grad-cam's documented ViT ``reshape_transform``."""
    result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
    return result.transpose(2, 3).transpose(1, 2)


def reference(model: nn.Module, layer: nn.Module, x: torch.Tensor, method: str,
              targets: list[int], reshape) -> np.ndarray:
    """pytorch-grad-cam on a deep copy (it calls eval(), fills .grad and keeps hooks)."""
    ref_model = copy.deepcopy(model)
    ref_layer = dict(ref_model.named_modules())[
        next(n for n, m in model.named_modules() if m is layer)
    ]
    with getattr(pgc, method)(ref_model, [ref_layer], reshape_transform=reshape) as engine:
        if method == "ScoreCAM":
            engine.batch_size = 64
        return engine(x, [ClassifierOutputTarget(t) for t in targets])


def assert_parity(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    for a, b in zip(ours, ref, strict=True):
        assert np.abs(a - b).mean() <= 1e-3, np.abs(a - b).mean()
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] >= 0.999
        assert a.std() > 0.05, "constant map: the comparison would be vacuous"


@pytest.mark.parametrize("method", METHODS)
def test_vit_matches_pytorch_grad_cam(method):
    model = tiny_vit()
    x = torch.randn(2, 3, 32, 32)
    layer = model.encoder.layers[-1].ln_1
    before = Fingerprint.of(model)
    ours = cam(model, x, None, method, target=[3, 7])  # default layer, automatic reshape
    before.assert_same(model)
    assert_parity(ours, reference(model, layer, x, method, [3, 7], vit_reshape))
    explicit = cam(model, x, layer, method, target=[3, 7], reshape=tokens_to_grid(prefix=1))
    np.testing.assert_allclose(ours, explicit, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_swin_matches_pytorch_grad_cam(method):
    model = tiny_swin()
    x = torch.randn(2, 3, 32, 32)
    layer = model.features[-1][-1].norm1
    before = Fingerprint.of(model)
    ours = cam(model, x, None, method, target=[1, 4])
    before.assert_same(model)
    assert_parity(ours, reference(model, layer, x, method, [1, 4], channels_last_to_first))


def test_default_layers_are_the_reference_recommendations():
    vit, swin = tiny_vit(), tiny_swin()
    x = torch.randn(1, 3, 32, 32)
    assert default_layer(vit, x) == "encoder.layers.encoder_layer_1.ln_1"
    assert default_layer(vit) == "encoder.layers.encoder_layer_1.ln_1"  # its own image_size
    assert default_layer(swin, x) == "features.3.0.norm1"


def test_vit_last_block_output_has_no_patch_gradient():
    """Why the default is ln_1 of the last block and not its output: the head reads the class
    token only, so the last block's patch tokens get no gradient and GradCAM there is 0."""
    model = tiny_vit()
    x = torch.randn(1, 3, 32, 32)
    raw = cam(model, x, "encoder.layers.encoder_layer_1", target=3, raw=True)
    assert np.all(raw == 0)
    assert cam(model, x, None, target=3, raw=True).max() > 0


def test_swin_non_square_input_and_every_stage():
    model = tiny_swin()
    x = torch.randn(1, 3, 32, 48)
    stages = ["features.1", "features.3", "norm"]
    auto = cam_per_layer(model, x, stages, target=2)
    for name in stages:
        manual = cam(model, x, name, target=2, reshape=channels_last_to_first)
        np.testing.assert_allclose(auto[name], manual, atol=1e-6)
        assert auto[name].shape == (1, 32, 48)
    # the patch-embedding conv (channels-first inside a channels-last model) stays as it is
    conv = cam(model, x, "features.0.0", target=2)
    assert conv.shape == (1, 32, 48) and conv.max() > 0.5


def test_vit_cam_per_layer_equals_cam():
    model = tiny_vit()
    x = torch.randn(2, 3, 32, 32)
    layers = ["encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_1.ln_1"]
    per = cam_per_layer(model, x, layers, target=5)
    for name in layers:
        np.testing.assert_allclose(per[name], cam(model, x, name, target=5), atol=1e-6)


class TokenModel(nn.Module):
    """Patch tokens ``(N, L, D)`` with ``extra`` leading tokens the model does not declare."""

    def __init__(self, extra: int):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.extra = nn.Parameter(torch.randn(1, extra, 8)) if extra else None
        self.mix = nn.Linear(8, 8)
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        if self.extra is not None:
            tokens = torch.cat([self.extra.expand(len(x), -1, -1), tokens], dim=1)
        return self.head(self.mix(tokens).mean(dim=1))


@pytest.mark.parametrize("extra", [0, 1])
def test_undeclared_prefix_is_inferred_when_only_one_fits(extra):
    torch.manual_seed(0)
    model = TokenModel(extra).eval()
    x = torch.randn(1, 3, 32, 32)
    manual = cam(model, x, "mix", target=1, reshape=tokens_to_grid(prefix=extra))
    np.testing.assert_allclose(cam(model, x, "mix", target=1), manual, atol=1e-6)


def test_ambiguous_tokens_name_the_layer_and_the_fix():
    torch.manual_seed(0)
    model = TokenModel(2).eval()  # two register tokens: 66 tokens fit no grid with 0 or 1
    x = torch.randn(1, 3, 32, 32)
    before = Fingerprint.of(model)
    with pytest.raises(TokenLayoutError, match=r"'mix'.*\(1, 66, 8\).*reshape=tokens_to_grid"):
        cam(model, x, "mix", target=1)
    before.assert_same(model)
    fixed = cam(model, x, "mix", target=1, reshape=tokens_to_grid(prefix=2, grid=(8, 8)))
    assert fixed.shape == (1, 32, 32) and fixed.max() > 0.5


def test_ambiguous_channels_last_grid_names_the_fix():
    model = tiny_swin(embed_dim=8)  # stage 1 gives (N, 8, 8, 8): NHWC or NCHW?
    x = torch.randn(1, 3, 32, 32)
    before = Fingerprint.of(model)
    with pytest.raises(TokenLayoutError, match="channels_last_to_first"):
        cam(model, x, "features.1", target=0)
    before.assert_same(model)
    fixed = cam(model, x, "features.1", target=0, reshape=channels_last_to_first)
    assert fixed.shape == (1, 32, 32)


def test_non_grid_outputs_and_ablation_are_clear_errors():
    model = tiny_vit()
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(LayerShapeError, match="'heads'.*4-D"):
        cam(model, x, "heads", target=0)
    with pytest.raises(CamMethodError, match="AblationCAM does not support reshape"):
        cam(model, x, None, "AblationCAM", target=0)


def test_token_grid_rule():
    assert token_grid(16, (64, 64)) == (4, 4)
    assert token_grid(12, (48, 64)) == (3, 4)  # 16 px patches of a 48 x 64 image
    assert token_grid(17, (64, 64)) is None
    assert token_grid(0, (64, 64)) is None
    assert token_grid(2 * 3, (7, 10)) == (2, 3)  # padded (ceil) patch merging
