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
# # Feature maps and forward hooks
#
# Kernels show what a layer *looks for*; feature maps show what it *finds* in one
# image. A feature map is one channel of a layer's output: a 2-D map that is large where
# the channel's filter matches the input. To see them we need the output of a layer in
# the middle of the network, and PyTorch gives it to us through *forward hooks*.

# %%
import matplotlib.pyplot as plt
import torch

from cnnviz_widgets import load_image
from cnnviz_widgets.demo import demo_model

demo = demo_model()
model = demo.model
x, rgb = load_image(demo.samples[3], size=64, mean=demo.mean, std=demo.std)  # the star
print(x.shape, rgb.shape)
model


# %% [markdown]
# ## Forward hooks
#
# `module.register_forward_hook(hook)` asks PyTorch to call
# `hook(module, inputs, output)` every time `module` has run its `forward`. `inputs` is
# the tuple of positional arguments the module received, `output` what it returned.
# The call returns a *handle*; `handle.remove()` takes the hook off again.
#
# A small class that records what it sees:

# %%
class Recorder:
    """A forward hook that keeps the modules, inputs and outputs it is called with."""

    def __init__(self):
        self.modules, self.inputs, self.outputs = [], [], []

    def __call__(self, module, inputs, output):
        self.modules.append(type(module).__name__)
        self.inputs.append(inputs)
        self.outputs.append(output)


recorder = Recorder()
handle = model.features[3].register_forward_hook(recorder)   # the second conv layer
with torch.no_grad():
    model(x)
print(recorder.modules)
print("input: ", recorder.inputs[0][0].shape)   # inputs is a tuple
print("output:", recorder.outputs[0].shape)

# %% [markdown]
# ### Why hooks must be removed
#
# The hook stays on the module until it is removed. Every later forward pass, also
# ones that have nothing to do with visualisation, calls it again, and the recorder
# keeps every output alive in memory:

# %%
with torch.no_grad():
    model(x)
    model(x)
print("calls recorded:", len(recorder.outputs))
print("hooks on the layer:", len(model.features[3]._forward_hooks))

handle.remove()
print("after remove():", len(model.features[3]._forward_hooks))

# %% [markdown]
# Registering the same hook twice (for example by running a cell twice) puts two hooks
# on the module. A `try`/`finally` block, here wrapped in a context manager, removes
# the hook even when the forward pass fails:

# %%
from contextlib import contextmanager


@contextmanager
def recording(module):
    recorder = Recorder()
    handle = module.register_forward_hook(recorder)
    try:
        yield recorder
    finally:
        handle.remove()


with recording(model.features[0]) as first_conv, torch.no_grad():
    model(x)
print("hooks left:", len(model.features[0]._forward_hooks))
print("smallest recorded value:", first_conv.outputs[0].min().item())

# %% [markdown]
# ### A trap: in-place operations
#
# The smallest value recorded at the first *convolution* is 0, yet a convolution's
# output has negative values. The hook stored a reference to the output tensor, and the
# next layer, `ReLU(inplace=True)`, then overwrote that same tensor with its positive
# part. Storing a copy (`output.detach().clone()`) inside the hook keeps the true
# output:

# %%
copies = []
handle = model.features[0].register_forward_hook(
    lambda module, inputs, output: copies.append(output.detach().clone()))
try:
    with torch.no_grad():
        model(x)
finally:
    handle.remove()
print("smallest value of the copy:", copies[0].min().item())


# %% [markdown]
# ## Drawing feature maps by hand
#
# Each channel of the recorded output is one map. `imshow` stretches each map to its own
# range, so the pictures show *where* a channel is active, not how strongly compared to
# the others.

# %%
def show_maps(maps, columns=8, max_maps=32, title=""):
    maps = maps[:max_maps]
    rows = (len(maps) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.1))
    for ax in axes.flat:
        ax.set_axis_off()
    for channel, m in enumerate(maps):
        axes.flat[channel].imshow(m, cmap="viridis")
        axes.flat[channel].set_title(str(channel), fontsize=7)
    fig.suptitle(title)
    plt.show()


with recording(model.features[3]) as rec, torch.no_grad():
    model(x)
