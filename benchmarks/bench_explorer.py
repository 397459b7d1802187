"""Explorer timings measured in a real Chromium against a real JupyterLab (not a timed test).

Run: ``.venv/bin/python benchmarks/bench_explorer.py [--out test-artifacts/bench_explorer.json]``

Measures, with random-init torchvision models at 224 px (pretrained weights cannot be
downloaded here; timings do not depend on the weights):

* slider change -> painted grid for feature maps of a layer NOT yet sent to the front end
  (vgg11 ``features.0``: 64 x 224 x 224; resnet50 ``layer4``: 2048 x 7 x 7), with the
  activations already computed by the explorer's first pass; from the slider's input event
  to the animation frame after the grid was drawn (``data-last-paint-ms`` of the widget);
* redraw of data already in the front end: colormap change, slider back to a sent layer;
* bytes received per layer (binary buffers) against C*H*W;
* time from running ``LayerExplorer(resnet50)`` to the first painted grid, relative to one
  forward pass of resnet50 in the same kernel, and the display floor: the same time for an
  ``ipywidgets.IntSlider`` and for an anywidget that only appends a canvas (what JupyterLab
  and the browser take to show any widget, which the explorer cannot go below). Measured in
  the page, from the Shift+Enter key press to the DOM change that drew the grid (the
  ``*_playwright_s`` figures add Playwright's round trips, as the first reports did).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import (  # noqa: E402
    CHROMIUM_ARGS,
    _free_port,
    _wait_for_port,
    execute_cell,
    write_notebook,
)

CELLS = [
    # 0: vgg11, opened on features.3 so that features.0 has not been sent yet
    "import time, torch, torchvision\n"
    "torch.set_num_threads(1)\n"
    "from cnnviz_widgets import LayerExplorer, conv_layers\n"
    "torch.manual_seed(0)\n"
    "vgg = torchvision.models.vgg11(weights=None).eval()\n"
    "ex_vgg = LayerExplorer(vgg, size=224)\n"
    "ex_vgg.layer = 'features.3'\n"
    "ex_vgg",
    # 1: one forward pass of resnet50 (the reference for the time to the first grid)
    "r50 = torchvision.models.resnet50(weights=None).eval()\n"
    "x = torch.randn(1, 3, 224, 224)\n"
    "with torch.no_grad():\n"
    "    r50(x)\n"
    "    t = time.perf_counter(); r50(x); fwd = time.perf_counter() - t\n"
    "print(f'FORWARD_S {fwd:.4f}')",
    # 2: display(LayerExplorer(resnet50)), as a person opens it (default layers)
    "t = time.perf_counter()\n"
    "first50 = LayerExplorer(r50, size=224)\n"
    "print(f'CONSTRUCT_S {time.perf_counter() - t:.4f}')\n"
    "first50",
    # 3: the explorer the layer timings use: every conv plus the layer4 block on the slider
    "ex50 = LayerExplorer(r50, size=224, layers=[*conv_layers(r50), 'layer4'])\n"
    "ex50",
    # 4, 5: the display floor, the same path for widgets that compute nothing: an ipywidgets
    # slider, and an anywidget whose module only appends a canvas
    "import ipywidgets\nipywidgets.IntSlider(description='floor')",
    "import anywidget\n"
    "class Floor(anywidget.AnyWidget):\n"
    "    _esm = ('export default { render({ el }) {'\n"
    "            ' const c = document.createElement(\"canvas\");'\n"
    "            ' c.className = \"cnnviz-floor\"; el.append(c); } }')\n"
    "Floor()",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=ROOT / "test-artifacts" / "bench_explorer.json")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"cnnviz-bench-{secrets.token_hex(4)}"
    workdir.mkdir(parents=True)
    write_notebook(workdir / "bench.ipynb", CELLS)
    port, token = _free_port(), secrets.token_hex(16)
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
    log = open(workdir / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [jupyter, "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", "--allow-root", f"--ServerApp.root_dir={workdir}",
         "--LabApp.expose_app_in_browser=True"],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    results: dict[str, object] = {}
    try:
        _wait_for_port(port, server)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"),
                                         args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(f"http://127.0.0.1:{port}/lab/tree/bench.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=120_000)
            page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
            try:
                results.update(bench(page))
            except Exception:
                page.screenshot(path=str(ROOT / "test-artifacts" / "bench_failure.png"))
                raise
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def run_cell(page, index: int) -> None:
    execute_cell(page, index)


def timed_display(page, index: int, shown: str) -> tuple[float, float]:
    """Run cell ``index`` and return two times, in seconds, until ``shown`` (a JS expression
    over the cell element ``cell``) holds: measured in the page, from the Shift+Enter key press
    to the DOM change that made it hold (a MutationObserver); and measured from this process,
    around Playwright's key press and polling (what the first benchmark reported, ~0.05-0.1 s
    of Playwright round trips more)."""
    page.evaluate(
        """([index, shown]) => {
          const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
          window.__shown = undefined; window.__pressed = undefined;
          const test = new Function('cell', 'return Boolean(' + shown + ');');
          document.addEventListener('keydown', (e) => {
            if (e.key === 'Enter' && e.shiftKey && window.__pressed === undefined) {
              window.__pressed = performance.now();
            }
          }, { capture: true });
          const observer = new MutationObserver(() => {
            if (window.__pressed !== undefined && test(cell)) {
              window.__shown = performance.now();
              observer.disconnect();
            }
          });
          observer.observe(cell, { subtree: true, childList: true, attributes: true });
        }""",
        [index, shown],
    )
    t0 = time.perf_counter()
    run_cell(page, index)
    page.wait_for_function("() => window.__shown !== undefined", timeout=300_000)
    outside = time.perf_counter() - t0
    inside = page.evaluate("() => (window.__shown - window.__pressed) / 1000")
    return inside, outside


def paint_after(page, root, action) -> float:
    """Do ``action()`` and return the widget's slider-to-paint time (ms) for it."""
    page.evaluate("(el) => { delete el.dataset.lastPaintMs; }", root.element_handle())
    action()
    page.wait_for_function("(el) => el.dataset.lastPaintMs !== undefined",
                           arg=root.element_handle(), timeout=120_000)
    return float(root.get_attribute("data-last-paint-ms"))


