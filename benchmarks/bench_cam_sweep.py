"""ScoreCAM and AblationCAM against pytorch-grad-cam 1.5.x across model families and input sizes.

One process, one machine, the same input: for every model (randomly initialised with
``weights=None`` after ``torch.manual_seed(0)``) and input size, each method is run by this
engine (``cam(model, x, layer, method, batch_size=B)``) and by the reference
(``pytorch_grad_cam.<Method>(model, [module])`` with ``batch_size = B``), on the engine's
default CAM layer (:func:`~cnnviz_widgets.engine.dryrun.default_layer`, the layer ``cam`` uses
when none is named; the reference gets the same module). The input is the bundled
``chelsea.png`` resized to the size.

Families (eight, :data:`MODELS`): plain (AlexNet), residual (ResNet-18), dense (DenseNet-121),
inverted residual (MobileNetV2), squeeze-and-excitation (EfficientNet-B0), grouped
(ShuffleNetV2 x1.0), VGG-style (VGG-11) and RegNet (RegNetY-400MF, which also has SE blocks).
ResNet-50 and ResNeXt-50 (2048 channels at ``layer4``: 2048 forward passes of a 4 GFLOP
network per ScoreCAM call) are left out to keep the sweep within its time budget; ResNet-18
stands for the residual family and ShuffleNet for grouped convolutions.

Timing: our first call on a model (``cold``: it builds and checks the inference copy and runs
the first-use trials, whose decisions are then cached for the model) is timed apart; then
``--repeats`` runs of each, the reference's and ours alternately so that load from other
processes falls on both alike; medians of wall-clock and of process CPU time (the reference
keeps nothing between calls, so all its runs count). The cold ratio is our cold call over the
reference's median. The machine is shared, so the load average is recorded before and after
every case. Ratio = ours / reference (lower is better). Outputs are compared in the same run:
the mean absolute difference (MAD) of the [0, 1] maps, the largest over the batch.

Threads: ``--threads 1`` by default. On the shared 2-core machine this was written on (load
average 5-9 from other processes), two OpenMP threads made every forward pass 3.5x (AlexNet
features, batch 32, 96 px: 260 ms against 70 ms) to 35x (batch 1: 146 ms against 4.1 ms)
slower than one thread, because each parallel region waits at its barrier for a partner the
scheduler has taken off the CPU; timings with two threads then measure the load, not the
work. ``--threads 2`` on a quiet machine.

Targets (issue 17): ScoreCAM median ratio <= 0.6 over the sweep and no case above 0.75;
AblationCAM median ratio <= 0.3.

Usage::

    python benchmarks/bench_cam_sweep.py [--quick] [--threads N] [--repeats R]
        [--sizes 128,224] [--models alexnet,resnet18,...] [--methods ScoreCAM,AblationCAM]
        [--score-batch 32] [--out benchmarks/results/cam_sweep.json] [--label after]

``--quick``: one size (96 px), four models, one repeat (a smoke run, a few minutes). Writes the
JSON report and a Markdown table next to it (same name, ``.md``); ``--before OLD.json`` adds a
column with an earlier run's ratios and ``--notes NOTES.md`` appends a text; ``--render`` only
writes the Markdown of an existing report (``--out``) again. The ``paths`` column says
which accelerated paths the first-use trials chose for the case (:func:`~cnnviz_widgets.engine.
accel.describe`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision

warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.environment import environment  # noqa: E402
from cnnviz_widgets.engine.cam import cam  # noqa: E402
from cnnviz_widgets.engine.dryrun import default_layer  # noqa: E402
from cnnviz_widgets.engine.inputs import load_image  # noqa: E402

MODELS = {
    "alexnet": "plain",
    "resnet18": "residual",
    "densenet121": "dense",
    "mobilenet_v2": "inverted residual",
    "efficientnet_b0": "squeeze-excitation",
    "shufflenet_v2_x1_0": "grouped",
    "vgg11": "VGG-style",
    "regnet_y_400mf": "RegNet (SE)",
}
"""torchvision constructor name -> family."""

QUICK_MODELS = ("alexnet", "resnet18", "mobilenet_v2", "regnet_y_400mf")
METHODS = ("ScoreCAM", "AblationCAM")
TARGETS = {"ScoreCAM": (0.6, 0.75), "AblationCAM": (0.3, None)}
"""Method -> (target for the median ratio, target for every case or ``None``)."""

ABLATION_BATCH = 32
"""AblationCAM's batch size: the reference's default (it also decides the reference's ablation
values for layers whose minimum is not 0, so both sides must use the same)."""


@dataclass
class Case:
    """One model, size and method: medians of the timed runs and the outputs' agreement."""

    model: str
    family: str
    size: int
    method: str
    layer: str
    channels: int
    batch_size: int
    ours_s: float
    other_s: float
    ratio: float
    ours_cpu_s: float
    other_cpu_s: float
    cpu_ratio: float
    ours_cold_s: float
    cold_ratio: float
    mad: float
    load_before: float
    load_after: float
    paths: str


