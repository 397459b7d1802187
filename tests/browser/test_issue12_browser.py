"""Issue 12 (the explorer as people meet it), front-end parts, in a real JupyterLab 4 (and
Notebook 7) with headless Chromium.

One notebook shows the demo explorer (``demo``, its image never changes here: reference values
are computed in this process), a small model whose forward passes with gradients take 0.25 s an
image (``slow``: a stand-in for a large model, so long jobs and Cancel can be watched), and a
second demo explorer (``demo2``) whose class and image the tests change. Each test reads what a
person sees (texts, canvas pixels, the zoom box) and would fail on the front end before the fix.
Screenshots: test-artifacts/issue12_*.png.
"""

from __future__ import annotations

import contextlib
import json
import re
import urllib.request

import numpy as np
import pytest

from .conftest import execute_cell, open_notebook, write_notebook
from .legacy import GRID_STATS
from .test_explorer_browser import open_tab, panel, reference_features, tile_centre, wait_tiles

pytestmark = pytest.mark.browser

SLOW_MODEL = (
    "import time\n"
    "import torch\n"
    "from torch import nn\n"
    "from cnnviz_widgets import LayerExplorer\n"
    "torch.set_num_threads(1)\n\n"
    "class Slow(nn.Module):\n"
    "    '''0.25 s an image with gradients (like a large model); the test on the values\n"
    "    makes it untraceable, so that no traced copy of the model skips the sleep.'''\n"
    "    def forward(self, x):\n"
    "        if bool(torch.isfinite(x).all()) and torch.is_grad_enabled():\n"
    "            time.sleep(0.25 * x.shape[0])\n"
    "        return x\n\n"
    "class SlowNet(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), Slow(),\n"
    "                                      nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())\n"
    "        self.pool = nn.AdaptiveAvgPool2d(1)\n"
    "        self.fc = nn.Linear(8, 4)\n"
    "    def forward(self, x):\n"
    "        return self.fc(self.pool(self.features(x)).flatten(1))\n\n"
    "torch.manual_seed(0)\n"
    "slow = LayerExplorer(SlowNet().eval(), size=32, classes=['north', 'south', 'east', 'west'])\n"
)
CELLS = [
    "import torch\ntorch.set_num_threads(1)\nfrom cnnviz_widgets import LayerExplorer\n"
    "demo = LayerExplorer()\ndemo",
    SLOW_MODEL + "slow",
    "demo2 = LayerExplorer()\ndemo2",
    # a class outside demo2's top 5, chosen from Python
    "probs = torch.softmax(demo2.model(demo2.input_tensor), 1)[0]\n"
    "outside = demo2.classes[int(probs.argmin())]\n"
    "demo2.target = outside\n"
    "print('OUTSIDE', outside, int(probs.argmin()))",
]
WAITING = "Waiting for Python"

# Records every change of the status line (and the silent flag) with its time in the page.
STATUS_RECORDER = """(root) => {
  const status = root.querySelector('.cnnviz-status');
  const text = status.querySelector('.cnnviz-status-text');
  const bar = status.querySelector('progress');
  const cancel = status.querySelector('button');
  const log = [];
  const t0 = performance.now();
  const snap = (what) => log.push({t: performance.now() - t0, what, hidden: status.hidden,
    text: text.textContent, value: bar.hasAttribute('value') ? bar.value : null,
    barHidden: bar.hidden, silent: root.dataset.kernelSilent === 'true',
    cancelDisabled: cancel.disabled});
  const obs = new MutationObserver(() => snap('change'));
  obs.observe(status, {subtree: true, childList: true, characterData: true, attributes: true});
  obs.observe(root, {attributes: true, attributeFilter: ['data-kernel-silent']});
  cancel.addEventListener('click', () => snap('click'), true);
  root.__statusLog = log;
  snap('start');
}"""


def status_log(root) -> list[dict]:
    return root.evaluate("(r) => r.__statusLog")


def explorer(page, name: str):
    return page.locator(".cnnviz-explorer").nth({"demo": 0, "slow": 1, "demo2": 2}[name])


def show(page, root) -> None:
    page.evaluate("(el) => el.scrollIntoView()", root.element_handle())


def class_buttons(tab) -> list[dict]:
    return tab.locator(".cnnviz-class").evaluate_all(
        "(bs) => bs.map(b => ({name: b.querySelector('.cnnviz-class-name').textContent,"
        " prob: b.querySelector('.cnnviz-class-prob').textContent, index: Number(b.dataset.index),"
        " pressed: b.getAttribute('aria-pressed') === 'true',"
        " extra: b.classList.contains('cnnviz-class-extra')}))")


def wait_key(page, grid, predicate: str, timeout: float = 60_000) -> str:
    page.wait_for_function(f"(c) => !!c.dataset.key && ({predicate})(c.dataset.key.split('|'))",
                           arg=grid.element_handle(), timeout=timeout)
    return grid.get_attribute("data-key")


@pytest.fixture(scope="module")
def lab(jupyter_server, browser, artifacts):
    frames: list[str] = []

    def record_frames(page) -> None:
        page.on("websocket", lambda ws: ws.on("framesent", lambda p: frames.append(
            p if isinstance(p, str) else p.decode("utf-8", "replace"))))

    context, page = open_notebook(jupyter_server, browser, "issue12", CELLS,
                                  {"width": 1280, "height": 1300}, before=record_frames,
                                  accept_downloads=True)
    for i in range(3):
        execute_cell(page, i)
    try:
        page.wait_for_selector(".cnnviz-explorer >> nth=2", timeout=180_000)
        for name in ("demo", "slow", "demo2"):
            wait_tiles(page, panel(explorer(page, name), "features").locator("canvas.cnnviz-grid"),
                       {"demo": 16, "slow": 8, "demo2": 16}[name], timeout=120)
    except Exception:
        page.screenshot(path=str(artifacts / "issue12_setup_failure.png"))
        raise
    page.frames_sent = frames  # type: ignore[attr-defined]
    yield page
    context.close()


