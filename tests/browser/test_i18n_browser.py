"""The explorer in Simplified Chinese (``LayerExplorer(lang="zh")``) in a real JupyterLab 4 with
headless Chromium: the tab names and control labels a person reads are the table's Chinese
texts, hovering a map still shows the zoom box (in Chinese), and ``explorer.lang = "en"`` from
another cell relabels the live view without asking Python for data again. A screenshot of the
Chinese view is written under the test's tmp path (and test-artifacts/i18n_zh.png) to look at
the characters (Debian's fonts-noto-cjk)."""

from __future__ import annotations

import re
import shutil

import pytest

from cnnviz_widgets.widgets.i18n import t
from cnnviz_widgets.widgets.view_list import default_views

from .conftest import execute_cell, open_notebook
from .test_explorer_browser import open_tab, panel, tile_centre, wait_tiles

pytestmark = pytest.mark.browser

CELLS = [
    "import torch\ntorch.set_num_threads(1)\nfrom cnnviz_widgets import LayerExplorer\n"
    "zh = LayerExplorer(lang='zh')\nzh",
    "zh.lang = 'en'",
    "zh.lang = 'zh'",
]


def zh(key: str, **params) -> str:
    return t(key, "zh", **params)


@pytest.fixture(scope="module")
def lab(jupyter_server, browser, artifacts):
    context, page = open_notebook(jupyter_server, browser, "i18n", CELLS,
                                  {"width": 1280, "height": 1200}, locale="zh-CN")
    execute_cell(page, 0)
    try:
        root = page.locator(".cnnviz-explorer").first
        root.wait_for(timeout=180_000)
        wait_tiles(page, panel(root, "features").locator("canvas.cnnviz-grid"), 16, timeout=120)
    except Exception:
        page.screenshot(path=str(artifacts / "i18n_setup_failure.png"))
        raise
    yield page
    context.close()


def test_tabs_and_controls_read_in_chinese_and_hover_works(lab, artifacts, tmp_path):
    page = lab
    root = page.locator(".cnnviz-explorer").first
    assert root.get_attribute("lang") == "zh-Hans"
    tabs = {b.get_attribute("data-tab"): b.text_content()
            for b in root.locator(".cnnviz-tab").all()}
    # the one list of views (a classifier's)
    assert tabs == {name: zh(f"tabs.{name}") for name in default_views("classification")}, tabs
    assert tabs["features"] == "特征图" and tabs["cam"] == "类激活"

    features = panel(root, "features")
    labels = [s.text_content() for s in features.locator(".cnnviz-control-label").all()]
    assert labels[:4] == [zh("common.layer"), zh("features.order"), zh("features.color_scale"),
                          zh("common.colormap")] == ["层", "排序", "颜色范围", "颜色映射"], labels
    order = features.get_by_label(zh("features.order"), exact=True)
    assert [o.text_content() for o in order.locator("option").all()] == [
        zh("features.order_index"), zh("features.order_mean")]
    scale = features.get_by_label(zh("features.color_scale"), exact=True)
    assert [o.text_content() for o in scale.locator("option").all()] == ["按单图", "按层", "全局"]
    png = features.get_by_role("button", name=zh("features.png_title"))
    assert png.get_attribute("title") == "将特征图网格保存为 PNG"
    assert zh("layer_bar.output", shape="16 × 64 × 64") in features.locator(
        ".cnnviz-layer-shape").text_content()
    assert features.locator(".cnnviz-colorbar-note").text_content() == zh(
        "features.hover_for_range", scale=zh("scale.map"))
    cancel = root.locator(".cnnviz-status button")
    assert cancel.text_content() == "取消" and cancel.get_attribute("title") == zh(
        "explorer.cancel_title")

    # hover still works, and the zoom box speaks Chinese
    grid = features.locator("canvas.cnnviz-grid")
    assert grid.get_attribute("aria-label") == zh(
        "grid.label", label=zh("features.grid"), count=16, height=64, width=64)
    x, y = tile_centre(page, grid, 5)
    page.mouse.move(x, y)
    box = root.locator(".cnnviz-zoom")
    box.wait_for(state="visible", timeout=5000)
    text = box.text_content()
    assert zh("tiles.channel", index=5) in text
    assert re.search(r"第 \d+ 行，第 \d+ 列", text) and text.count("值 ") == 1, text
    float(box.locator(".cnnviz-zoom-value").text_content())  # the value, as a number
    outline = features.locator(".cnnviz-outline")
    assert outline.is_visible() and "感受野" in outline.get_attribute("aria-label")
    shot = tmp_path / "i18n_zh_features.png"
    page.screenshot(path=str(shot), clip={"x": 0, "y": max(0, y - 420), "width": 1280,
                                          "height": 720})
    shutil.copy(shot, artifacts / "i18n_zh_features.png")
    print(f"screenshot: {shot}")
    page.mouse.move(5, 5)
    box.wait_for(state="hidden", timeout=5000)


