"""The exercises of the course notebooks (``notebooks/0*.ipynb``) teach, and their checks work.

An exercise is a ``### Exercise`` heading followed by a starting cell (tag ``exercise``, the
answers still ``None``), a check cell (tag ``check``, plain ``assert``s) and a hidden solution
(tag ``solution``). For each one:

* the check, run right after the starting cell, prints a one-line hint and raises nothing (so
  "Run all" runs);
* the check raises ``AssertionError`` for each deliberately wrong answer in :data:`WRONG`;
* the check passes after the solution.

And statically (``ast``): no cell uses a name that only a solution cell defines, so each
exercise can be done, and each solution run, without the others' solutions.

The notebooks' other code cells run in this process, in order, in one namespace (one torch
thread, matplotlib's Agg backend), offline: ``load_pretrained`` returns ``None`` as it does
without network, so the random-weights branch runs. A widget that a cell only displays (its
last expression) is not built. One pass per notebook computes every outcome; the tests read it.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import pytest

nbformat = pytest.importorskip("nbformat")

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
WIDGETS = {"LayerExplorer", "KernelsView", "FeatureMapsView", "CamView", "SaliencyView",
           "ActivationMaxView", "DrawingPad", "DatasetExamplesView"}
HEADING = re.compile(r"### Exercise (\d+)")
WIDGET_STATE = {("00", 2)}
"""Exercises answered by setting a widget's attributes (their check reads the widget)."""

CAM_MAPS = """\
_a = feature_maps(model, xs, ["features.12"])["features.12"]
cam_maps = np.stack([torch.relu(torch.einsum("c,nchw->nhw", w[k], _a)).numpy() for k in range(8)])
gradcam_maps = np.stack([64 * cam(model, xs, "features.12", "GradCAM", target=k, raw=True)
                         for k in range(8)])
"""
CASCADE = """\
_twin = copy.deepcopy(model)
_modules = dict(_twin.named_modules())
_g0, _c0 = guided_map(model), gradcam_map(model)
guided_scores, gradcam_scores = [], []
torch.manual_seed(1)
for name in layers_from_the_output:
    torch.manual_seed(1)
    _modules[name].reset_parameters()
    guided_scores.append(rank_correlation(_g0, guided_map(_twin)))
    gradcam_scores.append(rank_correlation(_c0, gradcam_map(_twin)))
"""
FIXED_INPUT = """\
_rgb = np.float32(Image.open("cat.png").convert("RGB").resize((224, 224))) / 255
_mean, _std = np.float32(IMAGENET_MEAN), np.float32(IMAGENET_STD)
rgb_img = _rgb
input_tensor = torch.from_numpy((_rgb - _mean) / _std).permute(2, 0, 1).unsqueeze(0)
target_layers = [vgg11_net.features[-2]]
with torch.no_grad():
    pred = int(vgg11_net(input_tensor).argmax())
grayscale_cam = cam(vgg11_net, input_tensor, target_layers[0], "GradCAM", target=pred)[0]
"""

HOOKS = """\
handles = [m.register_full_backward_hook(guided_hook)
           for m in twin.modules() if isinstance(m, torch.nn.ReLU)]"""
GUIDED = f"""\
def guided_hook(module, grad_input, grad_output):
    return (grad_input[0].clamp(min=0),)
{HOOKS}
leaf = x.clone().requires_grad_(True)
(guided_hooked,) = torch.autograd.grad(twin(leaf)[0, target], leaf)
for h in handles:
    h.remove()
"""
ASCENT = """\
image, objectives = start.clone(), []
for _ in range(30):
    leaf = image.detach().requires_grad_(True)
    objective = trunk(leaf)[0, channel].mean()
    (g,) = torch.autograd.grad(objective, leaf)
    objectives.append(objective.item())
    image = image + g / (g.pow(2).mean().sqrt() + 1e-5)
ascent_image = image.detach()
"""

PUREST = """\
_layer = "features.11"
_l = examples.labels(_layer)
_p = purity(_l)
_mean = examples.scores(_layer).mean(dim=1)
_pure = torch.nonzero(_p == _p.max())[:, 0]
best_channel = int(_pure[_mean[_pure].argmax()])
best_class = examples.classes[int(_l[best_channel, 0])]
"""

