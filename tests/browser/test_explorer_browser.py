"""LayerExplorer in a real headless Chromium against a real JupyterLab 4 server (and once
Notebook 7), plus its saved HTML page opened from disk without a server.

One notebook displays the explorer on the bundled demo model (64 px) and on a random-init
resnet18 (64 px input). The checks read what a person sees: canvas pixels, texts, the zoom box
that appears on hover; and the websocket frames the page sends (a colormap change must send no
kernel message). Screenshots go to test-artifacts/explorer_*.png.
"""

from __future__ import annotations

import contextlib
import json
import re
import time

import pytest

from cnnviz_widgets.demo import demo_model
from cnnviz_widgets.engine.receptive import receptive_fields

from .conftest import execute_cell, write_notebook
from .legacy import GRID_STATS  # per tile: drawn (opaque), distinct colours, a checksum

pytestmark = pytest.mark.browser

CELLS = [
    "import torch, torchvision\n"
    "torch.set_num_threads(1)\n"
    "from cnnviz_widgets import LayerExplorer\n"
    "demo = LayerExplorer()\n"
    "demo",
    "torch.manual_seed(0)\n"
    "r18 = torchvision.models.resnet18(weights=None).eval()\n"
    "ex18 = LayerExplorer(r18, size=64)\n"
    "ex18",
]


def tile_centre(page, canvas, index: int) -> tuple[float, float]:
    layout = json.loads(canvas.get_attribute("data-layout"))
    box = canvas.bounding_box()
    col, row = index % layout["columns"], index // layout["columns"]
    x = box["x"] + col * (layout["tileWidth"] + layout["gap"]) + layout["tileWidth"] * 0.5
    y = box["y"] + row * (layout["tileHeight"] + layout["gap"]) + layout["tileHeight"] * 0.5
    return x, y


def wait_tiles(page, canvas, count: int, timeout: float = 60) -> dict:
    end = time.time() + timeout
    stats = {}
    while time.time() < end:
        if canvas.is_visible():
            stats = canvas.evaluate(GRID_STATS)
            if stats["tiles"] == count and stats["drawn"] == count:
                return stats
        page.wait_for_timeout(100)
    raise AssertionError(f"expected {count} drawn tiles, got {stats}")


def panel(root, name: str):
    return root.locator(f".cnnviz-panel-{name}")


def open_tab(root, name: str) -> None:
    root.locator(f".cnnviz-tab[data-tab='{name}']").click()


@pytest.fixture(scope="module")
def lab_page(jupyter_server, browser, artifacts):
    write_notebook(jupyter_server.root / "explorer.ipynb", CELLS)
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    frames: list[str] = []

    def on_ws(ws) -> None:
        ws.on("framesent", lambda payload: frames.append(
            payload if isinstance(payload, str) else payload.decode("utf-8", "replace")))

    page.on("websocket", on_ws)
    page.goto(jupyter_server.url("lab/tree/explorer.ipynb"))
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
    for i in range(len(CELLS)):
        execute_cell(page, i)
    try:
        page.wait_for_selector(".cnnviz-explorer >> nth=1", timeout=180_000)
    except Exception:
        page.screenshot(path=str(artifacts / "explorer_setup_failure.png"))
        outputs = page.locator(".jp-OutputArea").all_text_contents()
        raise AssertionError(f"the explorers did not appear; cell outputs: {outputs}") from None
    page.frames_sent = frames  # type: ignore[attr-defined]
    yield page
    context.close()


