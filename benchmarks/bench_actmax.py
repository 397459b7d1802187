"""Activation maximisation: 8 channels in one batch against 1 channel, and where a step's time goes.

Run: ``nice -n 10 .venv/bin/python benchmarks/bench_actmax.py [--threads 2] [--steps 16]
[--repeats 5] [--sections ...] [--update]``; writes ``benchmarks/results/actmax.json`` (with
``--update``, only the named sections are replaced). Random-init resnet18 (timings do not
depend on the weights), layer4, the regularised mode at 128 px and the plain mode at 224 px, and
the regularised mode at 32 px (one image leaves the cores idle, as on a GPU). Target (issue 17):
8 channels take at most 2.5 x the time of 1.

The machine is shared, so every case runs ``--repeats`` times, interleaved (one round runs each
case once), and the JSON keeps the medians, every sample and the load average before and after.
Cases: ``one`` (1 channel), ``eight`` (channels 0..7 in one batch), ``singles`` (8 runs of 1
channel), with the layer copy (``fuse=True``, the default; each call makes its copy, see
``layer_copy_s``), and ``one_unfused``, ``eight_unfused`` without it (``fuse=False``: the model
itself, as before the copy). ``seconds`` are wall-clock, ``cpu_seconds`` the process's CPU time
(all threads; less sensitive to other jobs on the machine). ``end_to_end_1_thread``: the same
on one thread, where CPU time is the arithmetic's cost.

``profile``: one optimisation step split into its parts (milliseconds, wall-clock and process
CPU time, medians of interleaved repeats), for batches of 1, 2, 4 and 8 and with and without the
copy: the image parameterisation (inverse FFT, colour, sigmoid), the random transform, the
network's forward pass to the layer, its backward pass to the layer's input image, the backward
pass through the transform and the FFT to the spectrum, and the Adam step (plain mode: forward,
backward, the update). ``profile_1_thread``: the same on one thread, where CPU time is the
arithmetic's cost and hardly depends on other jobs. ``conv_gflop_per_image_step``: the
convolutions' floating-point operations of one image's forward and backward pass (the backward
pass computes input gradients only, as many multiply-adds as the forward pass), and
``*_net_gflop_per_s`` the rate the network's passes reach.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
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
    transform_pad,
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


def end_to_end(model: torch.nn.Module, steps: int, repeats: int, threads: int) -> dict[str, Any]:
    """Seconds per call of ``activation_max`` for each case on ``threads`` threads, medians of
    interleaved repeats."""
    out: dict[str, Any] = {"threads": threads}
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
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
            "cpu_batched_over_one": round(medians(cpu)["eight"] / medians(cpu)["one"], 2),
            "unfused_batched_over_one": round(med["eight_unfused"] / med["one_unfused"], 2),
            "batched_over_unfused_batched": round(med["eight"] / med["eight_unfused"], 3),
            "samples": {k: [round(s, 3) for s in v] for k, v in samples.items()},
            "load_before": load_before,
            "load_after": load(),
        }
        print(f"end to end {threads} thread(s)", mode,
              {k: v for k, v in out[mode].items() if k != "samples"}, flush=True)
    torch.set_num_threads(before)
    return out


def conv_macs(model: torch.nn.Module, side: int) -> int:
    """Multiply-adds of the convolutions of one forward pass of a ``side`` px image to the layer
    (the backward pass to the image costs as many again: input gradients only)."""
    total = 0

    def count(conv: torch.nn.Conv2d, inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        k = conv.kernel_size[0] * conv.kernel_size[1]
        total += output.numel() * conv.in_channels // conv.groups * k

    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    handles = [conv.register_forward_hook(count) for conv in convs]
    try:
        with torch.no_grad():
            actmax._LayerProbe(model, model.get_submodule(LAYER))(torch.zeros(1, 3, side, side))
    finally:
        for handle in handles:
            handle.remove()
    return total


def step_parts(model: torch.nn.Module, regularize: bool, size: int, batch: int,
               fuse: bool) -> Callable[[], dict[str, tuple[float, float]]]:
    """A function that runs one optimisation step and returns each part's (wall, CPU) seconds."""
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

    def regularized() -> Iterator[str]:
        rgb = spectrum_to_rgb(spectrum, scale)
        yield "fft_colour"
        seen = normalize(transform(rgb, theta), IMAGENET_MEAN, IMAGENET_STD)
        yield "transform"
        loss = -objective(seen).sum()
        yield "net_forward"
        (g_seen,) = torch.autograd.grad(loss, seen)
        yield "net_backward"
        (spectrum.grad,) = torch.autograd.grad(seen, spectrum, g_seen)
        yield "transform_fft_backward"
        optimizer.step()
        yield "adam"

    def plain() -> Iterator[str]:
        nonlocal x
        leaf = x.detach().requires_grad_(True)
        loss = objective(leaf).sum()
        yield "net_forward"
        (grad,) = torch.autograd.grad(loss, leaf)
        yield "net_backward"
        rms = grad.pow(2).reshape(batch, -1).mean(dim=1).sqrt().view(-1, 1, 1, 1)
        x = x + grad / (rms + 1e-5)
        yield "update"

    def step() -> dict[str, tuple[float, float]]:
        parts: dict[str, tuple[float, float]] = {}
        wall, cpu = time.perf_counter(), time.process_time()
        for part in (regularized if regularize else plain)():
            now, now_cpu = time.perf_counter(), time.process_time()
            parts[part] = (now - wall, now_cpu - cpu)
            wall, cpu = now, now_cpu
        parts["step"] = (sum(w for w, _ in parts.values()), sum(c for _, c in parts.values()))
        return parts

    return step


