"""``evaluate`` over a small dataset of the demo model, the same in one process and under
torchrun; the test in test_evaluate_distributed.py compares the two.

``torchrun --standalone --nproc_per_node=2 tests/helpers/evaluate_job.py --out FILE``: every
process evaluates (gloo, CPU), rank 0 writes the result and which items each process read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cnnviz_widgets.demo import demo_model, make_shapes  # noqa: E402

IMAGES, BATCH, SEED = 14, 4, 7  # batches of 4, 4, 4, 2: two processes read two each
METHODS = ["GradCAM", "vanilla"]
# every metric that draws random numbers (ROAD's noise, max-sensitivity's perturbations, the
# randomised model, the random classes), a model-free one and a localisation one
METRICS = [
    "deletion_auc",
    "road_combined",
    "max_sensitivity",
    "model_randomisation",
    "random_logit",
    "relevance_mass_accuracy",
    "sparseness",
]
OPTIONS = {"deletion_auc": {"steps": 8}, "max_sensitivity": {"samples": 3}}


class Shapes(torch.utils.data.Dataset):
    """Demo images ``(image, label, mask)`` that remember which items this process read."""

    def __init__(self) -> None:
        demo = demo_model()
        images, labels, _, masks = make_shapes(IMAGES, 64, seed=5, return_masks=True)
        self.images = demo.transform(images)
        self.labels, self.masks = labels, masks
        self.read: list[int] = []

    def __len__(self) -> int:
        return IMAGES

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.read.append(i)
        return self.images[i], self.labels[i], self.masks[i]


def run(data: Shapes):
    """The evaluation both sides run (predicted classes, the demo's CAM layer)."""
    from cnnviz_widgets.engine.metrics import evaluate

    return evaluate(
        demo_model().model, data, METHODS, METRICS, layer="features.11", batch_size=BATCH,
        seed=SEED, options=OPTIONS,
    )


def as_record(result: Any) -> dict[str, Any]:
    """An Evaluation as JSON-able lists (NaN kept as None), per-image values and summary."""

    def clean(values: np.ndarray) -> list[float | None]:
        return [None if np.isnan(v) else float(v) for v in values]

    return {
        "indices": result.indices.tolist(),
        "targets": result.targets.tolist(),
        "labels": None if result.labels is None else result.labels.tolist(),
        "values": {f"{m}|{k}": clean(v) for (m, k), v in result.values.items()},
        "summary": result.summary,
    }


def main() -> None:
    import torch.distributed as dist

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    data = Shapes()
    result = run(data)
    reads: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(reads, data.read)
    if dist.get_rank() == 0:
        read = sorted(i for items in reads for i in items)
        assert read == list(range(IMAGES)), f"the processes did not read every item once: {reads}"
        assert result.indices.tolist() == list(range(IMAGES)), result.indices
        record = {**as_record(result), "world": dist.get_world_size(), "reads": reads}
        Path(args.out).write_text(json.dumps(record))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
