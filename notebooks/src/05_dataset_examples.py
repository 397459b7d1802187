# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # What excites a channel
#
# The chapter opens with a figure from Zeiler and Fergus (2013): for each layer of a
# trained CNN, the image patches of a whole dataset that excite a unit most. Near the
# input those patches share a colour or an edge and come from any kind of image; near the
# output they share an object part, a face, a wheel, a dog's head. A feature map
# (notebook 02) shows what a channel finds in *one* image, activation maximisation
# (notebook 04) a synthetic image; the *dataset examples* are real images, and they are
# what people understand a unit from best.
#
# This notebook reproduces the observation on the demo network, puts a number on it (the
# *class purity* of each channel's top-9 examples), and runs the same on a folder of your
# own images.

# %%
import matplotlib.pyplot as plt
import torch

from cnnviz_widgets import TopExamples, top_examples
from cnnviz_widgets.demo import demo_model
from cnnviz_widgets.demo.examples import ShapeImages

demo = demo_model()
model = demo.model
data = ShapeImages(2048)          # generated shapes the network was not trained on
print(len(data), "images of", data.classes)

# %% [markdown]
# ## One pass over the dataset
#
# `top_examples(model, data)` runs the model over every image once (in batches) and
# records every conv layer in the same forward pass. For each channel it keeps the `k`
# images with the largest activation (the maximum over the channel's map, `score="max"`)
# and where that maximum was. Memory grows with layers × channels × `k`, not with the
# dataset, so the same call works on ImageNet. (`progress=True`, the default, shows a
# progress bar.)

# %%
examples = top_examples(model, data, k=9, batch_size=128, progress=False)
print(examples)
for name in examples.layers:
    print(f"{name:12s} {examples.channels(name):4d} channels   indices "
          f"{tuple(examples.indices(name).shape)}   scores {tuple(examples.scores(name).shape)}")
print("channel 0 of features.11: images", examples.indices("features.11")[0].tolist())
print("                          labels", examples.labels("features.11")[0].tolist())

# %% [markdown]
# The result is read as tensors: `indices(layer)` the dataset indices, best first,
# `scores(layer)` their activations, `positions(layer)` the (row, column) of the maximum
# in the layer's grid, `labels(layer)` the examples' classes where the data has labels.
#
# A unit does not see the whole image: `patches(layer, channel)` cuts each example to the
# unit's *receptive field* at its maximum, the part of the image that unit could see.
# A unit of `features.3` sees 8 × 8 pixels, one of `features.11` 54 × 54.

# %%
def show_top(layer, channels, examples=examples):
    """The top examples of some channels of ``layer``: one row per channel."""
    k = examples.k
    fig, axes = plt.subplots(len(channels), k, figsize=(k * 0.9, len(channels) * 1.0),
                             squeeze=False)
    for row, channel in enumerate(channels):
        crops = examples.patches(layer, channel)
        for col, ax in enumerate(axes[row]):
            ax.set_axis_off()
            if col < len(crops.images):
                ax.imshow(crops.images[col])
                ax.set_title(examples.classes[int(crops.labels[col])], fontsize=6)
        axes[row][0].text(-0.3, 0.5, str(channel), transform=axes[row][0].transAxes,
                          ha="right", va="center")
    field = examples.receptive_field(layer)
    size = f"{field.size[0]:.0f} x {field.size[1]:.0f} px" if field else "field unknown"
    fig.suptitle(f"{layer}: top-{k} crops ({size}), one row per channel")
    plt.show()


show_top("features.3", [0, 1, 2, 3])

# %%
show_top("features.11", [0, 1, 2, 3])

# %% [markdown]
# The shallow channels respond to a colour, or to an edge of some orientation, that every
# shape has; their nine images come from many classes. The deep channels respond to one
# shape, or to a part of one (the points of a star, the inner edge of a ring).
#
# The explorer's *Dataset examples* view shows the same for every layer and channel: pick a
# layer and a channel (or click a tile of the layer overview) to see its top crops with the
# channel's activation drawn over each; hover a crop for its dataset index, label, score and
# position. Without arguments, the demo view computes its own examples (1,024 shapes):

# %%
from cnnviz_widgets import DatasetExamplesView

DatasetExamplesView()

# %% [markdown]
# With a model of your own, pass the examples you computed (or a saved file, see below):

# %%
DatasetExamplesView(model, demo.samples[3], examples=examples, size=64, mean=demo.mean,
                    std=demo.std)

