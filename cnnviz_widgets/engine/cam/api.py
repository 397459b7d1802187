"""The public CAM functions: :func:`cam` for one layer, :func:`cam_per_layer` for many."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..borrow import borrowed
from ..detection import backbone_scope, check_batch, normalize_in_boxes, target_boxes
from ..dryrun import default_layer
from ..inputs import prepare_input
from ..layers import LayerRef, conv_layers, resolve_layers
from ..targets import OutputSelector, Target, TargetError, check_targets_fit
from ..tokens import auto_reshape
from .augment import augment, deaugment_mean, repeat_target
from .base import CamMethod, Reshape
from .errors import CamMethodError
from .pipeline import layer_raw_maps
from .progress import ProgressArg
from .registry import method_class
from .scaling import aggregate, minmax, scale_maps

RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
RESNET_BLOCKS = ("BasicBlock", "Bottleneck")


def resnet_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """``{"layer1.0": block, ...}`` for a ResNet-like model (``layer1..layer4`` made of
    ``BasicBlock``/``Bottleneck``), else ``{}``."""
    blocks: dict[str, nn.Module] = {}
    for stage in RESNET_STAGES:
        seq = getattr(model, stage, None)
        if not isinstance(seq, nn.Sequential) or len(seq) == 0:
            return {}
        for name, block in seq.named_children():
            if type(block).__name__ not in RESNET_BLOCKS:
                return {}
            blocks[f"{stage}.{name}"] = block
    return blocks


def default_cam_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers :func:`cam_per_layer` uses by default: every residual block's output for a
    ResNet-like model, every ``Conv2d`` of the backbone for a torchvision detector or
    segmenter (:func:`~cnnviz_widgets.engine.detection.backbone_scope`), else every
    ``Conv2d`` in forward order."""
    blocks = resnet_blocks(model)
    if blocks:
        return blocks
    convs: dict[str, nn.Module] = dict(conv_layers(model))
    scope = backbone_scope(model)
    in_scope = {n: m for n, m in convs.items() if any(n.startswith(p) for p in scope)}
    return in_scope or convs


def _check_args(
    batch_size: int, raw: bool, aug_smooth: bool, in_boxes: bool = False, target: Target = None
) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
    if raw and aug_smooth:
        raise ValueError(
            "raw=True cannot be combined with aug_smooth=True: smoothing averages normalised "
            "maps at the input size. Use one or the other."
        )
    if raw and in_boxes:
        raise ValueError(
            "raw=True cannot be combined with normalize_in_boxes=True: raw maps are not "
            "normalised. Use one or the other."
        )
    items = target if isinstance(target, (list, tuple)) else [target]
    if aug_smooth and any(hasattr(t, "check_image") for t in items):
        raise ValueError(
            "aug_smooth=True flips and rescales the image, so a box or mask target no longer "
            "lines up with the augmented copies. Leave aug_smooth off for BoxTarget and "
            "RegionTarget."
        )


