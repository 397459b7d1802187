"""Speed and memory of ``top_examples`` (issue 14's benchmark list). Not a timed test: run it
and read the table; the figures go into the note.

Cases:

1. ``throughput``: all 16 bottleneck blocks of a random ResNet-50 at 224 px over 512 generated
   images (batch 32), against a plain ``model(x)`` loop over the same DataLoader; ratio =
   plain time / ours (throughput relative to the plain loop) [>= 0.8].
2. ``memory``: peak RSS of a run over 1,000 and over 10,000 images (the demo model, every conv
   layer, 32 px images made on the fly from their index), each in a fresh process; the growth
   [<= 50 MB].
3. ``processes``: the same run (random ResNet-18, every block, 112 px, 256 images) in one
   process with 1 and with 2 threads, and as 2 processes under torchrun (gloo, 1 thread each);
   speed-up over each, and whether the results are equal (2 cores here: near 1 is expected).
4. ``crp``: zennit-crp's ``FeatureVisualization`` on case 1's model and blocks (64 of the
   images: it is slow), when ``crp`` imports (``pip install --target DIR zennit-crp`` then
   ``PYTHONPATH=DIR``). It also runs an LRP backward pass for relevance and keeps relevance
   and activation statistics, so it computes more than ``top_examples``.

Usage::

    python benchmarks/bench_top_examples.py [--quick] [--cases throughput,memory,...]
                                            [--threads 2] [--repeats 3] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torchvision

warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnviz_widgets.demo import make_shapes  # noqa: E402
from cnnviz_widgets.engine import IMAGENET_MEAN, IMAGENET_STD, normalize  # noqa: E402
from cnnviz_widgets.engine.examples import top_examples  # noqa: E402

CASES = ("throughput", "memory", "processes", "crp")


def blocks(model: torch.nn.Module) -> list[str]:
    """The residual blocks of a torchvision ResNet: ``layer1.0`` ... ``layer4.2``."""
    return [
        f"layer{i}.{j}" for i in range(1, 5) for j in range(len(getattr(model, f"layer{i}")))
    ]


def shapes_tensor(n: int, size: int) -> torch.utils.data.TensorDataset:
    images, labels, _ = make_shapes(n, size, seed=0)
    return torch.utils.data.TensorDataset(normalize(images, IMAGENET_MEAN, IMAGENET_STD), labels)


def result_hash(result: Any) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for name in result.layers:
        for part in (result.indices(name), result.scores(name), result.positions(name)):
            digest.update(part.numpy().tobytes())
    return digest.hexdigest()


class OnTheFly(torch.utils.data.Dataset):
    """``n`` random 32 px images, each made from its index (nothing held in memory)."""

    def __init__(self, n: int, size: int = 32) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        g = torch.Generator().manual_seed(i)
        return torch.randn(3, self.size, self.size, generator=g), i % 8


def throughput(n: int, size: int, batch: int, repeats: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    data = shapes_tensor(n, size)
    loader = torch.utils.data.DataLoader(data, batch_size=batch)
    names = blocks(model)

    def plain() -> None:
        with torch.inference_mode():
            for x, _ in loader:
                model(x)

    def ours() -> Any:
        return top_examples(model, loader, names, k=9, progress=False)

    with torch.inference_mode():
        model(data.tensors[0][:batch])  # warm-up
    times: dict[str, list[float]] = {"plain": [], "ours": []}
    cpu: dict[str, list[float]] = {"plain": [], "ours": []}
    for _ in range(repeats):  # alternate, so that load from elsewhere hits both alike
        for name, fn in (("plain", plain), ("ours", ours)):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    plain_s, ours_s = min(times["plain"]), min(times["ours"])
    return {
        "case": "throughput",
        "description": f"resnet50, 16 blocks, {size}px, {n} images, batch {batch}",
        "plain_s": plain_s,
        "ours_s": ours_s,
        "ratio": plain_s / ours_s,
        "cpu_ratio": min(cpu["plain"]) / min(cpu["ours"]),
        "target": ">= 0.8",
        "ok": plain_s / ours_s >= 0.8,
        "runs": times,
        "cpu_runs": cpu,
    }


def _status_kb(key: str) -> int | None:
    """``VmHWM`` (peak RSS) or ``VmRSS`` of this process in kB, from /proc (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_worker(n: int) -> None:
    from cnnviz_widgets.demo import demo_model

    torch.set_num_threads(1)
    model = demo_model().model
    top_examples(model, OnTheFly(64), k=9, batch_size=64, progress=False)  # one-time set-up
    try:  # reset the peak-RSS mark, so that the peak of the run itself is measured
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    before = _status_kb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    top_examples(model, OnTheFly(n), k=9, batch_size=64, progress=False)
    seconds = time.perf_counter() - start
    peak = (_status_kb("VmHWM") if reset else None) or resource.getrusage(
        resource.RUSAGE_SELF
    ).ru_maxrss
    print(json.dumps({"n": n, "peak_kb": peak, "before_kb": before, "seconds": seconds,
                      "peak_of_run_only": reset}))


def memory(counts: tuple[int, int]) -> dict[str, Any]:
    runs = []
    for n in counts:
        out = subprocess.run(
            [sys.executable, __file__, "memory-worker", str(n)],
            capture_output=True, text=True, check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    growth_mb = (runs[1]["peak_kb"] - runs[0]["peak_kb"]) / 1024
    return {
        "case": "memory",
        "description": f"demo model, every conv, 32px, {counts[0]} vs {counts[1]} images",
        "rss_before_mb": [r["before_kb"] / 1024 for r in runs],
        "peak_mb": [r["peak_kb"] / 1024 for r in runs],
        "peak_of_run_only": all(r["peak_of_run_only"] for r in runs),
        "seconds": [r["seconds"] for r in runs],
        "growth_mb": growth_mb,
        "target": "<= 50",
        "ok": growth_mb <= 50,
    }


def process_worker(n: int, size: int, out: str) -> None:
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    data = shapes_tensor(n, size)
    if dist.is_initialized():
        dist.barrier()
    start = time.perf_counter()
    result = top_examples(model, data, blocks(model), k=9, batch_size=16, progress=False)
    seconds = time.perf_counter() - start
    if not dist.is_initialized() or dist.get_rank() == 0:
        Path(out).write_text(json.dumps({"seconds": seconds, "hash": result_hash(result)}))
    if dist.is_initialized():
        dist.destroy_process_group()


def processes(n: int, size: int) -> dict[str, Any]:
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, prefix, threads in (
            ("1 process, 1 thread", [sys.executable], "1"),
            ("1 process, 2 threads", [sys.executable], "2"),
            ("2 processes, 1 thread each", [torchrun, "--standalone", "--nproc_per_node=2"], "1"),
        ):
            out = Path(tmp) / "out.json"
            subprocess.run(
                [*prefix, __file__, "process-worker", str(n), str(size), str(out)],
                env={**os.environ, "OMP_NUM_THREADS": threads}, check=True,
                capture_output=True, text=True,
            )
            runs[name] = json.loads(out.read_text())
    one, two_threads, two = (runs[k] for k in runs)
    return {
        "case": "processes",
        "description": f"resnet18, 8 blocks, {size}px, {n} images, batch 16",
        "seconds": {k: v["seconds"] for k, v in runs.items()},
        "speedup_vs_1_thread": one["seconds"] / two["seconds"],
        "speedup_vs_2_threads": two_threads["seconds"] / two["seconds"],
        "equal_to_1_process_1_thread": one["hash"] == two["hash"],
        "equal_to_1_process_2_threads": two_threads["hash"] == two["hash"],
        "target": "report; equal results",
        "ok": one["hash"] == two["hash"],
    }


def crp(n: int, size: int, batch: int) -> dict[str, Any]:
    try:
        from crp.attribution import CondAttribution
        from crp.concepts import ChannelConcept
        from crp.visualization import FeatureVisualization
        from zennit.composites import EpsilonPlusFlat
        from zennit.torchvision import ResNetCanonizer
    except ImportError as err:
        return {"case": "crp", "description": f"skipped: {err}", "ok": None}
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    data = shapes_tensor(n, size)
    names = blocks(model)
    start = time.perf_counter()
    top_examples(model, data, names, k=9, batch_size=batch, progress=False)
    ours_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        attribution = CondAttribution(model, no_param_grad=True)
        fv = FeatureVisualization(
            attribution, data, {name: ChannelConcept() for name in names}, path=tmp
        )
        composite = EpsilonPlusFlat([ResNetCanonizer()])
        start = time.perf_counter()
        fv.run(composite, 0, n, batch_size=batch, checkpoint=10_000)
        crp_s = time.perf_counter() - start
    return {
        "case": "crp",
        "description": (
            f"resnet50, 16 blocks, {size}px, {n} images, batch {batch}; zennit-crp "
            "FeatureVisualization.run (forward + LRP backward, relevance and activation top "
            "examples and per-class statistics, written to disk) vs top_examples (forward, "
            "activation top-k)"
        ),
        "crp_s": crp_s,
        "ours_s": ours_s,
        "ratio": ours_s / crp_s,
        "ok": None,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "memory-worker":
        memory_worker(int(argv[1]))
        return 0
    if argv and argv[0] == "process-worker":
        process_worker(int(argv[1]), int(argv[2]), argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer and smaller images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="throughput: runs of each")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument(
        "--out", type=Path, default=None,
        help="JSON file (default: benchmarks/results/top_examples[_quick].json); the figures of "
        "cases not run are kept",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        name = "top_examples_quick.json" if args.quick else "top_examples.json"
        args.out = ROOT / "benchmarks" / "results" / name
    torch.set_num_threads(args.threads)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}; choose from {CASES}")
    n, size = (64, 96) if args.quick else (512, 224)
    results = []
    for case in cases:
        print(f"{case} ...", flush=True)
        if case == "throughput":
            results.append(throughput(n, size, 32, args.repeats))
        elif case == "memory":
            results.append(memory((200, 2000) if args.quick else (1_000, 10_000)))
        elif case == "processes":
            results.append(processes(64 if args.quick else 256, 64 if args.quick else 112))
        elif case == "crp":  # an LRP backward per image: fewer images
            results.append(crp(32 if args.quick else 64, size, 32))
        print(json.dumps(results[-1], indent=2), flush=True)
    if args.out.exists():  # keep the figures of the cases not run this time
        earlier = json.loads(args.out.read_text()).get("results", [])
        ran = {r["case"] for r in results}
        results = [r for r in earlier if r["case"] not in ran] + results
        results.sort(key=lambda r: CASES.index(r["case"]))
    report = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "quick": args.quick,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