def test_feature_grid_draws_every_channel_and_slider_changes_layer(lab_page, artifacts):
    page = lab_page
    root = page.locator(".cnnviz-explorer").nth(0)
    grid = panel(root, "features").locator("canvas.cnnviz-grid")
    stats = wait_tiles(page, grid, 16)  # demo features.0: 16 x 64 x 64
    assert stats["distinct"] > 10, stats  # real maps, not one flat colour
    name = panel(root, "features").locator(".cnnviz-layer-name")
    assert name.text_content().startswith("features.0")
    assert "16 × 64 × 64" in panel(root, "features").locator(".cnnviz-layer-shape").text_content()
    root.screenshot(path=str(artifacts / "explorer_features_demo.png"))

    slider = panel(root, "features").get_by_label("Layer", exact=True)
    slider.focus()
    page.keyboard.press("ArrowRight")  # keyboard-accessible slider
    page.wait_for_function(
        "(el) => el.textContent.startsWith('features.3')", arg=name.element_handle()
    )
    stats3 = wait_tiles(page, grid, 32)  # features.3: 32 x 32 x 32
    assert stats3["hash"] != stats["hash"]
    assert "32 × 32 × 32" in panel(root, "features").locator(".cnnviz-layer-shape").text_content()

    # back to features.0: drawn from the front end's cache, no new request
    requests = int(root.get_attribute("data-requests"))
    page.keyboard.press("ArrowLeft")
    wait_tiles(page, grid, 16)
    assert int(root.get_attribute("data-requests")) == requests
    assert grid.evaluate(GRID_STATS)["hash"] == stats["hash"]


def test_hover_shows_zoom_with_channel_value_and_input_outline(lab_page, artifacts):
    page = lab_page
    root = page.locator(".cnnviz-explorer").nth(0)
    grid = panel(root, "features").locator("canvas.cnnviz-grid")
    wait_tiles(page, grid, 16)
    x, y = tile_centre(page, grid, 5)
    page.mouse.move(x, y)
    zoom = root.locator(".cnnviz-zoom")
    zoom.wait_for(state="visible", timeout=5000)
    text = zoom.text_content()
    assert "channel 5" in text
    value = float(zoom.locator(".cnnviz-zoom-value").text_content())
    row, col = map(int, re.search(r"row (\d+), col (\d+)", text).groups())
    # the same value as the model computes in this process (the notebook's explorer is built
    # the same deterministic way), within the uint8 quantisation step of that map
    maps = reference_features("features.0")[5]
    step = float(maps.max() - maps.min()) / 255
    assert abs(value - float(maps[row, col])) <= step * 0.6 + 2e-3 * abs(value), (value, row, col)
    outline = panel(root, "features").locator(".cnnviz-outline")
    assert outline.is_visible()
    # the outline is the unit's receptive field (3 x 3 for the first conv), in input pixels
    assert outline.get_attribute("data-kind") == "receptive-field"
    field = receptive_fields(demo_model().model, ["features.0"])["features.0"]
    want = [min(max(v, 0), 64) for v in field.box(row, col)]
    assert json.loads(outline.get_attribute("data-box")) == pytest.approx(want)
    assert want[2] - want[0] == 3 or col in (0, 63)
    box = outline.bounding_box()
    image_box = panel(root, "features").locator(".cnnviz-input-canvas").bounding_box()
    # the centre pixel of a 64 x 64 map sits in the middle of the input image
    assert abs(box["x"] + box["width"] / 2 - (image_box["x"] + image_box["width"] / 2)) < 6
    assert abs(box["y"] + box["height"] / 2 - (image_box["y"] + image_box["height"] / 2)) < 6
    page.screenshot(path=str(artifacts / "explorer_hover_zoom.png"),
                    clip={"x": max(0, x - 420), "y": max(0, y - 200), "width": 800, "height": 450})
    page.mouse.click(x, y)  # pin into the detail panel
    detail = root.locator(".cnnviz-detail")
    assert detail.is_visible() and "channel 5" in detail.text_content()
    page.mouse.move(5, 5)
    zoom.wait_for(state="hidden", timeout=5000)

    # deep layer: 8 x 8 maps whose units see 54 x 54 pixels, 8 apart
    slider = panel(root, "features").get_by_label("Layer", exact=True)
    slider.focus()
    page.keyboard.press("End")
    wait_tiles(page, grid, 128)
    x, y = tile_centre(page, grid, 3)
    page.mouse.move(x, y)
    zoom.wait_for(state="visible", timeout=5000)
    row, col = map(int, re.search(r"row (\d+), col (\d+)", zoom.text_content()).groups())
    field = receptive_fields(demo_model().model, ["features.11"])["features.11"]
    assert field.size == (54.0, 54.0) and field.jump == (8.0, 8.0)
    want = [min(max(v, 0), 64) for v in field.box(row, col)]
    assert outline.get_attribute("data-kind") == "receptive-field"
    assert json.loads(outline.get_attribute("data-box")) == pytest.approx(want)
    box = outline.bounding_box()
    assert box["width"] > image_box["width"] * 0.5  # most of the image, not one 8 px cell
    page.screenshot(path=str(artifacts / "explorer_hover_receptive_field.png"),
                    clip={"x": max(0, x - 420), "y": max(0, y - 200), "width": 800, "height": 450})
    page.mouse.move(5, 5)
    slider.focus()
    page.keyboard.press("Home")
    wait_tiles(page, grid, 16)


