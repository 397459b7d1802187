"""The objects view in a real JupyterLab 4 with headless Chromium: a random-init, calibrated
Faster R-CNN (tests/helpers) with its boxes drawn over the image, the score threshold hiding
boxes, a click on a box showing its map (the value under the pointer equal to the engine's
``cam`` of that box), and a random LRASPP whose class legend and image regions retarget the
map. Screenshots: test-artifacts/objects_detection.png, objects_segmentation.png.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from .conftest import ROOT, execute_cell, open_notebook
from .test_explorer_browser import panel

pytestmark = pytest.mark.browser

CLASSES = ["background", "circle", "square", "ring", "cross"]
SETUP = (
    "import sys\nimport torch\ntorch.set_num_threads(1)\n"
    f"sys.path.insert(0, {str(ROOT)!r})\n"
    "from cnnviz_widgets import LayerExplorer\n"
    "from tests.helpers.detection_models import build, smooth_images\n"
    f"CLASSES = {CLASSES!r}\n"
)
THRESHOLD = 0.224
"""Set from Python: the random detector's scores lie in [0.215, 0.234]."""
CELLS = [
    SETUP + "det = LayerExplorer(build('fasterrcnn_mobilenet'), smooth_images(1, seed=7)[0], "
    f"classes=CLASSES)\ndet.score_threshold = {THRESHOLD}\ndet",
    "seg = LayerExplorer(build('lraspp'), smooth_images(1, seed=1)[0], classes=CLASSES)\nseg",
]


@pytest.fixture(scope="module")
def reference():
    """The same explorers, built in this process (deterministic): boxes, scores, the input."""
    import torch

    from cnnviz_widgets import LayerExplorer

    from ..helpers.detection_models import build, smooth_images

    torch.set_num_threads(1)
    det = LayerExplorer(build("fasterrcnn_mobilenet"), smooth_images(1, seed=7)[0],
                        classes=CLASSES, background=False)
    seg = LayerExplorer(build("lraspp"), smooth_images(1, seed=1)[0], classes=CLASSES,
                        background=False)
    yield det, seg
    det.close()
    seg.close()


@pytest.fixture(scope="module")
def lab(jupyter_server, browser, artifacts):
    context, page = open_notebook(jupyter_server, browser, "objects", CELLS)
    execute_cell(page, 0)
    execute_cell(page, 1)
    try:
        page.wait_for_function("document.querySelectorAll('.cnnviz-explorer').length === 2",
                               timeout=180_000)
    except Exception:
        page.screenshot(path=str(artifacts / "objects_setup_failure.png"))
        raise
    yield page
    context.close()


def drawn_boxes(page, tab, count: int | None = None) -> list[dict]:
    """The boxes drawn over tile 0 (grid CSS pixels), once ``count`` of them are drawn."""
    overlay = tab.locator(".cnnviz-objects-overlay")
    if count is not None:
        page.wait_for_function("([o, n]) => JSON.parse(o.dataset.boxes || '[]').length === n",
                               arg=[overlay.element_handle(), count], timeout=60_000)
    return json.loads(overlay.get_attribute("data-boxes") or "[]")


def grid_point(tab, x: float, y: float) -> tuple[float, float]:
    """Viewport coordinates of grid point (x, y) (CSS pixels of the grid canvas)."""
    grid = tab.locator("canvas.cnnviz-grid")
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    return box["x"] + x, box["y"] + y


def wait_map(page, tab, key: str) -> None:
    page.wait_for_function("([c, k]) => c.dataset.key === k",
                           arg=[tab.locator("canvas.cnnviz-grid").element_handle(), key],
                           timeout=120_000)


