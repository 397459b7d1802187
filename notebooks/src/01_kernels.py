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
# ## Exercises
#
# Each exercise has a cell to start from (replace the `None`s with your code), a check
# cell that tests your answer (it only prints a hint while the answer is still `None`),
# and a hidden solution (double-click it to see the code). Where it says *predict
# first*, write your guess down before you run anything: a wrong guess that you notice
# teaches more than a right answer you only read.

# %% [markdown]
# ### Exercise 1: how many kernels, how many parameters?
#
# How many kernels and how many parameters (weights and biases) does VGG11's
# `features.3` have? Predict first: work both numbers out from the weight's shape,
# `(128, 64, 3, 3)`, and write them in the cell before you count anything with
# `numel()`.

# %% tags=["exercise"]
my_prediction = ""   # your guess, worked out from the shape
n_kernels = None     # your code here: the number of 3 x 3 kernels of conv = layers["3"]
n_parameters = None  # your code here: weights plus biases

# %% tags=["check"]
if n_kernels is None or n_parameters is None:
    print("Hint: a kernel is one (output channel, input channel) pair of conv.weight; "
          "the parameters are the weights plus one bias per output channel.")
else:
    out_channels, in_channels = conv.weight.shape[:2]
    assert n_kernels != out_channels, (
        f"{n_kernels} is the number of filters (output channels); each filter has one "
        "kernel per input channel.")
    assert n_kernels == out_channels * in_channels, f"n_kernels = {n_kernels} is not right."
    assert n_parameters != conv.weight.numel(), "n_parameters: the biases are missing."
    assert n_parameters == conv.weight.numel() + conv.bias.numel(), (
        f"n_parameters = {n_parameters} is not right.")
    print(f"Correct: {n_kernels} kernels, {n_parameters} parameters. "
          f"Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
out_channels, in_channels, kh, kw = conv.weight.shape
n_kernels = out_channels * in_channels
n_parameters = sum(p.numel() for p in conv.parameters())
print("kernels:", n_kernels)                                        # 128 * 64 = 8192
print("weights:", out_channels * in_channels * kh * kw)             # 8192 * 9 = 73728
print("biases: ", conv.bias.numel())                                # 128
print("total:  ", n_parameters)                                     # 73856

# %% [markdown]
# ### Exercise 2: which first-layer filters detect edges?
#
# An edge detector answers to a *change* in brightness, not to brightness itself, so its
# weights add up to about zero (like the Sobel kernel). For each of the demo model's 16
# first-layer filters `w[f]` (the starting cell loads them), compute
#
# * `balance`: `abs(sum of weights) / sum of abs(weights)` (0: a pure change detector,
#   1: an averaging blob);
# * `vertical` and `horizontal`: the orientation of the colour-averaged kernel
#   `w[f].mean(dim=0)`, as its elementwise product with `sobel_x` (vertical edges),
#   and with `sobel_x.T` (horizontal edges), summed.
#
# Each is a tensor of 16 values. Then find the filters with the smallest balance in the
# kernels view above.

# %% tags=["exercise"]
w = kernels(demo.model, "features.0")   # (16 filters, 3 colours, 3, 3)
balance = None      # your code here: (16,)
vertical = None     # your code here: (16,)
horizontal = None   # your code here: (16,)

# %% tags=["check"]
if balance is None or vertical is None or horizontal is None:
    print("Hint: w.sum(dim=(1, 2, 3)) sums each filter's 27 weights; "
          "w.mean(dim=1) averages the colours.")
else:
    for name, value in (("balance", balance), ("vertical", vertical),
                        ("horizontal", horizontal)):
        assert tuple(value.shape) == (16,), (
            f"{name} has shape {tuple(value.shape)}: one value per filter, (16,).")
    assert ((balance >= 0) & (balance <= 1)).all(), (
        "balance must lie in [0, 1]: take the absolute value of the sum.")
    assert torch.allclose(balance, w.sum(dim=(1, 2, 3)).abs() / w.abs().sum(dim=(1, 2, 3)),
                          atol=1e-6), "balance: not abs(sum of weights) / sum of abs(weights)."
    grey_kernels = w.mean(dim=1)
    assert not torch.allclose(vertical, horizontal), (
        "vertical and horizontal are equal: use sobel_x for one and sobel_x.T for the other.")
    assert torch.allclose(vertical, (grey_kernels * sobel_x).sum(dim=(1, 2)), atol=1e-6), (
        "vertical: multiply the colour-averaged kernels by sobel_x and sum over 3 x 3.")
    assert torch.allclose(horizontal, (grey_kernels * sobel_x.T).sum(dim=(1, 2)),
                          atol=1e-6), "horizontal: the same with sobel_x.T."
    print("Correct. Filters by balance, most edge-like first:", balance.argsort().tolist())

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
# channels, repeated in each) and its colour part (the rest), and compute
# `colour_share`: the norm of the colour part divided by the norm of the whole filter,
# one value per filter. Which filters are mostly colour? Do the RGB pictures agree?
#
# Predict first: filter weights drawn at random, independently, give a colour share
# of about 0.82. Will the trained filters be mostly above that, mostly below, or spread
# out on both sides?

# %% tags=["exercise"]
w = kernels(demo.model, "features.0")   # (16 filters, 3 colours, 3, 3)
my_prediction = ""   # above, below or both sides of 0.82?
colour_share = None  # your code here: (16,)

# %% tags=["check"]
if colour_share is None:
    print("Hint: w.mean(dim=1, keepdim=True) is the grey part; "
          "x.flatten(1).norm(dim=1) is the norm of each filter.")
else:
    assert tuple(colour_share.shape) == (16,), (
        f"colour_share has shape {tuple(colour_share.shape)}: one value per filter, (16,).")
    assert ((colour_share >= 0) & (colour_share <= 1 + 1e-6)).all(), (
        "colour_share is a part's norm over the whole's norm: between 0 and 1.")
    colour_part = w - w.mean(dim=1, keepdim=True)
    assert torch.allclose(colour_share,
                          colour_part.flatten(1).norm(dim=1) / w.flatten(1).norm(dim=1),
                          atol=1e-6), (
        "colour_share: the norm of (w minus its mean over the colours), over the norm of w.")
    print(f"Correct. Range {colour_share.min():.2f} to {colour_share.max():.2f}; "
          f"your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
w = kernels(demo.model, "features.0")                   # (16, 3, 3, 3)
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
# Compute the balance and the colour share (exercises 2 and 3) of the 64 filters of
# VGG11's `features.0`, and their medians. With ImageNet weights (on Colab, for example)
# you find oriented edge detectors, some grey and some colour-opponent, and a few colour
# blobs.
#
# Predict first: which median colour share do you expect with random weights? (Hint:
# in a random filter the three colour values at a position are independent; how much of
# their variation is left after subtracting their mean?)

# %% tags=["exercise"]
wv = kernels(vgg, "features.0")   # (64 filters, 3 colours, 3, 3)
my_prediction = ""  # the median colour share with random weights
balance_v = None    # your code here: (64,)
colour_v = None     # your code here: (64,)

# %% tags=["check"]
if balance_v is None or colour_v is None:
    print("Hint: the same two formulas as in exercises 2 and 3, on wv instead of w.")
else:
    assert tuple(balance_v.shape) == (64,) and tuple(colour_v.shape) == (64,), (
        "one value per VGG11 filter: (64,) each.")
    assert torch.allclose(balance_v,
                          wv.sum(dim=(1, 2, 3)).abs() / wv.abs().sum(dim=(1, 2, 3)),
                          atol=1e-6), "balance_v: not abs(sum of weights) / sum of abs(weights)."
    assert torch.allclose(colour_v, (wv - wv.mean(dim=1, keepdim=True)).flatten(1).norm(dim=1)
                          / wv.flatten(1).norm(dim=1), atol=1e-6), (
        "colour_v: the norm of (wv minus its mean over the colours), over the norm of wv.")
    print(f"Correct. Median balance {balance_v.median():.2f}, median colour share "
          f"{colour_v.median():.2f}; your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
wv = kernels(vgg, "features.0")                          # (64, 3, 3, 3)
balance_v = wv.sum(dim=(1, 2, 3)).abs() / wv.abs().sum(dim=(1, 2, 3))
colour_v = ((wv - wv.mean(dim=1, keepdim=True)).flatten(1).norm(dim=1)
            / wv.flatten(1).norm(dim=1))
print("ImageNet weights" if pretrained else "random weights")
print("median balance:", round(balance_v.median().item(), 2),
      " median colour share:", round(colour_v.median().item(), 2))
# With random weights both numbers are just what independent random weights give
# (colour share near sqrt(2/3) = 0.82: subtracting the mean of three independent values
# removes one third of their variance). With ImageNet weights many filters have a
# balance near 0 (edge detectors) and the colour share varies widely between grey edge
# filters and colour blobs.
