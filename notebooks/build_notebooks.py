"""Write the course notebooks (``notebooks/0*.ipynb``) from the cell texts below.

    python notebooks/build_notebooks.py            # (re)write every notebook
    python notebooks/build_notebooks.py --check    # exit 1 if a notebook differs from this file

The notebooks are written without outputs and with the ``python3`` kernelspec, with fixed cell
ids, so running this twice gives byte-identical files (``tests/test_notebooks.py`` checks that
the committed notebooks are what this script writes). Edit the texts here, not the notebooks.

Conventions: the first cell holds the "Open in Colab" badge, the second installs the package
when it is missing; an exercise is a ``### Exercise`` markdown cell followed by its solution,
either a collapsed ``<details>`` block or a code cell whose source is hidden (JupyterLab:
``jupyter.source_hidden``; Colab: ``cellView: form`` with an ``#@title`` line) and tagged
``solution``.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import nbformat
import tomllib

HERE = Path(__file__).resolve().parent
def _project() -> dict:
    """``[project]`` of pyproject.toml: the one source of the package name and repository."""
    with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


PROJECT = _project()
PACKAGE = PROJECT["name"]
REPOSITORY = PROJECT["urls"]["Repository"]
COLAB = ("https://colab.research.google.com/github/"
         + REPOSITORY.removeprefix("https://github.com/") + "/blob/main/notebooks/")
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}

INSTALL = f"""\
# Installs {PACKAGE} when it is missing (on Colab, for example); does nothing otherwise.
# It keeps the ipywidgets that is installed (Colab's 7.x included). Colab shows third-party
# widgets only with its custom widget manager, which the second part turns on there.
try:
    import cnnviz_widgets
except ImportError:
    %pip install -q {PACKAGE}
    import cnnviz_widgets
try:
    from google.colab import output

    output.enable_custom_widget_manager()
except ImportError:  # not on Colab
    pass
