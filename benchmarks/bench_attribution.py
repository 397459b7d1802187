"""Attribution benchmark: faithfulness of every method on the demo model, speed against captum.

Prints two tables and writes them as JSON (``--out``, default
``benchmarks/results/attribution.json``):

* faithfulness on generated demo images (needs the bundled demo model and the CAM family):
  pointing game (% of images whose map maximum lies in the object's box), deletion AUC (lower
  is better) with grey ("zero") and with blurred replacement pixels, insertion AUC onto a
  blurred image (higher is better), all of the true class's softmax probability against the
  fraction of pixels removed / inserted, and average drop (%, lower is better), for each CAM
  method at the last conv layer, each saliency method (channel-reduced with ``absmax`` and
  min-max scaled to [0, 1] per image) and two random maps (per pixel, and 8x8 blobs upsampled
  like a CAM) for reference;
* speed of each saliency method against its captum counterpart: the same input in the same
  process, best of ``--repeats`` wall-clock times, and the ratio ``ours / captum`` (below 1:
  ours is faster), plus the largest absolute difference of the results.

Usage::

    python benchmarks/bench_attribution.py            # 200 images
    python benchmarks/bench_attribution.py --quick    # 24 images, fewer steps and repeats
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnviz_widgets.engine.layers import conv_layers  # noqa: E402
from cnnviz_widgets.engine.metrics import (  # noqa: E402
    average_drop,
    deletion_auc,
    insertion_auc,
    pointing_game,
)
from cnnviz_widgets.engine.saliency import (  # noqa: E402
    available_saliency_methods,
    saliency,
    saliency_map,
)

SALIENCY_METHODS = available_saliency_methods()


def _minmax(maps: np.ndarray) -> np.ndarray:
    """Per-image min-max scaling of ``(N, H, W)`` maps to [0, 1] (eps 1e-7)."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(axis=1)[:, None, None]
    hi = flat.max(axis=1)[:, None, None]
    return ((maps - lo) / (hi - lo + 1e-7)).astype(np.float32)


def _timed_pair(
    ours: Callable[[], Any], theirs: Callable[[], Any], repeats: int
) -> tuple[float, Any, float, Any]:
    """Best wall-clock seconds of ``repeats`` calls of each (after one warm-up call each), the
    two alternating so that a change in machine load affects both alike; and both results."""
    results = [ours(), theirs()]
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, fn in enumerate((ours, theirs)):
            start = time.perf_counter()
            results[i] = fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best[0], results[0], best[1], results[1]


# --------------------------------------------------------------------------------------------
# Faithfulness
# --------------------------------------------------------------------------------------------


