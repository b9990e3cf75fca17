"""The shipped configs, the tokenizer data, the checkpoint detection and the LDM layout."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from aws_extension.endpoint.architectures import (
    CONFIG_ROOT,
    architectures,
    detect,
    materialize,
    read_tensor_shapes,
)
from aws_extension.endpoint.errors import InvalidRequest
from aws_extension.endpoint.ldm_layout import UNET_PREFIX, VAE_PREFIX, to_ldm

#: Parameter counts of the published SD 1.5 and SDXL base components.
PUBLISHED_SIZES = {
    ("sd15", "unet"): 859_520_964,
    ("sd15", "vae"): 83_653_863,
    ("sd15", "text_encoder"): 123_060_480,
    ("sdxl", "unet"): 2_567_463_684,
    ("sdxl", "vae"): 83_653_863,
    ("sdxl", "text_encoder"): 123_060_480,
    ("sdxl", "text_encoder_2"): 694_659_840,
}


def meta_model(architecture: str, part: str) -> torch.nn.Module:
    folder = CONFIG_ROOT / architecture / part
    with init_empty_weights():
        if part == "unet":
            return UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder))
        if part == "vae":
            return AutoencoderKL.from_config(AutoencoderKL.load_config(folder))
        model_class = CLIPTextModelWithProjection if part.endswith("_2") else CLIPTextModel
        return model_class(CLIPTextConfig.from_pretrained(folder))


@pytest.mark.parametrize(("architecture", "part"), sorted(PUBLISHED_SIZES))
def test_shipped_configs_describe_the_published_models(architecture: str, part: str) -> None:
    model = meta_model(architecture, part)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_SIZES[architecture, part]


def test_materialized_folder_has_the_real_clip_tokenizer(tmp_path: Path) -> None:
    sdxl = next(a for a in architectures() if a.name == "sdxl")
    folder = materialize(sdxl, tmp_path)
    assert materialize(sdxl, tmp_path) == folder  # made once
    for name, pad in (("tokenizer", "<|endoftext|>"), ("tokenizer_2", "!")):
        tokenizer = CLIPTokenizer.from_pretrained(folder / name, local_files_only=True)
        assert len(tokenizer) == 49408 and tokenizer.model_max_length == 77
        assert tokenizer.pad_token == pad
        # CLIP's own ids: <|startoftext|> a photo <|endoftext|>
        assert tokenizer("a photo").input_ids == [49406, 320, 1125, 49407]


def fake_safetensors(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    """A file with only a safetensors header: detection never reads the weights."""
    header = {
        name: {"dtype": "F16", "shape": list(shape), "data_offsets": [0, 0]}
        for name, shape in shapes.items()
    }
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    return path


SD15_SHAPES = {
    UNET_PREFIX + "input_blocks.0.0.weight": (320, 4, 3, 3),
    UNET_PREFIX + "middle_block.1.transformer_blocks.0.attn2.to_k.weight": (1280, 768),
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
}
SDXL_SHAPES = {
    UNET_PREFIX + "input_blocks.0.0.weight": (320, 4, 3, 3),
    UNET_PREFIX + "middle_block.1.transformer_blocks.0.attn2.to_k.weight": (1280, 2048),
    "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (
        49408,
        768,
    ),
    "conditioner.embedders.1.model.token_embedding.weight": (49408, 1280),
}


@pytest.mark.parametrize(("shapes", "expected"), [(SD15_SHAPES, "sd15"), (SDXL_SHAPES, "sdxl")])
def test_detection_by_tensor_shapes(tmp_path: Path, shapes: dict, expected: str) -> None:
    path = fake_safetensors(tmp_path / "model.safetensors", shapes)
    assert detect(read_tensor_shapes(path), path.name).name == expected


@pytest.mark.parametrize(
    ("shapes", "reason"),
    [
        ({**SD15_SHAPES, UNET_PREFIX + "input_blocks.0.0.weight": (320, 9, 3, 3)}, "inpainting"),
        ({"cond_stage_model.model.token_embedding.weight": (49408, 1024)}, "2.x"),
        ({"lora_unet_x.lora_down.weight": (4, 32)}, "no Stable Diffusion UNet"),
    ],
)
def test_unloadable_checkpoints_are_refused_with_the_reason(
    tmp_path: Path, shapes: dict, reason: str
) -> None:
    path = fake_safetensors(tmp_path / "model.safetensors", shapes)
    with pytest.raises(InvalidRequest, match=reason):
        detect(read_tensor_shapes(path), path.name)


def test_a_file_that_is_not_safetensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickle.safetensors"
    path.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    with pytest.raises(InvalidRequest, match="not a safetensors file"):
        read_tensor_shapes(path)


def test_ldm_layout_is_the_real_sd15_layout() -> None:
    """Written with the real SD 1.5 config, diffusers' own reader gets every tensor back."""
    unet, vae, text = (meta_model("sd15", part) for part in ("unet", "vae", "text_encoder"))
    state = to_ldm(unet.state_dict(), unet.config, vae.state_dict(), vae.config, text.state_dict())
    for known in (  # names every SD 1.5 checkpoint has
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight",
        "model.diffusion_model.input_blocks.3.0.op.weight",
        "model.diffusion_model.middle_block.2.in_layers.0.weight",
        "model.diffusion_model.output_blocks.2.1.conv.weight",
        "model.diffusion_model.output_blocks.5.2.conv.weight",
        "model.diffusion_model.out.2.weight",
        "first_stage_model.decoder.up.3.block.0.conv1.weight",
        "first_stage_model.encoder.down.0.downsample.conv.weight",
        "cond_stage_model.transformer.text_model.final_layer_norm.weight",
    ):
        assert known in state, known
    assert tuple(state["first_stage_model.encoder.mid.attn_1.q.weight"].shape) == (512, 512, 1, 1)
    unet_back = convert_ldm_unet_checkpoint(state, unet.config)
    vae_back = convert_ldm_vae_checkpoint(
        {k[len(VAE_PREFIX) :]: v for k, v in state.items() if k.startswith(VAE_PREFIX)},
        vae.config,
    )
    assert set(unet_back) == set(unet.state_dict())
    assert set(vae_back) == set(vae.state_dict())
