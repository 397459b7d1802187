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
# # A quick tour of cnnviz-widgets
#
# This notebook shows every view of the explorer, first on the small network that ships
# with the package, then on a torchvision model. Nothing has to be downloaded: the demo
# network (*ShapesNet*, five 3×3 convolution layers) was trained on generated pictures
# of eight shapes and takes 64 × 64 pixel images, so every cell runs in a second or two
# on a laptop CPU.
#
# The widgets work in JupyterLab, Jupyter Notebook 7, VS Code and Colab.

# %% [markdown]
# ## The explorer in three lines
#
# `LayerExplorer()` without arguments opens the demo model on one of its sample images.

# %%
from cnnviz_widgets import LayerExplorer

explorer = LayerExplorer()
explorer

# %% [markdown]
# The tabs along the top are the views:
#
# | tab | what it shows |
# | --- | --- |
# | **Kernels** | the weights of the chosen convolution layer: the first layer as small RGB filters, deeper layers one filter at a time, each 2-D kernel in blue-white-red with white at zero |
# | **Feature maps** | every channel of the chosen layer's output for the input image; the *Layer* slider walks through the network |
# | **Class activation** | where the network looks for a class: the Grad-CAM family, with a method menu, the top classes as buttons, a *CAM layer* slider and a *Faithfulness* button |
# | **Saliency** | which input pixels the class score is most sensitive to (gradient methods) |
# | **Activation max.** | images optimised so that chosen channels fire strongly |
# | **Draw input** | a drawing pad; *Use as input* makes the drawing the network's input |
#
# Hover any tile to see it enlarged with the value under the cursor and, for feature
# maps, the input region it looks at; click to pin it. Colormap, colour scale (per map,
# per layer, global) and ordering change in the browser without recomputing anything.

# %% [markdown]
# ## Driving it from code
#
# Everything you can click can also be set from Python, which is handy for teaching
# ("set the layer to `features.6` and look at channel 5"). The explorer above changes
# as you run the next cell; its last line shows a second view of the same explorer
# right here.

# %%
print("classes:", explorer.classes)
print("layers: ", [info["name"] for info in explorer.layers])

explorer.layer = "features.6"    # kernels and feature maps of the third conv layer
explorer.method = "GradCAMPlusPlus"   # the CAM method (any case; see notebook 03)
explorer.target = "star"         # explain the class "star" (None: the top prediction)
explorer.tab = "cam"             # open the class-activation tab
print(explorer.layer, explorer.method, explorer.target)
explorer

# %% [markdown]
# The input can be any image: a file path, a PIL image, a NumPy array or a tensor in
# [0, 1]. Here it becomes another sample of the demo set (`demo.samples` holds one
# image per class, in class order).

# %%
from cnnviz_widgets.demo import demo_model

demo = demo_model()
explorer.image = demo.samples[3]    # the star
explorer.target = None              # back to the top prediction
explorer.image.shape, explorer.image.dtype

# %% [markdown]
# ## Each view on its own
#
# Every tab is also a widget by itself, with the same arguments as `LayerExplorer`.
# Here each one opens on the demo model.

# %%
from cnnviz_widgets import (
    ActivationMaxView,
    CamView,
    DrawingPad,
    FeatureMapsView,
    KernelsView,
    SaliencyView,
)

KernelsView()

# %% [markdown]
# `FeatureMapsView`: one tile per channel. Here it starts on the star and the last
# layer, with the most active channels first (`order="mean"`).

# %%
maps_view = FeatureMapsView(image=demo.samples[3])
maps_view.layer = "features.11"
maps_view.order = "mean"
maps_view

# %% [markdown]
# `CamView`: the map over the image and the map alone. The class buttons show the
# model's top five classes with their probabilities; clicking one explains that class.

# %%
CamView(image=demo.samples[2])

# %% [markdown]
# `SaliencyView`: gradient maps of the input, same class buttons.

# %%
SaliencyView(image=demo.samples[2])

# %% [markdown]
# `ActivationMaxView`: choose a layer and channels (for example `0-7`) and press
# *Run*; the images appear one by one as they finish.

# %%
ActivationMaxView()

# %% [markdown]
# `DrawingPad`: draw a shape, press *Use as input*, then look at the other tabs.

# %%
DrawingPad()

# %% [markdown]
# ## Your own model
#
# Any `torch.nn.Module` that takes images works. With a torchvision weights entry the
# explorer uses its preprocessing and class names. On a machine without network the
# download fails; the notebook then says so in one line and uses random weights, which
# show how the views work but not what a trained network has learned.

# %%
import torch
import torchvision

from cnnviz_widgets import load_pretrained
from cnnviz_widgets.demo import sample_photo

weights = torchvision.models.ResNet18_Weights.DEFAULT
resnet = load_pretrained(
    "resnet18", weights,
    "random weights instead, so the pictures show the mechanics, not learned features.")
if resnet is not None:
    mine = LayerExplorer(resnet, sample_photo("chelsea"), weights=weights)
else:
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    mine = LayerExplorer(resnet, sample_photo("chelsea"), size=128)
mine

# %% [markdown]
# ## Still pictures for print
#
# For handouts, slides or a notebook exported without widgets, the same pictures are
# available as matplotlib figures with the same colour conventions: `plot_kernels`,
# `plot_feature_maps` and `show_cam`. They return a `Figure`: Jupyter draws it when it
# is the last value of a cell, and `fig.savefig("k.png")` writes it to a file.