def test_boxes_threshold_and_a_clicked_boxs_map(lab, reference, artifacts):
    from cnnviz_widgets.engine.cam import cam
    from cnnviz_widgets.engine.regions import BoxTarget

    page = lab
    det, _ = reference
    root = page.locator(".cnnviz-explorer").nth(0)
    tab = panel(root, "objects")
    assert tab.is_visible()  # a detector's explorer opens on its objects
    assert [b.get_attribute("data-tab") for b in root.locator(".cnnviz-tab").all()] == [
        "kernels", "features", "objects", "saliency", "actmax", "draw"]
    meta, buffers = det.shown_objects["content"], det.shown_objects["buffers"]
    scores = np.frombuffer(buffers[1], "<f4")
    boxes = np.frombuffer(buffers[0], "<f4").reshape(-1, 4)
    def above(threshold: float) -> int:  # compared as the front end does (in float64)
        return int((scores.astype(np.float64) >= threshold).sum())

    assert 3 <= above(THRESHOLD) < len(scores)  # the threshold hides some, keeps several
    drawn = drawn_boxes(page, tab, above(THRESHOLD))
    assert sorted(d["index"] for d in drawn) == list(range(above(THRESHOLD)))  # best first
    assert tab.locator(".cnnviz-object").count() == above(THRESHOLD)
    # drawn where the boxes are: input pixels scaled onto tile 0
    layout = json.loads(tab.locator("canvas.cnnviz-grid").get_attribute("data-layout"))
    scale = layout["tileWidth"] / 224
    for d in drawn:
        x1, y1, x2, y2 = boxes[d["index"]]
        assert [d["x"], d["y"], d["width"], d["height"]] == pytest.approx(
            [x1 * scale, y1 * scale, (x2 - x1) * scale, (y2 - y1) * scale], abs=1e-3)
    root.screenshot(path=str(artifacts / "objects_detection_boxes.png"))

    # the slider (steps of 0.01) hides boxes under its value: the front end alone, no request
    requests = int(root.get_attribute("data-requests"))
    slider = tab.get_by_label("Score threshold", exact=True)
    move = "(s, v) => { s.value = String(v); s.dispatchEvent(new Event('input')); }"
    slider.evaluate(move, 0.23)
    assert 0 < above(0.23) < above(THRESHOLD)
    drawn_boxes(page, tab, above(0.23))
    assert tab.locator(".cnnviz-object").count() == above(0.23)
    assert tab.locator(".cnnviz-objects-threshold-value").text_content() == "0.23"
    assert int(root.get_attribute("data-requests")) == requests
    slider.evaluate(move, 0.22)
    drawn = drawn_boxes(page, tab, above(0.22))

    # a click on the smallest drawn box explains it
    small = min(drawn, key=lambda d: d["width"] * d["height"])
    index = small["index"]
    page.mouse.click(*grid_point(tab, small["x"] + small["width"] / 2,
                                 small["y"] + small["height"] / 2))
    layer = det.cam_layer
    key = f"object_cam|{det.image_version}|GradCAM|{index}|{layer}|image"
    wait_map(page, tab, key)
    assert tab.get_attribute("data-selected") == str(index)
    label = int(meta["labels"][index])
    caption = tab.locator(".cnnviz-explained").text_content()
    assert f"GradCAM of {CLASSES[label]} #{index + 1}" in caption and layer in caption
    pressed = tab.locator(".cnnviz-object[aria-pressed='true']")
    assert pressed.get_attribute("data-index") == str(index)

    # hover over the map tile: the engine's map of that box, at that pixel
    want = cam(det.model, det.input_tensor, layer, method="GradCAM",
               target=BoxTarget(label, boxes[index]))[0]
    row, col = np.unravel_index(int(np.argmax(want)), want.shape)
    tile1 = layout["tileWidth"] + layout["gap"]
    page.mouse.move(*grid_point(tab, tile1 + (col + 0.5) * scale, (row + 0.5) * scale))
    zoom = root.locator(".cnnviz-zoom")
    zoom.wait_for(state="visible", timeout=5000)
    text = zoom.text_content()
    assert f"row {row}, col {col}" in text
    value = float(zoom.locator(".cnnviz-zoom-value").text_content())
    assert abs(value - float(want[row, col])) <= 1 / 255 * 0.6 + 1e-3, (value, row, col)
    page.mouse.move(3, 3)
    # the map is drawn: tile 1 differs from the plain image of tile 0
    differs = tab.locator("canvas.cnnviz-grid").evaluate(
        "(c, w) => { const g = c.getContext('2d'); const s = c.width / c.clientWidth;"
        " const a = g.getImageData(0, 0, Math.round(w * s), c.height).data;"
        " const b = g.getImageData(Math.round((w + 4) * s), 0, Math.round(w * s), c.height).data;"
        " let n = 0; for (let i = 0; i < Math.min(a.length, b.length); i += 4)"
        " n += Math.abs(a[i] - b[i]) > 8; return n / (a.length / 4); }", layout["tileWidth"])
    assert differs > 0.2, differs

    # normalised inside the box: a new map, zero outside the box
    tab.get_by_text("Normalise inside the box").click()
    wait_map(page, tab, key.replace("|image", "|box"))
    assert "normalised inside the box" in tab.locator(".cnnviz-explained").text_content()
    root.screenshot(path=str(artifacts / "objects_detection.png"))


