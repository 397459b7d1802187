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
# # Convolution kernels
#
# A convolution layer is a set of small learned filters. Looking at them tells you what
# patterns a layer responds to: in the first layer of an ImageNet network, edges at
# different orientations and blobs of colour. This notebook first does it by hand with
# torch and matplotlib, following the course on VGG11, then with the kernels view.

# %% [markdown]
# ## What a kernel is
#
# `nn.Conv2d(C_in, C_out, k)` holds a weight tensor of shape `(C_out, C_in, k, k)` and a
# bias of shape `(C_out,)`. Output channel $o$ is
#
# $$ y_o = b_o + \sum_{i=1}^{C_\text{in}} W_{o,i} \star x_i , $$
#
# where $\star$ slides the $k \times k$ **kernel** $W_{o,i}$ over input channel $x_i$
# and takes the dot product at every position (a cross-correlation). The $C_\text{in}$
# kernels of one output channel together are a **filter**. Where the image looks like
# the kernel, the output is large and positive; where it looks like its negative, large
# and negative.
#
# A hand-made kernel shows this. The Sobel kernel below is negative on the left and
# positive on the right, so it answers to dark-to-bright changes from left to right:
# vertical edges.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from cnnviz_widgets.demo import demo_model

demo = demo_model()                    # the bundled, trained demo network and samples
image = demo.samples[1]                # (3, 64, 64) in [0, 1]: a square
gray = image.mean(dim=0)               # (64, 64)

sobel_x = torch.tensor([[-1.0, 0.0, 1.0],
                        [-2.0, 0.0, 2.0],
                        [-1.0, 0.0, 1.0]])
response = F.conv2d(gray[None, None], sobel_x[None, None], padding=1)[0, 0]

fig, axes = plt.subplots(1, 3, figsize=(9, 3))
axes[0].imshow(image.permute(1, 2, 0))
axes[0].set_title("input")
axes[1].imshow(sobel_x, cmap="bwr", vmin=-2, vmax=2)
axes[1].set_title("kernel (blue < 0 < red)")
limit = response.abs().max()
axes[2].imshow(response, cmap="bwr", vmin=-limit, vmax=limit)
axes[2].set_title("output")
for ax in axes:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# The output is red on the square's left edge where the image gets brighter, blue
# where it gets darker, and near zero on flat areas. A trained network learns many such
# kernels by itself.
#
# ## The course's steps by hand: VGG11
#
# VGG11's convolutions live in `model.features`, an `nn.Sequential` whose children are
# named `"0"`, `"1"`, .... The ImageNet weights are a 507 MB download; without network
# the notebook uses random weights and says so (the shapes are the same, the pictures
# are then noise).

# %%
import torchvision

from cnnviz_widgets import load_pretrained

vgg = load_pretrained(
    "vgg11", torchvision.models.VGG11_Weights.DEFAULT,
    "random weights instead: the kernels below are then noise, not learned features.")
pretrained = vgg is not None
if not pretrained:
    torch.manual_seed(0)
    vgg = torchvision.models.vgg11(weights=None).eval()

layers = dict(vgg.features.named_children())
layers

# %% [markdown]
# Layer `"3"` is the second convolution: 64 input channels, 128 output channels, so
# 128 filters of 64 kernels each, 8192 kernels of 3 × 3.

# %%
conv = layers["3"]
weight = conv.weight.detach()
print(weight.shape)        # (out_channels, in_channels, kh, kw)


# %% [markdown]
# Below are the 64 kernels of filter 0. Two choices make the picture readable:
#
# * a diverging colormap (`bwr`) with white at zero, so the sign of every weight is
#   visible;
# * one colour range for the whole filter (±the largest absolute weight), so colours
#   can be compared between kernels. With `imshow`'s default each kernel would be
#   stretched to its own range and a tiny kernel would look as strong as a large one.
#
# Drawing all 128 filters this way would mean 128 figures; the kernels view further
# down pages through them instead.

# %%
def show_filter(weight, index, columns=8):
    kernels_of_filter = weight[index]                 # (in_channels, kh, kw)
    limit = kernels_of_filter.abs().max()
    rows = (len(kernels_of_filter) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(columns, rows))
    for ax in axes.flat:
        ax.set_axis_off()
    for i, kernel in enumerate(kernels_of_filter):
        axes.flat[i].imshow(kernel, cmap="bwr", vmin=-limit, vmax=limit)
    fig.suptitle(f"filter {index}: {len(kernels_of_filter)} kernels, ±{limit:.3f}")
    plt.show()


show_filter(weight, 0)


# %% [markdown]
# The first layer is different: its input has three channels, red, green and blue, so
# each of its filters can be drawn as one small colour image. Each filter is stretched
# to [0, 1] on its own, so mid-grey means "no preference".

# %%
def show_rgb_filters(weight, columns=8):
    flat = weight.flatten(1)
    low = flat.min(dim=1).values[:, None, None, None]
    high = flat.max(dim=1).values[:, None, None, None]
    pictures = ((weight - low) / (high - low)).permute(0, 2, 3, 1)   # (out, kh, kw, 3)
    rows = (len(pictures) + columns - 1) // columns
    _, axes = plt.subplots(rows, columns, figsize=(columns * 0.8, rows * 0.8))
    for ax in axes.flat:
        ax.set_axis_off()
    for i, picture in enumerate(pictures):
        axes.flat[i].imshow(picture)
    plt.show()


show_rgb_filters(layers["0"].weight.detach())

