"""Messages from the front end: validate, answer from the cache or compute, deliver.

Every message is validated by the handler of its kind (:mod:`.requests`) and answered with a
reply or an error, never an exception into the kernel. Computations run in the job runner
(a worker thread inside a kernel, so the kernel keeps reading messages such as ``cancel``).

Progress texts are :class:`~.i18n.Msg` objects, sent in the widget's language (``lang``).

Delivery: the reply of a kind whose data is what its tab shows (``RequestKind.shown``) goes
into the trait ``shown_<kind>`` with the request id, which is both the reply and what a saved
notebook keeps; a reply larger than :data:`SHOWN_BYTES` is sent as a message instead, and the
trait gets its first maps (``content.partial``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .cache import Reply, ReplyCache
from .i18n import DEFAULT_LANG, Msg, render
from .jobs import Cancelled, JobRunner
from .requests import Job, MessageError, Params, RequestKind
from .subject import Subject

MAX_KEY_LENGTH = 1000
PROGRESS_INTERVAL_S = 0.1
ESTIMATE_AFTER_S = 2.0
"""Seconds of a job after which its progress messages carry an estimate of the time left."""
HEARTBEAT_S = 2.0
"""Seconds without progress after which a running job says it is still computing."""
SHOWN_BYTES = 256 * 2**10
"""Most bytes of one reply kept in the widget state (a saved notebook carries them)."""

QUIET_JOB = Job(progress=lambda *args: None, item=lambda meta, buffers: None)
"""A job context for computations nobody watches (no progress, no items, no cancel)."""

Send = Callable[[dict[str, Any], list[bytes]], None]
Show = Callable[[str, dict[str, Any]], None]
Lang = Callable[[], str]

KIND_NAMES = {
    "features": "kind.features",
    "kernels": "kind.kernels",
    "predictions": "kind.predictions",
    "cam": "kind.cam",
    "metrics": "kind.metrics",
    "saliency": "kind.saliency",
    "actmax": "kind.actmax",
    "arithmetic": "kind.arithmetic",
    "examples": "kind.examples",
    "sanity": "kind.sanity",
    "evaluation_worst": "kind.evaluation_worst",
    "objects": "kind.objects",
    "object_cam": "kind.object_cam",
}
"""The message keys of the request kinds' names (a kind without one is shown as it is)."""


def kind_text(kind: str) -> Msg | str:
    """What a request kind is called, in the language the text is sent in."""
    key = KIND_NAMES.get(kind)
    return kind if key is None else Msg(key)


_deliveries = itertools.count(1)


def shown_value(key: str, reply: Reply, rid: int | None) -> dict[str, Any]:
    """The value of a ``shown_<kind>`` trait: the reply of request ``rid`` under ``key``.

    ``seq`` numbers every value, so that the same reply asked for again (a second view of the
    widget, a repeated request id) is still a change that reaches the front end.
    """
    return {"id": rid, "key": key, "content": reply.meta, "buffers": list(reply.buffers),
            "seq": next(_deliveries)}


def describe(err: BaseException) -> str:
    """An exception as the widget shows it."""
    if isinstance(err, ModuleNotFoundError | ImportError):
        return f"not available in this installation: {err}"
    return f"{type(err).__name__}: {err}"


class Heartbeat:
    """Progress messages of one job: at most ~10 a second, and one every
    :data:`HEARTBEAT_S` seconds while the job reports nothing (a long step without progress,
    such as one big batch), so that the front end can tell "busy" from "kernel gone"."""

    def __init__(self, head: dict[str, Any], send: Send, start: bool,
                 lang: Lang = lambda: DEFAULT_LANG):
        self.head, self.send, self.lang = head, send, lang
        self.began = time.monotonic()
        self.last = 0.0  # the first progress report is always sent
        self.state: tuple[int, int, Msg | str] = (
            0, 0, Msg("progress.computing", kind=kind_text(head["kind"])))
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        if start:
            threading.Thread(target=self._beat, name="cnnviz-heartbeat", daemon=True).start()

    def progress(self, done: int, total: int, text: Msg | str) -> None:
        with self._lock:
            self.state = (done, total, text)
            now = time.monotonic()
            if now - self.last < PROGRESS_INTERVAL_S and done < total:
                return
            self.last = now
        self._send(done, total, text, heartbeat=False)

    def stop(self) -> None:
        self._stopped.set()

    def _beat(self) -> None:
        while not self._stopped.wait(HEARTBEAT_S / 2):
            with self._lock:
                now = time.monotonic()
                if now - max(self.last, self.began) < HEARTBEAT_S:
                    continue
                self.last = now
                done, total, text = self.state
            elapsed = now - self.began
            self._send(done, total, Msg("progress.still_computing", text=text, duration=Msg(
                "progress.seconds", n=f"{elapsed:.0f}")), heartbeat=True)

    def _send(self, done: int, total: int, text: Msg | str, heartbeat: bool) -> None:
        elapsed = time.monotonic() - self.began
        message = {**self.head, "type": "progress", "done": done, "total": total,
                   "heartbeat": heartbeat}
        if 0 < done < total and elapsed > ESTIMATE_AFTER_S:
            left = elapsed * (total - done) / done
            message["left_s"] = round(left, 1)
            text = Msg("progress.left", text=text, duration=_duration(left))
        message["text"] = render(text, self.lang())
        self.send(message, [])