PEAKS = """\
peaks, hits = [], []
for _i, _d in enumerate(scene_detections):
    _maps = cam_per_target(detector.model, detector.samples[_i:_i + 1], tower, "GradCAM",
                           _d.targets())
    for _m, (_x1, _y1, _x2, _y2) in zip(_maps, _d.boxes.tolist()):
        _row, _col = np.unravel_index(_m.argmax(), _m.shape)
        peaks.append((int(_row), int(_col)))
        hits.append(bool(_x1 <= _col + 0.5 <= _x2 and _y1 <= _row + 0.5 <= _y2))
"""
IOU = """\
def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return w * h / (area(a) + area(b) - w * h)
best_ious = [max(iou(t, d) for d in found.boxes.tolist())
             for t in detector.sample_boxes[0].tolist()]
"""

# Deliberately wrong answers, per (notebook number, exercise number): each is run after the
# starting cell, and the check must then raise AssertionError. Typical mistakes, so that the
# check's messages are exercised too.
WRONG: dict[tuple[str, int], list[str]] = {
    ("00", 1): ['runner_up = "star"',                       # the top class
                'runner_up = "circle"'],
    ("00", 2): ["explorer.image = demo.samples[7]\nexplorer.layer = 'features.9'\n"
                "explorer.order = 'mean'\nexplorer.tab = 'features'",
                "explorer.image = demo.samples[7]\nexplorer.layer = 'features.11'\n"
                "explorer.order = 'index'\nexplorer.tab = 'features'"],
    ("01", 1): ["n_kernels, n_parameters = 128, 73856",      # filters, not kernels
                "n_kernels, n_parameters = 8192, 73728"],    # biases left out
    ("01", 2): ["balance = w.sum(dim=(1, 2, 3)) / w.abs().sum(dim=(1, 2, 3))\n"  # no abs
                "vertical = (w.mean(dim=1) * sobel_x).sum(dim=(1, 2))\n"
                "horizontal = (w.mean(dim=1) * sobel_x.T).sum(dim=(1, 2))",
                "balance = w.sum(dim=(1, 2, 3)).abs() / w.abs().sum(dim=(1, 2, 3))\n"
                "vertical = horizontal = (w.mean(dim=1) * sobel_x).sum(dim=(1, 2))"],
    ("01", 3): ["colour_share = w.mean(dim=1).flatten(1).norm(dim=1) / w.flatten(1).norm(dim=1)"],
    ("01", 4): ["balance_v = wv.sum(dim=(1, 2, 3)).abs() / wv.abs().sum(dim=(1, 2, 3))\n"
                "colour_v = balance_v"],
    ("02", 1): ["summary = {n: (m.shape[2], m.shape[1], m.shape[3], (m > 0).float().mean().item())"
                "\n           for n, m in feature_maps(model, x, names).items()}",
                "summary = {n: (*m.shape[1:], (m >= -1e9).float().mean().item())"
                "\n           for n, m in feature_maps(model, x, names).items()}"],
    ("02", 2): ["star_top = circle_top = [0, 1, 2]",
                "_m = feature_maps(model, x, ['features.11'])['features.11'][0].mean(dim=(1, 2))\n"
                "star_top = circle_top = _m.topk(3).indices.tolist()"],  # the star's for both
    ("02", 3): ["shapes = {n: tuple(m.shape) for n, m in feature_maps(model, x, names).items()}",
                # right shapes, but a hook left on (a copy of) the model
                "import copy\nmodel = copy.deepcopy(model)\n"
                "model.features[1].register_forward_hook(lambda module, inputs, output: None)\n"
                "shapes = {n: tuple(m.shape) for n, m in "
                "feature_maps(model, x, relu_names).items()}"],
    ("03", 1): ["strength = {n: float(cam(model, x7, 'features.12', 'GradCAM', target=k).max())"
                "\n            for k, n in enumerate(classes)}"],  # the scaled maps: all 1
    ("03", 2): ['same = {"EigenCAM": False, "GradCAM": False}',
                'same = {"EigenCAM": True, "GradCAM": True}'],
    ("03", 3): [CAM_MAPS + "cam_maps = np.stack([torch.einsum('c,nchw->nhw', w[k], _a).numpy()"
                "\n                     for k in range(8)])",            # the ReLU left out
                CAM_MAPS + "gradcam_maps = gradcam_maps / 64"],         # the factor left out
    ("03", 4): [CASCADE.replace(                                       # one layer at a time
                    "    torch.manual_seed(1)", "    _twin = copy.deepcopy(model)\n"
                    "    _modules = dict(_twin.named_modules())\n    torch.manual_seed(1)"),
                CASCADE.replace("    torch.manual_seed(1)\n", ""),    # seeded once only
                "model = copy.deepcopy(model)\n"                        # on the model itself
                + CASCADE.replace("copy.deepcopy(model)", "model")],
    ("03", 5): [FIXED_INPUT.replace("(_rgb - _mean) / _std", "_rgb"),  # not normalised
                FIXED_INPUT.replace("features[-2]", "features[-1]"),    # the max-pool
                FIXED_INPUT.replace("features[-2]", "features[-3]"),    # the conv, in place
                FIXED_INPUT + "pred = 0"],
    ("03", 6): ["batch_sizes = [1] + [16] * 8\nvgg11_calls = 33",        # batch_size not set
                "batch_sizes = [1, 32, 32, 32, 32]\nvgg11_calls = 32",   # the first call missed
                "import copy\ntwin_for_scorecam = copy.deepcopy(twin_for_scorecam)\n"
                "twin_for_scorecam.register_forward_hook(lambda module, inputs, output: None)\n"
                "batch_sizes = [1, 32, 32, 32, 32]\nvgg11_calls = 33"],  # the hook left on
    ("04", 1): ["gaps = {n: float(saliency(model, x, target, 'integrated_gradients', "
                "n_steps=n).sum())\n        for n in (2, 5, 20, 100)}"],  # the sums, not gaps
    ("04", 2): ["correlations = {m: 1.0 for m in ('vanilla', 'guided', 'integrated_gradients')}",
                # the signed attributions instead of the maps
                "correlations = {m: float(np.corrcoef(saliency(model, x, target, m).ravel(),\n"
                "    saliency(model, x, classes.index('ring'), m).ravel())[0, 1])\n"
                "    for m in ('vanilla', 'guided', 'integrated_gradients')}"],
    ("04", 3): ["class_images = regular[:4]",                            # features.9's images
                "class_images = activation_max(model, 'classifier.0', [0, 1, 2, 3], steps=128,"
                " size=64, seed=0, mean=demo.mean, std=demo.std)"],      # indices 0-3, not ring
    ("04", 4): ["twin = copy.deepcopy(twin)\n"                            # hooks left on (a copy)
                + GUIDED.replace("for h in handles:\n    h.remove()\n", ""),
                GUIDED.replace("return (grad_input[0].clamp(min=0),)", "return None"),
                GUIDED.replace(".clamp(min=0)", ".abs()"),                # |g|, not relu(g)
                GUIDED.replace(HOOKS, "handles = []")],                   # hooks never put on
    ("04", 5): [ASCENT.replace("image + g", "image - g"),                # descent
                ASCENT.replace(" + 1e-5", " + 1"),                        # another step size
                ASCENT.replace("for _ in range(30)", "for _ in range(29)")],
    ("05", 1): ["distinct = {n: purity(examples.labels(n)).mean().item()\n"  # the purity
                "            for n in examples.layers}",
                "distinct = {n: float(examples.labels(n).unique().numel())\n"  # the whole layer
                "            for n in examples.layers}",
                "distinct = {n: sum(len(set(r)) for r in examples.indices(n).tolist())\n"
                "               / examples.channels(n) for n in examples.layers}"],  # images
    ("05", 2): [PUREST.replace("_pure[_mean[_pure].argmax()]", "_p.argmax()"),  # first pure
                PUREST.replace("_mean = examples.scores(_layer).mean(dim=1)",    # top-1 score
                               "_mean = examples.scores(_layer)[:, 0]"),
                PUREST.replace('"features.11"', '"features.9"'),               # another layer
                PUREST.replace("examples.classes[int(_l[best_channel, 0])]",     # the index
                               "int(_l[best_channel, 0])")],
    ("06", 1): [PEAKS.replace("_col + 0.5 <= _x2 and _y1 <= _row", "_row + 0.5 <= _x2 and "
                              "_y1 <= _col"),                               # x and y swapped
                PEAKS.replace("(int(_row), int(_col))", "(int(_col), int(_row))"),  # (x, y)
                PEAKS.replace("enumerate(scene_detections)",                # the first scene
                              "enumerate(scene_detections[:1])"),
                PEAKS.replace("], tower,", "], None,")],                     # the default layer
    ("06", 2): ["by_hand = float((logits[0, shape] * (pred == shape)).mean())\n"  # the mean
                "absent_by_hand = float((logits[0, absent] * (pred == shape)).mean())",
                "_p = logits[0].softmax(dim=0)\n"                           # probabilities
                "by_hand = float((_p[shape] * (pred == shape)).sum())\n"
                "absent_by_hand = float((_p[absent] * (pred == shape)).sum())",
                "_true = segmenter.sample_masks[0] == shape\n"              # the true mask
                "by_hand = float((logits[0, shape] * _true).sum())\n"
                "absent_by_hand = float((logits[0, absent] * _true).sum())"],
    ("06", 3): [IOU.replace("max(0.0, ", "("),                         # no clamp at 0
                IOU.replace(" - w * h)", ")"),                             # union counts it twice
                IOU.replace("max(iou(t, d) for d in found.boxes.tolist())",  # first detection
                            "iou(t, found.boxes.tolist()[0])")],
}