# %% [markdown]
# ## The same with cnnviz-widgets
#
# `kernels(model, layer)` returns a copy of the weights; layers are named by their
# qualified names (`"features.3"` is `vgg.features[3]`).

# %%
from cnnviz_widgets import conv_layers, kernels

print(list(conv_layers(vgg)))
k = kernels(vgg, "features.3")
print(k.shape, torch.equal(k, weight))

# %% [markdown]
# `plot_kernels` draws the same two pictures as above: the first layer as RGB filters,
# a deeper layer one filter at a time.

# %%
from cnnviz_widgets.render.plots import plot_kernels

plot_kernels(vgg, "features.0")

# %%
plot_kernels(vgg, "features.3", out_channel=0)

# %% [markdown]
# The kernels view shows every layer: the *Layer* slider picks the layer, the
# *Output filter* box picks the filter, and hovering a kernel enlarges it and shows the
# weight under the cursor.

# %%
from cnnviz_widgets import KernelsView

KernelsView(vgg, size=128)

# %% [markdown]
# ## A trained network that needs no download
#
# The demo network was trained on pictures of shapes of random colours on cluttered
# backgrounds, so its first-layer filters are trained too. It has 16 of them.

# %%
plot_kernels(demo.model, "features.0")

# %%
KernelsView()

# %% [markdown]
# ### Exercise 1
#
# How many kernels and how many parameters (weights and biases) does VGG11's
# `features.3` have? Check your answer with `conv.weight.numel()`.

# %% tags=["solution"]
out_channels, in_channels, kh, kw = conv.weight.shape
print("kernels:", out_channels * in_channels)                       # 128 * 64 = 8192
print("weights:", out_channels * in_channels * kh * kw)             # 8192 * 9 = 73728
print("biases: ", conv.bias.numel())                                # 128
print("total:  ", sum(p.numel() for p in conv.parameters()))        # 73856

# %% [markdown]
# ### Exercise 2: which first-layer filters detect edges?
#
# An edge detector answers to a *change* in brightness, not to brightness itself, so its
# weights add up to about zero (like the Sobel kernel). For each of the demo model's 16
# first-layer filters, compute
# `abs(sum of weights) / sum of abs(weights)` (0: a pure change detector, 1: an
# averaging blob), and the orientation of the colour-averaged kernel by correlating it
# with `sobel_x` (vertical edges) and its transpose (horizontal edges). Then find those
# filters in the kernels view above.

# %% tags=["solution"]
w = kernels(demo.model, "features.0")                   # (16, 3, 3, 3)
balance = w.sum(dim=(1, 2, 3)).abs() / w.abs().sum(dim=(1, 2, 3))
gray_kernels = w.mean(dim=1)                            # (16, 3, 3)
vertical = (gray_kernels * sobel_x).sum(dim=(1, 2))
horizontal = (gray_kernels * sobel_x.T).sum(dim=(1, 2))
print("filter  balance  vertical  horizontal")
for f in balance.argsort().tolist():
    print(f"{f:6d}  {balance[f]:7.2f}  {vertical[f]:8.2f}  {horizontal[f]:10.2f}")
# Filters at the top of the list (balance near 0) respond to changes: with a large
# |vertical| they find vertical edges, with a large |horizontal| horizontal ones, with
# both a diagonal. The sign says which side must be brighter.

# %% [markdown]
# ### Exercise 3: which colours?
#
# Split each first-layer filter into its grey part (the mean over the three colour
# channels, repeated) and its colour part (the rest). Which filters are mostly colour?
# Do the RGB pictures agree?

# %% tags=["solution"]
grey_part = w.mean(dim=1, keepdim=True).expand_as(w)
colour_share = (w - grey_part).flatten(1).norm(dim=1) / w.flatten(1).norm(dim=1)
order = colour_share.argsort(descending=True).tolist()
print("most colour-selective filters:", [(f, round(colour_share[f].item(), 2))
                                          for f in order[:5]])
print("least colour-selective filters:", [(f, round(colour_share[f].item(), 2))
                                           for f in order[-3:]])
# A colour share near 1 means the filter's weights nearly cancel over red, green and
# blue: it compares colours and looks saturated in the RGB picture. A small share means
# it treats the three alike: it looks grey and responds to brightness whatever the
# colour. Independent random weights give about 0.82 (exercise 4), so only filters
# well away from that value show a learned preference.

# %% [markdown]
# ### Exercise 4: VGG11
#
# Repeat exercises 2 and 3 on VGG11's `features.0`. With ImageNet weights (on Colab,
# for example) you find oriented edge detectors, some grey and some colour-opponent, and
# a few colour blobs. What do you find with the random weights?

# %% tags=["solution"]
wv = kernels(vgg, "features.0")                          # (64, 3, 3, 3)
balance_v = wv.sum(dim=(1, 2, 3)).abs() / wv.abs().sum(dim=(1, 2, 3))
colour_v = ((wv - wv.mean(dim=1, keepdim=True)).flatten(1).norm(dim=1)
            / wv.flatten(1).norm(dim=1))
print("ImageNet weights" if pretrained else "random weights")
print("median balance:", round(balance_v.median().item(), 2),
      " median colour share:", round(colour_v.median().item(), 2))
# With random weights both numbers are just what independent random weights give
# (colour share near sqrt(2/3) = 0.82): no structure. With ImageNet weights many filters
# have a balance near 0 (edge detectors) and the colour share varies widely between
# grey edge filters and colour blobs.