# ---------------------------------------------------------------- 1. busy is not gone

def test_a_long_job_shows_its_progress_not_kernel_gone(lab, artifacts):
    """SmoothGrad on the slow model runs ~12 s, longer than the 10 s silence limit; Python's
    heartbeats keep the widget "busy": progress text with its estimate, an indeterminate bar while
    nothing is counted, never "run the cell again"."""
    page, root = lab, explorer(lab, "slow")
    show(page, root)
    open_tab(root, "saliency")
    spanel = panel(root, "saliency")
    grid = spanel.locator("canvas.cnnviz-grid")
    wait_key(page, grid, "(k) => k[2] === 'vanilla'")
    root.evaluate(STATUS_RECORDER)
    spanel.get_by_label("Method").select_option("smoothgrad")
    wait_key(page, grid, "(k) => k[2] === 'smoothgrad'", timeout=90_000)
    log = status_log(root)
    shown = [e for e in log if not e["hidden"]]
    assert shown, log
    took = max(e["t"] for e in log)
    assert took > 10_000, f"the job took {took:.0f} ms: too short to tell busy from gone"
    assert not any(WAITING in e["text"] or e["silent"] for e in log), [e["text"] for e in log]
    beats = [e for e in shown if "still computing" in e["text"]]
    assert beats, [e["text"] for e in shown]
    # nothing counted yet: the bar moves (indeterminate), it is not stuck at 0 %
    uncounted = [e for e in beats if "passes" not in e["text"]]
    assert uncounted and all(e["value"] is None and not e["barHidden"] for e in uncounted), beats
    counted = [e for e in shown if re.search(r"\d+ / 50 passes", e["text"])]
    assert counted and all(e["value"] is not None for e in counted), [e["text"] for e in shown]
    assert any("left" in e["text"] for e in counted), [e["text"] for e in counted]
    assert all(not e["cancelDisabled"] for e in shown), "Cancel works while it computes"
    assert root.locator(".cnnviz-status").is_hidden()
    root.screenshot(path=str(artifacts / "issue12_busy_done.png"))
    spanel.get_by_label("Method").select_option("vanilla")
    wait_key(page, grid, "(k) => k[2] === 'vanilla'")


# ---------------------------------------------------------------- 2. cancel

def test_cancel_stops_a_long_job_and_the_widget_stays_usable(lab, artifacts):
    """Activation max. on the slow model (about a minute an image): its estimate shows, Cancel
    answers within about a second, "cancelling…" goes away, the next request works, and Cancel
    is disabled while nothing runs."""
    page, root = lab, explorer(lab, "slow")
    show(page, root)
    open_tab(root, "actmax")
    apanel = panel(root, "actmax")
    assert root.locator(".cnnviz-status").is_hidden()
    assert root.locator(".cnnviz-status button").is_disabled(), "nothing to cancel"
    apanel.get_by_label("Layer").select_option("features.3")
    apanel.get_by_label(re.compile("^Channels")).fill("0-3")
    root.evaluate(STATUS_RECORDER)
    apanel.get_by_role("button", name=re.compile("Optimise")).click()
    status = root.locator(".cnnviz-status")
    # Python's estimate comes after 2 s of steps; the tab repeats it under its controls
    page.wait_for_function("(s) => !s.hidden && /left/.test(s.textContent)",
                           arg=status.element_handle(), timeout=30_000)
    assert re.search(r"channels? 0", status.text_content()), status.text_content()
    assert re.search(r"about \d+ (s|min) left", apanel.locator(".cnnviz-message").text_content())
    root.screenshot(path=str(artifacts / "issue12_actmax_estimate.png"))
    cancel = status.locator("button[aria-label='Cancel the running computation']")
    assert cancel.is_enabled()
    cancel.click()
    page.wait_for_function("(s) => s.hidden", arg=status.element_handle(), timeout=10_000)
    log = status_log(root)
    click = next(e["t"] for e in log if e["what"] == "click")
    after = [e for e in log if e["t"] >= click]
    assert any(e["text"] == "cancelling…" for e in after), [e["text"] for e in after]
    cleared = next(e["t"] for e in after if e["hidden"])
    assert cleared - click < 2500, f"cancel answered after {cleared - click:.0f} ms"
    assert cancel.is_disabled()
    msg = apanel.locator(".cnnviz-message")
    assert "Cancelled" in msg.text_content(), msg.text_content()
    assert "cancelling" not in root.text_content()
    root.screenshot(path=str(artifacts / "issue12_cancelled.png"))
    # usable: the next request is computed and drawn
    open_tab(root, "cam")
    cgrid = panel(root, "cam").locator("canvas.cnnviz-grid")
    wait_tiles(page, cgrid, 2)
    before = cgrid.get_attribute("data-key")
    panel(root, "cam").get_by_label("Method").select_option("XGradCAM")
    wait_key(page, cgrid, "(k) => k[2] === 'XGradCAM'")
    assert cgrid.get_attribute("data-key") != before
    open_tab(root, "features")


