"""Every string a person reads in the widgets, in English and Simplified Chinese.

One table, ``messages.json`` next to this module: ``{key: {"en": text, "zh": text}}``, keys
namespaced by the module that shows them (``"pager.next"``, ``"progress.cam"``), ``{name}``
placeholders. Python reads it here; the front end bundles the same file (``js/src/i18n.ts``).

A widget's language is its ``lang`` trait (:func:`resolve_lang` picks it: the argument, else
the ``CNNVIZ_LANG`` environment variable, else the system locale, else English). Texts that
Python sends to the front end while a job runs (progress) are :class:`Msg` objects, rendered
in the widget's language when they are sent. Error messages (exceptions, the ``error`` trait)
stay in English, so that they can be searched for.

To add a string: a key in ``messages.json`` with both languages and the same placeholders,
then ``t(key, lang, **params)`` here or ``t("key", params)`` in ``js/src``; the tests
(``tests/test_i18n.py``, ``js/tests/i18n.test.ts``) check that every key used exists and
every key is used.
"""

from __future__ import annotations

import functools
import json
import locale
import os
import re
from importlib.resources import files
from typing import Any

LANGS = ("en", "zh")
"""The languages of the widgets; the first is the default and the fallback."""
DEFAULT_LANG = "en"
ENV_VAR = "CNNVIZ_LANG"
LOCALE_VARS = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
"""Environment variables that name the system's language, in the order gettext reads them."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@functools.cache
def messages() -> dict[str, dict[str, str]]:
    """The message table (read once)."""
    text = (files("cnnviz_widgets.widgets") / "messages.json").read_text(encoding="utf-8")
    table: dict[str, dict[str, str]] = json.loads(text)
    return table


def placeholders(text: str) -> list[str]:
    """The ``{name}`` placeholders of ``text``, sorted."""
    return sorted(_PLACEHOLDER.findall(text))


def interpolate(text: str, params: dict[str, Any]) -> str:
    """``text`` with every ``{name}`` replaced by ``params[name]`` (unknown names left as
    they are; the front end does the same)."""
    return _PLACEHOLDER.sub(lambda m: str(params[m[1]]) if m[1] in params else m[0], text)


def t(key: str, lang: str = DEFAULT_LANG, /, **params: Any) -> str:
    """The text of ``key`` in ``lang`` (else English, else the key itself), with ``params``
    filled in. A parameter that is a :class:`Msg` is rendered in ``lang`` first."""
    entry = messages().get(key, {})
    text = entry.get(lang) or entry.get(DEFAULT_LANG) or key
    return interpolate(text, {k: render(v, lang) for k, v in params.items()})


class Msg:
    """A text to be shown later, in a language not known yet: a key and its parameters
    (``Msg("progress.cam", method="GradCAM", layer="layer4", done=1, total=8)``)."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key = key
        self.params = params

    def render(self, lang: str) -> str:
        return t(self.key, lang, **self.params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Msg) and (self.key, self.params) == (other.key, other.params)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Msg({self.key!r}, **{self.params!r})"

    def __str__(self) -> str:
        return self.render(DEFAULT_LANG)


def render(text: Any, lang: str) -> Any:
    """``text`` in ``lang`` when it is a :class:`Msg`; anything else as it is."""
    return text.render(lang) if isinstance(text, Msg) else text


def normalize(value: str) -> str | None:
    """The language ``value`` names (``"zh"``, ``"zh-CN"``, ``"zh_CN.UTF-8"`` -> ``"zh"``),
    or ``None`` when it names none of :data:`LANGS`."""
    code = re.split(r"[-_.@]", value.strip().lower(), maxsplit=1)[0]
    return code if code in LANGS else None


def check_lang(value: Any, source: str = "lang") -> str:
    """``value`` as one of :data:`LANGS`; a ValueError naming the choices otherwise."""
    lang = normalize(value) if isinstance(value, str) else None
    if lang is None:
        raise ValueError(f"Unknown {source} {value!r}; choose from {list(LANGS)} (English, "
                         "Simplified Chinese).")
    return lang


def system_lang() -> str:
    """The system locale's language: ``"zh"`` for any Chinese locale (``zh*``), else ``"en"``.

    Reads ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES`` and ``LANG`` as gettext does (the first
    one set), then the locale Python reports (Windows, macOS apps)."""
    for var in LOCALE_VARS:
        value = os.environ.get(var)
        if value:
            name = value.split(":")[0]
            break
    else:
        try:
            name = locale.getlocale()[0] or ""
        except ValueError:  # a locale Python cannot parse
            name = ""
    name = name.lower()
    return "zh" if name.startswith(("zh", "chinese")) else DEFAULT_LANG


def resolve_lang(lang: str | None = None) -> str:
    """The language of a new widget: ``lang`` when given, else the ``CNNVIZ_LANG``
    environment variable, else the system locale (``zh*`` -> ``"zh"``), else ``"en"``.

    Raises:
        ValueError: ``lang`` or ``CNNVIZ_LANG`` names no language of :data:`LANGS`.
    """
    if lang is not None:
        return check_lang(lang)
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return check_lang(env, f"{ENV_VAR} value")
    return system_lang()


def titled(name: str, note: Msg | None, lang: str) -> str:
    """A widget's title: ``name``, and ``note`` in brackets when there is one
    (``"ResNet (random weights)"``)."""
    return name if note is None else t("title.with_note", lang, name=name, note=note)
