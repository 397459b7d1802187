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
# # Class activation maps: CAM, Grad-CAM and its variants
#
# A class activation map answers "which part of the image made the network say
# *star*?". It is computed from a convolution layer: its channels are maps of where
# their features were found, and a method decides how much each channel counts for the
# class. This notebook builds CAM and Grad-CAM by hand, then compares thirteen methods,
# walks through the layers, measures how faithful the maps are, and checks that
# `cnnviz_widgets.cam` gives the same numbers as pytorch-grad-cam.
#
# Everything runs on the bundled demo network, which is trained, so the maps mean
# something without a download.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from cnnviz_widgets import cam, feature_maps, load_image
from cnnviz_widgets.demo import demo_model
from cnnviz_widgets.render.plots import show_cam

demo = demo_model()
model = demo.model
classes = demo.classes
x, rgb = load_image(demo.samples[3], size=64, mean=demo.mean, std=demo.std)  # a star
with torch.no_grad():
    probs = model(x).softmax(dim=1)[0]
target = int(probs.argmax())
print("predicted:", classes[target], f"({probs[target]:.1%})")

# %% [markdown]
# ## CAM (Zhou et al., 2016)
#
# The demo network ends like the networks CAM was invented for: the last convolution
# block gives 128 maps $A_c$ of 8 × 8, global average pooling turns each map into one
# number, and a linear layer gives the class scores:
#
# $$ y_k = b_k + \sum_c w_{k,c} \, \frac{1}{64} \sum_{i,j} A_c[i,j]
#       = b_k + \frac{1}{64} \sum_{i,j} \Big( \sum_c w_{k,c} A_c[i,j] \Big). $$
#
# The term in brackets is the **class activation map** $M_k = \sum_c w_{k,c} A_c$: the
# score of class $k$ is the average of $M_k$ over the positions, so $M_k$ shows where
# the score comes from. The activations are the output of `features.12`, the last ReLU.

# %%
acts = feature_maps(model, x, ["features.12"])["features.12"][0]   # (128, 8, 8)
w = model.classifier[0].weight.detach()                            # (8 classes, 128)
cam_by_hand = torch.einsum("c,chw->hw", w[target], acts)          # (8, 8)

upsampled = F.interpolate(cam_by_hand[None, None], size=(64, 64), mode="bilinear",
                          align_corners=False)[0, 0]
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
axes[0].imshow(rgb)
axes[0].set_title("input")
axes[1].imshow(cam_by_hand, cmap="jet")
axes[1].set_title("CAM, 8 x 8")
axes[2].imshow(rgb)
axes[2].imshow(upsampled.clamp(min=0), cmap="jet", alpha=0.5)
axes[2].set_title("upsampled over the input")
for ax in axes:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ## Grad-CAM (Selvaraju et al., 2017)
#
# CAM needs the pooling-then-linear ending. Grad-CAM works for any layer of any network:
# it takes the gradient $G_c = \partial y_k / \partial A_c$ of the class score, averages
# it over the positions to get a weight per channel, and keeps the positive part:
#
# $$ \alpha_c = \frac{1}{hw} \sum_{i,j} G_c[i,j], \qquad
#    M = \mathrm{ReLU}\Big(\sum_c \alpha_c A_c\Big). $$
#
# By hand, a forward hook keeps the activations and `torch.autograd.grad` gives their
# gradient:

# %%
saved = {}
handle = model.features[12].register_forward_hook(
    lambda module, inputs, output: saved.update(acts=output))
try:
    scores = model(x)
finally:
    handle.remove()
(grads,) = torch.autograd.grad(scores[0, target], saved["acts"])
alpha = grads[0].mean(dim=(1, 2))                                   # (128,)
gradcam_by_hand = torch.relu(torch.einsum("c,chw->hw", alpha, saved["acts"][0].detach()))

ours_raw = cam(model, x, "features.12", "GradCAM", target=target, raw=True)[0]
print("library vs by hand, max difference:",
      np.abs(ours_raw - gradcam_by_hand.numpy()).max())
print("Grad-CAM x 64 vs CAM, max difference:",
      np.abs(64 * ours_raw - cam_by_hand.clamp(min=0).numpy()).max())

# %% [markdown]
# On this network Grad-CAM *is* CAM: the gradient of $y_k$ with respect to $A_c[i,j]$
# is $w_{k,c}/64$ at every position, so $\alpha_c = w_{k,c}/64$, and the two maps differ
# only by the factor 64 (and the ReLU).
#
# `cam(model, x, layer, method, target)` returns the finished map, as pytorch-grad-cam
# does: ReLU, scaled to [0, 1], resized to the input (bilinear), `(N, H, W)`.

