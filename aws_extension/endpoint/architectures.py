"""Which shipped diffusers config fits a single-file checkpoint, and that config on disk.

diffusers' `from_single_file` works offline only with `config=<a local folder>`: without it,
it asks the Hugging Face hub which config the checkpoint needs. The package therefore ships
one folder per architecture (`model_configs/`: SD 1.x, SDXL base, and the tiny demo model),
and picks one by comparing a few tensor shapes, read from the safetensors header without
loading a byte of weights, against what each config implies.

The CLIP tokenizer files (vocab.json, merges.txt: 1.5 MB, the same for every architecture)
ship once, gzipped, in `data/`; `materialize` writes a complete config folder, tokenizer
included, the first time an architecture is used.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from aws_extension.endpoint.errors import InvalidRequest

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_ROOT = PACKAGE_DIR / "model_configs"
DATA_DIR = PACKAGE_DIR / "data"
#: Real SD 1.x/SDXL text encoders have 49408 token embeddings; a tokenizer of another size
#: means the config folder lacks the tokenizer files and diffusers fell back to a stub.
CLIP_VOCAB_SIZE = 49408
#: Bigger safetensors headers are not checkpoints (or are hostile): refuse before reading.
MAX_HEADER_BYTES = 100 * 1024 * 1024

UNET = "model.diffusion_model."
SD1_TOKENS = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
SDXL_TOKENS = "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight"
SDXL_TOKENS_2 = "conditioner.embedders.1.model.token_embedding.weight"
SD2_TOKENS = "cond_stage_model.model.token_embedding.weight"
CONV_IN = UNET + "input_blocks.0.0.weight"
MID_CROSS_ATTENTION = UNET + "middle_block.1.transformer_blocks.0.attn2.to_k.weight"


@dataclass(frozen=True)
class Architecture:
    name: str
    pipeline_class: str
    #: tensor name -> shape that a checkpoint of this architecture has
    signature: Mapping[str, tuple[int, ...]]

    @property
    def is_sdxl(self) -> bool:
        return self.pipeline_class == "StableDiffusionXLPipeline"


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def architectures() -> tuple[Architecture, ...]:
    """Every shipped architecture with the tensor shapes its configs imply."""
    found = []
    for folder in sorted(CONFIG_ROOT.iterdir()):
        index = _read_json(folder / "model_index.json")
        unet = _read_json(folder / "unet" / "config.json")
        text = _read_json(folder / "text_encoder" / "config.json")
        channels = unet["block_out_channels"]
        signature = {
            CONV_IN: (channels[0], unet["in_channels"], 3, 3),
            MID_CROSS_ATTENTION: (channels[-1], unet["cross_attention_dim"]),
        }
        if "text_encoder_2" in index:
            text_2 = _read_json(folder / "text_encoder_2" / "config.json")
            signature[SDXL_TOKENS] = (text["vocab_size"], text["hidden_size"])
            signature[SDXL_TOKENS_2] = (text_2["vocab_size"], text_2["hidden_size"])
        else:
            signature[SD1_TOKENS] = (text["vocab_size"], text["hidden_size"])
        found.append(Architecture(folder.name, index["_class_name"], signature))
    return tuple(found)


def read_tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors file's header (the weights are not read)."""
    with path.open("rb") as file:
        prefix = file.read(8)
        if len(prefix) != 8:
            raise InvalidRequest(f"{path.name} is not a safetensors file (too short).")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise InvalidRequest(f"{path.name} is not a safetensors file (bad header size).")
        try:
            header = json.loads(file.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidRequest(f"{path.name} is not a safetensors file (bad header).") from None
    if not isinstance(header, dict):
        raise InvalidRequest(f"{path.name} is not a safetensors file (bad header).")
    return {
        name: tuple(info["shape"])
        for name, info in header.items()
        if name != "__metadata__" and isinstance(info, dict) and "shape" in info
    }


def detect(shapes: Mapping[str, tuple[int, ...]], file_name: str) -> Architecture:
    """The shipped architecture whose tensor shapes the checkpoint has, or a clear 400."""
    for architecture in architectures():
        if all(shapes.get(key) == shape for key, shape in architecture.signature.items()):
            return architecture
    if SD2_TOKENS in shapes:
        reason = "it is a Stable Diffusion 2.x checkpoint, which this engine does not load"
    elif CONV_IN in shapes and shapes[CONV_IN][1] != 4:
        reason = "its UNet takes extra input channels (an inpainting or edit model)"
    elif CONV_IN not in shapes:
        reason = "it holds no Stable Diffusion UNet (a LoRA, VAE or embedding?)"
    else:
        reason = "its tensor shapes match none of SD 1.x, SDXL or the demo model"
    raise InvalidRequest(f"{file_name} cannot be loaded by the diffusers engine: {reason}.")


def _package_stamp() -> str:
    """A digest of every shipped config and data file: a changed package gets a new folder."""
    digest = hashlib.sha256()
    for root, pattern in ((CONFIG_ROOT, "*.json"), (DATA_DIR, "*.gz")):
        for path in sorted(root.rglob(pattern)):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def materialize(architecture: Architecture, root: Path) -> Path:
    """A complete diffusers config folder for `architecture` under `root` (made once).

    Built in a temporary folder and renamed into place, so concurrent workers and crashes
    never see a folder without its tokenizer.
    """
    target = root / f"{architecture.name}-{_package_stamp()}"
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        shutil.copytree(CONFIG_ROOT / architecture.name, staging, dirs_exist_ok=True)
        vocab = gzip.decompress((DATA_DIR / "clip_vocab.json.gz").read_bytes())
        merges = gzip.decompress((DATA_DIR / "clip_merges.txt.gz").read_bytes())
        for tokenizer in staging.glob("tokenizer*"):
            (tokenizer / "vocab.json").write_bytes(vocab)
            (tokenizer / "merges.txt").write_bytes(merges)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():  # lost a race to another worker: theirs is identical
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