def _prepared(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """``x`` checked and moved to the model; box targets checked against its size."""
    check_batch(x)
    x = prepare_input(model, x)
    check_targets_fit(target, x.shape[-2], x.shape[-1])
    return x


def _in_boxes(maps: torch.Tensor, target: Target, active: bool) -> torch.Tensor:
    """``maps`` normalised inside the target's boxes when ``active`` (else unchanged)."""
    if not active:
        return maps
    return normalize_in_boxes(maps, target_boxes(target, maps.shape[0]))


def _check_target_count(target: Target, n: int) -> None:
    count = None
    if isinstance(target, torch.Tensor) and target.ndim > 0:
        count = target.shape[0]
    elif isinstance(target, (list, tuple)):
        count = len(target)
    if count is not None and count != n:
        raise TargetError(
            f"target has {count} entries but the batch has {n} images; give one per image, "
            "or a single int for all."
        )


def _maps(
    model: nn.Module,
    x: torch.Tensor,
    impl: CamMethod,
    layers: dict[str, nn.Module],
    *,
    target: Target,
    output: OutputSelector,
    raw: bool,
    aug_smooth: bool,
    eigen_smooth: bool,
    batch_size: int,
    progress: ProgressArg,
    reshape: Reshape | None,
) -> dict[str, torch.Tensor]:
    """``{name: map}`` on the model's device: raw maps, or per-layer scaled maps (normalised
    and resized, before the final normalisation) when ``raw`` is False. FullGrad gives one
    entry, ``""``, already final. With ``aug_smooth`` the maps are of the ``(6N, ...)``
    augmented batch; :func:`_smoothed` finishes them."""
    n = x.shape[0]
    size = (x.shape[-2], x.shape[-1])
    if reshape is None and not impl.whole_model:
        reshape = auto_reshape(model, list(layers), size)  # token/channels-last layers
    if aug_smooth:
        _check_target_count(target, n)
        x, target = augment(x), repeat_target(target, n)
    with borrowed(model):
        if impl.whole_model:
            full = impl.full_map(model, x, target, output, eigen_smooth)
            maps = {"": full if raw else minmax(full)}
        else:
            raws = layer_raw_maps(
                model,
                x,
                layers,
                impl,
                target=target,
                output=output,
                eigen_smooth=eigen_smooth,
                batch_size=batch_size,
                progress=progress,
                reshape=reshape,
            )
            maps = raws if raw else {k: scale_maps(v, size) for k, v in raws.items()}
    return maps


def _smoothed(final: torch.Tensor, aug_smooth: bool) -> torch.Tensor:
    """Un-augment and average the finished maps of an augmented batch (else pass through)."""
    return deaugment_mean(final) if aug_smooth else final


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


def cam(
    model: nn.Module,
    x: torch.Tensor,
    layer: LayerRef | Sequence[LayerRef] | None,
    method: str = "GradCAM",
    target: Target = None,
    *,
    output: OutputSelector = None,
    raw: bool = False,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
    batch_size: int = 32,
    progress: ProgressArg = None,
    reshape: Reshape | None = None,
    normalize_in_boxes: bool = False,
    **options: Any,
) -> np.ndarray:
    """Class activation map of ``layer`` for each image, with pytorch-grad-cam 1.5.x semantics.

    Args:
        model: the network; borrowed and given back exactly as it was (train/eval flags, hooks,
            ``requires_grad``, parameters, buffers, ``.grad``), also when this raises.
        x: ``(N, C, H, W)`` (or ``(C, H, W)``) model-ready input, or a ``LoadedImage``.
        layer: the target layer, by qualified name or module; a list of layers gives the
            reference's multi-layer map (the mean of the layers' normalised maps, normalised).
            ``None``: the last layer whose output is still a spatial grid
            (:func:`~cnnviz_widgets.engine.dryrun.default_layer`: ``layer4`` for a ResNet,
            ``features`` for VGG/DenseNet), found by a dry run of the first image. FullGrad
            ignores it. A module called several times in one forward pass is taken at its
            first call.
        method: a name from :func:`available_cam_methods` (case-insensitive).
        target: ``None`` (each image's top class), an int class index, one int or callable per
            image, or a callable on one sample's output (pytorch-grad-cam's
            ``ClassifierOutputTarget(k)`` works as is). For a detection model a
            ``BoxTarget(label, box)`` (one for all images or one per image), for a segmentation
            model a ``RegionTarget(label, mask)`` (:mod:`~cnnviz_widgets.engine.regions`;
            pytorch-grad-cam's ``FasterRCNNBoxScoreTarget`` and ``SemanticSegmentationTarget``
            work as is too). EigenCAM, KPCA_CAM and FEM ignore it.
        output: which part of a model's tuple/dict/``.logits`` output holds the scores.
        raw: return un-normalised maps at the layer's resolution instead: ``(N, h, w)`` float32,
            the method's map after its ReLU (every method except FullGrad applies
            ``max(map, 0)``, as the reference). For FullGrad the raw map is the sum of its
            normalised terms at the input size ``(N, H, W)``. Needs a single layer; not with
            ``aug_smooth``.
        aug_smooth: average the maps of six augmentations (horizontal flip x input scaled by
            0.9, 1, 1.1), each un-flipped, as the reference's ttach smoothing; the mean is not
            normalised again.
        eigen_smooth: use the first principal component of the weighted activations instead of
            their channel sum (projections' sign: see :mod:`.projection`). EigenCAM,
            EigenGradCAM, KPCA_CAM and FEM ignore it, as the reference does.
        batch_size: masked/ablated images per forward pass (ScoreCAM, AblationCAM).
        progress: ScoreCAM/AblationCAM progress: a callable ``progress(done, total)`` (counts
            are channels x images) or ``"tqdm"``.
        reshape: a function applied to the layer's output and its gradient to make them
            ``(N, C, H, W)`` (for layers with another layout; not with AblationCAM yet).
            ``None``: ViT token sequences and Swin's channels-last grids are folded into a grid
            automatically where that is unambiguous, else a ``TokenLayoutError`` names the fix
            (:mod:`~cnnviz_widgets.engine.cam.tokens`); a layer whose output is a dict or list
            of feature maps (a detector's FPN ``"backbone"``) is folded by
            :func:`~cnnviz_widgets.engine.levels.fold_levels` (pytorch-grad-cam's
            ``fasterrcnn_reshape_transform``), and ``"backbone:0"`` takes one level.
        normalize_in_boxes: with box targets, rescale each map to [0, 1] inside the target's
            boxes and set it to 0 outside
            (:func:`~cnnviz_widgets.engine.detection.normalize_in_boxes`).
        **options: method options: ``kernel``/``gamma`` (KPCA_CAM), ``k`` (FEM),
            ``ablation_value`` (AblationCAM).

    Returns:
        ``(N, H, W)`` float32 numpy array in [0, 1] at ``x``'s spatial size (see ``raw``).

    Raises:
        CamMethodError: unknown method (with close matches) or option.
        LayerNotFoundError: unknown layer name (with close matches).
        LayerShapeError: a layer whose output is not a 4-D feature map.
        TargetError: a non-integer, out-of-range or miscounted target; a box outside the
            image or matching no detection; a mask of the wrong shape; a box or region target
            on a model that does not output boxes or masks.
        ImageInputError: a bad input (rank, channels, NaN, a list of images).
    """
    impl = method_class(method)(**options)
    _check_args(batch_size, raw, aug_smooth, normalize_in_boxes, target)
    x = _prepared(model, x, target)
    layers: dict[str, nn.Module] = {}
    if not impl.whole_model:
        layers = resolve_layers(model, default_layer(model, x[:1]) if layer is None else layer)
        if raw and len(layers) > 1:
            raise ValueError("raw=True needs a single layer (layers differ in resolution).")
    maps = _maps(
        model,
        x,
        impl,
        layers,
        target=target,
        output=output,
        raw=raw,
        aug_smooth=aug_smooth,
        eigen_smooth=eigen_smooth,
        batch_size=batch_size,
        progress=progress,
        reshape=reshape,
    )
    if raw:
        (result,) = maps.values()
    elif impl.whole_model:
        result = _smoothed(maps[""], aug_smooth)
    else:
        result = _smoothed(aggregate(list(maps.values())), aug_smooth)
    return _numpy(_in_boxes(result, target, normalize_in_boxes))


def cam_per_layer(
    model: nn.Module,
    x: torch.Tensor,
    layers: LayerRef | Sequence[LayerRef] | None = None,
    method: str = "GradCAM",
    target: Target = None,
    *,
    output: OutputSelector = None,
    raw: bool = False,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
    batch_size: int = 32,
    progress: ProgressArg = None,
    reshape: Reshape | None = None,
    normalize_in_boxes: bool = False,
    **options: Any,
) -> dict[str, np.ndarray]:
    """One CAM per layer, from ONE forward (and, for gradient methods, ONE backward) pass.

    Each entry equals ``cam(model, x, name, method, target, ...)`` for that layer alone.

    Args:
        layers: names or modules; default: every residual block's output for a ResNet-like
            model (``layer1``..``layer4`` of ``BasicBlock``/``Bottleneck``), else every
            ``Conv2d`` in forward order.
        others: as :func:`cam`. ScoreCAM and AblationCAM share the capture pass but still run
            their perturbation passes layer by layer. FullGrad has no per-layer maps.

    Returns:
        ``{name: (N, H, W) float32 numpy array in [0, 1]}`` in the order of ``layers`` (with
        ``raw=True`` each layer's ``(N, h, w)`` raw map, as :func:`cam`).
    """
    impl = method_class(method)(**options)
    _check_args(batch_size, raw, aug_smooth, normalize_in_boxes, target)
    if impl.whole_model:
        raise CamMethodError(
            f"{impl.name} uses every bias layer of the model at once and ignores target "
            "layers, so it has no per-layer maps; call cam(model, x, None, 'FullGrad')."
        )
    selected = default_cam_layers(model) if layers is None else resolve_layers(model, layers)
    x = _prepared(model, x, target)
    maps = _maps(
        model,
        x,
        impl,
        selected,
        target=target,
        output=output,
        raw=raw,
        aug_smooth=aug_smooth,
        eigen_smooth=eigen_smooth,
        batch_size=batch_size,
        progress=progress,
        reshape=reshape,
    )
    if raw:
        return {name: _numpy(m) for name, m in maps.items()}
    return {
        name: _numpy(_in_boxes(_smoothed(aggregate([m]), aug_smooth), target, normalize_in_boxes))
        for name, m in maps.items()
    }