def test_colormap_change_redraws_without_a_kernel_message(lab_page, artifacts):
    page = lab_page
    root = page.locator(".cnnviz-explorer").nth(0)
    grid = panel(root, "features").locator("canvas.cnnviz-grid")
    before = wait_tiles(page, grid, 16)
    page.wait_for_timeout(500)
    sent = len(page.frames_sent)
    panel(root, "features").get_by_label("Colormap").select_option("magma")
    page.wait_for_function(
        "([c, h]) => { const s = (" + GRID_STATS + ")(c); return s.hash !== h; }",
        arg=[grid.element_handle(), before["hash"]],
    )
    page.wait_for_timeout(500)
    comm = [f for f in page.frames_sent[sent:] if "comm_msg" in f]
    assert comm == [], comm[:1]
    # colour scale and order: front end only too
    panel(root, "features").get_by_label("Colour scale").select_option("global")
    panel(root, "features").get_by_label("Order").select_option("mean")
    page.wait_for_timeout(300)
    assert [f for f in page.frames_sent[sent:] if "comm_msg" in f] == []
    root.screenshot(path=str(artifacts / "explorer_features_magma_global.png"))


def test_kernels_view_first_layer_rgb_and_deeper_layer_filters(lab_page, artifacts):
    page = lab_page
    root = page.locator(".cnnviz-explorer").nth(0)
    open_tab(root, "kernels")
    kpanel = panel(root, "kernels")
    grid = kpanel.locator("canvas.cnnviz-grid")
    page.evaluate("(el) => el.scrollIntoView()", root.element_handle())
    name = kpanel.locator(".cnnviz-layer-name")
    slider = kpanel.get_by_label("Layer", exact=True)
    slider.focus()
    page.keyboard.press("Home")
    page.wait_for_function("(el) => el.textContent.startsWith('features.0')",
                           arg=name.element_handle())
    wait_tiles(page, grid, 16)  # 16 RGB filters of 3 x 3
    root.screenshot(path=str(artifacts / "explorer_kernels_rgb.png"))
    page.keyboard.press("ArrowRight")
    page.wait_for_function("(el) => el.textContent.startsWith('features.3')",
                           arg=name.element_handle())
    first = wait_tiles(page, grid, 16)  # filter 0 of features.3: its 16 input kernels
    kpanel.get_by_label("Output filter").fill("3")
    page.wait_for_function(
        "([c, h]) => (" + GRID_STATS + ")(c).hash !== h", arg=[grid.element_handle(),
                                                              first["hash"]])
    x, y = tile_centre(page, grid, 2)
    page.mouse.move(x, y)
    assert "filter 3 · input channel 2" in root.locator(".cnnviz-zoom").text_content()
    root.screenshot(path=str(artifacts / "explorer_kernels_filter3.png"))
    page.mouse.move(5, 5)
    open_tab(root, "features")


