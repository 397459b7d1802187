"""The quick-tour notebook in a real JupyterLab: run every cell, check that every explorer and
view in it draws, and take the README screenshot.

The notebook is copied from ``notebooks/`` into the server's root and run with
``notebook:run-all-cells``. Each widget is then scrolled into view and its canvas read back with
``getImageData``: a view counts as drawn when its canvas has opaque pixels of many colours (the
drawing pad after a stroke is drawn on it, the activation-maximization view after it has
optimised two channels). Screenshots of every view go to ``test-artifacts/quick_tour_*.png``;
the full explorer with a hovered tile is the README's ``docs/images/explorer.png`` (copied there
when ``CNNVIZ_UPDATE_README_IMAGE=1``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from cnnviz_widgets.widgets.view_list import default_views

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "00_quick_tour.ipynb"
README_IMAGE = ROOT / "docs" / "images" / "explorer.png"

# The widget views the notebook displays, in page order: (artifact name, tabs it shows).
ALL_TABS = default_views("classification")  # the one list of views (a classifier's)
EXPECTED = [
    ("explorer", ALL_TABS),
    ("explorer_second_view", ALL_TABS),
    ("kernels_view", ["kernels"]),
    ("feature_maps_view", ["features"]),
    ("cam_view", ["cam"]),
    ("saliency_view", ["saliency"]),
    ("actmax_view", ["actmax"]),
    ("drawing_pad", ["draw"]),
    ("resnet18", ALL_TABS),
]

# Opaque pixels (share of a sample) and distinct colours of a canvas, read back from the page.
CANVAS_STATS = """(c) => {
  if (!c.width || !c.height) return { opaque: 0, colours: 0, width: 0, height: 0 };
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  const pixels = d.length / 4;
  const stride = Math.max(1, Math.floor(pixels / 20000));
  let seen = 0, opaque = 0;
  const colours = new Set();
  for (let p = 0; p < pixels; p += stride) {
    const k = 4 * p;
    seen++;
    if (d[k + 3] === 255) {
      opaque++;
      colours.add(d[k] * 65536 + d[k + 1] * 256 + d[k + 2]);
    }
  }
  return { opaque: opaque / seen, colours: colours.size, width: c.width, height: c.height };
}"""


# The last code cell (exercise 2's solution) prints this once every cell before it has run.
FINISHED = ("() => [...document.querySelectorAll('.jp-OutputArea-output')]"
            ".some(e => e.textContent.includes('features.11 mean features'))")


RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
KERNEL_READY = """() => {
  const kernel = window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel;
  return !!kernel && kernel.connectionStatus === "connected" && kernel.status === "idle";
}"""


def accept_kernel_dialog(page) -> bool:
    """JupyterLab sometimes asks which kernel to start although the notebook names one."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and dialog.first.is_visible():
        dialog.first.locator(".jp-Dialog-button.jp-mod-accept").click()
        return True
    return False


def dismiss_news_toast(page) -> None:
    """Close JupyterLab's "get notified about news?" toast so it does not cover screenshots."""
    toast = page.locator(".Toastify__toast").filter(has_text="Jupyter news")
    with contextlib.suppress(Exception):  # not every JupyterLab shows it
        toast.get_by_role("button", name="No").click(timeout=5000)


def explorers(page):
    return page.locator(".cnnviz-explorer")


def visible_panel(root):
    panels = root.locator(".cnnviz-panel")
    for i in range(panels.count()):
        if panels.nth(i).is_visible():
            return panels.nth(i)
    raise AssertionError("no visible panel in the widget")


def wait_drawn(page, canvas, min_colours: int = 10, timeout: float = 90) -> dict:
    """Wait until ``canvas`` shows a real picture: mostly opaque, many colours."""
    end = time.time() + timeout
    stats: dict = {}
    while time.time() < end:
        if canvas.is_visible():
            stats = canvas.evaluate(CANVAS_STATS)
            if stats["opaque"] > 0.2 and stats["colours"] >= min_colours:
                return stats
        page.wait_for_timeout(200)
    raise AssertionError(f"canvas not drawn: {stats}")


def grid_canvas(panel):
    return panel.locator("canvas.cnnviz-grid").first


def scroll_to(page, root) -> None:
    root.scroll_into_view_if_needed()
    page.wait_for_timeout(300)


@pytest.fixture(scope="module")
def tour_page(jupyter_server, browser, artifacts):
    shutil.copy(NOTEBOOK, jupyter_server.root / NOTEBOOK.name)
    context = browser.new_context(viewport={"width": 1280, "height": 1200})
    page = context.new_page()
    # a workspace of its own: the default one reopens the other tests' notebooks, whose
    # explorers would be counted here
    page.goto(jupyter_server.url(f"lab/workspaces/tour/tree/{NOTEBOOK.name}"))
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        state="attached", timeout=120_000)
    try:
        end = time.time() + 120
        while not page.evaluate(KERNEL_READY):
            accept_kernel_dialog(page)
            assert time.time() < end, "the kernel did not start"
            page.wait_for_timeout(500)
        page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
        dismiss_news_toast(page)
        # Not awaited: the command's promise can outlive the run; the outputs tell when it is
        # done.
        page.evaluate(RUN_ALL)
        end = time.time() + 300
        while not page.evaluate(FINISHED):
            if accept_kernel_dialog(page):
                page.wait_for_timeout(2000)
                page.evaluate(RUN_ALL)
            assert time.time() < end, "timed out"
            page.wait_for_timeout(500)
        page.wait_for_function(f"() => document.querySelectorAll('.cnnviz-explorer').length"
                               f" >= {len(EXPECTED)}", timeout=60_000)
    except Exception:
        page.screenshot(path=str(artifacts / "quick_tour_failure.png"), full_page=True)
        outputs = page.locator(".jp-OutputArea-output").all_text_contents()
        raise AssertionError(f"the quick tour did not run through: {outputs[-5:]}") from None
    yield page
    context.close()