# %% [markdown]
# ## A number: class purity by depth
#
# "The deep channels respond to one shape" can be measured. The *class purity* of a
# channel is the share of its top-9 examples that belong to the most common class among
# them: 1 when all nine are stars, 1/3 when the most common class has three. Averaged over
# a layer's channels, it says how class-specific the layer is. For comparison: nine images
# drawn at random from the eight classes have a purity of about 0.31.

# %%
def purity(labels):
    """Share of the most common label in each row: (channels, k) -> (channels,)."""
    most_common = labels.mode(dim=1).values
    return (labels == most_common[:, None]).float().mean(dim=1)


g = torch.Generator().manual_seed(0)
chance = purity(data.labels[torch.randint(len(data), (10_000, 9), generator=g)]).mean().item()

by_depth = {name: purity(examples.labels(name)).mean().item() for name in examples.layers}
print("layer        channels  field   purity")
for name, value in by_depth.items():
    size = examples.receptive_field(name).size[0]
    print(f"{name:12s} {examples.channels(name):8d}  {size:3.0f} px  {value:.3f}")
print(f"chance (9 random images)         {chance:.3f}")

plt.figure(figsize=(5, 3))
plt.plot(list(by_depth), list(by_depth.values()), "o-", label="top-9 examples")
plt.axhline(chance, color="gray", linestyle="--", label="9 random images")
plt.ylim(0, 1)
plt.ylabel("class purity")
plt.xlabel("conv layer, input to output")
plt.legend()
plt.show()

# %% [markdown]
# The first two conv layers are at chance: their top examples are no more of one class
# than nine random images, because what they respond to (a colour, an edge) is shared by
# all the classes. From `features.6` on, purity rises with depth, to above 0.8 at the last
# conv layer, whose channels each respond to one shape. This is Zeiler and Fergus'
# observation in one column of numbers.
#
# Purity is only a measure where the data has labels that mean something to the network.
# A channel can be impure and still meaningful: a "curved edge" channel is excited by
# circles, rings and crescents alike.

# %% [markdown]
# ## Your own images
#
# `top_examples` also takes a folder of image files: one sub-folder per class (the
# sub-folder names become the classes, as in torchvision's `ImageFolder`), or a flat folder
# without labels. Here we write a few generated shapes to a temporary folder, as PNG files
# in class sub-folders:

# %%
import tempfile
from pathlib import Path

from PIL import Image

from cnnviz_widgets.demo import SHAPE_CLASSES, make_shapes

folder = Path(tempfile.mkdtemp()) / "my_shapes"
images, labels, _ = make_shapes(48, size=64, seed=7)
for i, (image, label) in enumerate(zip(images, labels, strict=True)):
    class_folder = folder / SHAPE_CLASSES[label]
    class_folder.mkdir(parents=True, exist_ok=True)
    rgb = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    Image.fromarray(rgb).save(class_folder / f"{i:03d}.png")
print(sorted(p.name for p in folder.iterdir()))
print(len(list(folder.glob("*/*.png"))), "files")

# %% [markdown]
# The files are read and transformed the way `load_image` does it: for the demo network
# its own size and normalisation, for a torchvision model the transforms of its `weights=`.
# `save` writes the result to one `.npz` file that records the model's layers and the data;
# `TopExamples.load(path, model)` reads it back and refuses a file computed with another
# model. The file remembers the folder, so `patches` finds the images again.

# %%
folder_examples = top_examples(model, folder, layers=["features.3", "features.11"], k=4,
                               progress=False)
print(folder_examples)
print("classes:", folder_examples.classes)

path = folder_examples.save(folder.parent / "my_shapes_examples.npz")
loaded = TopExamples.load(path, model)
print("saved to", path.name, f"({path.stat().st_size} bytes)")
print("loaded equals computed:",
      all(torch.equal(loaded.indices(n), folder_examples.indices(n))
          and torch.equal(loaded.scores(n), folder_examples.scores(n)) for n in loaded.layers))
show_top("features.11", [0, 1, 2], examples=loaded)

# %% [markdown]
# The explorer takes the file as well:

# %%
DatasetExamplesView(model, demo.samples[3], examples=path, size=64, mean=demo.mean,
                    std=demo.std)

# %% [markdown]
# To use your own photos, point `top_examples` at their folder, for example on Colab after
# uploading them or mounting Google Drive
# (`from google.colab import drive; drive.mount("/content/drive")`):
#
# ```python
# my_examples = top_examples(model, "/content/drive/MyDrive/my_photos", k=9)
# ```
#
# The demo network only knows the eight shapes; for photos, take a network trained on
# ImageNet and pass its `weights` so the files are resized and normalised as it expects.
# Without network (as in the tests) the cell says so and is skipped; a run over a few
# thousand photos takes minutes on a Colab GPU (`model.cuda()`; the pass runs on the model's
# device).

