"""A tiny random SDXL checkpoint and its config folder, to load SDXL the real way in tests.

A real SDXL file is 7 GB, so the SDXL path (two text encoders, OpenCLIP's layout for the
second, size conditioning) is tested on a model a few hundred times smaller. Its config
folder is the shipped `sdxl` one with smaller numbers, added as an extra architecture.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from aws_extension.endpoint.architectures import CONFIG_ROOT
from aws_extension.endpoint.ldm_layout import to_ldm, unet_key

# The two text encoders must differ in width, as in SDXL (768 and 1280): diffusers tells
# them apart by their position embeddings' width.
TEXT = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
        "num_attention_heads": 4, "projection_dim": 32}  # fmt: skip
TEXT_2 = {**TEXT, "hidden_size": 48, "projection_dim": 48}
UNET = {
    "block_out_channels": [32, 64],
    "attention_head_dim": [2, 4],
    "transformer_layers_per_block": [1, 2],
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "cross_attention_dim": 32 + 48,  # the two text encoders' widths together
    "addition_time_embed_dim": 8,
    "projection_class_embeddings_input_dim": 48 + 6 * 8,  # pooled text + 6 size numbers
    "sample_size": 8,
}


def write_tiny_sdxl_config(root: Path) -> Path:
    """`root/tiny-sdxl`: the shipped SDXL config folder with the tiny numbers."""
    folder = root / "tiny-sdxl"
    shutil.copytree(CONFIG_ROOT / "sdxl", folder)
    tiny_vae = json.loads((CONFIG_ROOT / "tiny-sd15" / "vae" / "config.json").read_text())
    for part, changes in (
        ("unet", UNET),
        ("text_encoder", TEXT),
        ("text_encoder_2", TEXT_2),
        ("vae", {**tiny_vae, "force_upcast": True}),
    ):
        path = folder / part / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
    return folder


def _open_clip(state: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """transformers' CLIPTextModelWithProjection tensors in OpenCLIP's names (SDXL's 2nd)."""
    out = {
        "token_embedding.weight": state["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": state["text_model.embeddings.position_embedding.weight"],
        "ln_final.weight": state["text_model.final_layer_norm.weight"],
        "ln_final.bias": state["text_model.final_layer_norm.bias"],
        "text_projection": state["text_projection.weight"].T.contiguous(),
    }
    for i in range(layers):
        old, new = f"text_model.encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{new}attn.in_proj_{kind}"] = torch.cat(
                [state[f"{old}self_attn.{p}_proj.{kind}"] for p in "qkv"]
            )
            for ours, theirs in (
                ("self_attn.out_proj", "attn.out_proj"),
                ("layer_norm1", "ln_1"),
                ("layer_norm2", "ln_2"),
                ("mlp.fc1", "mlp.c_fc"),
                ("mlp.fc2", "mlp.c_proj"),
            ):
                out[f"{new}{theirs}.{kind}"] = state[f"{old}{ours}.{kind}"]
    return out


def write_tiny_sdxl(path: Path, config: Path, seed: int = 0) -> Path:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet"))
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(config / "vae"))
    text = CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder"))
    text_2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(config / "text_encoder_2"))
    state: dict[str, Any] = {
        key: tensor
        for key, tensor in to_ldm({}, unet.config, vae.state_dict(), vae.config, {}).items()
    }
    for name, tensor in unet.state_dict().items():
        key = unet_key(name, unet.config["layers_per_block"], unet.config["up_block_types"])
        state["model.diffusion_model." + key] = tensor
    for name, tensor in text.state_dict().items():
        state[f"conditioner.embedders.0.transformer.text_model.{name}"] = tensor
    for name, tensor in _open_clip(text_2.state_dict(), TEXT["num_hidden_layers"]).items():
        state[f"conditioner.embedders.1.model.{name}"] = tensor
    save_file({key: tensor.contiguous() for key, tensor in state.items()}, str(path))
    return path
