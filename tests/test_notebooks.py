"""The course notebooks (``notebooks/0*.ipynb``): generated, well formed, and they run.

* ``build_notebooks.py`` regenerates exactly the committed notebooks (they never drift).
* Each notebook starts with its "Open in Colab" badge and the install cell, has no outputs,
  uses the ``python3`` kernelspec, and every exercise has a starting cell, a check and a
  collapsed solution (``test_exercises.py`` runs the checks).
* Each notebook executes headless with nbclient in the venv's python (one torch thread, no
  network) within a time budget, with no error and no stderr output; widget cells record a
  widget view whose state was saved, matplotlib cells produce non-blank images, and the numbers
  the prose relies on (pytorch-grad-cam parity, hook counts, completeness, ...) are checked.
"""

from __future__ import annotations

import ast
import base64
import importlib.util
import io
import itertools
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import tomllib

from cnnviz_widgets import LayerExplorer

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NAMES = [
    "00_quick_tour",
    "01_kernels",
    "02_feature_maps",
    "03_class_activation_maps",
    "04_saliency_and_activation_maximization",
    "05_dataset_examples",
    "06_detection_and_segmentation",
]
with open(ROOT / "pyproject.toml", "rb") as _fh:
    PROJECT = tomllib.load(_fh)["project"]  # the one source of the name and the repository
COLAB = ("https://colab.research.google.com/github/"
         + PROJECT["urls"]["Repository"].removeprefix("https://github.com/")
         + "/blob/main/notebooks/")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# the explorer and its focused views (one per view, :mod:`cnnviz_widgets.widgets.views`) ->
# the views a displayed one shows (None: those of views=..., or the model's defaults)
WIDGET_CLASSES = {
    cls.__name__: None if cls.only_view is None else [cls.only_view]
    for cls in (LayerExplorer, *LayerExplorer.__subclasses__())
}
WIDGET_VARIABLES = {"explorer", "mine", "maps_view"}
PLOT_CALLS = ("plt.show()", "plot_kernels(", "plot_feature_maps(", "show_cam(")
# Widget views each notebook must display (a lower bound: a cell that shows one must show it).
MIN_WIDGETS = {"00": 9, "01": 2, "02": 2, "03": 1, "04": 2, "05": 4, "06": 2}
CELL_TIMEOUT_S = 120
NOTEBOOK_BUDGET_S = 90  # 10-30 s each on one thread of a 2-core machine
PRETRAINED_CELL_S = 30  # a cell whose ImageNet download fails (offline) must not hang
CAM_METHODS = [
    "GradCAM", "GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM", "GradCAMElementWise",
    "EigenCAM", "EigenGradCAM", "KPCA_CAM", "FEM", "ScoreCAM", "AblationCAM", "FullGrad",
]


def load(name: str):
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def text_of(cell, stream: str = "stdout") -> str:
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.name == stream)


def cell_with(nb, snippet: str):
    """The one code cell whose source contains ``snippet``."""
    found = [c for c in code_cells(nb) if snippet in c.source]
    assert len(found) == 1, f"{len(found)} cells contain {snippet!r}"
    return found[0]


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found in {text!r}"
    return float(match.group(1))


# ---------------------------------------------------------------------------------------------
# The files
# ---------------------------------------------------------------------------------------------


def _build_module():
    spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOK_DIR / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build


def test_the_committed_notebooks_are_what_their_sources_give():
    build = _build_module()
    sources = sorted(p.stem for p in build.SOURCES.glob("[0-9][0-9]_*.py"))
    assert sources == NAMES
    on_disk = sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb"))
    assert on_disk == NAMES, "a notebook on disk has no source in notebooks/src"
    assert build.main(["--check"]) == 0, "run python notebooks/build.py"


