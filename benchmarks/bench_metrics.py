"""Speed of the evaluation metrics against Quantus 0.6 and pytorch-grad-cam 1.5, same maps.

The bundled demo model (ShapesNet, 64 px) on generated images with exact object masks, the 13
CAM methods (maps computed once by the engine, ``features.11``, the images' true classes), and
for each method and metric our time against the reference's on the same maps (ratio = ours /
theirs; lower is better; targets: <= 0.2 for the Quantus metrics, <= 0.5 for ROAD):

* array metrics on ``--n`` images (default 1,000): relevance mass accuracy, relevance rank
  accuracy, top-k intersection (k = 1000), sparseness, complexity; one call each side over all
  images (Quantus with its default batch of 64);
* metrics that explain again, on ``--n-explain`` images (default 100): max-sensitivity
  (``--samples`` perturbations, the same noise both sides), model-parameter randomisation (our
  ``sanity_check`` cascade with its three similarity scores and random-logit test, against
  Quantus's ``MPRT`` plus ``RandomLogit``). Both sides explain with the engine's ``cam``, so
  these times are dominated by the explanations themselves;
* ROAD (``road(order="combined")`` against ``ROADCombined``) on ``--n-road`` images (default
  100; the reference needs about 0.3 s per image on one core).

Wall-clock seconds of one run each (no repeats: the jobs are long), ours first, on the CPU with
``--threads`` torch threads (default 1); the whole run again on CUDA when a GPU is present.
Values are checked to agree. Results go to ``benchmarks/results/metrics.json``.

Usage::

    python benchmarks/bench_metrics.py [--n 1000] [--n-explain 100] [--n-road 100]
                                       [--samples 5] [--threads 1] [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnviz_widgets.demo import demo_model, make_shapes  # noqa: E402
from cnnviz_widgets.engine.cam import available_cam_methods, cam  # noqa: E402
from cnnviz_widgets.engine.metrics import (  # noqa: E402
    complexity,
    max_sensitivity,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    road,
    sanity_check,
    sparseness,
    top_k_intersection,
)
from cnnviz_widgets.engine.metrics.robustness import sensitivity_noise  # noqa: E402

LAYER = "features.11"
ARRAY_METRICS = (
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "top_k_intersection",
    "sparseness",
    "complexity",
)


def clock(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, out


class TimedCam:
    """The engine's CAM as an explainer for both sides, adding up the seconds spent in it:
    ours calls it as ``f(model, x, classes)``, Quantus as ``f(model=, inputs=, targets=)``."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.seconds = 0.0
        self.__name__ = method

    def __call__(
        self, model: torch.nn.Module, inputs: Any, targets: Any, **kwargs: Any
    ) -> np.ndarray:
        start = time.perf_counter()
        dev = next(model.parameters()).device
        xb = torch.as_tensor(np.asarray(inputs) if not torch.is_tensor(inputs) else inputs)
        t = targets.tolist() if torch.is_tensor(targets) else [int(c) for c in targets]
        out = cam(model, xb.to(dev), LAYER, self.method, t)
        self.seconds += time.perf_counter() - start
        return out


