"""Jobs that the dataset-examples tests run in other processes, and the test data they share.

``python tests/helpers/top_examples_job.py resume ...``: a run with a checkpoint that dies with
``os._exit`` (no clean-up, like a killed process) after some batches.

``torchrun --standalone --nproc_per_node=2 tests/helpers/top_examples_job.py dist ...``: the API
under torchrun, over a dataset that records which items each process read, with a checkpoint that a
second call finds finished.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cnnviz_widgets.demo import SHAPE_CLASSES, make_shapes  # noqa: E402

FOLDER_K = 4
FOLDER_BATCH = 8


def write_shapes_folder(root: Path, n: int = 64, size: int = 64, seed: int = 3) -> Path:
    """``n`` generated shape images as PNG files in one sub-folder per class."""
    images, labels, _ = make_shapes(n, size, seed)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / SHAPE_CLASSES[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        rgb = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(rgb).save(folder / f"{i:04d}.png")
    assert len(list(root.glob("*/*.png"))) == n, f"{root} does not hold the {n} images written"
    return root


def folder_run(data: str, **kwargs):
    """The folder run every process-level test compares against (demo model, k=4, batch 8)."""
    from cnnviz_widgets import top_examples
    from cnnviz_widgets.demo import demo_model

    kwargs.setdefault("progress", False)
    return top_examples(
        demo_model().model, data, k=FOLDER_K, batch_size=FOLDER_BATCH, **kwargs
    )


def resume_job(args: argparse.Namespace) -> None:
    def die(done: int, total: int) -> None:
        if done >= args.exit_after * FOLDER_BATCH:
            os._exit(17)  # no finally blocks, no clean-up: like a killed process

    folder_run(args.data, checkpoint=args.checkpoint, checkpoint_every=2, progress=die)
    raise SystemExit("the run should have died before its end")


class LoggedFolder(torch.utils.data.Dataset):
    """A folder's images that remember which items were read in this process."""

    def __init__(self, root: str) -> None:
        from cnnviz_widgets.demo.model import INPUT_SIZE, MEAN, STD
        from cnnviz_widgets.engine.data import Transform
        from cnnviz_widgets.engine.examples import ImageFiles

        self.files = ImageFiles(root, Transform(size=INPUT_SIZE, mean=MEAN, std=STD))
        self.read: list[int] = []

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        self.read.append(index)
        return self.files[index]


def dist_job(args: argparse.Namespace) -> None:
    import torch.distributed as dist

    work = Path(args.work)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    data = LoggedFolder(args.data)
    from cnnviz_widgets import top_examples
    from cnnviz_widgets.demo import demo_model

    model = demo_model().model
    result = top_examples(
        model, data, k=FOLDER_K, batch_size=FOLDER_BATCH, progress=False,
        checkpoint=work / "api-checkpoint.npz", score=args.score,
    )
    reads: list[list[int]] = [[] for _ in range(world)]
    dist.all_gather_object(reads, data.read[4:])  # the first 4 reads are the data fingerprint
    mine = set(reads[rank])
    others = {i for r, items in enumerate(reads) if r != rank for i in items}
    assert mine and not mine & others, f"rank {rank} read items of another rank: {reads}"
    again = LoggedFolder(args.data)  # finished checkpoint: the same result, nothing read again
    second = top_examples(
        model, again, k=FOLDER_K, batch_size=FOLDER_BATCH, progress=False,
        checkpoint=work / "api-checkpoint.npz", score=args.score,
    )
    same = all(
        torch.equal(result.indices(name), second.indices(name)) for name in result.layers
    )
    if rank == 0:
        result.save(work / "api.npz")
        (work / "reads.json").write_text(
            json.dumps({"reads": reads, "same_after_resume": same, "read_again": again.read[4:]})
        )
    dist.destroy_process_group()


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="job", required=True)
    resume = sub.add_parser("resume")
    resume.add_argument("--data", required=True)
    resume.add_argument("--checkpoint", required=True)
    resume.add_argument("--exit-after", type=int, required=True)
    job = sub.add_parser("dist")
    job.add_argument("--data", required=True)
    job.add_argument("--work", required=True)
    job.add_argument("--score", default="max")
    args = parser.parse_args()
    {"resume": resume_job, "dist": dist_job}[args.job](args)


if __name__ == "__main__":
    main()