def test_the_check_notices_a_stale_notebook(tmp_path, monkeypatch):
    build = _build_module()
    monkeypatch.setattr(build, "HERE", tmp_path)
    (tmp_path / "zh").mkdir()
    for name in NAMES:
        for folder in ("", "zh/"):
            (tmp_path / f"{folder}{name}.ipynb").write_text(
                (NOTEBOOK_DIR / f"{folder}{name}.ipynb").read_text(encoding="utf-8"),
                encoding="utf-8")
    assert build.main(["--check"]) == 0
    stale = tmp_path / f"{NAMES[1]}.ipynb"
    stale.write_text(stale.read_text(encoding="utf-8").replace("kernel", "kernle", 1),
                     encoding="utf-8")
    assert build.main(["--check"]) == 1


@pytest.mark.parametrize("name", NAMES)
def test_badge_install_cell_kernelspec_and_no_outputs(name):
    nb = load(name)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    first, second = nb.cells[0], nb.cells[1]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]" \
            f"({COLAB}{name}.ipynb)"
    assert badge in first.source
    assert second.cell_type == "code"
    assert ("import cnnviz_widgets\nexcept ImportError:\n"
            f"    %pip install -q {PROJECT['name']}\n") in second.source
    assert "output.enable_custom_widget_manager()" in second.source  # Colab's widget manager
    for cell in code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert "widgets" not in nb.metadata


@pytest.mark.parametrize("name", NAMES)
def test_every_exercise_has_a_collapsed_solution(name):
    """An exercise's cells (up to the next heading) end in a hidden solution; a code solution
    comes after the starting cell (tag ``exercise``) and the check (tag ``check``), in that
    order. tests/test_exercises.py runs the checks."""
    nb = load(name)
    exercises = [i for i, c in enumerate(nb.cells)
                 if c.cell_type == "markdown" and c.source.startswith("### Exercise")]
    assert exercises, f"{name} has no exercise"
    for i in exercises:
        cells = []
        for cell in nb.cells[i + 1:]:
            if cell.cell_type == "markdown" and cell.source.startswith("#"):
                break
            cells.append(cell)
        roles = [next((t for t in ("exercise", "check", "solution")
                       if t in c.metadata.get("tags", [])), None) for c in cells]
        hidden_code = [c for c, role in zip(cells, roles, strict=True) if role == "solution"]
        for solution in hidden_code:
            assert solution.cell_type == "code"
            assert solution.metadata.get("jupyter", {}).get("source_hidden") is True
            assert solution.metadata.get("cellView") == "form"
            assert solution.source.startswith("#@title Solution")
        if hidden_code:
            assert [r for r in roles if r] == ["exercise", "check", "solution"], (
                f"exercise in cell {i}: starting cell, check and solution, in that order")
        details = [c for c in cells if c.cell_type == "markdown"
                   and c.source.startswith("<details><summary>Solution</summary>")
                   and c.source.rstrip().endswith("</details>")]
        assert hidden_code or details, f"exercise in cell {i} has no solution after it"


# ---------------------------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------------------------

_EXECUTED: dict[str, tuple[object, float]] = {}


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """One torch thread in the kernel (as in the rest of the suite), a scratch working dir."""
    mp = pytest.MonkeyPatch()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        mp.setenv(var, "1")
    yield tmp_path_factory.mktemp("notebook_runs")
    mp.undo()


def execute(name: str, workdir: Path):
    """The executed notebook and its wall time (each notebook runs once per session)."""
    if name not in _EXECUTED:
        nb = load(name)
        client = nbclient.NotebookClient(
            nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
            resources={"metadata": {"path": str(workdir)}})
        start = time.monotonic()
        try:
            client.execute()
        except nbclient.exceptions.CellExecutionError as err:
            pytest.fail(f"{name} failed: {str(err)[-2000:]}")
        _EXECUTED[name] = (nb, time.monotonic() - start)
    return _EXECUTED[name]