def bench_method(method: str, ctx: dict[str, Any], record: Callable[..., None]) -> None:
    """Time one CAM method's maps through every metric, ours and the reference's."""
    import quantus
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    device, model, demo, x = ctx["device"], ctx["model"], ctx["demo"], ctx["x"]
    labels, masks, labels_np = ctx["labels"], ctx["masks"], ctx["labels_np"]
    s_batch, x_np, args = ctx["s_batch"], ctx["x_np"], ctx["args"]
    t_maps, maps = clock(lambda: cam(model, x, LAYER, method, labels.tolist()), device)
    print(f"{device} {method}: maps of {args.n} images in {t_maps:.2f}s", flush=True)
    a_batch = maps[:, None]
    common = {"model": model, "x_batch": x_np, "y_batch": labels_np, "a_batch": a_batch}
    mask_t = masks.to(device)
    maps_t = torch.from_numpy(maps).to(device)
    ours_fns: dict[str, Callable[[], np.ndarray]] = {
        "relevance_mass_accuracy": lambda: relevance_mass_accuracy(maps_t, mask_t),
        "relevance_rank_accuracy": lambda: relevance_rank_accuracy(maps_t, mask_t),
        "top_k_intersection": lambda: top_k_intersection(maps_t, mask_t, k=1000),
        "sparseness": lambda: sparseness(maps_t),
        "complexity": lambda: complexity(maps_t),
    }
    quantus_fns: dict[str, Callable[[], Any]] = {
        "relevance_mass_accuracy": lambda: quantus.RelevanceMassAccuracy(disable_warnings=True)(
            s_batch=s_batch, **common
        ),
        "relevance_rank_accuracy": lambda: quantus.RelevanceRankAccuracy(disable_warnings=True)(
            s_batch=s_batch, **common
        ),
        "top_k_intersection": lambda: quantus.TopKIntersection(k=1000, disable_warnings=True)(
            s_batch=s_batch, **common
        ),
        "sparseness": lambda: quantus.Sparseness(disable_warnings=True)(**common),
        "complexity": lambda: quantus.Complexity(disable_warnings=True)(**common),
    }
    for metric in ARRAY_METRICS:
        t_ours, ours = clock(ours_fns[metric], device)
        t_ref, ref = clock(quantus_fns[metric], device)
        diff = None
        if metric not in ("sparseness", "complexity"):  # Quantus: one max per call
            diff = float(np.nanmax(np.abs(np.asarray(ours) - np.asarray(ref, dtype=float))))
        record(method, metric, t_ours, t_ref, diff)

    k = args.n_explain
    xe, ye, me = x[:k], labels[:k], maps[:k]
    noise = list(sensitivity_noise(xe, args.samples, 0.2, seed=0))
    ours_cam, ref_cam = TimedCam(method), TimedCam(method)
    t_ours, ours = clock(
        lambda: max_sensitivity(
            model,
            xe,
            ours_cam,
            ye.tolist(),
            maps=me,
            layer=LAYER,
            samples=args.samples,
            seed=0,
        ),
        device,
    )
    stream = iter(noise)

    def perturb(arr: np.ndarray, indices: Any, **kwargs: Any) -> np.ndarray:
        return arr + next(stream).cpu().numpy().reshape(arr.shape)

    metric_ms = quantus.MaxSensitivity(
        nr_samples=args.samples, perturb_func=perturb, disable_warnings=True
    )
    t_ref, ref = clock(
        lambda: metric_ms(
            model=model,
            x_batch=x_np[:k],
            y_batch=labels_np[:k],
            a_batch=me[:, None],
            explain_func=ref_cam,
            batch_size=k,  # one batch: each perturbation covers every image
        ),
        device,
    )
    diff = float(np.nanmax(np.abs(ours - ref)))
    record(method, "max_sensitivity", t_ours, t_ref, diff, ours_cam.seconds, ref_cam.seconds)

    ours_cam, ref_cam = TimedCam(method), TimedCam(method)
    t_ours, check = clock(
        lambda: sanity_check(model, xe, ours_cam, ye.tolist(), seed=42, keep_maps=False),
        device,
    )

    def quantus_randomisation() -> dict[str, Any]:
        mprt = quantus.MPRT(layer_order="top_down", seed=42, disable_warnings=True)
        scores = mprt(
            model=model,
            x_batch=x_np[:k],
            y_batch=labels_np[:k],
            a_batch=None,
            explain_func=ref_cam,
        )
        quantus.RandomLogit(num_classes=len(demo.classes), seed=42, disable_warnings=True)(
            model=model,
            x_batch=x_np[:k],
            y_batch=labels_np[:k],
            a_batch=None,
            explain_func=ref_cam,
        )
        return scores

    t_ref, mprt = clock(quantus_randomisation, device)
    diff = max(
        float(np.nanmax(np.abs(s.scores["spearman"] - np.asarray(mprt[s.layer]))))
        if not np.isnan(s.scores["spearman"]).all()
        else 0.0
        for s in check.steps
    )
    record(method, "randomisation", t_ours, t_ref, diff, ours_cam.seconds, ref_cam.seconds)

    r = args.n_road
    targets = [ClassifierOutputTarget(int(c)) for c in labels_np[:r]]
    t_ours, ours = clock(
        lambda: road(model, x[:r], maps[:r], labels[:r].tolist(), order="combined"), device
    )
    t_ref, ref = clock(lambda: ROADCombined()(x[:r], maps[:r], targets, model), device)
    # with noise on both sides the values differ by the noise: report the mean difference
    record(method, "road_combined", t_ours, t_ref, float(np.abs(ours - ref).mean()))


