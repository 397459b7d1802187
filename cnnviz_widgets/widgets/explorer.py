"""LayerExplorer: kernels, feature maps, CAMs, saliency and activation maximization of one model.

The widget is a thin shell: its traits are the state a person can change from code
(``explorer.layer = "features.3"``, ``explorer.image = "cat.png"``, ``explorer.method =
"GradCAM++"``, ``explorer.target = 3``) and what the front end (``js/src/explorer.ts``) shows;
the model and input live in a :class:`~.subject.Subject`, the request kinds in
:mod:`.requests`, message handling in :mod:`.dispatch`. Colour maps, colour scales, ordering,
hover and zoom are front end only.

What is on screen is part of the widget state (the ``shown_<kind>`` traits, binary), so a
notebook saved with widget state shows it with no kernel; the display bundle also carries an
``image/png`` of the current view for renderers that run no JavaScript.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import numpy as np
import torch
import traitlets
from torch import nn

from ..demo import sample_photo
from ..demo.examples import DEMO_EXAMPLE_IMAGES, demo_examples
from ..engine import conv_layers, load_image, resolve_layer
from ..engine.cam import available_cam_methods
from ..engine.inputs import LoadedImage, default_normalization, expected_channels
from ..engine.layers import close_matches
from ..engine.saliency import available_saliency_methods
from ..render.colormaps import DIVERGING, SEQUENTIAL, colormap_bytes
from .cache import ReplyCache
from .dispatch import Dispatcher
from .frontend import front_end
from .html_export import write_explorer_html
from .i18n import Msg, check_lang, resolve_lang, t, titled
from .jobs import JobRunner, after_cell, in_kernel
from .opening import open_model
from .picture import view_png
from .progress import CellProgress
from .requests import MessageError, request_kinds
from .requests.cam import cam_method_name, class_agnostic
from .requests.evaluation import EvaluationSource, evaluation_image, evaluation_summary
from .requests.examples import ExamplesSource
from .requests.objects import OBJECT_TASKS, ObjectTask
from .serialize import rgb_stack
from .subject import Subject
from .view_list import VIEWS, first_view, task_views

DEFAULT_CACHE_BYTES = 512 * 2**20


class LayerExplorer(anywidget.AnyWidget):
    """Explore a CNN: kernels, feature maps, class activation maps, saliency, optimised images.

    Args:
        model: a torch module taking ``(N, 3, H, W)`` images; a torchvision model name
            (``"resnet18"``: built with its default weights where they can be loaded, random
            weights and a printed note where not); ``None`` opens the bundled demo model
            (ShapesNet, 64 px) on one of its sample images.
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
        views: the tabs to show (default: those of :data:`VIEWS` that fit the model: a
            classifier's, or for a detector or segmenter the "objects" view, kernels, feature
            maps, saliency and the drawing pad).
        task: ``"classification"``, ``"detection"`` or ``"segmentation"``; default: what the
            model is (torchvision's detectors and segmenters are recognised). With no model,
            ``"detection"`` and ``"segmentation"`` open the bundled demo detector or segmenter
            on one of its sample scenes (no download). A detector's or segmenter's input is
            [0, 1] RGB (torchvision's detectors normalise inside; pass ``mean``/``std`` for a
            segmenter that does not).
        lang: the language of every text the widget shows: ``"en"`` or ``"zh"`` (Simplified
            Chinese); default: the ``CNNVIZ_LANG`` environment variable, else the system
            locale (Chinese for ``zh*``), else English. Set ``explorer.lang`` to change it
            later. Error messages stay English.
        examples: the "Dataset examples" view's data: a :class:`~cnnviz_widgets.engine.
            examples.TopExamples` (``top_examples(model, data)``) or the path of a file it saved;
            ``None``: for the demo model, examples over 1,024 generated shapes, computed when
            the view first asks (about a second), for other models none (the view says how to
            make them); ``False``: none.
        evaluation: the "Trust" view's table: what ``evaluate(model, data, methods,
            metrics)`` returns (its summary as a sortable table; a click on a row lists the
            images where that method does worst); ``None``: the table says how to make one.
        evaluation_data: the ``data`` that ``evaluate`` was given (a ``DataLoader``,
            ``Dataset``, image folder or tensors): the worst images are then shown as
            thumbnails with the method's map, and a click on one makes it the input image;
            ``None``: their dataset indices and values only.

    Raises:
        TypeError: ``model`` is a class, a function, a weights entry or anything else that is
            not a module (the message names the fix).
    """

    only_view: ClassVar[str | None] = None
    """The one tab of a focused view (:mod:`.views`); ``None``: the tabs of ``views=``."""
    default_task: ClassVar[str | None] = None
    """The task of the demo opened without a model (``None``: the ShapesNet classifier)."""

    _esm = traitlets.Unicode().tag(sync=True)
    _view = traitlets.Unicode("explorer").tag(sync=True)
    lang = traitlets.Unicode("en").tag(sync=True)
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
    class_agnostic_methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    diverging_colormaps = traitlets.List(traitlets.Unicode(), default_value=list(DIVERGING)).tag(
        sync=True)
    cam_method = traitlets.Unicode("GradCAM").tag(sync=True)
    cam_layers = traitlets.List(traitlets.Unicode()).tag(sync=True)
    cam_layer = traitlets.Unicode("").tag(sync=True)
    target_class = traitlets.Int(-1).tag(sync=True)
    opacity = traitlets.Float(0.5, min=0.0, max=1.0).tag(sync=True)
    # the model's input channels: 3 (RGB) or 1 (a grayscale model: activation maximisation
    # then offers its plain mode only)
    input_channels = traitlets.Int(3).tag(sync=True)
    saliency_methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    saliency_method = traitlets.Unicode("vanilla").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    # What each tab shows, kept in the widget state (see dispatch.shown_value); one trait per
    # kind of requests.SHOWN_KINDS, so a change re-sends only its own buffers.
    shown_features = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    shown_kernels = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    shown_predictions = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    shown_cam = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    shown_saliency = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    shown_metrics = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    shown_examples = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    # the dataset examples: {layers, k, description, lazy}, or None without examples
    examples_info = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    shown_sanity = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    # a detector's boxes or a segmenter's predicted classes, and the map of one of them
    shown_objects = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    shown_object_cam = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    # the objects view: boxes with a lower score are hidden (front end only); maps of a box
    # rescaled inside the box
    score_threshold = traitlets.Float(0.5, min=0.0, max=1.0).tag(sync=True)
    normalize_in_boxes = traitlets.Bool(False).tag(sync=True)
    # the evaluation's summary records (method, metric, mean, ci_low, ci_high, better, ...),
    # or None without an evaluation
    evaluation_summary = traitlets.List(traitlets.Dict(), allow_none=True,
                                        default_value=None).tag(sync=True)
    shown_evaluation_worst = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)

    def __init__(
        self,
        model: nn.Module | str | None = None,
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
        examples: Any = None,
        evaluation: Any = None,
        evaluation_data: Any = None,
        lang: str | None = None,
        task: str | None = None,
    ):
        chosen_lang = resolve_lang(lang)
        if self.only_view is not None:
            if views is not None:
                raise TypeError(f"{type(self).__name__} shows one view; use LayerExplorer("
                                "views=[...]) to choose several.")
            views = [self.only_view]
        opened = open_model(
            model, task if task is not None or model is not None else self.default_task,
            weights=weights, classes=classes, image=image, mean=mean, std=std, size=size,
            device=device)
        model, task, weights, note = opened.model, opened.task, opened.weights, opened.note
        chosen_views = task_views(views, task, examples is not None)
        cams = list(available_cam_methods())
        saliency_methods = list(available_saliency_methods())
        self._title_parts = (type(model).__name__, note)
        super().__init__(
            _esm=front_end(),
            lang=chosen_lang,
            views=chosen_views,
            tab=first_view(chosen_views),
            colormaps={name: colormap_bytes(name) for name in SEQUENTIAL + DIVERGING},
            cam_methods=cams,
            class_agnostic_methods=[m for m in cams if class_agnostic(m)],
            cam_method=cams[0],
            saliency_methods=saliency_methods,
            saliency_method=saliency_methods[0],
            input_channels=expected_channels(model) or 3,
            title=titled(type(model).__name__, note, chosen_lang),
        )
        self.model: nn.Module | None = model
        self._weights = weights
        self._size = opened.size or 224
        self._subject = Subject.create(model, layers, opened.classes,
                                       *default_normalization(model, opened.mean, opened.std))
        self._subject.cam_preferred = opened.cam_layer
        self._task = task
        if task in OBJECT_TASKS:
            self._subject.objects = ObjectTask(task)
        self._cache = ReplyCache(cache_bytes)
        self._jobs = JobRunner(in_kernel() if background is None else background)
        self._handlers = request_kinds(cams, saliency_methods)
        self._dispatcher = Dispatcher(
            self._subject, self._handlers, self._cache, self._jobs,
            send=lambda content, buffers: self.send(content, buffers=buffers),
            show=lambda kind, value: setattr(self, f"shown_{kind}", value),
            lang=lambda: self.lang,
        )
        self.on_msg(self._on_msg)
        self._set_image(sample_photo("chelsea") if opened.image is None else opened.image,
                        in_cell=True)
        source = self._examples_source(examples, opened.demo)
        self._subject.examples = source
        if source is not None:
            self.examples_info = source.to_json()
        if evaluation is not None:
            evaluated = EvaluationSource(evaluation, evaluation_data)
            self._subject.evaluation = evaluated
            self.evaluation_summary = evaluation_summary(evaluated.result)
        elif evaluation_data is not None:
            raise TypeError("evaluation_data= needs evaluation=evaluate(model, data, methods, "
                            "metrics): the data's images are shown for that evaluation.")

    # ------------------------------------------------------------------ Python API

    @property
    def image(self) -> np.ndarray | None:
        """The input image as the model sees it, ``(H, W, 3)`` uint8; set it to any image."""
        return None if self._subject.image is None else self._subject.image.rgb

    @image.setter
    def image(self, src: Any) -> None:
        self._set_image(src, in_cell=True)

    @property
    def layer(self) -> str:
        """The layer shown by the kernels and feature-map views (set a name or a module)."""
        return self.layer_name

    @layer.setter
    def layer(self, layer: str | nn.Module) -> None:
        names = self._subject.layer_names
        if isinstance(layer, str) and layer not in names:
            # suggest explorer layers only: another module of the model cannot be set here
            close = close_matches(layer, names)
            hint = f" Closest: {', '.join(repr(c) for c in close)}." if close else ""
            raise ValueError(
                f"{layer!r} is not one of the explorer's layers.{hint} Layers: {names}. To "
                "explore another module, pass layers=[...] to LayerExplorer.")
        name, _ = resolve_layer(self._subject.model, layer)
        if name not in names:
            raise ValueError(
                f"{name!r} is not one of the explorer's layers; pass layers=[...] to "
                f"LayerExplorer to explore it. Layers: {names}")
        self.layer_name = name
        self._show_layer(name)

    @property
    def method(self) -> str:
        """The CAM method (a name of :func:`available_cam_methods`, any case, aliases too)."""
        return self.cam_method

    @method.setter
    def method(self, name: str) -> None:
        try:
            self.cam_method = cam_method_name(name, list(self.cam_methods))
        except MessageError as err:
            raise ValueError(str(err)[0].upper() + str(err)[1:] + ".") from None

    @property
    def target(self) -> int | None:
        """The class explained (index); ``None``: the top prediction. Class names work too.
        A detector's targets are its boxes (index 0: the highest score), a segmenter's the
        classes it predicts somewhere (index or name)."""
        return None if self.target_class < 0 else self.target_class

    @target.setter
    def target(self, value: int | str | None) -> None:
        if value is None:
            self.target_class = -1
            return
        classes = self._subject.classes
        if self._subject.objects is not None:
            if isinstance(value, str) and self._task == "detection":
                raise ValueError("A detector's targets are its boxes: pass a box's index (0: "
                                 "the highest score, as the objects view numbers them #1).")
            if isinstance(value, str) and classes and value in classes:
                value = classes.index(value)
            try:
                self.target_class = self._subject.objects.check(self._subject, value)
            except MessageError as err:
                raise ValueError(str(err)[0].upper() + str(err)[1:] + ".") from None
            return
        if isinstance(value, str):
            if not classes or value not in classes:
                close = difflib.get_close_matches(value, list(classes or ()), n=3)
                hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise ValueError(f"Unknown class name {value!r}.{hint}")
            value = classes.index(value)
        n = self._subject.num_classes()
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"The class must be an index or a class name; got {value!r}.")
        if not 0 <= value < n:
            raise ValueError(f"Class {value} is out of range: the model has {n} classes "
                             f"(0..{n - 1}).")
        self.target_class = value

    @property
    def classes(self) -> tuple[str, ...] | None:
        return self._subject.classes

    @property
    def task(self) -> str:
        """What the model does: ``"classification"``, ``"detection"`` or ``"segmentation"``."""
        return self._task

    @property
    def input_tensor(self) -> torch.Tensor:
        """The model-ready input ``(1, 3, H, W)``."""
        return self._subject.x

    def close(self) -> None:
        """Close the widget, stop its worker and drop the model, input and cached data."""
        jobs = getattr(self, "_jobs", None)  # absent when the constructor failed early
        if jobs is not None:
            jobs.close()
        cache = getattr(self, "_cache", None)
        if cache is not None:
            cache.drop([""])
        self.model = None
        self._subject = self._dispatcher = None  # type: ignore[assignment]
        super().close()

    def save_html(self, path: str | Path, *, layers: Sequence[str] | None = None) -> Path:
        """Write one self-contained HTML page of the explorer (no kernel, no network).

        The page carries the front end and the precomputed data: the feature maps and kernels
        of ``layers`` (default: every explored layer), the predictions, and the CAM and
        saliency maps of the current method, class and layer. Layer slider, hover-to-zoom,
        colormap, colour scale and ordering stay interactive.
        """
        return write_explorer_html(self, Path(path), layers)

    # ------------------------------------------------------------------ display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view plus an ``image/png`` of the current view (GitHub, nbconvert to
        PDF or Markdown show the picture where no JavaScript runs)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            png = view_png(self)
            if png is not None:
                data["image/png"] = png
        return bundle

    # ------------------------------------------------------------------ internals

    @traitlets.validate("lang")
    def _valid_lang(self, proposal: dict[str, Any]) -> str:
        return check_lang(proposal["value"])

    @traitlets.observe("lang")
    def _relabel(self, change: dict[str, Any]) -> None:
        """A new language: the title's note in it (the front end relabels the rest)."""
        parts: tuple[str, Msg | None] | None = getattr(self, "_title_parts", None)
        if parts is not None:
            self.title = titled(parts[0], parts[1], change["new"])

    def _examples_source(self, examples: Any, demo: Any) -> ExamplesSource | None:
        """The source of the dataset examples view (see ``examples`` in the class docstring)."""
        if examples is False:
            return None
        if examples is None:
            if demo is None:
                return None
            return ExamplesSource(
                make=lambda progress: demo_examples(demo=demo, progress=progress),
                layers=list(conv_layers(demo.model)),
                description=f"{DEMO_EXAMPLE_IMAGES:,} generated shapes")
        return ExamplesSource.given(examples, self._subject.model)

    def _set_image(self, src: Any, in_cell: bool = False) -> None:
        """Load ``src`` and run the first pass; ``in_cell``: called from the user's code, so a
        slow first pass shows a progress bar in the cell's output (not from a front-end
        message, whose output would land in the log)."""
        if isinstance(src, LoadedImage):
            loaded = src
        elif self._weights is not None:
            loaded = load_image(src, weights=self._weights)
        else:
            s = self._subject
            loaded = load_image(src, size=self._size, mean=s.mean, std=s.std)
        self._jobs.cancel()  # whatever runs is for the old image
        subject = self._subject
        with subject.lock, self.hold_sync():
            shown = in_cell and in_kernel()
            with CellProgress(t("progress.first_pass", self.lang), shown) as bar:
                first = subject.set_image(loaded, bar)
            self._cache.drop([f"{k}|" for k, h in self._handlers.items() if h.per_image])
            # the first pass gave every layer's maps: kept as they are (within the cache's
            # budget) and quantised when asked for, so the first grid waits for one layer only
            budget = self._cache.budget
            for name, maps in first.maps.items():
                if maps.nbytes <= budget:
                    budget -= maps.nbytes
                    subject.pending_maps[name] = maps
            self.layers = [info.to_json() for info in first.layers]
            lo_hi = first.value_range
            self.global_range = None if lo_hi is None else [lo_hi[0], lo_hi[1]]  # type: ignore[assignment]
            if list(self.cam_layers) != first.cam_layers:
                self.cam_layers = first.cam_layers
            if self.cam_layer not in first.cam_layers:
                self.cam_layer = first.cam_default
            self.input_image = rgb_stack(loaded.rgb[None])
            for kind in ("cam", "saliency", "metrics", "sanity", "object_cam"):
                setattr(self, f"shown_{kind}", None)
            if subject.objects is not None:  # its objects: the explorer's targets
                self.target_class = -1  # another image's object means nothing here
                self._dispatcher.show_current("objects", {"version": subject.version})
            if self.layer_name not in subject.layer_names:
                self.layer_name = subject.layer_names[0]
            self._show_layer(self.layer_name)
            self._dispatcher.show_current("predictions", {"version": subject.version})
            self.image_version = subject.version
        if not subject.fields_known:  # tracing the graph waits until the grid is drawn
            after_cell(self._fill_fields)

    def _fill_fields(self) -> None:
        """Send the explored layers' receptive fields (hover outlines) once they are known."""
        try:
            if self._subject.fill_fields():
                self.layers = [info.to_json() for info in self._subject.layer_infos]
        except Exception as err:  # never raised into the kernel: hover outlines proportionally
            self.error = f"Receptive fields unknown: {err}"

    def _show_layer(self, name: str) -> None:
        """Put the maps and kernels of layer ``name`` into the widget state."""
        self._dispatcher.show_current("features", {"version": self._subject.version,
                                                   "layer": name})
        if isinstance(self._subject.modules[name], nn.Conv2d):
            self._dispatcher.show_current("kernels", {"layer": name})

    def _on_msg(self, _widget: Any, content: Any, buffers: Sequence[Any]) -> None:
        """Entry point of every front-end message: never raises into the kernel."""
        try:
            self._dispatcher.dispatch(content, buffers, self._on_set_image)
        except Exception as err:  # shown in the widget, never raised into the kernel
            self.error = f"Ignored a message from the front end: {err}"

    def _on_set_image(self, msg: dict[str, Any], buffers: Sequence[Any]) -> None:
        if "evaluation_index" in msg:  # one of the evaluated images (the Trust view)
            self._set_image(evaluation_image(self._subject, msg["evaluation_index"]))
            return
        h, w = msg.get("height"), msg.get("width")
        if not (isinstance(h, int) and isinstance(w, int) and 8 <= min(h, w) <= max(h, w) <= 2048):
            raise MessageError("set_image needs integer height and width in 8..2048")
        if len(buffers) != 1:
            raise MessageError("set_image needs one RGBA buffer")
        data = memoryview(buffers[0]).cast("B")
        if len(data) != h * w * 4:
            raise MessageError(f"set_image: {len(data)} bytes for {h} x {w} RGBA")
        rgba = np.frombuffer(data, np.uint8).reshape(h, w, 4)
        self._set_image(np.ascontiguousarray(rgba[:, :, :3]))

