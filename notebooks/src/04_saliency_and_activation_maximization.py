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
# # Saliency maps and activation maximization
#
# Two more ways to look inside a network, both built on the gradient with respect to
# the *input image*:
#
# * a **saliency map** asks which pixels the score of a class is most sensitive to
#   (vanilla gradient, guided backpropagation, SmoothGrad, integrated gradients);
# * **activation maximization** runs the gradient the other way: it changes the image,
#   step by step, until a chosen channel fires as strongly as possible, and shows what
#   that channel "wants to see".
#
# The course does both with FlashTorch; here they are done by hand first, then with
# `cnnviz_widgets`, on the bundled demo network.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from cnnviz_widgets import load_image, saliency, saliency_map
from cnnviz_widgets.demo import demo_model

demo = demo_model()
model = demo.model
classes = demo.classes
x, rgb = load_image(demo.samples[2], size=64, mean=demo.mean, std=demo.std)  # triangle
target = classes.index("triangle")

# %% [markdown]
# ## Vanilla gradient (Simonyan et al., 2014)
#
# The score $y_k$ of class $k$ is a function of the input pixels. Its gradient
# $\partial y_k / \partial x$ has one value per pixel and colour channel: how much the
# score changes when that value changes a little. The saliency map is the largest
# magnitude over the three colour channels, $\max_c |\partial y_k / \partial x_c|$.
# By hand:

# %%
leaf = x.clone().requires_grad_(True)
score = model(leaf)[0, target]
(grad,) = torch.autograd.grad(score, leaf)           # (1, 3, 64, 64)
by_hand = grad.abs().amax(dim=1)                       # (1, 64, 64)

attributions = saliency(model, x, target, "vanilla")  # signed, (1, 3, 64, 64)
vanilla = saliency_map(attributions)                   # max |.| over colours
print("max difference to the hand-made map:", np.abs(vanilla - by_hand.numpy()).max())

fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].imshow(rgb)
axes[1].imshow(vanilla[0], cmap="gray")
axes[1].set_title("vanilla gradient")
for ax in axes:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ## Guided backpropagation (Springenberg et al., 2015)
#
# Backpropagation through a ReLU passes the gradient where the ReLU's input was
# positive. Guided backpropagation also drops the *negative* gradients there, so only
# paths that increase the score survive:
#
# $$ g_\text{in} = \mathrm{relu}(g_\text{out}) \cdot [\,\text{ReLU input} > 0\,]. $$
#
# The result is sharper than the vanilla gradient. `cnnviz_widgets` applies the rule at
# every `nn.ReLU` module with hooks that are removed afterwards; its numbers equal
# captum's `GuidedBackprop` (checked below when captum is installed). FlashTorch's
# version multiplies by the ReLU's *output* instead of masking by its input, and leaves
# its hooks on the model; those flaws are not copied.

# %%
guided = saliency_map(saliency(model, x, target, "guided"))

try:
    import copy
    import warnings

    from captum.attr import GuidedBackprop
except ImportError:
    print("captum is not installed: comparison skipped.")
else:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum says it sets (and removes) ReLU hooks
        reference = GuidedBackprop(copy.deepcopy(model)).attribute(
            x.clone().requires_grad_(True), target=target)
    print("max |ours - captum|:",
          np.abs(saliency(model, x, target, "guided") - reference.detach().numpy()).max())

# %% [markdown]
# ## SmoothGrad (Smilkov et al., 2017)
#
# Gradients of a ReLU network are noisy: they change sharply from one pixel to the
# next. SmoothGrad averages the
# gradient over noisy copies of the image,
# $\frac{1}{n}\sum_{s=1}^{n} \partial y_k / \partial x \,\big|_{x + \varepsilon_s}$ with
# $\varepsilon_s \sim \mathcal N(0, \sigma^2)$ and $\sigma$ = 15 % of the image's value
# range. 25 samples keep it quick here (the default is 50).

# %%
smooth = saliency_map(saliency(model, x, target, "smoothgrad", n_samples=25, seed=0))

# %% [markdown]
# ## Integrated gradients (Sundararajan et al., 2017)
#
# Integrated gradients adds up the gradient along the straight path from a baseline
# $x'$ to the image. Here the baseline is the all-zero model input, which after the
# demo model's normalisation is a uniform mid-grey picture:
#
# $$ \mathrm{IG}(x) = (x - x') \odot \int_0^1
#    \frac{\partial y_k}{\partial x}\Big|_{x' + \alpha (x - x')} \, d\alpha . $$
#
# Its attributions add up to the change in score, $\sum \mathrm{IG} \approx
# y_k(x) - y_k(x')$ ("completeness"); the integral is approximated with 50 points, as in
# captum.

