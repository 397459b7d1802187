"""Leak figures on resnet50 at 224 px: repeated engine calls and explorer layer switches.

Run: ``.venv/bin/python benchmarks/bench_leaks.py [--calls 30] [--out PATH]`` (default
``benchmarks/results/leaks.json``).

The same probes as ``tests/test_leaks.py`` (which runs 200 calls on the small demo network):
for each engine function, a few warm-up calls, then ``--calls`` calls; the resident set size
(``/proc/self/statm``) after warm-up and after the calls, the live ``torch.Tensor`` count, the
most hooks left on any call, whether a global hook or torch-function mode was left, and the
time per call. Then the same for explorer layer switches (features + kernels + GradCAM request
per switch) with a 64 MiB cache, and the model's release on ``close()``. Random-init weights
(no download here), one torch thread.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_leaks import engine_calls, repeat  # noqa: E402

MIB = 2**20


def explorer_switches(model: torch.nn.Module, calls: int, warmup: int,
                      budget: int) -> dict[str, Any]:
    """Layer switches in a LayerExplorer on ``model``; figures plus cache and release checks."""
    from cnnviz_widgets import LayerExplorer

    rgb = np.random.default_rng(0).integers(0, 256, (224, 224, 3), np.uint8)
    start = time.perf_counter()
    ex = LayerExplorer(model, rgb, size=224, cache_bytes=budget, background=False)
    build_s = time.perf_counter() - start
    errors: list[str] = []
    ex.send = lambda content, buffers=None: (  # type: ignore[method-assign]
        errors.append(content.get("message", "")) if content.get("type") == "error" else None
    )
    layers = [info["name"] for info in ex.layers]
    cam_layers = list(ex.cam_layers)
    step = [0]
    peak = [0]

    def switch() -> None:
        i = step[0]
        step[0] += 1
        name = layers[(i * 7) % len(layers)]  # jump around the 53 convs
        ex.layer = name
        for rid, req in enumerate((
            {"kind": "features", "layer": name, "version": ex.image_version},
            {"kind": "kernels", "layer": name},
            {"kind": "cam", "layer": cam_layers[i % len(cam_layers)], "method": "GradCAM",
             "target": i % 1000, "version": ex.image_version},
        )):
            ex._on_msg(ex, {"type": "request", "id": rid, "key": f"{i}-{rid}", **req}, [])
        peak[0] = max(peak[0], ex._cache.nbytes)

    result = repeat(switch, model, calls, warmup).as_dict()
    ex.close()
    released = ex.model is None and len(ex._cache) == 0 and ex._subject is None
    return {
        **result,
        "construct_s": round(build_s, 3),
        "cache_budget_bytes": budget,
        "cache_peak_bytes": peak[0],
        "cache_within_budget": peak[0] <= budget,
        "error_replies": errors[:3],
        "close_releases_model_and_cache": released,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "leaks.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    figures: dict[str, Any] = {}
    for name, call in engine_calls(model, x, ["layer3", "layer4"], "layer4.2.conv2").items():
        figures[name] = repeat(call, model, args.calls, args.warmup).as_dict()
        print(name, figures[name], flush=True)
    figures["explorer_layer_switches"] = explorer_switches(model, args.calls, args.warmup,
                                                          64 * MIB)
    print("explorer", figures["explorer_layer_switches"], flush=True)
    worst = max(f["rss_growth"] for f in figures.values())
    report = {
        "model": "resnet50 (weights=None)",
        "input": [1, 3, 224, 224],
        "calls": args.calls,
        "warmup": args.warmup,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "max_rss_growth": worst,
        "all_pass": bool(
            worst <= 0.05
            and all(f["max_hooks"] == 0 and not f["globals_changed"] for f in figures.values())
        ),
        "figures": figures,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}: max RSS growth {worst:.2%}, all pass {report['all_pass']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
