"""N boxes of one image: ``cam_per_target`` (one forward, N backward) against N calls.

Run: ``.venv/bin/python benchmarks/bench_detection.py [--threads 2] [--boxes 8]``; writes
``benchmarks/results/detection.json``. Random-init torchvision detectors (timings do not
depend on the weights; ``box_score_thresh=0`` so that there are boxes to explain) on one
320 x 384 image at ``min_size=320``: Faster R-CNN MobileNetV3-FPN at ``backbone.body.16`` and
RetinaNet ResNet-50-FPN at ``backbone.body.layer4``, GradCAM of each of N detected boxes:

* ``ours_per_target``: ``cam_per_target(model, x, layer, "GradCAM", N BoxTargets)``;
* ``ours_n_calls``: ``cam(model, x, layer, "GradCAM", box)`` once per box;
* ``reference_n_calls``: pytorch-grad-cam's ``GradCAM`` with ``FasterRCNNBoxScoreTarget``
  once per box, as its tutorial does, on its own copy of the model (every parameter with
  ``requires_grad``, as a user's model has).

Forward passes are counted by a hook on the model; best of ``--repeats`` runs. Target (issue
16): one forward pass and N backward passes for N boxes, not N forward passes.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import time
from pathlib import Path

import pytorch_grad_cam as pgc
import torch
from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
from torchvision.models import detection

from cnnviz_widgets import cam, cam_per_target, detections

ROOT = Path(__file__).resolve().parents[1]


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def forwards(model: torch.nn.Module, fn) -> int:
    """How many times ``fn`` runs ``model``'s forward."""
    calls: list[int] = []
    handle = model.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        fn()
    finally:
        handle.remove()
    return len(calls)


def build(name: str) -> tuple[torch.nn.Module, str]:
    torch.manual_seed(0)
    small = {"min_size": 320, "max_size": 512, "num_classes": 5}
    if name == "fasterrcnn_mobilenet_v3_large_fpn":
        model = detection.fasterrcnn_mobilenet_v3_large_fpn(
            weights=None, weights_backbone=None, box_score_thresh=0.0, **small
        )
        return model.eval(), "backbone.body.16"
    model = detection.retinanet_resnet50_fpn(
        weights=None, weights_backbone=None, score_thresh=0.0, **small
    )
    return model.eval(), "backbone.body.layer4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--boxes", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/detection.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 320, 384, generator=g)
    results: dict[str, object] = {"threads": args.threads, "boxes": args.boxes,
                                  "image": [320, 384], "method": "GradCAM"}
    for name in ("fasterrcnn_mobilenet_v3_large_fpn", "retinanet_resnet50_fpn"):
        model, layer = build(name)
        found = detections(model, x, score_threshold=0.0)[0]
        targets = found.targets()[: args.boxes]
        reference = copy.deepcopy(model)

        def ours(model=model, layer=layer, targets=targets) -> None:
            cam_per_target(model, x, layer, "GradCAM", targets)

        def ours_calls(model=model, layer=layer, targets=targets) -> None:
            for t in targets:
                cam(model, x, layer, "GradCAM", t)

        def theirs(reference=reference, layer=layer, targets=targets) -> None:
            with contextlib.redirect_stdout(io.StringIO()), pgc.GradCAM(
                reference, [reference.get_submodule(layer)]
            ) as engine:
                for t in targets:
                    engine(x.clone(), [FasterRCNNBoxScoreTarget(list(t.labels), t.boxes.numpy())])
            reference.zero_grad(set_to_none=True)

        ours()  # warm up (and the first-call costs of both)
        theirs()
        entry = {
            "layer": layer,
            "forwards_per_target": forwards(model, ours),
            "forwards_n_calls": forwards(model, ours_calls),
            "forwards_reference": forwards(reference, theirs),
            "ours_per_target_s": round(best_of(args.repeats, ours), 3),
            "ours_n_calls_s": round(best_of(args.repeats, ours_calls), 3),
            "reference_n_calls_s": round(best_of(args.repeats, theirs), 3),
        }
        entry["reference_over_ours"] = round(
            entry["reference_n_calls_s"] / entry["ours_per_target_s"], 2
        )
        entry["n_calls_over_per_target"] = round(
            entry["ours_n_calls_s"] / entry["ours_per_target_s"], 2
        )
        results[name] = entry
        print(name, entry, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
