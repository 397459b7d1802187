"""A notebook saved with its widget state, opened later with no kernel and no network.

nbclient executes a notebook that displays the explorer (``store_widget_state=True``, as
"Save widget state" does), nbconvert's ``HTMLExporter`` turns it into the page a person opens
from disk (or that nbviewer / a docs site shows). That page asks three CDNs for require.js, the
ipywidgets html-manager and anywidget's AMD build; here they come from a local npm install
(``legacy.ensure_widget_cdn``) through ``page.route``, and every other request is aborted and
logged. Without a kernel the explorer can only draw what the saved state holds: the Python side
keeps what is on screen in binary traits (``shown_features``, ``shown_kernels``, ...), and the
display bundle carries an ``image/png`` of it for viewers without widgets.

Screenshots and the exported files: ``test-artifacts/saved_*``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import time

import pytest

from . import legacy

DEMO_CELLS = ["from cnnviz_widgets import LayerExplorer", "ex = LayerExplorer(); ex"]
RESNET50_CELLS = [
    "import torch, torchvision\nfrom cnnviz_widgets import LayerExplorer",
    "torch.manual_seed(0)\nmodel = torchvision.models.resnet50(weights=None)\n"
    "ex = LayerExplorer(model); ex",
]
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
STATE_MIME = "application/vnd.jupyter.widget-state+json"
MAX_BYTES = 1_000_000


def execute_saved(cells: list[str], name: str, artifacts, timeout: int = 900) -> dict:
    """Execute ``cells`` with nbclient, recording the widget state; write the .ipynb and the
    exported .html to test-artifacts/. Returns the notebook, the paths, the sizes, the time."""
    import nbclient
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    mp = pytest.MonkeyPatch()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        mp.setenv(var, "1")  # one torch thread in the kernel (2-core machines)
    start = time.monotonic()
    try:
        nbclient.NotebookClient(nb, store_widget_state=True, kernel_name="python3",
                                timeout=timeout).execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"the notebook failed: {str(err)[-3000:]}")
    finally:
        mp.undo()
    elapsed = time.monotonic() - start
    text = nbformat.writes(nb)
    ipynb = artifacts / f"{name}.ipynb"
    ipynb.write_text(text, encoding="utf-8")
    body, _ = HTMLExporter().from_notebook_node(nb)
    html = artifacts / f"{name}.html"
    html.write_text(body, encoding="utf-8")
    return {"nb": nb, "ipynb": ipynb, "html": html, "bytes": len(text.encode("utf-8")),
            "seconds": elapsed}


def explorer_output(nb) -> dict:
    """The display bundle of the explorer (the last cell's output with a widget view)."""
    bundles = [o["data"] for o in nb.cells[-1].outputs
               if o.get("output_type") in ("execute_result", "display_data")
               and VIEW_MIME in o.get("data", {})]
    assert len(bundles) == 1, [o.get("output_type") for o in nb.cells[-1].outputs]
    return bundles[0]


def png_picture(data: dict):
    """The bundle's image/png as a PIL image, checked to be a real picture."""
    from PIL import Image

    assert "image/png" in data, f"no image/png beside the widget view: {sorted(data)}"
    png = base64.b64decode(data["image/png"])
    assert png.startswith(b"\x89PNG"), png[:16]
    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert min(img.size) >= 64, img.size
    colours = len(img.resize((64, 64)).getcolors(maxcolors=64 * 64) or [])
    assert colours > 50, f"the picture is nearly one colour ({colours} colours)"
    return img


@pytest.fixture(scope="module")
def saved_demo(artifacts):
    return execute_saved(DEMO_CELLS, "saved_demo", artifacts)


@pytest.fixture(scope="module")
def widget_cdn():
    try:
        return legacy.ensure_widget_cdn()
    except Exception as exc:
        pytest.fail(f"could not npm install the widget CDN files: {exc}")


def test_saved_demo_notebook_keeps_state_and_picture_under_1mb(saved_demo, artifacts):
    nb = saved_demo["nb"]
    data = explorer_output(nb)
    widgets = nb.metadata.get("widgets", {}).get(STATE_MIME, {})
    assert "state" in widgets, sorted(nb.metadata)
    model_id = data[VIEW_MIME]["model_id"]
    assert model_id in widgets["state"]
    assert saved_demo["bytes"] < MAX_BYTES, (
        f"the saved notebook is {saved_demo['bytes']} bytes ({size_report(saved_demo)})")
    png_picture(data).save(artifacts / "saved_demo_picture.png")
    print(f"demo: executed in {saved_demo['seconds']:.1f} s, {saved_demo['bytes']} bytes")


@pytest.fixture(scope="module")
def offline_page(saved_demo, widget_cdn, browser, artifacts):
    router = legacy.OfflineRouter(widget_cdn)
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", router)
    page.goto(saved_demo["html"].as_uri())
    page.router, page.errors = router, errors  # type: ignore[attr-defined]
    yield page
    print(f"saved page: served {router.served}; aborted {router.aborted}")
    context.close()


@pytest.mark.browser
def test_saved_page_loads_widgets_from_local_files_offline(offline_page, artifacts):
    page = offline_page
    root = page.locator(".cnnviz-explorer")
    try:
        root.wait_for(timeout=120_000)
    except Exception:
        page.screenshot(path=str(artifacts / "saved_demo_page_failure.png"), full_page=True)
        raise AssertionError(
            f"the explorer did not appear: served {page.router.served}, aborted "
            f"{page.router.aborted}, page errors {page.errors}") from None
    page.screenshot(path=str(artifacts / "saved_demo_page.png"))
    served = page.router.served
    assert set(served) == {"require", "html-manager", "anywidget"}, served
    # the page asked for the anywidget release the kernel ran (e.g. "~0.11.*" for 0.11.0)
    spec = legacy.OfflineRouter.PATTERNS["anywidget"].search(served["anywidget"]).group(1)
    major_minor = ".".join(legacy.anywidget_version().split(".")[:2])
    assert spec.lstrip("~^=").startswith(major_minor), (spec, legacy.anywidget_version())
    widget_urls = [u for u in page.router.aborted if "widget" in u or "require" in u]
    assert widget_urls == [], widget_urls
    name = root.locator(".cnnviz-panel-features .cnnviz-layer-name")
    assert name.text_content().startswith("features.0"), name.text_content()


@pytest.mark.browser
def test_saved_page_draws_features_and_hover_values_without_kernel(offline_page, artifacts):
    page = offline_page
    root = page.locator(".cnnviz-explorer")
    root.wait_for(timeout=120_000)
    features = root.locator(".cnnviz-panel-features")
    grid = features.locator("canvas.cnnviz-grid")
    try:
        legacy.wait_grid(page, grid, 16, timeout=90)  # demo features.0: 16 maps
        text, _value = legacy.hover_value(page, root, grid, 5)
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(artifacts / "saved_demo_grid_failure.png"),
                            full_page=True)
        status = root.locator(".cnnviz-panel-features").inner_text()
        raise AssertionError(f"no grid from the saved state; the panel says {status!r}; "
                             f"page errors {page.errors}") from None
    assert "channel 5" in text, text
    page.screenshot(path=str(artifacts / "saved_demo_page_hover.png"))
    page.mouse.move(2, 2)


