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
# # Detection and segmentation: explaining a box and a region
#
# A classifier gives one score per class, and a class activation map explains one of those
# scores. A detector gives a list of boxes, each with a class and a score; a segmentation
# model gives a class for every pixel. To explain them, the map needs one number to start
# from: the score of *this box*, or of *this class over this region*. This notebook shows
# what the two kinds of model return, which number `cnnviz_widgets` explains for each
# (the same as pytorch-grad-cam's `FasterRCNNBoxScoreTarget` and
# `SemanticSegmentationTarget`), and how to explain many boxes for the cost of one forward
# pass.
#
# It runs offline on two bundled models trained on scenes of shapes: a torchvision FCOS
# detector and a torchvision FCN segmenter. Class 0 is the background; the eight shapes are
# classes 1 to 8.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

from cnnviz_widgets import (
    BoxTarget,
    RegionTarget,
    cam,
    cam_per_target,
    default_layer,
    detections,
    segmentation,
)
from cnnviz_widgets.demo import demo_detector, demo_segmenter
from cnnviz_widgets.render.plots import show_cam

detector = demo_detector(allow_untrained=True)
segmenter = demo_segmenter(allow_untrained=True)
classes = detector.classes
print(classes)
print("sample scenes:", tuple(detector.samples.shape), "[0, 1] RGB")


def draw_boxes(ax, boxes, labels, scores=None, color="white", names=classes):
    """Draw ``(K, 4)`` boxes (x1, y1, x2, y2) with their class name (and score) on ``ax``."""
    for i, (box, label) in enumerate(zip(boxes.tolist(), [int(k) for k in labels], strict=True)):
        x1, y1, x2, y2 = box
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=color))
        text = names[label] if scores is None else f"{names[label]} {scores[i]:.2f}"
        ax.text(x1, y1 - 2, text, color=color, fontsize=7)


