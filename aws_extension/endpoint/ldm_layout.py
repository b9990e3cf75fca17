"""Tensor names of a diffusers SD pipeline in the original (LDM) single-file layout.

A1111 checkpoints are single `.safetensors` files in the layout of the original Stable
Diffusion code (`model.diffusion_model.*`, `first_stage_model.*`,
`cond_stage_model.transformer.*`). diffusers reads that layout but has no writer for it, and
the demo model must be such a file so that it goes through exactly the loading path a real
checkpoint takes. This is the inverse of diffusers' reader for the SD 1.x family: the layout
follows from the UNet's block structure (`layers_per_block` resnets per level, plus a
down/upsampler), not from a fixed list of names, so it serves any SD 1.x-shaped config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."

_UNET_FIXED = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
    "add_embedding.linear_1": "label_emb.0.0",  # SDXL's size/crop conditioning
    "add_embedding.linear_2": "label_emb.0.2",
}
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_VAE_ATTENTION = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}


def unet_key(name: str, layers_per_block: int, up_block_types: Sequence[str]) -> str:
    """The LDM name of one diffusers UNet tensor (without the `model.diffusion_model.`)."""
    module, _, param = name.rpartition(".")
    if module in _UNET_FIXED:
        return f"{_UNET_FIXED[module]}.{param}"
    per_level = layers_per_block + 1
    if match := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", name):
        level, part, layer, rest = match.groups()
        block = 1 + int(level) * per_level + int(layer)
        return _block_key(f"input_blocks.{block}", part, rest)
    if match := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", name):
        level, rest = match.groups()
        return f"input_blocks.{(int(level) + 1) * per_level}.0.op.{rest}"
    if match := re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", name):
        part, index, rest = match.groups()
        position = 1 if part == "attentions" else 2 * int(index)
        return f"middle_block.{position}.{_inner_key(part, rest)}"
    if match := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", name):
        level, part, layer, rest = match.groups()
        block = int(level) * per_level + int(layer)
        return _block_key(f"output_blocks.{block}", part, rest)
    if match := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", name):
        level, rest = match.groups()
        block = int(level) * per_level + layers_per_block
        slot = 2 if up_block_types[int(level)].startswith("CrossAttn") else 1
        return f"output_blocks.{block}.{slot}.conv.{rest}"
    raise ValueError(f"no LDM name for UNet tensor {name}")


def _block_key(block: str, part: str, rest: str) -> str:
    """An input/output block holds its resnet in slot 0 and its attention in slot 1."""
    return f"{block}.{1 if part == 'attentions' else 0}.{_inner_key(part, rest)}"


def _inner_key(part: str, rest: str) -> str:
    if part == "attentions":
        return rest
    module, _, param = rest.rpartition(".")
    return f"{_UNET_RESNET.get(module, module)}.{param}"


def vae_key(name: str, levels: int) -> str:
    """The LDM name of one diffusers VAE tensor (without the `first_stage_model.`)."""
    rename = [
        (r"(encoder|decoder)\.conv_norm_out\.", r"\1.norm_out."),
        (r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.", r"encoder.down.\1.block.\2."),
        (r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample."),
        (r"(encoder|decoder)\.mid_block\.attentions\.0\.", r"\1.mid.attn_1."),
    ]
    for pattern, replacement in rename:
        name = re.sub(pattern, replacement, name)
    name = re.sub(
        r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.",
        lambda m: f"{m[1]}.mid.block_{int(m[2]) + 1}.",
        name,
    )
    name = re.sub(
        r"decoder\.up_blocks\.(\d+)\.(resnets|upsamplers)\.(\d+)\.",
        lambda m: (
            f"decoder.up.{levels - 1 - int(m[1])}."
            + (f"block.{m[3]}." if m[2] == "resnets" else "upsample.")
        ),
        name,
    )
    name = name.replace("conv_shortcut", "nin_shortcut")
    if ".mid.attn_1." in name:
        head, _, tail = name.partition(".mid.attn_1.")
        module, _, param = tail.rpartition(".")
        name = f"{head}.mid.attn_1.{_VAE_ATTENTION.get(module, module)}.{param}"
    return name


def to_ldm(
    unet: Mapping[str, Any],
    unet_config: Mapping[str, Any],
    vae: Mapping[str, Any],
    vae_config: Mapping[str, Any],
    text_encoder: Mapping[str, Any],
) -> dict[str, Any]:
    """One LDM state dict from the three diffusers/transformers state dicts (tensors shared).

    The VAE's attention projections become 1x1 convolutions, as in the original model; the
    text encoder keeps transformers' names under `cond_stage_model.transformer.text_model.`.
    """
    state: dict[str, Any] = {}
    for name, tensor in unet.items():
        key = unet_key(name, unet_config["layers_per_block"], unet_config["up_block_types"])
        state[UNET_PREFIX + key] = tensor
    levels = len(vae_config["block_out_channels"])
    for name, tensor in vae.items():
        key = vae_key(name, levels)
        if ".mid.attn_1." in key and key.endswith(".weight") and tensor.ndim == 2:
            tensor = tensor[:, :, None, None]
        state[VAE_PREFIX + key] = tensor
    for name, tensor in text_encoder.items():
        key = name if name.startswith("text_model.") else f"text_model.{name}"
        state[TEXT_PREFIX + key] = tensor
    return state