# ---------------------------------------------------------------------------------------------
# Reading the notebooks
# ---------------------------------------------------------------------------------------------


def load(name: str):
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


@dataclass
class Exercise:
    notebook: str
    number: int
    start: str = ""
    check: str = ""
    solution: str = ""
    check_index: int = -1  # index of the check cell in the notebook's cells


def exercises(nb, name: str) -> list[Exercise]:
    """The notebook's exercises, in order, with the sources of their three code cells."""
    found: list[Exercise] = []
    current: Exercise | None = None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            match = HEADING.match(cell.source)
            if match:
                current = Exercise(name[:2], int(match.group(1)))
                found.append(current)
            elif cell.source.startswith("#"):
                current = None
            continue
        role = next((t for t in ("exercise", "check", "solution") if t in tags(cell)), None)
        if role is None:
            continue
        assert current is not None, f"{name}: a {role} cell outside an exercise: {cell.source!r}"
        attribute = {"exercise": "start", "check": "check", "solution": "solution"}[role]
        assert not getattr(current, attribute), f"{name}, exercise {current.number}: two {role}s"
        setattr(current, attribute, cell.source.removeprefix(SOLUTION_TITLE))
        if role == "check":
            current.check_index = i
    return found


SOLUTION_TITLE = "#@title Solution (double-click to show the code)\n"
ALL = [(name, ex.number) for name in NAMES for ex in exercises(load(name), name)]


