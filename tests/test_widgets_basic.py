"""Widget helpers without a browser: RGB payloads, feature-map progress, the cell progress bar."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnviz_widgets.widgets.serialize import rgb_stack


def test_rgb_stack_payload():
    imgs = np.zeros((2, 3, 4, 3), np.uint8)
    assert rgb_stack(imgs)["shape"] == [2, 3, 4, 3]
    with pytest.raises(ValueError):
        rgb_stack(imgs.astype(np.float32))


def test_feature_maps_reports_progress_per_recorded_layer():
    import torchvision

    from cnnviz_widgets import conv_layers, feature_maps

    torch.manual_seed(0)
    model = torchvision.models.vgg11(weights=None).eval()
    names = list(conv_layers(model))[:4]
    calls: list[tuple[int, int]] = []
    maps = feature_maps(model, torch.rand(1, 3, 32, 32), names,
                        progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert list(maps) == names


def test_cell_progress_appears_only_for_slow_work_and_is_removed():
    from unittest import mock

    import ipywidgets

    from cnnviz_widgets.widgets.progress import CellProgress

    shown: list = []
    with mock.patch.object(ipywidgets.IntProgress, "close", autospec=True) as close:
        with CellProgress("pass", enabled=True, delay=0.0, show=shown.append) as bar:
            bar(1, 4)
            bar(3, 4)
            assert len(shown) == 1 and shown[0].value == 3 and shown[0].max == 4
            close.assert_not_called()
        close.assert_called_once_with(shown[0])  # closed: its view leaves the cell
    quiet: list = []
    with CellProgress("pass", enabled=True, delay=60.0, show=quiet.append) as bar:
        bar(1, 4)
    with CellProgress("pass", enabled=False, delay=0.0, show=quiet.append) as bar:
        bar(1, 4)
    assert quiet == []


def test_slow_first_pass_shows_a_progress_bar_in_the_cell_in_a_real_kernel():
    """In a kernel, a first pass slower than 0.5 s displays an IntProgress under the cell."""
    import nbformat
    from nbclient import NotebookClient

    code = (
        "import time, torch\n"
        "from torch import nn\n"
        "from cnnviz_widgets import LayerExplorer\n"
        "torch.manual_seed(0)\n"
        "class Slow(nn.Module):\n"
        "    def forward(self, x):\n"
        "        time.sleep(0.25)\n"
        "        return x\n"
        "model = nn.Sequential(*[m for _ in range(4) for m in (nn.Conv2d(3, 3, 3, padding=1),"
        " Slow())], nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)).eval()\n"
        "ex = LayerExplorer(model, torch.rand(3, 16, 16), size=16)\n"
        "print('LAYERS', len(ex.layers))\n"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    views = [o for o in outputs if o.output_type == "display_data"
             and "application/vnd.jupyter.widget-view+json" in o.data]
    assert len(views) == 1, outputs  # the progress bar (the explorer itself is not displayed)
    assert any("LAYERS 4" in o.get("text", "") for o in outputs if o.output_type == "stream")
