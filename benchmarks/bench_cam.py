"""Speed of the CAM engine against pytorch-grad-cam 1.5.x, in one process, on the same input.

Cases (ratio = our time / the other time; lower is better; target in brackets):

1. ``gradcam``: GradCAM, ResNet-50 ``layer4``, one 224 px image, vs the reference [<= 0.5].
2. ``per_layer``: GradCAM on all 16 bottleneck blocks of ResNet-50, one ``cam_per_layer`` call vs
   16 reference calls [<= 0.1].
3. ``scorecam``: ScoreCAM, ResNet-18 ``layer4``, vs the reference at its default batch size of
   16 [<= 0.6], with the same output.
4. ``per_layer_vs_backward``: the ``cam_per_layer`` call of case 2 vs one plain forward pass plus
   ``loss.backward()`` [<= 1.0].

Every time is the median of ``--repeats`` runs after one warm-up run (ScoreCAM: half as many);
ours and the other are run alternately so that load from other processes affects both alike.
Wall-clock ratios are the figures against the targets; process CPU-time ratios are printed
alongside, as a check on a shared machine where other processes' load swings wall time.
Outputs are checked to agree (mean absolute difference and Pearson correlation of the [0, 1]
maps). The models are
randomly initialised (``weights=None``, seeded); the input is the bundled ``chelsea.png``.
Runs on the CPU with ``--threads`` torch threads (default: all cores), and again on CUDA when a
GPU is present. ``--quick`` uses smaller inputs and fewer repeats (a smoke test).

Usage::

    python benchmarks/bench_cam.py [--quick] [--threads N] [--repeats R] [--out PATH]
                                   [--cases gradcam,per_layer,per_layer_vs_backward,scorecam]
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
from cnnviz_widgets.engine.cam import cam, cam_per_layer  # noqa: E402
from cnnviz_widgets.engine.inputs import load_image  # noqa: E402


@dataclass
class Result:
    device: str
    case: str
    description: str
    ours_s: float
    other_s: float
    ratio: float
    target: float
    meets_target: bool
    ours_cpu_s: float
    other_cpu_s: float
    cpu_ratio: float
    max_mad: float | None
    min_corr: float | None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Median wall-clock and process CPU seconds of some runs, and the last run's output."""

    wall: float
    cpu: float
    output: object = None


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> Timing:
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        sync(device)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timing(statistics.median(walls), statistics.median(cpus), out)