# %%
gradcam = cam(model, x, "features.12", "GradCAM", target=target)
print(gradcam.shape, gradcam.dtype, float(gradcam.min()), float(gradcam.max()))
show_cam(rgb, {"GradCAM": gradcam})

# %% [markdown]
# ## The variants
#
# All methods share the same pipeline (capture the layer, maybe backpropagate, combine,
# ReLU, normalise, resize); they differ in how they combine the channels. Per image,
# with $y$ the class score, $A_c$ the layer's channels and $G_c$ their gradients:
#
# | method | raw map before the ReLU |
# | --- | --- |
# | GradCAM | $\sum_c \bar G_c A_c$ with $\bar G_c$ the spatial mean of $G_c$ |
# | GradCAMPlusPlus | $\sum_c w_c A_c$, $w_c = \sum_{ij} \alpha_{c,ij}\,\mathrm{relu}(G_{c,ij})$, $\alpha = G^2 / (2G^2 + G^3 \sum_{ij} A_c)$ |
# | XGradCAM | $\sum_c w_c A_c$, $w_c = \sum_{ij} G_{c,ij} A_{c,ij} / \sum_{ij} A_{c,ij}$ |
# | HiResCAM | $\sum_c G_c \odot A_c$ (no averaging of the gradient) |
# | LayerCAM | $\sum_c \mathrm{relu}(G_c) \odot A_c$ |
# | GradCAMElementWise | $\sum_c \mathrm{relu}(G_c \odot A_c)$ |
# | EigenCAM | first principal component of the activations (no class, no gradient) |
# | EigenGradCAM | first principal component of $G \odot A$ |
# | KPCA_CAM | first kernel principal component of the activations (no class) |
# | FEM | $\sum_c w_c A_c$, $w_c$ = fraction of positions where $A_c > \mathrm{mean} + 2\,\mathrm{std}$ (no class) |
# | ScoreCAM | $\sum_c w_c A_c$, $w_c = \mathrm{softmax}_c$ of the score of the input masked by $A_c$ (one forward pass per channel) |
# | AblationCAM | $\sum_c w_c A_c$, $w_c = (y - y_c)/y$ with $y_c$ the score when channel $c$ is set to 0 |
# | FullGrad | input gradient × input plus bias gradient × bias of every layer (ignores the chosen layer) |
#
# `docs/methods.md` in the repository gives each formula in full with its reference and
# caveats. Side by side on the star:

# %%
from cnnviz_widgets import available_cam_methods

methods = available_cam_methods()
all_maps = {m: cam(model, x, "features.12", m, target=target) for m in methods}
show_cam(rgb, all_maps, ncols=5)

# %% [markdown]
# At the last layer of this network the maps nearly coincide: its channels already
# stand for whole shapes, and on a CAM network like this one Grad-CAM and HiResCAM
# reduce to CAM exactly, the other gradient methods nearly. EigenCAM, KPCA_CAM and FEM
# do not even use the class (they
# show what the layer's activations single out, whatever class you ask for; on an
# image with one object that is the object). FullGrad is the odd one out: it ignores
# the chosen layer and adds up gradient-times-bias terms of *every* layer and the input
# gradient, and on this network much of that lands on the background.
#
# At a middle layer the methods part ways. `features.7` is the ReLU after the third
# convolution, a 16 × 16 grid whose channels detect parts of shapes (corners, edges,
# points), and each method weighs those parts differently:

# %%
show_cam(rgb, {m: cam(model, x, "features.7", m, target=target) for m in methods},
         ncols=5)

# %% [markdown]
# Looking cannot tell which of these maps is right; the faithfulness figures further
# down measure it.
#
# ## Through the depth of the network
#
# `cam_per_layer` gives one map per layer from one forward and one backward pass. Early
# layers have a fine grid but know little about the class; the last layers know the
# class but have a coarse 8 × 8 grid.

# %%
from cnnviz_widgets import cam_per_layer

per_layer = cam_per_layer(model, x, method="GradCAM", target=target)
show_cam(rgb, per_layer, ncols=5)

# %% [markdown]
# The CAM view has the same walk as a slider (*CAM layer*), a method menu, the top
# classes as buttons, and a *Faithfulness* button that computes the deletion, insertion
# and average-drop figures of the next section for the map on screen.

# %%
from cnnviz_widgets import CamView

CamView(model, demo.samples[3], size=64, mean=demo.mean, std=demo.std,
        classes=classes)

# %% [markdown]
# ## Is the map faithful to the model?
#
# A map can look plausible and still not be what the model uses. Four standard checks,
# each computed with the model itself, on the eight samples (one per class, each
# explained for its true class):
#
# * **deletion AUC** (lower is better): delete pixels, most important first, and
#   follow the class probability; a faithful map makes it fall fast.
# * **insertion AUC** (higher is better): start from a blurred image and put the most
#   important pixels back first; the probability should rise fast.
# * **average drop** (lower is better): the drop in probability, in %, when the model
#   sees only the image multiplied by the map.
# * **pointing game**: is the map's maximum inside the object's box? (hits out of 8)
#
# A random map is the baseline every method must beat. 32 deletion steps keep this
# cell quick; the figures move a little with the step count.