def load1() -> float:
    """The 1-minute load average (``nan`` where the OS does not report it)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def timed(fn: Callable[[], np.ndarray]) -> tuple[float, float, np.ndarray]:
    """Wall-clock and process CPU seconds of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def reference_call(
    method: str, model: torch.nn.Module, module: torch.nn.Module, x: torch.Tensor, batch: int
) -> np.ndarray:
    """One pytorch-grad-cam call as a user makes it (context manager, quiet progress bars)."""
    import pytorch_grad_cam as pgc

    with (
        contextlib.redirect_stderr(io.StringIO()),
        contextlib.redirect_stdout(io.StringIO()),
        getattr(pgc, method)(model, [module]) as ref,
    ):
        ref.batch_size = batch
        return ref(x, None)


def run_case(
    name: str, size: int, method: str, repeats: int, score_batch: int, image: Path
) -> Case:
    """Cold call of each, then ``repeats`` alternating runs; the medians."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    reference_model = copy.deepcopy(model)
    x = load_image(image, size=size).tensor
    layer = default_layer(model, x)
    module = reference_model.get_submodule(layer)
    batch = score_batch if method == "ScoreCAM" else ABLATION_BATCH

    def ours() -> np.ndarray:
        return cam(model, x, layer, method, batch_size=batch)

    def other() -> np.ndarray:
        return reference_call(method, reference_model, module, x, batch)

    load_before = load1()
    ours_cold, _, _ = timed(ours)
    runs: dict[str, list[tuple[float, float, np.ndarray]]] = {"ours": [], "other": []}
    for _ in range(repeats):
        for key, fn in (("other", other), ("ours", ours)):
            runs[key].append(timed(fn))
    ours_s = statistics.median(r[0] for r in runs["ours"])
    other_s = statistics.median(r[0] for r in runs["other"])
    ours_cpu = statistics.median(r[1] for r in runs["ours"])
    other_cpu = statistics.median(r[1] for r in runs["other"])
    mad = max(
        float(np.abs(a - b).mean(axis=(-2, -1)).max())
        for a, b in zip((r[2] for r in runs["ours"]), (r[2] for r in runs["other"]), strict=True)
    )
    with torch.no_grad():
        channels = int(_layer_channels(model, layer, x))
    return Case(
        name, MODELS[name], size, method, layer, channels, batch, ours_s, other_s,
        ours_s / other_s, ours_cpu, other_cpu, ours_cpu / other_cpu, ours_cold,
        ours_cold / other_s, mad, load_before, load1(), chosen_paths(model, method),
    )  # fmt: skip


def chosen_paths(model: torch.nn.Module, method: str) -> str:
    """What the engine's first-use trials chose for ``model`` (empty where nothing is cached,
    e.g. AblationCAM, or an engine without :func:`~cnnviz_widgets.engine.accel.describe`)."""
    if method != "ScoreCAM":
        return ""
    try:
        from cnnviz_widgets.engine.accel import describe
    except ImportError:
        return ""
    return describe(model)


def _layer_channels(model: torch.nn.Module, layer: str, x: torch.Tensor) -> int:
    seen: list[int] = []
    handle = model.get_submodule(layer).register_forward_hook(
        lambda m, i, o: seen.append(o.shape[1])
    )
    try:
        model(x)
    finally:
        handle.remove()
    return seen[0]


def summary(cases: list[Case]) -> dict[str, dict[str, float | bool | None]]:
    """Per method: median and largest ratio (wall and CPU time), largest MAD, targets met."""
    out: dict[str, dict[str, float | bool | None]] = {}
    for method in METHODS:
        rows = [c for c in cases if c.method == method]
        if not rows:
            continue
        median_target, case_target = TARGETS[method]
        median = statistics.median(c.ratio for c in rows)
        worst = max(c.ratio for c in rows)
        out[method] = {
            "median_ratio": median,
            "max_ratio": worst,
            "median_cpu_ratio": statistics.median(c.cpu_ratio for c in rows),
            "median_cold_ratio": statistics.median(c.cold_ratio for c in rows),
            "max_mad": max(c.mad for c in rows),
            "median_target": median_target,
            "case_target": case_target,
            "meets_targets": median <= median_target
            and (case_target is None or worst <= case_target),
        }
    return out


def markdown(report: dict, before: dict | None = None, notes: str = "") -> str:
    """The readable table of a report (with an earlier run's ratios, and notes, if given)."""
    old = {
        (c["method"], c["model"], c["size"]): c for c in (before or {}).get("results", [])
    }
    lines = [
        f"# CAM sweep ({report['label']}): ours / pytorch-grad-cam {report['grad_cam']}",
        "",
        f"torch {report['torch']}, {report['threads']} thread(s) on {report['cpu_count']} "
        f"core(s), median of {report['repeats']} alternating run(s) of each (ours after one "
        "cold call); "
        f"ScoreCAM batch size {report['score_batch']}, AblationCAM {ABLATION_BATCH}; "
        f"total {report['total_s']:.0f} s; load average {report['load_min']:.1f} to "
        f"{report['load_max']:.1f}.",
        "",
        "| method | model | family | size | layer | C | ours s | theirs s | ratio | CPU ratio "
        "| cold ratio | MAD | load | paths |" + (" ratio before | MAD before |" if old else ""),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if old else ""),
    ]
    for c in report["results"]:
        lines.append(
            f"| {c['method']} | {c['model']} | {c['family']} | {c['size']} | {c['layer']} "
            f"| {c['channels']} | {c['ours_s']:.2f} | {c['other_s']:.2f} | {c['ratio']:.3f} "
            f"| {c['cpu_ratio']:.3f} | {c['cold_ratio']:.3f} | {c['mad']:.1e} "
            f"| {c['load_before']:.1f} | {c.get('paths', '')} |" + _before_cells(old, c)
        )
    if before:
        lines += ["", f"Ratios before: run \"{before['label']}\" (same options)."]
    lines += ["", "| method | median ratio | max ratio | median CPU ratio | median cold ratio "
              "| max MAD | targets | met |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for method, s in report["summary"].items():
        target = f"median <= {s['median_target']}" + (
            f", each <= {s['case_target']}" if s["case_target"] is not None else ""
        )
        lines.append(
            f"| {method} | {s['median_ratio']:.3f} | {s['max_ratio']:.3f} "
            f"| {s['median_cpu_ratio']:.3f} | {s['median_cold_ratio']:.3f} | {s['max_mad']:.1e} "
            f"| {target} | {'yes' if s['meets_targets'] else 'NO'} |"
        )
    if before:
        for method, s in before.get("summary", {}).items():
            lines.append(
                f"| {method} (before) | {s['median_ratio']:.3f} | {s['max_ratio']:.3f} "
                f"| {s['median_cpu_ratio']:.3f} | {s['median_cold_ratio']:.3f} "
                f"| {s['max_mad']:.1e} | | {'yes' if s['meets_targets'] else 'NO'} |"
            )
    if notes:
        lines += ["", notes.strip()]
    return "\n".join(lines) + "\n"


def _before_cells(old: dict, case: dict) -> str:
    prior = old.get((case["method"], case["model"], case["size"]))
    if not old:
        return ""
    if prior is None:
        return " | |"
    return f" {prior['ratio']:.3f} | {prior['mad']:.1e} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one size, four models, 1 repeat")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1; see above)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of each (2)")
    parser.add_argument("--sizes", default=None, help="input sides in px (128,224)")
    parser.add_argument("--models", default=None, help=f"subset of {', '.join(MODELS)}")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--score-batch", type=int, default=32, help="ScoreCAM batch size")
    parser.add_argument("--label", default="", help="a name for this run in the table")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "cam_sweep.json"
    )
    parser.add_argument("--before", type=Path, default=None, help="an earlier report (JSON)")
    parser.add_argument("--notes", type=Path, default=None, help="Markdown to append")
    parser.add_argument("--render", action="store_true", help="only rewrite --out's Markdown")
    args = parser.parse_args(argv)
    before = json.loads(args.before.read_text()) if args.before else None
    notes = args.notes.read_text() if args.notes else ""
    if args.render:
        table = markdown(json.loads(args.out.read_text()), before, notes)
        args.out.with_suffix(".md").write_text(table)
        print(table)
        return 0
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in (args.sizes or ("96" if args.quick else "128,224")).split(",")]
    names = args.models.split(",") if args.models else list(QUICK_MODELS if args.quick else MODELS)
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(names) - set(MODELS)) + sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown model(s)/method(s) {unknown}; models: {list(MODELS)}")
    repeats = args.repeats or (1 if args.quick else 2)
    image = ROOT / "cnnviz_widgets" / "data" / "chelsea.png"

    start = time.perf_counter()
    cases: list[Case] = []
    print(f"cpu, {args.threads} threads, median of {repeats}", flush=True)
    for name in names:
        for size in sizes:
            for method in methods:
                case = run_case(name, size, method, repeats, args.score_batch, image)
                cases.append(case)
                print(
                    f"  {method:11s} {name:19s} {size:4d}px {case.layer:13s} C={case.channels:5d}"
                    f"  ours {case.ours_s:7.2f}s  other {case.other_s:7.2f}s  ratio "
                    f"{case.ratio:.3f}  CPU {case.cpu_ratio:.3f}  cold {case.cold_ratio:.3f}  "
                    f"MAD {case.mad:.1e}  load {case.load_before:.1f}  {case.paths}",
                    flush=True,
                )
    loads = [c.load_before for c in cases] + [c.load_after for c in cases]
    report = {
        "label": args.label or ("quick" if args.quick else "sweep"),
        **environment(args.threads, args.quick, ("grad-cam",)),
        "repeats": repeats,
        "score_batch": args.score_batch,
        "sizes": sizes,
        "total_s": time.perf_counter() - start,
        "load_min": min(loads),
        "load_max": max(loads),
        "summary": summary(cases),
        "results": [asdict(c) for c in cases],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    table = markdown(report, before, notes)
    args.out.with_suffix(".md").write_text(table)
    print("\n" + table)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
