"""LayerExplorer: kernels, feature maps, CAMs, saliency and activation maximization of one model.

The widget holds the model (borrowed: the engine leaves it as it found it), one input image and
a bounded cache of computed results. The front end (``js/src/explorer.ts``) asks for data by
custom messages (``{"type": "request", "id", "key", "kind", ...}``, see ``js/src/protocol.ts``);
every message is validated here and answered with a reply carrying binary buffers, or with an
error that the widget shows. Colour maps, colour scales, ordering, hover and zoom are front end
only.

Traits hold the state a person can change from code (``explorer.layer = "features.3"``,
``explorer.image = "cat.png"``, ``explorer.method = "GradCAM++"``, ``explorer.target = 3``).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import torch
import traitlets
from torch import nn

from ..engine import conv_layers, feature_maps, kernels, load_image, resolve_layer
from ..engine.borrow import borrowed
from ..engine.inputs import IMAGENET_MEAN, IMAGENET_STD, LoadedImage, prepare_input
from ..engine.receptive import receptive_fields
from ..render.colormaps import DIVERGING, SEQUENTIAL, colormap_bytes
from ..render.kernel_display import rgb_filters
from .base import _front_end
from .jobs import Cancelled, JobRunner
from .progress import CellProgress
from .serialize import rgb_stack, stack_message

KINDS = ("features", "kernels", "predictions", "cam", "metrics", "saliency", "actmax")
VIEWS = ("kernels", "features", "cam", "saliency", "actmax", "draw")
# Used until the CAM engine reports its own list (cnnviz_widgets.engine.cam).
_FALLBACK_CAM_METHODS = ("GradCAM",)
_FALLBACK_SALIENCY = ("vanilla", "guided", "smoothgrad", "integrated_gradients", "guided_gradcam")
MAX_ACTMAX_CHANNELS = 64
MAX_KEY_LENGTH = 1000
DEFAULT_CACHE_BYTES = 512 * 2**20
PROGRESS_INTERVAL_S = 0.1


class MessageError(ValueError):
    """A message from the front end that does not fit (unknown layer, bad index, wrong type)."""


def request_key(kind: str, **p: Any) -> str:
    """The cache key of a request; the same strings as ``keys`` in ``js/src/protocol.ts``."""
    if kind == "features":
        return f"features|{p['version']}|{p['layer']}"
    if kind == "kernels":
        return f"kernels|{p['layer']}"
    if kind == "predictions":
        return f"predictions|{p['version']}"
    if kind in ("cam", "metrics"):
        return f"{kind}|{p['version']}|{p['method']}|{p['target']}|{p['layer']}"
    if kind == "saliency":
        return f"saliency|{p['version']}|{p['method']}|{p['target']}"
    if kind == "actmax":
        return f"actmax|{p['layer']}|{','.join(str(c) for c in p['channels'])}"
    raise MessageError(f"unknown request kind {kind!r}")


@dataclass
class Reply:
    """A computed reply: JSON meta and binary buffers."""

    meta: dict[str, Any]
    buffers: list[bytes]

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.buffers) + 256


class ReplyCache:
    """Least-recently-used replies, bounded by a byte budget (the newest entry always stays)."""

    def __init__(self, budget: int):
        self.budget = int(budget)
        self._items: OrderedDict[str, Reply] = OrderedDict()
        self.nbytes = 0

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> Reply | None:
        reply = self._items.get(key)
        if reply is not None:
            self._items.move_to_end(key)
        return reply

    def put(self, key: str, reply: Reply) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._items[key] = reply
        self.nbytes += reply.nbytes
        while self.nbytes > self.budget and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self.nbytes -= dropped.nbytes

    def drop(self, prefixes: Sequence[str]) -> None:
        for key in [k for k in self._items if k.startswith(tuple(prefixes))]:
            self.nbytes -= self._items.pop(key).nbytes


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _demo_parts() -> tuple[nn.Module, tuple[str, ...], torch.Tensor, tuple, tuple, str]:
    """Demo model, classes, a sample image (3, 64, 64) in [0, 1], mean, std, title note."""
    from ..demo import demo_model

    try:
        demo = demo_model()
        note = ""
        model, classes, samples = demo.model, tuple(demo.classes), demo.samples
        mean, std = tuple(demo.mean), tuple(demo.std)
    except FileNotFoundError:
        # The trained weights are not installed (a source checkout before training): the same
        # network with its initial weights, so every view still works; the title says so.
        from ..demo.model import INPUT_SIZE, MEAN, SAMPLE_SEED, STD, ShapesNet
        from ..demo.shapes import SHAPE_CLASSES, make_shapes

        torch.manual_seed(0)
        model = ShapesNet().eval()
        classes = tuple(SHAPE_CLASSES)
        samples = make_shapes(len(classes), size=INPUT_SIZE, seed=SAMPLE_SEED,
                              labels=range(len(classes)))[0]
        mean, std = tuple(MEAN), tuple(STD)
        note = " (untrained: the bundled weights file is missing)"
    return model, classes, samples[0], mean, std, note


class LayerExplorer(anywidget.AnyWidget):
    """Explore a CNN: kernels, feature maps, class activation maps, saliency, optimised images.

    Args:
        model: a torch module taking ``(N, 3, H, W)`` images; ``None`` opens the bundled demo
            model (ShapesNet, 64 px) on one of its sample images.
        image: anything :func:`cnnviz_widgets.load_image` takes (path, PIL, numpy, tensor in
            [0, 1]); default: a demo sample, or the bundled cat photo for other models.
        weights: a torchvision weights entry: its transforms and class names are used.
        classes: class names (index -> name), overriding those of ``weights``.
        layers: the layers the slider walks (names or modules); default every Conv2d in
            forward order.
        device: move the model there first (``model.to(device)``, the caller's request).
        size: image side in pixels when no ``weights`` are given (default 224; 64 for the
            demo).
        mean, std: the model's input normalisation when no ``weights`` are given.
        cache_bytes: memory budget of the Python-side cache of computed results.
        background: run long jobs in a worker thread (default: when inside a kernel).
        views: the tabs to show (default all of ``VIEWS``).

    Python state (settable from code): :attr:`image`, :attr:`layer`, :attr:`method`,
    :attr:`target`, and the traits ``cmap``, ``color_scale``, ``order``, ``opacity``, ``tab``.
    """

    _esm = traitlets.Unicode().tag(sync=True)
    _view = traitlets.Unicode("explorer").tag(sync=True)
    views = traitlets.List(traitlets.Unicode(), default_value=list(VIEWS)).tag(sync=True)
    tab = traitlets.Unicode("features").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    layers = traitlets.List(traitlets.Dict()).tag(sync=True)
    layer_name = traitlets.Unicode("").tag(sync=True)
    input_image = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    image_version = traitlets.Int(0).tag(sync=True)
    colormaps = traitlets.Dict().tag(sync=True)
    cmap = traitlets.Unicode("viridis").tag(sync=True)
    kernel_cmap = traitlets.Unicode("bwr").tag(sync=True)
    cam_cmap = traitlets.Unicode("jet").tag(sync=True)
    color_scale = traitlets.Enum(["map", "layer", "global"], default_value="map").tag(sync=True)
    order = traitlets.Enum(["index", "mean"], default_value="index").tag(sync=True)
    global_range = traitlets.List(traitlets.Float(), allow_none=True, default_value=None).tag(
        sync=True
    )
    cam_methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    cam_method = traitlets.Unicode("GradCAM").tag(sync=True)
    cam_layers = traitlets.List(traitlets.Unicode()).tag(sync=True)
    cam_layer = traitlets.Unicode("").tag(sync=True)
    target_class = traitlets.Int(-1).tag(sync=True)
    opacity = traitlets.Float(0.5, min=0.0, max=1.0).tag(sync=True)
    saliency_methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    saliency_method = traitlets.Unicode("vanilla").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        model: nn.Module | None = None,
        image: Any = None,
        *,
        weights: Any = None,
        classes: Sequence[str] | None = None,
        layers: Sequence[str | nn.Module] | None = None,
        device: torch.device | str | None = None,
        size: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        background: bool | None = None,
        views: Sequence[str] | None = None,
    ):
        note = ""
        if model is None:
            model, demo_classes, sample, d_mean, d_std, note = _demo_parts()
            classes = classes if classes is not None else demo_classes
            image = sample if image is None else image
            mean = mean or d_mean
            std = std or d_std
            size = size or int(sample.shape[-1])
        if device is not None:
            model = model.to(device)
        chosen_views = list(views) if views is not None else list(VIEWS)
        unknown = [v for v in chosen_views if v not in VIEWS]
        if unknown:
            raise ValueError(f"Unknown view(s) {unknown}; choose from {list(VIEWS)}.")
        super().__init__(
            _esm=_front_end(),
            views=chosen_views,
            tab="features" if "features" in chosen_views else chosen_views[0],
            colormaps={name: colormap_bytes(name) for name in SEQUENTIAL + DIVERGING},
        )
        self.model = model
        self._weights = weights
        self._size = size or 224
        self._mean = tuple(mean or IMAGENET_MEAN)
        self._std = tuple(std or IMAGENET_STD)
        self._classes: tuple[str, ...] | None = tuple(classes) if classes is not None else None
        self._cache = ReplyCache(cache_bytes)
        self._jobs = JobRunner(_in_kernel() if background is None else background)
        # The model is used by the job thread and by the kernel's main thread (a new image):
        # one user at a time, so the engine's borrow-and-restore never interleaves.
        self._model_lock = threading.RLock()
        self._x: torch.Tensor | None = None
        self._rgb: np.ndarray | None = None
        self._logits: np.ndarray | None = None
        self._cam_memo: dict[tuple[int, str, int], dict[str, np.ndarray]] = {}
        names = (
            list(conv_layers(model))
            if layers is None
            else [resolve_layer(model, layer)[0] for layer in layers]
        )
        if not names:
            raise ValueError("No layers to explore.")
        self._layer_names = names
        self._modules = dict(model.named_modules())
        self._fields = receptive_fields(model, names)  # graph only: nothing runs
        self.title = f"{type(model).__name__}{note}"
        self._set_methods()
        self.on_msg(self._on_msg)
        if image is None:
            from ..demo import sample_photo

            image = sample_photo("chelsea")
        self._set_image(image, in_cell=True)
        self.layer_name = names[0]

    # ------------------------------------------------------------------ Python API

    @property
    def image(self) -> np.ndarray | None:
        """The input image as the model sees it, ``(H, W, 3)`` uint8; set it to any image."""
        return self._rgb

    @image.setter
    def image(self, src: Any) -> None:
        self._set_image(src, in_cell=True)

    @property
    def layer(self) -> str:
        """The layer shown by the kernels and feature-map views (set a name or a module)."""
        return self.layer_name

    @layer.setter
    def layer(self, layer: str | nn.Module) -> None:
        name, _ = resolve_layer(self.model, layer)
        if name not in self._layer_names:
            raise ValueError(
                f"{name!r} is not one of the explorer's layers; pass layers=[...] to "
                f"LayerExplorer to explore it. Layers: {self._layer_names}"
            )
        self.layer_name = name

    @property
    def method(self) -> str:
        """The CAM method (a name of :func:`available_cam_methods`, any case)."""
        return self.cam_method

    @method.setter
    def method(self, name: str) -> None:
        self.cam_method = self._cam_method(name)

    def _cam_method(self, name: Any) -> str:
        """The canonical name of a CAM method, aliases included (``"GradCAM++"``)."""
        from ..engine.cam.registry import method_class

        if isinstance(name, str):
            # unknown names fall through: _canonical raises the message listing the choices
            with contextlib.suppress(Exception):
                name = method_class(name).name
        return self._canonical(name, self.cam_methods, "CAM method")

    @property
    def target(self) -> int | None:
        """The class explained (index); ``None``: the top prediction. Class names work too."""
        return None if self.target_class < 0 else self.target_class

    @target.setter
    def target(self, value: int | str | None) -> None:
        if value is None:
            self.target_class = -1
            return
        if isinstance(value, str):
            if not self._classes or value not in self._classes:
                raise ValueError(f"Unknown class name {value!r}.")
            value = self._classes.index(value)
        with self._model_lock:
            self._ensure_predictions_logits()  # the class count, from the model's scores
        self.target_class = self._check_target(value)

    @property
    def classes(self) -> tuple[str, ...] | None:
        return self._classes

    @property
    def input_tensor(self) -> torch.Tensor:
        """The model-ready input ``(1, 3, H, W)``."""
        assert self._x is not None
        return self._x

    def close(self) -> None:
        """Close the widget, stop its worker and drop the model, input and cached data."""
        jobs = getattr(self, "_jobs", None)  # absent when the constructor failed early
        if jobs is not None:
            jobs.close()
        cache = getattr(self, "_cache", None)
        if cache is not None:
            cache.drop([""])
        self.model = None
        self._modules = {}
        self._x = self._rgb = self._logits = None
        self._cam_memo = {}
        super().close()

    # ------------------------------------------------------------------ setup

    def _set_methods(self) -> None:
        try:
            from ..engine.cam import available_cam_methods

            cams = list(available_cam_methods())
        except Exception:  # the CAM engine is not installed yet
            cams = list(_FALLBACK_CAM_METHODS)
        try:
            from ..engine.saliency import available_saliency_methods

            sal = list(available_saliency_methods())
        except Exception:
            sal = list(_FALLBACK_SALIENCY)
        self.cam_methods = cams
        self.cam_method = cams[0] if cams else ""
        self.saliency_methods = sal
        self.saliency_method = sal[0] if sal else ""

    def _set_image(self, src: Any, in_cell: bool = False) -> None:
        """Load ``src`` and run the first pass; ``in_cell``: called from the user's code, so a
        slow first pass shows a progress bar in the cell's output (not from a front-end
        message, whose output would land in the log)."""
        if isinstance(src, LoadedImage):
            loaded = src
        elif self._weights is not None:
            loaded = load_image(src, weights=self._weights)
        else:
            loaded = load_image(src, size=self._size, mean=self._mean, std=self._std)
        if self._classes is None and loaded.classes is not None:
            self._classes = loaded.classes
        self._jobs.cancel()  # whatever runs is for the old image
        with self._model_lock:
            self._install_image(loaded, in_cell)

    def _install_image(self, loaded: LoadedImage, in_cell: bool = False) -> None:
        self._x = loaded.tensor
        self._rgb = loaded.rgb
        self._logits = None
        self._cache.drop(["features|", "predictions|", "cam|", "metrics|", "saliency|"])
        with self.hold_sync():
            self.image_version += 1
            shown = in_cell and _in_kernel()
            with CellProgress("cnnviz: first pass over the layers", shown) as bar:
                self._first_pass(bar)
            self.input_image = rgb_stack(loaded.rgb[None])

    def _first_pass(self, progress: Callable[[int, int], None] | None = None) -> None:
        """One forward pass for every explored layer: their feature maps, shapes, ranges."""
        x = self.input_tensor
        maps = feature_maps(self.model, x, self._layer_names, progress=progress)
        info = []
        lo, hi = math.inf, -math.inf
        budget_left = self._cache.budget
        for name in self._layer_names:
            out = maps[name][0]
            module = self._modules[name]
            kshape = (
                [int(s) for s in module.weight.shape] if isinstance(module, nn.Conv2d) else None
            )
            field = self._fields.get(name)
            info.append(
                {
                    "name": name,
                    "type": type(module).__name__,
                    "shape": [int(s) for s in out.shape] if out.ndim == 3 else None,
                    "kernel_shape": kshape,
                    # receptive field in the input tensor's pixels (None: outline proportionally)
                    "rf": None if field is None else {
                        **field.to_json(), "input": [int(x.shape[-2]), int(x.shape[-1])]
                    },
                }
            )
            if out.ndim != 3 or out.numel() == 0:
                continue
            lo, hi = min(lo, float(out.min())), max(hi, float(out.max()))
            if out.numel() <= budget_left:
                reply = self._features_reply(name, out)
                budget_left -= reply.nbytes
                self._cache.put(request_key("features", version=self.image_version,
                                            layer=name), reply)
        self.layers = info
        self.global_range = [lo, hi] if lo <= hi else None
        cam_layers = [i["name"] for i in info if i["shape"] and i["shape"][1] * i["shape"][2] > 1]
        default = self._default_cam_layer()
        if default and default not in cam_layers:
            cam_layers.append(default)
        if cam_layers != list(self.cam_layers):
            self.cam_layers = cam_layers
        if self.cam_layer not in cam_layers:
            self.cam_layer = default if default in cam_layers else cam_layers[-1]

    def _default_cam_layer(self) -> str | None:
        """The CAM engine's default layer, found by a dry run at a small size first (96 px
        keeps ResNet/VGG grids above 1 x 1 at a fifth of the cost of 224 px), else at the
        input's own size."""
        from ..engine.dryrun import default_layer

        x = self.input_tensor
        attempts = []
        if min(x.shape[-2:]) > 96:
            attempts.append(torch.nn.functional.interpolate(x, size=(96, 96), mode="bilinear",
                                                            align_corners=False))
        attempts.append(x)
        for attempt in attempts:
            try:
                return default_layer(self.model, attempt)
            except Exception:
                continue
        return None

    def _features_reply(self, name: str, out: torch.Tensor) -> Reply:
        meta, buffers = stack_message(out)
        return Reply({"layer": name, "stack": meta}, buffers)

    # ------------------------------------------------------------------ messages

    def _on_msg(self, _widget: Any, content: Any, buffers: Sequence[Any]) -> None:
        """Entry point of every front-end message: validate, dispatch, never raise."""
        try:
            if not isinstance(content, dict):
                raise MessageError("a message must be a dict")
            kind = content.get("type")
            if kind == "request":
                self._on_request(content)
            elif kind == "cancel":
                self._jobs.cancel()
            elif kind == "set_image":
                self._on_set_image(content, buffers)
            else:
                raise MessageError(f"unknown message type {kind!r}")
        except Exception as err:  # shown in the widget, never raised into the kernel
            self.error = f"Ignored a message from the front end: {err}"

    def _on_request(self, msg: dict[str, Any]) -> None:
        rid = msg.get("id")
        key = msg.get("key")
        kind = msg.get("kind")
        if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid < 2**53:
            raise MessageError("request id must be a non-negative integer")
        if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH:
            raise MessageError("request key must be a string")
        if kind not in KINDS:
            raise MessageError(f"unknown request kind {kind!r}")
        head = {"id": rid, "key": key, "kind": kind}
        try:
            params = self._validate(kind, msg)
        except MessageError as err:
            self._send_error(head, str(err))
            return
        cached = self._cache.get(request_key(kind, **params))
        if cached is not None:
            self._send_reply(head, cached)
            return
        # Not cached: computed by the job runner (in the worker thread inside a kernel, so the
        # kernel keeps reading messages, such as a cancel, while the model runs).
        self._jobs.submit(lambda check: self._run_job(head, kind, params, check))

    def _run_job(
        self, head: dict[str, Any], kind: str, params: dict[str, Any], check: Callable[[], None]
    ) -> None:
        last = [0.0]

        def progress(done: int, total: int, text: str = "") -> None:
            check()
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL_S and done < total:
                return  # at most ~10 progress messages a second
            last[0] = now
            self.send({**head, "type": "progress", "done": int(done), "total": int(total),
                       "text": text or f"{head['kind']}: {done} / {total}"})

        try:
            reply = self._compute(kind, params, progress, head=head)
        except Cancelled:
            self._send_error(head, "cancelled")
            return
        except Exception as err:
            self._send_error(head, _describe(err))
            return
        if params.get("version", self.image_version) != self.image_version:
            return  # the image changed meanwhile: nobody wants this any more
        self._cache.put(request_key(kind, **params), reply)
        self._send_reply(head, reply)

    def _send_reply(self, head: dict[str, Any], reply: Reply) -> None:
        self.send({**reply.meta, **head, "type": "reply"}, buffers=reply.buffers)

    def _send_error(self, head: dict[str, Any], message: str) -> None:
        self.send({**head, "type": "error", "message": message})

    # ------------------------------------------------------------------ validation

    def _validate(self, kind: str, msg: dict[str, Any]) -> dict[str, Any]:
        p: dict[str, Any] = {}
        if kind in ("features", "predictions", "cam", "metrics", "saliency"):
            version = msg.get("version")
            if version != self.image_version:
                raise MessageError(
                    f"this request is for image version {version!r}; the image is now "
                    f"version {self.image_version}"
                )
            p["version"] = self.image_version
        if kind in ("features", "kernels", "actmax"):
            p["layer"] = self._check_layer(msg.get("layer"), self._layer_names)
        if kind == "kernels" and not isinstance(self._modules[p["layer"]], nn.Conv2d):
            raise MessageError(f"{p['layer']} is not a Conv2d: it has no kernels")
        if kind in ("cam", "metrics"):
            p["method"] = self._cam_method(msg.get("method"))
            p["layer"] = self._check_layer(msg.get("layer"), list(self.cam_layers))
            p["target"] = self._check_target(msg.get("target"))
        if kind == "saliency":
            p["method"] = self._canonical(
                msg.get("method"), self.saliency_methods, "saliency method"
            )
            p["target"] = self._check_target(msg.get("target"))
        if kind == "actmax":
            channels = msg.get("channels")
            n = self._layer_channels(p["layer"])
            if (
                not isinstance(channels, list)
                or not channels
                or len(channels) > MAX_ACTMAX_CHANNELS
                or not all(isinstance(c, int) and not isinstance(c, bool) for c in channels)
            ):
                raise MessageError(
                    f"channels must be a list of 1 to {MAX_ACTMAX_CHANNELS} integers"
                )
            bad = [c for c in channels if not 0 <= c < n]
            if bad:
                raise MessageError(f"channel {bad[0]} out of range: {p['layer']} has {n}")
            p["channels"] = sorted(set(channels))
        return p

    def _check_layer(self, layer: Any, allowed: Sequence[str]) -> str:
        if not isinstance(layer, str) or layer not in allowed:
            shown = layer if isinstance(layer, str) else type(layer).__name__
            raise MessageError(f"unknown layer {shown[:80]!r}")
        return layer

    def _canonical(self, name: Any, allowed: Sequence[str], what: str) -> str:
        if isinstance(name, str):
            folded = name.replace("_", "").replace("-", "").lower()
            for m in allowed:
                if m.replace("_", "").replace("-", "").lower() == folded:
                    return m
        shown = name if isinstance(name, str) else type(name).__name__
        raise MessageError(f"unknown {what} {shown[:80]!r}; choose from {list(allowed)}")

    def _num_classes(self) -> int | None:
        """Number of classes, once the model's scores are known (None before)."""
        if self._logits is not None:
            return len(self._logits)
        if self._classes is not None:
            return len(self._classes)
        return None

    def _check_target(self, target: Any) -> int:
        if not isinstance(target, int) or isinstance(target, bool):
            raise MessageError("target must be a class index (integer)")
        n = self._num_classes()
        if target < 0 or (n is not None and target >= n):
            raise MessageError(f"class {target} out of range: the model has {n} classes")
        return target

    def _layer_channels(self, layer: str) -> int:
        for info in self.layers:
            if info["name"] == layer and info["shape"]:
                return int(info["shape"][0])
        raise MessageError(f"{layer} has no channels to optimise")

    def _on_set_image(self, msg: dict[str, Any], buffers: Sequence[Any]) -> None:
        h, w = msg.get("height"), msg.get("width")
        if not all(isinstance(v, int) and 8 <= v <= 2048 for v in (h, w)):
            raise MessageError("set_image needs integer height and width in 8..2048")
        if len(buffers) != 1:
            raise MessageError("set_image needs one RGBA buffer")
        data = memoryview(buffers[0]).cast("B")
        if len(data) != h * w * 4:
            raise MessageError(f"set_image: {len(data)} bytes for {h} x {w} RGBA")
        rgba = np.frombuffer(data, np.uint8).reshape(h, w, 4)
        rgb = np.ascontiguousarray(rgba[:, :, :3])
        self._set_image(rgb)

    # ------------------------------------------------------------------ computations

    def _compute(
        self,
        kind: str,
        p: dict[str, Any],
        progress: Callable[..., None],
        head: dict[str, Any] | None = None,
    ) -> Reply:
        with self._model_lock:
            return self._compute_locked(kind, p, progress, head)

    def _compute_locked(
        self,
        kind: str,
        p: dict[str, Any],
        progress: Callable[..., None],
        head: dict[str, Any] | None,
    ) -> Reply:
        if kind == "features":
            out = feature_maps(self.model, self.input_tensor, [p["layer"]])[p["layer"]][0]
            reply = self._features_reply(p["layer"], out)
            self._cache.put(request_key(kind, **p), reply)
            return reply
        if kind == "kernels":
            reply = self._kernels_reply(p["layer"])
            self._cache.put(request_key(kind, **p), reply)
            return reply
        if kind == "predictions":
            reply = Reply({"top": self._top_predictions()}, [])
            self._cache.put(request_key(kind, **p), reply)
            return reply
        if kind == "cam":
            maps = self._cams(p["method"], p["target"], p["layer"], progress)
            # Every layer of a one-pass method is cached: the depth slider then never waits.
            # Layers whose reply is cached already are not quantised again.
            for layer, layer_map in maps.items():
                key = request_key(kind, **{**p, "layer": layer})
                if layer != p["layer"] and key not in self._cache:
                    self._cache.put(key, self._cam_reply(p, layer, layer_map))
            return self._cam_reply(p, p["layer"], maps[p["layer"]])
        if kind == "metrics":
            return Reply({"figures": self._metrics(p, progress)}, [])
        if kind == "saliency":
            sal = self._saliency(p["method"], p["target"])
            meta, buffers = stack_message(sal[None], range_dtype="float32")
            return Reply({"stack": meta, "method": p["method"], "target": p["target"]}, buffers)
        if kind == "actmax":
            return self._actmax(p, progress, head)
        raise MessageError(f"unknown request kind {kind!r}")

    def _kernels_reply(self, layer: str) -> Reply:
        k = kernels(self.model, layer)
        o, i, kh, kw = k.shape
        meta, buffers = stack_message(k.reshape(o * i, kh, kw))
        full: dict[str, Any] = {
            "stack": meta,
            "kernel_shape": [o, i, kh, kw],
            "absmax": float(k.abs().max()) if k.numel() else 1.0,
            "layer": layer,
        }
        if i == 3:
            full["rgb"] = {"shape": [o, kh, kw, 3]}
            buffers.append(np.ascontiguousarray(rgb_filters(k, scale="filter")).tobytes())
        return Reply(full, buffers)

    def _ensure_predictions_logits(self) -> np.ndarray:
        """The model's scores for the input, ``(num_classes,)`` (one forward pass, cached)."""
        if self._logits is None:
            x = prepare_input(self.model, self.input_tensor)
            with borrowed(self.model), torch.no_grad():
                out = self.model(x)
            from ..engine.targets import select_output

            logits = select_output(out)
            self._logits = logits[0].detach().float().cpu().numpy().reshape(-1)
        return self._logits

    def _top_predictions(self, k: int = 5) -> list[dict[str, Any]]:
        logits = self._ensure_predictions_logits()
        z = logits - logits.max()
        probs = np.exp(z) / np.exp(z).sum()
        top = np.argsort(-probs, kind="stable")[:k]
        return [
            {"index": int(i), "name": self._class_name(int(i)), "prob": float(probs[i])}
            for i in top
        ]

    def _class_name(self, i: int) -> str:
        if self._classes is not None and 0 <= i < len(self._classes):
            return str(self._classes[i])
        return f"class {i}"

    @staticmethod
    def _cam_reply(p: dict[str, Any], layer: str, maps: np.ndarray) -> Reply:
        meta, buffers = stack_message(maps[None], range_dtype="float32")
        return Reply({"stack": meta, "method": p["method"], "layer": layer,
                      "target": p["target"]}, buffers)

    def _cams(
        self, method: str, target: int, layer: str, progress: Callable[..., None]
    ) -> dict[str, np.ndarray]:
        """``{layer: (H, W) float32 in [0, 1]}`` at the input's size.

        Methods that need one forward (and one backward) pass for any number of layers give
        the map of every layer of the depth slider at once, from :func:`cam_per_layer`; the
        perturbation methods (ScoreCAM, AblationCAM: passes per channel) and whole-model
        FullGrad give ``layer`` only.
        """
        from ..engine.cam import cam, cam_per_layer
        from ..engine.cam.registry import method_class

        memo_key = (self.image_version, method, target)
        memo = self._cam_memo.get(memo_key, {})
        if layer in memo:
            return memo
        impl = method_class(method)
        found: dict[str, np.ndarray] = {}
        if not impl.iterative and not impl.whole_model and len(self.cam_layers) > 1:
            try:
                maps = cam_per_layer(self.model, self.input_tensor, list(self.cam_layers),
                                     method=method, target=target)
                found = {name: np.asarray(m, np.float32)[0] for name, m in maps.items()}
            except Exception:  # one unsuitable layer of the slider: map the asked one alone
                found = {}
        if layer not in found:

            def report(done: int, total: int) -> None:
                progress(done, total, f"{method} at {layer}: {done} / {total}")

            maps = cam(self.model, self.input_tensor, layer, method=method, target=target,
                       progress=report)
            found = {**memo, layer: np.asarray(maps, np.float32)[0]}
        # Float maps of the latest (image, method, class) only: for the faithfulness figures.
        self._cam_memo = {memo_key: found}
        return found

    def _saliency(self, method: str, target: int) -> np.ndarray:
        from ..engine.saliency import saliency, saliency_map

        attr = saliency(self.model, self.input_tensor, target=target, method=method)
        return np.asarray(saliency_map(attr), np.float32)[0]

    def _metrics(self, p: dict[str, Any], progress: Callable[..., None]) -> dict[str, float]:
        from ..engine import metrics

        maps = self._cams(p["method"], p["target"], p["layer"], progress)[p["layer"]][None]
        x, t = self.input_tensor, p["target"]
        figures = {}
        progress(0, 3, "faithfulness: deletion")
        figures["deletion_auc"] = float(metrics.deletion_auc(self.model, x, maps, t)[0])
        progress(1, 3, "faithfulness: insertion")
        figures["insertion_auc"] = float(metrics.insertion_auc(self.model, x, maps, t)[0])
        progress(2, 3, "faithfulness: average drop")
        figures["average_drop"] = float(np.asarray(metrics.average_drop(self.model, x, maps, t))
                                        .reshape(-1)[0])
        return figures

    def _actmax(
        self, p: dict[str, Any], progress: Callable[..., None], head: dict[str, Any] | None
    ) -> Reply:
        from ..engine.actmax import activation_max

        channels = p["channels"]
        size = int(self.input_tensor.shape[-1])
        done_images = []
        for n, c in enumerate(channels):
            def report(step: int, total: int, n: int = n, c: int = c) -> None:
                progress(n * total + step, len(channels) * total,
                         f"channel {c}: step {step} / {total} ({n + 1} of {len(channels)})")

            img = activation_max(self.model, p["layer"], [c], size=size, seed=0,
                                 progress=report, mean=self._mean, std=self._std)[0]
            done_images.append(img)
            if head is not None:
                self.send({**head, "type": "item", "index": int(c),
                           "rgb": {"shape": [1, *img.shape]}},
                          buffers=[np.ascontiguousarray(img).tobytes()])
        return Reply({"layer": p["layer"], "channels": channels,
                      "count": len(done_images)}, [])

    # ------------------------------------------------------------------ export

    def save_html(self, path: str | Path, *, layers: Sequence[str] | None = None) -> Path:
        """Write one self-contained HTML page of the explorer (no kernel, no network).

        The page carries the front end and the precomputed data: the feature maps and kernels
        of ``layers`` (default: every explored layer), the predictions, and the CAM and
        saliency maps of the current method, class and layer. Layer slider, hover-to-zoom,
        colormap, colour scale and ordering stay interactive.
        """
        from .html_export import write_explorer_html

        return write_explorer_html(self, Path(path), layers)