print("{PACKAGE}", cnnviz_widgets.__version__)"""



VIEW_ROWS = [
    ("**Kernels**", "the weights of the chosen convolution layer: the first layer as small RGB "
     "filters, deeper layers one filter at a time, each 2-D kernel in blue-white-red with "
     "white at zero"),
    ("**Feature maps**", "every channel of the chosen layer's output for the input image; the "
     "*Layer* slider walks through the network"),
    ("**Class activation**", "where the network looks for a class: the Grad-CAM family, with a "
     "method menu, the top classes as buttons, a *CAM layer* slider and a *Faithfulness* "
     "button"),
    ("**Saliency**", "which input pixels the class score is most sensitive to (gradient "
     "methods)"),
    ("**Activation max.**", "images optimised so that chosen channels fire strongly"),
    ("**Draw input**", "a drawing pad; *Use as input* makes the drawing the network's input"),
]

CAM_ROWS = [
    ("GradCAM", r"$\sum_c \bar G_c A_c$ with $\bar G_c$ the spatial mean of $G_c$"),
    ("GradCAMPlusPlus", r"$\sum_c w_c A_c$, $w_c = \sum_{ij} \alpha_{c,ij}\,"
     r"\mathrm{relu}(G_{c,ij})$, $\alpha = G^2 / (2G^2 + G^3 \sum_{ij} A_c)$"),
    ("XGradCAM", r"$\sum_c w_c A_c$, $w_c = \sum_{ij} G_{c,ij} A_{c,ij} / \sum_{ij} A_{c,ij}$"),
    ("HiResCAM", r"$\sum_c G_c \odot A_c$ (no averaging of the gradient)"),
    ("LayerCAM", r"$\sum_c \mathrm{relu}(G_c) \odot A_c$"),
    ("GradCAMElementWise", r"$\sum_c \mathrm{relu}(G_c \odot A_c)$"),
    ("EigenCAM", "first principal component of the activations (no class, no gradient)"),
    ("EigenGradCAM", r"first principal component of $G \odot A$"),
    ("KPCA_CAM", "first kernel principal component of the activations (no class)"),
    ("FEM", r"$\sum_c w_c A_c$, $w_c$ = fraction of positions where "
     r"$A_c > \mathrm{mean} + 2\,\mathrm{std}$ (no class)"),
    ("ScoreCAM", r"$\sum_c w_c A_c$, $w_c = \mathrm{softmax}_c$ of the score of the input "
     r"masked by $A_c$ (one forward pass per channel)"),
    ("AblationCAM", r"$\sum_c w_c A_c$, $w_c = (y - y_c)/y$ with $y_c$ the score when channel "
     r"$c$ is set to 0"),
    ("FullGrad", "input gradient × input plus bias gradient × bias of every layer (ignores the "
     "chosen layer)"),
]


def table(head: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    """A Markdown table."""
    lines = [f"| {head[0]} | {head[1]} |", "| --- | --- |"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def _text(src: str) -> str:
    return textwrap.dedent(src).strip("\n")


class Notebook:
    """Cells of one notebook, with ids ``<prefix>-<index>``."""

    def __init__(self, name: str, title: str, intro: str):
        self.name = name
        self.cells: list[nbformat.NotebookNode] = []
        badge = f"[![Open In Colab]({BADGE_IMAGE})]({COLAB}{name}.ipynb)"
        self.md(f"# {title}\n\n{badge}\n\n{_text(intro)}")
        self.code(INSTALL)

    def _add(self, cell: nbformat.NotebookNode) -> None:
        cell["id"] = f"{self.name[:2]}-{len(self.cells):03d}"
        self.cells.append(cell)

    def md(self, src: str) -> None:
        self._add(nbformat.v4.new_markdown_cell(_text(src)))

    def code(self, src: str) -> None:
        self._add(nbformat.v4.new_code_cell(_text(src)))

    def exercise(self, src: str) -> None:
        self.md(src)

    def solution_code(self, src: str) -> None:
        """A solution cell whose code is hidden until opened (JupyterLab and Colab)."""
        cell = nbformat.v4.new_code_cell("#@title Solution (double-click to show the code)\n"
                                         + _text(src))
        cell["metadata"] = {
            "cellView": "form",
            "jupyter": {"source_hidden": True},
            "tags": ["solution"],
        }
        self._add(cell)

    def solution_text(self, src: str) -> None:
        """A solution in prose, collapsed under a "Solution" summary."""
        self.md(f"<details><summary>Solution</summary>\n\n{_text(src)}\n\n</details>")

    def build(self) -> nbformat.NotebookNode:
        nb = nbformat.v4.new_notebook()
        nb["cells"] = self.cells
        nb["metadata"] = {
            "kernelspec": dict(KERNELSPEC),
            "language_info": {"name": "python"},
        }
        nbformat.validate(nb)
        return nb


# ---------------------------------------------------------------------------------------------
# 00 quick tour
# ---------------------------------------------------------------------------------------------


def quick_tour() -> Notebook:
    nb = Notebook(
        "00_quick_tour",
        "A quick tour of cnnviz-widgets",
        """
        This notebook shows every view of the explorer, first on the small network that ships
        with the package, then on a torchvision model. Nothing has to be downloaded: the demo
        network (*ShapesNet*, five 3×3 convolution layers) was trained on generated pictures
        of eight shapes and takes 64 × 64 pixel images, so every cell runs in a second or two
        on a laptop CPU.

        The widgets work in JupyterLab, Jupyter Notebook 7, VS Code and Colab.
        """,
    )
    nb.md("""
        ## The explorer in three lines

        `LayerExplorer()` without arguments opens the demo model on one of its sample images.
        """)
    nb.code("""
        from cnnviz_widgets import LayerExplorer

        explorer = LayerExplorer()
        explorer
        """)
    nb.md(_text("""
        The tabs along the top are the views:

        TABLE

        Hover any tile to see it enlarged with the value under the cursor and, for feature
        maps, the input region it looks at; click to pin it. Colormap, colour scale (per map,
        per layer, global) and ordering change in the browser without recomputing anything.
        """).replace("TABLE", table(("tab", "what it shows"), VIEW_ROWS)))
    nb.md("""
        ## Driving it from code

        Everything you can click can also be set from Python, which is handy for teaching
        ("set the layer to `features.6` and look at channel 5"). The explorer above changes
        as you run the next cell; its last line shows a second view of the same explorer
        right here.
        """)
    nb.code("""
        print("classes:", explorer.classes)
        print("layers: ", [info["name"] for info in explorer.layers])

        explorer.layer = "features.6"    # kernels and feature maps of the third conv layer
        explorer.method = "GradCAMPlusPlus"   # the CAM method (any case; see notebook 03)
        explorer.target = "star"         # explain the class "star" (None: the top prediction)
        explorer.tab = "cam"             # open the class-activation tab
        print(explorer.layer, explorer.method, explorer.target)
        explorer
        """)
    nb.md("""
        The input can be any image: a file path, a PIL image, a NumPy array or a tensor in
        [0, 1]. Here it becomes another sample of the demo set (`demo.samples` holds one
        image per class, in class order).
        """)
    nb.code("""
        from cnnviz_widgets.demo import demo_model

        demo = demo_model()
        explorer.image = demo.samples[3]    # the star
        explorer.target = None              # back to the top prediction
        explorer.image.shape, explorer.image.dtype
        """)
    nb.md("""
        ## Each view on its own

        Every tab is also a widget by itself, with the same arguments as `LayerExplorer`.
        Here each one opens on the demo model.
        """)
    nb.code("""
        from cnnviz_widgets import (
            ActivationMaxView,
            CamView,
            DrawingPad,
            FeatureMapsView,
            KernelsView,
            SaliencyView,
        )

        KernelsView()
        """)
    nb.md("""
        `FeatureMapsView`: one tile per channel. Here it starts on the star and the last
        layer, with the most active channels first (`order="mean"`).
        """)
    nb.code("""
        maps_view = FeatureMapsView(image=demo.samples[3])
        maps_view.layer = "features.11"
        maps_view.order = "mean"
        maps_view
        """)
    nb.md("""
        `CamView`: the map over the image and the map alone. The class buttons show the
        model's top five classes with their probabilities; clicking one explains that class.
        """)
    nb.code("""
        CamView(image=demo.samples[2])
        """)
    nb.md("`SaliencyView`: gradient maps of the input, same class buttons.")
    nb.code("""
        SaliencyView(image=demo.samples[2])
        """)
    nb.md("""
        `ActivationMaxView`: choose a layer and channels (for example `0-7`) and press
        *Run*; the images appear one by one as they finish.
        """)
    nb.code("""
        ActivationMaxView()
        """)
    nb.md("`DrawingPad`: draw a shape, press *Use as input*, then look at the other tabs.")
    nb.code("""
        DrawingPad()
        """)
    nb.md("""
        ## Your own model

        Any `torch.nn.Module` that takes images works. With a torchvision weights entry the
        explorer uses its preprocessing and class names. On a machine without network the
        download fails; the notebook then says so in one line and uses random weights, which
        show how the views work but not what a trained network has learned.
        """)
    nb.code("""
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
        """)
    nb.md("""
        ## Still pictures for print

        For handouts, slides or a notebook exported without widgets, the same pictures are
        available as matplotlib figures with the same colour conventions: `plot_kernels`,
        `plot_feature_maps` and `show_cam`. They return a `Figure`: Jupyter draws it when it
        is the last value of a cell, and `fig.savefig("k.png")` writes it to a file.
        """)
    nb.code("""
        from cnnviz_widgets import cam, load_image
        from cnnviz_widgets.render.plots import plot_feature_maps, plot_kernels, show_cam

        x, rgb = load_image(demo.samples[3], size=64, mean=demo.mean, std=demo.std)
        plot_kernels(demo.model, "features.0")
        """)
    nb.code("""
        plot_feature_maps(demo.model, x, "features.3", image=rgb)
        """)
    nb.code("""
        show_cam(rgb, {method: cam(demo.model, x, "features.12", method)
                       for method in ("GradCAM", "GradCAMPlusPlus", "ScoreCAM", "EigenCAM")})
        """)
    nb.md("""
        ## One offline page

        `save_html` writes the explorer, with the data it has computed, into one HTML file
        that opens in any browser without Python or network (the layer slider, hover and
        colormaps keep working).
        """)
    nb.code("""
        page = explorer.save_html("quick_tour_explorer.html")
        print(page.name, page.stat().st_size // 1024, "KiB")
        """)
    nb.exercise("""
        ### Exercise 1

        In the first explorer, open **Class activation**, press the button of the class with
        the *second* highest probability, then the top one again. Does the map move? What
        does that tell you about the evidence the network uses for each class?
        """)
    nb.solution_text("""
        For the top class the map covers the shape itself. For a runner-up class it usually
        moves to the part of the outline that resembles that class (a corner for *square*, a
        curved edge for *circle* or *crescent*), or it is weak and spread out. Grad-CAM is
        class-specific: it weights the last layer's channels by how much they raise the score
        of the chosen class.
        """)
    nb.exercise("""
        ### Exercise 2

        From code, make the first explorer show the crescent sample (`demo.samples[7]`), the
        feature maps of the last convolution layer (`features.11`), sorted with the most
        active channels first, on the feature-map tab.
        """)
    nb.solution_code("""
        explorer.image = demo.samples[7]
        explorer.layer = "features.11"
        explorer.order = "mean"
        explorer.tab = "features"
        print(explorer.layer, explorer.order, explorer.tab)
        """)
    nb.md("""
        ## Where next

        * `01_kernels.ipynb`: what convolution kernels are, and how to read them.
        * `02_feature_maps.ipynb`: forward hooks and feature maps.
        * `03_class_activation_maps.ipynb`: CAM, Grad-CAM and twelve variants, compared.
        * `04_saliency_and_activation_maximization.ipynb`: gradients of the input and images
          optimised to excite a channel.
        """)
    return nb


# ---------------------------------------------------------------------------------------------
# 01 kernels
# ---------------------------------------------------------------------------------------------


def kernels_notebook() -> Notebook:
    nb = Notebook(
        "01_kernels",
        "Convolution kernels",
        """
        A convolution layer is a set of small learned filters. Looking at them tells you what
        patterns a layer responds to: in the first layer of an ImageNet network, edges at
        different orientations and blobs of colour. This notebook first does it by hand with
        torch and matplotlib, following the course on VGG11, then with the kernels view.
        """,
    )
    nb.md(r"""
        ## What a kernel is

        `nn.Conv2d(C_in, C_out, k)` holds a weight tensor of shape `(C_out, C_in, k, k)` and a
        bias of shape `(C_out,)`. Output channel $o$ is

        $$ y_o = b_o + \sum_{i=1}^{C_\text{in}} W_{o,i} \star x_i , $$

        where $\star$ slides the $k \times k$ **kernel** $W_{o,i}$ over input channel $x_i$
        and takes the dot product at every position (a cross-correlation). The $C_\text{in}$
        kernels of one output channel together are a **filter**. Where the image looks like
        the kernel, the output is large and positive; where it looks like its negative, large
        and negative.

        A hand-made kernel shows this. The Sobel kernel below is negative on the left and
        positive on the right, so it answers to dark-to-bright changes from left to right:
        vertical edges.
        """)
    nb.code("""
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
        """)
    nb.md("""
        The output is red on the square's left edge where the image gets brighter, blue
        where it gets darker, and near zero on flat areas. A trained network learns many such
        kernels by itself.

        ## The course's steps by hand: VGG11

        VGG11's convolutions live in `model.features`, an `nn.Sequential` whose children are
        named `"0"`, `"1"`, .... The ImageNet weights are a 507 MB download; without network
        the notebook uses random weights and says so (the shapes are the same, the pictures
        are then noise).
        """)
    nb.code("""
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
        """)
    nb.md("""
        Layer `"3"` is the second convolution: 64 input channels, 128 output channels, so
        128 filters of 64 kernels each, 8192 kernels of 3 × 3.
        """)
    nb.code("""
        conv = layers["3"]
        weight = conv.weight.detach()
        print(weight.shape)        # (out_channels, in_channels, kh, kw)
        """)
    nb.md("""
        Below are the 64 kernels of filter 0. Two choices make the picture readable:

        * a diverging colormap (`bwr`) with white at zero, so the sign of every weight is
          visible;
        * one colour range for the whole filter (±the largest absolute weight), so colours
          can be compared between kernels. With `imshow`'s default each kernel would be
          stretched to its own range and a tiny kernel would look as strong as a large one.

        Drawing all 128 filters this way would mean 128 figures; the kernels view further
        down pages through them instead.
        """)
    nb.code("""
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
        """)
    nb.md("""
        The first layer is different: its input has three channels, red, green and blue, so
        each of its filters can be drawn as one small colour image. Each filter is stretched
        to [0, 1] on its own, so mid-grey means "no preference".
        """)
    nb.code("""
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
        """)
    nb.md("""
        ## The same with cnnviz-widgets

        `kernels(model, layer)` returns a copy of the weights; layers are named by their
        qualified names (`"features.3"` is `vgg.features[3]`).
        """)
    nb.code("""
        from cnnviz_widgets import conv_layers, kernels

        print(list(conv_layers(vgg)))
        k = kernels(vgg, "features.3")
        print(k.shape, torch.equal(k, weight))
        """)
    nb.md("""
        `plot_kernels` draws the same two pictures as above: the first layer as RGB filters,
        a deeper layer one filter at a time.
        """)
    nb.code("""
        from cnnviz_widgets.render.plots import plot_kernels

        plot_kernels(vgg, "features.0")
        """)
    nb.code("""
        plot_kernels(vgg, "features.3", out_channel=0)
        """)
    nb.md("""
        The kernels view shows every layer: the *Layer* slider picks the layer, the
        *Output filter* box picks the filter, and hovering a kernel enlarges it and shows the
        weight under the cursor.
        """)
    nb.code("""
        from cnnviz_widgets import KernelsView

        KernelsView(vgg, size=128)
        """)
    nb.md("""
        ## A trained network that needs no download

        The demo network was trained on pictures of shapes of random colours on cluttered
        backgrounds, so its first-layer filters are trained too. It has 16 of them.
        """)
    nb.code("""
        plot_kernels(demo.model, "features.0")
        """)
    nb.code("""
        KernelsView()
        """)
    nb.exercise("""
        ### Exercise 1

        How many kernels and how many parameters (weights and biases) does VGG11's
        `features.3` have? Check your answer with `conv.weight.numel()`.
        """)
    nb.solution_code("""
        out_channels, in_channels, kh, kw = conv.weight.shape
        print("kernels:", out_channels * in_channels)                       # 128 * 64 = 8192
        print("weights:", out_channels * in_channels * kh * kw)             # 8192 * 9 = 73728
        print("biases: ", conv.bias.numel())                                # 128
        print("total:  ", sum(p.numel() for p in conv.parameters()))        # 73856
        """)
    nb.exercise("""
        ### Exercise 2: which first-layer filters detect edges?

        An edge detector answers to a *change* in brightness, not to brightness itself, so its
        weights add up to about zero (like the Sobel kernel). For each of the demo model's 16
        first-layer filters, compute
        `abs(sum of weights) / sum of abs(weights)` (0: a pure change detector, 1: an
        averaging blob), and the orientation of the colour-averaged kernel by correlating it
        with `sobel_x` (vertical edges) and its transpose (horizontal edges). Then find those
        filters in the kernels view above.
        """)
    nb.solution_code("""
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
        """)
    nb.exercise("""
        ### Exercise 3: which colours?

        Split each first-layer filter into its grey part (the mean over the three colour
        channels, repeated) and its colour part (the rest). Which filters are mostly colour?
        Do the RGB pictures agree?
        """)
    nb.solution_code("""
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
        """)
    nb.exercise("""
        ### Exercise 4: VGG11

        Repeat exercises 2 and 3 on VGG11's `features.0`. With ImageNet weights (on Colab,
        for example) you find oriented edge detectors, some grey and some colour-opponent, and
        a few colour blobs. What do you find with the random weights?
        """)
    nb.solution_code("""
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
        """)
    return nb


# ---------------------------------------------------------------------------------------------
# 02 feature maps
# ---------------------------------------------------------------------------------------------


def feature_maps_notebook() -> Notebook:
    nb = Notebook(
        "02_feature_maps",
        "Feature maps and forward hooks",
        """
        Kernels show what a layer *looks for*; feature maps show what it *finds* in one
        image. A feature map is one channel of a layer's output: a 2-D map that is large where
        the channel's filter matches the input. To see them we need the output of a layer in
        the middle of the network, and PyTorch gives it to us through *forward hooks*.
        """,
    )
    nb.code("""
        import matplotlib.pyplot as plt
        import torch

        from cnnviz_widgets import load_image
        from cnnviz_widgets.demo import demo_model

        demo = demo_model()
        model = demo.model
        x, rgb = load_image(demo.samples[3], size=64, mean=demo.mean, std=demo.std)  # the star
        print(x.shape, rgb.shape)
        model
        """)
    nb.md("""
        ## Forward hooks

        `module.register_forward_hook(hook)` asks PyTorch to call
        `hook(module, inputs, output)` every time `module` has run its `forward`. `inputs` is
        the tuple of positional arguments the module received, `output` what it returned.
        The call returns a *handle*; `handle.remove()` takes the hook off again.

        A small class that records what it sees:
        """)
    nb.code("""
        class Recorder:
            \"\"\"A forward hook that keeps the modules, inputs and outputs it is called with.\"\"\"

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
        """)
    nb.md("""
        ### Why hooks must be removed

        The hook stays on the module until it is removed. Every later forward pass, also
        ones that have nothing to do with visualisation, calls it again, and the recorder
        keeps every output alive in memory:
        """)
    nb.code("""
        with torch.no_grad():
            model(x)
            model(x)
        print("calls recorded:", len(recorder.outputs))
        print("hooks on the layer:", len(model.features[3]._forward_hooks))

        handle.remove()
        print("after remove():", len(model.features[3]._forward_hooks))
        """)
    nb.md("""
        Registering the same hook twice (for example by running a cell twice) puts two hooks
        on the module. A `try`/`finally` block, here wrapped in a context manager, removes
        the hook even when the forward pass fails:
        """)
    nb.code("""
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
        """)
    nb.md("""
        ### A trap: in-place operations

        The smallest value recorded at the first *convolution* is 0, yet a convolution's
        output has negative values. The hook stored a reference to the output tensor, and the
        next layer, `ReLU(inplace=True)`, then overwrote that same tensor with its positive
        part. Storing a copy (`output.detach().clone()`) inside the hook keeps the true
        output:
        """)
    nb.code("""
        copies = []
        handle = model.features[0].register_forward_hook(
            lambda module, inputs, output: copies.append(output.detach().clone()))
        try:
            with torch.no_grad():
                model(x)
        finally:
            handle.remove()
        print("smallest value of the copy:", copies[0].min().item())
        """)
    nb.md("""
        ## Drawing feature maps by hand

        Each channel of the recorded output is one map. `imshow` stretches each map to its own
        range, so the pictures show *where* a channel is active, not how strongly compared to
        the others.
        """)
    nb.code("""
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
        """)
    nb.md("""
        The course does the same on VGG11 with an ImageNet photograph. Without network the
        weights are random (the notebook says so): the maps then still show edges, because
        even a random 3 × 3 filter responds to changes in the image, but nothing learned.
        """)
    nb.code("""
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
        """)
    nb.md("""
        ## The same with cnnviz-widgets

        `feature_maps(model, x, layers)` records any number of layers in one forward pass,
        removes its hooks whatever happens, and returns copies (so the in-place trap above
        cannot happen):
        """)
    nb.code("""
        from cnnviz_widgets import conv_layers, feature_maps

        names = list(conv_layers(model))
        maps = feature_maps(model, x, names)
        for name, m in maps.items():
            print(f"{name:12s} {tuple(m.shape)}  min {m.min().item():7.2f}")
        print("equal to the hook's copy:", torch.equal(maps["features.0"], copies[0]))
        """)
    nb.md("""
        `plot_feature_maps` draws every channel of a layer beside the input. With
        `order="mean"` the most active channels come first.
        """)
    nb.code("""
        from cnnviz_widgets.render.plots import plot_feature_maps

        plot_feature_maps(model, x, "features.3", image=rgb)
        """)
    nb.code("""
        plot_feature_maps(model, x, "features.11", image=rgb, order="mean", max_maps=32)
        """)
    nb.md("""
        The feature-map view does this for every layer at once: move the *Layer* slider,
        hover a tile to enlarge it (the outline on the input shows the part of the image the
        unit under the cursor can see), switch the colour scale to *per layer* to compare
        channels with each other.
        """)
    nb.code("""
        from cnnviz_widgets import FeatureMapsView

        FeatureMapsView(model, demo.samples[3], size=64, mean=demo.mean, std=demo.std)
        """)
    nb.code("""
        FeatureMapsView(vgg, sample_photo("chelsea"), size=128)
        """)
    nb.exercise("""
        ### Exercise 1: shallow and deep layers

        For each convolution layer of the demo model, print the number of channels, the map
        size, and the fraction of positions that are positive (the fraction that survives the
        following ReLU). How do resolution and number of channels change with depth? Why?
        """)
    nb.solution_code("""
        for name, m in feature_maps(model, x, names).items():
            c, h, w = m.shape[1:]
            print(f"{name:12s} {c:4d} channels of {h:2d} x {w:2d}   "
                  f"positive: {(m > 0).float().mean().item():.0%}")
        # Each 2 x 2 max-pool halves the resolution while the layers get more channels: deep
        # layers trade "where" for "what". A deep unit sees a large part of the input (its
        # receptive field grows with every 3 x 3 conv and every pool), so its map is coarse
        # but it can respond to whole shapes instead of edges. Only a minority of positions
        # is positive in every layer: after the ReLU the maps are sparse.
        """)
    nb.exercise("""
        ### Exercise 2: which channels know the star?

        Find the three channels of `features.11` with the highest mean activation for the
        star, and the three for the circle (`demo.samples[0]`). Are they the same? Look them
        up in the feature-map view above (order by mean, or hover).
        """)
    nb.solution_code("""
        def top_channels(image, k=3):
            xi, _ = load_image(image, size=64, mean=demo.mean, std=demo.std)
            m = feature_maps(model, xi, ["features.11"])["features.11"][0]
            return m.mean(dim=(1, 2)).topk(k).indices.tolist()


        print("star:  ", top_channels(demo.samples[3]))
        print("circle:", top_channels(demo.samples[0]))
        # Deep channels are shape-selective, so the strongest channels differ between the two
        # images; early channels (try "features.0") respond to colours and edges that every
        # image has.
        """)
    nb.exercise("""
        ### Exercise 3: every ReLU at once

        With one `Recorder` per ReLU, record the output of every `nn.ReLU` of the demo model
        in one forward pass, print their shapes, and make sure no hook is left afterwards.
        """)
    nb.solution_code("""
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
        """)
    return nb


# ---------------------------------------------------------------------------------------------
# 03 class activation maps
# ---------------------------------------------------------------------------------------------



def cam_notebook() -> Notebook:
    nb = Notebook(
        "03_class_activation_maps",
        "Class activation maps: CAM, Grad-CAM and its variants",
        """
        A class activation map answers "which part of the image made the network say
        *star*?". It is computed from a convolution layer: its channels are maps of where
        their features were found, and a method decides how much each channel counts for the
        class. This notebook builds CAM and Grad-CAM by hand, then compares thirteen methods,
        walks through the layers, measures how faithful the maps are, and checks that
        `cnnviz_widgets.cam` gives the same numbers as pytorch-grad-cam.

        Everything runs on the bundled demo network, which is trained, so the maps mean
        something without a download.
        """,
    )
    nb.code("""
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
        """)
    nb.md(r"""
        ## CAM (Zhou et al., 2016)

        The demo network ends like the networks CAM was invented for: the last convolution
        block gives 128 maps $A_c$ of 8 × 8, global average pooling turns each map into one
        number, and a linear layer gives the class scores:

        $$ y_k = b_k + \sum_c w_{k,c} \, \frac{1}{64} \sum_{i,j} A_c[i,j]
              = b_k + \frac{1}{64} \sum_{i,j} \Big( \sum_c w_{k,c} A_c[i,j] \Big). $$

        The term in brackets is the **class activation map** $M_k = \sum_c w_{k,c} A_c$: the
        score of class $k$ is the average of $M_k$ over the positions, so $M_k$ shows where
        the score comes from. The activations are the output of `features.12`, the last ReLU.
        """)
    nb.code("""
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
        """)
    nb.md(r"""
        ## Grad-CAM (Selvaraju et al., 2017)

        CAM needs the pooling-then-linear ending. Grad-CAM works for any layer of any network:
        it takes the gradient $G_c = \partial y_k / \partial A_c$ of the class score, averages
        it over the positions to get a weight per channel, and keeps the positive part:

        $$ \alpha_c = \frac{1}{hw} \sum_{i,j} G_c[i,j], \qquad
           M = \mathrm{ReLU}\Big(\sum_c \alpha_c A_c\Big). $$

        By hand, a forward hook keeps the activations and `torch.autograd.grad` gives their
        gradient:
        """)
    nb.code("""
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
        """)
    nb.md(r"""
        On this network Grad-CAM *is* CAM: the gradient of $y_k$ with respect to $A_c[i,j]$
        is $w_{k,c}/64$ at every position, so $\alpha_c = w_{k,c}/64$, and the two maps differ
        only by the factor 64 (and the ReLU).

        `cam(model, x, layer, method, target)` returns the finished map, as pytorch-grad-cam
        does: ReLU, scaled to [0, 1], resized to the input (bilinear), `(N, H, W)`.
        """)
    nb.code("""
        gradcam = cam(model, x, "features.12", "GradCAM", target=target)
        print(gradcam.shape, gradcam.dtype, float(gradcam.min()), float(gradcam.max()))
        show_cam(rgb, {"GradCAM": gradcam})
        """)
    nb.md(_text("""
        ## The variants

        All methods share the same pipeline (capture the layer, maybe backpropagate, combine,
        ReLU, normalise, resize); they differ in how they combine the channels. Per image,
        with $y$ the class score, $A_c$ the layer's channels and $G_c$ their gradients:

        TABLE

        `docs/methods.md` in the repository gives each formula in full with its reference and
        caveats. Side by side on the star:
        """).replace("TABLE", table(
        ("method", "raw map before the ReLU"), CAM_ROWS)))
    nb.code("""
        from cnnviz_widgets import available_cam_methods

        methods = available_cam_methods()
        all_maps = {m: cam(model, x, "features.12", m, target=target) for m in methods}
        show_cam(rgb, all_maps, ncols=5)
        """)
    nb.md("""
        At the last layer of this network the maps nearly coincide: its channels already
        stand for whole shapes, and on a CAM network like this one Grad-CAM and HiResCAM
        reduce to CAM exactly, the other gradient methods nearly. EigenCAM, KPCA_CAM and FEM
        do not even use the class (they
        show what the layer's activations single out, whatever class you ask for; on an
        image with one object that is the object). FullGrad is the odd one out: it ignores
        the chosen layer and adds up gradient-times-bias terms of *every* layer and the input
        gradient, and on this network much of that lands on the background.

        At a middle layer the methods part ways. `features.7` is the ReLU after the third
        convolution, a 16 × 16 grid whose channels detect parts of shapes (corners, edges,
        points), and each method weighs those parts differently:
        """)
    nb.code("""
        show_cam(rgb, {m: cam(model, x, "features.7", m, target=target) for m in methods},
                 ncols=5)
        """)
    nb.md("""
        Looking cannot tell which of these maps is right; the faithfulness figures further
        down measure it.

        ## Through the depth of the network

        `cam_per_layer` gives one map per layer from one forward and one backward pass. Early
        layers have a fine grid but know little about the class; the last layers know the
        class but have a coarse 8 × 8 grid.
        """)
    nb.code("""
        from cnnviz_widgets import cam_per_layer

        per_layer = cam_per_layer(model, x, method="GradCAM", target=target)
        show_cam(rgb, per_layer, ncols=5)
        """)
    nb.md("""
        The CAM view has the same walk as a slider (*CAM layer*), a method menu, the top
        classes as buttons, and a *Faithfulness* button that computes the deletion, insertion
        and average-drop figures of the next section for the map on screen.
        """)
    nb.code("""
        from cnnviz_widgets import CamView

        CamView(model, demo.samples[3], size=64, mean=demo.mean, std=demo.std,
                classes=classes)
        """)
    nb.md("""
        ## Is the map faithful to the model?

        A map can look plausible and still not be what the model uses. Three standard checks,
        each computed with the model itself, on the eight samples (one per class, each
        explained for its true class):

        * **deletion AUC** (lower is better): delete pixels, most important first, and
          follow the class probability; a faithful map makes it fall fast.
        * **insertion AUC** (higher is better): start from a blurred image and put the most
          important pixels back first; the probability should rise fast.
        * **average drop** (lower is better): the drop in probability, in %, when the model
          sees only the image multiplied by the map.
        * **pointing game**: is the map's maximum inside the object's box? (hits out of 8)

        A random map is the baseline every method must beat. 32 deletion steps keep this
        cell quick; the figures move a little with the step count.
        """)
    nb.code("""
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
        """)
    nb.md("""
        Every method beats the random map on all four figures, but the figures do not crown
        one method: they measure different things. Deletion rewards finding *some* decisive
        pixels; average drop rewards keeping *all* of them, so a broad map scores well:
        FullGrad's map covers much of the image, has the lowest average drop, and points at
        the object in only half of the images. Between the Grad-CAM variants the differences
        on eight images are small.

        ## The same numbers as pytorch-grad-cam

        The methods follow pytorch-grad-cam 1.5 (the library the course uses) exactly: same
        formulas, same epsilons, same normalisation and resizing. The cell below runs both on
        the eight samples and prints the largest difference per method (maps in [0, 1]).
        pytorch-grad-cam gets its own copy of the model, because it leaves hooks and
        gradients on the model it is given.

        Two details: the target layer is `features.12` (the last ReLU, the course's
        `model.features[-1]`), because on the CPU pytorch-grad-cam keeps the output tensor of
        a layer followed by an in-place ReLU, which that ReLU then overwrites; and the sign of
        a principal component is arbitrary, so EigenCAM and EigenGradCAM are compared with
        the reference's projection or its negative, whichever the reference took.
        """)
    nb.code("""
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
            \"\"\"features.12's output and the gradient of each image's target score.\"\"\"
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
                with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter), \\
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
        """)
    nb.md("""
        The differences are float32 rounding (about 1e-7 to 1e-6 on maps in [0, 1]). Where
        the reference's signs above are not all `1`, its EigenCAM picture of that image is
        the *other* side of the component; `cnnviz-widgets` orients the component so that it
        agrees with the summed activations (see `docs/methods.md`), so its picture is stable.

        ## With ImageNet weights

        The course explains a photograph with VGG11. When the weights can be downloaded
        (Colab, for example), the next cell does that for the bundled cat photograph;
        offline it says so and the maps above, on the demo network, are the ones to study.
        """)
    nb.code("""
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
        """)
    nb.exercise("""
        ### Exercise 1: one image, every class

        Draw the Grad-CAM map of the crescent sample (`demo.samples[7]`) for each of the eight
        classes. For which classes is the map on the shape, and what part of it?
        """)
    nb.solution_code("""
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
        """)
    nb.exercise("""
        ### Exercise 2: methods that ignore the class

        Show numerically that EigenCAM gives the same map whatever the target, while Grad-CAM
        does not. Why can a class-agnostic method still score well in the faithfulness table?
        """)
    nb.solution_code("""
        for method in ("EigenCAM", "GradCAM"):
            a = cam(model, x, "features.12", method, target=0)
            b = cam(model, x, "features.12", method, target=3)
            print(f"{method:9s} targets 0 and 3 give the same map: {np.array_equal(a, b)}")
        # EigenCAM shows the dominant pattern of the layer's activations, which on an image
        # with one object is the object. The table explains each image for its true (and
        # predicted) class, where "the object" and "the evidence for the class" coincide;
        # for another class only class-specific methods can answer.
        """)
    nb.exercise("""
        ### Exercise 3: Grad-CAM equals CAM for every class

        Check for all eight samples and all eight classes that Grad-CAM's raw map at
        `features.12`, times 64, equals the CAM $\\mathrm{relu}(\\sum_c w_{k,c} A_c)$.
        """)
    nb.solution_code("""
        all_acts = feature_maps(model, xs, ["features.12"])["features.12"]      # (8, 128, 8, 8)
        worst = 0.0
        for k in range(len(classes)):
            by_cam = torch.relu(torch.einsum("c,nchw->nhw", w[k], all_acts)).numpy()
            by_gradcam = 64 * cam(model, xs, "features.12", "GradCAM", target=k, raw=True)
            worst = max(worst, float(np.abs(by_cam - by_gradcam).max() / by_cam.max()))
        print(f"largest relative difference: {worst:.1e}")
        """)
    nb.md("""
        ## Your own network

        For a ResNet the last block's output is the usual layer (`cam(model, x, "layer4")`);
        with `layer=None`, `cam` picks the last layer whose output is still a spatial grid.
        """)
    return nb



# ---------------------------------------------------------------------------------------------
# 04 saliency and activation maximization
# ---------------------------------------------------------------------------------------------


def saliency_notebook() -> Notebook:
    nb = Notebook(
        "04_saliency_and_activation_maximization",
        "Saliency maps and activation maximization",
        """
        Two more ways to look inside a network, both built on the gradient with respect to
        the *input image*:

        * a **saliency map** asks which pixels the score of a class is most sensitive to
          (vanilla gradient, guided backpropagation, SmoothGrad, integrated gradients);
        * **activation maximization** runs the gradient the other way: it changes the image,
          step by step, until a chosen channel fires as strongly as possible, and shows what
          that channel "wants to see".

        The course does both with FlashTorch; here they are done by hand first, then with
        `cnnviz_widgets`, on the bundled demo network.
        """,
    )
    nb.code("""
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
        """)
    nb.md(r"""
        ## Vanilla gradient (Simonyan et al., 2014)

        The score $y_k$ of class $k$ is a function of the input pixels. Its gradient
        $\partial y_k / \partial x$ has one value per pixel and colour channel: how much the
        score changes when that value changes a little. The saliency map is the largest
        magnitude over the three colour channels, $\max_c |\partial y_k / \partial x_c|$.
        By hand:
        """)
    nb.code("""
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
        """)
    nb.md(r"""
        ## Guided backpropagation (Springenberg et al., 2015)

        Backpropagation through a ReLU passes the gradient where the ReLU's input was
        positive. Guided backpropagation also drops the *negative* gradients there, so only
        paths that increase the score survive:

        $$ g_\text{in} = \mathrm{relu}(g_\text{out}) \cdot [\,\text{ReLU input} > 0\,]. $$

        The result is sharper than the vanilla gradient. `cnnviz_widgets` applies the rule at
        every `nn.ReLU` module with hooks that are removed afterwards; its numbers equal
        captum's `GuidedBackprop` (checked below when captum is installed). FlashTorch's
        version multiplies by the ReLU's *output* instead of masking by its input, and leaves
        its hooks on the model; those flaws are not copied.
        """)
    nb.code("""
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
        """)
    nb.md(r"""
        ## SmoothGrad (Smilkov et al., 2017)

        Gradients of a ReLU network are noisy: they change sharply from one pixel to the
        next. SmoothGrad averages the
        gradient over noisy copies of the image,
        $\frac{1}{n}\sum_{s=1}^{n} \partial y_k / \partial x \,\big|_{x + \varepsilon_s}$ with
        $\varepsilon_s \sim \mathcal N(0, \sigma^2)$ and $\sigma$ = 15 % of the image's value
        range. 25 samples keep it quick here (the default is 50).
        """)
    nb.code("""
        smooth = saliency_map(saliency(model, x, target, "smoothgrad", n_samples=25, seed=0))
        """)
    nb.md(r"""
        ## Integrated gradients (Sundararajan et al., 2017)

        Integrated gradients adds up the gradient along the straight path from a baseline
        $x'$ to the image. Here the baseline is the all-zero model input, which after the
        demo model's normalisation is a uniform mid-grey picture:

        $$ \mathrm{IG}(x) = (x - x') \odot \int_0^1
           \frac{\partial y_k}{\partial x}\Big|_{x' + \alpha (x - x')} \, d\alpha . $$

        Its attributions add up to the change in score, $\sum \mathrm{IG} \approx
        y_k(x) - y_k(x')$ ("completeness"); the integral is approximated with 50 points, as in
        captum.
        """)
    nb.code("""
        ig = saliency(model, x, target, "integrated_gradients")
        with torch.no_grad():
            change = (model(x)[0, target] - model(torch.zeros_like(x))[0, target]).item()
        print(f"sum of attributions {ig.sum():.4f}   score change {change:.4f}")
        integrated = saliency_map(ig)
        """)
    nb.md("""
        Two more are in the menu: **gradient × input** (the gradient times the input, a
        one-point integrated gradients) and **guided Grad-CAM** (guided backpropagation times
        the Grad-CAM map, so the sharp detail is kept only where the class evidence is).
        Side by side, each map scaled to its own maximum:
        """)
    nb.code("""
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
        """)
    nb.md("""
        The saliency view shows the same maps for any class: click a class button to
        explain it, pick the method from the menu.
        """)
    nb.code("""
        from cnnviz_widgets import SaliencyView

        SaliencyView(model, demo.samples[2], size=64, mean=demo.mean, std=demo.std,
                     classes=classes)
        """)
    nb.md(r"""
        ## Activation maximization

        Instead of explaining one image, activation maximization *makes* an image: start from
        noise and follow the gradient of a channel's mean activation with respect to the
        pixels, uphill, for a number of steps.

        **As FlashTorch does it** (`regularize=False`): the pixels themselves are optimised,
        each step $x \leftarrow x + \eta\, g / \mathrm{rms}(g)$. Nothing stops the image from
        filling with high-frequency patterns that excite the channel but that no photograph
        contains: the result works for the network and is hard for a person to read.

        **Regularised** (`regularize=True`, in the manner of Lucid): the image is described by
        its Fourier coefficients, scaled so that low frequencies come first, with decorrelated
        colours; every step shows the network a randomly shifted, scaled and rotated copy,
        so a pattern only pays off if it works wherever it lands, and it is optimised with
        Adam. The images are smoother and their patterns repeat, like textures of the
        feature.

        Eight channels of `features.9` (the fourth convolution), both ways, at 64 pixels:
        """)
    nb.code("""
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
        """)
    nb.md("""
        Two numbers make "more readable" concrete: how strongly the images excite their
        channel, and how much they change from one pixel to the next (the mean absolute
        difference of neighbouring pixels, a measure of high-frequency content). The sample
        images of the data set are the yardstick.
        """)
    nb.code("""
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
        """)
    nb.md("""
        Both kinds of images excite their channels far more than any real sample does, so
        both "work"; the regularised ones get there with much less pixel-to-pixel noise,
        which is why a person can read shapes and textures in them. The activation maximization
        view runs the regularised version for any layer and channels (*Run*):
        """)
    nb.code("""
        from cnnviz_widgets import ActivationMaxView

        ActivationMaxView(model, demo.samples[2], size=64, mean=demo.mean, std=demo.std)
        """)
    nb.md("""
        ## With ImageNet weights

        When the VGG11 weights can be downloaded (on Colab, for example), the next cell makes
        the course's pictures on the cat photograph: saliency for the top class, and
        regularised images for four channels of a deep layer. Offline it says so in one line.
        """)
    nb.code("""
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
        """)
    nb.exercise("""
        ### Exercise 1: how many steps does integrated gradients need?

        Compute integrated gradients with `n_steps` = 2, 5, 20 and 100 and compare the sum of
        the attributions with the change in score. How fast does the gap close?
        """)
    nb.solution_code("""
        for steps in (2, 5, 20, 100):
            total = saliency(model, x, target, "integrated_gradients", n_steps=steps).sum()
            print(f"n_steps {steps:3d}: sum {total:8.4f}   gap {abs(total - change):.4f}")
        # The gap does not shrink steadily with more steps: along the path the gradient jumps
        # wherever a ReLU switches on or off, and quadrature rules assume a smooth integrand.
        # Completeness is a cheap check: if the gap is large compared with the score change,
        # use more steps.
        """)
    nb.exercise("""
        ### Exercise 2: is guided backpropagation about the class?

        Compute vanilla, guided and integrated-gradient maps of the triangle for the class
        *triangle* and for the class *ring*, and the correlation between the two maps of each
        method. Which method barely changes with the class?
        """)
    nb.solution_code("""
        other = classes.index("ring")
        for method in ("vanilla", "guided", "integrated_gradients"):
            a = saliency_map(saliency(model, x, target, method)).ravel()
            b = saliency_map(saliency(model, x, other, method)).ravel()
            print(f"{method:22s} correlation {np.corrcoef(a, b)[0, 1]:.2f}")
        # Guided backpropagation gives almost the same map for both classes: dropping every
        # negative gradient keeps mostly the image's edges, whatever the class (Adebayo et al.,
        # 2018, "Sanity checks for saliency maps", found the same). Guided Grad-CAM puts the
        # class back by multiplying with the Grad-CAM map.
        """)
    nb.exercise("""
        ### Exercise 3: what does a class look like?

        Activation maximization works for any layer whose output has channels, the class
        scores included: the layer `"classifier.0"` with channel `k` maximises the score of
        class `k`. Make regularised images (128 steps) for *circle*, *square*, *triangle* and
        *ring*.
        """)
    nb.solution_code("""
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
        """)
    return nb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a notebook on disk differs")
    args = parser.parse_args()
    stale = []
    for nb in all_notebooks():
        path = HERE / f"{nb.name}.ipynb"
        text = render(nb)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print("wrote", path.relative_to(HERE.parent))
    if stale:
        print("out of date (run python notebooks/build_notebooks.py):", ", ".join(stale))
        return 1
    return 0


def render(nb: Notebook) -> str:
    """The notebook's file contents (nbformat's JSON layout, newline at the end)."""
    return nbformat.writes(nb.build()) + "\n"


def all_notebooks() -> list[Notebook]:
    return [
        quick_tour(),
        kernels_notebook(),
        feature_maps_notebook(),
        cam_notebook(),
        saliency_notebook(),
    ]


if __name__ == "__main__":
    sys.exit(main())
