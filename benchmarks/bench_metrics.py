"""Speed of the evaluation metrics against Quantus 0.6 and pytorch-grad-cam 1.5, same maps.

The bundled demo model (ShapesNet, 64 px) on generated images with exact object masks, the 13
CAM methods (maps computed once by the engine, ``features.11``, the images' true classes), and
for each method and metric our time against the reference's on the same job (ratio = ours /
theirs; lower is better; targets: <= 0.2 for the Quantus metrics, <= 0.5 for ROAD):

* ``array``: relevance mass accuracy, relevance rank accuracy, top-k intersection (k = 1000),
  sparseness, complexity on ``--n`` images (default 1,000); one call each side over all images
  (Quantus with its default batch of 64);
* ``max_sensitivity`` on ``--n-explain`` images (default 100), ``--samples`` perturbations, the
  same noise both sides, the unperturbed maps given to both: each side explains
  ``samples x n`` perturbed images;
* ``randomisation`` on ``--n-explain`` images: our ``sanity_check`` cascade (three similarity
  scores per step, and the random-logit test) against Quantus's ``MPRT`` (Spearman) plus
  ``RandomLogit`` (SSIM). Quantus is given the original maps (``a_batch``), so both sides
  explain ``L + 2`` times per image (``L`` randomised layers): the original maps once (ours in
  ``sanity_check``, Quantus's ``MPRT`` at its first layer), each randomised model, the random
  class. Without ``a_batch`` Quantus would explain the original twice more (``MPRT``'s and
  ``RandomLogit``'s preprocessing), which is not the same job;
* ``road``: ``road(order="combined")`` against ``ROADCombined`` on ``--n-road`` images
  (default 100; the reference needs about 0.3 s per image on one core).

Both sides of ``max_sensitivity`` and ``randomisation`` explain with the same function, the
engine's ``cam`` (:class:`TimedCam`, which adds up the seconds spent in it), so those times are
mostly the explanations' own cost; the rows give it apart (``*_explain_s``) and the ratio of
what is left (``ratio_without_explaining``).

Each measurement is run ``--repeats`` times (default 3), ours and the reference's alternating
(ours first in even repeats, theirs first in odd ones), and the median kept (the machine is
shared: run it with ``nice``); wall-clock seconds on the CPU with ``--threads`` torch threads
(default 1); the whole run again on CUDA when a GPU is present. Values are checked to agree.
``--metrics`` runs some groups only: the others are kept from the results file (marked with
``kept_from``, the date of the run they come from). Results go to
``benchmarks/results/metrics.json``.

Usage::

    nice -n 10 python benchmarks/bench_metrics.py [--n 1000] [--n-explain 100] [--n-road 100]
        [--samples 5] [--repeats 3] [--threads 1] [--metrics array max_sensitivity ...]
        [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.environment import environment  # noqa: E402
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
GROUPS: dict[str, tuple[str, ...]] = {
    "array": ARRAY_METRICS,
    "max_sensitivity": ("max_sensitivity",),
    "randomisation": ("randomisation",),
    "road": ("road_combined",),
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


Run = Callable[[], tuple[Any, float]]
"""One side of a measurement: returns its value and the seconds spent explaining."""


@dataclass
class Job:
    """One metric of one method: our run, the reference's, and how their values differ."""

    metric: str
    ours: Run
    reference: Run
    diff: Callable[[Any, Any], float | None]


def explaining(method: str, fn: Callable[[TimedCam], Any]) -> Run:
    """A :data:`Run` that gives ``fn`` a fresh :class:`TimedCam` and reports its seconds."""

    def run() -> tuple[Any, float]:
        timed = TimedCam(method)
        return fn(timed), timed.seconds

    return run


def plain(fn: Callable[[], Any]) -> Run:
    return lambda: (fn(), 0.0)


def max_abs(ours: Any, ref: Any) -> float:
    return float(np.nanmax(np.abs(np.asarray(ours) - np.asarray(ref, dtype=float))))