def _describe(err: BaseException) -> str:
    if isinstance(err, ModuleNotFoundError | ImportError):
        return f"not available in this installation: {err}"
    return f"{type(err).__name__}: {err}"


# ---------------------------------------------------------------------- focused views


def _focused(view: str, doc: str) -> type[LayerExplorer]:
    def __init__(self: LayerExplorer, model: nn.Module | None = None, image: Any = None,
                 **kwargs: Any) -> None:
        LayerExplorer.__init__(self, model, image, views=[view], **kwargs)

    cls = type(
        {"kernels": "KernelsView", "features": "FeatureMapsView", "cam": "CamView",
         "saliency": "SaliencyView", "actmax": "ActivationMaxView", "draw": "DrawingPad"}[view],
        (LayerExplorer,),
        {"__init__": __init__, "__doc__": doc},
    )
    return cls


KernelsView = _focused("kernels", "The explorer's kernels view alone (same arguments).")
FeatureMapsView = _focused("features", "The explorer's feature-map view alone.")
CamView = _focused("cam", "The explorer's class-activation-map view alone.")
SaliencyView = _focused("saliency", "The explorer's saliency view alone.")
ActivationMaxView = _focused("actmax", "The explorer's activation-maximization view alone.")
DrawingPad = _focused("draw", "A drawing pad whose drawing becomes the model's input.")