def test_resnet18_grid_and_paging(lab_page, artifacts):
    page = lab_page
    root = page.locator(".cnnviz-explorer").nth(1)
    page.evaluate("(el) => el.scrollIntoView()", root.element_handle())
    fpanel = panel(root, "features")
    grid = fpanel.locator("canvas.cnnviz-grid")
    wait_tiles(page, grid, 64)  # conv1: 64 x 32 x 32
    assert fpanel.locator(".cnnviz-layer-name").text_content().startswith("conv1")
    slider = fpanel.get_by_label("Layer", exact=True)
    slider.focus()
    page.keyboard.press("End")  # layer4.1.conv2: 512 x 2 x 2 -> two pages of 256
    page.wait_for_function("(el) => el.textContent.startsWith('layer4.1.conv2')",
                           arg=fpanel.locator(".cnnviz-layer-name").element_handle())
    wait_tiles(page, grid, 256)
    pager = fpanel.locator(".cnnviz-pager")
    assert "page 1 / 2" in pager.text_content()
    pager.get_by_role("button", name="Next page of maps").click()
    wait_tiles(page, grid, 256)
    assert "page 2 / 2" in pager.text_content()
    root.screenshot(path=str(artifacts / "explorer_resnet18_layer4.png"))

    # fast scrubbing over layers not sent yet: one request for the first position, one for
    # the last, none for those in between
    requests = int(root.get_attribute("data-requests"))
    names = json.loads(root.get_attribute("data-layer-names"))
    slider.evaluate("(s) => { for (let i = 2; i <= 12; i++) {"
                    " s.value = String(i); s.dispatchEvent(new Event('input')); } }")
    page.wait_for_function("([el, n]) => el.textContent.startsWith(n + ' ')",
                           arg=[fpanel.locator(".cnnviz-layer-name").element_handle(),
                                names[12]])
    shape = fpanel.locator(".cnnviz-layer-shape").text_content()
    channels = int(re.search(r"output (\d+) ×", shape).group(1))
    wait_tiles(page, grid, min(channels, 256))
    assert int(root.get_attribute("data-requests")) - requests == 2

    # a model without dataset examples: the tab says how to make them, with no controls that
    # would choose among nothing
    open_tab(root, "examples")
    epanel = panel(root, "examples")
    assert "top_examples(model, data)" in epanel.locator(".cnnviz-examples-about").text_content()
    assert not epanel.locator(".cnnviz-controls").is_visible()
    open_tab(root, "features")


def test_saliency_view_draws_map_and_overlay(lab_page, artifacts):
    page = lab_page
    root = page.locator(".cnnviz-explorer").nth(0)
    page.evaluate("(el) => el.scrollIntoView()", root.element_handle())
    open_tab(root, "saliency")
    spanel = panel(root, "saliency")
    grid = spanel.locator("canvas.cnnviz-grid")
    first = wait_tiles(page, grid, 2)
    classes = spanel.locator(".cnnviz-class")
    assert classes.count() == 5
    assert re.search(r"\d+\.\d%", classes.nth(0).text_content())
    key = grid.get_attribute("data-key")
    spanel.get_by_label("Method").select_option("gradient_x_input")
    page.wait_for_function("([c, k]) => c.dataset.key !== k && c.dataset.key.includes('gradient')",
                           arg=[grid.element_handle(), key])
    second = wait_tiles(page, grid, 2)
    assert second["hash"] != first["hash"]
    third = classes.nth(2).get_attribute("data-index")
    classes.nth(2).click()  # retarget to the third class: the map follows
    page.wait_for_function("([c, t]) => c.dataset.key.split('|')[3] === t",
                           arg=[grid.element_handle(), third])
    third_stats = wait_tiles(page, grid, 2)
    assert third_stats["hash"] != second["hash"]
    assert classes.nth(2).get_attribute("aria-pressed") == "true"
    root.screenshot(path=str(artifacts / "explorer_saliency.png"))
    open_tab(root, "features")


