"""The engine's one data layer (``cnnviz_widgets.engine.data``): every kind of data and item
gives the same batches, folders read like ``load_image``, shards cover a dataset once, and bad
data is refused with the fix. ``top_examples`` and ``evaluate`` read data only through it
(their own tests: test_top_examples.py, test_metric_parity.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from cnnviz_widgets import load_image
from cnnviz_widgets.demo import demo_model
from cnnviz_widgets.engine.data import (
    Batch,
    DataError,
    ImageFiles,
    Progress,
    ShardBatches,
    Transform,
    fingerprint,
    load_batches,
    make_loader,
    resolve_source,
    resolve_transform,
    shard_batches,
)

N, SIDE = 7, 12


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(images, labels, masks, boxes)`` of ``N`` random images and their objects."""
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(N, 3, SIDE, SIDE, generator=gen)
    labels = torch.arange(N) % 3
    boxes = torch.tensor([[i % 4, 1, 6 + i % 5, 9] for i in range(N)])
    masks = torch.zeros(N, SIDE, SIDE, dtype=torch.uint8)
    for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        masks[i, y0:y1, x0:x1] = 1
    return images, labels, masks, boxes


def _read(data, batch_size: int = 3, **kwargs) -> list[Batch]:
    return list(load_batches(data, batch_size, **kwargs))


def _joined(batches: list[Batch], field: str) -> torch.Tensor | None:
    parts = [getattr(b, field) for b in batches]
    return None if any(p is None for p in parts) else torch.cat(parts)


