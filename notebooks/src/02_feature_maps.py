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
# ### Exercise 1: shallow and deep layers
#
# For each convolution layer of the demo model, print the number of channels, the map
# size, and the fraction of positions that are positive (the fraction that survives the
# following ReLU). How do resolution and number of channels change with depth? Why?

# %% tags=["solution"]
for name, m in feature_maps(model, x, names).items():
    c, h, w = m.shape[1:]
    print(f"{name:12s} {c:4d} channels of {h:2d} x {w:2d}   "
          f"positive: {(m > 0).float().mean().item():.0%}")
# Each 2 x 2 max-pool halves the resolution while the layers get more channels: deep
# layers trade "where" for "what". A deep unit sees a large part of the input (its
# receptive field grows with every 3 x 3 conv and every pool), so its map is coarse
# but it can respond to whole shapes instead of edges. Only a minority of positions
# is positive in every layer: after the ReLU the maps are sparse.

# %% [markdown]
# ### Exercise 2: which channels know the star?
#
# Find the three channels of `features.11` with the highest mean activation for the
# star, and the three for the circle (`demo.samples[0]`). Are they the same? Look them
# up in the feature-map view above (order by mean, or hover).

# %% tags=["solution"]
def top_channels(image, k=3):
    xi, _ = load_image(image, size=64, mean=demo.mean, std=demo.std)
    m = feature_maps(model, xi, ["features.11"])["features.11"][0]
    return m.mean(dim=(1, 2)).topk(k).indices.tolist()


print("star:  ", top_channels(demo.samples[3]))
print("circle:", top_channels(demo.samples[0]))
# Deep channels are shape-selective, so the strongest channels differ between the two
# images; early channels (try "features.0") respond to colours and edges that every
# image has.

# %% [markdown]
# ### Exercise 3: every ReLU at once
#
# With one `Recorder` per ReLU, record the output of every `nn.ReLU` of the demo model
# in one forward pass, print their shapes, and make sure no hook is left afterwards.

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
for name, rec in recorders.items():
    print(name, tuple(rec.outputs[0].shape))
print("hooks left:", sum(len(m._forward_hooks) for m in relus.values()))