def as_rgb(image):
    """``(3, H, W)`` [0, 1] tensor -> ``(H, W, 3)`` uint8, for drawing."""
    return (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


# %% [markdown]
# ## What a detector returns
#
# A torchvision detector in eval mode takes a batch of images and returns a list with one
# dict per image: `boxes` `(K, 4)` as `(x1, y1, x2, y2)` in input pixels, `labels` `(K,)`
# and `scores` `(K,)`, best first. `detections(model, x, score_threshold=0.5)` runs it (in
# eval mode, as these models need, and gives the model back as it was) and keeps the boxes
# above the threshold, as tensors ready to become targets:

# %%
x = detector.samples[:1]                     # one scene, (1, 3, 128, 128)
rgb = as_rgb(x[0])
with torch.no_grad():
    outputs = detector.model(x)
print(type(outputs).__name__, "of", len(outputs), "dict:",
      {key: tuple(value.shape) for key, value in outputs[0].items()})

found = detections(detector.model, x, score_threshold=0.5)[0]
for box, label, score in zip(found.boxes, found.labels, found.scores, strict=True):
    print(f"{classes[label]:9s} score {score:.2f}  box", [round(v, 1) for v in box.tolist()])

fig, axes = plt.subplots(1, 2, figsize=(6, 3))
for ax, title in zip(axes, ("true boxes", "detected (score >= 0.5)"), strict=True):
    ax.imshow(rgb)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
draw_boxes(axes[0], detector.sample_boxes[0], detector.sample_labels[0], color="black")
draw_boxes(axes[1], found.boxes, found.labels, found.scores, color="black")
plt.show()

# %% [markdown]
# ## Which number to explain: the score of one box
#
# A CAM needs a scalar to differentiate. The sum of all scores would mix every object in the
# scene, and "the score of output box 0" is not stable: when the input changes, the boxes
# move and their order changes. pytorch-grad-cam's `FasterRCNNBoxScoreTarget` asks instead
# *how well the output still contains this box*. For a box $b$ of class $c$, take the output
# box $\hat b_j$ that overlaps it most, $j = \arg\max_i \mathrm{IoU}(b, \hat b_i)$; then
#
# $$ s(b, c) = \begin{cases} \mathrm{IoU}(b, \hat b_j) + \hat s_j &
#    \text{if } \mathrm{IoU}(b, \hat b_j) > 0.5 \text{ and } \hat c_j = c, \\
#    0 & \text{otherwise,} \end{cases} $$
#
# with $\hat s_j$ that box's score; a target of several boxes adds up their $s$. The
# gradient flows through both terms: through the class score, and through the box's
# coordinates (the IoU). `BoxTarget(label, box)` is this target (`found.target(i)` builds it
# for detection `i`). On the image the box came from, its best match is the box itself,
# with IoU 1:

# %%
target = BoxTarget(int(found.labels[0]), found.boxes[0])    # the same as found.target(0)
print(target)
print(f"score of the target: {float(target(outputs[0])):.4f} = IoU 1 + the box's score "
      f"{float(found.scores[0]):.4f}")

# %% [markdown]
# A box target that matches no output box (none overlaps it by more than 0.5, or the one
# that overlaps most has another class) scores 0, and its map would be empty: pytorch-grad-cam
# returns that empty map without a word (a frequent question in its issues). `cam` checks the
# match first and says what the output has there instead:

# %%
from cnnviz_widgets import TargetError

other = next(c for c in range(1, len(classes)) if c not in found.labels.tolist())
try:
    cam(detector.model, x, None, "GradCAM", target=BoxTarget(other, found.boxes[0]))
except TargetError as err:
    print("TargetError:", err)

# %% [markdown]
# One case catches users of FCOS and RetinaNet: they predict one box per location of their
# feature grid with a score for every class, and their non-maximum suppression removes
# overlapping boxes *of the same class* only. So one box can come out twice, with two
# classes, and the target of the second copy never matches: of two equal boxes, the one that
# "overlaps most" is the first, the better score. Keep the best class of each box before
# making targets, with non-maximum suppression over all classes:
# `keep = torchvision.ops.nms(found.boxes, found.scores, 0.5)`.

# %% [markdown]
# `cam` takes a `BoxTarget` as `target=`, like a class index for a classifier. With
# `layer=None` it picks the last stage of the detector's backbone body,
# `backbone.body.layer3` here (an 8 × 8 grid, stride 16), which feeds the feature pyramid,
# so every box's score depends on it. For torchvision's Faster R-CNN or RetinaNet on a
# ResNet-50 it is `backbone.body.layer4`.
#
# A map is scaled to [0, 1] over the whole image. `normalize_in_boxes=True` rescales it to
# [0, 1] inside the target's boxes instead and sets it to 0 outside (pytorch-grad-cam's
# detection tutorial does this by hand): the map then only says *where in the box* the
# evidence is.

# %%
print("default layer:", default_layer(detector.model, x))
box_map = cam(detector.model, x, None, "GradCAM", target=target)
in_box = cam(detector.model, x, None, "GradCAM", target=target, normalize_in_boxes=True)
row, col = np.unravel_index(box_map[0].argmax(), box_map[0].shape)
x1, y1, x2, y2 = target.boxes[0].tolist()
print("the plain map's maximum is inside the box:",
      x1 <= col + 0.5 <= x2 and y1 <= row + 0.5 <= y2)
fig = show_cam(rgb, {f"GradCAM of the {classes[target.labels[0]]}": box_map,
                     "normalize_in_boxes=True": in_box})
for ax in fig.axes:
    draw_boxes(ax, target.boxes, target.labels)
fig

# %% [markdown]
# Read the plain map first: the line above says whether its maximum is in the box at all.
# Normalised inside the box, a map cannot show that; it only says where, *within* the box,
# it is highest.

# %% [markdown]
# ### Which layer explains a box
#
# Every box's score depends on the default layer, which makes it a safe default for any
# detector; whether its Grad-CAM map is about *this* box is another question. FCOS scores a
# box by its class score times its centre-ness, and the centre-ness, the same for every
# class, reaches the body through the box tower. Grad-CAM averages the gradient over the
# grid into one weight per channel, and channels that respond to any shape then light up the
# other objects as well: on held-out scenes, the maximum of a box's map at
# `backbone.body.layer3` was inside the box for 46% of the boxes. The class tower,
# `head.classification_head.conv` (`DETECTOR_CAM_LAYER`), is reached by the class score
# only, and the class logits read its channels linearly: there, the map of every one of 318
# boxes peaked inside its box. The explorer opens this detector at that layer. The box from
# above at both layers:

# %%
from cnnviz_widgets.demo import DETECTOR_CAM_LAYER

tower = DETECTOR_CAM_LAYER                  # "head.classification_head.conv"
tower_map = cam(detector.model, x, tower, "GradCAM", target=target)
row, col = np.unravel_index(tower_map[0].argmax(), tower_map[0].shape)
print(f"at {tower}: the maximum is inside the box:",
      x1 <= col + 0.5 <= x2 and y1 <= row + 0.5 <= y2)
fig = show_cam(rgb, {"default layer": box_map, tower: tower_map})
for ax in fig.axes:
    draw_boxes(ax, target.boxes, target.labels)
fig

# %% [markdown]
# Exercise 1 asks the plain maps of all the sample boxes at the class tower.

# %% [markdown]
# ## Many boxes: one forward pass
#
# To explain every box of a scene, `cam` can be called once per box; each call runs the
# model forward and backward once. `cam_per_target(model, x, layer, method, targets)` runs
# the model forward once, keeps the graph, and runs one backward pass per target: K maps for
# 1 forward and K backward passes. The maps are the same. A forward hook on the model counts
# its calls:

# %%
layer = "backbone.body.layer3"
targets = found.targets()                  # one BoxTarget per detected box
calls = []
handle = detector.model.register_forward_hook(lambda module, inputs, output: calls.append(1))
try:
    one_by_one = np.concatenate([cam(detector.model, x, layer, "GradCAM", target=t)
                                 for t in targets])
    print(f"cam, once per box: {len(targets)} maps, {len(calls)} forward passes")
    calls.clear()
    per_box = cam_per_target(detector.model, x, layer, "GradCAM", targets)
    print(f"cam_per_target:    {len(per_box)} maps, {len(calls)} forward pass")
finally:
    handle.remove()
print(f"largest difference between the maps: {np.abs(per_box - one_by_one).max():.1e}")

fig = show_cam(rgb, {f"box {i}: {classes[t.labels[0]]}": m
                     for i, (t, m) in enumerate(zip(targets, per_box, strict=True))})
for ax, t in zip(fig.axes, targets, strict=True):
    draw_boxes(ax, t.boxes, t.labels)
fig

# %% [markdown]
# What that saves depends on how a model's time splits between its forward and backward
# passes. On the CPU, for 8 boxes of one image of random-weight torchvision detectors
# (`benchmarks/bench_detection.py`), `cam_per_target` is 2.3 times as fast as 8 `cam` calls
# for RetinaNet with a ResNet-50, and 1.3 times for Faster R-CNN with a MobileNetV3, whose
# backward passes are most of the cost.
#
# ## The same numbers as pytorch-grad-cam
#
# `BoxTarget` follows `FasterRCNNBoxScoreTarget` exactly (same threshold, same sum, the same
# IoU arithmetic as `torchvision.ops.box_iou`). On the six sample scenes, one map per scene
# of all its detected boxes (`Detections.box_target()`, the tutorial's usage), Grad-CAM at
# `backbone.body.layer3`:

# %%
import contextlib
import copy
import io

try:
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
except ImportError:
    pytorch_grad_cam = None
    print("pytorch-grad-cam is not installed (pip install grad-cam): comparison skipped.")

if pytorch_grad_cam is not None:
    scenes = detector.samples
    per_scene = detections(detector.model, scenes, score_threshold=0.5)
    ours = cam(detector.model, scenes, layer, "GradCAM",
               target=[d.box_target() for d in per_scene])
    twin = copy.deepcopy(detector.model)          # the reference leaves hooks and .grad
    with contextlib.redirect_stderr(io.StringIO()), pytorch_grad_cam.GradCAM(
            twin, [twin.backbone.body.layer3]) as grad_cam:
        reference = grad_cam(scenes.clone(), [
            FasterRCNNBoxScoreTarget(d.labels.tolist(), d.boxes) for d in per_scene])
    print(f"{sum(len(d) for d in per_scene)} boxes in {len(scenes)} scenes; "
          f"max |ours - pytorch-grad-cam| = {np.abs(ours - reference).max():.1e}")

# %% [markdown]
# ### Boxes from the same pass as the map
#
# That comparison explains the six scenes as one batch, with the boxes detected in that
# batch. The same scene detected alone gives the same boxes up to the last bits of a float
# (the convolutions add up in another order), and a box target is sensitive to exactly that.
# Each scene's boxes from the batch and from the scene alone, both explained on the scene
# alone:

# %%
print("scene  boxes  moved by (px)  map changed by (max |difference|)")
for i, from_batch in enumerate(detections(detector.model, detector.samples,
                                          score_threshold=0.5)):
    scene = detector.samples[i:i + 1]
    alone = detections(detector.model, scene, score_threshold=0.5)[0]
    moved = float((alone.boxes - from_batch.boxes).abs().max())
    change = np.abs(cam_per_target(detector.model, scene, None, "GradCAM", alone.targets())
                    - cam_per_target(detector.model, scene, None, "GradCAM",
                                     from_batch.targets())).max()
    print(f"{i:5d}  {len(alone):5d}  {moved:13.1e}  {change:.2f}")

# %% [markdown]
# Boxes that moved by a few millionths of a pixel can get a different map, even a completely
# different one. The reason is the IoU term of the score. At exactly the detected box, the
# IoU is at its maximum, 1, and its gradient is 0 (the corners' min and max tie): the map
# explains the class score. A millionth of a pixel away, the IoU's gradient is about
# ±1/width for each side of the box; it flows through the detector's box regression, as
# strongly as the class score's, and the map explains that too. pytorch-grad-cam's target
# behaves the same. So explain boxes with the pass they came from: a batch's boxes on the
# batch (as the comparison above), one image's boxes on that image (as exercise 1 does, and
# the explorer).

# %% [markdown]
# ## Segmentation: a class over a region
#
# A torchvision segmentation model returns a dict whose `"out"` entry holds a score (logit)
# per class and pixel, `(N, classes, H, W)`; the predicted class of a pixel is the largest,
# and `segmentation(model, x)` gives that `(N, H, W)` map. pytorch-grad-cam's
# `SemanticSegmentationTarget` explains class $c$ over a mask $M$ by the sum of the class's
# logits there,
#
# $$ s(c, M) = \sum_{i,j} \mathrm{out}_c[i, j] \, M[i, j], $$
#
# and `RegionTarget(c, mask)` is the same. The usual mask is where the model predicts $c$:
# `RegionTarget(c, pred == c)`.

# %%
xs = segmenter.samples[:1]                  # the same scene
with torch.no_grad():
    logits = segmenter.model(xs)["out"]
pred = segmentation(segmenter.model, xs)[0]                 # (128, 128) class per pixel
print("out:", tuple(logits.shape), " predicted classes:",
      [classes[c] for c in pred.unique().tolist()])

shape = int(pred[pred > 0].unique()[0])     # the first shape class predicted there
region = RegionTarget(shape, pred == shape)
print(region)
region_maps = {f"{name}: {classes[shape]}": cam(segmenter.model, xs, name, "GradCAM",
                                                 target=region)
               for name in (default_layer(segmenter.model, xs), "backbone.body.layer3")}
fig = show_cam(as_rgb(xs[0]), {"predicted classes": np.zeros((128, 128)), **region_maps},
               ncols=3)
fig.axes[0].imshow(pred, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
fig

# %% [markdown]
# The default layer of a segmentation model is the last layer of its backbone, here the
# decoder's `backbone.up0` at half the input's resolution: its map follows the predicted
# region closely. The body's last stage, `backbone.body.layer3`, sees the whole scene at
# 8 × 8: the coarse map shows where the evidence for the class is collected from.
#
# ### A class the model does not predict there
#
# `RegionTarget` takes any class, also one the model predicts nowhere in the mask. The score
# is then a sum of low, here negative, logits, and its map shows what would *raise* that
# class there, the evidence for it. There is less of it: the raw map (`raw=True`, before the
# scaling to [0, 1]) is weaker than the predicted class's. Scaled to [0, 1], it looks just
# as bright; compare the raw maxima before reading a map of a class that is not there:

# %%
absent = next(c for c in range(1, len(classes)) if not bool((pred == c).any()))
layer_seg = default_layer(segmenter.model, xs)
scaled = {}
for c in (shape, absent):
    t = RegionTarget(c, pred == shape)
    raw = cam(segmenter.model, xs, layer_seg, "GradCAM", target=t, raw=True)
    print(f"{classes[c]:9s} over the {classes[shape]}'s region: score {float(t(logits[0])):7.1f}"
          f"   raw map max {raw.max():.3f}")
    scaled[f"{classes[c]}, raw max {raw.max():.2f}"] = cam(segmenter.model, xs, layer_seg,
                                                           "GradCAM", target=t)
show_cam(as_rgb(xs[0]), scaled)

# %% [markdown]
# ## The explorer on a detector and a segmenter
#
# `LayerExplorer(task="detection")` opens the bundled detector on a sample scene. Its
# *Objects* tab draws the boxes over the image with their class and score (the *Score
# threshold* slider hides the boxes under it); a click on a box shows the map of that box's
# `BoxTarget`, with a switch, *Normalise inside the box* (`normalize_in_boxes`); method and
# layer as in the CAM tab. The kernels,
# feature maps and saliency tabs work as for a classifier (saliency explains the box chosen
# in the Objects tab).

# %%
from cnnviz_widgets import LayerExplorer

LayerExplorer(task="detection")

# %% [markdown]
# `LayerExplorer(task="segmentation")` opens the segmenter: the predicted classes are a
# translucent mask with a legend of their share of the pixels; a click on a class in the
# legend, or on a region of the image, shows the map of that class's `RegionTarget` over its
# region. Your own torchvision detector or segmenter is recognised without `task=`:
# `LayerExplorer(model, image)`.

# %%
LayerExplorer(task="segmentation")

# %% [markdown]
# ## With pretrained torchvision models
#
# The same calls work on torchvision's detectors and segmenters (Faster R-CNN, RetinaNet,
# FCOS, SSD, Mask R-CNN; FCN, DeepLabV3, LRASPP). When the COCO weights can be downloaded
# (Colab, for example), the next cell explains the boxes that Faster R-CNN with a
# MobileNetV3 backbone finds in the bundled cat photograph; offline it says so, and the demo
# detector above is the one to study. torchvision's detectors take [0, 1] RGB of any size
# and resize and normalise it inside, so the weights' transforms only convert the image.

# %%
import torchvision
from IPython.display import display

from cnnviz_widgets import load_image, load_pretrained
from cnnviz_widgets.demo import sample_photo

weights = torchvision.models.detection.FasterRCNN_MobileNet_V3_Large_FPN_Weights.DEFAULT
frcnn = load_pretrained("fasterrcnn_mobilenet_v3_large_fpn", weights,
                        "the demo detector above is the one to study.")
if frcnn is not None:
    photo, photo_rgb = load_image(sample_photo("chelsea"), weights=weights)
    coco = weights.meta["categories"]
    photo_found = detections(frcnn, photo, score_threshold=0.5)[0]
    print("default layer:", default_layer(frcnn, photo))
    print("boxes:", [(coco[k], round(p, 2)) for k, p in zip(photo_found.labels.tolist(),
                                                            photo_found.scores.tolist(),
                                                            strict=True)])
    if len(photo_found) > 0:
        photo_targets = photo_found.targets()[:3]
        photo_maps = cam_per_target(frcnn, photo, None, "GradCAM", photo_targets)
        fig = show_cam(photo_rgb, {f"box {i}: {coco[t.labels[0]]}": m for i, (t, m)
                                   in enumerate(zip(photo_targets, photo_maps, strict=True))})
        for ax, t in zip(fig.axes, photo_targets, strict=True):
            draw_boxes(ax, t.boxes, t.labels, names=coco)
        display(fig)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to start from (replace the `None`s with your code), a check
# cell that tests your answer (it only prints a hint while the answer is still `None`),
# and a hidden solution (double-click it to see the code). Where it says *predict
# first*, write your guess down before you run anything.

# %% [markdown]
# ### Exercise 1: does the map of a box point into the box?
#
# For every box the detector finds in the six sample scenes (`scene_detections[i]`, the
# boxes of scene `i`, each scene detected alone), compute its Grad-CAM map at the class
# tower, `tower` (one `cam_per_target` call per scene), the map's largest pixel `(row, col)`
# (`np.unravel_index(m.argmax(), m.shape)`), and whether that pixel's centre
# `(col + 0.5, row + 0.5)` lies inside the box `(x1, y1, x2, y2)`. `peaks` and `hits` are
# lists with one entry per box, scene by scene and, within a scene, in the order of
# `scene_detections[i]`.
#
# Predict first: for what share of the boxes is the maximum inside? And at the default
# layer (`layer=None`)? What would `normalize_in_boxes=True` give, and what would that tell
# you?

# %% tags=["exercise"]
scene_detections = [detections(detector.model, detector.samples[i:i + 1])[0]
                    for i in range(len(detector.samples))]
my_prediction = ""
peaks = None  # your code here: the (row, col) of each box's map maximum
hits = None   # your code here: whether each maximum lies inside its box

# %% tags=["check"]
if peaks is None or hits is None:
    print("Hint: cam_per_target(detector.model, detector.samples[i:i + 1], tower, 'GradCAM', "
          "scene_detections[i].targets()) gives scene i's maps, one per box.")
else:
    _peaks, _hits = [], []
    for _i, _d in enumerate(scene_detections):
        _maps = cam_per_target(detector.model, detector.samples[_i:_i + 1], tower, "GradCAM",
                               _d.targets())
        for _m, (_x1, _y1, _x2, _y2) in zip(_maps, _d.boxes.tolist(), strict=True):
            _row, _col = np.unravel_index(_m.argmax(), _m.shape)
            _peaks.append((int(_row), int(_col)))
            _hits.append(bool(_x1 <= _col + 0.5 <= _x2 and _y1 <= _row + 0.5 <= _y2))
    assert len(peaks) == len(hits) == len(_peaks), (
        f"{len(peaks)} peaks and {len(hits)} hits for {len(_peaks)} detected boxes: one per "
        "box of every scene.")
    _off = [i for i, (p, w) in enumerate(zip(peaks, _peaks, strict=True))
            if tuple(int(v) for v in p) != w]
    assert not _off, (
        f"the peaks of boxes {_off} (counted over the scenes) are not the maxima of their plain "
        f"Grad-CAM maps at {tower}, as (row, col), with the boxes of scene_detections[i] on "
        "scene i.")
    _wrong = [i for i, (h, w) in enumerate(zip(hits, _hits, strict=True)) if bool(h) != w]
    assert not _wrong, (
        f"hits of boxes {_wrong} are wrong: the column is x, the row is y.")
    print(f"Correct: the maximum is inside the box for {sum(_hits)} of {len(_hits)} boxes. "
          f"Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
peaks, hits = [], []
for i, scene_found in enumerate(scene_detections):
    scene_maps = cam_per_target(detector.model, detector.samples[i:i + 1], tower, "GradCAM",
                                scene_found.targets())
    for m, (x1, y1, x2, y2) in zip(scene_maps, scene_found.boxes.tolist(), strict=True):
        row, col = np.unravel_index(m.argmax(), m.shape)
        peaks.append((int(row), int(col)))
        hits.append(bool(x1 <= col + 0.5 <= x2 and y1 <= row + 0.5 <= y2))
print(f"maximum inside its box: {sum(hits)} of {len(hits)} boxes ({np.mean(hits):.0%})")
# At the default layer (None instead of tower) about half of the maxima are inside.
# With normalize_in_boxes=True the map is 0 outside the box, so its maximum is always inside:
# that option shows where the evidence is within the box, it cannot tell whether the
# evidence was in the box at all. Ask that question of the plain map.

# %% [markdown]
# ### Exercise 2: `RegionTarget`'s score by hand
#
# `region` explains class `shape` over the pixels the segmenter assigns to it. Compute its
# score by hand from `logits` (the segmenter's `"out"` for the scene, `(1, 9, 128, 128)`):
# the sum of the class's logits over the mask. Then the same over the same mask for class
# `absent`, which the model predicts nowhere in the scene. Compare both with the targets'
# own values (`region(logits[0])`).
#
# Predict first: what is the sign of the absent class's score?

# %% tags=["exercise"]
my_prediction = ""
by_hand = None         # your code here: the score of RegionTarget(shape, pred == shape)
absent_by_hand = None  # your code here: the score of RegionTarget(absent, pred == shape)

# %% tags=["check"]
if by_hand is None or absent_by_hand is None:
    print("Hint: logits[0, shape] is the class's (128, 128) logits; (pred == shape) is the "
          "mask; multiply and sum.")
else:
    for _c, _answer in ((shape, by_hand), (absent, absent_by_hand)):
        _value = float(RegionTarget(_c, pred == shape)(logits[0]))
        assert abs(float(_answer) - _value) <= 1e-4 * abs(_value), (
            f"{classes[_c]}: {float(_answer):.2f}, but the target's score is {_value:.2f}: the "
            f"sum (not the mean) of the raw logits (not probabilities) of channel {_c} over "
            "the predicted mask.")
    print(f"Correct: {classes[shape]} {float(by_hand):.1f}, {classes[absent]} "
          f"{float(absent_by_hand):.1f}. Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
mask = pred == shape
by_hand = float((logits[0, shape] * mask).sum())
absent_by_hand = float((logits[0, absent] * mask).sum())
print(f"by hand: {by_hand:.2f} and {absent_by_hand:.2f}")
print(f"targets: {float(region(logits[0])):.2f} and "
      f"{float(RegionTarget(absent, mask)(logits[0])):.2f}")
# The absent class's logits are low where the model sees the shape, so its score is
# negative; Grad-CAM differentiates it all the same (exercise: look at its map).

# %% [markdown]
# ### Exercise 3: IoU by hand
#
# `BoxTarget` matches boxes by their intersection over union. Write `iou(a, b)` for two
# boxes `(x1, y1, x2, y2)` (lists of four numbers) in plain Python: the area of the
# intersection over the area of the union. Mind boxes that do not overlap. Then, for each
# true box of the first scene (`detector.sample_boxes[0]`), find the largest IoU with a
# detected box (`found.boxes`): `best_ious`, one number per true box.
#
# Predict first: are they above `BoxTarget`'s threshold of 0.5?

# %% tags=["exercise"]
from cnnviz_widgets.engine.regions import box_iou

my_prediction = ""
iou = None        # your code here: a function iou(a, b) -> float
best_ious = None  # your code here: for each true box of scene 0, its largest IoU

# %% tags=["check"]
if iou is None or best_ious is None:
    print("Hint: the intersection is max(0, min(a[2], b[2]) - max(a[0], b[0])) wide (and the "
          "same in y); the union is area(a) + area(b) - intersection.")
else:
    _pairs = [([0, 0, 10, 10], [0, 0, 10, 10]), ([0, 0, 10, 10], [5, 5, 15, 15]),
              ([0, 0, 10, 10], [2, 2, 4, 4]), ([0, 0, 10, 10], [20, 30, 25, 40]),
              ([0, 0, 10, 10], [10, 0, 20, 10]), ([3, 1, 9, 7], [1, 3, 7, 12])]
    for _a, _b in _pairs:
        _want = float(box_iou(torch.tensor([_a], dtype=torch.float32),
                              torch.tensor([_b], dtype=torch.float32))[0, 0])
        _got = float(iou(_a, _b))
        assert abs(_got - _want) < 1e-6, (
            f"iou({_a}, {_b}) = {_got:.4f}, box_iou gives {_want:.4f}. Boxes that do not "
            "overlap have intersection 0; the union counts the intersection once.")
    _true = detector.sample_boxes[0]
    _best = box_iou(_true, found.boxes).max(dim=1).values
    assert len(best_ious) == len(_true), (
        f"{len(best_ious)} values for {len(_true)} true boxes: one per true box.")
    assert np.allclose(np.asarray(best_ious, dtype=np.float64), _best.numpy(), atol=1e-5), (
        "best_ious is not, for each true box, its largest IoU with a detected box.")
    print(f"Correct: {[round(float(v), 3) for v in best_ious]}. "
          f"Your prediction: {my_prediction or '(none)'}")

# %% tags=["solution"]
def iou(a, b):
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


best_ious = [max(iou(t, d) for d in found.boxes.tolist())
             for t in detector.sample_boxes[0].tolist()]
print("largest IoU of each true box:", [round(v, 3) for v in best_ious])
# All far above 0.5: a BoxTarget made from a true box and its label would match the same
# detection as the one made from the detected box, and give (nearly) the same map.