def test_a_segmenters_legend_and_regions_retarget_the_map(lab, reference, artifacts):
    page = lab
    _, seg = reference
    root = page.locator(".cnnviz-explorer").nth(1)
    tab = panel(root, "objects")
    meta, buffers = seg.shown_objects["content"], seg.shown_objects["buffers"]
    labels = meta["labels"]
    assert len(labels) == 4 and labels[-1] == 0  # background last
    items = tab.locator(".cnnviz-object")
    items.first.wait_for(timeout=60_000)
    assert [int(items.nth(i).get_attribute("data-index")) for i in range(items.count())] == labels
    shares = [f"{100 * n / sum(meta['pixels']):.1f}" for n in meta["pixels"]]
    for i, share in enumerate(shares):
        assert share in items.nth(i).text_content()
    version, layer = seg.image_version, seg.cam_layer
    wait_map(page, tab, f"object_cam|{version}|GradCAM|{labels[0]}|{layer}|image")

    # a click on the second class of the legend explains it
    items.nth(1).click()
    wait_map(page, tab, f"object_cam|{version}|GradCAM|{labels[1]}|{layer}|image")
    assert CLASSES[labels[1]] in tab.locator(".cnnviz-explained").text_content()
    root.screenshot(path=str(artifacts / "objects_segmentation.png"))

    # a click on a pixel of the third class, in the image
    mask = np.frombuffer(buffers[0], np.uint8).reshape(meta["mask"]["shape"])
    rows, cols = np.nonzero(mask == 2)
    middle = len(rows) // 2
    row, col = int(rows[middle]), int(cols[middle])
    layout = json.loads(tab.locator("canvas.cnnviz-grid").get_attribute("data-layout"))
    scale = layout["tileWidth"] / mask.shape[1]
    page.mouse.click(*grid_point(tab, (col + 0.5) * scale, (row + 0.5) * scale))
    wait_map(page, tab, f"object_cam|{version}|GradCAM|{labels[2]}|{layer}|image")
    assert tab.get_attribute("data-selected") == str(labels[2])
    assert re.search(rf"{CLASSES[labels[2]]} \(\d+\.\d% of the pixels\)",
                     tab.locator(".cnnviz-explained").text_content())


def test_a_saved_page_shows_the_boxes_and_the_chosen_boxs_map(browser, reference, artifacts,
                                                             tmp_path):
    """save_html's page, with no kernel: the boxes over the image and the first box's map."""
    det, _ = reference
    det.score_threshold = THRESHOLD
    path = det.save_html(tmp_path / "objects.html", layers=["backbone.body.0.0"])
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.goto(path.as_uri())
    tab = panel(page.locator(".cnnviz-explorer"), "objects")
    scores = np.frombuffer(det.shown_objects["buffers"][1], "<f4").astype(np.float64)
    drawn_boxes(page, tab, int((scores >= THRESHOLD).sum()))
    wait_map(page, tab, f"object_cam|{det.image_version}|GradCAM|0|{det.cam_layer}|image")
    label = det.shown_objects["content"]["labels"][0]
    assert f"GradCAM of {CLASSES[label]} #1 (score" in tab.locator(
        ".cnnviz-explained").text_content()
    page.screenshot(path=str(artifacts / "objects_saved_page.png"))
    assert all(u.startswith(("file:", "blob:", "data:")) for u in urls), urls
    context.close()


