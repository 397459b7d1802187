"""What every request kind is made of: its key, its validation and its computation.

A request kind is one :class:`RequestKind` subclass in a module of this package, registered in
:data:`cnnviz_widgets.widgets.requests.KINDS`. The dispatcher
(:mod:`cnnviz_widgets.widgets.dispatch`) does the rest: cache, background job, progress,
cancel, and delivery (as a ``shown_<kind>`` trait or a reply message).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..cache import Reply
from ..subject import Subject

Params = dict[str, Any]
"""A validated request: the parameters its key and computation need."""


class MessageError(ValueError):
    """A message from the front end that does not fit (unknown layer, bad index, wrong type)."""


@dataclass
class Job:
    """What a computation may do while it runs.

    Attributes:
        progress: ``progress(done, total, text="")``; raises ``Cancelled`` after a cancel.
            ``text``: an :class:`~cnnviz_widgets.widgets.i18n.Msg`, sent in the widget's
            language (a plain string is sent as it is).
        item: ``item(meta, buffers)`` sends one finished part of a many-part reply.
    """

    progress: Callable[..., None]
    item: Callable[[dict[str, Any], list[bytes]], None]


class RequestKind:
    """One kind of data the front end asks for (subclasses set the class attributes).

    Class attributes:
        kind: the name in messages and keys (``"features"``).
        per_image: its data depend on the input image (requests carry ``version``; the cache
            drops them when the image changes).
        shown: its latest reply is what the tab shows, kept in the ``shown_<kind>`` trait so
            that a saved notebook still shows it.
    """

    kind: ClassVar[str] = ""
    per_image: ClassVar[bool] = True
    shown: ClassVar[bool] = True

    def key(self, p: Params) -> str:
        """The cache key of a validated request (``js/src/keys.ts`` builds the same)."""
        raise NotImplementedError

    def validate(self, subject: Subject, msg: dict[str, Any]) -> Params:
        """The parameters of ``msg``; raises :class:`MessageError` naming what is wrong."""
        raise NotImplementedError

    def compute(self, subject: Subject, p: Params, job: Job) -> Reply:
        raise NotImplementedError

    def also(self, subject: Subject, p: Params) -> dict[str, Reply]:
        """Replies of other requests that the computation of ``p`` gave on the way, by key
        (cached so that they are never computed again); none by default."""
        return {}

    def snapshot(self, reply: Reply, budget: int) -> Reply | None:
        """A version of ``reply`` within ``budget`` bytes for the widget state, ``None`` when
        no useful part fits (the default: nothing is cut, only whole replies are kept)."""
        return None


# ---------------------------------------------------------------------- shared checks


def check_version(subject: Subject, msg: dict[str, Any]) -> int:
    version = msg.get("version")
    if version != subject.version:
        raise MessageError(
            f"this request is for image version {version!r}; the image is now "
            f"version {subject.version}"
        )
    return subject.version


def check_layer(layer: Any, allowed: Sequence[str]) -> str:
    if not isinstance(layer, str) or layer not in allowed:
        shown = layer if isinstance(layer, str) else type(layer).__name__
        raise MessageError(f"unknown layer {shown[:80]!r}")
    return layer


def fold(name: str) -> str:
    """A method name as matched: case, ``_`` and ``-`` ignored."""
    return name.replace("_", "").replace("-", "").lower()


def canonical(name: Any, allowed: Sequence[str], what: str) -> str:
    """The entry of ``allowed`` that ``name`` means (see :func:`fold`)."""
    if isinstance(name, str):
        for m in allowed:
            if fold(m) == fold(name):
                return m
    shown = name if isinstance(name, str) else type(name).__name__
    raise MessageError(f"unknown {what} {shown[:80]!r}; choose from {list(allowed)}")


def check_target(subject: Subject, target: Any) -> int:
    """A class of a classifier, or an object of a detector or segmenter (see
    :mod:`.objects`)."""
    if subject.objects is not None:
        checked: int = subject.objects.check(subject, target)
        return checked
    if not isinstance(target, int) or isinstance(target, bool):
        raise MessageError("target must be a class index (integer)")
    n = subject.num_classes()
    if not 0 <= target < n:
        raise MessageError(f"class {target} out of range: the model has {n} classes")
    return target


def target_key(target: int | None) -> str:
    """A class in a key: its index, or ``*`` for a class-agnostic map."""
    return "*" if target is None else str(target)
