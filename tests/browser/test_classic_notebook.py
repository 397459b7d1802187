"""LayerExplorer under ipywidgets 7.8 in the classic Notebook 6.5 (what Colab ships).

The server and the kernel run from ``.venv-ipyw7/`` (see ``legacy.py``: ipywidgets 7, notebook
6.5, torch borrowed from the main venv), into which the package is installed with
``ipywidgets<8`` as a constraint; a requirement of ipywidgets 8 fails that install, and so this
test. A person opens the notebook, runs the cell with Shift+Enter and sees the feature grid of
the demo model; moving the layer slider shows the next layer, hovering a tile shows its value.
Screenshots: ``test-artifacts/classic_*.png``.
"""

from __future__ import annotations

import contextlib
import time

import pytest

from . import legacy
from .conftest import write_notebook

pytestmark = pytest.mark.browser

CELL = "from cnnviz_widgets import LayerExplorer; ex = LayerExplorer(); ex"
# The widget model version of the page's widget manager: "1.2.0" under ipywidgets 7
# (widgetsnbextension 3), "2.0.0" under ipywidgets 8.
WIDGETS_VERSION = ("() => { const m = window.require && require.s.contexts._.defined"
                   "['nbextensions/jupyter-js-widgets/extension'];"
                   " return m && m.JUPYTER_WIDGETS_VERSION; }")


@pytest.fixture(scope="module")
def ipyw7_venv():
    try:
        venv = legacy.ensure_ipyw7_venv()
    except Exception as exc:  # no registry, no venv module ...: the set-up itself is broken
        pytest.fail(f"could not create the ipywidgets 7 venv: {exc}")
    try:
        legacy.install_package_ipyw7(venv)
    except legacy.PackageInstallError as exc:
        pytest.fail(f"cnnviz-widgets does not install next to ipywidgets 7:\n{exc}",
                    pytrace=False)
    version = legacy.ipywidgets_version(venv)
    assert version.startswith("7.8."), version
    nbext = legacy._run([str(venv / "bin" / "jupyter"), "nbextension", "list"])
    assert "anywidget/extension" in nbext.stdout + nbext.stderr, nbext.stdout + nbext.stderr
    return venv


@pytest.fixture(scope="module")
def classic_server(ipyw7_venv, tmp_path_factory):
    with legacy.classic_notebook_server(ipyw7_venv, tmp_path_factory.mktemp("classic")) as s:
        yield s


def run_cell_classic(page, index: int, attempts: int = 4) -> None:
    """Click into code cell ``index`` and press Shift+Enter; retried until its prompt leaves
    ``In [ ]:`` (a key press right after the page loads can be lost)."""
    cell = page.locator("#notebook-container .cell.code_cell").nth(index)
    prompt = cell.locator(".input_prompt")
    for _ in range(attempts):
        cell.locator(".CodeMirror").click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function("(p) => !/\\[\\s*\\]/.test(p.textContent)",
                                   arg=prompt.element_handle(), timeout=15_000)
            return
        except Exception:
            page.wait_for_timeout(1000)
    raise AssertionError(f"cell {index} did not start: prompt {prompt.text_content()!r}")


def test_classic_notebook_ipywidgets7_grid_slider_hover(classic_server, browser, artifacts):
    write_notebook(classic_server.root / "classic.ipynb", [CELL])
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    started = time.time()
    try:
        page.goto(classic_server.url("notebooks/classic.ipynb"))
        page.wait_for_selector("#notebook-container .cell.code_cell .CodeMirror",
                               timeout=120_000)
        page.wait_for_function(
            "() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
            " && Jupyter.notebook.kernel.is_connected()", timeout=180_000)
        page.wait_for_function(WIDGETS_VERSION, timeout=60_000)
        widgets = page.evaluate(WIDGETS_VERSION)
        assert widgets.startswith("1."), f"widget manager {widgets}, not ipywidgets 7's"
        run_cell_classic(page, 0)
        root = page.locator(".cnnviz-explorer")
        try:
            root.wait_for(timeout=180_000)
        except Exception:
            outputs = page.locator(".output_area").all_text_contents()
            raise AssertionError(
                f"the explorer did not appear; cell output: {outputs}; page errors: {errors}"
            ) from None
        features = root.locator(".cnnviz-panel-features")
        grid = features.locator("canvas.cnnviz-grid")
        name = features.locator(".cnnviz-layer-name")
        stats0 = legacy.wait_grid(page, grid, 16)  # demo features.0: 16 maps of 64 x 64
        assert name.text_content().startswith("features.0")
        root.screenshot(path=str(artifacts / "classic_features0.png"))

        text, value = legacy.hover_value(page, root, grid, 5)
        assert "channel 5" in text, text
        page.screenshot(path=str(artifacts / "classic_hover.png"))
        page.mouse.move(3, 3)
        root.locator(".cnnviz-zoom").wait_for(state="hidden", timeout=10_000)

        slider = features.get_by_label("Layer", exact=True)
        slider.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("(el) => el.textContent.startsWith('features.3')",
                               arg=name.element_handle(), timeout=60_000)
        stats3 = legacy.wait_grid(page, grid, 32)  # features.3: 32 maps
        assert stats3["hash"] != stats0["hash"]
        text3, _ = legacy.hover_value(page, root, grid, 20)
        assert "channel 20" in text3, text3
        page.mouse.move(3, 3)
        root.screenshot(path=str(artifacts / "classic_features3.png"))
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(artifacts / "classic_failure.png"), full_page=True)
        raise
    finally:
        context.close()
    print(f"classic notebook (ipywidgets {legacy.ipywidgets_version()}, page widgets "
          f"{widgets}): {time.time() - started:.1f} s; hover value {value}")