@pytest.fixture(scope="module")
def hub_with_weights(tmp_path_factory):
    """torch's hub cache holding a stand-in file for every weights entry the notebooks ask for
    (random values under the real file names): the branch Colab takes, with no network."""
    import torch
    import torchvision

    home = tmp_path_factory.mktemp("torch_home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    detector_weights = torchvision.models.detection.FasterRCNN_MobileNet_V3_Large_FPN_Weights
    for name, weights, options in (
            ("resnet18", torchvision.models.ResNet18_Weights.DEFAULT, {}),
            ("vgg11", torchvision.models.VGG11_Weights.DEFAULT, {}),
            ("fasterrcnn_mobilenet_v3_large_fpn", detector_weights.DEFAULT,
             {"weights_backbone": None})):  # its ImageNet backbone would be downloaded
        torch.manual_seed(0)
        model = torchvision.models.get_model(name, weights=None, **options)
        torch.save(model.state_dict(), checkpoints / Path(weights.url).name)
    return home


@pytest.mark.parametrize("name", NAMES)
def test_the_pretrained_weights_branch_runs(name, hub_with_weights, kernel_env):
    nb = load(name)
    # this kernel's hub cache only (the other tests run offline without weights)
    nb.cells.insert(1, nbformat.v4.new_code_cell(
        f"import os\nos.environ['TORCH_HOME'] = {str(hub_with_weights)!r}"))
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": str(kernel_env)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{name} with ImageNet weights failed: {str(err)[-2000:]}")
    cells = [c for c in code_cells(nb) if "load_pretrained(" in c.source]
    assert cells, "every notebook shows the course's ImageNet model where it can be loaded"
    for cell in cells:  # the weights were found: no "No pretrained weights" line
        assert "No pretrained weights" not in text_of(cell), text_of(cell)
        assert not [o for o in cell.outputs if o.output_type == "error"]


def test_kernel_is_this_venv_python(kernel_env):
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3",
                              "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import sys\nprint(sys.executable)")]
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    assert text_of(nb.cells[0]).strip() == sys.executable


def last_expression(source: str) -> ast.expr | None:
    code = "\n".join(line[: len(line) - len(line.lstrip())] + "pass"
                     if line.lstrip().startswith("%") else line
                     for line in source.splitlines())  # IPython magics are not Python
    body = ast.parse(code).body
    if not body:
        return None
    last = body[-1]
    return last.value if isinstance(last, ast.Expr) else None


def expects_widget(source: str) -> str | None:
    """The widget class (or variable) a cell displays as its last expression, if any."""
    expr = last_expression(source)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        return expr.func.id if expr.func.id in WIDGET_CLASSES else None
    if isinstance(expr, ast.Name) and expr.id in WIDGET_VARIABLES:
        return expr.id
    return None


def cell_seconds(cell) -> float:
    """Wall time of an executed cell, from the timestamps nbclient records."""
    timing = cell.metadata["execution"]
    start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def png_is_drawn(b64: str) -> bool:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"), np.float32)
    return img.shape[0] > 50 and img.shape[1] > 50 and float(img.std()) > 10


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_within_budget_without_errors(name, kernel_env):
    nb, elapsed = execute(name, kernel_env)
    print(f"{name}: {elapsed:.1f} s")
    assert elapsed < NOTEBOOK_BUDGET_S, f"{name} took {elapsed:.0f} s"
    for cell in code_cells(nb):
        for out in cell.outputs:
            assert out.output_type != "error", f"{out.ename}: {out.evalue}"
            assert not (out.output_type == "stream" and out.name == "stderr"), (
                f"stderr in cell {cell.source[:60]!r}: {out.text[:500]}")
    install = nb.cells[1]
    import cnnviz_widgets

    # Already installed: the cell only prints the version (no pip run, no network).
    assert text_of(install) == f"cnnviz-widgets {cnnviz_widgets.__version__}\n"
    for cell in code_cells(nb):
        if "load_pretrained(" in cell.source:
            lines = [ln for ln in text_of(cell).splitlines() if "pretrained weights" in ln]
            # Offline: one line says the download failed and what is used instead, quickly.
            assert len(lines) == 1 and lines[0].startswith("No pretrained weights for "), lines
            assert cell_seconds(cell) < PRETRAINED_CELL_S, cell_seconds(cell)