def test_the_trained_demo_detector_points_into_the_clicked_box(jupyter_server, browser,
                                                                artifacts):
    """``LayerExplorer(task="detection")``, the bundled trained detector: its detections (score
    >= 0.5) drawn, one per object of the scene; a click on each box gives a map (at the class
    tower the explorer opens it on) whose largest value, read by hovering, lies inside that
    box and equals the engine's map there. Screenshot: test-artifacts/objects_demo.png (the
    README's docs/images/objects.png)."""
    import torch

    from cnnviz_widgets import LayerExplorer, detections
    from cnnviz_widgets.demo import DETECTOR_CAM_LAYER, demo_detector
    from cnnviz_widgets.engine.cam import cam

    torch.set_num_threads(1)
    demo = demo_detector()
    assert demo.trained
    ref = LayerExplorer(task="detection", background=False)  # the same, in this process
    x = ref.input_tensor  # the sample scene as an 8-bit image: boxes move by ~0.02 px
    found = detections(demo.model, x, score_threshold=0.5)[0]
    assert len(found) == len(demo.sample_boxes[0]) >= 2
    context, page = open_notebook(
        jupyter_server, browser, "objects_demo",
        ["import torch\ntorch.set_num_threads(1)\nfrom cnnviz_widgets import LayerExplorer\n"
         "demo = LayerExplorer(task='detection')\ndemo"], {"width": 1100, "height": 900})
    try:
        execute_cell(page, 0)
        root = page.locator(".cnnviz-explorer")
        root.wait_for(timeout=180_000)
        tab = panel(root, "objects")
        drawn = drawn_boxes(page, tab, len(found))
        layout = json.loads(tab.locator("canvas.cnnviz-grid").get_attribute("data-layout"))
        scale = layout["tileWidth"] / demo.size
        version = ref.image_version
        for d in sorted(drawn, key=lambda d: d["index"]):
            index = d["index"]
            box = found.boxes[index].tolist()
            assert [d["x"], d["y"], d["width"], d["height"]] == pytest.approx(
                [box[0] * scale, box[1] * scale, (box[2] - box[0]) * scale,
                 (box[3] - box[1]) * scale], abs=1e-3)
            page.mouse.click(*grid_point(tab, d["x"] + d["width"] / 2,
                                         d["y"] + d["height"] / 2))
            wait_map(page, tab, f"object_cam|{version}|GradCAM|{index}|{DETECTOR_CAM_LAYER}|image")
            want = cam(demo.model, x, DETECTOR_CAM_LAYER, "GradCAM", target=found.target(index))[0]
            row, col = np.unravel_index(int(np.argmax(want)), want.shape)
            assert box[0] <= col + 0.5 <= box[2] and box[1] <= row + 0.5 <= box[3], (index, box)
            tile1 = layout["tileWidth"] + layout["gap"]
            page.mouse.move(*grid_point(tab, tile1 + (col + 0.5) * scale, (row + 0.5) * scale))
            zoom = root.locator(".cnnviz-zoom")
            zoom.wait_for(state="visible", timeout=5000)
            assert f"row {row}, col {col}" in zoom.text_content()
            value = float(zoom.locator(".cnnviz-zoom-value").text_content())
            assert abs(value - float(want[row, col])) <= 1 / 255 * 0.6 + 1e-3, (value, index)
            page.mouse.move(3, 3)
            if index == 0:
                root.screenshot(path=str(artifacts / "objects_demo.png"))
    finally:
        context.close()


def test_a_detector_that_finds_nothing_says_so_in_every_tab(jupyter_server, browser, artifacts):
    """A detector with no box in the image (the demo detector with its score threshold at 1):
    the objects view says no box is found, and the saliency tab, which explains the object
    chosen there, says there is nothing to explain instead of waiting for predictions."""
    from .test_explorer_browser import open_tab

    context, page = open_notebook(
        jupyter_server, browser, "objects_none",
        ["import torch\ntorch.set_num_threads(1)\nfrom cnnviz_widgets import LayerExplorer\n"
         "from cnnviz_widgets.demo import demo_detector\n"
         "blind = demo_detector().model\nblind.score_thresh = 1.0  # no score reaches it\n"
         "none = LayerExplorer(blind)\nnone"], {"width": 1100, "height": 800})
    try:
        execute_cell(page, 0)
        root = page.locator(".cnnviz-explorer")
        root.wait_for(timeout=180_000)
        tab = panel(root, "objects")
        page.wait_for_function(
            "(t) => /0 of 0 boxes|no box/i.test(t.textContent)", arg=tab.element_handle(),
            timeout=60_000)
        assert drawn_boxes(page, tab) == [] and tab.locator(".cnnviz-object").count() == 0
        open_tab(root, "saliency")
        spanel = panel(root, "saliency")
        page.wait_for_function(
            "(t) => t.textContent.includes('finds no object in this image')",
            arg=spanel.element_handle(), timeout=60_000)
        assert "waiting for the predictions" not in spanel.text_content()
        root.screenshot(path=str(artifacts / "objects_none_saliency.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "objects_none_failure.png"))
        raise
    finally:
        context.close()
