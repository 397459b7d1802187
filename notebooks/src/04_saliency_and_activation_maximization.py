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
# ## Exercises
#
# Each exercise has a cell to start from (replace the `None`s with your code), a check
# cell that tests your answer (it only prints a hint while the answer is still `None`),
# and a hidden solution (double-click it to see the code). Where it says *predict
# first*, write your guess down before you run anything.

# %% [markdown]
# ### Exercise 1: how many steps does integrated gradients need?
#
# Compute integrated gradients of the triangle with `n_steps` = 2, 5, 20 and 100, and
# for each the gap between the sum of the attributions and the change in score
# (`change`, computed above): `abs(sum - change)`. How fast does the gap close?
#
# Predict first: will the gap shrink at every step up, from 2 to 5 to 20 to 100?

# %% tags=["exercise"]
my_prediction = ""
gaps = None  # your code here: {n_steps: abs(attribution total - change)} for 2, 5, 20, 100

# %% tags=["check"]
if gaps is None:
    print("Hint: saliency(model, x, target, 'integrated_gradients', n_steps=n).sum() is the "
          "total of the attributions.")
else:
    assert sorted(gaps) == [2, 5, 20, 100], f"gaps' keys {sorted(gaps)}, not 2, 5, 20, 100."
    for steps, gap in gaps.items():
        total = saliency(model, x, target, "integrated_gradients", n_steps=steps).sum()
        assert gap >= 0, f"n_steps {steps}: a gap is an absolute value, not {gap}."
        assert abs(gap - abs(total - change)) < 1e-4, (
            f"n_steps {steps}: {gap} is not the gap abs(total - change) = "
            f"{abs(total - change):.4f}.")
    print(f"Correct. Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
gaps = {}
for steps in (2, 5, 20, 100):
    total = saliency(model, x, target, "integrated_gradients", n_steps=steps).sum()
    gaps[steps] = float(abs(total - change))
    print(f"n_steps {steps:3d}: sum {total:8.4f}   gap {gaps[steps]:.4f}")
# The gap does not shrink steadily with more steps: along the path the gradient jumps
# wherever a ReLU switches on or off, and quadrature rules assume a smooth integrand.
# Completeness is a cheap check: if the gap is large compared with the score change,
# use more steps.

# %% [markdown]
# ### Exercise 2: is guided backpropagation about the class?
#
# Compute vanilla, guided and integrated-gradient maps (`saliency_map` of the
# attributions) of the triangle for the class *triangle* and for the class *ring*, and
# for each method the correlation between its two maps (`np.corrcoef` of the flattened
# maps).
#
# Predict first: which method will barely change with the class?

# %% tags=["exercise"]
my_prediction = ""
correlations = None  # your code here: {method: correlation of its triangle and ring maps}

# %% tags=["check"]
if correlations is None:
    print("Hint: saliency_map(saliency(model, x, k, method)).ravel() for k = target and "
          "k = classes.index('ring'); np.corrcoef(a, b)[0, 1].")
else:
    wanted = ("vanilla", "guided", "integrated_gradients")
    assert sorted(correlations) == sorted(wanted), f"correlations' keys: {wanted}."
    ring = classes.index("ring")
    for method in wanted:
        a = saliency_map(saliency(model, x, target, method)).ravel()
        b = saliency_map(saliency(model, x, ring, method)).ravel()
        expected = np.corrcoef(a, b)[0, 1]
        assert abs(correlations[method] - expected) < 1e-4, (
            f"{method}: {correlations[method]:.3f} is not the correlation of its maps for "
            "triangle and ring.")
    print(f"Correct. Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
other = classes.index("ring")
correlations = {}
for method in ("vanilla", "guided", "integrated_gradients"):
    a = saliency_map(saliency(model, x, target, method)).ravel()
    b = saliency_map(saliency(model, x, other, method)).ravel()
    correlations[method] = float(np.corrcoef(a, b)[0, 1])
    print(f"{method:22s} correlation {correlations[method]:.2f}")
# Guided backpropagation gives almost the same map for both classes: dropping every
# negative gradient keeps mostly the image's edges, whatever the class (Adebayo et al.,
# 2018, "Sanity checks for saliency maps", found the same; notebook 03, exercise 4, runs
# their weight-randomisation test). Guided Grad-CAM puts the class back by multiplying
# with the Grad-CAM map.

# %% [markdown]
# ### Exercise 3: what does a class look like?
#
# Activation maximization works for any layer whose output has channels, the class
# scores included: the layer `"classifier.0"` with channel `k` maximises the score of
# class `k`. Make regularised images (128 steps, 64 pixels, `seed=0`) for *circle*,
# *square*, *triangle* and *ring*, and draw them.
#
# Predict first: the shapes the network was trained on had random colours. Will the
# images show one colour per class, or any colours?

# %% tags=["exercise"]
wanted = ["circle", "square", "triangle", "ring"]
my_prediction = ""
class_images = None  # your code here: (4, 64, 64, 3) uint8, one image per class of `wanted`

# %% tags=["check"]
if class_images is None:
    print("Hint: activation_max(model, 'classifier.0', [classes.index(c) for c in wanted], "
          "steps=128, size=64, seed=0, mean=demo.mean, std=demo.std).")
else:
    assert np.shape(class_images) == (4, 64, 64, 3), (
        f"class_images has shape {np.shape(class_images)}, not (4, 64, 64, 3).")
    batch = demo.transform(torch.from_numpy(np.asarray(class_images)).permute(0, 3, 1, 2)
                           .float() / 255)
    with torch.no_grad():
        predicted = [classes[k] for k in model(batch).argmax(dim=1).tolist()]
    assert predicted == wanted, (
        f"the model sees {predicted} in the images, not {wanted}: maximise channel "
        "classes.index(name) of 'classifier.0' for each name.")
    print(f"Correct: the model sees {', '.join(predicted)}. "
          f"Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
class_images = activation_max(model, "classifier.0", [classes.index(c) for c in wanted],
                              steps=128, size=64, seed=0, mean=demo.mean, std=demo.std)
fig, axes = plt.subplots(1, 4, figsize=(8, 2.4))
for ax, image, name in zip(axes, class_images, wanted, strict=True):
    ax.imshow(image)
    ax.set_title(name)
    ax.set_axis_off()
plt.show()
# The images repeat round outlines for circle and ring, corners for square and
# pointed shapes for triangle, in random colours: the network learned outlines,
# not colours, because the colours of the training shapes were random.

# %% [markdown]
# ### Exercise 4: guided backpropagation with backward hooks
#
# Guided backpropagation changes only what happens at the ReLUs on the way back, and a
# *backward hook* can change it. `module.register_full_backward_hook(hook)` makes
# PyTorch call `hook(module, grad_input, grad_output)` during the backward pass:
# `grad_output` holds the gradient with respect to the module's output, `grad_input`
# the gradient with respect to its input, which the module passes on; if the hook
# returns a tuple, that is passed on instead. For a ReLU, `grad_input[0]` is
# `grad_output[0]` where the ReLU's input was positive and 0 elsewhere, so the guided
# rule only has to keep its positive part.
#
# Write the hook, register it on every `nn.ReLU` of `twin`, compute the gradient of
# the triangle's score with respect to the input (`torch.autograd.grad`), remove the
# hooks, and compare with `saliency(model, x, target, "guided")`. `twin` is a copy of
# the model whose ReLUs do not work in place: PyTorch refuses a full backward hook on a
# module that overwrites its input (try it on `model`).
#
# Predict first: negative gradients are dropped at every ReLU. Will the gradient at the
# input pixels be positive everywhere?

# %% tags=["exercise"]
import copy

twin = copy.deepcopy(model)
for module in twin.modules():
    if isinstance(module, torch.nn.ReLU):
        module.inplace = False  # full backward hooks need ReLUs that return a new tensor


def guided_hook(module, grad_input, grad_output):
    return None  # your code here: the tuple to pass on instead of grad_input


my_prediction = ""
guided_hooked = None  # your code here: d score / d input with the hooks on, (1, 3, 64, 64)

# %% tags=["check"]
if guided_hooked is None:
    print("Hint: keep the handles of twin's ReLUs' register_full_backward_hook(guided_hook), "
          "take the gradient in a try block, remove them in its finally block.")
else:
    left = sum(len(m._backward_hooks) for m in twin.modules())
    assert left == 0, f"{left} backward hook(s) are still on twin: call each handle's remove()."
    passed_on = guided_hook(None, (torch.tensor([-1.0, 0.0, 2.0]),), (torch.ones(3),))
    assert passed_on is not None and torch.equal(passed_on[0], torch.tensor([0.0, 0.0, 2.0])), (
        "guided_hook must return a tuple holding the positive part of grad_input[0].")
    got = torch.as_tensor(guided_hooked).detach()
    assert tuple(got.shape) == (1, 3, 64, 64), f"shape {tuple(got.shape)}, not (1, 3, 64, 64)."
    assert not torch.allclose(got, torch.from_numpy(saliency(model, x, target, "vanilla"))), (
        "that is the plain gradient: the hooks did not run or returned None. Return "
        "(grad_input[0].clamp(min=0),).")
    assert torch.allclose(got, torch.from_numpy(saliency(model, x, target, "guided")),
                          atol=1e-6), "not equal to saliency(model, x, target, 'guided')."
    print(f"Correct. {(got < 0).float().mean():.0%} of the input gradient is negative; "
          f"your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
def guided_hook(module, grad_input, grad_output):
    # grad_input[0]: grad_output[0] where the ReLU's input was positive, 0 elsewhere
    return (grad_input[0].clamp(min=0),)


handles = [m.register_full_backward_hook(guided_hook)
           for m in twin.modules() if isinstance(m, torch.nn.ReLU)]
try:
    leaf = x.clone().requires_grad_(True)
    (guided_hooked,) = torch.autograd.grad(twin(leaf)[0, target], leaf)
finally:
    for h in handles:
        h.remove()
print("backward hooks left:", sum(len(m._backward_hooks) for m in twin.modules()))
print("max |by hand - saliency(..., 'guided')|:",
      np.abs(guided_hooked.numpy() - saliency(model, x, target, "guided")).max())
print(f"negative part of the input gradient: {(guided_hooked < 0).float().mean():.0%}")
# The input gradient still has both signs: on the way back, after the first ReLU comes
# the first convolution, and its weights have both signs. The guided rule makes the
# gradient positive only where it leaves a ReLU.

# %% [markdown]
# ### Exercise 5: FlashTorch's gradient ascent by hand
#
# FlashTorch's `GradientAscent`, the course's last example, makes an image that
# excites one channel: start from faint noise and repeat 30 times: compute the
# channel's mean activation (the objective) and its gradient `g` with respect to the
# image, then step `image = image + g / (rms(g) + 1e-5)`, where
# `rms(g) = sqrt(mean(g**2))` (the learning rate is 1). Write that loop for channel 0
# of `features.9`, from the start image in the starting cell, and record the objective
# before each step. `trunk = model.features[:10]` is the network up to `features.9`,
# so `trunk(image)` is the layer's output and no hook is needed.
#
# `activation_max(..., regularize=False)` runs the same loop (without FlashTorch's
# flaws: it keeps no gradients in the weights, leaves no hooks and can be seeded), so
# your final image must equal its `raw=True` result.
#
# Predict first: will the objective rise at every step?

# %% tags=["exercise"]
trunk = model.features[:10]  # the network up to features.9, the layer we excite
channel = 0
start = torch.from_numpy(activation_max(model, "features.9", [channel], steps=0, size=64,
                                        regularize=False, seed=0, raw=True,
                                        mean=demo.mean, std=demo.std))  # (1, 3, 64, 64)
my_prediction = ""
objectives = None    # your code here: the objective before each of the 30 steps (floats)
ascent_image = None  # your code here: the image after 30 steps, (1, 3, 64, 64)

# %% tags=["check"]
if objectives is None or ascent_image is None:
    print("Hint: each step needs a copy of the image that requires grad "
          "(image.detach().requires_grad_(True)), the objective, and torch.autograd.grad.")
else:
    assert len(objectives) == 30, f"{len(objectives)} objectives: one before each of 30 steps."
    with torch.no_grad():
        first = trunk(start)[0, channel].mean().item()
    assert abs(float(objectives[0]) - first) < 1e-5, (
        f"objectives[0] = {objectives[0]}: the start image's mean activation is {first:.4f}.")
    assert objectives[-1] > objectives[0], (
        "the objective went down: step along +g (ascent), not -g.")
    reference = torch.from_numpy(activation_max(
        model, "features.9", [channel], steps=30, size=64, regularize=False, seed=0,
        raw=True, mean=demo.mean, std=demo.std))
    assert torch.allclose(torch.as_tensor(ascent_image).detach(), reference, atol=1e-4), (
        "the final image is not activation_max's: step image + g / (rms(g) + 1e-5), "
        "30 times, from start.")
    rises = int((np.diff(objectives) > 0).sum())
    print(f"Correct. The objective went from {objectives[0]:.2f} to {objectives[-1]:.2f} and "
          f"rose in {rises} of 29 steps; your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
image = start.clone()
objectives = []
for _ in range(30):
    leaf = image.detach().requires_grad_(True)
    objective = trunk(leaf)[0, channel].mean()
    (g,) = torch.autograd.grad(objective, leaf)
    objectives.append(objective.item())
    image = image + g / (g.pow(2).mean().sqrt() + 1e-5)
ascent_image = image.detach()

package = activation_max(model, "features.9", [channel], steps=30, size=64,
                         regularize=False, seed=0, raw=True, mean=demo.mean, std=demo.std)
print("max |by hand - activation_max|:", np.abs(ascent_image.numpy() - package).max())
# FlashTorch's display: standardise the image, then 0.15 x that + 0.7, clipped to [0, 1]
shown = ((ascent_image - ascent_image.mean()) / ascent_image.std() * 0.15 + 0.7).clamp(0, 1)
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
axes[0].plot(objectives, marker=".")
axes[0].set_xlabel("step")
axes[0].set_ylabel(f"mean activation of channel {channel}")
axes[1].imshow(shown[0].permute(1, 2, 0))
axes[1].set_axis_off()
plt.show()
# The objective rises overall but not at every step: every step has the same length
# (the gradient divided by its own size), with no check that it goes up, so near a
# ReLU switching on or off a step can overshoot. The picture is the high-frequency
# pattern that this plain ascent is known for (compare the regularised images above).