@pytest.mark.parametrize("name", NAMES)
def test_widget_and_figure_cells_display_what_they_should(name, kernel_env):
    nb, _ = execute(name, kernel_env)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    shown = 0
    for cell in code_cells(nb):
        data = [o.get("data", {}) for o in cell.outputs]
        widget = expects_widget(cell.source)
        views = [d[WIDGET_MIME] for d in data if WIDGET_MIME in d]
        if widget is not None:
            assert len(views) == 1, f"no widget view from {cell.source[:80]!r}"
            model = state.get(views[0]["model_id"])
            assert model is not None, "the widget's state was not saved with the notebook"
            traits = model["state"]
            assert traits["error"] == "", traits["error"]
            assert traits["layers"] and traits["input_image"], "the explorer has no data"
            wanted = WIDGET_CLASSES.get(widget)
            if wanted is not None:
                assert traits["views"] == wanted, (widget, traits["views"])
            shown += 1
        else:
            assert not views, f"unexpected widget from {cell.source[:80]!r}"
        plots = any(call in cell.source for call in PLOT_CALLS)
        if plots and "load_pretrained(" not in cell.source:  # ImageNet cells: only online
            pngs = [d["image/png"] for d in data if "image/png" in d]
            assert pngs, f"no figure from {cell.source[:80]!r}"
            assert all(png_is_drawn(p) for p in pngs), f"blank figure from {cell.source[:80]!r}"
    assert shown >= MIN_WIDGETS[name[:2]]


# ---------------------------------------------------------------------------------------------
# The numbers the notebooks' text relies on
# ---------------------------------------------------------------------------------------------


def test_quick_tour_values(kernel_env):
    nb, _ = execute("00_quick_tour", kernel_env)
    drive = cell_with(nb, 'explorer.tab = "cam"')
    assert text_of(drive).splitlines()[-1] == "features.6 GradCAMPlusPlus 3"
    page = cell_with(nb, "save_html(")
    assert number(r"quick_tour_explorer\.html (\d+) KiB", text_of(page)) > 100
    solution = cell_with(nb, "explorer.image = demo.samples[7]")
    assert text_of(solution) == "features.11 mean features\n"


def test_kernels_values(kernel_env):
    nb, _ = execute("01_kernels", kernel_env)
    assert text_of(cell_with(nb, "k = kernels(vgg")).endswith("torch.Size([128, 64, 3, 3]) True\n")
    counts = text_of(cell_with(nb, "out_channels, in_channels, kh, kw = conv.weight.shape"))
    assert "kernels: 8192" in counts and "total:   73856" in counts
    table = text_of(cell_with(nb, "balance = w.sum(")).splitlines()[1:]
    assert len(table) == 16  # one row per first-layer filter of the demo model


def test_feature_map_values(kernel_env):
    nb, _ = execute("02_feature_maps", kernel_env)
    calls = text_of(cell_with(nb, "calls recorded"))
    assert calls == "calls recorded: 3\nhooks on the layer: 1\nafter remove(): 0\n"
    trap = text_of(cell_with(nb, "def recording(module)"))
    assert "hooks left: 0" in trap and "smallest recorded value: 0.0" in trap
    assert number(r"copy: (-?[\d.]+)", text_of(cell_with(nb, "copies = []"))) < 0
    assert "equal to the hook's copy: True" in text_of(cell_with(nb, "names = list(conv_layers"))
    assert text_of(cell_with(nb, "relus = {")).endswith("hooks left: 0\n")