def faithfulness(args: argparse.Namespace) -> dict[str, Any]:
    try:
        from cnnviz_widgets.demo import demo_model, make_shapes
        from cnnviz_widgets.engine.cam import available_cam_methods, cam

        demo = demo_model()
    except (ImportError, FileNotFoundError, OSError, RuntimeError) as err:
        print(f"faithfulness skipped: demo model or CAM family not available ({err})")
        return {"skipped": str(err)}
    images, labels, boxes = make_shapes(args.images, size=demo.size, seed=args.seed)
    x = demo.transform(images)
    model = demo.model
    target = labels.tolist()
    layer = list(conv_layers(model))[-1]
    with torch.no_grad():
        accuracy = float((model(x).argmax(dim=1) == labels).float().mean())
    print(
        f"\nFaithfulness on {args.images} demo images ({demo.size} px, seed {args.seed}), "
        f"true class as target, CAM layer {layer!r}, model accuracy {accuracy:.1%}, "
        f"{args.steps} deletion/insertion steps"
    )

    makers: dict[str, Callable[[], np.ndarray]] = {}
    for method in available_cam_methods():
        makers[f"cam:{method}"] = lambda m=method: np.asarray(
            cam(model, x, layer, method=m, target=target)
        )
    options = {
        "smoothgrad": {"n_samples": args.smoothgrad_samples, "seed": 0},
        "guided_gradcam": {"layer": layer},
    }
    for method in SALIENCY_METHODS:
        makers[f"saliency:{method}"] = lambda m=method: _minmax(
            saliency_map(saliency(model, x, target, m, **options.get(m, {})))
        )
    gen = torch.Generator().manual_seed(args.seed)
    side = demo.size
    makers["random pixels"] = lambda: torch.rand(args.images, side, side, generator=gen).numpy()
    makers["random 8x8 blobs"] = lambda: F.interpolate(
        torch.rand(args.images, 1, 8, 8, generator=gen), size=(side, side), mode="bilinear"
    )[:, 0].numpy()

    rows: dict[str, dict[str, float]] = {}
    print(
        f"{'method':30s} {'pointing %':>10s} {'del zero':>9s} {'del blur':>9s} "
        f"{'ins blur':>9s} {'avg drop %':>10s} {'map s':>7s}"
    )
    for name, make in makers.items():
        start = time.perf_counter()
        maps = make()
        seconds = time.perf_counter() - start
        common = {"steps": args.steps, "batch_size": args.batch_size}
        row = {
            "pointing_game_pct": float(pointing_game(maps, boxes).mean() * 100),
            "deletion_auc_zero": float(
                deletion_auc(model, x, maps, target, baseline="zero", **common).mean()
            ),
            "deletion_auc_blur": float(
                deletion_auc(model, x, maps, target, baseline="blur", **common).mean()
            ),
            "insertion_auc_blur": float(
                insertion_auc(model, x, maps, target, baseline="blur", **common).mean()
            ),
            "average_drop_pct": float(
                average_drop(model, x, maps, target, batch_size=args.batch_size).mean()
            ),
            "map_seconds": seconds,
        }
        rows[name] = row
        print(
            f"{name:30s} {row['pointing_game_pct']:10.1f} {row['deletion_auc_zero']:9.3f} "
            f"{row['deletion_auc_blur']:9.3f} {row['insertion_auc_blur']:9.3f} "
            f"{row['average_drop_pct']:10.1f} {seconds:7.2f}"
        )
    return {
        "images": args.images,
        "size": demo.size,
        "seed": args.seed,
        "layer": layer,
        "steps": args.steps,
        "model_accuracy": accuracy,
        "methods": rows,
    }


# --------------------------------------------------------------------------------------------
# Speed against captum
# --------------------------------------------------------------------------------------------


