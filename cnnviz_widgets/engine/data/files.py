"""The image files of a folder as a map-style dataset: one sub-folder per class, or flat."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..inputs import LoadedImage
from .errors import DataError
from .transform import Transform

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


class ImageFiles(Dataset):
    """The image files of a folder: one sub-folder per class (labels in sorted folder order),
    or flat (no labels). Items are ``((C, H, W) float32 model input, label)``; ``label`` is
    ``-1`` in a flat folder. Hidden files and folders (a leading ``.``) are skipped.

    Attributes:
        root: the folder.
        transform: how a file becomes model input.
        files: paths relative to ``root`` (POSIX separators), sorted; item ``i`` is ``files[i]``.
        labels: class index per file, or ``None`` for a flat folder.
        classes: sub-folder names, or ``None``.
    """

    def __init__(self, root: str | os.PathLike, transform: Transform) -> None:
        self.root = Path(root).expanduser().resolve()
        self.transform = transform
        if not self.root.is_dir():
            raise DataError(
                f"{os.fspath(root)!r} is not a folder. Pass a folder of image files (one "
                "sub-folder per class, or flat), a torch Dataset or a DataLoader."
            )
        flat = sorted(p.name for p in self.root.iterdir() if p.is_file() and _is_image_name(p))
        classes: list[str] = []
        files: list[str] = []
        labels: list[int] = []
        for sub in sorted(p for p in self.root.iterdir() if p.is_dir() and not _hidden(p)):
            found = _image_files(sub)
            if found:
                labels.extend([len(classes)] * len(found))
                classes.append(sub.name)
                files.extend(f"{sub.name}/{f}" for f in found)
        if files and flat:
            raise DataError(
                f"{self.root} holds both image files ({flat[0]!r}, ...) and class sub-folders "
                f"({classes[0]!r}, ...). Move the loose files into a sub-folder of their class, "
                "or use a folder of one kind."
            )
        if not files and not flat:
            raise DataError(
                f"No image files in {self.root} (looked for {', '.join(IMAGE_SUFFIXES)}, in the "
                "folder and in its sub-folders). Put images in it, flat or one sub-folder per "
                "class, or pass another folder."
            )
        self.files = files or flat
        self.labels: list[int] | None = labels if files else None
        self.classes: list[str] | None = classes if files else None

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> LoadedImage:
        """The file at ``index`` as model input and display RGB."""
        return self.transform.load(self.root / self.files[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.transform.tensor(self.root / self.files[index])
        return image, -1 if self.labels is None else self.labels[index]


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _is_image_name(path: Path) -> bool:
    return not _hidden(path) and path.suffix.lower() in IMAGE_SUFFIXES


def _image_files(folder: Path) -> list[str]:
    """Image files under ``folder`` (recursively), relative POSIX paths, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = Path(dirpath)
        for name in filenames:
            path = base / name
            if _is_image_name(path):
                found.append(path.relative_to(folder).as_posix())
    return sorted(found)
