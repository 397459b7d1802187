"""The Trust tab in a real JupyterLab 4 with headless Chromium, on the demo explorer with an
evaluation over generated shapes and its data: a sanity check (maps in a row, scores, verdict)
equal to the engine's, the evaluation table sorted by a header click, and a drill-down to the
worst images equal to sorting the per-image values, drawn as thumbnails with the method's map;
a click on one makes it the input (Python's input is then that dataset image). A second
explorer without the data lists the indices and says how to get pictures. Screenshots:
test-artifacts/trust.png (the drill-down), trust_no_data.png.
"""

from __future__ import annotations

import re

import pytest

from .conftest import execute_cell, open_notebook
from .test_explorer_browser import open_tab, panel

pytestmark = pytest.mark.browser

SETUP = (
    "import torch\ntorch.set_num_threads(1)\n"
    "from cnnviz_widgets import LayerExplorer\n"
    "from cnnviz_widgets.demo import demo_model\n"
    "from cnnviz_widgets.demo.examples import ShapeImages\n"
    "from cnnviz_widgets.engine.metrics import evaluate\n"
)
EVALUATE = ("evaluate(demo_model(allow_untrained=True).model, data, "
            "['GradCAM', 'vanilla'], ['sparseness', 'deletion_auc'], batch_size=12, n_boot=200)")
CELLS = [
    SETUP + f"data = ShapeImages(24, seed=5)\nresult = {EVALUATE}\n"
    "demo = LayerExplorer(evaluation=result, evaluation_data=data)\ndemo",
    "plain = LayerExplorer(evaluation=result)\nplain",
    # which dataset images Python's input is now (after a click on a thumbnail)
    "print('input is', [i for i in range(len(data)) "
    "if torch.equal(demo.input_tensor.cpu(), data[i][0][None])])",
]


@pytest.fixture(scope="module")
def reference():
    import torch

    from cnnviz_widgets import LayerExplorer
    from cnnviz_widgets.demo import demo_model
    from cnnviz_widgets.demo.examples import ShapeImages
    from cnnviz_widgets.engine.metrics import evaluate, sanity_check

    torch.set_num_threads(1)
    # the same call as the notebook's cell (EVALUATE)
    result = evaluate(demo_model(allow_untrained=True).model, ShapeImages(24, seed=5),
                      ["GradCAM", "vanilla"], ["sparseness", "deletion_auc"], batch_size=12,
                      n_boot=200)
    ex = LayerExplorer(background=False)
    x, target = ex.input_tensor, int(ex._subject.probabilities().argmax())
    checks = {m: sanity_check(ex.model, x, m, target=target) for m in ("GradCAM", "guided")}
    ex.close()
    return result, checks


@pytest.fixture(scope="module")
def lab(jupyter_server, browser, artifacts):
    context, page = open_notebook(jupyter_server, browser, "trust", CELLS)
    execute_cell(page, 0)
    execute_cell(page, 1)
    try:
        page.wait_for_function("() => document.querySelectorAll('.cnnviz-explorer').length >= 2",
                               timeout=180_000)
    except Exception:
        page.screenshot(path=str(artifacts / "trust_setup_failure.png"))
        raise
    yield page
    context.close()


def run_check(page, tab, method: str, maps: int) -> str:
    tab.get_by_label("Method", exact=True).select_option(method)
    tab.locator(".cnnviz-trust-run").click()
    page.wait_for_function(
        "([r, n, m]) => r.dataset.maps === String(n) && r.getAttribute('aria-label').includes(m)",
        arg=[tab.locator(".cnnviz-trust-maps").element_handle(), maps, method],
        timeout=120_000)
    return tab.locator(".cnnviz-trust-verdict").text_content()