def test_cam_values_and_pytorch_grad_cam_parity(kernel_env):
    nb, _ = execute("03_class_activation_maps", kernel_env)
    by_hand = text_of(cell_with(nb, "gradcam_by_hand ="))
    assert number(r"by hand, max difference: ([\d.e+-]+)", by_hand) <= 1e-6
    assert number(r"vs CAM, max difference: ([\d.e+-]+)", by_hand) <= 1e-5

    table = text_of(cell_with(nb, "candidates = {"))
    rows = {}
    for line in table.splitlines()[1:]:
        *label, dele, ins, drop, hits = line.split()
        rows[" ".join(label)] = (float(dele), float(ins), float(drop.rstrip("%")),
                                 int(hits.split("/")[0]))
    random_row = rows.pop("random map")
    assert len(rows) == 5
    for method, (dele, ins, drop, hits) in rows.items():  # "every method beats the random map"
        assert dele < random_row[0] and ins > random_row[1], method
        assert drop < random_row[2] and hits > random_row[3], method

    parity = text_of(cell_with(nb, "ClassifierOutputTarget(k)"))
    if importlib.util.find_spec("pytorch_grad_cam") is None:
        assert "comparison skipped" in parity
        return
    found = dict(re.findall(r"^(\w+)\s+max \|ours - pytorch-grad-cam\| = ([\d.e+-]+)",
                            parity, re.M))
    assert sorted(found) == sorted(CAM_METHODS)
    for method, value in found.items():
        assert float(value) < 1e-5, f"{method}: {value}"
    assert number(r"largest difference over all methods: ([\d.e+-]+)", parity) < 1e-5
    signs = re.findall(r"EigenCAM .*reference signs \[([-\d, ]+)\]", parity)
    assert signs and set(signs[0].replace(" ", "").split(",")) <= {"1", "-1"}

    same = text_of(cell_with(nb, "give the same map"))
    assert "EigenCAM  targets 0 and 3 give the same map: True" in same
    assert "GradCAM   targets 0 and 3 give the same map: False" in same
    assert number(r"relative difference: ([\d.e+-]+)",
                  text_of(cell_with(nb, "all_acts = feature_maps"))) <= 1e-5


def test_saliency_and_actmax_values(kernel_env):
    nb, _ = execute("04_saliency_and_activation_maximization", kernel_env)
    assert number(r"hand-made map: ([\d.e+-]+)", text_of(cell_with(nb, "by_hand ="))) <= 1e-6
    captum = text_of(cell_with(nb, "GuidedBackprop"))
    if importlib.util.find_spec("captum") is not None:
        assert number(r"captum\|: ([\d.e+-]+)", captum) <= 1e-5
    ig = text_of(cell_with(nb, "sum of attributions"))
    total = number(r"sum of attributions (-?[\d.]+)", ig)
    change = number(r"score change (-?[\d.]+)", ig)
    assert abs(total - change) < 0.1 * abs(change)  # completeness, 50 Gauss-Legendre nodes

    readable = text_of(cell_with(nb, "def roughness"))
    act = dict(re.findall(r"^(plain|regularised|samples)\s+(-?[\d.]+)", readable, re.M))
    rough = dict(re.findall(r"^(plain|regularised|samples)\s+-?[\d.]+\s+([\d.]+)",
                            readable, re.M))
    # "both excite their channels far more than any sample; the regularised are smoother"
    assert float(act["plain"]) > float(act["samples"]) + 1
    assert float(act["regularised"]) > float(act["samples"]) + 1
    assert float(rough["regularised"]) < float(rough["plain"])

    corr = dict(re.findall(r"^(\w+)\s+correlation (-?[\d.]+)",
                           text_of(cell_with(nb, 'other = classes.index("ring")')), re.M))
    assert float(corr["guided"]) > max(float(corr["vanilla"]),
                                       float(corr["integrated_gradients"]))


