"""The Trust tab in a real JupyterLab 4 with headless Chromium, on the demo explorer with an
evaluation over generated shapes: a sanity check (maps in a row, scores, verdict) equal to the
engine's, the evaluation table sorted by a header click, and a drill-down to the worst images
equal to sorting the per-image values. Screenshot: test-artifacts/trust.png.
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
EVALUATE = ("evaluate(demo_model(allow_untrained=True).model, ShapeImages(24, seed=5), "
            "['GradCAM', 'vanilla'], ['sparseness', 'deletion_auc'], batch_size=12, n_boot=200)")
CELLS = [SETUP + f"result = {EVALUATE}\ndemo = LayerExplorer(evaluation=result)\ndemo"]


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
    try:
        page.wait_for_selector(".cnnviz-explorer", timeout=180_000)
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

    # drill-down: GradCAM's worst images on sparseness (higher is better: lowest first)
    table.locator("tr[data-method='GradCAM'][data-metric='sparseness']").click()
    items = tab.locator(".cnnviz-trust-worst-item")
    items.first.wait_for(timeout=60_000)
    values = result.value("GradCAM", "sparseness")
    order = sorted(range(len(values)), key=lambda i: values[i])[:6]
    assert [int(items.nth(i).get_attribute("data-index")) for i in range(items.count())] == [
        int(result.indices[i]) for i in order]
    assert "keeps no images" in tab.locator(".cnnviz-trust-worst").text_content()
    tab.screenshot(path=str(artifacts / "trust.png"))