def test_sanity_check_table_sort_and_drill_down(lab, reference, artifacts):
    page = lab
    result, checks = reference
    root = page.locator(".cnnviz-explorer").nth(0)
    open_tab(root, "trust")
    tab = panel(root, "trust")
    assert "press Run" in tab.locator(".cnnviz-message").first.text_content()

    # GradCAM: 1 original + 6 randomised layers + the random logit, each with its scores
    want = checks["GradCAM"]
    verdict = run_check(page, tab, "GradCAM", len(want.steps) + 2)
    assert verdict.startswith("passes") == (not want.fails()), verdict
    figures = tab.locator(".cnnviz-trust-map")
    assert figures.nth(0).locator("figcaption").text_content() == "original"
    for i, step in enumerate(want.steps, start=1):
        fig = figures.nth(i)
        assert step.layer in fig.locator("figcaption").text_content()
        shown = fig.locator(".cnnviz-trust-score").text_content()
        spearman = float(re.search(r"Spearman (-?[\d.]+)", shown).group(1))
        assert spearman == pytest.approx(float(step.scores["spearman"][0]), abs=0.006), shown
    drawn = page.evaluate(
        "(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }",
        figures.nth(1).locator("canvas").element_handle())
    assert drawn > 0
    assert "Random-logit test" in tab.locator(".cnnviz-trust-logit").text_content()
    root.screenshot(path=str(artifacts / "trust_gradcam.png"))

    # guided backpropagation keeps the image's edges: it fails the check on the demo model
    verdict = run_check(page, tab, "guided", len(checks["guided"].steps) + 2)
    assert verdict.startswith("fails") == checks["guided"].fails(), verdict
    assert "0.5" in verdict

    # the evaluation table: sorted by mean, then the other way
    table = tab.locator(".cnnviz-trust-table")
    rows = table.locator("tbody tr")
    assert rows.count() == len(result.summary) == 4
    mean_header = table.locator("button[data-column='mean']")
    mean_header.click()
    assert mean_header.text_content().endswith("▼")
    means = [float(rows.nth(i).locator("td").nth(2).text_content()) for i in range(4)]
    assert means == sorted(means, reverse=True)
    mean_header.click()
    assert mean_header.text_content().endswith("▲")
    means = [float(rows.nth(i).locator("td").nth(2).text_content()) for i in range(4)]
    assert means == sorted(means)

    # drill-down: GradCAM's worst images on sparseness (higher is better: lowest first), as
    # thumbnails with the map over each
    table.locator("tr[data-method='GradCAM'][data-metric='sparseness']").click()
    thumbs = tab.locator(".cnnviz-trust-thumb")
    thumbs.first.wait_for(timeout=60_000)
    values = result.value("GradCAM", "sparseness")
    order = sorted(range(len(values)), key=lambda i: values[i])[:6]
    worst = [int(result.indices[i]) for i in order]
    assert [int(thumbs.nth(i).get_attribute("data-index")) for i in range(thumbs.count())] == worst
    for i, index in enumerate(worst):
        caption = thumbs.nth(i).locator("figcaption").text_content()
        assert caption.startswith(f"image {index}: ") and "· class " in caption, caption
        assert f"{values[order[i]]:.4f}"[:4] in caption, caption
    painted = page.evaluate(
        "(cs) => cs.map((c) => { const d = c.getContext('2d').getImageData(0, 0, c.width,"
        " c.height).data; const seen = new Set(); for (let i = 0; i < d.length; i += 4)"
        " if (d[i + 3] > 0) seen.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]); return seen.size; })",
        [tab.locator(".cnnviz-trust-thumb canvas").nth(i).element_handle() for i in range(6)])
    assert all(n > 50 for n in painted), painted  # an image under a colour map, not a flat tile
    drill_down = tab.locator(".cnnviz-trust-worst")
    assert "Over each image: the map of GradCAM" in drill_down.text_content()
    tab.screenshot(path=str(artifacts / "trust.png"))

    # a click on the third thumbnail makes that dataset image the explorer's input
    thumbs.nth(2).locator("button").click()
    current = tab.locator(".cnnviz-trust-thumb-current")
    current.wait_for(timeout=60_000)  # once Python's new input image has arrived
    assert current.get_attribute("data-index") == str(worst[2])
    note = tab.locator(".cnnviz-trust-worst-note").text_content()
    assert note.startswith(f"Image {worst[2]} is the input now"), note
    assert current.count() == 1
    execute_cell(page, 2)
    out = page.locator(".jp-Cell").nth(2).locator(".jp-OutputArea-output")
    out.first.wait_for(timeout=60_000)
    assert out.first.text_content().strip() == f"input is [{worst[2]}]", out.first.text_content()

    # without evaluation_data: the indices and values, and how to get the pictures
    plain = page.locator(".cnnviz-explorer").nth(1)
    open_tab(plain, "trust")
    other = panel(plain, "trust")
    other.locator(".cnnviz-trust-table tr[data-method='GradCAM'][data-metric='sparseness']").click()
    items = other.locator(".cnnviz-trust-worst-item")
    items.first.wait_for(timeout=60_000)
    assert [int(items.nth(i).get_attribute("data-index")) for i in range(items.count())] == worst
    assert other.locator(".cnnviz-trust-thumb").count() == 0
    assert "pass evaluation_data=data" in other.locator(".cnnviz-trust-worst").text_content()
    other.screenshot(path=str(artifacts / "trust_no_data.png"))


def test_a_saved_pages_thumbnail_click_says_python_is_needed(browser, artifacts, tmp_path):
    """save_html's page (no kernel) keeps the drill-down's thumbnails; a click on one asks
    Python for that dataset image, and with nobody to answer, the status line says that Python
    is not running (as for any request of a saved page), instead of loading for ever."""
    from cnnviz_widgets import LayerExplorer
    from cnnviz_widgets.demo import demo_model
    from cnnviz_widgets.demo.examples import ShapeImages
    from cnnviz_widgets.engine.metrics import evaluate
    from cnnviz_widgets.widgets.recorder import Recorder
    from cnnviz_widgets.widgets.requests import request_key

    data = ShapeImages(12, seed=5)
    result = evaluate(demo_model(allow_untrained=True).model, data, ["GradCAM"], ["sparseness"],
                      batch_size=12, n_boot=50)
    ex = LayerExplorer(evaluation=result, evaluation_data=data, background=False)
    ex.tab = "trust"
    params = {"method": "GradCAM", "metric": "sparseness"}
    Recorder(ex).request(ex, "evaluation_worst", rid=1,
                         key=request_key("evaluation_worst", **params), **params)
    assert ex.shown_evaluation_worst is not None
    path = ex.save_html(tmp_path / "trust.html")
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    try:
        page.goto(path.as_uri())
        root = page.locator(".cnnviz-explorer")
        thumbs = panel(root, "trust").locator(".cnnviz-trust-thumb-button")
        thumbs.first.wait_for(timeout=30_000)
        assert root.get_attribute("data-kernel-silent") is None
        thumbs.first.click()
        page.wait_for_function("(r) => r.dataset.kernelSilent === 'true'",
                               arg=root.element_handle(), timeout=20_000)
        assert "Waiting for Python" in root.locator(".cnnviz-status").text_content()
        root.screenshot(path=str(artifacts / "trust_saved_page_click.png"))
    finally:
        context.close()