def slider_to(page, root, name: str) -> float:
    """Move the layer slider to ``name`` (one input event) and time it to the painted grid."""
    idx = page.evaluate(
        "([el, n]) => JSON.parse(el.dataset.layerNames || '[]').indexOf(n)",
        [root.element_handle(), name],
    )
    if idx < 0:
        names = root.locator(".cnnviz-panel-features").get_by_label("Layer", exact=True)
        raise RuntimeError(f"{name} not on the slider ({names})")
    slider = root.locator(".cnnviz-panel-features").get_by_label("Layer", exact=True)

    def move() -> None:
        slider.evaluate("(s, i) => { s.value = String(i); s.dispatchEvent(new Event('input')); }",
                        idx)

    return paint_after(page, root, move)


def colormap_redraw(page, root, cmap: str) -> float:
    """Colormap change -> next animation frame after the redraw, ms (measured in the page)."""
    return page.evaluate(
        """([root, cmap]) => new Promise((resolve) => {
          const sel = root.querySelector('.cnnviz-panel-features select[aria-label="Colormap"]');
          const t0 = performance.now();
          sel.value = cmap;
          sel.dispatchEvent(new Event('change'));
          requestAnimationFrame(() => resolve(performance.now() - t0));
        })""",
        [root.element_handle(), cmap],
    )