def test_cam_view_method_class_and_depth_change_the_overlay(lab_page, artifacts):
    pytest.importorskip("cnnviz_widgets.engine.cam")
    page = lab_page
    root = page.locator(".cnnviz-explorer").nth(0)
    page.evaluate("(el) => el.scrollIntoView()", root.element_handle())
    open_tab(root, "cam")
    cpanel = panel(root, "cam")
    grid = cpanel.locator("canvas.cnnviz-grid")
    wait_tiles(page, grid, 2)  # overlay + map
    assert grid.get_attribute("data-key").split("|")[2] == "GradCAM"
    classes = cpanel.locator(".cnnviz-class")
    assert classes.count() == 5
    top_class = classes.nth(0).get_attribute("data-index")
    classes.nth(0).click()  # a known state whatever earlier tests chose
    page.wait_for_function("([c, t]) => c.dataset.key.split('|')[3] === t",
                           arg=[grid.element_handle(), top_class], timeout=60_000)
    first = wait_tiles(page, grid, 2)
    methods = cpanel.get_by_label("Method").locator("option").all_text_contents()
    assert {"GradCAM", "GradCAMPlusPlus", "ScoreCAM", "EigenCAM"} <= set(methods)

    def changed(before: dict, predicate: str) -> dict:
        page.wait_for_function(
            "([c, h]) => (" + GRID_STATS + ")(c).hash !== h && (" + predicate + ")(c)",
            arg=[grid.element_handle(), before["hash"]], timeout=60_000)
        return wait_tiles(page, grid, 2)

    second = changed(first, "(c) => c.dataset.key.split('|')[2] === 'EigenCAM'") if (
        cpanel.get_by_label("Method").select_option("EigenCAM")) else first
    # EigenCAM does not depend on the class: one map for every class, and the tab says so
    assert grid.get_attribute("data-key").split("|")[3] == "*"
    assert "class-agnostic" in cpanel.text_content()
    third_class = classes.nth(2).get_attribute("data-index")
    classes.nth(2).click()
    cpanel.get_by_label("Method").select_option("GradCAM")
    third = changed(second, f"(c) => c.dataset.key.split('|')[3] === '{third_class}'")
    assert third["hash"] != first["hash"]
    depth = cpanel.get_by_label("CAM layer", exact=True)
    depth.focus()
    page.keyboard.press("Home")  # the CAM at the first conv layer
    changed(third, "(c) => c.dataset.key.endsWith('|features.0')")
    cpanel.get_by_role("button", name=re.compile("deletion")).click()
    page.wait_for_function("(el) => /deletion auc/i.test(el.textContent)",
                           arg=cpanel.locator(".cnnviz-faith").element_handle(), timeout=60_000)
    depth.focus()
    page.keyboard.press("End")
    wait_tiles(page, grid, 2)
    root.screenshot(path=str(artifacts / "explorer_cam.png"))
    open_tab(root, "features")


def test_activation_maximization_images_appear_as_they_finish(lab_page, artifacts):
    page = lab_page
    root = page.locator(".cnnviz-explorer").nth(0)
    page.evaluate("(el) => el.scrollIntoView()", root.element_handle())
    open_tab(root, "actmax")
    apanel = panel(root, "actmax")
    apanel.get_by_label("Layer").select_option("features.3")
    apanel.get_by_label(re.compile("^Channels")).fill("2-4")
    apanel.get_by_role("button", name=re.compile("Optimise")).click()
    grid = apanel.locator("canvas.cnnviz-grid")
    status = root.locator(".cnnviz-status")
    status.wait_for(state="visible", timeout=60_000)  # progress shows while it runs
    assert re.search(r"channels? 2", status.text_content())  # one image, or a batch from 2
    page.wait_for_function("(c) => Number(c.dataset.tiles) >= 1", arg=grid.element_handle(),
                           timeout=120_000)
    partial = int(grid.get_attribute("data-tiles"))
    stats = wait_tiles(page, grid, 3, timeout=180)
    assert partial <= 3 and stats["distinct"] > 10
    x, y = tile_centre(page, grid, 1)
    page.mouse.move(x, y)
    assert "channel 3" in root.locator(".cnnviz-zoom").text_content()
    page.mouse.move(2, 2)
    root.screenshot(path=str(artifacts / "explorer_actmax.png"))
    open_tab(root, "features")


