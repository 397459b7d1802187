"""The explorer's views (tabs): the one list, and which of them fit a model's task.

The front end's tab registry (``js/src/tabs/registry.ts``) names the same views in the same
order (a test compares them); docs and tests read :data:`VIEWS` and :func:`default_views`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .requests.objects import OBJECT_TASKS

VIEWS = ("kernels", "features", "cam", "objects", "saliency", "actmax", "examples", "trust",
         "draw")
"""The explorer's tabs, in order."""
CLASSIFIER_VIEWS = ("cam", "trust")
"""Views that explain a classifier's classes (a detector or segmenter explains objects in the
"objects" view; its saliency tab explains the object chosen there)."""
OBJECT_VIEWS = ("objects",)
"""Views of a detector's or segmenter's predictions only."""
FIRST_VIEWS = ("objects", "features")
"""The view an explorer opens on: the first of these it shows, else its first view."""


def default_views(task: str, examples: bool = True) -> list[str]:
    """The views an explorer shows by default for a model of ``task``: a classifier's every
    view but the objects view; a detector's or segmenter's every view but those that explain
    classes, and the dataset examples only when ``examples`` were given."""
    if task in OBJECT_TASKS:
        skip = CLASSIFIER_VIEWS + (() if examples else ("examples",))
    else:
        skip = OBJECT_VIEWS
    return [v for v in VIEWS if v not in skip]


def task_views(views: Sequence[str] | None, task: str, examples: bool) -> list[str]:
    """The views to show: ``views`` checked against :data:`VIEWS` and the model's task, or
    :func:`default_views` of the task.

    Raises:
        ValueError: an unknown view, or one that does not fit the task (with the reason and
            the views that do).
    """
    if views is None:
        return default_views(task, examples)
    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise ValueError(f"Unknown view(s) {unknown}; choose from {list(VIEWS)}.")
    objects = task in OBJECT_TASKS
    wrong = [v for v in views if v in (CLASSIFIER_VIEWS if objects else OBJECT_VIEWS)]
    if wrong and objects:
        raise ValueError(
            f"The view(s) {wrong} explain a classifier's classes; a {task} model's maps "
            "are in the 'objects' view (its boxes or predicted classes, a click explains "
            f"one), and its saliency view explains the object chosen there. Views for a "
            f"{task} model: {[v for v in VIEWS if v not in CLASSIFIER_VIEWS]}.")
    if wrong:
        raise ValueError(
            "The 'objects' view shows what a detector or segmenter predicts; this model "
            "is a classifier. Pass a torchvision detector or segmenter (or task="
            "'detection' / 'segmentation' with no model for the bundled demos).")
    return list(views)


def first_view(views: Sequence[str]) -> str:
    """The view an explorer showing ``views`` opens on (see :data:`FIRST_VIEWS`)."""
    return next((v for v in FIRST_VIEWS if v in views), views[0])