class Items(Dataset):
    """The same images as tuples, dicts, PIL images or numpy arrays."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.images, self.labels, self.masks, self.boxes = _data()

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int):
        image, label, mask, box = self.images[i], self.labels[i], self.masks[i], self.boxes[i]
        if self.kind == "dict":
            return {"pixel_values": image, "target": label, "segmentation": mask, "bbox": box}
        if self.kind == "box_then_mask":
            return image, int(label), box.numpy(), mask
        rgb = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        if self.kind == "pil":
            return Image.fromarray(rgb), np.int64(label)
        return rgb, int(label)


def test_every_kind_of_data_and_item_gives_the_same_batches():
    images, labels, masks, boxes = _data()
    reference = _read((images, labels, masks))
    assert [b.indices.tolist() for b in reference] == [[0, 1, 2], [3, 4, 5], [6]]
    assert torch.equal(_joined(reference, "images"), images)
    assert torch.equal(_joined(reference, "labels"), labels)
    assert torch.equal(_joined(reference, "masks"), masks) and reference[0].boxes is None
    with_boxes = _read((images, labels, boxes))
    assert torch.equal(_joined(with_boxes, "boxes"), boxes) and with_boxes[0].masks is None
    only_images = _read(images)
    assert torch.equal(_joined(only_images, "images"), images)
    assert only_images[0].labels is None and only_images[0].masks is None
    for kind in ("dict", "box_then_mask"):
        got = _read(Items(kind))
        assert torch.equal(_joined(got, "images"), images), kind
        assert torch.equal(_joined(got, "labels"), labels), kind
        assert torch.equal(_joined(got, "masks"), masks), kind
        assert torch.equal(_joined(got, "boxes"), boxes), kind
        assert _joined(got, "boxes").dtype == torch.int64
    # PIL and numpy items go through the transform, as load_image makes them
    transform = Transform(size=None, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    for kind in ("pil", "numpy"):
        got = _read(Items(kind), transform=transform)
        rgb = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        want = torch.cat([load_image(r, None, transform.mean, transform.std).tensor for r in rgb])
        assert torch.equal(_joined(got, "images"), want), kind
        assert torch.equal(_joined(got, "labels"), labels), kind


def test_a_dataloader_gives_its_dataset_batch_size_and_collate_but_not_its_sampler():
    images, labels, _, boxes = _data()
    shuffled = DataLoader(TensorDataset(images, labels, boxes), batch_size=4, shuffle=True)
    got = _read(shuffled, batch_size=100)  # the loader's own batch size wins
    assert [b.indices.tolist() for b in got] == [[0, 1, 2, 3], [4, 5, 6]]  # index order
    assert torch.equal(_joined(got, "images"), images)
    assert torch.equal(_joined(got, "boxes"), boxes)

    def as_dicts(items):
        return {
            "image": torch.stack([i for i, _, _ in items]),
            "label": torch.stack([lab for _, lab, _ in items]),
            "box": torch.stack([b for _, _, b in items]),
        }

    own = DataLoader(TensorDataset(images, labels, boxes), batch_size=5, collate_fn=as_dicts)
    got = _read(own)
    assert [len(b.indices) for b in got] == [5, 2]
    assert torch.equal(_joined(got, "labels"), labels)
    assert torch.equal(_joined(got, "boxes"), boxes)


@pytest.mark.parametrize("split", ["items", "batches"])
def test_shards_read_every_item_once(split):
    n, batch = 23, 4
    single = shard_batches(n, 0, 1, batch, split)
    assert [list(b) for b in single] == [list(range(i, min(i + 4, n))) for i in range(0, n, 4)]
    for world in (2, 3, 5):
        shards = [shard_batches(n, rank, world, batch, split) for rank in range(world)]
        read = sorted(i for shard in shards for b in shard for i in b)
        assert read == list(range(n)), (split, world)  # once each, no padded duplicates
        if split == "batches":  # every batch is a single-process batch
            every = [tuple(b) for shard in shards for b in shard]
            assert sorted(every) == sorted(map(tuple, single))
        else:
            assert [i for b in shards[1] for i in b] == list(range(1, n, world))
    sampler = ShardBatches(n, 1, 2, batch, start=4, split=split)  # a resumed pass
    full = [i for b in shard_batches(n, 1, 2, batch, split) for i in b]
    assert [i for b in sampler for i in b] == full[4:]
    assert sampler.size == len(full) and len(sampler) == len(list(sampler))


def test_load_batches_shard_keeps_global_indices():
    images, labels, _, _ = _data()
    mine = _read((images, labels), shard=(1, 2))
    assert [b.indices.tolist() for b in mine] == [[3, 4, 5]]
    assert torch.equal(mine[0].images, images[3:6])


def _write(folder: Path, rgb: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(folder / "image.png")
    return folder / "image.png"


def test_folders_read_like_load_image(tmp_path):
    gen = np.random.default_rng(0)
    rgb = [gen.integers(0, 256, (20, 24, 3), dtype=np.uint8) for _ in range(3)]
    classes = tmp_path / "classes"
    paths = [
        _write(classes / "b_square" / "x", rgb[0]),
        _write(classes / "a_circle", rgb[1]),
        _write(classes / ".hidden", rgb[2]),
    ]
    demo = demo_model().model
    transform = resolve_transform(demo)  # the demo model's own size and normalisation
    assert transform.size == 64 and transform.mean is not None
    source = resolve_source(str(classes), None, 0, transform)
    assert source.kind == "folder" and source.classes == ["a_circle", "b_square"]
    assert source.dataset.files == ["a_circle/image.png", "b_square/x/image.png"]
    got = list(make_loader(source, 8))
    assert got[0].labels.tolist() == [0, 1]
    loaded = [load_image(p, 64, transform.mean, transform.std) for p in paths[1::-1]]
    want = torch.cat([item.tensor for item in loaded])
    assert torch.equal(got[0].images, want)
    # a flat folder: no labels; a transform function instead of load_image's
    flat = tmp_path / "flat"
    for i, image in enumerate(rgb):
        flat.mkdir(exist_ok=True)
        Image.fromarray(image).save(flat / f"{i}.png")

    def halves(img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 2

    got = _read(str(flat), batch_size=2, transform=halves)
    assert [tuple(b.images.shape) for b in got] == [(2, 3, 20, 24), (1, 3, 20, 24)]
    assert got[0].labels is None
    assert torch.equal(got[1].images[0], torch.from_numpy(rgb[2]).permute(2, 0, 1).float() / 2)
    assert isinstance(source.dataset, ImageFiles) and len(ImageFiles(flat, transform)) == 3


class Stream(IterableDataset):
    def __iter__(self):
        yield torch.rand(3, 8, 8)


class Bad(Dataset):
    def __init__(self, item) -> None:
        self.item = item

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int):
        return self.item


@pytest.mark.parametrize(
    ("data", "kwargs", "match"),
    [
        ((torch.rand(4, 3, 8, 8), torch.arange(3)), {}, r"one row per image; got 4, 3 rows"),
        (Stream(), {}, r"IterableDataset has no indices"),
        (torch.rand(3, 8, 8), {}, r"\(N, C, H, W\); got \(3, 8, 8\)"),
        (Bad({"label": 1}), {}, r"item 0 is a dict without an image.*got keys label"),
        (Bad(("a", 1)), {}, r"item 0 is str .* not an image"),
        (Bad(torch.zeros(3, 4, 4, dtype=torch.uint8)), {}, r"torch.uint8 tensor.*Normalize"),
        (
            Bad(Image.new("RGB", (4, 4))),
            {"transform": lambda img: np.asarray(img)},
            r"transform returned ndarray, not a tensor",
        ),
        (torch.rand(2, 3, 8, 8), {"batch_size": 0}, r"batch_size must be a positive integer"),
    ],
)
def test_bad_data_names_the_problem(data, kwargs, match):
    with pytest.raises(DataError, match=match):
        _read(data, **kwargs)


def test_fingerprint_and_progress():
    images, labels, _, _ = _data()
    plain = Transform()
    same = fingerprint(resolve_source((images, labels), 4, 0, plain))
    assert same == fingerprint(resolve_source((images.clone(), labels), 2, 0, plain))
    other = images.clone()
    other[0, 0, 0, 0] += 1
    assert same != fingerprint(resolve_source((other, labels), 4, 0, plain))
    calls: list[tuple[int, int]] = []
    report = Progress(lambda done, total: calls.append((done, total)), 7)
    report.update(3)
    report.update(7)
    report.close()
    assert calls == [(3, 7), (7, 7)]
    with pytest.raises(DataError, match="progress must be"):
        Progress("bar", 7)


def test_a_grayscale_models_evaluation_reads_grey_pil_images():
    """``evaluate`` of a grayscale model over PIL "L" images with a one-value ``Transform``:
    the same per-image values as over the one-channel tensors ``load_image`` makes of them."""
    from torch import nn

    from cnnviz_widgets.engine.metrics import evaluate

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    rng = np.random.default_rng(1)
    pictures = [Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), mode="L")
                for _ in range(6)]

    class Digits(Dataset):
        def __len__(self) -> int:
            return len(pictures)

        def __getitem__(self, i: int):
            return pictures[i], i % 4

    grey = Transform(mean=(0.1307,), std=(0.3081,))
    from_files = evaluate(model, Digits(), ["GradCAM"], ["average_drop"], layer="2",
                          transform=grey, progress=False, n_boot=10)
    x = torch.cat([load_image(p, size=None, mean=[0.1307], std=[0.3081]).tensor
                   for p in pictures])
    assert x.shape == (6, 1, 16, 16)
    from_tensors = evaluate(model, x, ["GradCAM"], ["average_drop"], layer="2", progress=False,
                            n_boot=10)
    want = from_tensors.value("GradCAM", "average_drop")
    assert np.ptp(want) > 0  # the images differ, so a wrong reading would show
    np.testing.assert_allclose(from_files.value("GradCAM", "average_drop"), want, rtol=0,
                               atol=1e-6)
