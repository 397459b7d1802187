"""Activation maximisation: 8 channels in one batch against 1 channel, and where a step's time goes.

Run: ``nice -n 10 .venv/bin/python benchmarks/bench_actmax.py [--threads 2] [--steps 16]
[--repeats 5]``; writes ``benchmarks/results/actmax.json``. Random-init resnet18 (timings do not
depend on the weights), layer4, the regularised mode at 128 px and the plain mode at 224 px, and
the regularised mode at 32 px (one image leaves the cores idle, as on a GPU). Target (issue 17):
8 channels take at most 2.5 x the time of 1.

The machine is shared, so every case runs ``--repeats`` times, interleaved (one round runs each
case once), and the JSON keeps the medians, every sample and the load average before and after.
Cases: ``one`` (1 channel), ``eight`` (channels 0..7 in one batch), ``singles`` (8 runs of 1
channel), with the layer copy (``fuse=True``, the default; each call makes its copy, see
``layer_copy_s``), and ``one_unfused``, ``eight_unfused`` without it (``fuse=False``: the model
itself, as before the copy). ``seconds`` are wall-clock, ``cpu_seconds`` the process's CPU time
(all threads; less sensitive to other jobs on the machine).

``profile``: one optimisation step split into its parts (milliseconds, medians of interleaved
repeats), for batches of 1, 2, 4 and 8 and with and without the copy: the image
parameterisation (inverse FFT, colour, sigmoid), the random transform, the network's forward
pass to the layer, its backward pass to the layer's input image, the backward pass through the
transform and the FFT to the spectrum, and the Adam step (plain mode: forward, backward, the
update).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchvision

from cnnviz_widgets import activation_max
from cnnviz_widgets.engine import actmax
from cnnviz_widgets.engine.actmax_transforms import (
    draw_transforms,
    fft_scale,
    spectrum_to_rgb,
    start_spectrum,
    transform,
)
from cnnviz_widgets.engine.borrow import borrowed
from cnnviz_widgets.engine.inputs import IMAGENET_MEAN, IMAGENET_STD, normalize

ROOT = Path(__file__).resolve().parents[1]
LAYER = "layer4"
CASES = (("regularized", True, 128), ("plain", False, 224), ("regularized_32px", True, 32))


def load() -> float:
    """The 1-minute load average."""
    return round(os.getloadavg()[0], 2)


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and process CPU seconds (all threads) of ``fn()``."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def medians(samples: dict[str, list[float]], digits: int = 3) -> dict[str, float]:
    return {k: round(statistics.median(v), digits) for k, v in samples.items()}


def end_to_end(model: torch.nn.Module, steps: int, repeats: int) -> dict[str, Any]:
    """Seconds per call of ``activation_max`` for each case, medians of interleaved repeats."""
    out: dict[str, Any] = {}
    for mode, regularize, size in CASES:
        def run(channels: list[int], fuse: bool, regularize: bool = regularize,
                size: int = size) -> None:
            activation_max(model, LAYER, channels, steps=steps, size=size,
                           regularize=regularize, seed=0, fuse=fuse)

        calls: dict[str, Callable[[], object]] = {
            "one": lambda run=run: run([0], True),
            "eight": lambda run=run: run(list(range(8)), True),
            "singles": lambda run=run: [run([c], True) for c in range(8)],
            "one_unfused": lambda run=run: run([0], False),
            "eight_unfused": lambda run=run: run(list(range(8)), False),
        }
        for call in calls.values():  # warm up
            call()
        samples: dict[str, list[float]] = {k: [] for k in calls}
        cpu: dict[str, list[float]] = {k: [] for k in calls}
        load_before = load()
        for _ in range(repeats):
            for key, call in calls.items():
                wall, used = timed(call)
                samples[key].append(wall)
                cpu[key].append(used)
        med = medians(samples)
        out[mode] = {
            "size": size,
            "seconds": med,
            "cpu_seconds": medians(cpu),
            "batched_over_one": round(med["eight"] / med["one"], 2),
            "batched_over_singles": round(med["eight"] / med["singles"], 3),
            "unfused_batched_over_one": round(med["eight_unfused"] / med["one_unfused"], 2),
            "batched_over_unfused_batched": round(med["eight"] / med["eight_unfused"], 3),
            "samples": {k: [round(s, 3) for s in v] for k, v in samples.items()},
            "load_before": load_before,
            "load_after": load(),
        }
        print(mode, {k: v for k, v in out[mode].items() if k != "samples"}, flush=True)
    return out


def step_parts(model: torch.nn.Module, regularize: bool, size: int, batch: int,
               fuse: bool) -> Callable[[], dict[str, float]]:
    """A function that runs one optimisation step and returns the seconds of each part."""
    name, module = LAYER, model.get_submodule(LAYER)
    channels = list(range(batch))
    gens = actmax._generators(0, channels)
    objective = actmax._Objective(actmax._LayerProbe(model, module), name, channels, fuse=fuse)
    if regularize:
        spectrum = start_spectrum(gens, size).requires_grad_(True)
        theta = draw_transforms(gens, size, 1)[0]
        scale = fft_scale(size)
        optimizer = torch.optim.Adam([spectrum], lr=0.05)
    else:
        x = actmax.plain_start(gens, size, IMAGENET_MEAN, IMAGENET_STD)

    def step() -> dict[str, float]:
        nonlocal x
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        if regularize:
            rgb = spectrum_to_rgb(spectrum, scale)
            t1 = time.perf_counter()
            seen = normalize(transform(rgb, theta), IMAGENET_MEAN, IMAGENET_STD)
            t2 = time.perf_counter()
            loss = -objective(seen).sum()
            t3 = time.perf_counter()
            (g_seen,) = torch.autograd.grad(loss, seen)
            t4 = time.perf_counter()
            (spectrum.grad,) = torch.autograd.grad(seen, spectrum, g_seen)
            t5 = time.perf_counter()
            optimizer.step()
            t6 = time.perf_counter()
            t = {"fft_colour": t1 - t0, "transform": t2 - t1, "net_forward": t3 - t2,
                 "net_backward": t4 - t3, "transform_fft_backward": t5 - t4, "adam": t6 - t5}
        else:
            leaf = x.detach().requires_grad_(True)
            loss = objective(leaf).sum()
            t1 = time.perf_counter()
            (grad,) = torch.autograd.grad(loss, leaf)
            t2 = time.perf_counter()
            rms = grad.pow(2).reshape(batch, -1).mean(dim=1).sqrt().view(-1, 1, 1, 1)
            x = x + grad / (rms + 1e-5)
            t3 = time.perf_counter()
            t = {"net_forward": t1 - t0, "net_backward": t2 - t1, "update": t3 - t2}
        t["step"] = sum(t.values())
        return t

    return step


def profile(model: torch.nn.Module, repeats: int) -> dict[str, Any]:
    """Milliseconds per part of one step, per batch size, with and without the copy."""
    out: dict[str, Any] = {}
    batches = (1, 2, 4, 8)
    with borrowed(model), torch.enable_grad():
        for mode, regularize, size in CASES:
            steps = {(b, fuse): step_parts(model, regularize, size, b, fuse)
                     for b in batches for fuse in (True, False)}
            for step in steps.values():  # warm up (and the copy is made and checked)
                step()
                step()
            samples: dict[tuple[int, bool], dict[str, list[float]]] = {k: {} for k in steps}
            load_before = load()
            for _ in range(repeats):
                for key, step in steps.items():
                    for part, seconds in step().items():
                        samples[key].setdefault(part, []).append(seconds * 1e3)
            table: dict[str, Any] = {}
            for (b, fuse), parts in samples.items():
                med = medians(parts, 2)
                med["step_per_image"] = round(med["step"] / b, 2)
                table[f"{'fused' if fuse else 'unfused'}_batch{b}"] = med
            out[mode] = {"size": size, "ms": table, "load_before": load_before,
                         "load_after": load()}
            print(mode, json.dumps(table), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile-repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/actmax.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    with borrowed(model):
        copy_s = [timed(lambda: actmax.layer_copy(model, LAYER, torch.device("cpu")))[0]
                  for _ in range(args.repeats)]
    results: dict[str, Any] = {
        "threads": args.threads, "steps": args.steps, "repeats": args.repeats,
        "torch": torch.__version__, "cpus": os.cpu_count(), "layer": f"resnet18 {LAYER}",
        "layer_copy_s": round(statistics.median(copy_s), 3),
    }
    results["profile"] = profile(model, args.profile_repeats)
    results["end_to_end"] = end_to_end(model, args.steps, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