def run_device(device: torch.device, args: argparse.Namespace) -> dict[str, Any]:

    demo = demo_model(device)
    model = demo.model
    images, labels, _, masks = make_shapes(args.n, 64, seed=7, return_masks=True)
    x = demo.transform(images).to(device)
    labels_np = labels.numpy()
    s_batch = (masks.numpy() > 0)[:, None].astype(np.float32)
    x_np = x.cpu().numpy()
    methods = available_cam_methods()
    ctx = {
        "device": device,
        "model": model,
        "demo": demo,
        "x": x,
        "labels": labels,
        "masks": masks,
        "labels_np": labels_np,
        "s_batch": s_batch,
        "x_np": x_np,
        "args": args,
    }
    rows: list[dict[str, Any]] = []
    totals: dict[str, list[float]] = {}

    def record(
        method: str,
        metric: str,
        ours: float,
        theirs: float,
        diff: float | None,
        ours_explain: float = 0.0,
        theirs_explain: float = 0.0,
    ) -> None:
        rows.append(
            {
                "method": method,
                "metric": metric,
                "ours_s": ours,
                "reference_s": theirs,
                "ratio": ours / theirs if theirs else None,
                "ours_explain_s": ours_explain,
                "reference_explain_s": theirs_explain,
                "max_abs_diff": diff,
            }
        )
        acc = totals.setdefault(metric, [0.0, 0.0, 0.0, 0.0])
        acc[0] += ours
        acc[1] += theirs
        acc[2] += ours_explain
        acc[3] += theirs_explain
        print(
            f"  {method:20s} {metric:24s} ours {ours:8.3f}s  ref {theirs:8.3f}s  "
            f"ratio {ours / theirs if theirs else float('nan'):.3f}"
            + (
                f"  (explaining: {ours_explain:.2f}s / {theirs_explain:.2f}s)"
                if ours_explain
                else ""
            )
            + ("" if diff is None else f"  diff {diff:.1e}"),
            flush=True,
        )

    for method in methods:
        bench_method(method, ctx, record)

    summary = {
        metric: {
            "ours_s": ours,
            "reference_s": theirs,
            "ratio": ours / theirs,
            "target": 0.5 if metric == "road_combined" else 0.2,
            "meets_target": ours / theirs <= (0.5 if metric == "road_combined" else 0.2),
            "ours_explain_s": ours_x,
            "reference_explain_s": theirs_x,
            "ratio_without_explaining": (ours - ours_x) / (theirs - theirs_x)
            if ours_x and theirs > theirs_x
            else None,
        }
        for metric, (ours, theirs, ours_x, theirs_x) in totals.items()
    }
    quantus_metrics = [m for m in totals if m != "road_combined"]
    all_ours = sum(totals[m][0] for m in quantus_metrics)
    all_theirs = sum(totals[m][1] for m in quantus_metrics)
    return {
        "device": str(device),
        "images": {"array": args.n, "explain": args.n_explain, "road": args.n_road},
        "samples": args.samples,
        "summary": summary,
        "quantus_total": {
            "ours_s": all_ours,
            "reference_s": all_theirs,
            "ratio": all_ours / all_theirs,
            "target": 0.2,
        },
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="images for the array metrics")
    parser.add_argument("--n-explain", type=int, default=100, help="images for the others")
    parser.add_argument("--n-road", type=int, default=100, help="images for ROAD")
    parser.add_argument("--samples", type=int, default=5, help="max-sensitivity samples")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a few images (a smoke test)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "metrics.json"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.n_explain, args.n_road, args.samples = 16, 4, 4, 2
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    started = time.perf_counter()
    results = [run_device(device, args) for device in devices]
    print(
        "\n| device | metric | ours (s) | reference (s) | ratio | target "
        "| ratio without the explanations |"
    )
    print("|---|---|---|---|---|---|---|")
    for res in results:
        for metric, s in res["summary"].items():
            rest = s["ratio_without_explaining"]
            print(
                f"| {res['device']} | {metric} | {s['ours_s']:.2f} | {s['reference_s']:.2f} | "
                f"{s['ratio']:.3f} | <= {s['target']} | "
                + ("" if rest is None else f"{rest:.3f}")
                + " |"
            )
        t = res["quantus_total"]
        print(
            f"| {res['device']} | all Quantus metrics | {t['ours_s']:.2f} | "
            f"{t['reference_s']:.2f} | {t['ratio']:.3f} | <= 0.2 |"
        )
    report = {
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "torch": torch.__version__,
        "quantus": metadata.version("quantus"),
        "grad_cam": metadata.version("grad-cam"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "quick": args.quick,
        "seconds": time.perf_counter() - started,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
