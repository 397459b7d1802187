"""What every benchmark report records about the machine and the software it ran on."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

import torch
import torchvision


def environment(threads: int, quick: bool, references: tuple[str, ...] = ()) -> dict[str, Any]:
    """Versions of torch, torchvision and the reference packages (``"grad-cam"`` is written as
    ``grad_cam``), the Python version, the machine, its CPU count, torch's threads and whether
    the run was a quick one."""
    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        **{name.replace("-", "_"): metadata.version(name) for name in references},
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "quick": quick,
    }