# %%
ig = saliency(model, x, target, "integrated_gradients")
with torch.no_grad():
    change = (model(x)[0, target] - model(torch.zeros_like(x))[0, target]).item()
print(f"sum of attributions {ig.sum():.4f}   score change {change:.4f}")
integrated = saliency_map(ig)

# %% [markdown]
# Two more are in the menu: **gradient × input** (the gradient times the input, a
# one-point integrated gradients) and **guided Grad-CAM** (guided backpropagation times
# the Grad-CAM map, so the sharp detail is kept only where the class evidence is).
# Side by side, each map scaled to its own maximum:

# %%
from cnnviz_widgets import available_saliency_methods

options = {"smoothgrad": {"n_samples": 25, "seed": 0}}
fig, axes = plt.subplots(1, 7, figsize=(15, 2.6))
axes[0].imshow(rgb)
axes[0].set_title("input")
for ax, method in zip(axes[1:], available_saliency_methods(), strict=True):
    m = saliency_map(saliency(model, x, target, method, **options.get(method, {})))[0]
    ax.imshow(m / m.max(), cmap="gray")
    ax.set_title(method, fontsize=9)
for ax in axes:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# The saliency view shows the same maps for any class: click a class button to
# explain it, pick the method from the menu.

# %%
from cnnviz_widgets import SaliencyView

SaliencyView(model, demo.samples[2], size=64, mean=demo.mean, std=demo.std,
             classes=classes)

# %% [markdown]
# ## Activation maximization
#
# Instead of explaining one image, activation maximization *makes* an image: start from
# noise and follow the gradient of a channel's mean activation with respect to the
# pixels, uphill, for a number of steps.
#
# **As FlashTorch does it** (`regularize=False`): the pixels themselves are optimised,
# each step $x \leftarrow x + \eta\, g / \mathrm{rms}(g)$. Nothing stops the image from
# filling with high-frequency patterns that excite the channel but that no photograph
# contains: the result works for the network and is hard for a person to read.
#
# **Regularised** (`regularize=True`, in the manner of Lucid): the image is described by
# its Fourier coefficients, scaled so that low frequencies come first, with decorrelated
# colours; every step shows the network a randomly shifted, scaled and rotated copy,
# so a pattern only pays off if it works wherever it lands, and it is optimised with
# Adam. The images are smoother and their patterns repeat, like textures of the
# feature.
#
# Eight channels of `features.9` (the fourth convolution), both ways, at 64 pixels:

# %%
from cnnviz_widgets import activation_max, feature_maps

channels = list(range(8))
plain = activation_max(model, "features.9", channels, steps=30, size=64,
                       regularize=False, seed=0, mean=demo.mean, std=demo.std)
regular = activation_max(model, "features.9", channels, steps=96, size=64,
                         regularize=True, seed=0, mean=demo.mean, std=demo.std)

fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))
for i, c in enumerate(channels):
    axes[0, i].imshow(plain[i])
    axes[1, i].imshow(regular[i])
    axes[0, i].set_title(f"channel {c}", fontsize=8)
axes[0, 0].set_ylabel("plain")
axes[1, 0].set_ylabel("regularised")
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()


# %% [markdown]
# Two numbers make "more readable" concrete: how strongly the images excite their
# channel, and how much they change from one pixel to the next (the mean absolute
# difference of neighbouring pixels, a measure of high-frequency content). The sample
# images of the data set are the yardstick.

# %%
def channel_activation(images):
    batch = demo.transform(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255)
    out = feature_maps(model, batch, ["features.9"])["features.9"]
    return np.array([out[i, c].mean().item() for i, c in enumerate(channels)])


def roughness(images):
    a = images.astype(np.float32) / 255
    return np.abs(np.diff(a, axis=1)).mean() + np.abs(np.diff(a, axis=2)).mean()


