"""Activation maximisation: 8 channels in one batch against 1 channel, and 8 runs of 1.

Run: ``.venv/bin/python benchmarks/bench_actmax.py [--threads 2] [--steps 64]``; writes
``benchmarks/results/actmax.json``. Random-init resnet18 (timings do not depend on the
weights), layer4, the regularised mode at 128 px and the plain mode at 224 px. Target (issue
17): 8 channels take at most 2.5 x the time of 1.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torchvision

from cnnviz_widgets import activation_max

ROOT = Path(__file__).resolve().parents[1]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/actmax.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    results: dict[str, object] = {"threads": args.threads, "steps": args.steps}
    for mode, regularize, size in (("regularized", True, 128), ("plain", False, 224)):
        def run(channels: list[int], regularize: bool = regularize, size: int = size) -> None:
            activation_max(model, "layer4", channels, steps=args.steps, size=size,
                           regularize=regularize, seed=0)

        run([0])  # warm up
        one = timed(lambda run=run: run([0]))
        eight = timed(lambda run=run: run(list(range(8))))
        singles = timed(lambda run=run: [run([c]) for c in range(8)])
        results[mode] = {"size": size, "one_channel_s": round(one, 3),
                         "eight_batched_s": round(eight, 3),
                         "eight_single_runs_s": round(singles, 3),
                         "batched_over_one": round(eight / one, 2),
                         "batched_over_singles": round(eight / singles, 3)}
        print(mode, results[mode], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
