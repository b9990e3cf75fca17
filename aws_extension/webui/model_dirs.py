"""The folders A1111 reads each model type from, for uploads from the WebUI's own files.

Read from A1111's state on every call (the ui lists files when asked), honouring the same
command-line options A1111 honours, so a WebUI started with `--ckpt-dir /big/disk` offers
the checkpoints it actually shows. Where A1111 reads two folders for a type, both count:

- Stable-diffusion: `<models>/Stable-diffusion`, and `--ckpt-dir` as well when given
  (`sd_models.list_models` lists both);
- Lora: `--lora-dir` (default `<models>/Lora`) and `--lyco-dir-backcompat` (default
  `<models>/LyCORIS`), the options of the built-in Lora extension, which lists both;
- VAE: `<models>/VAE`, and `--vae-dir` as well when given (`sd_vae.refresh_vae_list`);
- embeddings: `--embeddings-dir` (default `<data>/embeddings`);
- hypernetworks: `--hypernetwork-dir` (default `<models>/hypernetworks`);
- ControlNet: `<models>/ControlNet`, plus the sd-webui-controlnet extension's
  `--controlnet-dir` and its "control_net_models_path" setting when that extension is there.

`<models>` is `modules.paths_internal.models_path` (`--models-dir`, else `<data>/models`).
Options an extension adds exist only while it is installed, hence `getattr` with defaults.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from aws_extension.webui.paths import data_dir


def model_dirs() -> dict[str, list[Path]]:
    """Model type (A1111's folder name) -> the folders A1111 reads it from."""
    from modules import shared

    models = models_dir()
    cmd_opts = shared.cmd_opts
    return {
        "Stable-diffusion": _unique([_given(cmd_opts, "ckpt_dir"), models / "Stable-diffusion"]),
        "Lora": _unique(
            [
                _given(cmd_opts, "lora_dir") or models / "Lora",
                _given(cmd_opts, "lyco_dir_backcompat") or models / "LyCORIS",
            ]
        ),
        "VAE": _unique([models / "VAE", _given(cmd_opts, "vae_dir")]),
        "ControlNet": _unique(
            [
                models / "ControlNet",
                _given(cmd_opts, "controlnet_dir"),
                _controlnet_setting(shared),
            ]
        ),
        "embeddings": [_given(cmd_opts, "embeddings_dir") or data_dir() / "embeddings"],
        "hypernetworks": [_given(cmd_opts, "hypernetwork_dir") or models / "hypernetworks"],
    }


def models_dir() -> Path:
    """A1111's models folder; `<data>/models` for forks that lack `paths_internal`."""
    try:
        from modules import paths_internal

        return Path(paths_internal.models_path)
    except (ImportError, AttributeError):
        return data_dir() / "models"


def _given(cmd_opts: object, name: str) -> Path | None:
    value = getattr(cmd_opts, name, None)
    return Path(value) if isinstance(value, (str, os.PathLike)) and str(value) else None


def _controlnet_setting(shared: object) -> Path | None:
    """The ControlNet extension's "Extra path to scan for ControlNet models" setting."""
    data = getattr(getattr(shared, "opts", None), "data", None)
    value = data.get("control_net_models_path") if isinstance(data, dict) else None
    return Path(value) if isinstance(value, str) and value.strip() else None


def _unique(folders: Iterable[Path | None]) -> list[Path]:
    """The folders given, in order, each once (compared as absolute paths)."""
    seen: set[str] = set()
    unique: list[Path] = []
    for folder in folders:
        if folder is None:
            continue
        key = os.path.normcase(os.path.abspath(folder))
        if key not in seen:
            seen.add(key)
            unique.append(folder)
    return unique
