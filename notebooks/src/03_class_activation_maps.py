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
    # features.19: the ReLU after the last convolution, a 14 x 14 grid (exercise 5)
    show_cam(cat_rgb, {f"{m}: {names[int(top.indices[0])]}":
                       cam(vgg, cat_x, "features.19", m, target=int(top.indices[0]))
                       for m in ("GradCAM", "GradCAMPlusPlus", "EigenCAM")})

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to start from (replace the `None`s with your code), a check
# cell that tests your answer (it only prints a hint while the answer is still `None`),
# and a hidden solution (double-click it to see the code). Where it says *predict
# first*, write your guess down before you run anything.

# %% [markdown]
# ### Exercise 1: one image, every class
#
# Compute the Grad-CAM map of the crescent sample (`demo.samples[7]`, loaded as `x7` in
# the starting cell) at `features.12` for each of the eight classes, and the largest
# value of each *raw* map (`raw=True`: before the scaling to [0, 1]). Then draw the
# eight maps with `show_cam`. For which classes is the map on the shape, and on what
# part of it?
#
# Predict first: which class will have the strongest raw map, and for which classes
# will the map wander off the shape?

# %% tags=["exercise"]
x7, rgb7 = load_image(demo.samples[7], size=64, mean=demo.mean, std=demo.std)
my_prediction = ""
strength = None  # your code here: {class name: largest value of its raw Grad-CAM map}

# %% tags=["check"]
if strength is None:
    print("Hint: cam(model, x7, 'features.12', 'GradCAM', target=k, raw=True) is class k's "
          "raw map; classes[k] is its name.")