def _duration(seconds: float) -> Msg:
    """``"40 s"``, ``"3 min"``: a time estimate as a person reads it."""
    if seconds < 90:
        return Msg("progress.seconds", n=f"{seconds:.0f}")
    return Msg("progress.minutes", n=f"{seconds / 60:.0f}")


class Dispatcher:
    """Answers the front end's requests for one explorer.

    Args:
        subject: what is explained (model, layers, input).
        handlers: ``{kind: handler}`` (:func:`.requests.request_kinds`).
        cache: the bounded reply cache.
        jobs: runs computations (background thread in a kernel, inline elsewhere).
        send: sends a custom message with buffers to the front end.
        show: sets ``shown_<kind>`` to a value of :func:`shown_value`.
        lang: the widget's language now (progress texts are sent in it).
    """

    def __init__(self, subject: Subject, handlers: dict[str, RequestKind], cache: ReplyCache,
                 jobs: JobRunner, send: Send, show: Show, lang: Lang = lambda: DEFAULT_LANG):
        self.lang = lang
        self.subject = subject
        self.handlers = handlers
        self.cache = cache
        self.jobs = jobs
        self.send = send
        self.show = show

    def key(self, kind: str, p: Params) -> str:
        return self.handlers[kind].key(p)

    def request(self, msg: dict[str, Any]) -> None:
        rid, key, kind = msg.get("id"), msg.get("key"), msg.get("kind")
        if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid < 2**53:
            raise MessageError("request id must be a non-negative integer")
        if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH:
            raise MessageError("request key must be a string")
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise MessageError(f"unknown request kind {kind!r}")
        head = {"id": rid, "key": key, "kind": kind}
        try:
            params = handler.validate(self.subject, msg)
        except MessageError as err:
            self.error(head, str(err))
            return
        cached = self.cache.get(handler.key(params))
        if cached is not None:
            self.deliver(handler, head, cached)
            return
        self.jobs.submit(lambda check: self._run(handler, head, params, check))

    def _run(self, handler: RequestKind, head: dict[str, Any], params: Params,
             check: Callable[[], None]) -> None:
        pulse = Heartbeat(head, self.send, start=self.jobs.background, lang=self.lang)

        def progress(done: int, total: int, text: Msg | str = "") -> None:
            check()
            pulse.progress(int(done), int(total), text or Msg(
                "progress.steps", kind=kind_text(head["kind"]), done=done, total=total))

        def item(meta: dict[str, Any], buffers: list[bytes]) -> None:
            self.send({**meta, **head, "type": "item"}, buffers)

        version = self.subject.version
        try:
            check()  # cancelled while it waited in the queue
            reply = handler.compute(self.subject, params, Job(progress, item))
            extra = handler.also(self.subject, params)
        except Cancelled:
            self.error(head, "cancelled")
            return
        except Exception as err:
            self.error(head, describe(err))
            return
        finally:
            pulse.stop()
        if handler.per_image and version != self.subject.version:
            return  # the image changed meanwhile: nobody wants this any more
        for key, other in extra.items():  # e.g. every layer of a one-pass CAM
            if key not in self.cache:
                self.cache.put(key, other)
        self.cache.put(handler.key(params), reply)
        self.deliver(handler, head, reply)

    def deliver(self, handler: RequestKind, head: dict[str, Any], reply: Reply) -> None:
        """Answer request ``head`` with ``reply`` (see module docstring)."""
        if handler.shown and reply.nbytes <= SHOWN_BYTES:
            self.show(handler.kind, shown_value(head["key"], reply, head["id"]))
            return
        self.send({**reply.meta, **head, "type": "reply"}, reply.buffers)
        if handler.shown:
            self._keep(handler, head["key"], reply)

    def show_current(self, kind: str, params: Params) -> None:
        """Put the reply of a request that nobody sent into ``shown_<kind>`` (computed now,
        or taken from the cache): the state of a notebook executed without a front end, and
        the first paint of a new view without a round trip."""
        key, reply = self.reply_for(kind, params)
        self._keep(self.handlers[kind], key, reply)

    def reply_for(self, kind: str, params: Params) -> tuple[str, Reply]:
        """The key and reply of a validated request, from the cache or computed now (in the
        caller's thread, quietly)."""
        handler = self.handlers[kind]
        key = handler.key(params)
        reply = self.cache.get(key)
        if reply is None:
            reply = handler.compute(self.subject, params, QUIET_JOB)
            self.cache.put(key, reply)
        return key, reply

    def _keep(self, handler: RequestKind, key: str, reply: Reply) -> None:
        part = reply if reply.nbytes <= SHOWN_BYTES else handler.snapshot(reply, SHOWN_BYTES)
        if part is not None:
            self.show(handler.kind, shown_value(key, part, None))

    def error(self, head: dict[str, Any], message: str) -> None:
        self.send({**head, "type": "error", "message": message}, [])

    def dispatch(self, content: Any, buffers: Sequence[Any],
                 set_image: Callable[[dict[str, Any], Sequence[Any]], None]) -> None:
        """Entry point of every front-end message; raises :class:`MessageError` when the
        message itself is malformed (the caller shows it)."""
        if not isinstance(content, dict):
            raise MessageError("a message must be a dict")
        kind = content.get("type")
        if kind == "request":
            self.request(content)
        elif kind == "cancel":
            self.jobs.cancel()  # every job submitted so far answers "cancelled"
        elif kind == "set_image":
            set_image(content, buffers)
        else:
            raise MessageError(f"unknown message type {kind!r}")
