"""Listing the WebUI's model files per type: sub-folders, several folders, what is no model."""

from __future__ import annotations

import os
from pathlib import Path

from aws_extension.ui import model_files
from aws_extension.ui.model_files import folder_layout, local_files, no_model_dirs


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_model_files_in_sub_folders_are_listed_by_their_inner_path(tmp_path):
    root = tmp_path / "models"
    for name in ("b.safetensors", "A.CKPT", "sub/c.pt", "sub/x/d.pth", "e.bin", "f.vae.pt"):
        _touch(root / "VAE" / name)
    for name in ("notes.txt", "preview.png", ".hidden.safetensors", ".git/g.safetensors"):
        _touch(root / "VAE" / name)

    listing = local_files(lambda: folder_layout(root), "VAE")

    assert listing.folders == [root / "VAE"]
    assert list(listing.files) == [
        "A.CKPT",
        "b.safetensors",
        "e.bin",
        "f.vae.pt",
        "sub/c.pt",
        "sub/x/d.pth",
    ]
    assert listing.files["sub/x/d.pth"] == root / "VAE" / "sub" / "x" / "d.pth"
    assert not listing.truncated


def test_with_several_folders_labels_start_with_the_folder_name(tmp_path):
    _touch(tmp_path / "Lora" / "a.safetensors")
    _touch(tmp_path / "LyCORIS" / "a.safetensors")
    folders = {"Lora": [tmp_path / "Lora", tmp_path / "LyCORIS", tmp_path / "missing"]}

    listing = local_files(lambda: folders, "Lora")

    assert list(listing.files) == ["Lora/a.safetensors", "LyCORIS/a.safetensors"]


def test_a_folder_linking_to_itself_is_listed_once(tmp_path):
    folder = tmp_path / "Lora"
    _touch(folder / "a.safetensors")
    os.symlink(folder, folder / "loop")

    listing = local_files(lambda: {"Lora": [folder]}, "Lora")

    assert list(listing.files) == ["a.safetensors"]


def test_the_list_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(model_files, "MAX_FILES", 3)
    for index in range(5):
        _touch(tmp_path / "Lora" / f"{index}.safetensors")

    listing = local_files(lambda: folder_layout(tmp_path), "Lora")

    assert len(listing.files) == 3
    assert listing.truncated


def test_without_folders_nothing_is_listed():
    listing = local_files(no_model_dirs, "Lora")

    assert (listing.folders, listing.files) == ([], {})
