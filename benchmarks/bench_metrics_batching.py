"""Does batching the perturbed copies of max-sensitivity into one explanation call pay?

Issue 15's max-sensitivity and randomisation times are dominated by computing maps again. This
measures, per CAM method, ``max_sensitivity`` on the demo model (``--n`` generated images,
``--samples`` perturbations, ``features.11``) with the perturbed copies explained ``--n``
images per call (one sample per call, what the default ``batch_size=64`` gives for 64 or more
images) against all of them in one call (``batch_size = n * samples``), best of ``--repeats``
alternating runs, and checks that the values are the same. Wall-clock seconds on the CPU with
``--threads`` torch threads.

Measured (100 images, 5 samples, 1 thread, a shared 2-core machine): one call is 1.08x the
time of one sample per call over the 13 methods (cheap methods 1.15-1.8x slower in one call,
ScoreCAM 0.97x, and ScoreCAM is 52 of the 69 s); the values are identical.

Usage::

    python benchmarks/bench_metrics_batching.py [--n 100] [--samples 5] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnviz_widgets.demo import demo_model, make_shapes  # noqa: E402
from cnnviz_widgets.engine.cam import available_cam_methods, cam  # noqa: E402
from cnnviz_widgets.engine.metrics import max_sensitivity  # noqa: E402

LAYER = "features.11"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="images")
    parser.add_argument("--samples", type=int, default=5, help="perturbations per image")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, best kept")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    demo = demo_model()
    images, labels, _ = make_shapes(args.n, 64, seed=7)
    x, targets = demo.transform(images), labels.tolist()
    per_sample, one_call = args.n, args.n * args.samples  # batch_size: 1 sample, all samples
    totals = {per_sample: 0.0, one_call: 0.0}
    print(f"{'method':20s} {'1 sample/call':>14s} {'1 call':>9s} {'ratio':>6s}  max |diff|")
    for method in available_cam_methods():
        maps = cam(demo.model, x, LAYER, method, targets)
        seconds: dict[int, list[float]] = {per_sample: [], one_call: []}
        values: dict[int, np.ndarray] = {}
        for repeat in range(args.repeats):
            order = (per_sample, one_call) if repeat % 2 == 0 else (one_call, per_sample)
            for batch_size in order:
                start = time.perf_counter()
                values[batch_size] = max_sensitivity(
                    demo.model, x, method, targets, layer=LAYER, maps=maps,
                    samples=args.samples, seed=0, batch_size=batch_size,
                )
                seconds[batch_size].append(time.perf_counter() - start)
        best = {b: min(s) for b, s in seconds.items()}
        for b, s in best.items():
            totals[b] += s
        diff = np.nanmax(np.abs(values[per_sample] - values[one_call]))
        print(
            f"{method:20s} {best[per_sample]:13.3f}s {best[one_call]:8.3f}s "
            f"{best[one_call] / best[per_sample]:6.2f}  {diff:.1e}",
            flush=True,
        )
    print(
        f"{'all methods':20s} {totals[per_sample]:13.3f}s {totals[one_call]:8.3f}s "
        f"{totals[one_call] / totals[per_sample]:6.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