def test_drawing_becomes_the_input(lab_page, artifacts):
    page = lab_page
    root = page.locator(".cnnviz-explorer").nth(0)
    page.evaluate("(el) => el.scrollIntoView()", root.element_handle())
    fgrid = panel(root, "features").locator("canvas.cnnviz-grid")
    panel(root, "features").get_by_label("Layer", exact=True).focus()
    page.keyboard.press("Home")
    before = wait_tiles(page, fgrid, 16)
    open_tab(root, "draw")
    pad = panel(root, "draw").locator("canvas.cnnviz-pad")
    box = pad.bounding_box()
    # a white triangle on black
    pts = [(0.5, 0.15), (0.85, 0.8), (0.15, 0.8), (0.5, 0.15)]
    page.mouse.move(box["x"] + pts[0][0] * box["width"], box["y"] + pts[0][1] * box["height"])
    page.mouse.down()
    for fx, fy in pts[1:]:
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=12)
    page.mouse.up()
    lit = pad.evaluate("(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height)"
                       ".data; let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] > 128;"
                       " return n; }")
    assert lit > 50
    # the stroke's end made the drawing the input: the predictions beside the pad follow it
    dpanel = panel(root, "draw")
    page.wait_for_function("(el) => el.textContent.includes('the model sees your drawing')",
                           arg=dpanel.element_handle(), timeout=60_000)
    # the top 5 (plus, when a class was chosen in an earlier cell, that class's own button)
    classes = dpanel.locator(".cnnviz-classes .cnnviz-class:not(.cnnviz-class-extra)")
    assert classes.count() == 5
    assert "%" in classes.nth(0).text_content()
    assert "Draw with the mouse" in dpanel.text_content()  # the pad explains itself
    root.screenshot(path=str(artifacts / "explorer_drawing_pad.png"))
    panel(root, "draw").get_by_role("button", name="Use the drawing as the model's input").click()
    open_tab(root, "features")
    page.wait_for_function("([c, h]) => (" + GRID_STATS + ")(c).hash !== h",
                           arg=[fgrid.element_handle(), before["hash"]], timeout=60_000)
    wait_tiles(page, fgrid, 16)
    # the input image beside the grid is the drawing now: mostly black with white lines
    dark = panel(root, "features").locator(".cnnviz-input-canvas").evaluate(
        "(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] < 20 && d[i + 1] < 20;"
        " return n / (d.length / 4); }")
    assert dark > 0.6
    root.screenshot(path=str(artifacts / "explorer_features_of_drawing.png"))


def test_saved_html_page_works_offline(browser, artifacts, tmp_path):
    import torch

    from cnnviz_widgets import LayerExplorer

    torch.set_num_threads(1)
    ex = LayerExplorer(background=False)
    path = ex.save_html(tmp_path / "explorer.html")
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.goto(path.as_uri())
    root = page.locator(".cnnviz-explorer")
    grid = panel(root, "features").locator("canvas.cnnviz-grid")
    wait_tiles(page, grid, 16)
    x, y = tile_centre(page, grid, 7)
    page.mouse.move(x, y)
    zoom = root.locator(".cnnviz-zoom")
    zoom.wait_for(state="visible", timeout=5000)
    assert "channel 7" in zoom.text_content()
    float(zoom.locator(".cnnviz-zoom-value").text_content())
    page.screenshot(path=str(artifacts / "explorer_saved_html_hover.png"))
    page.mouse.move(2, 2)
    slider = panel(root, "features").get_by_label("Layer", exact=True)
    slider.focus()
    page.keyboard.press("End")
    wait_tiles(page, grid, 128)  # features.11 from the page's own data
    before = grid.evaluate(GRID_STATS)
    panel(root, "features").get_by_label("Colormap").select_option("gray")
    page.wait_for_function("([c, h]) => (" + GRID_STATS + ")(c).hash !== h",
                           arg=[grid.element_handle(), before["hash"]])
    assert all(u.startswith(("file:", "blob:", "data:")) for u in urls), urls
    context.close()


