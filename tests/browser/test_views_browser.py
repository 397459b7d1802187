"""The dataset-examples tab and the arithmetic of a pinned conv unit, in a real JupyterLab 4
with headless Chromium, as a student uses them on the demo explorer.

Reference values are computed in this process: the demo's examples (deterministic generated
shapes, the same on one machine) and the demo explorer's feature maps. Screenshots:
test-artifacts/views_*.png.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from .conftest import execute_cell, open_notebook
from .test_explorer_browser import open_tab, panel, reference_features, tile_centre, wait_tiles

pytestmark = pytest.mark.browser

CELLS = [
    "import torch\ntorch.set_num_threads(1)\nfrom cnnviz_widgets import LayerExplorer\n"
    "demo = LayerExplorer()\ndemo",
]
TILE_PIXEL = """([canvas, index, fx, fy]) => {
  const L = JSON.parse(canvas.dataset.layout);
  const s = canvas.width / parseFloat(canvas.style.width || canvas.width);
  const col = index % L.columns, row = Math.floor(index / L.columns);
  const x = (col * (L.tileWidth + L.gap) + fx * L.tileWidth) * s;
  const y = (row * (L.tileHeight + L.gap) + fy * L.tileHeight) * s;
  return [...canvas.getContext('2d').getImageData(Math.floor(x), Math.floor(y), 1, 1).data];
}"""

_EXAMPLES = {}


def reference_examples():
    if "demo" not in _EXAMPLES:
        torch = pytest.importorskip("torch")
        from cnnviz_widgets.demo.examples import demo_examples

        torch.set_num_threads(1)
        _EXAMPLES["demo"] = demo_examples()
    return _EXAMPLES["demo"]


@pytest.fixture(scope="module")
def lab(jupyter_server, browser, artifacts):
    context, page = open_notebook(jupyter_server, browser, "views", CELLS)
    execute_cell(page, 0)
    try:
        page.wait_for_selector(".cnnviz-explorer", timeout=180_000)
        root = page.locator(".cnnviz-explorer").nth(0)
        wait_tiles(page, panel(root, "features").locator("canvas.cnnviz-grid"), 16, timeout=120)
    except Exception:
        page.screenshot(path=str(artifacts / "views_setup_failure.png"))
        raise
    yield page
    context.close()


def wait_key(page, canvas, key: str, timeout: float = 90_000) -> None:
    try:
        page.wait_for_function("([c, k]) => c.dataset.key === k",
                               arg=[canvas.element_handle(), key], timeout=timeout)
    except Exception:
        page.screenshot(path=f"test-artifacts/views_wait_{key.replace('|', '_')}.png")
        raise


def test_dataset_examples_of_a_channel_its_overview_and_optimised_image(lab, artifacts):
    page = lab
    root = page.locator(".cnnviz-explorer").nth(0)
    ref = reference_examples()
    open_tab(root, "examples")
    tab = panel(root, "examples")
    grid = tab.locator("canvas.cnnviz-grid")
    # the explorer's layer first (features.0): computed on first use, 9 crops of 3 x 3 pixels
    wait_key(page, grid, "examples|features.0|0")
    wait_tiles(page, grid, 9, timeout=60)
    assert "1,024 generated shapes" in tab.locator(".cnnviz-examples-about").text_content()

    tab.get_by_label("Layer", exact=True).select_option("features.9")
    field = tab.get_by_label("Channel number")
    field.fill("3")
    field.press("Enter")
    wait_key(page, grid, "examples|features.9|3")
    wait_tiles(page, grid, 9)
    caption = tab.locator(".cnnviz-examples-caption").text_content()
    assert "features.9, channel 3" in caption and "%" in caption, caption
    labels = ref.labels("features.9")[3].tolist()
    top = max(set(labels), key=lambda c: (labels.count(c), -c))
    assert f"{round(100 * labels.count(top) / 9)}% {ref.classes[top]}" in caption

    # hover: which dataset image, its class, its score
    x, y = tile_centre(page, grid, 1)
    page.mouse.move(x, y)
    zoom = root.locator(".cnnviz-zoom")
    zoom.wait_for(state="visible", timeout=5000)
    text = zoom.text_content()
    index = int(ref.indices("features.9")[3, 1])
    assert f"image #{index}" in text and ref.classes[labels[1]] in text, text
    score = float(re.search(r"score ([-\d.e+]+)", text).group(1))
    assert score == pytest.approx(float(ref.scores("features.9")[3, 1]), rel=1e-3)
    page.mouse.move(2, 2)

    # without the activation drawn over it, a tile is the dataset image's crop, pixel for pixel
    patches = ref.patches("features.9", 3)
    tab.get_by_label("Draw the channel's activation over each crop").uncheck()
    page.wait_for_timeout(300)
    h, w = patches.images.shape[1:3]
    for fx, fy in ((0.5, 0.5), (0.2, 0.7)):
        got = page.evaluate(TILE_PIXEL, [grid.element_handle(), 0, fx, fy])
        want = patches.images[0, int(fy * h), int(fx * w)].tolist()
        assert got[:3] == want, (fx, fy, got, want)
    tab.get_by_label("Draw the channel's activation over each crop").check()

    # beside them: this channel's map for the current image
    here = tab.locator("canvas.cnnviz-examples-here")
    here.wait_for(state="visible", timeout=30_000)
    root.screenshot(path=str(artifacts / "views_examples_channel.png"))

    # the overview: every channel's best example; a click opens that channel
    tab.get_by_label("Show").select_option("overview")
    channels = ref.channels("features.9")
    wait_key(page, grid, "examples|features.9|-1")
    wait_tiles(page, grid, channels)
    root.screenshot(path=str(artifacts / "views_examples_overview.png"))
    x, y = tile_centre(page, grid, 5)
    page.mouse.click(x, y)
    wait_key(page, grid, "examples|features.9|5")
    assert field.input_value() == "5"

    # the optimised image of that channel, on demand
    tab.get_by_role("button", name=re.compile("^Optimise an image")).click()
    optimised = tab.locator("canvas.cnnviz-examples-actmax")
    optimised.wait_for(state="visible", timeout=120_000)
    assert "channel 5" in tab.locator(".cnnviz-examples-side").text_content()
    root.screenshot(path=str(artifacts / "views_examples_optimised.png"))


def test_a_pinned_conv_unit_shows_how_its_value_is_made(lab, artifacts):
    page = lab
    root = page.locator(".cnnviz-explorer").nth(0)
    open_tab(root, "features")
    fpanel = panel(root, "features")
    grid = fpanel.locator("canvas.cnnviz-grid")
    slider = fpanel.get_by_label("Layer", exact=True)
    slider.focus()
    page.keyboard.press("ArrowRight")  # features.3: 32 maps of 32 x 32, kernels 32 x 16 x 3 x 3
    wait_tiles(page, grid, 32)
    layout = json.loads(grid.get_attribute("data-layout"))
    x, y = tile_centre(page, grid, 2)
    page.mouse.click(x + layout["tileWidth"] * 0.1, y - layout["tileHeight"] * 0.2)
    box = fpanel.locator(".cnnviz-arithmetic")
    total = box.locator(".cnnviz-arithmetic-total")
    end = time.time() + 60
    while not (total.count() and total.is_visible()):
        assert time.time() < end, box.text_content()
        page.wait_for_timeout(100)
    title = box.locator(".cnnviz-arithmetic-title").text_content()
    channel, row, col = map(int, re.search(r"channel (\d+), row (\d+), col (\d+)", title).groups())
    assert channel == 2
    want = float(reference_features("features.3")[channel, row, col])
    shown = float(re.search(r"the feature map shows ([-\d.e+]+)", total.text_content()).group(1))
    assert shown == pytest.approx(want, rel=1e-3, abs=1e-4)
    assert total.get_attribute("data-agrees") == "true"
    rows = box.locator(".cnnviz-arithmetic-row")
    assert rows.count() == 4  # the four input channels that add most
    assert rows.nth(0).locator(".cnnviz-cell").count() == 3 * 9  # patch, kernel, products: 3 x 3
    assert "other 12 input channels" in box.text_content()
    assert root.locator(".cnnviz-detail").is_visible()  # the clicked map is pinned too
    root.screenshot(path=str(artifacts / "views_arithmetic.png"))
    # another layer: the arithmetic of the old one goes away
    slider.focus()
    page.keyboard.press("ArrowRight")
    wait_tiles(page, grid, reference_features("features.6").shape[0])
    assert box.is_hidden()