def test_dataset_example_values(kernel_env):
    nb, _ = execute("05_dataset_examples", kernel_env)
    # "Grad-CAM's maps keep what the network needs (an average drop of about 16%, against
    # about 84% for the vanilla gradient)": the summary printed by evaluate's cell
    rows = re.findall(r"^(\w+)\s+(\w+)\s+mean\s+([\d.]+)\s+95% interval \[([\d.]+), ([\d.]+)\]",
                      text_of(cell_with(nb, "evaluation = evaluate(")), re.M)
    means = {(m, k): float(v) for m, k, v, _, _ in rows}
    assert len(rows) == 4 and all(float(lo) <= float(v) <= float(hi) for _, _, v, lo, hi in rows)
    assert abs(means["GradCAM", "average_drop"] - 16) < 3, means
    assert abs(means["vanilla", "average_drop"] - 84) < 3, means
    table = text_of(cell_with(nb, "by_depth = {"))
    purity = {name: float(value) for name, value in
              re.findall(r"^(features\.\d+)\s+\d+\s+\d+ px\s+([\d.]+)$", table, re.M)}
    assert list(purity) == ["features.0", "features.3", "features.6", "features.9",
                            "features.11"], table
    chance = number(r"chance \(9 random images\)\s+([\d.]+)", table)
    values = list(purity.values())
    # "the first two conv layers are at chance ... from features.6 on, purity rises with depth,
    # to above 0.8 at the last conv layer" (0.312, 0.313, 0.457, 0.696, 0.835; chance 0.311)
    assert abs(values[0] - chance) < 0.05 and abs(values[1] - chance) < 0.05, table
    assert all(b > a for a, b in itertools.pairwise(values[1:])), table
    assert values[-1] > 0.8 and values[-1] > values[0] + 0.3, table
    folder = text_of(cell_with(nb, "folder_examples = top_examples("))
    assert "loaded equals computed: True" in folder and "48 images from folder" in folder
    assert "8 classes" not in folder and "'circle', 'crescent'" in folder  # sub-folder names
    cli = text_of(cell_with(nb, '"cnnviz_widgets.demo:demo_model"'))
    assert cli.startswith("exit status 0 Wrote the top 4 examples") and cli.endswith(
        "same as in the notebook: True\n"), cli
    assert "torchrun" in text_of(cell_with(nb, '"--help"'))