# %%
import torchvision

from cnnviz_widgets import load_pretrained

weights = torchvision.models.ResNet18_Weights.DEFAULT
resnet = load_pretrained("resnet18", weights,
                         "the demo network's examples above are the ones to study.")
if resnet is not None:
    photo_examples = top_examples(resnet, folder, layers=["layer1.1.conv2", "layer4.1.conv2"],
                                  k=4, weights=weights, progress=False)
    print(photo_examples)
    show_top("layer4.1.conv2", [0, 1, 2], examples=photo_examples)

# %% [markdown]
# ## Many images, many GPUs: the command line
#
# For a large dataset, the same pass runs from a terminal, and under `torchrun` on several
# processes or GPUs. `--model` is a torchvision name (`resnet50`, with `--weights DEFAULT`)
# or an import path `package.module:function` that returns your model:

# %%
import subprocess
import sys

command = [sys.executable, "-m", "cnnviz_widgets", "top-examples"]
print(subprocess.run([*command, "--help"], capture_output=True, text=True, check=True).stdout)

# %% [markdown]
# On a machine with four GPUs:
#
# ```sh
# torchrun --nproc_per_node=4 -m cnnviz_widgets top-examples --model resnet50 \
#     --weights DEFAULT --data /data/imagenet/val --k 9 --out val_examples.npz
# ```
#
# starts four processes (one per GPU, with the nccl backend; on CPUs, gloo). Each reads its
# own share of the images (every fourth one), keeps its own top-9 per channel, and at the
# end the four top-9 lists are gathered and merged, so the file is exactly the
# single-process result. Only the first process writes it. `--checkpoint FILE` saves the
# running state as it goes: a run that was stopped resumes where it was and ends with the
# same result.
#
# Here the command runs on our folder with the demo network, in one process; its file loads
# like the one we saved, and holds the same examples:

# %%
out = folder.parent / "cli_examples.npz"
result = subprocess.run(
    [*command, "--model", "cnnviz_widgets.demo:demo_model", "--data", str(folder),
     "--layers", "features.3,features.11", "--k", "4", "--out", str(out),
     "--threads", "1", "--quiet"],
    capture_output=True, text=True)
print("exit status", result.returncode, result.stdout.strip())
from_cli = TopExamples.load(out, model)
print("same as in the notebook:",
      all(torch.equal(from_cli.indices(n), folder_examples.indices(n)) for n in from_cli.layers))

# %% [markdown]
# ## Which maps to trust, over the dataset
#
# A dataset also tells which explanation method to believe. `evaluate(model, data, methods,
# metrics)` scores each method's map of each image with each metric, and gives per method
# and metric the mean with a bootstrap 95% interval. Two metrics here, on 48 new shapes:
# *average drop*, how much the class's probability drops, in percent, when the image is
# multiplied by the map (lower is better: the map kept what the model needs), and
# *sparseness*, how concentrated the map is (higher is more concentrated). `docs/methods.md`
# gives every metric's formula; `sanity_check` (notebook 03) asks the other question, whether
# a map depends on the model at all.

# %%
from cnnviz_widgets import TrustView, evaluate

shapes = ShapeImages(48, seed=3)
evaluation = evaluate(model, shapes, ["GradCAM", "vanilla"], ["average_drop", "sparseness"],
                      batch_size=16, n_boot=200)
for row in evaluation.summary:
    print(f"{row['method']:8s} {row['metric']:13s} mean {row['mean']:6.2f}   95% interval "
          f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}]   "
          f"({'higher' if row['higher_is_better'] else 'lower'} is better)")

# %% [markdown]
# Grad-CAM's maps keep what the network needs (an average drop of about 16%, against about
# 84% for the vanilla gradient, whose scattered pixels keep too little of the shape). Means
# hide the failures: the *Trust* view shows the table, and a click on a row shows the images
# where that method does worst, with its map over each. With the data (`evaluation_data=`) they
# are pictures, and a click on one makes that image the input, to study it in the other tabs.

# %%
TrustView(model, demo.samples[3], evaluation=evaluation, evaluation_data=shapes, size=64,
          mean=demo.mean, std=demo.std)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to start from (replace the `None`s with your code), a check
# cell that tests your answer (it only prints a hint while the answer is still `None`),
# and a hidden solution (double-click it to see the code). Where it says *predict
# first*, write your guess down before you run anything.

