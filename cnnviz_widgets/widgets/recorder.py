"""What the front end receives from an explorer, recorded without a browser.

For tests, benchmarks and scripts that drive an explorer by its messages: replaces the widget's
``send`` and observes the ``shown_<kind>`` traits, and lists both as the front end sees them
(a ``shown_<kind>`` value with a request id is the reply to that request).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .requests import SHOWN_KINDS

if TYPE_CHECKING:
    from .explorer import LayerExplorer

Message = tuple[dict[str, Any], list[bytes]]


class Recorder:
    """Records what ``widget`` sends: ``sent`` holds ``(content, buffers)`` in order."""

    def __init__(self, widget: LayerExplorer):
        self.sent: list[Message] = []
        widget.send = self._send
        widget.observe(self._on_shown, names=[f"shown_{k}" for k in SHOWN_KINDS])

    def _send(self, content: dict[str, Any], buffers: Any = None) -> None:
        self.sent.append((content, list(buffers or [])))

    def _on_shown(self, change: dict[str, Any]) -> None:
        value = change["new"]
        if value is not None and value["id"] is not None:
            kind = change["name"].removeprefix("shown_")
            self.sent.append(({**value["content"], "type": "reply", "id": value["id"],
                               "key": value["key"], "kind": kind}, list(value["buffers"])))

    @property
    def last(self) -> Message:
        return self.sent[-1]

    def request(self, widget: LayerExplorer, kind: str, rid: int = 1,
                **params: Any) -> Message | None:
        """Send a request as the front end does; returns the last message recorded after it
        (None when nothing was sent yet, e.g. the job runs in the background)."""
        key = params.pop("key", f"{kind}-key")
        widget._on_msg(widget, {"type": "request", "id": rid, "key": key, "kind": kind,
                                **params}, [])
        return self.sent[-1] if self.sent else None