# %%
from cnnviz_widgets import cam, load_image
from cnnviz_widgets.render.plots import plot_feature_maps, plot_kernels, show_cam

x, rgb = load_image(demo.samples[3], size=64, mean=demo.mean, std=demo.std)
plot_kernels(demo.model, "features.0")

# %%
plot_feature_maps(demo.model, x, "features.3", image=rgb)

# %%
show_cam(rgb, {method: cam(demo.model, x, "features.12", method)
               for method in ("GradCAM", "GradCAMPlusPlus", "ScoreCAM", "EigenCAM")})

# %% [markdown]
# ## One offline page
#
# `save_html` writes the explorer, with the data it has computed, into one HTML file
# that opens in any browser without Python or network (the layer slider, hover and
# colormaps keep working).

# %%
page = explorer.save_html("quick_tour_explorer.html")
print(page.name, page.stat().st_size // 1024, "KiB")

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to start from (replace the `None`s with your code), a check
# cell that tests your answer (it only prints a hint while the answer is still `None`),
# and a hidden solution (double-click it to see the code). Where it says *predict
# first*, write your guess down before you run anything: a wrong guess that you notice
# teaches more than a right answer you only read.

# %% [markdown]
# ### Exercise 1: the runner-up class
#
# The first explorer shows the star. Predict first: when the class activation map
# explains the class with the *second* highest probability instead of the top one, will
# it stay on the star, move to a part of it, or spread out? Write it in `my_prediction`.
#
# Then find that runner-up class from code: `demo.model(explorer.input_tensor)` gives
# the class scores of the explorer's input, `.softmax(dim=1)` turns them into
# probabilities, and `demo.classes` names them. Open **Class activation** in the first
# explorer, press the runner-up's button, then the top class's button again, and
# compare with your prediction. What does it tell you about the evidence the network
# uses for each class?

# %% tags=["exercise"]
my_prediction = ""  # does the map stay, move or spread out for the runner-up?
runner_up = None    # your code here: the name of the class with the second highest probability

# %% tags=["check"]
if runner_up is None:
    print("Hint: probabilities.topk(2) gives the two largest probabilities and their "
          "indices; demo.classes[i] is the name of class i.")
else:
    with torch.no_grad():
        probabilities = demo.model(explorer.input_tensor).softmax(dim=1)[0]
    top_two = [demo.classes[i] for i in probabilities.topk(2).indices.tolist()]
    assert runner_up != top_two[0], f"{runner_up!r} is the top class, not the runner-up."
    assert runner_up == top_two[1], (
        f"{runner_up!r} is not the class with the second highest probability.")
    print(f"Correct: {runner_up}. Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
with torch.no_grad():
    probabilities = demo.model(explorer.input_tensor).softmax(dim=1)[0]
runner_up = demo.classes[int(probabilities.topk(2).indices[1])]
explorer.target = runner_up     # the same as pressing its button (the tab is already "cam")
print("runner-up:", runner_up, f"({probabilities.topk(2).values[1]:.2%})")

# %% [markdown]
# <details><summary>Solution</summary>
#
# For the top class the map covers the shape itself. For a runner-up class it usually
# moves to the part of the outline that resembles that class (a corner for *square*, a
# curved edge for *circle* or *crescent*), or it is weak and spread out. Grad-CAM is
# class-specific: it weights the last layer's channels by how much they raise the score
# of the chosen class.
#
# </details>

# %% [markdown]
# ### Exercise 2: drive the explorer from code
#
# From code, make the first explorer show the crescent sample (`demo.samples[7]`), the
# feature maps of the last convolution layer (`features.11`), sorted with the most
# active channels first, on the feature-map tab. The check reads the explorer's
# `image`, `layer`, `order` and `tab` back.

# %% tags=["exercise"]
# Your code here: four assignments, to explorer.image, explorer.layer, explorer.order
# and explorer.tab (the tab names are in explorer.views).

# %% tags=["check"]
_, crescent = load_image(demo.samples[7], size=64, mean=demo.mean, std=demo.std)
answered = {"image": bool((explorer.image == crescent).all()),
            "layer": explorer.layer == "features.11",
            "order": explorer.order == "mean",
            "tab": explorer.tab == "features"}
if not any(answered.values()):
    print("Hint: assign demo.samples[7] to explorer.image, then set explorer.layer, "
          "explorer.order (see the FeatureMapsView cell) and explorer.tab.")
else:
    assert answered["image"], "explorer.image is not the crescent, demo.samples[7]."
    assert answered["layer"], f"explorer.layer is {explorer.layer!r}, not the last conv layer."
    assert answered["order"], (
        f"explorer.order is {explorer.order!r}; the order that puts the most active "
        "channels first is 'mean'.")
    assert answered["tab"], f"explorer.tab is {explorer.tab!r}, not the feature-map tab."
    print("Correct: the first explorer now shows the crescent's features.11, by mean.")

# %% tags=["solution"]
explorer.image = demo.samples[7]
explorer.layer = "features.11"
explorer.order = "mean"
explorer.tab = "features"
print(explorer.layer, explorer.order, explorer.tab)


# %% [markdown]
# ## Where next
#
# * `01_kernels.ipynb`: what convolution kernels are, and how to read them.
# * `02_feature_maps.ipynb`: forward hooks and feature maps.
# * `03_class_activation_maps.ipynb`: CAM, Grad-CAM and twelve variants, compared.
# * `04_saliency_and_activation_maximization.ipynb`: gradients of the input and images
#   optimised to excite a channel.