def profile(model: torch.nn.Module, repeats: int, threads: int) -> dict[str, Any]:
    """Milliseconds (wall and process CPU) per part of one step on ``threads`` threads, per
    batch size, with and without the copy; medians of interleaved repeats."""
    out: dict[str, Any] = {"threads": threads}
    batches = (1, 2, 4, 8)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    with borrowed(model), torch.enable_grad():
        for mode, regularize, size in CASES:
            steps = {(b, fuse): step_parts(model, regularize, size, b, fuse)
                     for b in batches for fuse in (True, False)}
            for step in steps.values():  # warm up (and the copy is made and checked)
                step()
                step()
            wall: dict[tuple[int, bool], dict[str, list[float]]] = {k: {} for k in steps}
            cpu: dict[tuple[int, bool], dict[str, list[float]]] = {k: {} for k in steps}
            load_before = load()
            for _ in range(repeats):
                for key, step in steps.items():
                    for part, (w, c) in step().items():
                        wall[key].setdefault(part, []).append(w * 1e3)
                        cpu[key].setdefault(part, []).append(c * 1e3)
            side = size + 2 * transform_pad(size) if regularize else size
            flop = 4 * conv_macs(model, side)  # forward and backward, 2 flop per multiply-add
            table: dict[str, Any] = {}
            for b, fuse in steps:
                tag = f"{'fused' if fuse else 'unfused'}_batch{b}"
                table[tag] = {"wall_ms": medians(wall[b, fuse], 2),
                              "cpu_ms": medians(cpu[b, fuse], 2)}
                for kind in ("wall_ms", "cpu_ms"):
                    ms = table[tag][kind]
                    ms["step_per_image"] = round(ms["step"] / b, 2)
                    net = ms["net_forward"] + ms["net_backward"]
                    table[tag][kind.replace("ms", "net_gflop_per_s")] = round(
                        flop * b / net / 1e6, 1)
            out[mode] = {"size": size, "network_input_px": side,
                         "conv_gflop_per_image_step": round(flop / 1e9, 3), "parts": table,
                         "load_before": load_before, "load_after": load()}
            print(f"profile {threads} thread(s)", mode, json.dumps(table), flush=True)
    torch.set_num_threads(before)
    return out


SECTIONS = ("profile", "profile_1_thread", "end_to_end", "end_to_end_1_thread")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile-repeats", type=int, default=7)
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--update", action="store_true",
                        help="replace only these sections in the existing --out file (e.g. the "
                             "multi-thread ones, rerun while the machine is quiet)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/actmax.json")
    args = parser.parse_args()
    sections = args.sections.split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    with borrowed(model):
        copy_s = [timed(lambda: actmax.layer_copy(model, LAYER, torch.device("cpu")))[0]
                  for _ in range(args.repeats)]
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.update else {}
    results.update({
        "threads": args.threads, "steps": args.steps, "repeats": args.repeats,
        "torch": torch.__version__, "cpus": os.cpu_count(), "layer": f"resnet18 {LAYER}",
        "layer_copy_s": round(statistics.median(copy_s), 3),
    })
    for section in sections:
        threads = 1 if section.endswith("_1_thread") else args.threads
        if section.startswith("profile"):
            results[section] = profile(model, args.profile_repeats, threads)
        else:
            results[section] = end_to_end(model, args.steps, args.repeats, threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