# %%
from cnnviz_widgets import average_drop, deletion_auc, insertion_auc, pointing_game

xs = demo.transform(demo.samples)              # the eight samples, model-ready
labels = demo.sample_labels
candidates = {m: cam(model, xs, "features.12", m, target=labels)
              for m in ("GradCAM", "GradCAMPlusPlus", "ScoreCAM", "EigenCAM",
                        "FullGrad")}
candidates["random map"] = np.random.default_rng(0).random((8, 64, 64), np.float32)

print(f"{'method':16s} {'deletion':>9s} {'insertion':>10s} {'avg drop':>9s}"
      f" {'pointing':>9s}")
for name, maps in candidates.items():
    dele = deletion_auc(model, xs, maps, labels, steps=32).mean()
    ins = insertion_auc(model, xs, maps, labels, steps=32).mean()
    drop = average_drop(model, xs, maps, labels).mean()
    hits = pointing_game(maps, demo.sample_boxes).sum()
    print(f"{name:16s} {dele:9.3f} {ins:10.3f} {drop:8.1f}% {hits:7d}/8")

# %% [markdown]
# Every method beats the random map on all four figures, but the figures do not crown
# one method: they measure different things. Deletion rewards finding *some* decisive
# pixels; average drop rewards keeping *all* of them, so a broad map scores well:
# FullGrad's map covers much of the image, has the lowest average drop, and points at
# the object in only half of the images. Between the Grad-CAM variants the differences
# on eight images are small.
#
# ## The same numbers as pytorch-grad-cam
#
# The methods follow pytorch-grad-cam 1.5 (the library the course uses) exactly: same
# formulas, same epsilons, same normalisation and resizing. The cell below runs both on
# the eight samples and prints the largest difference per method (maps in [0, 1]).
# pytorch-grad-cam gets its own copy of the model, because it leaves hooks and
# gradients on the model it is given.
#
# Two details: the target layer is `features.12` (the last ReLU, the course's
# `model.features[-1]`), because on the CPU pytorch-grad-cam keeps the output tensor of
# a layer followed by an in-place ReLU, which that ReLU then overwrites; and the sign of
# a principal component is arbitrary, so EigenCAM and EigenGradCAM are compared with
# the reference's projection or its negative, whichever the reference took.

# %%
import contextlib
import copy
import io

try:
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection
except ImportError:
    pytorch_grad_cam = None
    print("pytorch-grad-cam is not installed (pip install grad-cam): comparison skipped.")


def activations_and_gradients(x, targets):
    """features.12's output and the gradient of each image's target score."""
    saved = {}
    handle = model.features[12].register_forward_hook(
        lambda module, inputs, output: saved.update(acts=output))
    try:
        scores = model(x)
    finally:
        handle.remove()
    picked = scores[torch.arange(len(targets)), targets].sum()
    (grads,) = torch.autograd.grad(picked, saved["acts"])
    return saved["acts"].detach(), grads


if pytorch_grad_cam is not None:
    x8, labels8 = xs, labels.tolist()
    twin = copy.deepcopy(model)                 # the reference leaves hooks and .grad
    largest = 0.0
    for method in methods:
        ours = cam(model, x8, "features.12", method, target=labels8)
        chatter = io.StringIO()  # progress bars and FullGrad's warning
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter), \
                getattr(pytorch_grad_cam, method)(twin, [twin.features[-1]]) as ref:
            reference = ref(x8.clone(), [ClassifierOutputTarget(k) for k in labels8])
        note = ""
        if method in ("EigenCAM", "EigenGradCAM"):
            # Compare the raw maps: ours is relu(+P) or relu(-P) of the reference's P.
            acts, grads = activations_and_gradients(x8, labels8)
            stack = acts if method == "EigenCAM" else grads * acts
            projection = get_2d_projection(stack.numpy())
            ours_raw = cam(model, x8, "features.12", method, target=labels8, raw=True)
            signs = []
            for ours_i, p_i in zip(ours_raw, projection, strict=True):
                errors = {s: np.abs(ours_i - np.maximum(s * p_i, 0)).max() for s in (1, -1)}
                signs.append(min(errors, key=errors.get))
            reference = np.stack([np.maximum(s * p_i, 0)
                                  for s, p_i in zip(signs, projection, strict=True)])
            ours = ours_raw / ours_raw.max(axis=(1, 2), keepdims=True)
            reference = reference / reference.max(axis=(1, 2), keepdims=True)
            note = f"  (raw maps, reference signs {signs})"
        diff = float(np.abs(ours - reference).max())
        largest = max(largest, diff)
        print(f"{method:20s} max |ours - pytorch-grad-cam| = {diff:.1e}{note}")
    print(f"largest difference over all methods: {largest:.1e}")

