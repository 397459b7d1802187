"""Model-zoo sweep: every torchvision classification family works end to end, values checked.

One random-init member per family (see ``tools/zoo_cases.py``, shared with the docs table
``tools/zoo_table.py`` -> ``docs/zoo.md``): ``conv_layers``, ``feature_maps``, GradCAM at the
default layer, ``cam_per_layer``, vanilla saliency and the explorer's Python side, each checked
against an independent reference, and the model left exactly as it was.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the tools/ package lives at the repository root
    sys.path.insert(0, str(ROOT))

from tools.zoo_cases import CASES, CHECKS, FAMILIES, ZooRun  # noqa: E402

from .model_state import Fingerprint  # noqa: E402


@pytest.mark.parametrize("case", CASES, ids=FAMILIES)
def test_family(case):
    run = ZooRun.start(case)
    before = Fingerprint.of(run.model)
    failures = []
    for name, check in CHECKS.items():
        try:
            check(run)
        except Exception as err:
            failures.append(f"{name}: {type(err).__name__}: {err}")
    assert not failures, "\n".join(failures)
    before.assert_same(run.model)


def test_docs_table_lists_every_family():
    table = (ROOT / "docs" / "zoo.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")}
    missing = [f for f in FAMILIES if f"`{f}`" not in rows]
    assert not missing, f"docs/zoo.md lacks {missing}: run python tools/zoo_table.py"
    header = next(line for line in table.splitlines() if line.startswith("| family"))
    assert all(f" {c} " in header for c in CHECKS), header


@pytest.mark.parametrize(("size", "expected"), [(75, "Mixed_6e"), (299, "Mixed_7c")])
def test_default_layer_stays_on_the_main_path(size, expected):
    """At 75 px Inception v3's Mixed_7a pools to 1 x 1, so the last grid is inside one of its
    branches; the default is the last grid on the main path instead (Mixed_7c at 299 px, the
    layer pytorch-grad-cam's docs use)."""
    import torch
    import torchvision

    from cnnviz_widgets.engine.dryrun import default_layer

    torch.manual_seed(0)
    model = torchvision.models.inception_v3(weights=None, aux_logits=False,
                                            init_weights=False).eval()
    assert default_layer(model, torch.zeros(1, 3, size, size)) == expected
