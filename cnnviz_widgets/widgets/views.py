"""The explorer's views, each alone: the arguments and Python API of LayerExplorer, one tab."""

from __future__ import annotations

from .explorer import LayerExplorer


class KernelsView(LayerExplorer):
    """A conv layer's kernels with the layer slider: first layer as RGB filters, deeper layers
    filter by filter in a diverging colormap (white = 0). Arguments as :class:`LayerExplorer`.
    """

    only_view = "kernels"


class FeatureMapsView(LayerExplorer):
    """Every channel of a layer's output for one image; hover to enlarge and read the value,
    see the input region it comes from. Arguments as :class:`LayerExplorer`."""

    only_view = "features"


class CamView(LayerExplorer):
    """Where the network looks for a class (13 CAM methods, a layer slider, faithfulness
    figures). Arguments as :class:`LayerExplorer`."""

    only_view = "cam"


class SaliencyView(LayerExplorer):
    """Which input pixels the class score is sensitive to (gradient saliency methods).
    Arguments as :class:`LayerExplorer`."""

    only_view = "saliency"


class ActivationMaxView(LayerExplorer):
    """Images optimised to excite chosen channels of a layer, shown as they finish.
    Arguments as :class:`LayerExplorer`."""

    only_view = "actmax"


class DatasetExamplesView(LayerExplorer):
    """The dataset images that excite each channel most, cropped to the unit's receptive
    field, with the channel's activation over each crop; a layer overview of every channel's
    best example. Pass ``examples=top_examples(model, data)`` (or a saved file); the demo model
    has examples over generated shapes. Arguments as :class:`LayerExplorer`."""

    only_view = "examples"


class TrustView(LayerExplorer):
    """Can the maps be trusted? A sanity check of a CAM or saliency method (its maps as the
    model's layers are randomised, with their similarity to the original map and a verdict),
    and the summary of a dataset evaluation as a sortable table with the images where a method
    does worst (``evaluation=evaluate(model, data, methods, metrics)``). Arguments as
    :class:`LayerExplorer`."""

    only_view = "trust"


class ObjectsView(LayerExplorer):
    """What a detector or segmenter predicts, and where it looks for each prediction. A
    detector's boxes are drawn over the image with their class and score (a slider hides the
    boxes under a score); a click on a box shows its class activation map (pytorch-grad-cam's
    ``FasterRCNNBoxScoreTarget``), optionally normalised inside the box. A segmenter's
    predicted classes are a translucent mask with a legend of their share of the pixels; a
    click on a class or on a region of the image shows the map of that class over its region
    (``SemanticSegmentationTarget``). Method and layer as the CAM view. With no model it opens
    the bundled demo detector (``task="segmentation"``: the demo segmenter). Arguments as
    :class:`LayerExplorer`."""

    only_view = "objects"
    default_task = "detection"


class DrawingPad(LayerExplorer):
    """A drawing pad whose drawing becomes the model's input. Arguments as
    :class:`LayerExplorer`."""

    only_view = "draw"
