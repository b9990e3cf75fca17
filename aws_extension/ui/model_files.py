"""Model files on the WebUI machine, listed per model type for the upload form.

The host says which folders hold each type (`UiContext.model_dirs`: A1111's own folders,
honouring its --ckpt-dir style options, or the standalone app's --models-dir). Files in
sub-folders count, as they do for A1111. The page only ever sends back a label from a list
made here, and an upload resolves its labels by listing again: a page can therefore never
make the WebUI upload a file from outside those folders.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_extension.contract import MODEL_TYPES

#: What A1111 and its extensions load as models (.vae.pt and the like end in one of these).
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
#: Most files listed per type: a folder pointed at the wrong place (a whole disk) must not
#: stall the page.
MAX_FILES = 5000

ModelDirs = Callable[[], Mapping[str, Sequence[Path]]]


def no_model_dirs() -> dict[str, list[Path]]:
    """The host knows no model folders (the standalone app without --models-dir)."""
    return {}


def folder_layout(root: Path) -> dict[str, list[Path]]:
    """A1111's layout under one folder: `<root>/<type>` for every model type."""
    return {model_type: [root / model_type] for model_type in MODEL_TYPES}


@dataclass(frozen=True)
class LocalFiles:
    """The files of one type: `files` maps each label shown to its path, in label order."""

    folders: list[Path]
    files: dict[str, Path]
    truncated: bool


def local_files(model_dirs: ModelDirs, model_type: str) -> LocalFiles:
    """The model files of `model_type`, labelled by their path inside their folder.

    With several folders (A1111 lists LoRAs from Lora and LyCORIS) the label starts with the
    folder's name, so two files of the same name stay apart.
    """
    folders = [Path(folder) for folder in model_dirs().get(model_type, ())]
    several = len(folders) > 1
    found: dict[str, Path] = {}
    truncated = False
    for folder in folders:
        for path in _walk(folder):
            if len(found) >= MAX_FILES:
                truncated = True
                break
            inner = path.relative_to(folder).as_posix()
            found.setdefault(f"{folder.name}/{inner}" if several else inner, path)
    return LocalFiles(folders, dict(sorted(found.items(), key=lambda i: i[0].lower())), truncated)


def _walk(folder: Path) -> Iterator[Path]:
    """Model files under `folder`, following links (A1111 does) but never in a circle.

    Hidden files and folders (a leading dot) are skipped, as A1111 does by default.
    """
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root, name)
            if (
                not name.startswith(".")
                and name.lower().endswith(MODEL_SUFFIXES)
                and path.is_file()
            ):
                yield path