def _captum_runners(
    model: torch.nn.Module, x: torch.Tensor, target: list[int], layer: str, args: argparse.Namespace
) -> dict[str, Callable[[], np.ndarray]]:
    from captum.attr import (
        GuidedBackprop,
        GuidedGradCam,
        InputXGradient,
        IntegratedGradients,
        NoiseTunnel,
        Saliency,
    )

    twin = copy.deepcopy(model).eval()  # captum may add hooks or change modes on its model
    layer_module = dict(twin.named_modules())[layer]
    sigma = float(0.15 * (x.max() - x.min()))

    def run(make: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], np.ndarray]:
        return lambda: make(x.clone().requires_grad_(True)).detach().numpy()

    return {
        "vanilla": run(lambda xi: Saliency(twin).attribute(xi, target=target, abs=False)),
        "guided": run(lambda xi: GuidedBackprop(twin).attribute(xi, target=target)),
        "smoothgrad": run(
            lambda xi: NoiseTunnel(Saliency(twin)).attribute(
                xi,
                nt_type="smoothgrad",
                nt_samples=args.smoothgrad_samples,
                nt_samples_batch_size=max(1, 32 // x.shape[0]),  # 32 images a pass, as ours
                stdevs=sigma,
                target=target,
                abs=False,
            )
        ),
        "integrated_gradients": run(
            lambda xi: IntegratedGradients(twin).attribute(
                xi, target=target, internal_batch_size=32
            )
        ),
        "gradient_x_input": run(lambda xi: InputXGradient(twin).attribute(xi, target=target)),
        "guided_gradcam": run(
            lambda xi: GuidedGradCam(twin, layer_module).attribute(xi, target=target)
        ),
    }


def speed(args: argparse.Namespace) -> dict[str, Any]:
    import torchvision

    cases: list[tuple[str, torch.nn.Module, torch.Tensor, str]] = []
    try:
        from cnnviz_widgets.demo import demo_model, make_shapes

        demo = demo_model()
        images, _, _ = make_shapes(args.speed_batch, size=demo.size, seed=1)
        cases.append(
            (
                "demo ShapesNet",
                demo.model,
                demo.transform(images),
                list(conv_layers(demo.model))[-1],
            )
        )
    except (ImportError, FileNotFoundError, OSError, RuntimeError) as err:
        print(f"speed on the demo model skipped: {err}")
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    cases.append(("resnet18 (random init)", resnet, torch.randn(4, 3, 96, 96), "layer4"))

    results: dict[str, Any] = {}
    for label, model, x, layer in cases:
        with torch.no_grad():
            target = model(x).argmax(dim=1).tolist()
        print(
            f"\nSpeed on {label}, input {tuple(x.shape)}, best of {args.repeats} "
            f"(ratio = ours / captum)"
        )
        print(f"{'method':22s} {'ours s':>9s} {'captum s':>9s} {'ratio':>7s} {'max |diff|':>11s}")
        runners = _captum_runners(model, x, target, layer, args)
        options = {
            "smoothgrad": {"n_samples": args.smoothgrad_samples, "seed": 0},
            "guided_gradcam": {"layer": layer},
        }
        rows = {}
        for method in SALIENCY_METHODS:
            try:
                ours_s, ours, ref_s, ref = _timed_pair(
                    partial(saliency, model, x, target, method, **options.get(method, {})),
                    runners[method],
                    args.repeats,
                )
            except ImportError as err:  # guided_gradcam before the CAM family exists
                print(f"{method:22s} skipped: {err}")
                continue
            # SmoothGrad draws different noise and captum's Guided GradCAM uses the raw,
            # nearest-upsampled GradCAM: their values are not comparable, only their speed.
            comparable = method not in ("smoothgrad", "guided_gradcam")
            diff = float(np.abs(ours - ref).max()) if comparable else None
            rows[method] = {
                "ours_seconds": ours_s,
                "captum_seconds": ref_s,
                "ratio": ours_s / ref_s,
                "max_abs_diff": diff,
                "max_abs_value": float(np.abs(ref).max()),
            }
            diff_text = f"{diff:11.3g}" if diff is not None else f"{'-':>11s}"
            print(f"{method:22s} {ours_s:9.4f} {ref_s:9.4f} {ours_s / ref_s:7.2f} {diff_text}")
        results[label] = {"input_shape": list(x.shape), "layer": layer, "methods": rows}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/attribution.json"))
    parser.add_argument("--quick", action="store_true", help="small run (24 images)")
    parser.add_argument("--images", type=int, default=None, help="demo images (default 200)")
    parser.add_argument("--steps", type=int, default=None, help="deletion/insertion steps")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--skip-faithfulness",
        action="store_true",
        help="do not run the faithfulness part (an existing --out file keeps its figures)",
    )
    parser.add_argument(
        "--skip-speed",
        action="store_true",
        help="do not run the speed part (an existing --out file keeps its figures)",
    )
    args = parser.parse_args(argv)
    args.images = args.images or (24 if args.quick else 200)
    args.steps = args.steps or (16 if args.quick else 20)
    args.repeats = 2 if args.quick else 5
    args.speed_batch = 8 if args.quick else 16
    args.smoothgrad_samples = 8 if args.quick else 25
    args.batch_size = 256
    torch.set_num_threads(args.threads)

    report: dict[str, Any] = {
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "threads": args.threads,
        "quick": args.quick,
    }
    if not args.skip_faithfulness:
        report["faithfulness"] = faithfulness(args)
    if not args.skip_speed:
        try:
            import captum

            report["captum"] = captum.__version__
            report["speed"] = speed(args)
        except ImportError as err:
            print(f"speed comparison skipped: captum is not installed ({err})")
    out = Path(args.out)
    if out.exists() and (args.skip_faithfulness or args.skip_speed):
        kept = json.loads(out.read_text())
        for key in ("faithfulness", "speed", "captum"):
            if key in kept and key not in report:
                report[key] = kept[key]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