def test_quick_tour_runs_without_errors(tour_page):
    page = tour_page
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    texts = [t for t in errors.all_text_contents() if "Traceback" in t or "Error" in t]
    assert not texts, texts
    assert explorers(page).count() == len(EXPECTED)
    for i, (name, tabs) in enumerate(EXPECTED):
        root = explorers(page).nth(i)
        shown = [t.get_attribute("data-tab") for t in root.locator(".cnnviz-tab").all()]
        if len(tabs) > 1:
            assert shown == tabs, (name, shown)
        else:  # a focused view shows its one panel (with or without a tab bar)
            assert shown in ([], tabs), (name, shown)
        assert root.locator(".cnnviz-error:visible").count() == 0, name


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 5, 8])
def test_view_draws_its_pictures(tour_page, artifacts, index):
    page = tour_page
    name, _ = EXPECTED[index]
    root = explorers(page).nth(index)
    scroll_to(page, root)
    panel = visible_panel(root)
    grid = grid_canvas(panel)
    page.wait_for_function("(c) => Number(c.dataset.tiles || 0) > 0", arg=grid.element_handle(),
                           timeout=90_000)
    stats = wait_drawn(page, grid)
    assert stats["width"] * stats["height"] > 40 * 40, stats
    root.screenshot(path=str(artifacts / f"quick_tour_{name}.png"))


def test_activation_max_view_optimises_on_request(tour_page, artifacts):
    page = tour_page
    name, _ = EXPECTED[6]
    root = explorers(page).nth(6)
    scroll_to(page, root)
    panel = visible_panel(root)
    panel.get_by_label("Layer").select_option("features.0")
    panel.get_by_label(re.compile("^Channels")).fill("0-1")
    panel.get_by_role("button", name=re.compile("Optimise")).click()
    grid = grid_canvas(panel)
    page.wait_for_function("(c) => Number(c.dataset.tiles || 0) >= 2", arg=grid.element_handle(),
                           timeout=120_000)
    wait_drawn(page, grid)
    root.screenshot(path=str(artifacts / f"quick_tour_{name}.png"))


def test_drawing_pad_takes_a_stroke(tour_page, artifacts):
    page = tour_page
    name, _ = EXPECTED[7]
    root = explorers(page).nth(7)
    scroll_to(page, root)
    pad = visible_panel(root).locator("canvas.cnnviz-pad")
    box = pad.bounding_box()
    points = [(0.2, 0.2), (0.8, 0.25), (0.5, 0.85), (0.2, 0.2)]
    page.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
    page.mouse.down()
    for fx, fy in points[1:]:
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=10)
    page.mouse.up()
    stats = pad.evaluate(CANVAS_STATS)
    assert stats["opaque"] > 0.9, stats
    lit = pad.evaluate("(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width,"
                       " c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4)"
                       " n += d[i] > 128; return n; }")
    assert lit > 50, lit
    root.screenshot(path=str(artifacts / f"quick_tour_{name}.png"))


def test_readme_screenshot(tour_page, artifacts):
    """The first explorer on its feature-map tab, second layer, one tile hovered."""
    page = tour_page
    root = explorers(page).nth(0)
    scroll_to(page, root)
    root.locator(".cnnviz-tab[data-tab='features']").click()
    panel = visible_panel(root)
    slider = panel.get_by_label("Layer", exact=True)
    slider.focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")  # features.3: 32 maps of 32 x 32
    page.wait_for_function("(el) => el.textContent.startsWith('features.3')",
                           arg=panel.locator(".cnnviz-layer-name").element_handle())
    grid = grid_canvas(panel)
    page.wait_for_function("(c) => Number(c.dataset.tiles) === 32", arg=grid.element_handle(),
                           timeout=60_000)
    wait_drawn(page, grid)
    box = grid.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.36, box["y"] + box["height"] * 0.15)
    zoom = root.locator(".cnnviz-zoom")
    zoom.wait_for(state="visible", timeout=10_000)
    assert "channel" in zoom.text_content()
    page.wait_for_timeout(300)
    # The zoom box may reach below the widget: make room for it (so the picture shows no
    # notebook text under the widget), then take the union of both boxes.
    below = zoom.bounding_box()["y"] + zoom.bounding_box()["height"] - (
        root.bounding_box()["y"] + root.bounding_box()["height"])
    if below > 0:
        root.evaluate(f"(el) => {{ el.style.paddingBottom = '{below + 12:.0f}px'; }}")
        page.wait_for_timeout(200)
    parts = [root.bounding_box(), zoom.bounding_box()]
    x0, y0 = min(b["x"] for b in parts), min(b["y"] for b in parts)
    x1 = max(b["x"] + b["width"] for b in parts)
    y1 = max(b["y"] + b["height"] for b in parts)
    # Written to the artifacts; copied over the README's picture only when asked
    # (CNNVIZ_UPDATE_README_IMAGE=1), so a test run leaves the checkout clean.
    shot = artifacts / "quick_tour_readme_explorer.png"
    page.screenshot(path=str(shot),
                    clip={"x": x0, "y": y0, "width": x1 - x0 + 8, "height": y1 - y0 + 8})
    if os.environ.get("CNNVIZ_UPDATE_README_IMAGE") == "1":
        README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, README_IMAGE)
    page.mouse.move(2, 2)
    from PIL import Image

    with Image.open(shot) as img:
        assert img.width >= 600 and img.height >= 300