def bench(page) -> dict[str, object]:
    out: dict[str, object] = {}
    # ---- vgg11
    run_cell(page, 0)
    vgg = page.locator(".cnnviz-explorer").nth(0)
    vgg.wait_for(timeout=300_000)
    page.wait_for_function("(el) => el.querySelector('.cnnviz-panel-features canvas.cnnviz-grid')"
                           "?.dataset.tiles === '128'", arg=vgg.element_handle(),
                           timeout=300_000)
    new_ms: list[float] = []
    sent0 = int(vgg.get_attribute("data-bytes-received") or 0)
    new_ms.append(slider_to(page, vgg, "features.0"))
    out["vgg11_features0_bytes"] = int(vgg.get_attribute("data-bytes-received")) - sent0
    out["vgg11_features0_chw"] = 64 * 224 * 224
    out["vgg11_features0_slider_to_paint_ms"] = new_ms[0]
    out["vgg11_features0_round_trip_ms"] = float(vgg.get_attribute("data-last-round-trip-ms"))
    out["vgg11_features0_draw_ms"] = float(vgg.get_attribute("data-last-draw-ms"))
    out["vgg11_cached_slider_back_ms"] = [slider_to(page, vgg, "features.3"),
                                          slider_to(page, vgg, "features.0")]
    out["vgg11_colormap_redraw_ms"] = [colormap_redraw(page, vgg, c)
                                       for c in ("magma", "viridis", "gray")]
    # ---- resnet50
    run_cell(page, 1)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
        ".some((o) => o.textContent.includes('FORWARD_S'))", timeout=300_000)
    text = " ".join(page.locator(".jp-OutputArea-output").all_text_contents())
    out["resnet50_forward_s"] = float(re.search(r"FORWARD_S ([\d.]+)", text).group(1))
    grid = ("Number(cell.querySelector('.cnnviz-panel-features canvas.cnnviz-grid')"
            "?.dataset.tiles) > 0")
    inside, outside = timed_display(page, 2, grid)
    out["resnet50_time_to_first_grid_s"] = inside
    out["resnet50_time_to_first_grid_playwright_s"] = outside
    text = " ".join(page.locator(".jp-OutputArea-output").all_text_contents())
    out["resnet50_construct_s"] = float(re.search(r"CONSTRUCT_S ([\d.]+)", text).group(1))
    out["resnet50_first_grid_over_forward"] = (
        out["resnet50_time_to_first_grid_s"] / out["resnet50_forward_s"]
    )
    run_cell(page, 3)
    r50 = page.locator(".cnnviz-explorer").nth(2)
    page.wait_for_function("(el) => Number(el.querySelector("
                           "'.cnnviz-panel-features canvas.cnnviz-grid')?.dataset.tiles) > 0",
                           arg=r50.element_handle(), timeout=300_000)
    sent = int(r50.get_attribute("data-bytes-received") or 0)
    out["resnet50_layer4_slider_to_paint_ms"] = slider_to(page, r50, "layer4")
    out["resnet50_layer4_round_trip_ms"] = float(r50.get_attribute("data-last-round-trip-ms"))
    out["resnet50_layer4_draw_ms"] = float(r50.get_attribute("data-last-draw-ms"))
    out["resnet50_layer4_bytes"] = int(r50.get_attribute("data-bytes-received")) - sent
    out["resnet50_layer4_chw"] = 2048 * 7 * 7
    out["resnet50_layer4_tiles_on_first_page"] = int(
        r50.locator(".cnnviz-panel-features canvas.cnnviz-grid").get_attribute("data-tiles"))
    out["resnet50_other_new_layers_ms"] = {
        name: slider_to(page, r50, name)
        for name in ("layer1.0.conv1", "layer2.0.conv1", "layer3.0.conv1", "layer4.0.conv1")
    }
    out["resnet50_cached_slider_back_ms"] = [slider_to(page, r50, "layer4"),
                                             slider_to(page, r50, "layer1.0.conv1")]
    out["resnet50_colormap_redraw_ms"] = [colormap_redraw(page, r50, c)
                                          for c in ("magma", "viridis")]
    floors = {}
    for index, selector in ((4, ".widget-slider"), (5, "canvas.cnnviz-floor")):
        floors[selector] = timed_display(page, index, f"cell.querySelector('{selector}')")
    out["intslider_display_s"] = floors[".widget-slider"][0]
    out["anywidget_display_s"] = floors["canvas.cnnviz-floor"][0]
    out["anywidget_display_playwright_s"] = floors["canvas.cnnviz-floor"][1]
    out["resnet50_first_grid_above_anywidget_floor_over_forward"] = (
        (out["resnet50_time_to_first_grid_s"] - out["anywidget_display_s"])
        / out["resnet50_forward_s"]
    )
    out["load_average_1min"] = os.getloadavg()[0]
    out["cpus"] = os.cpu_count()
    page.locator(".cnnviz-explorer").nth(2).screenshot(
        path=str(ROOT / "test-artifacts" / "bench_resnet50.png"))
    return out


if __name__ == "__main__":
    main()