samples = (demo.samples.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
print(f"{'':12s} {'mean activation':>16s} {'roughness':>10s}")
for name, images in (("plain", plain), ("regularised", regular)):
    print(f"{name:12s} {channel_activation(images).mean():16.2f} {roughness(images):10.3f}")
best = feature_maps(model, demo.transform(demo.samples), ["features.9"])["features.9"]
best = best[:, channels].mean(dim=(2, 3)).amax(dim=0).mean().item()
print(f"{'samples':12s} {best:16.2f} {roughness(samples):10.3f}"
      "   (activation: the best sample per channel)")

# %% [markdown]
# Both kinds of images excite their channels far more than any real sample does, so
# both "work"; the regularised ones get there with much less pixel-to-pixel noise,
# which is why a person can read shapes and textures in them. The activation maximization
# view runs the regularised version for any layer and channels (*Run*):

# %%
from cnnviz_widgets import ActivationMaxView

ActivationMaxView(model, demo.samples[2], size=64, mean=demo.mean, std=demo.std)

# %% [markdown]
# ## With ImageNet weights
#
# When the VGG11 weights can be downloaded (on Colab, for example), the next cell makes
# the course's pictures on the cat photograph: saliency for the top class, and
# regularised images for four channels of a deep layer. Offline it says so in one line.

# %%
import torchvision

from cnnviz_widgets import load_pretrained
from cnnviz_widgets.demo import sample_photo

weights = torchvision.models.VGG11_Weights.DEFAULT
vgg = load_pretrained("vgg11", weights,
                      "the pictures above, on the demo network, are the ones to study.")
if vgg is not None:
    cat_x, cat_rgb = load_image(sample_photo("chelsea"), weights=weights)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3))
    axes[0].imshow(cat_rgb)
    for ax, method in zip(axes[1:], ("vanilla", "guided", "smoothgrad"), strict=True):
        options = {"n_samples": 16, "seed": 0} if method == "smoothgrad" else {}
        ax.imshow(saliency_map(saliency(vgg, cat_x, None, method, **options))[0],
                  cmap="gray")
        ax.set_title(method)
    for ax in axes:
        ax.set_axis_off()
    plt.show()
    images = activation_max(vgg, "features.16", [0, 1, 2, 3], steps=48, size=112,
                            seed=0)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3))
    for ax, image in zip(axes, images, strict=True):
        ax.imshow(image)
        ax.set_axis_off()
    plt.show()

# %% [markdown]
# ### Exercise 1: how many steps does integrated gradients need?
#
# Compute integrated gradients with `n_steps` = 2, 5, 20 and 100 and compare the sum of
# the attributions with the change in score. How fast does the gap close?

# %% tags=["solution"]
for steps in (2, 5, 20, 100):
    total = saliency(model, x, target, "integrated_gradients", n_steps=steps).sum()
    print(f"n_steps {steps:3d}: sum {total:8.4f}   gap {abs(total - change):.4f}")
# The gap does not shrink steadily with more steps: along the path the gradient jumps
# wherever a ReLU switches on or off, and quadrature rules assume a smooth integrand.
# Completeness is a cheap check: if the gap is large compared with the score change,
# use more steps.

# %% [markdown]
# ### Exercise 2: is guided backpropagation about the class?
#
# Compute vanilla, guided and integrated-gradient maps of the triangle for the class
# *triangle* and for the class *ring*, and the correlation between the two maps of each
# method. Which method barely changes with the class?

# %% tags=["solution"]
other = classes.index("ring")
for method in ("vanilla", "guided", "integrated_gradients"):
    a = saliency_map(saliency(model, x, target, method)).ravel()
    b = saliency_map(saliency(model, x, other, method)).ravel()
    print(f"{method:22s} correlation {np.corrcoef(a, b)[0, 1]:.2f}")
# Guided backpropagation gives almost the same map for both classes: dropping every
# negative gradient keeps mostly the image's edges, whatever the class (Adebayo et al.,
# 2018, "Sanity checks for saliency maps", found the same). Guided Grad-CAM puts the
# class back by multiplying with the Grad-CAM map.

# %% [markdown]
# ### Exercise 3: what does a class look like?
#
# Activation maximization works for any layer whose output has channels, the class
# scores included: the layer `"classifier.0"` with channel `k` maximises the score of
# class `k`. Make regularised images (128 steps) for *circle*, *square*, *triangle* and
# *ring*.

# %% tags=["solution"]
wanted = ["circle", "square", "triangle", "ring"]
images = activation_max(model, "classifier.0", [classes.index(c) for c in wanted],
                        steps=128, size=64, seed=0, mean=demo.mean, std=demo.std)
fig, axes = plt.subplots(1, 4, figsize=(8, 2.4))
for ax, image, name in zip(axes, images, wanted, strict=True):
    ax.imshow(image)
    ax.set_title(name)
    ax.set_axis_off()
plt.show()
# The images repeat round outlines for circle and ring, corners for square and
# pointed shapes for triangle, in random colours: the network learned outlines,
# not colours, because the colours of the training shapes were random.