# %% [markdown]
# ### Exercise 1: how many classes among the nine?
#
# Purity only counts the most common class. Another measure: the number of *different*
# classes among a channel's nine top examples. Compute its mean over the channels for each
# layer of `examples`, from `examples.labels(layer)`, a `(channels, 9)` tensor.
#
# Predict first: how many of the eight classes does a channel of `features.0` see among its
# nine images, and one of `features.11`? (Nine random images have about 5.4.)

# %% tags=["exercise"]
my_prediction = ""
distinct = None  # your code here: {layer name: mean number of distinct classes in the top 9}

# %% tags=["check"]
if distinct is None:
    print("Hint: for each row of examples.labels(layer), len(set(row.tolist())) (or "
          "row.unique().numel()) is its number of classes; average over the rows.")
else:
    assert list(distinct) == list(examples.layers), (
        f"distinct's keys {list(distinct)} are not the layers {list(examples.layers)}.")
    for name, value in distinct.items():
        rows = examples.labels(name).tolist()
        want = sum(len(set(row)) for row in rows) / len(rows)
        assert abs(float(value) - want) < 1e-6, (
            f"{name}: {value} is not the mean number of distinct classes per channel.")
    print(f"Correct: {distinct[examples.layers[0]]:.2f} classes at {examples.layers[0]}, "
          f"{distinct[examples.layers[-1]]:.2f} at {examples.layers[-1]}. "
          f"Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
distinct = {}
for name in examples.layers:
    labels_of = examples.labels(name)
    distinct[name] = sum(row.unique().numel() for row in labels_of) / len(labels_of)
    print(f"{name:12s} {distinct[name]:.2f} classes among the top 9")
# The first two layers are at the level of nine random images: their channels are excited
# by colours and edges that all eight shapes have. The last layer's channels see fewer than
# two classes among nine: most of them respond to one shape.

# %% [markdown]
# ### Exercise 2: the purest channel of the last layer
#
# Many channels of `features.11` have purity 1 (all nine examples of one class). Among
# them, find the one whose nine examples excite it most on average (the highest mean of
# `examples.scores("features.11")` over its nine), and the name of its class. Then look at
# its crops with `show_top`.
#
# Predict first: which shape will it be, one with a part no other shape has (the star's
# points, the crescent's hollow) or a plain one (circle, square)?

# %% tags=["exercise"]
my_prediction = ""
best_channel = None  # your code here: the channel number
best_class = None    # your code here: its class name, e.g. "star"

# %% tags=["check"]
if best_channel is None or best_class is None:
    print("Hint: p = purity(examples.labels('features.11')); among the channels with "
          "p == p.max(), take the one with the largest examples.scores(...).mean(dim=1).")
else:
    _labels = examples.labels("features.11")
    _p = purity(_labels)
    _mean = examples.scores("features.11").mean(dim=1)
    _want = int(torch.where(_p == _p.max(), _mean, -float("inf")).argmax())
    assert float(_p[int(best_channel)]) == float(_p.max()), (
        f"channel {best_channel} has purity {float(_p[int(best_channel)]):.2f}, not the "
        "highest.")
    assert int(best_channel) == _want, (
        f"channel {best_channel} is pure, but another pure channel's examples have a higher "
        "mean score.")
    _name = examples.classes[int(_labels[_want].mode().values)]
    assert isinstance(best_class, str), f"best_class is {best_class!r}: give the class name."
    assert best_class == _name, f"{best_class!r} is not the class of channel {_want}'s examples."
    # the channel against the whole dataset: its mean peak activation, its class vs the rest
    _x = data.inputs[:256]
    with torch.no_grad():
        _act = model.features(_x)[:, _want].amax(dim=(1, 2))
    _own = data.labels[:256] == examples.classes.index(_name)
    print(f"Correct: channel {_want}, {_name}. Its mean peak activation on the first 256 "
          f"images: {_act[_own].mean():.2f} on {_name}s, {_act[~_own].mean():.2f} on the "
          f"others. Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
labels_11 = examples.labels("features.11")
p = purity(labels_11)
mean_score = examples.scores("features.11").mean(dim=1)
pure_channels = torch.nonzero(p == p.max())[:, 0]
best_channel = int(pure_channels[mean_score[pure_channels].argmax()])
best_class = examples.classes[int(labels_11[best_channel, 0])]
print(f"{len(pure_channels)} pure channels; the strongest: {best_channel} ({best_class})")
show_top("features.11", [best_channel])