def test_dark_theme(lab_page, artifacts):
    page = lab_page
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme',"
                  " {theme: 'JupyterLab Dark'})")
    root = page.locator(".cnnviz-explorer").nth(0)
    page.wait_for_function(
        "(el) => { const c = getComputedStyle(el).backgroundColor.match(/\\d+/g).map(Number);"
        " return c[0] + c[1] + c[2] < 200; }", arg=root.element_handle(), timeout=30_000)
    color = root.evaluate("(el) => getComputedStyle(el).color.match(/\\d+/g).map(Number)")
    assert sum(color[:3]) > 400  # light text on the dark background
    page.evaluate("(el) => el.scrollIntoView()", root.element_handle())
    root.screenshot(path=str(artifacts / "explorer_dark_theme.png"))
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme',"
                  " {theme: 'JupyterLab Light'})")


def test_notebook7_displays_the_explorer(jupyter_server, browser, artifacts):
    write_notebook(jupyter_server.root / "nb7.ipynb", [
        "import torch\ntorch.set_num_threads(1)\nfrom cnnviz_widgets import LayerExplorer\n"
        "LayerExplorer()"
    ])
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    page.goto(jupyter_server.url("notebooks/nb7.ipynb"))
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands", timeout=60_000)
    try:
        page.wait_for_selector(".jp-Cell .jp-InputPrompt", timeout=60_000)
        with contextlib.suppress(Exception):  # Notebook 7 may show the kernel state elsewhere
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=60_000)
        execute_cell(page, 0)
        root = page.locator(".cnnviz-explorer")
        root.wait_for(timeout=120_000)
        wait_tiles(page, panel(root, "features").locator("canvas.cnnviz-grid"), 16)
    except Exception:
        page.screenshot(path=str(artifacts / "explorer_notebook7_failure.png"))
        raise
    root.screenshot(path=str(artifacts / "explorer_notebook7.png"))
    context.close()


_REFERENCE: dict[str, object] = {}


def reference_features(layer: str):
    """``(C, H, W)`` feature maps of the demo explorer's input, computed here."""
    if layer not in _REFERENCE:
        import torch

        from cnnviz_widgets import LayerExplorer, feature_maps

        torch.set_num_threads(1)
        ex = LayerExplorer(background=False)
        _REFERENCE[layer] = feature_maps(ex.model, ex.input_tensor, [layer])[layer][0].numpy()
    return _REFERENCE[layer]