def test_kernel_gone_while_cancelling_says_so_and_empty_tabs_hint(jupyter_server, browser,
                                                                  artifacts):
    # open_notebook waits for the kernel and accepts JupyterLab's kernel dialog, which can
    # otherwise cover the cell
    context, page = open_notebook(jupyter_server, browser, "gone", [SLOW_MODEL + "slow"],
                                  {"width": 1200, "height": 1000})
    try:
        execute_cell(page, 0)
        root = page.locator(".cnnviz-explorer")
        root.wait_for(timeout=120_000)
        wait_tiles(page, panel(root, "features").locator("canvas.cnnviz-grid"), 8)
        open_tab(root, "actmax")
        apanel = panel(root, "actmax")
        apanel.get_by_label(re.compile("^Channels")).fill("0-1")
        apanel.get_by_role("button", name=re.compile("Optimise")).click()
        status = root.locator(".cnnviz-status")
        page.wait_for_function("(s) => !s.hidden && /channels? 0/.test(s.textContent)",
                               arg=status.element_handle(), timeout=30_000)
        # the kernel goes away (as after a restart) while the job runs; then Cancel
        with urllib.request.urlopen(jupyter_server.url("api/sessions")) as resp:
            sessions = json.load(resp)
        kernel = [s["kernel"]["id"] for s in sessions if s.get("path", "").endswith("gone.ipynb")]
        assert len(kernel) == 1, sessions
        urllib.request.urlopen(urllib.request.Request(
            jupyter_server.url(f"api/kernels/{kernel[0]}"), method="DELETE")).close()
        root.evaluate(STATUS_RECORDER)
        status.get_by_role("button", name="Cancel the running computation").click()
        page.wait_for_function("(el) => el.dataset.kernelSilent === 'true'",
                               arg=root.element_handle(), timeout=20_000)
        text = status.text_content()
        assert "run the cell again" in text and "cancelling" not in text, text
        assert status.locator("progress").is_hidden(), "no moving bar for a kernel that is gone"
        log = status_log(root)
        assert any(e["text"] == "cancelling…" for e in log)
        assert log[-1]["text"].startswith(WAITING)
        # a tab whose data does not come says what to do instead of staying blank or stale
        open_tab(root, "kernels")
        kpanel = panel(root, "kernels")
        kpanel.get_by_label("Layer", exact=True).focus()
        page.keyboard.press("End")
        hint = kpanel.locator(".cnnviz-silent-hint")
        hint.wait_for(state="visible", timeout=15_000)
        assert "run the cell again to load this view" in hint.text_content()
        root.screenshot(path=str(artifacts / "issue12_kernel_gone.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "issue12_kernel_gone_failure.png"))
        raise
    finally:
        context.close()


# ---------------------------------------------------------------- 3. what is explained

def test_each_map_says_what_it_explains(lab, artifacts):
    page, root = lab, explorer(lab, "demo2")
    show(page, root)
    open_tab(root, "cam")
    cpanel = panel(root, "cam")
    grid = cpanel.locator("canvas.cnnviz-grid")
    wait_tiles(page, grid, 2)
    caption = cpanel.locator(".cnnviz-explained")
    second = class_buttons(cpanel)[1]
    cpanel.locator(".cnnviz-class").nth(1).click()
    wait_key(page, grid, f"(k) => k[3] === '{second['index']}'")
    wait_tiles(page, grid, 2)
    want = f"GradCAM · {second['name']} {second['prob']} · layer features"
    assert caption.text_content() == want, (caption.text_content(), want)
    # 14: the last depth is the whole Sequential, and says so
    assert cpanel.locator(".cnnviz-layer-name").text_content() == "features (whole block output)"
    assert "cnnviz-explained-stale" not in caption.get_attribute("class")
    cpanel.get_by_label("Method").select_option("EigenCAM")
    wait_key(page, grid, "(k) => k[2] === 'EigenCAM'")
    page.wait_for_function("(c) => c.textContent.startsWith('EigenCAM · class-agnostic')",
                           arg=caption.element_handle())
    cpanel.get_by_label("Method").select_option("GradCAM")
    wait_key(page, grid, "(k) => k[2] === 'GradCAM'")
    open_tab(root, "saliency")
    spanel = panel(root, "saliency")
    sgrid = spanel.locator("canvas.cnnviz-grid")
    wait_key(page, sgrid, f"(k) => k[3] === '{second['index']}'")
    scaption = spanel.locator(".cnnviz-explained")
    page.wait_for_function("([c, t]) => c.textContent === t",
                           arg=[scaption.element_handle(),
                                f"vanilla · {second['name']} {second['prob']}"])
    root.screenshot(path=str(artifacts / "issue12_saliency_label.png"))


def test_a_class_outside_the_top5_and_a_new_image_keep_the_class_visible(lab, artifacts):
    page, root = lab, explorer(lab, "demo2")
    show(page, root)
    open_tab(root, "cam")
    cpanel = panel(root, "cam")
    grid = cpanel.locator("canvas.cnnviz-grid")
    execute_cell(page, 3)  # demo2.target = <the least likely class>
    out = page.locator(".jp-Cell").nth(3).locator(".jp-OutputArea-output")
    out.first.wait_for(timeout=30_000)
    _, name, index = out.first.text_content().split()
    wait_key(page, grid, f"(k) => k[3] === '{index}'")
    wait_tiles(page, grid, 2)
    buttons = class_buttons(cpanel)
    extra = [b for b in buttons if b["extra"]]
    assert len(extra) == 1 and extra[0]["name"] == name and extra[0]["pressed"], buttons
    assert re.fullmatch(r"(\d+\.\d|<0\.1)%", extra[0]["prob"]), extra  # from the reply's prob
    assert [b for b in buttons if b["pressed"]] == extra
    caption = cpanel.locator(".cnnviz-explained").text_content()
    assert caption.startswith(f"GradCAM · {name} ") and "%" in caption, caption
    root.screenshot(path=str(artifacts / "issue12_class_outside_top5.png"))

    # a new image (the drawing pad's "Use as input"): the chosen class stays, visibly
    version = grid.get_attribute("data-key").split("|")[1]
    open_tab(root, "draw")
    pad = panel(root, "draw").locator("canvas.cnnviz-pad")
    box = pad.bounding_box()
    pts = [(0.5, 0.15), (0.85, 0.8), (0.15, 0.8), (0.5, 0.15)]
    page.mouse.move(box["x"] + pts[0][0] * box["width"], box["y"] + pts[0][1] * box["height"])
    page.mouse.down()
    for fx, fy in pts[1:]:
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=12)
    page.mouse.up()
    panel(root, "draw").get_by_role("button", name="Use the drawing as the model's input").click()
    open_tab(root, "cam")
    wait_key(page, grid, f"(k) => k[1] !== '{version}' && k[3] === '{index}'")
    wait_tiles(page, grid, 2)
    pressed = [b for b in class_buttons(cpanel) if b["pressed"]]
    assert len(pressed) == 1 and pressed[0]["name"] == name, pressed
    assert cpanel.locator(".cnnviz-explained").text_content().startswith(f"GradCAM · {name} ")
    root.screenshot(path=str(artifacts / "issue12_new_image_keeps_class.png"))


# ---------------------------------------------------------------- 4. stale figures and maps

STALE_RECORDER = """(tab) => {
  const box = tab.querySelector('.cnnviz-grid-box');
  const stage = box.querySelector('.cnnviz-stage');
  const caption = tab.querySelector('.cnnviz-explained');
  const log = [];
  new MutationObserver(() => log.push({stale: box.dataset.stale === 'true',
      opacity: getComputedStyle(stage).opacity, caption: caption.textContent}))
    .observe(tab, {subtree: true, attributes: true, childList: true, characterData: true});
  tab.__staleLog = log;
}"""


def test_figures_belong_to_their_map_and_a_computing_map_is_dimmed(lab, artifacts):
    page, root = lab, explorer(lab, "demo")
    show(page, root)
    open_tab(root, "cam")
    cpanel = panel(root, "cam")
    grid = cpanel.locator("canvas.cnnviz-grid")
    faith = cpanel.locator(".cnnviz-faith")
    wait_tiles(page, grid, 2)
    cpanel.locator(".cnnviz-class").nth(0).click()
    first = class_buttons(cpanel)[0]
    wait_key(page, grid, f"(k) => k[2] === 'GradCAM' && k[3] === '{first['index']}'")

    def figures() -> str:
        cpanel.get_by_role("button", name=re.compile("deletion")).click()
        page.wait_for_function("(el) => /deletion AUC/.test(el.textContent)",
                               arg=faith.element_handle(), timeout=60_000)
        return faith.text_content()

    text = figures()
    assert "deletion AUC" in text and "(lower is better)" in text, text
    assert "insertion AUC" in text and "(higher is better)" in text, text
    assert re.search(r"average drop \S+ \(lower is better\)", text), text
    root.screenshot(path=str(artifacts / "issue12_faithfulness.png"))
    # another class, method or layer: the figures go at once (they belong to another map)
    cpanel.evaluate(STALE_RECORDER)
    cpanel.locator(".cnnviz-class").nth(1).click()
    page.wait_for_function("(el) => el.hidden || el.textContent === ''",
                           arg=faith.element_handle(), timeout=2000)
    second = class_buttons(cpanel)[1]
    wait_key(page, grid, f"(k) => k[3] === '{second['index']}'")
    log = cpanel.evaluate("(t) => t.__staleLog")
    stale = [e for e in log if e["stale"]]
    assert stale, log
    assert all(e["opacity"] == "0.4" for e in stale), stale
    assert any(e["caption"].startswith(f"computing GradCAM for {second['name']}") for e in stale), (
        stale)
    assert cpanel.locator(".cnnviz-grid-box").get_attribute("data-stale") == "false"
    figures()
    cpanel.get_by_label("Method").select_option("GradCAMPlusPlus")
    assert faith.text_content() == ""
    wait_key(page, grid, "(k) => k[2] === 'GradCAMPlusPlus'")
    assert any(e["caption"].startswith(f"computing GradCAMPlusPlus for {second['name']}")
               for e in cpanel.evaluate("(t) => t.__staleLog"))
    figures()
    depth = cpanel.get_by_label("CAM layer", exact=True)
    depth.focus()
    page.keyboard.press("Home")
    assert faith.text_content() == ""
    wait_key(page, grid, "(k) => k[4] === 'features.0'")
    page.keyboard.press("End")
    wait_key(page, grid, "(k) => k[4] === 'features'")
    cpanel.get_by_label("Method").select_option("GradCAM")
    wait_key(page, grid, "(k) => k[2] === 'GradCAM'")
    open_tab(root, "features")


# ---------------------------------------------------------------- 5. Notebook 7 keys

def test_notebook7_arrow_keys_move_the_sliders(jupyter_server, browser, artifacts):
    write_notebook(jupyter_server.root / "keys7.ipynb", [
        "import torch\ntorch.set_num_threads(1)\nfrom cnnviz_widgets import LayerExplorer\n"
        "LayerExplorer()"
    ])
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    try:
        page.goto(jupyter_server.url("notebooks/keys7.ipynb"))
        page.wait_for_selector(".jp-Notebook", timeout=120_000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands",
                               timeout=60_000)
        page.wait_for_selector(".jp-Cell .jp-InputPrompt", timeout=60_000)
        with contextlib.suppress(Exception):
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=60_000)
        execute_cell(page, 0)
        root = page.locator(".cnnviz-explorer")
        root.wait_for(timeout=120_000)
        fpanel = panel(root, "features")
        grid = fpanel.locator("canvas.cnnviz-grid")
        wait_tiles(page, grid, 16)
        name = fpanel.locator(".cnnviz-layer-name")

        def at(layer: str) -> None:
            page.wait_for_function("([el, n]) => el.textContent.startsWith(n + ' ')",
                                   arg=[name.element_handle(), layer], timeout=10_000)

        fpanel.get_by_label("Layer", exact=True).focus()
        page.keyboard.press("ArrowRight")
        at("features.3")
        page.keyboard.press("ArrowRight")
        at("features.6")
        page.keyboard.press("ArrowLeft")
        at("features.3")
        page.keyboard.press("End")
        at("features.11")
        page.keyboard.press("Home")
        at("features.0")
        wait_tiles(page, grid, 16)
        # the CAM depth slider, and digits typed into a field, are the widget's too
        open_tab(root, "cam")
        cpanel = panel(root, "cam")
        wait_tiles(page, cpanel.locator("canvas.cnnviz-grid"), 2)
        cpanel.get_by_label("CAM layer", exact=True).focus()
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("(c) => c.dataset.key.endsWith('|features.11')",
                               arg=cpanel.locator("canvas.cnnviz-grid").element_handle(),
                               timeout=30_000)
        open_tab(root, "kernels")
        kpanel = panel(root, "kernels")
        kpanel.get_by_label("Layer", exact=True).focus()
        page.keyboard.press("ArrowRight")
        cells = page.locator(".jp-Notebook .jp-Cell").count()
        field = kpanel.get_by_label("Output filter")
        field.click()
        field.fill("")
        page.keyboard.type("12")
        assert field.input_value() == "12"
        assert page.locator(".jp-Notebook .jp-Cell").count() == cells, "no cell added or removed"
        root.screenshot(path=str(artifacts / "issue12_notebook7_keys.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "issue12_notebook7_failure.png"))
        raise
    finally:
        context.close()


# ---------------------------------------------------------------- 6. diverging colormaps

def canvas_pixel(grid, x: float, y: float) -> list[int]:
    return grid.evaluate(
        "(c, [x, y]) => { const b = c.getBoundingClientRect(); const s = c.width / b.width;"
        " return [...c.getContext('2d').getImageData(Math.floor((x - b.left) * s),"
        " Math.floor((y - b.top) * s), 1, 1).data]; }", [x, y])


def map_point(grid, channel: int, row: int, col: int, size: int) -> tuple[float, float]:
    layout = json.loads(grid.get_attribute("data-layout"))
    box = grid.bounding_box()
    c, r = channel % layout["columns"], channel // layout["columns"]
    tw, th, gap = layout["tileWidth"], layout["tileHeight"], layout["gap"]
    x = box["x"] + c * (tw + gap) + (col + 0.5) * tw / size
    y = box["y"] + r * (th + gap) + (row + 0.5) * th / size
    return x, y


def pixels_to_check(maps: np.ndarray, scale: str, global_range) -> list[tuple[int, int, int]]:
    """Pixels (channel, row, col) to hover: the one an uncentred colouring draws most clearly on
    the wrong side of a diverging colormap (a negative value in the upper part of its range, or a
    positive one in the lower part), then the clearest negative and positive values; all away
    from the border."""
    inner = maps[:, 2:-2, 2:-2]
    if scale == "map":
        lo, hi = maps.min(axis=(1, 2), keepdims=True), maps.max(axis=(1, 2), keepdims=True)
    elif scale == "layer":
        lo, hi = maps.min(), maps.max()
    else:
        lo, hi = global_range
    frac = (inner - lo) / np.maximum(hi - lo, 1e-12)
    rel = np.abs(inner) / np.maximum(np.abs(lo), np.abs(hi))
    # uncentred, a value at frac > 0.5 of the range is drawn on the red side, < 0.5 blue
    wrong = ((inner < 0) & (frac > 0.51)) | ((inner > 0) & (frac < 0.49))
    picks = []
    for ok, least in ((wrong, 0.01), (inner < 0, 0.05), (inner > 0, 0.05)):
        score = np.where(ok, rel, -1)
        c, r, k = np.unravel_index(int(score.argmax()), score.shape)
        assert score[c, r, k] > least, f"no pixel to check for {scale}"
        picks.append((int(c), int(r) + 2, int(k) + 2))
    return picks


def test_diverging_colormap_is_centred_on_zero_in_every_scale(lab, artifacts):
    from cnnviz_widgets import LayerExplorer

    page, root = lab, explorer(lab, "demo")
    show(page, root)
    fpanel = panel(root, "features")
    grid = fpanel.locator("canvas.cnnviz-grid")
    fpanel.get_by_label("Layer", exact=True).focus()
    page.keyboard.press("Home")
    wait_tiles(page, grid, 16)
    fpanel.get_by_label("Order").select_option("index")
    fpanel.get_by_label("Colormap").select_option("bwr")
    maps = reference_features("features.0")
    global_range = LayerExplorer(background=False).global_range
    zoom = root.locator(".cnnviz-zoom")
    bar = fpanel.locator(".cnnviz-colorbar")
    for scale in ("map", "layer", "global"):
        before = grid.evaluate(GRID_STATS)["hash"]
        fpanel.get_by_label("Colour scale").select_option(scale)
        if scale != "map":
            page.wait_for_function("([c, h]) => (" + GRID_STATS + ")(c).hash !== h",
                                   arg=[grid.element_handle(), before])
        for channel, row, col in pixels_to_check(maps, scale, global_range):
            x, y = map_point(grid, channel, row, col, 64)
            page.mouse.move(x, y)
            zoom.wait_for(state="visible", timeout=5000)
            assert f"channel {channel}" in zoom.text_content()
            assert f"row {row}, col {col}" in zoom.text_content(), zoom.text_content()
            value = float(zoom.locator(".cnnviz-zoom-value").text_content())
            r, g, b, a = canvas_pixel(grid, x, y)
            assert a == 255
            assert np.sign(value) == np.sign(maps[channel, row, col]), (value, scale)
            if value < 0:
                assert b > r, (scale, value, (r, g, b))  # blue side
            else:
                assert r > b, (scale, value, (r, g, b))  # red side
            lo, hi = json.loads(bar.get_attribute("data-range"))
            assert lo == pytest.approx(-hi), (scale, lo, hi)  # the bar says 0 is the centre
            assert bar.locator(".cnnviz-colorbar-zero").is_visible()
        page.mouse.move(2, 2)
    root.screenshot(path=str(artifacts / "issue12_bwr_centred.png"))
    fpanel.get_by_label("Colour scale").select_option("map")
    fpanel.get_by_label("Colormap").select_option("viridis")


# ---------------------------------------------------------------- 7.-15. confusing

def test_output_filter_field_is_clamped_to_the_layer(lab, artifacts):
    page, root = lab, explorer(lab, "demo")
    show(page, root)
    open_tab(root, "kernels")
    kpanel = panel(root, "kernels")
    grid = kpanel.locator("canvas.cnnviz-grid")
    field = kpanel.get_by_label("Output filter")
    zoom = root.locator(".cnnviz-zoom")
    slider = kpanel.get_by_label("Layer", exact=True)
    slider.focus()
    page.keyboard.press("End")  # features.11: 128 filters of 64 inputs
    wait_key(page, grid, "(k) => k[1] === 'features.11'")
    field.fill("500")
    page.wait_for_function("(f) => f.value === '127'", arg=field.element_handle())
    assert "of 128 (0–127)" in kpanel.locator(".cnnviz-filter-count").text_content()

    def shown_filter() -> str:
        page.mouse.move(*tile_centre(page, grid, 0))
        zoom.wait_for(state="visible", timeout=5000)
        text = zoom.text_content()
        page.mouse.move(2, 2)
        return re.search(r"filter (\d+) · input channel 0", text).group(1)

    page.wait_for_timeout(200)
    assert shown_filter() == "127"
    slider.focus()
    page.keyboard.press("ArrowLeft")  # features.9: 64 filters
    wait_key(page, grid, "(k) => k[1] === 'features.9'")
    page.wait_for_function("(f) => f.value === '63'", arg=field.element_handle())
    page.wait_for_timeout(200)
    assert shown_filter() == "63"
    root.screenshot(path=str(artifacts / "issue12_filter_clamped.png"))
    field.fill("3")


def test_all_filters_are_paged_by_whole_filters_one_a_row(lab, artifacts):
    page, root = lab, explorer(lab, "demo")
    show(page, root)
    open_tab(root, "kernels")
    kpanel = panel(root, "kernels")
    grid = kpanel.locator("canvas.cnnviz-grid")
    kpanel.get_by_label("Layer", exact=True).focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")  # features.3: 32 filters x 16 input channels
    wait_key(page, grid, "(k) => k[1] === 'features.3'")
    kpanel.get_by_label("Show the kernels of all filters").check()
    wait_tiles(page, grid, 256)  # 16 whole filters a page
    pager = kpanel.locator(".cnnviz-pager")
    text = pager.text_content()
    assert "page 1 / 2 · filters 0–15 of 32 · 16 kernels each" in text, text
    assert "maps" not in text
    columns = json.loads(grid.get_attribute("data-layout"))["columns"]
    assert 16 % columns == 0 or columns % 16 == 0, columns  # every filter starts a row
    zoom = root.locator(".cnnviz-zoom")
    page.mouse.move(*tile_centre(page, grid, 16))  # the first tile of the second filter
    zoom.wait_for(state="visible", timeout=5000)
    assert "filter 1 · input channel 0" in zoom.text_content()
    page.mouse.move(2, 2)
    root.screenshot(path=str(artifacts / "issue12_all_kernels.png"))
    pager.get_by_role("button", name="Last page of kernels").click()
    page.wait_for_function("(p) => p.textContent.includes('page 2 / 2 · filters 16–31 of 32')",
                           arg=pager.element_handle())
    page.mouse.move(*tile_centre(page, grid, 0))
    zoom.wait_for(state="visible", timeout=5000)
    assert "filter 16 · input channel 0" in zoom.text_content()
    page.mouse.move(2, 2)
    assert pager.get_by_role("button", name="Next page of kernels").is_disabled()
    page_field = pager.get_by_label("Go to page of kernels")
    page_field.fill("1")
    page_field.press("Enter")
    page.wait_for_function("(p) => p.textContent.includes('page 1 / 2')",
                           arg=pager.element_handle())
    pager.get_by_role("button", name="First page of kernels").wait_for()
    kpanel.get_by_label("Show the kernels of all filters").uncheck()
    open_tab(root, "features")


def test_the_input_and_controls_stay_in_view_over_a_tall_grid(lab, artifacts):
    page, root = lab, explorer(lab, "demo")
    page.set_viewport_size({"width": 760, "height": 900})
    try:
        show(page, root)
        open_tab(root, "features")
        fpanel = panel(root, "features")
        grid = fpanel.locator("canvas.cnnviz-grid")
        fpanel.get_by_label("Layer", exact=True).focus()
        page.keyboard.press("End")  # features.11: 128 maps of 8 x 8
        wait_tiles(page, grid, 128)
        stage = fpanel.locator(".cnnviz-stage")
        assert grid.bounding_box()["height"] > 900 * 0.75, "a grid taller than the view"
        assert stage.evaluate("(s) => s.clientHeight <= innerHeight * 0.71")
        page.evaluate("(el) => el.scrollIntoView({block: 'start'})", root.element_handle())
        box = stage.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + min(box["height"], 400) / 2)
        for _ in range(25):  # scroll with the wheel over the grid, down to its last row
            page.mouse.wheel(0, 240)
            page.wait_for_timeout(40)
        # (wheel scrolling may be animated: wait until it has come to the end)
        page.wait_for_function("(s) => s.scrollTop + s.clientHeight >= s.scrollHeight - 1",
                               arg=stage.element_handle(), timeout=5000)
        page.wait_for_timeout(300)
        last_row = 128 - json.loads(grid.get_attribute("data-layout"))["columns"]
        x, y = tile_centre(page, grid, last_row)
        assert 0 < y < 900, (y, stage.evaluate("(s) => [s.scrollTop, s.scrollHeight]"))
        page.mouse.move(x, y)
        zoom = root.locator(".cnnviz-zoom")
        try:
            zoom.wait_for(state="visible", timeout=5000)
        except Exception:
            page.screenshot(path=str(artifacts / "issue12_tall_grid_failure.png"))
            raise AssertionError((x, y, grid.bounding_box(), stage.bounding_box())) from None
        assert f"channel {last_row}" in zoom.text_content()
        for what in (fpanel.locator(".cnnviz-input-canvas"), fpanel.locator(".cnnviz-outline"),
                     fpanel.get_by_label("Layer", exact=True)):
            b = what.bounding_box()
            assert b and b["y"] >= 0 and b["y"] + b["height"] <= 900, (what, b)
        assert fpanel.locator(".cnnviz-outline").is_visible()
        page.screenshot(path=str(artifacts / "issue12_tall_grid_input_in_view.png"))
        page.mouse.move(2, 2)
        fpanel.get_by_label("Layer", exact=True).focus()
        page.keyboard.press("Home")
        wait_tiles(page, grid, 16)
    finally:
        page.set_viewport_size({"width": 1280, "height": 1300})


def test_layer_list_beside_the_slider(lab):
    page, root = lab, explorer(lab, "demo")
    show(page, root)
    fpanel = panel(root, "features")
    grid = fpanel.locator("canvas.cnnviz-grid")
    names = fpanel.get_by_label("Layer by name").locator("option").all_text_contents()
    assert names == ["features.0 (Conv2d)", "features.3 (Conv2d)", "features.6 (Conv2d)",
                     "features.9 (Conv2d)", "features.11 (Conv2d)"]
    fpanel.get_by_label("Layer by name").select_option("features.6")
    wait_tiles(page, grid, 64)
    assert fpanel.locator(".cnnviz-layer-name").text_content().startswith("features.6")
    assert fpanel.get_by_label("Layer", exact=True).input_value() == "2"
    assert fpanel.get_by_label("Layer", exact=True).evaluate("(s) => s.style.width") == "120px"
    fpanel.get_by_label("Layer by name").select_option("features.0")
    wait_tiles(page, grid, 16)


def test_colour_bars_opacity_value_and_rgb_kernels(lab, artifacts):
    page, root = lab, explorer(lab, "demo")
    show(page, root)
    fpanel = panel(root, "features")
    grid = fpanel.locator("canvas.cnnviz-grid")
    wait_tiles(page, grid, 16)
    bar = fpanel.locator(".cnnviz-colorbar")
    maps = reference_features("features.0")
    fpanel.get_by_label("Colour scale").select_option("map")
    assert "hover a map" in bar.text_content()
    page.mouse.move(*tile_centre(page, grid, 3))
    page.wait_for_function("(b) => b.textContent.includes('map 3')", arg=bar.element_handle())
    lo, hi = json.loads(bar.get_attribute("data-range"))
    assert lo == pytest.approx(maps[3].min(), rel=2e-3)
    assert hi == pytest.approx(maps[3].max(), rel=2e-3)
    page.mouse.move(2, 2)
    fpanel.get_by_label("Colour scale").select_option("layer")
    page.wait_for_function("(b) => b.textContent.includes('per layer')", arg=bar.element_handle())
    lo, hi = json.loads(bar.get_attribute("data-range"))
    assert lo == pytest.approx(maps.min(), rel=2e-3) and hi == pytest.approx(maps.max(), rel=2e-3)
    fpanel.get_by_label("Colour scale").select_option("map")
    # the CAM map's bar and the opacity slider's value
    open_tab(root, "cam")
    cpanel = panel(root, "cam")
    wait_tiles(page, cpanel.locator("canvas.cnnviz-grid"), 2)
    assert cpanel.locator(".cnnviz-colorbar").is_visible()
    value = cpanel.locator(".cnnviz-opacity-value")
    assert value.text_content() == "50%"
    cpanel.get_by_label("Opacity").focus()
    page.keyboard.press("ArrowRight")
    assert value.text_content() == "55%"
    page.keyboard.press("ArrowLeft")
    assert value.text_content() == "50%"
    # first-layer RGB kernels: no colormap menu (it would do nothing there)
    open_tab(root, "kernels")
    kpanel = panel(root, "kernels")
    kpanel.get_by_label("Layer", exact=True).focus()
    page.keyboard.press("Home")
    wait_key(page, kpanel.locator("canvas.cnnviz-grid"), "(k) => k[1] === 'features.0'")
    assert kpanel.get_by_label("Colormap").is_hidden()
    assert "RGB" in kpanel.locator(".cnnviz-rgb-note").text_content()
    root.screenshot(path=str(artifacts / "issue12_rgb_kernels.png"))
    page.keyboard.press("ArrowRight")
    wait_key(page, kpanel.locator("canvas.cnnviz-grid"), "(k) => k[1] === 'features.3'")
    assert kpanel.get_by_label("Colormap").is_visible()
    open_tab(root, "features")


def test_activation_max_explains_offers_both_modes_and_keeps_tile_size(lab, artifacts):
    page, root = lab, explorer(lab, "demo")
    show(page, root)
    open_tab(root, "actmax")
    apanel = panel(root, "actmax")
    help_line = apanel.locator(".cnnviz-actmax-help")
    assert help_line.is_visible() and "Activation maximisation" in help_line.text_content()
    modes = apanel.get_by_label("Mode").locator("option").all_text_contents()
    assert modes == ["regularised (Lucid-style)", "plain (FlashTorch)"]
    apanel.get_by_label("Layer").select_option("features.3")
    apanel.get_by_label(re.compile("^Channels")).fill("0-9")
    apanel.get_by_label("Mode").select_option("plain")
    grid = apanel.locator("canvas.cnnviz-grid")
    sent = len(page.frames_sent)
    apanel.get_by_role("button", name=re.compile("Optimise")).click()
    page.wait_for_function("(c) => Number(c.dataset.tiles) === 10", arg=grid.element_handle(),
                           timeout=60_000)
    grid.evaluate("(c) => { c.__layouts = [c.dataset.layout]; new MutationObserver(() =>"
                  " c.__layouts.push(c.dataset.layout)).observe(c, {attributes: true,"
                  " attributeFilter: ['data-layout']}); }")
    stats = wait_tiles(page, grid, 10, timeout=120)
    layouts = {json.dumps({k: v for k, v in json.loads(x).items() if k != "first"})
               for x in grid.evaluate("(c) => c.__layouts")}
    assert len(layouts) == 1, layouts  # the tiles kept their size as the images came
    assert stats["distinct"] > 10
    requests = [f for f in page.frames_sent[sent:] if '"actmax"' in f and '"request"' in f]
    assert requests and re.search(r'"regularize":\s*false', requests[0]), requests[:1]
    assert not help_line.is_visible()
    assert "plain" in apanel.locator(".cnnviz-message").text_content()
    root.screenshot(path=str(artifacts / "issue12_actmax_plain.png"))
    open_tab(root, "features")


def test_png_exports_are_named_and_captioned(lab, artifacts, tmp_path):
    from PIL import Image

    page, root = lab, explorer(lab, "demo")
    show(page, root)

    def export(tab: str, label: str) -> tuple[str, Image.Image, dict]:
        tpanel = panel(root, tab)
        grid = tpanel.locator("canvas.cnnviz-grid")
        size = grid.evaluate("(c) => ({w: c.width, h: c.height, dpr: c.width / c.clientWidth})")
        with page.expect_download() as info:
            tpanel.get_by_role("button", name=label).click()
        download = info.value
        path = tmp_path / download.suggested_filename
        download.save_as(path)
        return download.suggested_filename, Image.open(path).convert("RGB"), size

    open_tab(root, "features")
    panel(root, "features").get_by_label("Layer by name").select_option("features.0")
    wait_tiles(page, panel(root, "features").locator("canvas.cnnviz-grid"), 16)
    name, img, size = export("features", "Save the feature-map grid as PNG")
    assert name == "features_features.0.png"
    caption_h = round(20 * size["dpr"])
    assert img.height == size["h"] + caption_h and img.width >= size["w"]
    strip = np.asarray(img)[:caption_h]
    assert (strip.sum(axis=2) < 200).sum() > 20, "a caption line of dark text on white"
    open_tab(root, "cam")
    cpanel = panel(root, "cam")
    grid = cpanel.locator("canvas.cnnviz-grid")
    wait_tiles(page, grid, 2)
    method, target, layer = (grid.get_attribute("data-key").split("|")[i] for i in (2, 3, 4))
    cls = next(b["name"] for b in class_buttons(cpanel) if b["index"] == int(target))
    name, img, size = export("cam", "Save the overlay as PNG")
    assert name == f"cam_{method}_{cls}_{layer}.png", name
    assert img.height == size["h"] + round(20 * size["dpr"])
    img.save(artifacts / "issue12_export_cam.png")
    open_tab(root, "saliency")
    wait_tiles(page, panel(root, "saliency").locator("canvas.cnnviz-grid"), 2)
    name, _, _ = export("saliency", "Save the saliency map as PNG")
    assert re.fullmatch(r"saliency_vanilla_[a-z]+\.png", name), name
    open_tab(root, "features")