def python(source: str) -> str:
    """A cell's source as Python: IPython magics (``%pip``) become ``pass``."""
    return "\n".join(line[: len(line) - len(line.lstrip())] + "pass"
                     if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def without_displayed_widget(source: str) -> ast.Module:
    """The cell's code, less a last expression that only builds a widget to display it."""
    tree = ast.parse(python(source))
    last = tree.body[-1] if tree.body else None
    if (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
            and isinstance(last.value.func, ast.Name) and last.value.func.id in WIDGETS):
        tree.body.pop()
    return tree


# ---------------------------------------------------------------------------------------------
# Running them: one pass per notebook, every outcome recorded
# ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    error: BaseException | None
    stdout: str
    where: str = ""  # which source raised


@dataclass
class Outcomes:
    placeholder: Outcome | None = None
    wrong: list[Outcome] = field(default_factory=list)
    solved: Outcome | None = None


def attempt(namespace: dict, steps: list[tuple[str, str]]) -> Outcome:
    """Run ``steps`` ``(label, source)`` in a copy of ``namespace``; the first error stops."""
    import matplotlib.pyplot as plt

    scope = dict(namespace)
    out = io.StringIO()
    try:
        for label, source in steps:
            out.truncate(0)
            out.seek(0)
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(python(source), f"<{label}>", "exec"), scope)
            except Exception as err:
                return Outcome(err, out.getvalue(), label)
        return Outcome(None, out.getvalue())
    finally:
        plt.close("all")


_RUNS: dict[str, dict[int, Outcomes]] = {}


@contextlib.contextmanager
def working_directory(path: Path):
    """``contextlib.chdir`` for Python 3.10."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def offline_load_pretrained(name, weights="DEFAULT", fallback=""):
    tail = f": {fallback}" if fallback else ""
    print(f"No pretrained weights for {name} (offline in this test){tail}")


def run(name: str, workdir: Path) -> dict[int, Outcomes]:
    """Execute ``name``'s non-solution cells; at each check cell record the three outcomes."""
    if name in _RUNS:
        return _RUNS[name]
    import matplotlib.pyplot as plt
    import torch

    import cnnviz_widgets

    nb = load(name)
    by_check = {ex.check_index: ex for ex in exercises(nb, name)}
    namespace: dict = {"__name__": "__main__"}
    results: dict[int, Outcomes] = {}
    original = cnnviz_widgets.load_pretrained
    cnnviz_widgets.load_pretrained = offline_load_pretrained
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with working_directory(workdir), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code" or "solution" in tags(cell):
                    continue
                if i in by_check:
                    ex = by_check[i]
                    outcomes = Outcomes()
                    outcomes.placeholder = attempt(namespace, [("check", ex.check)])
                    for wrong in WRONG.get((name[:2], ex.number), []):
                        outcomes.wrong.append(
                            attempt(namespace, [("wrong answer", wrong), ("check", ex.check)]))
                    outcomes.solved = attempt(
                        namespace, [("solution", ex.solution), ("check", ex.check)])
                    results[ex.number] = outcomes
                    continue
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(without_displayed_widget(cell.source), f"<{name} cell {i}>",
                                 "exec"), namespace)
                plt.close("all")
    finally:
        cnnviz_widgets.load_pretrained = original
        torch.set_num_threads(threads)
        for value in namespace.values():  # stop the widgets' workers
            if type(value).__name__ in WIDGETS:
                value.close()
    _RUNS[name] = results
    return results


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("exercises")


