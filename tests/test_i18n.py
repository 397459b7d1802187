"""The widgets in English and Simplified Chinese: how the language is chosen, the ``lang``
trait in the saved state, and the texts Python sends (title notes, progress, the cell's
progress bar) taken from the one message table (``cnnviz_widgets/widgets/messages.json``).
The front end's side of the table is checked by ``js/tests/i18n.test.ts``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cnnviz_widgets import LayerExplorer
from cnnviz_widgets.widgets import dispatch, i18n
from cnnviz_widgets.widgets import explorer as explorer_module
from cnnviz_widgets.widgets.i18n import LANGS, Msg, check_lang, messages, resolve_lang, t
from cnnviz_widgets.widgets.recorder import Recorder
from cnnviz_widgets.widgets.views import CamView

PACKAGE = Path(i18n.__file__).resolve().parents[1]


@pytest.fixture
def no_locale(monkeypatch):
    """No language in the environment: neither CNNVIZ_LANG nor a locale variable."""
    for var in (i18n.ENV_VAR, *i18n.LOCALE_VARS):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(i18n.locale, "getlocale", lambda *a: (None, None))
    return monkeypatch


# ---------------------------------------------------------------------- choosing the language


def test_the_argument_wins_and_is_read_as_people_write_it(no_locale):
    no_locale.setenv("CNNVIZ_LANG", "en")
    no_locale.setenv("LANG", "en_US.UTF-8")
    assert resolve_lang("zh") == "zh"
    assert resolve_lang("zh-CN") == "zh"
    assert resolve_lang("ZH_cn") == "zh"
    assert resolve_lang("en") == "en"


def test_without_an_argument_the_environment_variable_then_the_locale(no_locale):
    assert resolve_lang() == "en"  # nothing set: English
    no_locale.setenv("LANG", "zh_CN.UTF-8")
    assert resolve_lang() == "zh"
    no_locale.setenv("CNNVIZ_LANG", "en")
    assert resolve_lang() == "en"  # the variable before the locale
    no_locale.setenv("CNNVIZ_LANG", "zh")
    no_locale.setenv("LANG", "C.UTF-8")
    assert resolve_lang() == "zh"


@pytest.mark.parametrize(("env", "want"), [
    ({"LANG": "zh_TW.UTF-8"}, "zh"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LANG": "POSIX"}, "en"),
    ({"LANG": "de_DE.UTF-8", "LC_ALL": "zh_CN.UTF-8"}, "zh"),  # LC_ALL before LANG
    ({"LANGUAGE": "zh_CN:en_US", "LANG": "en_US.UTF-8"}, "zh"),  # as gettext reads them
    ({"LC_MESSAGES": "en_GB.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
])
def test_the_system_locale(no_locale, env, want):
    for var, value in env.items():
        no_locale.setenv(var, value)
    assert resolve_lang() == want


def test_the_locale_python_reports_when_no_variable_says(no_locale):
    no_locale.setattr(i18n.locale, "getlocale", lambda *a: ("Chinese (Simplified)_China", "936"))
    assert resolve_lang() == "zh"  # Windows names the language in words
    no_locale.setattr(i18n.locale, "getlocale", lambda *a: ("zh_CN", "UTF-8"))
    assert resolve_lang() == "zh"
    no_locale.setattr(i18n.locale, "getlocale", lambda *a: ("fr_FR", "UTF-8"))
    assert resolve_lang() == "en"


def test_an_unknown_language_is_a_value_error_listing_the_choices(no_locale):
    with pytest.raises(ValueError, match=r"Unknown lang 'fr'; choose from \['en', 'zh'\]"):
        resolve_lang("fr")
    with pytest.raises(ValueError, match="choose from"):
        check_lang(3)
    no_locale.setenv("CNNVIZ_LANG", "klingon")
    with pytest.raises(ValueError, match=r"CNNVIZ_LANG value 'klingon'; choose from"):
        resolve_lang()
    with pytest.raises(ValueError, match=r"Unknown lang 'de'; choose from \['en', 'zh'\]"):
        LayerExplorer(lang="de", background=False)


# ---------------------------------------------------------------------- the widget


@pytest.fixture(scope="module")
def zh():
    ex = LayerExplorer(lang="zh", background=False)
    yield ex
    ex.close()


def test_the_lang_trait_is_synced_and_in_the_saved_state(zh, tmp_path):
    assert zh.lang == "zh"
    assert "lang" in zh.class_trait_names(sync=True)
    assert zh.get_state()["lang"] == "zh"
    page = zh.save_html(tmp_path / "zh.html", layers=["features.0"]).read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="cnnviz-page">(.*?)</script>',
                                page, re.S).group(1))
    assert data["state"]["lang"] == "zh"


def test_the_default_comes_from_the_environment(no_locale):
    no_locale.setenv("CNNVIZ_LANG", "zh")
    view = CamView(background=False)  # the focused views take lang like the explorer
    try:
        assert view.lang == "zh" and view.views == ["cam"]
    finally:
        view.close()
    no_locale.delenv("CNNVIZ_LANG")
    plain = LayerExplorer(background=False)
    try:
        assert plain.lang == "en"
    finally:
        plain.close()


def test_setting_lang_later_checks_it_and_relabels_the_title():
    ex = LayerExplorer("resnet18", size=64, background=False, lang="zh")
    try:
        assert ex.title == "ResNet（随机权重）"
        ex.lang = "en"
        assert ex.title == "ResNet (random weights)"
        ex.lang = "zh_CN"
        assert ex.lang == "zh" and ex.title == "ResNet（随机权重）"
        with pytest.raises(ValueError, match="choose from"):
            ex.lang = "fr"
        assert ex.lang == "zh"
        # error messages stay English, so that they can be searched for
        with pytest.raises(ValueError, match="is not one of the explorer's layers"):
            ex.layer = "nope"
    finally:
        ex.close()


def test_progress_is_sent_in_the_widget_language(zh):
    rec = Recorder(zh)
    rec.request(zh, "metrics", rid=7, method="GradCAM", target=0, layer="features.3",
                version=zh.image_version)
    texts = [m["text"] for m, _ in rec.sent if m["type"] == "progress" and m["id"] == 7]
    assert t("progress.deletion", "zh") in texts, texts
    assert all(not re.search("[A-Za-z]{4,}", x.replace("GradCAM", "")) for x in texts), texts
    zh.lang = "en"
    try:
        rec.request(zh, "metrics", rid=8, method="GradCAM", target=1, layer="features.3",
                    version=zh.image_version)
        texts = [m["text"] for m, _ in rec.sent if m["type"] == "progress" and m["id"] == 8]
        assert "faithfulness: deletion" in texts, texts
    finally:
        zh.lang = "zh"


def test_heartbeat_and_estimates_in_the_widget_language(monkeypatch):
    sent: list[dict] = []
    lang = ["zh"]
    beat = dispatch.Heartbeat({"id": 1, "key": "k", "kind": "saliency"},
                              lambda m, b: sent.append(m), start=False, lang=lambda: lang[0])
    assert i18n.render(beat.state[2], "zh") == "显著图：计算中"  # before any progress
    monkeypatch.setattr(dispatch, "ESTIMATE_AFTER_S", -1.0)
    beat.began -= 30  # 30 s in
    beat.progress(2, 4, Msg("progress.saliency", method="smoothgrad", done=2, total=4))
    assert sent[-1]["text"] == "smoothgrad：第 2 / 4 次传播 · 约剩 30 秒"
    lang[0] = "en"
    beat.last = 0.0
    beat.progress(3, 4, Msg("progress.saliency", method="smoothgrad", done=3, total=4))
    assert sent[-1]["text"] == "smoothgrad: 3 / 4 passes · about 10 s left"
    beat.began -= 600
    beat.last = 0.0
    beat.progress(1, 4, "")
    assert sent[-1]["text"].endswith(" · about 32 min left")  # 630 s x 3


def test_a_job_without_text_says_what_it_computes(zh):
    rec = Recorder(zh)
    handler = zh._handlers["saliency"]

    def job(subject, params, job):
        job.progress(1, 2)
        return dispatch.Reply({}, [])

    original = handler.compute
    handler.compute = job
    zh._cache.drop([""])  # computed, not answered from the cache
    try:
        rec.request(zh, "saliency", rid=11, method="vanilla", target=0, version=zh.image_version)
    finally:
        handler.compute = original
    texts = [m["text"] for m, _ in rec.sent if m["type"] == "progress" and m["id"] == 11]
    assert texts == ["显著图：1 / 2"]


def test_the_cell_progress_bar_label(zh, monkeypatch):
    labels: list[str] = []

    class Spy(explorer_module.CellProgress):
        def __init__(self, label, enabled, *a, **k):
            labels.append(label)
            super().__init__(label, enabled, *a, **k)

    monkeypatch.setattr(explorer_module, "CellProgress", Spy)
    zh.image = zh.image  # a new image: a new first pass
    assert labels == [t("progress.first_pass", "zh")] == ["cnnviz：首次前向传播（记录各层）"]


# ---------------------------------------------------------------------- the table


def python_keys() -> dict[str, str]:
    """Message keys the package's Python code names: ``Msg("...")``, ``t("...")`` and the
    values of key tables such as ``KIND_NAMES``."""
    found: dict[str, str] = {}
    pattern = re.compile(r'\b(?:Msg|t)\(\s*"([a-z][a-z0-9_]*\.[a-z0-9_.]+)"'
                         r'|"((?:kind|title|progress)\.[a-z_]+)"')
    for path in PACKAGE.rglob("*.py"):
        for m in pattern.finditer(path.read_text(encoding="utf-8")):
            found[m[1] or m[2]] = path.name
    return found


def test_every_key_python_uses_is_in_the_table_in_both_languages():
    used = python_keys()
    assert {"progress.cam", "progress.first_pass", "title.random_weights", "kind.cam"} <= set(used)
    table = messages()
    missing = sorted(f"{k} ({where})" for k, where in used.items() if k not in table)
    assert not missing, missing
    for key in used:
        assert set(table[key]) == set(LANGS), key
        assert i18n.placeholders(table[key]["en"]) == i18n.placeholders(table[key]["zh"]), key


def test_t_fills_placeholders_renders_nested_messages_and_falls_back(monkeypatch):
    assert t("progress.cam", "zh", method="GradCAM", layer="layer4", done=2, total=8) == (
        "GradCAM（layer4 层）：2 / 8")
    nested = Msg("progress.steps", kind=Msg("kind.cam"), done=1, total=3)
    assert nested.render("zh") == "类激活图：1 / 3" and str(nested) == "cam: 1 / 3"
    assert nested == Msg("progress.steps", kind=Msg("kind.cam"), done=1, total=3)
    monkeypatch.setitem(messages(), "test.english_only", {"en": "only {x}"})
    assert t("test.english_only", "zh", x=1) == "only 1"
    assert t("no.such_key", "zh") == "no.such_key"
    assert i18n.interpolate("{a} {b}", {"a": 1}) == "1 {b}"


def test_every_request_kind_has_a_name_in_the_table():
    """Progress texts name the kind: each kind of the registry has its ``kind.<kind>`` entry."""
    from cnnviz_widgets.widgets.dispatch import KIND_NAMES as NAMED
    from cnnviz_widgets.widgets.requests import KIND_NAMES

    assert set(NAMED) == set(KIND_NAMES)
    assert all(NAMED[k] == f"kind.{k}" and NAMED[k] in messages() for k in KIND_NAMES)
