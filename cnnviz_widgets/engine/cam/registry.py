"""The CAM methods by name: pytorch-grad-cam's class names, matched case-insensitively."""

from __future__ import annotations

import difflib

from .ablation import AblationCAM
from .base import CamMethod
from .eigen import KPCA_CAM, EigenCAM, EigenGradCAM
from .elementwise import GradCAMElementWise, HiResCAM, LayerCAM
from .errors import CamMethodError
from .fem import FEM
from .fullgrad import FullGrad
from .gradient import GradCAM, GradCAMPlusPlus, XGradCAM
from .score import ScoreCAM

CAM_METHODS: dict[str, type[CamMethod]] = {
    cls.name: cls
    for cls in (
        GradCAM,
        GradCAMPlusPlus,
        XGradCAM,
        HiResCAM,
        LayerCAM,
        GradCAMElementWise,
        EigenCAM,
        EigenGradCAM,
        KPCA_CAM,
        FEM,
        ScoreCAM,
        AblationCAM,
        FullGrad,
    )
}
"""Every method, keyed by its pytorch-grad-cam class name."""

_ALIASES = {"gradcam++": "GradCAMPlusPlus", "gradcampp": "GradCAMPlusPlus"}


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


_BY_KEY = {_key(name): name for name in CAM_METHODS}
_BY_KEY.update({_key(alias): target for alias, target in _ALIASES.items()})


def available_cam_methods() -> list[str]:
    """The method names :func:`~cnnviz_widgets.engine.cam.cam` accepts, in a stable order."""
    return list(CAM_METHODS)


def method_class(name: str | type[CamMethod]) -> type[CamMethod]:
    """The method class for ``name`` (case, ``_`` and ``-`` ignored).

    Raises:
        CamMethodError: an unknown name; the message lists the valid names and the closest ones.
    """
    if isinstance(name, type) and issubclass(name, CamMethod):
        return name
    if not isinstance(name, str):
        raise CamMethodError(
            f"method must be a name such as 'GradCAM'; got {type(name).__name__}. Valid "
            f"names: {', '.join(CAM_METHODS)}."
        )
    found = _BY_KEY.get(_key(name))
    if found is not None:
        return CAM_METHODS[found]
    close = difflib.get_close_matches(_key(name), list(_BY_KEY), n=3, cutoff=0.6)
    suggestions = list(dict.fromkeys(_BY_KEY[c] for c in close))
    hint = f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
    raise CamMethodError(
        f"Unknown CAM method {name!r}.{hint} Valid names (case-insensitive): "
        f"{', '.join(CAM_METHODS)}."
    )
