"""The demo model: a tiny, randomly initialised SD 1.x checkpoint made on the spot.

It lets Generate work on a fresh machine with no GPU, no internet and no model download, and
gives the tests a real checkpoint. It is built from the shipped `tiny-sd15` config (an SD
1.x-shaped UNet, VAE and CLIP text encoder a few hundred times smaller, with the real CLIP
vocabulary) and written as ONE `.safetensors` file in the original single-file layout, so it
is loaded exactly like a real checkpoint (`from_single_file` with the config chosen by its
tensor shapes). Its images are coloured noise: the name says so.

Making it needs torch, diffusers and transformers (the engine environment); the weights are a
pure function of `seed`, so every machine makes the same file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from aws_extension.endpoint.architectures import CONFIG_ROOT
from aws_extension.endpoint.ldm_layout import to_ldm

ARCHITECTURE = "tiny-sd15"
DEMO_MODEL_NAME = "tiny-random-sd15 (demo, random weights).safetensors"


def tiny_components(seed: int = 0) -> tuple[Any, Any, Any]:
    """The randomly initialised UNet, VAE and text encoder of the demo model."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = CONFIG_ROOT / ARCHITECTURE
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
    text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
    return unet, vae, text_encoder


def tiny_checkpoint(seed: int = 0) -> dict[str, Any]:
    """The demo model's tensors in the original single-file layout."""
    unet, vae, text_encoder = tiny_components(seed)
    return to_ldm(
        {name: tensor.contiguous() for name, tensor in unet.state_dict().items()},
        unet.config,
        {name: tensor.contiguous() for name, tensor in vae.state_dict().items()},
        vae.config,
        {name: tensor.contiguous() for name, tensor in text_encoder.state_dict().items()},
    )


def write_tiny_checkpoint(folder: Path, seed: int = 0, name: str = DEMO_MODEL_NAME) -> Path:
    """Write the demo model into `folder` (atomically) and return its path."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    partial = folder / f".{name}.{os.getpid()}.partial"
    metadata = {
        "modelspec.title": "tiny random SD 1.x (demo)",
        "description": "Randomly initialised demo model made by sd-webui-sagemaker; "
        "its images are noise. seed=" + str(seed),
    }
    save_file(tiny_checkpoint(seed), str(partial), metadata=metadata)
    os.replace(partial, path)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aws_extension.endpoint make-demo-model",
        description="Write the tiny random demo checkpoint (no download).",
    )
    parser.add_argument("folder", type=Path, help="where to write it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = write_tiny_checkpoint(args.folder, args.seed)
    info = {"path": str(path), "size": path.stat().st_size, "sha256": sha256_of(path)}
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