def compare(
    fn_ours: Callable[[], object],
    fn_other: Callable[[], object],
    device: torch.device,
    repeats: int,
) -> tuple[Timing, Timing]:
    """Warm up both, then alternate ``repeats`` single runs of each; medians."""
    fn_ours()
    fn_other()
    ours, other = [], []
    for _ in range(repeats):
        ours.append(timed(fn_ours, device, 1))
        other.append(timed(fn_other, device, 1))

    def median(runs: list[Timing]) -> Timing:
        return Timing(
            statistics.median(r.wall for r in runs),
            statistics.median(r.cpu for r in runs),
            runs[-1].output,
        )

    return median(ours), median(other)


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Worst per-image (MAD, Pearson r) between two ``(N, H, W)`` map stacks."""
    mads, corrs = [], []
    for x, y in zip(a, b, strict=True):
        mads.append(float(np.abs(x - y).mean()))
        corrs.append(float(np.corrcoef(x.ravel(), y.ravel())[0, 1]))
    return max(mads), min(corrs)


def reference_call(method: str, model: torch.nn.Module, layers: list, x: torch.Tensor, **attrs):
    """One pytorch-grad-cam call as a user makes it (context manager, quiet progress bars)."""
    import pytorch_grad_cam as pgc

    with (
        contextlib.redirect_stderr(io.StringIO()),
        contextlib.redirect_stdout(io.StringIO()),
        getattr(pgc, method)(model, layers) as ref,
    ):
        for key, value in attrs.items():
            setattr(ref, key, value)
        return ref(x, None)


def seeded(ctor: Callable[..., torch.nn.Module], device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return ctor(weights=None).eval().to(device)


CASES = ("gradcam", "per_layer", "per_layer_vs_backward", "scorecam")


class Table:
    """Collects results for one device and prints each row as it is measured."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.results: list[Result] = []

    def add(
        self,
        case: str,
        description: str,
        ours: Timing,
        other: Timing,
        target: float,
        maps: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        mad, corr = agreement(*maps) if maps is not None else (None, None)
        ratio = ours.wall / other.wall
        cpu_ratio = ours.cpu / other.cpu
        self.results.append(
            Result(
                str(self.device), case, description, ours.wall, other.wall, ratio, target,
                ratio <= target, ours.cpu, other.cpu, cpu_ratio, mad, corr,
            )
        )  # fmt: skip
        agree = f"  MAD {mad:.1e} r {corr:.6f}" if mad is not None else ""
        print(
            f"  {case:22s} ours {ours.wall:8.3f}s  other {other.wall:8.3f}s  ratio {ratio:6.3f} "
            f"(target <= {target}; CPU-time ratio {cpu_ratio:.3f}){agree}",
            flush=True,
        )


def resnet50_cases(table: Table, x: torch.Tensor, repeats: int, cases: set[str]) -> None:
    """Cases 1, 2 and 4 (one ResNet-50, one 224 px image)."""
    device, size = table.device, x.shape[-1]
    resnet50 = seeded(torchvision.models.resnet50, device)
    ref50 = copy.deepcopy(resnet50)
    if "gradcam" in cases:
        ours, ref = compare(
            lambda: cam(resnet50, x, "layer4", "GradCAM"),
            lambda: reference_call("GradCAM", ref50, [ref50.layer4], x),
            device,
            repeats,
        )
        maps = (ours.output, ref.output)
        table.add("gradcam", f"GradCAM resnet50 layer4 {size}px", ours, ref, 0.5, maps)
    if not cases & {"per_layer", "per_layer_vs_backward"}:
        return
    blocks = [
        f"layer{stage}.{b}"
        for stage, count in zip(range(1, 5), (3, 4, 6, 3), strict=True)
        for b in range(count)
    ]
    ref_modules = [ref50.get_submodule(name) for name in blocks]

    def reference_blocks():
        return [reference_call("GradCAM", ref50, [m], x) for m in ref_modules]

    ours, ref = compare(
        lambda: cam_per_layer(resnet50, x, blocks, "GradCAM"), reference_blocks, device, repeats
    )
    if "per_layer" in cases:
        maps = (np.concatenate([ours.output[n] for n in blocks]), np.concatenate(ref.output))
        table.add("per_layer", f"GradCAM 16 resnet50 blocks {size}px", ours, ref, 0.1, maps)
    if "per_layer_vs_backward" in cases:
        trainable = copy.deepcopy(resnet50)

        def forward_backward():
            for p in trainable.parameters():
                p.grad = None
            logits = trainable(x)
            logits[0, int(logits[0].argmax())].backward()

        forward_backward()
        plain = timed(forward_backward, device, repeats)
        description = "cam_per_layer(16 blocks) / (forward + loss.backward())"
        table.add("per_layer_vs_backward", description, ours, plain, 1.0)


def scorecam_case(table: Table, x: torch.Tensor, repeats: int) -> None:
    """Case 3: ScoreCAM on ResNet-18 ``layer4`` vs the reference at batch size 16."""
    device = table.device
    resnet18 = seeded(torchvision.models.resnet18, device)
    ref18 = copy.deepcopy(resnet18)
    ours, ref = compare(
        lambda: cam(resnet18, x, "layer4", "ScoreCAM"),
        lambda: reference_call("ScoreCAM", ref18, [ref18.layer4], x),
        device,
        repeats,
    )
    description = f"ScoreCAM resnet18 layer4 {x.shape[-1]}px"
    table.add("scorecam", description, ours, ref, 0.6, (ours.output, ref.output))


def run_device(
    device: torch.device, size: int, score_size: int, repeats: int, cases: set[str]
) -> list[Result]:
    """Every selected case on ``device``."""
    image = ROOT / "cnnviz_widgets" / "data" / "chelsea.png"
    table = Table(device)
    if cases & {"gradcam", "per_layer", "per_layer_vs_backward"}:
        resnet50_cases(table, load_image(image, size=size).tensor.to(device), repeats, cases)
    if "scorecam" in cases:
        x = load_image(image, size=score_size).tensor.to(device)
        scorecam_case(table, x, max(1, (repeats + 1) // 2))
    return table.results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, few repeats")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per case")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cam.json")
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    size, score_size = (96, 64) if args.quick else (224, 224)
    repeats = args.repeats or (2 if args.quick else 5)
    cases = {c.strip() for c in args.cases.split(",") if c.strip()}
    unknown = cases - set(CASES)
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}; choose from {CASES}")

    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    results: list[Result] = []
    for device in devices:
        print(f"{device} ({args.threads} threads), {size}px, median of {repeats}:", flush=True)
        results.extend(run_device(device, size, score_size, repeats, cases))

    print(
        "\n| device | case | ours (s) | other (s) | ratio | target | ok | CPU-time ratio "
        "| MAD | r |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        mad = "" if r.max_mad is None else f"{r.max_mad:.1e}"
        corr = "" if r.min_corr is None else f"{r.min_corr:.6f}"
        print(
            f"| {r.device} | {r.case} | {r.ours_s:.3f} | {r.other_s:.3f} | {r.ratio:.3f} | "
            f"<= {r.target} | {'yes' if r.meets_target else 'NO'} | {r.cpu_ratio:.3f} | {mad} "
            f"| {corr} |"
        )
    report = {
        **environment(args.threads, args.quick, ("grad-cam",)),
        "repeats": repeats,
        "results": [asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
