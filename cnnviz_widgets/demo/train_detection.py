"""Reproducible training of the bundled demo detector and segmenter.

Run::

    python -m cnnviz_widgets.demo.train_detection --task detection \\
        --out cnnviz_widgets/data/shapes_detector.pt
    python -m cnnviz_widgets.demo.train_detection --task segmentation \\
        --out cnnviz_widgets/data/shapes_segmenter.pt

Every epoch draws fresh scenes from :func:`~cnnviz_widgets.demo.scenes.make_scenes` (seed
``TRAIN_SEED_BASE[task] + epoch``; the first epochs with less clutter, as a curriculum, as the
classifier's training in :mod:`cnnviz_widgets.demo.train` does), so no scene is seen twice and
no augmentation is needed. The detector (:func:`~cnnviz_widgets.demo.detection.shapes_detector`,
torchvision's FCOS) is trained on its own losses (focal classification, GIoU box regression,
centre-ness); the segmenter (:func:`~cnnviz_widgets.demo.detection.shapes_segmenter`,
torchvision's FCN) on per-pixel cross-entropy. Both with AdamW and a one-cycle learning-rate
schedule. The ``state_dict`` is saved with float16 floating-point tensors (loadable with
``torch.load(..., weights_only=True)``), and the script ends by scoring exactly what was saved
on held-out scenes (seed ``VALIDATION_SEED``, never used for training): mAP at IoU 0.5 for the
detector, mean IoU for the segmenter.

Runs are seeded, use ``torch.use_deterministic_algorithms`` and a fixed number of threads
(``--threads``, default 1, so that the two trainings run side by side on a two-core machine):
the same command on the same machine gives the same weights.
Results can still differ in the last bits between machines and thread counts (the order of
floating-point reductions in the convolutions does).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnviz_widgets.demo.detection import SCENE_SIZE, shapes_detector, shapes_segmenter
from cnnviz_widgets.demo.scenes import SCENE_CLASSES, Scenes, make_scenes

__all__ = [
    "EPOCHS",
    "SCENES_PER_EPOCH",
    "TRAIN_SEED_BASE",
    "VALIDATION_SEED",
    "average_precision",
    "evaluate_detector",
    "evaluate_segmenter",
    "main",
    "mean_average_precision",
    "mean_iou",
    "shipped_state",
    "train",
]

Task = Literal["detection", "segmentation"]

TRAIN_SEED_BASE: dict[str, int] = {"detection": 40_000, "segmentation": 50_000}
"""Epoch ``e`` of a task trains on ``make_scenes(..., seed=TRAIN_SEED_BASE[task] + e)``."""
VALIDATION_SEED = 999_961
"""Seed of the held-out scenes the script reports its scores on."""
EPOCHS: dict[str, int] = {"detection": 10, "segmentation": 10}
"""Default number of epochs (of ``SCENES_PER_EPOCH`` scenes) per task."""
SCENES_PER_EPOCH = 4_000


# --------------------------------------------------------------------------------------
# Quality measures
# --------------------------------------------------------------------------------------


def _iou_matrix(a: Tensor, b: Tensor) -> Tensor:
    """``(K, M)`` IoU of boxes ``(x1, y1, x2, y2)``."""
    from torchvision.ops import box_iou

    return box_iou(a.float(), b.float())


def average_precision(scores: Sequence[float], matched: Sequence[bool], num_true: int) -> float:
    """All-point interpolated average precision (PASCAL VOC 2010 on, COCO without its
    101-point sampling) of one class.

    Args:
        scores: the score of each detection of the class, over all images.
        matched: per detection, whether it is a true positive (matched a true object).
        num_true: the number of true objects of the class.

    Returns:
        The area under the precision-recall curve after making precision non-increasing in
        recall (each precision replaced by the best precision at any higher recall), in
        [0, 1]; detections are taken by decreasing score (ties: in the given order). 0 when
        ``num_true`` is 0 (the caller leaves such classes out of a mean).
    """
    if num_true <= 0:
        return 0.0
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    tp = np.asarray(matched, dtype=np.float64)[order]
    fp = 1.0 - tp
    tp_cum, fp_cum = np.cumsum(tp), np.cumsum(fp)
    recall = tp_cum / num_true
    precision = tp_cum / np.maximum(tp_cum + fp_cum, 1e-12)
    # envelope: precision at recall r is the best precision at any recall >= r
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[1.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def mean_average_precision(
    pred_boxes: Sequence[Tensor],
    pred_labels: Sequence[Tensor],
    pred_scores: Sequence[Tensor],
    true_boxes: Sequence[Tensor],
    true_labels: Sequence[Tensor],
    iou_threshold: float = 0.5,
) -> tuple[float, dict[int, float]]:
    """Mean over classes of :func:`average_precision` at one IoU threshold (VOC's mAP@0.5).

    Per image and class, detections are matched by decreasing score: each takes the unmatched
    true box of its class with the highest IoU, when that IoU is at least ``iou_threshold``
    (a true positive); otherwise, and for a second detection of an already matched box, it is
    a false positive.

    Args:
        pred_boxes, pred_labels, pred_scores: per image, ``(K, 4)`` boxes ``(x1, y1, x2, y2)``,
            ``(K,)`` labels and ``(K,)`` scores of the detections.
        true_boxes, true_labels: per image, ``(M, 4)`` boxes and ``(M,)`` labels.
        iou_threshold: the IoU a detection needs with a true box to match it.

    Returns:
        ``(mAP, {label: AP})`` over the labels that have at least one true object.
    """
    if (
        not len(pred_boxes)
        == len(pred_labels)
        == len(pred_scores)
        == len(true_boxes)
        == len(true_labels)
    ):
        raise ValueError("mean_average_precision needs one entry per image in every argument")
    scores: dict[int, list[float]] = {}
    matched: dict[int, list[bool]] = {}
    counts: dict[int, int] = {}
    for pb, pl, ps, tb, tl in zip(
        pred_boxes, pred_labels, pred_scores, true_boxes, true_labels, strict=True
    ):
        for label in set(tl.tolist()):
            counts[label] = counts.get(label, 0) + int((tl == label).sum())
        for label in set(pl.tolist()):
            sel = (pl == label).nonzero()[:, 0]
            sel = sel[torch.argsort(-ps[sel], stable=True)]
            truth = tb[tl == label]
            taken = torch.zeros(len(truth), dtype=torch.bool)
            ious = _iou_matrix(pb[sel], truth) if len(truth) else None
            for row, i in enumerate(sel.tolist()):
                hit = False
                if ious is not None:
                    cand = ious[row].masked_fill(taken, -1.0)
                    j = int(cand.argmax())
                    if float(cand[j]) >= iou_threshold:
                        taken[j] = True
                        hit = True
                scores.setdefault(label, []).append(float(ps[i]))
                matched.setdefault(label, []).append(hit)
    per_class = {
        label: average_precision(scores.get(label, []), matched.get(label, []), n)
        for label, n in sorted(counts.items())
    }
    mean = float(np.mean(list(per_class.values()))) if per_class else 0.0
    return mean, per_class


def mean_iou(
    pred: Tensor, true: Tensor, num_classes: int = len(SCENE_CLASSES)
) -> tuple[float, list[float]]:
    """Mean over classes of the intersection over union of predicted and true masks, each
    class's IoU counted over all images together (PASCAL VOC's mIoU).

    Args:
        pred: ``(N, H, W)`` int predicted class per pixel.
        true: ``(N, H, W)`` int true class per pixel.
        num_classes: classes ``0 .. num_classes - 1`` (the background, 0, included).

    Returns:
        ``(mIoU, per-class IoU)``; the mean is over the classes present in ``true`` or
        ``pred`` (an absent class has IoU ``nan`` in the list).
    """
    if pred.shape != true.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and true {tuple(true.shape)} differ")
    index = true.reshape(-1).long() * num_classes + pred.reshape(-1).long()
    confusion = torch.bincount(index, minlength=num_classes**2).reshape(num_classes, -1)
    confusion = confusion.double()
    inter = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - inter
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.nan)
    present = union > 0
    return float(iou[present].mean()), iou.tolist()


@torch.no_grad()
def evaluate_detector(
    model: nn.Module, scenes: Scenes, batch: int = 64
) -> tuple[float, dict[int, float]]:
    """:func:`mean_average_precision` at IoU 0.5 of ``model`` (run in eval mode, left in eval
    mode) on ``scenes``; every box the model returns counts (FCOS's own score threshold)."""
    model.eval()
    boxes, labels, scores = [], [], []
    for i in range(0, scenes.images.shape[0], batch):
        for out in model(scenes.images[i : i + batch]):
            boxes.append(out["boxes"])
            labels.append(out["labels"])
            scores.append(out["scores"])
    return mean_average_precision(boxes, labels, scores, scenes.boxes, scenes.labels)


@torch.no_grad()
def evaluate_segmenter(
    model: nn.Module, scenes: Scenes, batch: int = 64
) -> tuple[float, list[float]]:
    """:func:`mean_iou` of ``model``'s argmax classes (run in eval mode) on ``scenes``."""
    model.eval()
    pred = torch.cat(
        [
            model(scenes.images[i : i + batch])["out"].argmax(1)
            for i in range(0, scenes.images.shape[0], batch)
        ]
    )
    return mean_iou(pred, scenes.masks)


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def _loss(model: nn.Module, task: Task, scenes: Scenes, idx: Tensor) -> Tensor:
    images = scenes.images[idx]
    if task == "detection":
        targets = [{"boxes": scenes.boxes[i], "labels": scenes.labels[i]} for i in idx.tolist()]
        losses = model(images, targets)
        return losses["classification"] + losses["bbox_regression"] + losses["bbox_ctrness"]
    images = images.contiguous(memory_format=torch.channels_last)
    return F.cross_entropy(model(images)["out"], scenes.masks[idx])


def train(
    task: Task,
    epochs: int | None = None,
    scenes_per_epoch: int = SCENES_PER_EPOCH,
    batch_size: int = 16,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    curriculum_epochs: int = 3,
    log_every: int = 50,
) -> nn.Module:
    """Train the demo detector or segmenter on fresh scenes every epoch.

    During the first ``curriculum_epochs`` epochs the scenes are rendered with less clutter,
    rising linearly from a quarter of the full amount to all of it; later epochs use exactly
    the scenes of :func:`~cnnviz_widgets.demo.scenes.make_scenes`.

    ``epochs``: default ``EPOCHS[task]``. The models train in channels-last memory format
    (a quarter faster on the CPU).

    Returns the trained model in eval mode.
    """
    if task not in ("detection", "segmentation"):
        raise ValueError(f"task must be 'detection' or 'segmentation', got {task!r}")
    epochs = EPOCHS[task] if epochs is None else epochs
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = shapes_detector() if task == "detection" else shapes_segmenter()
    model = model.to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0}],
        lr=lr,
    )
    steps_per_epoch = scenes_per_epoch // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=max(epochs * steps_per_epoch, 1), pct_start=0.15
    )
    step = 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        clutter = min(1.0, 0.25 + 0.75 * epoch / curriculum_epochs) if curriculum_epochs else 1.0
        scenes = make_scenes(
            scenes_per_epoch, SCENE_SIZE, TRAIN_SEED_BASE[task] + epoch, clutter=clutter
        )
        t_gen = time.perf_counter() - t0
        model.train()
        order = torch.randperm(scenes_per_epoch, generator=gen)
        running, seen = 0.0, 0
        for b in range(steps_per_epoch):
            idx = order[b * batch_size : (b + 1) * batch_size]
            loss = _loss(model, task, scenes, idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sched.step()
            step += 1
            running += float(loss.detach()) * len(idx)
            seen += len(idx)
            if log_every and step % log_every == 0:
                print(f"  step {step:5d}  loss {running / seen:.4f}", flush=True)
        print(
            f"epoch {epoch + 1}/{epochs}  clutter {clutter:.2f}  loss "
            f"{running / max(seen, 1):.4f}  ({time.perf_counter() - t0:.0f} s, data "
            f"{t_gen:.1f} s)",
            flush=True,
        )
    return model.eval()


def shipped_state(model: nn.Module) -> dict[str, Tensor]:
    """``model``'s state dict as shipped: floating-point tensors in float16, others as is."""
    return {
        k: (v.detach().to(torch.float16) if v.is_floating_point() else v.detach()).contiguous()
        for k, v in model.state_dict().items()
    }


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=("detection", "segmentation"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=None, help=f"default {EPOCHS}")
    parser.add_argument("--scenes-per-epoch", type=int, default=SCENES_PER_EPOCH)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--curriculum-epochs", type=int, default=3)
    parser.add_argument("--holdout", type=int, default=500, help="held-out scenes to score")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    t0, c0 = time.perf_counter(), time.process_time()
    model = train(
        args.task,
        epochs=args.epochs,
        scenes_per_epoch=args.scenes_per_epoch,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        curriculum_epochs=args.curriculum_epochs,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(shipped_state(model), args.out)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0

    # Score exactly what was saved: reload (weights_only), floating tensors back to float32.
    shipped = shapes_detector() if args.task == "detection" else shapes_segmenter()
    loaded = torch.load(args.out, map_location="cpu", weights_only=True)
    shipped.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in loaded.items()}
    )
    scenes = make_scenes(args.holdout, SCENE_SIZE, VALIDATION_SEED)
    n_params = sum(p.numel() for p in shipped.parameters())
    print(f"saved {args.out} ({args.out.stat().st_size / 1024:.0f} KiB, {n_params} parameters)")
    print(f"training time {wall:.0f} s wall, {cpu:.0f} s CPU ({args.threads} threads)")
    if args.task == "detection":
        m_ap, per_class = evaluate_detector(shipped, scenes)
        print(f"held-out mAP@0.5 {m_ap:.4f} on {args.holdout} scenes (seed {VALIDATION_SEED})")
        print(
            "  per class: " + ", ".join(f"{SCENE_CLASSES[k]} {v:.3f}" for k, v in per_class.items())
        )
    else:
        miou, ious = evaluate_segmenter(shipped, scenes)
        print(f"held-out mIoU {miou:.4f} on {args.holdout} scenes (seed {VALIDATION_SEED})")
        print(
            "  per class: "
            + ", ".join(f"{c} {v:.3f}" for c, v in zip(SCENE_CLASSES, ious, strict=True))
        )


if __name__ == "__main__":
    main()
