"""Files that go with the tiny demo model in tests: a kohya-layout LoRA and a bare VAE file."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from aws_extension.endpoint.ldm_layout import VAE_PREFIX, to_ldm
from aws_extension.endpoint.tiny_model import tiny_components


def write_tiny_lora(path: Path, rank: int = 4, seed: int = 1, scale: float = 0.5) -> Path:
    """A LoRA for the tiny UNet's attention projections, named as kohya's sd-scripts does.

    kohya names each adapted module `lora_unet_<diffusers module path with _ for .>` and
    stores `lora_down` (rank x in), `lora_up` (out x rank) and `alpha`; A1111 and diffusers
    both read that layout. The weights are large enough to change the picture visibly.
    """
    unet, _, _ = tiny_components()
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in unet.named_modules():
        if not isinstance(module, torch.nn.Linear) or ".attn" not in name:
            continue
        if not name.endswith(("to_q", "to_k", "to_v", "to_out.0")):
            continue
        key = "lora_unet_" + name.replace(".", "_")
        down = torch.randn(rank, module.in_features, generator=generator) * scale
        up = torch.randn(module.out_features, rank, generator=generator) * scale
        tensors[f"{key}.lora_down.weight"] = down
        tensors[f"{key}.lora_up.weight"] = up
        tensors[f"{key}.alpha"] = torch.tensor(float(rank))
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora"})
    return path


def write_tiny_vae(path: Path, seed: int = 7) -> Path:
    """Another randomly initialised tiny VAE, as a bare A1111-style VAE file (no prefix)."""
    unet, vae, _ = tiny_components(seed)
    state = to_ldm({}, unet.config, vae.state_dict(), vae.config, {})
    save_file(
        {key.removeprefix(VAE_PREFIX): tensor.contiguous() for key, tensor in state.items()},
        str(path),
    )
    return path