def test_resnet50_saved_notebook_is_small_and_has_a_picture(artifacts):
    """resnet50 at 224 px (conv1: 64 maps of 112 x 112) on the bundled cat photo: about 6 s."""
    saved = execute_saved(RESNET50_CELLS, "saved_resnet50", artifacts)
    data = explorer_output(saved["nb"])
    print(f"resnet50: executed in {saved['seconds']:.1f} s, {saved['bytes']} bytes")
    problems = []
    if saved["bytes"] >= MAX_BYTES:
        problems.append(f"the saved notebook is {saved['bytes']} bytes ({size_report(saved)})")
    try:
        png_picture(data).save(artifacts / "saved_resnet50_picture.png")
    except AssertionError as exc:
        problems.append(str(exc))
    assert not problems, problems


def size_report(saved: dict) -> str:
    """Where the bytes of a saved notebook go: outputs by mime type, widget traits/buffers."""
    nb = saved["nb"]
    parts: dict[str, int] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for mime, value in out.get("data", {}).items():
                parts[f"output {mime}"] = parts.get(f"output {mime}", 0) + len(str(value))
    state = nb.metadata.get("widgets", {}).get(STATE_MIME, {}).get("state", {})
    for model in state.values():
        for buf in model.get("buffers", []):
            key = f"buffer {buf['path'][0]}"
            parts[key] = parts.get(key, 0) + len(buf.get("data", ""))
        for name, value in model.get("state", {}).items():
            parts[f"trait {name}"] = parts.get(f"trait {name}", 0) + len(str(value))
    top = sorted(parts.items(), key=lambda kv: -kv[1])[:6]
    return ", ".join(f"{k}: {v}" for k, v in top)