def jobs_for(method: str, ctx: dict[str, Any], groups: list[str]) -> list[Job]:
    """Every measurement of one CAM method's maps in ``groups``."""
    import quantus
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    device, model, demo, x = ctx["device"], ctx["model"], ctx["demo"], ctx["x"]
    labels, masks, labels_np = ctx["labels"], ctx["masks"], ctx["labels_np"]
    s_batch, x_np, args = ctx["s_batch"], ctx["x_np"], ctx["args"]
    synchronize(device)
    start = time.perf_counter()
    maps = cam(model, x, LAYER, method, labels.tolist())
    synchronize(device)
    print(f"{device} {method}: maps of {args.n} images in {time.perf_counter() - start:.2f}s",
          flush=True)
    jobs: list[Job] = []
    if "array" in groups:
        common = {"model": model, "x_batch": x_np, "y_batch": labels_np, "a_batch": maps[:, None]}
        mask_t = masks.to(device)
        maps_t = torch.from_numpy(maps).to(device)
        ours_fns: dict[str, Callable[[], Any]] = {
            "relevance_mass_accuracy": lambda: relevance_mass_accuracy(maps_t, mask_t),
            "relevance_rank_accuracy": lambda: relevance_rank_accuracy(maps_t, mask_t),
            "top_k_intersection": lambda: top_k_intersection(maps_t, mask_t, k=1000),
            "sparseness": lambda: sparseness(maps_t),
            "complexity": lambda: complexity(maps_t),
        }
        quantus_fns: dict[str, Callable[[], Any]] = {
            "relevance_mass_accuracy": lambda: quantus.RelevanceMassAccuracy(
                disable_warnings=True)(s_batch=s_batch, **common),
            "relevance_rank_accuracy": lambda: quantus.RelevanceRankAccuracy(
                disable_warnings=True)(s_batch=s_batch, **common),
            "top_k_intersection": lambda: quantus.TopKIntersection(
                k=1000, disable_warnings=True)(s_batch=s_batch, **common),
            "sparseness": lambda: quantus.Sparseness(disable_warnings=True)(**common),
            "complexity": lambda: quantus.Complexity(disable_warnings=True)(**common),
        }
        for metric in ARRAY_METRICS:
            # Quantus's sparseness and complexity: one value per call, not comparable per image
            diff = (lambda o, r: None) if metric in ("sparseness", "complexity") else max_abs
            jobs.append(Job(metric, plain(ours_fns[metric]), plain(quantus_fns[metric]), diff))

    k = args.n_explain
    xe, ye, me, xe_np, ye_np = x[:k], labels[:k], maps[:k], x_np[:k], labels_np[:k]
    if "max_sensitivity" in groups:
        noise = [n.cpu().numpy() for n in sensitivity_noise(xe, args.samples, 0.2, seed=0)]

        def ours_ms(timed: TimedCam) -> np.ndarray:
            return max_sensitivity(model, xe, timed, ye.tolist(), maps=me, layer=LAYER,
                                   samples=args.samples, seed=0)

        def quantus_ms(timed: TimedCam) -> Any:
            stream = iter(noise)

            def perturb(arr: np.ndarray, indices: Any, **kwargs: Any) -> np.ndarray:
                return arr + next(stream).reshape(arr.shape)

            metric = quantus.MaxSensitivity(
                nr_samples=args.samples, perturb_func=perturb, disable_warnings=True)
            return metric(model=model, x_batch=xe_np, y_batch=ye_np, a_batch=me[:, None],
                          explain_func=timed,
                          batch_size=k)  # one batch: each perturbation covers every image

        jobs.append(Job("max_sensitivity", explaining(method, ours_ms),
                        explaining(method, quantus_ms), max_abs))

    if "randomisation" in groups:

        def ours_rand(timed: TimedCam) -> Any:
            return sanity_check(model, xe, timed, ye.tolist(), seed=42, keep_maps=False)

        def quantus_rand(timed: TimedCam) -> Any:
            mprt = quantus.MPRT(layer_order="top_down", seed=42, disable_warnings=True)
            scores = mprt(model=model, x_batch=xe_np, y_batch=ye_np, a_batch=me[:, None],
                          explain_func=timed)
            quantus.RandomLogit(num_classes=len(demo.classes), seed=42, disable_warnings=True)(
                model=model, x_batch=xe_np, y_batch=ye_np, a_batch=me[:, None],
                explain_func=timed)
            return scores

        def rand_diff(check: Any, mprt: Any) -> float:
            return max(
                max_abs(s.scores["spearman"], mprt[s.layer])
                if not np.isnan(s.scores["spearman"]).all() else 0.0
                for s in check.steps
            )

        jobs.append(Job("randomisation", explaining(method, ours_rand),
                        explaining(method, quantus_rand), rand_diff))

    if "road" in groups:
        r = args.n_road
        targets = [ClassifierOutputTarget(int(c)) for c in labels_np[:r]]
        jobs.append(Job(
            "road_combined",
            plain(lambda: road(model, x[:r], maps[:r], labels[:r].tolist(), order="combined")),
            plain(lambda: ROADCombined()(x[:r], maps[:r], targets, model)),
            # with noise on both sides the values differ by the noise: the mean difference
            lambda o, ref: float(np.abs(o - ref).mean()),
        ))
    return jobs