def test_class_activation_tab_in_chinese(lab, artifacts, tmp_path):
    page = lab
    root = page.locator(".cnnviz-explorer").first
    open_tab(root, "cam")
    cam = panel(root, "cam")
    caption = cam.locator(".cnnviz-explained")
    caption.wait_for(state="visible", timeout=120_000)
    page.wait_for_function("(el) => !el.classList.contains('cnnviz-explained-stale')",
                           arg=caption.element_handle(), timeout=120_000)
    assert cam.get_by_role("button", name=zh("cam.faithfulness_title")).text_content() == "忠实度"
    assert cam.get_by_label(zh("cam.layer"), exact=True).count() == 1
    assert cam.get_by_label(zh("overlay.opacity"), exact=True).count() == 1
    text = caption.text_content()
    assert re.search(r" · \S+ 层$", text), text  # "GradCAM · star 97.2% · features.11 层"
    assert cam.locator(".cnnviz-classes").get_attribute("aria-label") == zh("classes.label")
    first = cam.locator(".cnnviz-class").first
    assert first.get_attribute("title").startswith("解释类别 ")
    cam.get_by_role("button", name=zh("cam.faithfulness_title")).click()
    faith = cam.locator(".cnnviz-faith")
    page.wait_for_function("(el) => el.textContent.startsWith('忠实度：') && "
                           "el.textContent.includes('删除 AUC')", arg=faith.element_handle(),
                           timeout=120_000)
    assert "（越低越好）" in faith.text_content()
    shot = tmp_path / "i18n_zh_cam.png"
    root.screenshot(path=str(shot))
    shutil.copy(shot, artifacts / "i18n_zh_cam.png")
    open_tab(root, "features")


TAB_TEXT = """(want) => document.querySelector(
  ".cnnviz-explorer .cnnviz-tab[data-tab='features']")?.textContent === want"""


def test_setting_lang_from_another_cell_relabels_the_live_view(lab):
    page = lab
    root = page.locator(".cnnviz-explorer").first
    requests = root.get_attribute("data-requests")
    execute_cell(page, 1)  # zh.lang = 'en': the shell is built again, in English
    page.wait_for_function(TAB_TEXT, arg="Feature maps", timeout=60_000)
    assert page.locator(".cnnviz-explorer").count() == 1
    features = panel(root, "features")
    assert root.get_attribute("lang") == "en"
    assert features.get_by_label("Colour scale", exact=True).count() == 1
    wait_tiles(page, features.locator("canvas.cnnviz-grid"), 16)
    assert root.get_attribute("data-requests") == requests  # the session and its data stayed
    execute_cell(page, 2)  # zh.lang = 'zh'
    page.wait_for_function(TAB_TEXT, arg="特征图", timeout=60_000)
    wait_tiles(page, panel(root, "features").locator("canvas.cnnviz-grid"), 16)
