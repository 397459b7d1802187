"""Dataset examples (issue 14): ``top_examples`` equals a brute-force ranking of every
activation, does not depend on batching, saves and loads, resumes after a killed run, runs
from the command line, refuses bad input with the fix, and leaves the model as it was.

The multi-process run under torchrun is in ``test_top_examples_distributed.py``.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from cnnviz_widgets import TopExamples, feature_maps, load_image, receptive_fields, top_examples
from cnnviz_widgets.cli import main as cli_main
from cnnviz_widgets.demo import ShapesNet, demo_model, make_shapes
from cnnviz_widgets.engine import LayerNotExecutedError, LayerNotFoundError, build_model
from cnnviz_widgets.engine.examples import (
    CheckpointMismatchError,
    ExamplesError,
    ExamplesMismatchError,
)
from cnnviz_widgets.engine.examples.store import read_npz
from tests.helpers.top_examples_job import FOLDER_BATCH, FOLDER_K, folder_run, write_shapes_folder
from tests.model_state import Fingerprint

ROOT = Path(__file__).resolve().parents[1]
JOB = ROOT / "tests" / "helpers" / "top_examples_job.py"
# conv, its in-place ReLU (ties at 0), a conv deep down, the last ReLU, a pooled and a linear
# layer: outputs (N, C, H, W) of several grids, (N, C, 1, 1) and (N, C)
LAYERS = ["features.0", "features.1", "features.9", "features.12", "avgpool", "classifier.0"]
N = 240


class Shapes(Dataset):
    """Normalised demo images with labels; items ``200 + i`` repeat items ``i`` (exact ties)."""

    def __init__(self, n: int = N, dtype: torch.dtype = torch.float32) -> None:
        demo = demo_model()
        images, labels, _ = make_shapes(min(n, 200), 64, seed=11)
        repeat = n - len(images)
        if repeat > 0:
            images = torch.cat([images, images[:repeat]])
            labels = torch.cat([labels, labels[:repeat]])
        self.images = demo.transform(images).to(dtype)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]


@pytest.fixture(scope="module")
def demo() -> ShapesNet:
    return demo_model().model


@pytest.fixture(scope="module")
def shapes() -> Shapes:
    return Shapes()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes_folder(tmp_path_factory.mktemp("shapes"))


def brute_force(
    model: nn.Module, x: torch.Tensor, layers: list[str], k: int, score: str, batch: int
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every activation of every image, then a full sort per channel: ``{layer: (indices,
    scores, positions)}``. Batches of ``batch`` images, the last padded (as the pass does), so
    that the activations are computed the same way."""
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    for first in range(0, len(x), batch):
        chunk = x[first : first + batch]
        real = len(chunk)
        chunk = torch.cat([chunk, chunk[-1:].expand(batch - real, -1, -1, -1)])
        maps = feature_maps(model, chunk, layers)
        for name in layers:
            chunks[name].append(maps[name][:real])
    out = {}
    for name in layers:
        acts = torch.cat(chunks[name])
        if acts.ndim == 2:
            acts = acts[:, :, None, None]
        width = acts.shape[-1]
        flat = acts.flatten(2)
        scores = (flat.amax(-1) if score == "max" else flat.mean(-1)).numpy()  # (N, C)
        where = flat.numpy().argmax(-1)  # numpy: first occurrence of the maximum
        n, channels = scores.shape
        order = np.stack(
            [np.lexsort((np.arange(n), -scores[:, c]))[:k] for c in range(channels)]
        )  # (C, k): score descending, then index ascending
        picked = np.take_along_axis(scores.T, order, 1)
        flat_pos = np.take_along_axis(where.T, order, 1)
        positions = np.stack([flat_pos // width, flat_pos % width], -1)
        out[name] = (order, picked, positions)
    return out


def assert_same(a: TopExamples, b: TopExamples) -> None:
    assert a.layers == b.layers
    for name in a.layers:
        for read in ("indices", "scores", "positions"):
            assert torch.equal(getattr(a, read)(name), getattr(b, read)(name)), (name, read)
        la, lb = a.labels(name), b.labels(name)
        assert (la is None and lb is None) or torch.equal(la, lb)


@pytest.mark.parametrize("score", ["max", "mean"])
def test_equals_brute_force_argsort(demo, shapes, score):
    before = Fingerprint.of(demo)
    result = top_examples(demo, shapes, LAYERS, k=7, score=score, batch_size=32, progress=False)
    before.assert_same(demo)
    expected = brute_force(demo, shapes.images, LAYERS, 7, score, 32)
    ties = 0
    for name in LAYERS:
        indices, scores, positions = expected[name]
        got = result.indices(name)
        assert got.dtype == torch.int64 and got.shape == indices.shape
        assert result.scores(name).dtype == torch.float32
        np.testing.assert_array_equal(got.numpy(), indices, err_msg=name)
        np.testing.assert_array_equal(result.scores(name).numpy(), scores, err_msg=name)
        np.testing.assert_array_equal(result.positions(name).numpy(), positions, err_msg=name)
        labels = result.labels(name)
        assert labels is not None
        np.testing.assert_array_equal(labels.numpy(), shapes.labels.numpy()[indices])
        ties += int((scores[:, 1:] == scores[:, :-1]).sum())
    assert ties > 0  # repeated images and dead ReLU channels: the tie rule was exercised
    assert result.channels("features.9") == 64 and result.grid("features.9") == (8, 8)
    assert result.grid("classifier.0") == (1, 1)


def test_k_equal_to_the_dataset_sorts_everything(demo):
    data = Shapes(24)
    result = top_examples(demo, data, ["features.3"], k=24, batch_size=5, progress=False)
    indices = brute_force(demo, data.images, ["features.3"], 24, "max", 5)["features.3"][0]
    np.testing.assert_array_equal(result.indices("features.3").numpy(), indices)
    assert sorted(result.indices("features.3")[0].tolist()) == list(range(24))


def test_independent_of_batching_and_loader(demo):
    """float64, where torch computes an image's activations the same way in any batch (in
    float32 the convolution's rounding depends on the batch size; see engine/examples/stream.py)."""
    model = copy.deepcopy(demo).double()
    data = Shapes(60, torch.float64)
    layers = ["features.0", "features.6", "features.12"]
    runs = [
        top_examples(model, data, layers, k=5, score=score, batch_size=b, progress=False)
        for score in ("max", "mean")
        for b in (1, 7, 60)
    ]
    shuffled = DataLoader(data, batch_size=13, shuffle=True)
    runs.append(top_examples(model, shuffled, layers, k=5, progress=False))
    for run in runs[1:3] + runs[6:]:
        assert_same(runs[0], run)
    for run in runs[4:6]:
        assert_same(runs[3], run)


def test_folder_labels_patches_and_file_round_trip(demo, folder, tmp_path):
    result = folder_run(str(folder))
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
    assert result.classes == sorted({f.split("/")[0] for f in files})
    labels = result.labels("features.6")
    assert labels is not None
    first = result.indices("features.6")[:, 0]
    names = [result.classes[int(lab)] for lab in labels[:, 0]]
    assert names == [files[int(i)].split("/")[0] for i in first]
    # the same images as a Dataset of load_image tensors give the same examples
    tensors = torch.cat([load_image(folder / f, 64, (0.5,) * 3, (0.25,) * 3).tensor for f in files])
    as_tensor = top_examples(demo, tensors, k=FOLDER_K, batch_size=FOLDER_BATCH, progress=False)
    for name in result.layers:
        assert torch.equal(result.indices(name), as_tensor.indices(name))
        assert torch.equal(result.scores(name), as_tensor.scores(name))
    assert as_tensor.labels("features.0") is None

    layer, channel = "features.6", 5
    patches = result.patches(layer, channel)
    field = result.receptive_field(layer)
    assert field is not None and field.size == (18.0, 18.0) and field.jump == (4.0, 4.0)
    assert patches.images.shape == (FOLDER_K, 18, 18, 3) and patches.images.dtype == torch.uint8
    assert patches.maps is not None and patches.maps.shape == (FOLDER_K, 18, 18)
    x = torch.cat([load_image(folder / files[int(i)], 64, (0.5,) * 3, (0.25,) * 3).tensor
                   for i in patches.indices])
    full = torch.nn.functional.interpolate(
        feature_maps(demo, x, [layer])[layer][:, channel : channel + 1], size=(64, 64),
        mode="bilinear", align_corners=False,
    )[:, 0]
    for j, (x0, y0, x1, y1) in enumerate(patches.boxes.tolist()):
        rgb = load_image(folder / files[int(patches.indices[j])], 64).rgb
        assert np.array_equal(patches.images[j].numpy(), rgb[y0:y1, x0:x1])
        torch.testing.assert_close(patches.maps[j], full[j, y0:y1, x0:x1], rtol=0, atol=0)
        row, col = patches.positions[j].tolist()  # the unit's field lies in its crop
        fx0, fy0, fx1, fy1 = field.box(row, col)
        assert x0 <= max(fx0, 0) and min(fx1, 64) <= x1 and y0 <= max(fy0, 0)
        assert min(fy1, 64) <= y1

    path = result.save(tmp_path / "examples.npz")
    loaded = TopExamples.load(path, model=demo)
    assert_same(result, loaded)
    assert loaded.meta == {**result.meta, "kind": "result"}
    assert loaded.layers == result.layers and loaded.k == FOLDER_K
    again = loaded.patches(layer, channel)  # the folder is recorded in the file
    assert torch.equal(again.images, patches.images) and torch.equal(again.maps, patches.maps)
    no_model = TopExamples.load(path)
    assert no_model.patches(layer, channel).maps is None

    with pytest.raises(ExamplesMismatchError, match="ResNet"):
        TopExamples.load(path, model=build_model("resnet18", None).model)
    torch.manual_seed(1)
    other = ShapesNet().eval()
    with pytest.raises(ExamplesMismatchError, match="weights differ"):
        TopExamples.load(path, model=other)
    assert TopExamples.load(path, model=other, check_weights=False).k == FOLDER_K
    narrow = ShapesNet()
    narrow.features[0] = nn.Conv2d(3, 8, 3, padding=1)
    with pytest.raises(ExamplesMismatchError, match="'features.0' has 8 channels"):
        TopExamples.load(path, model=narrow)


def test_resume_after_a_killed_process_equals_an_uninterrupted_run(folder, tmp_path):
    reference = folder_run(str(folder))
    checkpoint = tmp_path / "run.ckpt.npz"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    job = subprocess.run(
        [sys.executable, str(JOB), "resume", "--data", str(folder), "--checkpoint",
         str(checkpoint), "--exit-after", "5"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert job.returncode == 17, job.stderr
    meta, _ = read_npz(checkpoint)
    assert meta["kind"] == "checkpoint" and meta["done"] == 4 * FOLDER_BATCH  # every 2 batches
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    calls: list[tuple[int, int]] = []
    resumed = folder_run(
        str(folder), checkpoint=checkpoint, checkpoint_every=2,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[0] == (5 * FOLDER_BATCH, 64) and calls[-1] == (64, 64)
    assert_same(reference, resumed)
    assert read_npz(checkpoint)[0]["done"] == 64

    before = checkpoint.read_bytes()
    with pytest.raises(CheckpointMismatchError, match=r"k: 4 there, 3 here") as err:
        top_examples(demo_model().model, str(folder), k=3, batch_size=FOLDER_BATCH,
                     checkpoint=checkpoint, progress=False)
    assert "delete the file" in str(err.value)
    assert checkpoint.read_bytes() == before


def test_keyboard_interrupt_keeps_the_checkpoint_and_the_model(folder, tmp_path):
    model = demo_model().model.train()
    model.features[0].weight.grad = torch.ones_like(model.features[0].weight)
    before = Fingerprint.of(model)
    checkpoint = tmp_path / "interrupted.npz"

    def interrupt(done: int, total: int) -> None:
        if done == 3 * FOLDER_BATCH:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        top_examples(model, str(folder), k=FOLDER_K, batch_size=FOLDER_BATCH,
                     checkpoint=checkpoint, progress=interrupt)
    before.assert_same(model)
    assert read_npz(checkpoint)[0]["done"] == 3 * FOLDER_BATCH
    resumed = top_examples(model, str(folder), k=FOLDER_K, batch_size=FOLDER_BATCH,
                           checkpoint=checkpoint, progress=False)
    before.assert_same(model)
    assert_same(folder_run(str(folder)), resumed)


def test_command_line_alone_and_its_file(folder, tmp_path):
    out = tmp_path / "cli.npz"
    layers = ["layer1.0", "layer2.0.conv1"]
    job = subprocess.run(
        [sys.executable, "-m", "cnnviz_widgets", "top-examples", "--model", "resnet18",
         "--weights", "none", "--seed", "0", "--data", str(folder), "--layers", ",".join(layers),
         "--k", "3", "--size", "32", "--batch-size", "16", "--threads", "1", "--quiet",
         "--out", str(out)],
        cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=120,
    )
    assert job.returncode == 0, job.stderr
    assert "Wrote the top 3 examples" in job.stdout and str(out) in job.stdout
    model = build_model("resnet18", None, seed=0).model  # the same seeded random model
    loaded = TopExamples.load(out, model=model)
    assert loaded.layers == tuple(layers) and loaded.k == 3
    assert loaded.meta["transform"]["size"] == 32
    direct = top_examples(model, str(folder), layers, k=3, size=32, batch_size=16, progress=False)
    assert_same(direct, loaded)
    field = loaded.receptive_field("layer1.0")  # a block: the field of its output
    assert field is not None and field.size == (27.0, 27.0)
    assert loaded.patches("layer1.0", 0).images.shape == (3, 27, 27, 3)


def test_command_line_errors_name_the_problem(folder, tmp_path, capsys):
    out = tmp_path / "never.npz"
    base = ["top-examples", "--model", "cnnviz_widgets.demo:demo_model", "--data", str(folder),
            "--out", str(out), "--quiet"]
    assert cli_main([*base, "--layers", "features.99"]) == 2
    assert "No layer named 'features.99'" in capsys.readouterr().err
    assert cli_main([*base, "--k", "1000"]) == 2
    assert "k=1000 but the data has only 64" in capsys.readouterr().err
    assert cli_main([*base, "--weights", "DEFAULT"]) == 2
    assert "builds its own weights" in capsys.readouterr().err
    assert cli_main(["top-examples", "--model", "resnet_9", "--data", str(folder), "--out",
                     str(out)]) == 2
    assert "not a torchvision model name" in capsys.readouterr().err
    assert not out.exists()


class Strings(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> str:
        return f"image {i}"


class Sizes(Dataset):
    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.rand(3, self.sizes[i], self.sizes[i])


class Stream(IterableDataset):
    def __iter__(self):
        yield torch.rand(3, 8, 8)


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.unused = nn.Conv2d(4, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _raises(model: nn.Module, data, error, match: str, tmp_path: Path, **kwargs) -> None:
    """The run raises ``error`` matching ``match``, writes nothing, leaves the model as it was."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    before = Fingerprint.of(model)
    checkpoint = tmp_path / "bad.npz"
    kwargs.setdefault("k", 2)
    with pytest.raises(error, match=match):
        top_examples(model, data, checkpoint=checkpoint, progress=False, **kwargs)
    before.assert_same(model)
    assert not checkpoint.exists() and not list(tmp_path.iterdir())


THREE = [16] * 3
BAD_INPUT = {  # case: (data, top_examples arguments, error, message)
    "strings": (Strings, {}, ExamplesError, r"item 0 is str .* not an image.*ToTensor"),
    "sizes": (
        lambda: Sizes([16, 16, 20]), {}, ExamplesError,
        r"different sizes: item 0 is 3x16x16 and item 2 is 3x20x20.*=N",
    ),
    "sizes_across_batches": (
        lambda: Sizes([16, 16, 20]), {"batch_size": 1}, ExamplesError,
        r"different sizes.*item 2 is 3x20x20",
    ),
    "uint8": (
        lambda: torch.utils.data.TensorDataset(torch.zeros(3, 3, 8, 8, dtype=torch.uint8)), {},
        ExamplesError, r"item 0 is a torch.uint8 tensor.*Normalize",
    ),
    "iterable": (Stream, {}, ExamplesError, r"IterableDataset has no indices"),
    "k": (
        lambda: Sizes(THREE), {"k": 5}, ExamplesError,
        r"k=5 but the data has only 3 image\(s\).*k <= 3",
    ),
    "k0": (lambda: Sizes(THREE), {"k": 0}, ExamplesError, r"k must be a positive integer"),
    "score": (
        lambda: Sizes(THREE), {"score": "median"}, ExamplesError,
        r"score must be one of 'max', 'mean'",
    ),
    "empty_dataset": (lambda: Sizes([]), {}, ExamplesError, r"The data is empty"),
    "unknown_layer": (
        lambda: Sizes(THREE), {"layers": "conv2"}, LayerNotFoundError,
        r"No layer named 'conv2'.*'conv'",
    ),
    "never_run": (
        lambda: Sizes(THREE), {"layers": ["conv", "unused"]}, LayerNotExecutedError,
        r"'unused'.*were not called",
    ),
    "no_layers": (lambda: Sizes(THREE), {"layers": []}, ExamplesError, r"layers is empty"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_names_the_problem_and_the_fix(case, tmp_path):
    make, kwargs, error, match = BAD_INPUT[case]
    _raises(Branchy(), make(), error, match, tmp_path / case, **kwargs)


def test_bad_folders(demo, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    (empty / "class_a").mkdir()
    _raises(demo, str(empty), ExamplesError, r"No image files in .*sub-folder per class", work)
    _raises(demo, str(tmp_path / "missing"), ExamplesError, r"is not a folder", work)
    mixed = tmp_path / "mixed"
    (mixed / "a").mkdir(parents=True)
    for path, size in ((mixed / "a" / "0.png", 8), (mixed / "loose.png", 8)):
        Image.new("RGB", (size, size)).save(path)
    _raises(demo, str(mixed), ExamplesError, r"both image files .* and class sub-folders", work)
    sizes = tmp_path / "sizes"
    sizes.mkdir()
    for i, side in enumerate((40, 40, 48)):
        Image.new("RGB", (side, side), (i * 60, 0, 0)).save(sizes / f"{i}.png")
    model = Branchy()
    _raises(model, str(sizes), ExamplesError, r"different sizes.*--size N", work, batch_size=4)
    result = top_examples(model, str(sizes), k=2, size=32, progress=False)
    assert result.grid("conv") == (30, 30) and result.labels("conv") is None
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "0.png").write_bytes(b"not a png")
    _raises(model, str(corrupt), Exception, r"not an image file", work, k=1)


def test_pil_items_progress_and_autocast(demo):
    images, labels, _ = make_shapes(12, 64, seed=5)

    class Pil(Dataset):
        def __len__(self) -> int:
            return 12

        def __getitem__(self, i: int):
            rgb = (images[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            return Image.fromarray(rgb), int(labels[i])

    calls: list[tuple[int, int]] = []
    result = top_examples(demo, Pil(), ["features.3"], k=3, batch_size=5,
                          progress=lambda d, t: calls.append((d, t)))
    assert calls == [(5, 12), (10, 12), (12, 12)]
    assert result.labels("features.3") is not None
    assert top_examples(demo, Pil(), ["features.3"], k=3, progress=True).k == 3  # tqdm bar
    mixed = top_examples(demo, Pil(), ["features.3"], k=3, autocast=torch.bfloat16,
                         progress=False)
    assert mixed.scores("features.3").dtype == torch.float32
    assert repr(result).startswith("TopExamples(ShapesNet, 1 layer(s), k=3")


def test_block_receptive_fields_are_opt_in():
    """``receptive_fields(..., containers=True)``: a block gets the field of its output (the
    crops of block layers use it); without the flag, the answer is as before."""
    model = build_model("resnet18", None).model
    names = ["layer1.0", "layer2", "layer4.1.conv2"]
    plain = receptive_fields(model, names)
    assert list(plain) == ["layer4.1.conv2"]
    fields = receptive_fields(model, names, containers=True)
    assert fields["layer4.1.conv2"] == plain["layer4.1.conv2"]
    # conv 7/2, max-pool 3/2, then two 3x3 convs: 7 + 2*2 + 2*4 + 2*4 = 27 px, every 4 px
    assert fields["layer1.0"].size == (27.0, 27.0) and fields["layer1.0"].jump == (4.0, 4.0)
    assert fields["layer2"].size == (99.0, 99.0) and fields["layer2"].jump == (8.0, 8.0)


def test_a_grayscale_models_examples_from_grey_pil_images():
    """An MNIST-style dataset (PIL images in mode "L", as torchvision's MNIST gives them) and
    one mean/std value: the images are read as one-channel input, and the top examples equal
    the brute-force ranking of that input."""
    from PIL import Image

    from cnnviz_widgets.engine.inputs import load_image

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 8, 3, padding=1)).eval()
    rng = np.random.default_rng(1)
    pictures = [Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), mode="L")
                for _ in range(20)]

    class Digits(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(pictures)

        def __getitem__(self, i: int):
            return pictures[i], i % 10

    result = top_examples(model, Digits(), ["3"], k=4, batch_size=5, mean=[0.1307],
                          std=[0.3081], progress=False)
    x = torch.cat([load_image(p, size=None, mean=[0.1307], std=[0.3081]).tensor
                   for p in pictures])
    assert x.shape == (20, 1, 16, 16)
    indices, scores, _ = brute_force(model, x, ["3"], 4, "max", 5)["3"]
    np.testing.assert_array_equal(result.indices("3").numpy(), indices)
    np.testing.assert_allclose(result.scores("3").numpy(), scores, rtol=0, atol=1e-6)