def measure(job: Job, repeats: int, device: torch.device) -> dict[str, Any]:
    """``repeats`` alternating runs of both sides of ``job``: the medians and every run."""
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "reference": []}
    values: dict[str, Any] = {}
    for repeat in range(repeats):
        order = ("ours", "reference") if repeat % 2 == 0 else ("reference", "ours")
        for side in order:
            fn = job.ours if side == "ours" else job.reference
            synchronize(device)
            start = time.perf_counter()
            values[side], explain_s = fn()
            synchronize(device)
            runs[side].append((time.perf_counter() - start, explain_s))
    med = {side: statistics.median(t for t, _ in r) for side, r in runs.items()}
    med_x = {side: statistics.median(x for _, x in r) for side, r in runs.items()}
    return {
        "metric": job.metric,
        "ours_s": med["ours"],
        "reference_s": med["reference"],
        "ratio": med["ours"] / med["reference"] if med["reference"] else None,
        "ours_explain_s": med_x["ours"],
        "reference_explain_s": med_x["reference"],
        "ours_runs_s": [round(t, 4) for t, _ in runs["ours"]],
        "reference_runs_s": [round(t, 4) for t, _ in runs["reference"]],
        "max_abs_diff": job.diff(values["ours"], values["reference"]),
    }


def target_of(metric: str) -> float:
    return 0.5 if metric == "road_combined" else 0.2


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per metric: the sums over the methods, their ratio and the ratio without explaining."""
    totals: dict[str, list[float]] = {}
    for row in rows:
        acc = totals.setdefault(row["metric"], [0.0, 0.0, 0.0, 0.0])
        acc[0] += row["ours_s"]
        acc[1] += row["reference_s"]
        acc[2] += row["ours_explain_s"]
        acc[3] += row["reference_explain_s"]
    summary = {}
    for metric, (ours, theirs, ours_x, theirs_x) in totals.items():
        kept = {r.get("kept_from") for r in rows if r["metric"] == metric} - {None}
        summary[metric] = {
            "ours_s": ours,
            "reference_s": theirs,
            "ratio": ours / theirs,
            "target": target_of(metric),
            "meets_target": ours / theirs <= target_of(metric),
            "ours_explain_s": ours_x,
            "reference_explain_s": theirs_x,
            "explain_share_ours": ours_x / ours if ours else None,
            # the best ratio any speed-up of ours could reach with these explanations
            "ratio_if_ours_only_explained": ours_x / theirs if ours_x else None,
            "ratio_without_explaining": (ours - ours_x) / (theirs - theirs_x)
            if ours_x and theirs > theirs_x else None,
            **({"kept_from": sorted(kept)[0]} if kept else {}),
        }
    return summary


def run_device(device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    demo = demo_model(device)
    model = demo.model
    images, labels, _, masks = make_shapes(args.n, 64, seed=7, return_masks=True)
    x = demo.transform(images).to(device)
    ctx = {
        "device": device, "model": model, "demo": demo, "x": x, "labels": labels,
        "masks": masks, "labels_np": labels.numpy(),
        "s_batch": (masks.numpy() > 0)[:, None].astype(np.float32),
        "x_np": x.cpu().numpy(), "args": args,
    }
    rows: list[dict[str, Any]] = []
    for method in available_cam_methods():
        for job in jobs_for(method, ctx, args.metrics):
            row = {"method": method, **measure(job, args.repeats, device)}
            rows.append(row)
            x_part = (f"  (explaining: {row['ours_explain_s']:.2f}s / "
                      f"{row['reference_explain_s']:.2f}s)" if row["ours_explain_s"] else "")
            diff = row["max_abs_diff"]
            print(f"  {method:20s} {job.metric:24s} ours {row['ours_s']:8.3f}s  ref "
                  f"{row['reference_s']:8.3f}s  ratio {row['ratio']:.3f}{x_part}"
                  + ("" if diff is None else f"  diff {diff:.1e}"), flush=True)
    return {
        "device": str(device),
        "images": {"array": args.n, "explain": args.n_explain, "road": args.n_road},
        "samples": args.samples,
        "repeats": args.repeats,
        "rows": rows,
    }


def keep_previous(results: list[dict[str, Any]], out: Path, run: list[str]) -> None:
    """Add to ``results`` the rows of the groups not run now from the previous results file
    (each marked ``kept_from``: the date it was written)."""
    skipped = [m for g, names in GROUPS.items() if g not in run for m in names]
    if not skipped or not out.exists():
        return
    previous = json.loads(out.read_text(encoding="utf-8"))
    for res in results:
        old = next((r for r in previous["results"] if r["device"] == res["device"]), None)
        if old is None:
            continue
        for row in old["rows"]:
            if row["metric"] in skipped:
                row.setdefault("kept_from", previous["written"])
                row.setdefault("ours_explain_s", 0.0)
                row.setdefault("reference_explain_s", 0.0)
                res["rows"].append(row)


def finish(res: dict[str, Any]) -> None:
    """The summary and the total over the Quantus metrics of one device's rows."""
    res["summary"] = summarise(res["rows"])
    quantus_metrics = [m for m in res["summary"] if m != "road_combined"]
    ours = sum(res["summary"][m]["ours_s"] for m in quantus_metrics)
    theirs = sum(res["summary"][m]["reference_s"] for m in quantus_metrics)
    res["quantus_total"] = {"ours_s": ours, "reference_s": theirs,
                            "ratio": ours / theirs if theirs else None, "target": 0.2}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="images for the array metrics")
    parser.add_argument("--n-explain", type=int, default=100, help="images for the others")
    parser.add_argument("--n-road", type=int, default=100, help="images for ROAD")
    parser.add_argument("--samples", type=int, default=5, help="max-sensitivity samples")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs, median kept")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--metrics", nargs="+", choices=list(GROUPS), default=list(GROUPS),
                        help="the groups to run (the others are kept from --out)")
    parser.add_argument("--quick", action="store_true", help="a few images (a smoke test)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "metrics.json"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.n_explain, args.n_road, args.samples, args.repeats = 16, 4, 4, 2, 1
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    started = time.perf_counter()
    results = [run_device(device, args) for device in devices]
    if not args.quick:
        keep_previous(results, args.out, args.metrics)
    for res in results:
        finish(res)
    print(
        "\n| device | metric | ours (s) | reference (s) | ratio | target "
        "| explaining, ours / reference (s) | ratio without the explanations |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for res in results:
        for metric, s in res["summary"].items():
            rest = s["ratio_without_explaining"]
            print(
                f"| {res['device']} | {metric} | {s['ours_s']:.2f} | {s['reference_s']:.2f} | "
                f"{s['ratio']:.3f} | <= {s['target']} | "
                + (f"{s['ours_explain_s']:.2f} / {s['reference_explain_s']:.2f}"
                   if s["ours_explain_s"] else "")
                + " | " + ("" if rest is None else f"{rest:.3f}") + " |"
            )
        t = res["quantus_total"]
        print(f"| {res['device']} | all Quantus metrics | {t['ours_s']:.2f} | "
              f"{t['reference_s']:.2f} | {t['ratio']:.3f} | <= 0.2 | | |")
    report = {
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        **environment(args.threads, args.quick, ("quantus", "grad-cam")),
        "metrics_run": args.metrics,
        "seconds": time.perf_counter() - started,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