out = rec.outputs[0][0]          # (32, 32, 32): channels, height, width
show_maps(out, title="features.3 of the star: 32 maps of 32 x 32")

# %% [markdown]
# The course does the same on VGG11 with an ImageNet photograph. Without network the
# weights are random (the notebook says so): the maps then still show edges, because
# even a random 3 × 3 filter responds to changes in the image, but nothing learned.

# %%
import torchvision

from cnnviz_widgets import load_pretrained
from cnnviz_widgets.demo import sample_photo

weights = torchvision.models.VGG11_Weights.DEFAULT
vgg = load_pretrained("vgg11", weights,
                      "random weights instead: the maps show no learned features.")
if vgg is None:
    torch.manual_seed(0)
    vgg = torchvision.models.vgg11(weights=None).eval()
cat_x, cat_rgb = load_image(sample_photo("chelsea"), size=128)   # ImageNet normalisation

with recording(vgg.features[3]) as rec, torch.no_grad():
    vgg(cat_x)
show_maps(rec.outputs[0][0], max_maps=16, title="VGG11 features.3 of the cat (first 16)")

# %% [markdown]
# ## The same with cnnviz-widgets
#
# `feature_maps(model, x, layers)` records any number of layers in one forward pass,
# removes its hooks whatever happens, and returns copies (so the in-place trap above
# cannot happen):

# %%
from cnnviz_widgets import conv_layers, feature_maps

names = list(conv_layers(model))
maps = feature_maps(model, x, names)
for name, m in maps.items():
    print(f"{name:12s} {tuple(m.shape)}  min {m.min().item():7.2f}")
print("equal to the hook's copy:", torch.equal(maps["features.0"], copies[0]))

# %% [markdown]
# `plot_feature_maps` draws every channel of a layer beside the input. With
# `order="mean"` the most active channels come first.

# %%
from cnnviz_widgets.render.plots import plot_feature_maps

plot_feature_maps(model, x, "features.3", image=rgb)

# %%
plot_feature_maps(model, x, "features.11", image=rgb, order="mean", max_maps=32)

# %% [markdown]
# The feature-map view does this for every layer at once: move the *Layer* slider,
# hover a tile to enlarge it (the outline on the input shows the part of the image the
# unit under the cursor can see), switch the colour scale to *per layer* to compare
# channels with each other.

# %%
from cnnviz_widgets import FeatureMapsView

FeatureMapsView(model, demo.samples[3], size=64, mean=demo.mean, std=demo.std)

# %%
FeatureMapsView(vgg, sample_photo("chelsea"), size=128)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to start from (replace the `None`s with your code), a check
# cell that tests your answer (it only prints a hint while the answer is still `None`),
# and a hidden solution (double-click it to see the code). Where it says *predict
# first*, write your guess down before you run anything.

# %% [markdown]
# ### Exercise 1: shallow and deep layers
#
# For each convolution layer of the demo model (`names`, above), find the number of
# channels, the map size, and the fraction of positions that are positive (the part
# that survives the following ReLU), for the star `x`. How do resolution and number of
# channels change with depth? Why?
#
# Predict first: from `features.0` to `features.11`, does the map get larger or smaller,
# do the channels get more or fewer, and is more or less of each map positive?

# %% tags=["exercise"]
my_prediction = ""
summary = None  # your code here: {layer name: (channels, height, width, positive fraction)}

# %% tags=["check"]
if summary is None:
    print("Hint: feature_maps(model, x, names) gives every conv layer's output, "
          "(1, channels, height, width); (m > 0).float().mean() is the positive fraction.")