def outcomes_of(name: str, number: int, workdir: Path) -> Outcomes:
    return run(name, workdir)[number]


def describe(outcome: Outcome) -> str:
    return f"{outcome.where}: {type(outcome.error).__name__}: {outcome.error}\n{outcome.stdout}"


# ---------------------------------------------------------------------------------------------
# The exercises' shape
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_exercise_has_a_start_a_check_and_a_solution(name):
    found = exercises(load(name), name)
    assert found, f"{name} has no exercise"
    assert [ex.number for ex in found] == list(range(1, len(found) + 1))
    for ex in found:
        assert ex.start and ex.check and ex.solution, (name, ex.number, ex)
        # the answers start as None; an exercise that changes a widget is checked on its state
        assert "None" in ex.start or (ex.notebook, ex.number) in WIDGET_STATE, (name, ex.number)


def test_every_exercise_has_wrong_answers_to_check():
    assert sorted(WRONG) == sorted((name[:2], number) for name, number in ALL)
    assert all(WRONG.values())


# ---------------------------------------------------------------------------------------------
# The checks: a hint before, a failure on a wrong answer, a pass after the solution
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "number"), ALL)
def test_check_gives_a_hint_while_unanswered(name, number, workdir):
    outcome = outcomes_of(name, number, workdir).placeholder
    assert outcome.error is None, describe(outcome)
    lines = outcome.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Hint: "), outcome.stdout


@pytest.mark.parametrize(("name", "number"), ALL)
def test_check_fails_on_a_wrong_answer(name, number, workdir):
    wrong = outcomes_of(name, number, workdir).wrong
    assert len(wrong) == len(WRONG[name[:2], number])
    for outcome in wrong:
        assert outcome.where == "check" and isinstance(outcome.error, AssertionError), (
            describe(outcome) if outcome.error else f"no failure:\n{outcome.stdout}")
        assert str(outcome.error), "an assert without a message"


@pytest.mark.parametrize(("name", "number"), ALL)
def test_check_passes_after_the_solution(name, number, workdir):
    outcome = outcomes_of(name, number, workdir).solved
    assert outcome.error is None, describe(outcome)
    assert outcome.stdout.startswith("Correct"), outcome.stdout


# ---------------------------------------------------------------------------------------------
# No cell needs another exercise's solution
# ---------------------------------------------------------------------------------------------


def defined(tree: ast.AST) -> set[str]:
    """Names a cell binds at any level (assignments, loops, imports, defs, with/except)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def used(tree: ast.AST) -> set[str]:
    return {node.id for node in ast.walk(tree)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


def names_from_other_solutions(cells: list[tuple[bool, str]]) -> list[tuple[int, set[str]]]:
    """For ``(is_solution, source)`` code cells in order: the cells (index) that use a name
    bound before them only by a solution cell other than themselves."""
    by_solutions: set[str] = set()
    by_others: set[str] = set()
    found = []
    for i, (is_solution, source) in enumerate(cells):
        tree = ast.parse(python(source))
        borrowed = (used(tree) - defined(tree) - by_others) & by_solutions
        if borrowed:
            found.append((i, borrowed))
        (by_solutions if is_solution else by_others).update(defined(tree))
    return found


def test_the_dependency_check_finds_a_borrowed_name():
    cells = [(False, "import torch\nx = 1"), (True, "w = torch.ones(3)\nprint(w, x)"),
             (True, "print(w.sum())"), (False, "print(w)"), (False, "w = 2"),
             (True, "print(w)")]
    assert names_from_other_solutions(cells) == [(2, {"w"}), (3, {"w"})]


@pytest.mark.parametrize("name", NAMES)
def test_no_cell_needs_another_solution(name):
    cells = [("solution" in tags(c), c.source) for c in load(name).cells if c.cell_type == "code"]
    assert names_from_other_solutions(cells) == []