def test_detection_and_segmentation_values(kernel_env):
    nb, _ = execute("06_detection_and_segmentation", kernel_env)
    returned = text_of(cell_with(nb, "outputs = detector.model(x)"))
    assert returned.startswith("list of 1 dict: {'boxes': ("), returned
    scores = [float(v) for v in re.findall(r"^\w+\s+score ([\d.]+)  box", returned, re.M)]
    assert len(scores) >= 2 and min(scores) >= 0.5, returned
    # "its best match is the box itself, with IoU 1": the target's score is 1 + the box's score
    score = text_of(cell_with(nb, "score of the target"))
    total = number(r"score of the target: ([\d.]+)", score)
    assert abs(total - 1 - number(r"the box's score ([\d.]+)", score)) < 2e-4, score
    mismatch = text_of(cell_with(nb, "except TargetError as err"))
    assert mismatch.startswith("TargetError: BoxTarget(") and "matches no detection" in mismatch
    plain = text_of(cell_with(nb, "normalize_in_boxes=True)\nrow, col"))
    assert "default layer: backbone.body.layer3" in plain
    assert re.search(r"the plain map's maximum is inside the box: (True|False)\n", plain), plain
    tower = text_of(cell_with(nb, "tower_map = cam("))
    assert "at head.classification_head.conv: the maximum is inside the box: True" in tower
    # K boxes: K forward passes one call at a time, one with cam_per_target, the same maps
    counts = text_of(cell_with(nb, "calls.clear()"))
    k = int(number(r"once per box: (\d+) maps", counts))
    assert k >= 2 and f"once per box: {k} maps, {k} forward passes" in counts, counts
    assert f"cam_per_target:    {k} maps, 1 forward pass\n" in counts, counts
    assert number(r"between the maps: ([\d.e+-]+)", counts) <= 1e-6
    parity = text_of(cell_with(nb, "FasterRCNNBoxScoreTarget(d.labels"))
    if importlib.util.find_spec("pytorch_grad_cam") is None:
        assert "comparison skipped" in parity
    else:
        assert number(r"^(\d+) boxes in 6 scenes", parity) >= 10, parity
        assert number(r"max \|ours - pytorch-grad-cam\| = ([\d.e+-]+)", parity) < 1e-5
    # "Boxes that moved by a few millionths of a pixel can get a different map, even a
    # completely different one"
    moved = re.findall(r"^\s+\d+\s+\d+\s+([\d.e+-]+)\s+([\d.]+)$",
                       text_of(cell_with(nb, "from_batch.targets()")), re.M)
    assert len(moved) == 6, moved
    assert max(float(px) for px, _ in moved) < 1e-4
    assert max(float(change) for _, change in moved) > 0.5, moved
    # segmentation: the region is the first shape's predicted pixels
    region = text_of(cell_with(nb, "region = RegionTarget(shape, pred == shape)"))
    assert number(r"mask 128 x 128 with (\d+) px", region) > 100, region
    # "the raw map is weaker than the predicted class's", the score of the absent class low
    absent = re.findall(r"^(\w+)\s+over the \w+'s region: score\s+(-?[\d.]+)\s+raw map max "
                        r"([\d.]+)$", text_of(cell_with(nb, "absent = next(")), re.M)
    assert len(absent) == 2, absent
    (_, present_score, present_max), (_, absent_score, absent_max) = absent
    assert float(absent_score) < 0 < float(present_score)
    assert float(absent_max) < float(present_max)
    # exercise 1: the plain Grad-CAM map of a box peaks inside it (issue 16: in >= 90% of cases)
    inside = text_of(cell_with(nb, "peaks.append((int(row), int(col)))"))
    hits, boxes = (int(number(p, inside)) for p in (r"inside its box: (\d+) of",
                                                      r"inside its box: \d+ of (\d+) boxes"))
    assert boxes >= 10 and hits >= 0.9 * boxes, inside
    # exercise 2: by hand equals the targets
    by_hand = text_of(cell_with(nb, "by_hand = float((logits[0, shape] * mask).sum())"))
    values = re.findall(r"(-?[\d.]+) and (-?[\d.]+)", by_hand)
    assert len(values) == 2 and values[0] == values[1], by_hand
    # exercise 3: every true box of the first scene has a detection above BoxTarget's 0.5
    ious = text_of(cell_with(nb, "def iou(a, b)"))
    best = [float(v) for v in re.findall(r"[\d.]+", ious.split(":", 1)[1])]
    assert best and min(best) > 0.5, ious


GLOSSARY = {"卷积核": "kernel", "特征图": "feature map", "类激活图": "class activation map",
            "显著图": "saliency map", "钩子": "hook", "感受野": "receptive field",
            "梯度上升": "gradient ascent"}


@pytest.mark.parametrize("name", NAMES)
def test_chinese_notebook_has_the_same_code_and_translated_text(name):
    en = load(name)
    zh = nbformat.read(NOTEBOOK_DIR / "zh" / f"{name}.ipynb", as_version=4)
    nbformat.validate(zh)
    assert [c.source for c in code_cells(zh)] == [c.source for c in code_cells(en)]
    assert [c.cell_type for c in zh.cells] == [c.cell_type for c in en.cells]
    assert f"{COLAB}zh/{name}.ipynb" in zh.cells[0].source
    for a, b in zip(en.cells[1:], zh.cells[1:], strict=True):  # cell 0: its own badge link
        if a.cell_type == "markdown":
            assert re.search(r"[\u4e00-\u9fff]", b.source), b.source[:80]  # Chinese text
            # code, math and links survive translation
            for token in re.findall(r"`[^`\n]+`|\$[^$\n]+\$|\]\([^)\s]+\)", a.source):
                assert token in b.source, (token, b.source[:200])


def test_chinese_glossary_has_the_course_terms():
    text = (NOTEBOOK_DIR / "src" / "zh" / "GLOSSARY.md").read_text(encoding="utf-8")
    for zh, en in GLOSSARY.items():
        assert re.search(rf"{zh}\s*\|\s*{en}", text, re.I), (zh, en)