# %% [markdown]
# The differences are float32 rounding (about 1e-7 to 1e-6 on maps in [0, 1]). Where
# the reference's signs above are not all `1`, its EigenCAM picture of that image is
# the *other* side of the component; `cnnviz-widgets` orients the component so that it
# agrees with the summed activations (see `docs/methods.md`), so its picture is stable.
#
# ## With ImageNet weights
#
# The course explains a photograph with VGG11. When the weights can be downloaded
# (Colab, for example), the next cell does that for the bundled cat photograph;
# offline it says so and the maps above, on the demo network, are the ones to study.

# %%
import torchvision

from cnnviz_widgets import load_pretrained
from cnnviz_widgets.demo import sample_photo

weights = torchvision.models.VGG11_Weights.DEFAULT
vgg = load_pretrained("vgg11", weights,
                      "the maps above, on the demo network, are the ones to study.")
if vgg is not None:
    cat_x, cat_rgb = load_image(sample_photo("chelsea"), weights=weights)
    with torch.no_grad():
        top = vgg(cat_x).softmax(dim=1)[0].topk(3)
    names = weights.meta["categories"]
    print([(names[i], f"{p:.1%}") for p, i in zip(top.values.tolist(),
                                                    top.indices.tolist(), strict=True)])
    show_cam(cat_rgb, {f"{m}: {names[int(top.indices[0])]}":
                       cam(vgg, cat_x, "features", m, target=int(top.indices[0]))
                       for m in ("GradCAM", "GradCAMPlusPlus", "EigenCAM")})

# %% [markdown]
# ### Exercise 1: one image, every class
#
# Draw the Grad-CAM map of the crescent sample (`demo.samples[7]`) for each of the eight
# classes. For which classes is the map on the shape, and what part of it?

# %% tags=["solution"]
x7, rgb7 = load_image(demo.samples[7], size=64, mean=demo.mean, std=demo.std)
strength = {name: float(cam(model, x7, "features.12", "GradCAM", target=k,
                            raw=True).max()) for k, name in enumerate(classes)}
print("largest raw value per class:", {k: round(v, 3) for k, v in strength.items()})
show_cam(rgb7, {name: cam(model, x7, "features.12", "GradCAM", target=k)
                for k, name in enumerate(classes)}, ncols=4)
# For crescent, and for the classes that share part of its curved outline, the map
# stays on the shape, on the part that looks like the class. For the other classes it
# wanders off to the background: the network finds little evidence for them anywhere.
# Every map is scaled to [0, 1] before it is drawn, so a weak map looks as bright as a
# strong one; the raw maxima printed above show how different their strengths are.

# %% [markdown]
# ### Exercise 2: methods that ignore the class
#
# Show numerically that EigenCAM gives the same map whatever the target, while Grad-CAM
# does not. Why can a class-agnostic method still score well in the faithfulness table?

# %% tags=["solution"]
for method in ("EigenCAM", "GradCAM"):
    a = cam(model, x, "features.12", method, target=0)
    b = cam(model, x, "features.12", method, target=3)
    print(f"{method:9s} targets 0 and 3 give the same map: {np.array_equal(a, b)}")
# EigenCAM shows the dominant pattern of the layer's activations, which on an image
# with one object is the object. The table explains each image for its true (and
# predicted) class, where "the object" and "the evidence for the class" coincide;
# for another class only class-specific methods can answer.

# %% [markdown]
# ### Exercise 3: Grad-CAM equals CAM for every class
#
# Check for all eight samples and all eight classes that Grad-CAM's raw map at
# `features.12`, times 64, equals the CAM $\mathrm{relu}(\sum_c w_{k,c} A_c)$.

# %% tags=["solution"]
all_acts = feature_maps(model, xs, ["features.12"])["features.12"]      # (8, 128, 8, 8)
worst = 0.0
for k in range(len(classes)):
    by_cam = torch.relu(torch.einsum("c,nchw->nhw", w[k], all_acts)).numpy()
    by_gradcam = 64 * cam(model, xs, "features.12", "GradCAM", target=k, raw=True)
    worst = max(worst, float(np.abs(by_cam - by_gradcam).max() / by_cam.max()))
print(f"largest relative difference: {worst:.1e}")

# %% [markdown]
# ## Your own network
#
# For a ResNet the last block's output is the usual layer (`cam(model, x, "layer4")`);
# with `layer=None`, `cam` picks the last layer whose output is still a spatial grid.
