"""Property-based tests (hypothesis): engine functions over input shapes, dtypes, value ranges
and targets; image loading over array shapes and dtypes; the explorer's message handler over
arbitrary JSON-like messages.

All on the bundled demo model (ShapesNet, 8 classes, four 3x3 conv stages with three 2x2
max-pools, so any side >= 8 px runs) or tiny modules; examples are few (``max_examples``) so
the file stays well under 40 s on two cores.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnviz_widgets.engine import (
    ImageInputError,
    TargetError,
    feature_maps,
    load_image,
    normalize,
    prepare_input,
    saliency,
)
from cnnviz_widgets.engine.cam import cam
from cnnviz_widgets.widgets.requests import KIND_NAMES

from .model_state import Fingerprint

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@functools.cache
def demo():
    from cnnviz_widgets.demo import demo_model

    return demo_model().model.eval()


CLASSES = 8


@st.composite
def batches(draw: st.DrawFn) -> torch.Tensor:
    """``(N, 3, H, W)`` model inputs: N 1-3, sides 16-80, float32 / float64 / from uint8,
    values scaled over six orders of magnitude."""
    n = draw(st.integers(1, 3))
    h, w = draw(st.integers(16, 80)), draw(st.integers(16, 80))
    kind = draw(st.sampled_from(["float32", "float64", "uint8"]))
    scale = draw(st.sampled_from([1e-3, 1.0, 10.0, 1e3]))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    if kind == "uint8":
        raw = torch.randint(0, 256, (n, 3, h, w), generator=gen, dtype=torch.uint8)
        return normalize(raw.float() / 255, (0.5,) * 3, (0.5,) * 3) * scale
    x = torch.randn(n, 3, h, w, generator=gen) * scale
    return x.double() if kind == "float64" else x


def targets(n: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.integers(0, CLASSES - 1),
        st.lists(st.integers(0, CLASSES - 1), min_size=n, max_size=n),
    )


@FAST
@given(x=batches())
def test_feature_maps_shapes_and_values(x):
    model = demo()
    before = Fingerprint.of(model)
    maps = feature_maps(model, x, ["features.0", "features.11"])
    before.assert_same(model)
    n, _, h, w = x.shape
    first, last = maps["features.0"], maps["features.11"]
    assert first.shape == (n, 16, h, w) and last.shape == (n, 128, h // 8, w // 8)
    assert first.dtype == torch.float32 and bool(torch.isfinite(last).all())
    with torch.no_grad():
        expected = model.features[0](x.float())
    torch.testing.assert_close(first, expected, rtol=1e-4, atol=1e-4 * float(x.abs().max()))


@FAST
@given(data=st.data(), x=batches(), method=st.sampled_from(["GradCAM", "GradCAMPlusPlus"]))
def test_cam_maps_are_normalised_per_image(data, x, method):
    model = demo()
    n = x.shape[0]
    target = data.draw(targets(n))
    before = Fingerprint.of(model)
    maps = cam(model, x, "features.9", method, target=target)
    before.assert_same(model)
    assert maps.shape == (n, *x.shape[-2:]) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    for m in maps:  # each map is 0 somewhere and ~1 at its peak, unless it is all zero
        assert m.min() == 0 and (m.max() == 0 or m.max() > 0.99)
    i = data.draw(st.integers(0, n - 1))
    alone_target = target if target is None or isinstance(target, int) else target[i]
    alone = cam(model, x[i : i + 1], "features.9", method, target=alone_target)
    # batched and single convolutions round differently; GradCAM++ cubes the gradients
    np.testing.assert_allclose(maps[i : i + 1], alone, atol=5e-4)


@FAST
@given(data=st.data(), x=batches())
def test_saliency_is_the_input_gradient(data, x):
    model = demo()
    n = x.shape[0]
    target = data.draw(targets(n))
    before = Fingerprint.of(model)
    attr = saliency(model, x, target=target)
    before.assert_same(model)
    assert attr.shape == tuple(x.shape) and attr.dtype == np.float32 and np.isfinite(attr).all()
    leaf = x.float().clone().requires_grad_(True)
    scores = model(leaf)
    chosen = (
        scores.argmax(1).tolist() if target is None
        else [target] * n if isinstance(target, int) else target
    )
    (grad,) = torch.autograd.grad(scores[torch.arange(n), chosen].sum(), leaf)
    scale = float(grad.abs().max()) + 1e-30
    np.testing.assert_allclose(attr, grad.numpy(), rtol=1e-4, atol=1e-5 * scale)


@FAST
@given(
    x=batches(),
    target=st.one_of(
        st.integers(max_value=-1), st.integers(min_value=CLASSES),
        st.floats(allow_nan=True), st.text(max_size=3), st.booleans(),
    ),
)
def test_bad_targets_always_raise_target_error(x, target):
    model = demo()
    before = Fingerprint.of(model)
    for call in (lambda: cam(model, x, "features.9", target=target),
                 lambda: saliency(model, x, target=target)):
        with pytest.raises(TargetError):
            call()
    before.assert_same(model)


# --------------------------------------------------------------------------------------------
# load_image / prepare_input


@st.composite
def images(draw: st.DrawFn) -> np.ndarray:
    """Numpy images: (H, W) or (H, W, 1|3|4), uint8 or float in [0, 1], sides 1-80."""
    h, w = draw(st.integers(1, 80)), draw(st.integers(1, 80))
    shape = draw(st.sampled_from([(h, w), (h, w, 1), (h, w, 3), (h, w, 4)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if draw(st.booleans()):
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.random(shape).astype(draw(st.sampled_from([np.float32, np.float64])))


@settings(max_examples=80, deadline=None)
@given(img=images(), size=st.one_of(st.none(), st.integers(8, 64)))
def test_load_image_tensor_is_the_normalised_rgb(img, size):
    loaded = load_image(img, size=size)
    h, w = img.shape[:2]
    side = (h, w) if size is None else (size, size)
    assert loaded.rgb.shape == (*side, 3) and loaded.rgb.dtype == np.uint8
    assert loaded.tensor.shape == (1, 3, *side) and loaded.tensor.dtype == torch.float32
    rgb = torch.from_numpy(loaded.rgb).permute(2, 0, 1)[None].float() / 255
    torch.testing.assert_close(loaded.tensor, normalize(rgb, loaded.mean, loaded.std))
    if size is None and img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8:
        assert np.array_equal(loaded.rgb, img)


@settings(max_examples=80, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=0, max_size=6),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64]),
    poison=st.sampled_from([None, float("nan"), float("inf")]),
)
def test_prepare_input_accepts_or_names_the_problem(shape, dtype, poison):
    model = demo()
    x = torch.randn(shape).to(dtype) if shape else torch.tensor(1.0).to(dtype)
    if poison is not None and x.is_floating_point() and x.numel():
        x.view(-1)[x.numel() // 2] = poison
    ok_rank = x.ndim in (3, 4)
    channels = x.shape[-3] if ok_rank else None
    valid = ok_rank and x.is_floating_point() and channels in (1, 3) and poison is None
    if not valid:
        with pytest.raises(ImageInputError):
            prepare_input(model, x)
        return
    ready = prepare_input(model, x)
    batch = x if x.ndim == 4 else x[None]
    assert ready.shape == (batch.shape[0], 3, *batch.shape[-2:])
    assert ready.dtype == torch.float32 and ready.data_ptr() != x.data_ptr()
    torch.testing.assert_close(ready, batch.float().expand(-1, 3, -1, -1))


# --------------------------------------------------------------------------------------------
# The explorer's message handler


@functools.cache
def explorer():
    from cnnviz_widgets import LayerExplorer
    from cnnviz_widgets.widgets.cache import Reply
    from cnnviz_widgets.widgets.recorder import Recorder

    ex = LayerExplorer(background=False)
    computed: list[tuple[str, dict[str, Any]]] = []
    for kind, handler in ex._handlers.items():

        def compute(subject: Any, params: dict[str, Any], job: Any, kind: str = kind) -> Reply:
            computed.append((kind, params))
            return Reply({}, [])

        handler.compute = compute  # type: ignore[method-assign]
        handler.also = lambda subject, params: {}  # type: ignore[method-assign]
    return ex, computed, Recorder(ex).sent


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


def request_messages() -> st.SearchStrategy[dict[str, Any]]:
    """Request-shaped messages whose fields mix valid and invalid values."""
    ex, _, _ = explorer()
    names = [info["name"] for info in ex.layers] + ["features", "nope", ""]
    field_values = {
        "type": st.sampled_from(["request", "cancel", "set_image", "exec"]) | json_values,
        "id": st.integers(-5, 2**60) | json_values,
        "key": st.text(max_size=30) | json_values,
        "kind": st.sampled_from([*KIND_NAMES, "__init__"]) | json_values,
        "layer": st.sampled_from(names) | json_values,
        "version": st.integers(-1, 3) | json_values,
        "method": st.sampled_from(["GradCAM", "gradcam", "vanilla", "nope"]) | json_values,
        "target": st.integers(-3, 12) | json_values,
        "channels": st.lists(st.integers(-2, 200), max_size=70) | json_values,
        "height": st.integers(0, 3000) | json_values,
        "width": st.integers(0, 3000) | json_values,
    }
    params = {k: v for k, v in field_values.items() if k not in ("type", "id", "key", "kind")}
    envelope = st.fixed_dictionaries(
        {
            "type": st.just("request"),
            "id": st.integers(0, 2**53 - 1),
            "key": st.text(max_size=30),
            "kind": st.sampled_from(KIND_NAMES),
        },
        optional=params,
    )
    plausible = st.fixed_dictionaries(  # every field present, most of them valid
        {
            "type": st.just("request"),
            "id": st.integers(0, 1000),
            "key": st.text(max_size=10),
            "kind": st.sampled_from(KIND_NAMES),
            "layer": st.sampled_from(names),
            "version": st.sampled_from([ex.image_version, ex.image_version + 1]),
            "method": st.sampled_from(["GradCAM", "gradcam++", "vanilla", "nope"]),
            "target": st.integers(-1, 9),
            "channels": st.lists(st.integers(-1, 20), min_size=1, max_size=3),
        }
    )
    return plausible | envelope | st.fixed_dictionaries({}, optional=field_values)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=json_values | request_messages(),
    buffers=st.lists(st.binary(max_size=64), max_size=2),
)
def test_message_handler_never_raises_and_computes_only_valid_requests(content, buffers):
    ex, computed, sent = explorer()
    computed.clear()
    sent.clear()
    ex.error = ""
    version = ex.image_version
    ex._on_msg(ex, content, buffers)  # must not raise
    kind = content.get("type") if isinstance(content, dict) else None
    if kind != "request":
        assert not computed and not sent
        assert ex.error.startswith("Ignored a message") or kind in ("cancel", "set_image")
        if kind == "set_image":  # only a well-formed image replaces the input
            assert ex.error or ex.image_version == version + 1
        return
    if ex.error:  # the envelope was refused: nothing computed, nothing sent
        assert not computed and not sent
        return
    (reply,) = [content for content, _ in sent]
    assert reply["id"] == content["id"] and reply["key"] == content["key"]
    if reply["type"] == "error":
        assert isinstance(reply["message"], str) and reply["message"] and not computed
    else:  # a valid request: computed once with validated parameters
        assert reply["type"] == "reply" and len(computed) <= 1
        params = ex._handlers[content["kind"]].validate(ex._subject, content)
        assert not computed or computed[0] == (content["kind"], params)