else:
    assert list(summary) == names, f"summary's keys {list(summary)} are not {names}."
    for name, m in feature_maps(model, x, names).items():
        channels, height, width, positive = summary[name]
        assert (channels, height, width) == tuple(m.shape[1:]), (
            f"{name}: ({channels}, {height}, {width}) is not its (channels, height, width).")
        assert abs(positive - (m > 0).float().mean().item()) < 1e-6, (
            f"{name}: {positive} is not the fraction of its values that are > 0.")
    print(f"Correct. Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
summary = {}
for name, m in feature_maps(model, x, names).items():
    c, h, w = m.shape[1:]
    summary[name] = (c, h, w, (m > 0).float().mean().item())
    print(f"{name:12s} {c:4d} channels of {h:2d} x {w:2d}   positive: {summary[name][3]:.0%}")
# Each 2 x 2 max-pool halves the resolution while the layers get more channels: deep
# layers trade "where" for "what". A deep unit sees a large part of the input (its
# receptive field grows with every 3 x 3 conv and every pool), so its map is coarse
# but it can respond to whole shapes instead of edges. Only a minority of positions
# is positive in every layer: after the ReLU the maps are sparse.

# %% [markdown]
# ### Exercise 2: which channels know the star?
#
# Find the three channels of `features.11` with the highest mean activation for the
# star (`demo.samples[3]`), and the three for the circle (`demo.samples[0]`), each list
# with the most active channel first. Look them up in the feature-map view above (order
# by mean, or hover).
#
# Predict first: will the two lists share channels?

# %% tags=["exercise"]
my_prediction = ""
star_top = None    # your code here: three channel indices, most active first
circle_top = None  # your code here

# %% tags=["check"]
if star_top is None or circle_top is None:
    print("Hint: load each image with load_image (as x was), take feature_maps at "
          "'features.11', average over height and width, then .topk(3).indices.")
else:
    for image, answer, label in ((demo.samples[3], star_top, "star"),
                                 (demo.samples[0], circle_top, "circle")):
        xi, _ = load_image(image, size=64, mean=demo.mean, std=demo.std)
        means = feature_maps(model, xi, ["features.11"])["features.11"][0].mean(dim=(1, 2))
        answer = [int(c) for c in answer]
        assert len(answer) == 3, f"{label}: three channels, not {len(answer)}."
        assert answer == means.topk(3).indices.tolist(), (
            f"{label}: {answer} are not the three channels with the highest mean activation, "
            "most active first.")
    print(f"Correct. Shared channels: {sorted(set(star_top) & set(circle_top))}; "
          f"your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
def top_channels(image, k=3):
    xi, _ = load_image(image, size=64, mean=demo.mean, std=demo.std)
    m = feature_maps(model, xi, ["features.11"])["features.11"][0]
    return m.mean(dim=(1, 2)).topk(k).indices.tolist()


star_top = top_channels(demo.samples[3])
circle_top = top_channels(demo.samples[0])
print("star:  ", star_top)
print("circle:", circle_top)
# Deep channels are shape-selective, so the strongest channels differ between the two
# images; early channels (try "features.0") respond to colours and edges that every
# image has.

# %% [markdown]
# ### Exercise 3: every ReLU at once
#
# With one `Recorder` per ReLU, record the output of every `nn.ReLU` of the demo model
# in one forward pass, keep the shape of each, and make sure no hook is left
# afterwards, even if the forward pass fails.

# %% tags=["exercise"]
relu_names = [name for name, m in model.named_modules() if isinstance(m, torch.nn.ReLU)]
shapes = None  # your code here: {ReLU name: shape of its output}, from one forward pass

# %% tags=["check"]
if shapes is None:
    print("Hint: register one Recorder per ReLU, keep the handles, run model(x) in a try "
          "block and remove every handle in its finally block.")
else:
    assert list(shapes) == relu_names, f"shapes' keys {list(shapes)} are not {relu_names}."
    expected = feature_maps(model, x, relu_names)
    for name, shape in shapes.items():
        assert tuple(shape) == tuple(expected[name].shape), (
            f"{name}: {tuple(shape)} is not the shape of its output.")
    left = sum(len(m._forward_hooks) for m in model.modules())
    assert left == 0, f"{left} forward hook(s) are still on the model: remove every handle."
    print(f"Correct: {len(shapes)} ReLUs recorded, no hook left.")

# %% tags=["solution"]
relus = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.ReLU)}
recorders = {name: Recorder() for name in relus}
handles = [m.register_forward_hook(recorders[name]) for name, m in relus.items()]
try:
    with torch.no_grad():
        model(x)
finally:
    for h in handles:
        h.remove()
shapes = {name: tuple(rec.outputs[0].shape) for name, rec in recorders.items()}
for name, shape in shapes.items():
    print(name, shape)
print("hooks left:", sum(len(m._forward_hooks) for m in relus.values()))