def test_a_lost_kernel_is_reported_not_loading_for_ever(jupyter_server, browser, artifacts):
    import urllib.request

    write_notebook(jupyter_server.root / "silent.ipynb", [
        "import torch\ntorch.set_num_threads(1)\nfrom cnnviz_widgets import LayerExplorer\n"
        "LayerExplorer()"
    ])
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    try:
        # a workspace of its own: the default one reopens the other tests' notebooks
        page.goto(jupyter_server.url("lab/workspaces/silent/tree/silent.ipynb"))
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
            state="attached", timeout=120_000)
        execute_cell(page, 0)
        root = page.locator(".cnnviz-explorer")
        root.wait_for(timeout=120_000)
        wait_tiles(page, panel(root, "features").locator("canvas.cnnviz-grid"), 16)
        assert panel(root, "features").locator(".cnnviz-grid-box").get_attribute(
            "data-stale") == "false"
        # this notebook's kernel goes away (as after a restart, or a notebook reopened with
        # saved widgets); the other tests' kernels stay
        with urllib.request.urlopen(jupyter_server.url("api/sessions")) as resp:
            sessions = json.load(resp)
        kernels = [s["kernel"]["id"] for s in sessions
                   if s.get("path", "").endswith("silent.ipynb")]
        assert len(kernels) == 1, sessions
        req = urllib.request.Request(jupyter_server.url(f"api/kernels/{kernels[0]}"),
                                     method="DELETE")
        urllib.request.urlopen(req).close()
        slider = panel(root, "features").get_by_label("Layer", exact=True)
        slider.focus()
        page.keyboard.press("End")  # a layer whose maps were not sent yet
        page.wait_for_function("(el) => el.dataset.kernelSilent === 'true'",
                               arg=root.element_handle(), timeout=30_000)
        status = root.locator(".cnnviz-status")
        assert status.is_visible() and "run the cell again" in status.text_content()
        # the grid on screen is the previous layer's: dimmed, not passed off as the new one's
        box = panel(root, "features").locator(".cnnviz-grid-box")
        assert box.get_attribute("data-stale") == "true"
        assert box.locator(".cnnviz-stage").evaluate("(s) => getComputedStyle(s).opacity") == "0.4"
        root.screenshot(path=str(artifacts / "explorer_kernel_gone.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "explorer_kernel_gone_failure.png"))
        raise
    finally:
        context.close()


# Whether every pixel of a canvas is grey (R = G = B), and how many shades it has.
GREYS = """(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let grey = true; const shades = new Set();
  for (let k = 0; k < d.length; k += 4) {
    grey = grey && d[k] === d[k + 1] && d[k + 1] === d[k + 2]; shades.add(d[k]); }
  return { grey, shades: shades.size }; }"""


def test_a_grayscale_model_shows_grey_input_and_every_one_channel_filter(
        jupyter_server, browser, artifacts):
    """An MNIST-style model: the input is shown grey, its first layer's eight 1-channel
    filters are drawn together (one tile each, no filter field to step through), a deeper
    layer still shows one filter's input kernels."""
    from .conftest import open_notebook

    context, page = open_notebook(jupyter_server, browser, "grey", [
        "import torch, torch.nn as nn\ntorch.set_num_threads(1)\ntorch.manual_seed(0)\n"
        "from cnnviz_widgets import LayerExplorer\n"
        "m = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True),\n"
        "    nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True),\n"
        "    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()\n"
        "LayerExplorer(m, size=28, mean=[0.1307], std=[0.3081])"])
    try:
        execute_cell(page, 0)
        root = page.locator(".cnnviz-explorer")
        root.wait_for(timeout=120_000)
        wait_tiles(page, panel(root, "features").locator("canvas.cnnviz-grid"), 8)
        grey = panel(root, "features").locator("canvas.cnnviz-input-canvas").evaluate(GREYS)
        assert grey["grey"] and grey["shades"] > 10
        open_tab(root, "kernels")
        kpanel = panel(root, "kernels")
        grid = kpanel.locator("canvas.cnnviz-grid")
        wait_tiles(page, grid, 8)  # every filter of 8 x 1 x 3 x 3
        assert not kpanel.get_by_label("Output filter").is_visible()
        x, y = tile_centre(page, grid, 5)
        page.mouse.move(x, y)
        assert "filter 5 · input channel 0" in root.locator(".cnnviz-zoom").text_content()
        root.screenshot(path=str(artifacts / "explorer_grey_kernels.png"))
        page.mouse.move(5, 5)
        kpanel.get_by_label("Layer", exact=True).focus()
        page.keyboard.press("End")  # 16 x 8 x 3 x 3: filter 0's eight input kernels
        page.wait_for_function("(el) => el.textContent.startsWith('3 ')",
                               arg=kpanel.locator(".cnnviz-layer-name").element_handle())
        wait_tiles(page, grid, 8)
        assert kpanel.get_by_label("Output filter").is_visible()
        # activation maximisation: the plain mode only (the regularised one is RGB), grey images
        open_tab(root, "actmax")
        apanel = panel(root, "actmax")
        mode = apanel.get_by_label("Mode")
        assert mode.input_value() == "plain"
        assert mode.locator("option[value='regularized']").is_disabled()
        apanel.get_by_label("Layer").select_option("3")
        apanel.get_by_label(re.compile("^Channels")).fill("0-1")
        apanel.get_by_role("button", name=re.compile("Optimise")).click()
        agrid = apanel.locator("canvas.cnnviz-grid")
        stats = wait_tiles(page, agrid, 2, timeout=120)
        assert stats["distinct"] > 10
        assert agrid.evaluate(GREYS)["grey"]
        root.screenshot(path=str(artifacts / "explorer_grey_actmax.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "explorer_grey_failure.png"))
        raise
    finally:
        context.close()