else:
    assert list(strength) == list(classes), f"strength's keys are not the classes {classes}."
    for k, name in enumerate(classes):
        raw = cam(model, x7, "features.12", "GradCAM", target=k, raw=True)
        assert abs(strength[name] - float(raw.max())) < 1e-6, (
            f"{name}: {strength[name]} is not the largest value of its raw map "
            f"(raw=True; the scaled map's largest value is always 1).")
    print(f"Correct. Strongest: {max(strength, key=strength.get)}; "
          f"your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
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
# Compute the maps of the star `x` at `features.12` for targets 0 and 3, with EigenCAM
# and with Grad-CAM, and find out for each method whether the two maps are exactly
# equal (`np.array_equal`). Why can a class-agnostic method still score well in the
# faithfulness table?
#
# Predict first: which of the two methods gives the same map for both targets?

# %% tags=["exercise"]
my_prediction = ""
same = None  # your code here: {"EigenCAM": True or False, "GradCAM": True or False}

# %% tags=["check"]
if same is None:
    print("Hint: cam(model, x, 'features.12', method, target=0) and the same with "
          "target=3; np.array_equal(a, b) compares them.")
else:
    assert sorted(same) == ["EigenCAM", "GradCAM"], f"same's keys {sorted(same)}."
    for method, answer in same.items():
        equal = np.array_equal(cam(model, x, "features.12", method, target=0),
                               cam(model, x, "features.12", method, target=3))
        assert answer == equal, (
            f"{method}: the maps for targets 0 and 3 are {'' if equal else 'not '}equal, "
            f"so same[{method!r}] is {equal}.")
    print(f"Correct. Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
same = {}
for method in ("EigenCAM", "GradCAM"):
    a = cam(model, x, "features.12", method, target=0)
    b = cam(model, x, "features.12", method, target=3)
    same[method] = bool(np.array_equal(a, b))
    print(f"{method:9s} targets 0 and 3 give the same map: {same[method]}")
# EigenCAM shows the dominant pattern of the layer's activations, which on an image
# with one object is the object. The table explains each image for its true (and
# predicted) class, where "the object" and "the evidence for the class" coincide;
# for another class only class-specific methods can answer.

# %% [markdown]
# ### Exercise 3: Grad-CAM equals CAM for every class
#
# For all eight samples (`xs`) and all eight classes, compute the CAM
# $\mathrm{relu}(\sum_c w_{k,c} A_c)$ from the activations of `features.12` and the
# classifier's weights `w`, and Grad-CAM's raw map at `features.12` times 64. Both are
# 8 × 8 maps; stack them as `(class, image, 8, 8)` arrays. Are they equal?

# %% tags=["exercise"]
cam_maps = None      # your code here: (8 classes, 8 images, 8, 8), relu(sum_c w[k, c] A_c)
gradcam_maps = None  # your code here: (8 classes, 8 images, 8, 8), 64 x the raw Grad-CAM

# %% tags=["check"]
if cam_maps is None or gradcam_maps is None:
    print("Hint: feature_maps(model, xs, ['features.12']) gives A for all images; "
          "torch.einsum('c,nchw->nhw', w[k], A) sums over the channels.")
else:
    by_cam, by_gradcam = np.asarray(cam_maps), np.asarray(gradcam_maps)
    assert by_cam.shape == by_gradcam.shape == (8, 8, 8, 8), (
        f"shapes {by_cam.shape} and {by_gradcam.shape}, not (8, 8, 8, 8).")
    activations = feature_maps(model, xs, ["features.12"])["features.12"]
    for k in range(len(classes)):
        expected = torch.relu(torch.einsum("c,nchw->nhw", w[k], activations)).numpy()
        assert np.allclose(by_cam[k], expected, atol=1e-5), (
            f"cam_maps[{k}] is not relu(sum over c of w[{k}, c] * A_c) for each image.")
        raw = cam(model, xs, "features.12", "GradCAM", target=k, raw=True)
        assert np.allclose(by_gradcam[k], 64 * raw, atol=1e-5), (
            f"gradcam_maps[{k}] is not 64 times Grad-CAM's raw map (raw=True) for class {k}.")
    worst = np.abs(by_cam - by_gradcam).max() / by_cam.max()
    print(f"Correct. Largest difference, relative to the largest value: {worst:.1e}")

# %% tags=["solution"]
all_acts = feature_maps(model, xs, ["features.12"])["features.12"]      # (8, 128, 8, 8)
cam_maps = np.stack([torch.relu(torch.einsum("c,nchw->nhw", w[k], all_acts)).numpy()
                     for k in range(len(classes))])
gradcam_maps = np.stack([64 * cam(model, xs, "features.12", "GradCAM", target=k, raw=True)
                         for k in range(len(classes))])
worst = float(np.abs(cam_maps - gradcam_maps).max() / cam_maps.max())
print(f"largest relative difference: {worst:.1e}")

# %% [markdown]
# ### Exercise 4: the model-randomisation sanity check
#
# Adebayo et al. (2018, "Sanity checks for saliency maps") asked a simple question: if
# the network's weights are replaced by random ones, does the explanation change? It
# should, since a random network has learned nothing. A map that stays the same shows
# the image, not the model.
#
# Do the test by hand on a copy of the model (`copy.deepcopy(model)`: never randomise
# the model itself), in a *cascade* from the output to the input: re-initialise the
# layers of `layers_from_the_output` one after the other, each with
# `torch.manual_seed(1)` followed by the layer's `reset_parameters()`, and keep the
# layers done before random. After each layer, compute the guided backpropagation map
# (notebook 04; `guided_map` in the starting cell) and the Grad-CAM map at
# `features.12` (`gradcam_map`) of the star on the copy, and their rank correlation
# with the maps of the trained model (`rank_correlation`: Spearman's, of the absolute
# values; 1 means the same order of importance, 0 none).
#
# `sanity_check(model, x, method)` in `cnnviz_widgets` does the same (with the same
# seeds, so the numbers must agree) and also a random-class test; its
# `mean_scores("spearman")` are the correlations per step.
#
# Predict first: which of the two maps will stay closer to the original while the
# weights become random?

# %% tags=["exercise"]
import copy

from cnnviz_widgets import saliency, saliency_map, sanity_check

layers_from_the_output = ["classifier.0", "features.11", "features.9", "features.6",
                          "features.3", "features.0"]
untouched = copy.deepcopy(model.state_dict())  # the check compares the model with it


def guided_map(net):
    return saliency_map(saliency(net, x, target, "guided"))[0]


def gradcam_map(net):
    return cam(net, x, "features.12", "GradCAM", target=target)[0]


def rank_correlation(a, b):
    """Spearman's rank correlation of |a| and |b| (tied values share their mean rank)."""
    def ranks(v):
        v = np.abs(np.asarray(v, np.float64)).ravel()
        r = np.empty(v.size)
        r[v.argsort(kind="stable")] = np.arange(1, v.size + 1)
        _, group, counts = np.unique(v, return_inverse=True, return_counts=True)
        return (np.bincount(group, weights=r) / counts)[group]
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


my_prediction = ""
guided_scores = None   # your code here: one rank correlation per layer, in that order
gradcam_scores = None  # your code here

# %% tags=["check"]
if guided_scores is None or gradcam_scores is None:
    print("Hint: twin = copy.deepcopy(model); modules = dict(twin.named_modules()); then "
          "for each name: torch.manual_seed(1), modules[name].reset_parameters(), compare.")
else:
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in untouched.items()), (
        "the model's weights changed: randomise a copy (copy.deepcopy(model)), never the model.")
    for method, scores in (("guided", guided_scores), ("GradCAM", gradcam_scores)):
        assert len(scores) == len(layers_from_the_output), (
            f"{method}: {len(scores)} scores for {len(layers_from_the_output)} layers.")
        expected = sanity_check(model, x, method, target=target,
                                layer="features.12").mean_scores("spearman")
        for layer, got, want in zip(layers_from_the_output, scores, expected, strict=True):
            assert abs(got - want) < 1e-6, (
                f"{method}, randomised down to {layer}: {got:.3f}, but sanity_check gives "
                f"{want:.3f}. Keep the layers done before random (a cascade), and call "
                "torch.manual_seed(1) right before each reset_parameters().")
    print(f"Correct. Mean correlation: guided {np.mean(guided_scores):.2f}, Grad-CAM "
          f"{np.mean(gradcam_scores):.2f}; your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
twin = copy.deepcopy(model)                 # the model itself is never touched
modules = dict(twin.named_modules())
originals = guided_map(model), gradcam_map(model)
guided_scores, gradcam_scores, pictures = [], [], [originals]
for name in layers_from_the_output:
    torch.manual_seed(1)                    # the seed sanity_check(..., seed=0) uses
    modules[name].reset_parameters()        # the layers done before stay random
    g, c = guided_map(twin), gradcam_map(twin)
    guided_scores.append(rank_correlation(originals[0], g))
    gradcam_scores.append(rank_correlation(originals[1], c))
    pictures.append((g, c))

fig, axes = plt.subplots(2, 7, figsize=(13, 4.2))
for j, (g, c) in enumerate(pictures):
    axes[0, j].imshow(g, cmap="gray")
    axes[1, j].imshow(rgb)
    axes[1, j].imshow(c, cmap="jet", alpha=0.5, vmin=0, vmax=1)
    axes[0, j].set_title("trained" if j == 0 else f"down to {layers_from_the_output[j - 1]}",
                         fontsize=8)
for ax in axes.flat:
    ax.set_axis_off()
plt.show()
print(f"{'randomised down to':20s} {'guided':>7s} {'Grad-CAM':>9s}")
for name, a, b in zip(layers_from_the_output, guided_scores, gradcam_scores, strict=True):
    print(f"{name:20s} {a:7.2f} {b:9.2f}")
for method in ("guided", "GradCAM"):
    result = sanity_check(model, x, method, target=target, layer="features.12")
    print(f"sanity_check {method:8s}", np.round(result.mean_scores("spearman"), 2),
          "fails (mean above 0.5):", result.fails())
# Grad-CAM's map falls apart as soon as the last convolution is random: it weighs the
# channels by the gradient of the class score, which then comes through random weights
# (its correlations after that step jump about by chance). Guided backpropagation keeps
# drawing the star's outline until only the first layer is left trained, and the fully
# random network still gives a star-shaped blob: the map shows mostly what the image's
# edges do to the ReLUs, whatever the network learned. That is the paper's finding, here
# on a network of five layers. (The 0.5 of fails() is a convention, not the paper's:
# the paper reads the curves.)

# %% [markdown]
# ### Exercise 5: the chapter's pytorch-grad-cam recipe
#
# The course chapter explains a photograph with pytorch-grad-cam in a few lines: open a
# PNG, resize it to 224 × 224, divide by 255, turn it into a tensor, take
# `model.features[-1]` of VGG11 as the target layer, and call `GradCAM` with
# `ClassifierOutputTarget(preds)`. The next cell follows those steps on the cat photo
# saved as a PNG with an alpha (transparency) channel, as many PNG files are. VGG11 has
# its ImageNet weights when they could be loaded above, random weights otherwise (the
# maps then mean nothing, but every problem below is the same).

# %%
from PIL import Image

from cnnviz_widgets import IMAGENET_MEAN, IMAGENET_STD

if vgg is not None:
    vgg11_net = vgg
else:
    torch.manual_seed(0)
    vgg11_net = torchvision.models.vgg11(weights=None).eval()
sample_photo("chelsea").convert("RGBA").save("cat.png")     # a PNG with transparency

img = Image.open("cat.png").resize((224, 224))
as_written = np.float32(img) / 255
img_tensor = torch.from_numpy(as_written).permute(2, 0, 1).unsqueeze(0)
print("image mode:", img.mode, " tensor:", tuple(img_tensor.shape))
print("target layer, features[-1]:", vgg11_net.features[-1])
try:
    if pytorch_grad_cam is None:  # not installed: the model alone fails the same way
        vgg11_net(img_tensor)
    else:
        with pytorch_grad_cam.GradCAM(model=vgg11_net,
                                      target_layers=[vgg11_net.features[-1]]) as grad_cam:
            grad_cam(input_tensor=img_tensor, targets=[ClassifierOutputTarget(200)])
except RuntimeError as err:
    print("RuntimeError:", str(err).splitlines()[0])

# %% [markdown]
# Four things are wrong with the recipe (a fifth, `batch_size`, is exercise 6):
#
# 1. **The image has four channels.** `Image.open` keeps a PNG's alpha channel (mode
#    `RGBA`), so the tensor is `(1, 4, 224, 224)`, and VGG's first convolution, made for
#    three channels, refuses it: the error above. `.convert("RGB")` drops the alpha.
# 2. **No normalisation.** torchvision's ImageNet weights expect every colour channel
#    standardised with the ImageNet mean and standard deviation (`IMAGENET_MEAN`,
#    `IMAGENET_STD`). Values in [0, 1] are not what the network was trained on, and
#    nothing warns you: the prediction and the map are simply those of another input.
#    Give the model the normalised tensor; keep the [0, 1] image for drawing.
# 3. **`features[-1]` is not the last convolution.** In VGG11 it is the last
#    `MaxPool2d`. Grad-CAM runs there without complaint, but on a 7 × 7 grid, half the
#    resolution of the last convolution's 14 × 14. Take the ReLU after the last
#    convolution, `features[-2]`, not the convolution `features[-3]` itself: the
#    in-place ReLU overwrites its output (see the pytorch-grad-cam section above).
# 4. **`preds` is never defined.** The class to explain must be chosen; the usual
#    choice is the predicted class, the index of the largest score.
#
# (The chapter's `vgg11(pretrained=True)` is torchvision's old spelling, deprecated
# since version 0.13; `load_pretrained` above passes `weights=` instead.)
#
# Predict first: which of the four raise an error, and which give a wrong map without
# any message?
#
# Fix all four, and compute the Grad-CAM map of the predicted class with
# pytorch-grad-cam. (Without pytorch-grad-cam,
# `cam(vgg11_net, input_tensor, layer, "GradCAM", target=pred)[0]` gives the same map.)

# %% tags=["exercise"]
my_prediction = ""    # which ones raise an error, which fail silently?
rgb_img = None        # your code here: (224, 224, 3) float32 in [0, 1], from cat.png
input_tensor = None   # your code here: (1, 3, 224, 224), normalised for ImageNet
target_layers = None  # your code here: a list with the one layer to explain
pred = None           # your code here: the predicted class (an int)
grayscale_cam = None  # your code here: the Grad-CAM map, (224, 224)

# %% tags=["check"]
if any(v is None for v in (rgb_img, input_tensor, target_layers, pred, grayscale_cam)):
    print("Hint: Image.open('cat.png').convert('RGB'); subtract IMAGENET_MEAN and divide "
          "by IMAGENET_STD per colour; the last ReLU is vgg11_net.features[-2].")
else:
    assert np.shape(rgb_img) == (224, 224, 3), (
        f"rgb_img has shape {np.shape(rgb_img)}: convert the image to RGB (3 channels).")
    assert rgb_img.min() >= 0 and rgb_img.max() <= 1, "rgb_img must lie in [0, 1]."
    assert tuple(input_tensor.shape) == (1, 3, 224, 224), (
        f"input_tensor has shape {tuple(input_tensor.shape)}, not (1, 3, 224, 224).")
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    normalised = (torch.from_numpy(np.float32(rgb_img)).permute(2, 0, 1)[None] - mean) / std
    assert torch.allclose(input_tensor, normalised, atol=1e-5), (
        "input_tensor is not rgb_img normalised: (value - IMAGENET_MEAN) / IMAGENET_STD, "
        "per colour channel.")
    assert len(target_layers) == 1, "one target layer."
    layer = target_layers[0]
    assert not isinstance(layer, torch.nn.MaxPool2d), (
        "that is a max-pool (features[-1]): its grid is 7 x 7. Take the last ReLU.")
    assert layer is not vgg11_net.features[-3], (
        "features[-3] is the last convolution, whose output the in-place ReLU after it "
        "overwrites. Take that ReLU, features[-2].")
    assert layer is vgg11_net.features[-2], "take the ReLU after the last convolution."
    with torch.no_grad():
        predicted = int(vgg11_net(input_tensor).argmax())
    assert pred == predicted, f"pred = {pred}, but the predicted class is {predicted}."
    expected = cam(vgg11_net, input_tensor, layer, "GradCAM", target=pred)[0]
    assert np.shape(grayscale_cam) == (224, 224), (
        f"grayscale_cam has shape {np.shape(grayscale_cam)}, not (224, 224).")
    assert np.abs(grayscale_cam - expected).max() < 1e-4, (
        "grayscale_cam is not the Grad-CAM map of input_tensor at that layer for pred.")
    print(f"Correct: class {pred}. Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
img = Image.open("cat.png").convert("RGB").resize((224, 224))      # 1: three channels
rgb_img = np.float32(img) / 255                                     # for drawing
mean, std = np.float32(IMAGENET_MEAN), np.float32(IMAGENET_STD)
input_tensor = torch.from_numpy((rgb_img - mean) / std).permute(2, 0, 1).unsqueeze(0)  # 2
target_layers = [vgg11_net.features[-2]]                            # 3: the last ReLU
with torch.no_grad():
    pred = int(vgg11_net(input_tensor).argmax())                    # 4: the predicted class
if pytorch_grad_cam is None:  # not installed: the same map from cnnviz_widgets
    grayscale_cam = cam(vgg11_net, input_tensor, target_layers[0], "GradCAM", target=pred)[0]
else:
    with pytorch_grad_cam.GradCAM(model=vgg11_net, target_layers=target_layers) as grad_cam:
        grayscale_cam = grad_cam(input_tensor=input_tensor,
                                 targets=[ClassifierOutputTarget(pred)])[0]
    vgg11_net.zero_grad(set_to_none=True)  # pytorch-grad-cam leaves gradients in .grad
print("predicted class:", pred)
# The chapter's layer beside the fixed one: the max-pool's map has 7 x 7 cells.
show_cam(np.asarray(img), {
    "features[-1], max-pool": cam(vgg11_net, input_tensor, "features.20", "GradCAM",
                                  target=pred),
    "features[-2], last ReLU": grayscale_cam})

# %% [markdown]
# ### Exercise 6: ScoreCAM's `batch_size`
#
# The chapter warns that ScoreCAM and AblationCAM need a `batch_size`. Both run the
# network once more for every channel of the target layer: ScoreCAM scores the input
# masked by each channel's map, AblationCAM the network with each channel switched off.
# pytorch-grad-cam sends these images through the model `batch_size` at a time.
# AblationCAM takes it as an argument
# (`AblationCAM(model, target_layers, batch_size=32)`); ScoreCAM uses the attribute
# `batch_size` if you set one on the object (`score_cam.batch_size = 32`) and 16
# otherwise. A larger batch means fewer, larger forward passes: faster, until memory
# runs out.
#
# Predict first: on the star, at `features.12` (128 channels), with `batch_size = 32`,
# how many times will ScoreCAM call the demo model, and with how many images each time?
#
# Then count: put a forward hook on the model that records `len(inputs[0])` for each
# call, run ScoreCAM (on `twin_for_scorecam`, a copy, since pytorch-grad-cam leaves
# its hooks and gradients behind), and remove the hook. Last, without running it: how
# many calls would ScoreCAM make on VGG11 at `features[-2]` (512 channels) with the
# default batch size?

# %% tags=["exercise"]
twin_for_scorecam = copy.deepcopy(model)
my_prediction = ""  # how many calls, and how many images in each?
batch_sizes = None  # your code here: the number of images of each call, in order
vgg11_calls = None  # your code here: calls on VGG11 at features[-2], default batch size

# %% tags=["check"]
if batch_sizes is None or vgg11_calls is None:
    print("Hint: twin_for_scorecam.register_forward_hook(lambda module, inputs, output: "
          "batch_sizes.append(len(inputs[0]))) with batch_sizes = [] first.")
else:
    assert not twin_for_scorecam._forward_hooks, "the hook is still on: remove it."
    assert len(batch_sizes) > 0, "no call recorded: hook twin_for_scorecam and run ScoreCAM."
    assert batch_sizes[0] == 1, (
        "the first call is the image alone (it records the layer's activations).")
    assert sum(batch_sizes[1:]) == 128, (
        f"{sum(batch_sizes[1:])} masked images after the first call, not one per channel.")
    assert batch_sizes[1:] == [32] * 4, (
        f"{batch_sizes[1:]}: set score_cam.batch_size = 32 before calling it.")
    assert vgg11_calls == 1 + 512 // 16, (
        f"{vgg11_calls} calls: one for the image, then 512 masked images 16 at a time.")
    print(f"Correct. Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
if pytorch_grad_cam is None:
    print("pytorch-grad-cam is not installed (pip install grad-cam).")
else:
    batch_sizes = []
    handle = twin_for_scorecam.register_forward_hook(
        lambda module, inputs, output: batch_sizes.append(len(inputs[0])))
    try:
        with contextlib.redirect_stderr(io.StringIO()), pytorch_grad_cam.ScoreCAM(
                model=twin_for_scorecam,
                target_layers=[twin_for_scorecam.features[-1]]) as score_cam:
            score_cam.batch_size = 32
            score_cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])
    finally:
        handle.remove()
    print("images per call:", batch_sizes)
vgg11_calls = 1 + 512 // 16   # the image, then 512 masked images 16 at a time
print("calls on VGG11 at features[-2]:", vgg11_calls)
# 33 forward passes of 16 images of 224 x 224 through VGG11: about 528 images, which
# on a CPU takes minutes, and 16 at a time needs about 16 times the memory of one.
# (contextlib.redirect_stderr hides pytorch-grad-cam's progress bar.)

# %% [markdown]
# ## Your own network
#
# For a ResNet the last block's output is the usual layer (`cam(model, x, "layer4")`);
# with `layer=None`, `cam` picks the last layer whose output is still a spatial grid.
