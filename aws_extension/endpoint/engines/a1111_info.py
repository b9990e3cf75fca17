"""A1111-style infotexts and `info` for images the diffusers engine made.

The WebUI shows, pastes and re-parses these ("PNG Info", "Send to txt2img"), so they follow
A1111 v1.10's format: the prompt, a "Negative prompt:" line when there is one, then
`Key: value` pairs joined by ", ", a value quoted as JSON when it holds `,`, `:` or a newline.
The LoRAs appear as `<lora:name:weight>` tags in the prompt and a "Lora hashes" pair, as A1111
writes them, so an image's parameters reproduce it in any A1111 that has the same models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from aws_extension.endpoint.engines.txt2img_params import Txt2ImgParams
from aws_extension.endpoint.invocation import ModelRef


def quote(value: object) -> str:
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True)
class ImageSet:
    """Everything the infotexts of one job share."""

    params: Txt2ImgParams
    #: the prompt as written into infotexts: the job's prompt plus its LoRA tags
    prompt: str
    all_seeds: list[int]
    all_subseeds: list[int]
    checkpoint: ModelRef
    vae: ModelRef | None
    loras: tuple[ModelRef, ...]
    version: str

    def infotext(self, index: int) -> str:
        p = self.params
        pairs: dict[str, object | None] = {
            "Steps": p.steps,
            "Sampler": p.scheduler.sampler,
            "Schedule type": p.scheduler.schedule_label,
            "CFG scale": p.cfg_scale,
            "Seed": self.all_seeds[index],
            "Size": f"{p.width}x{p.height}",
            "Model hash": self.checkpoint.short_hash,
            "Model": self.checkpoint.stem,
            "VAE hash": self.vae.short_hash if self.vae else None,
            "VAE": self.vae.name if self.vae else None,
            "Clip skip": p.clip_skip if p.clip_skip > 1 else None,
            "Lora hashes": ", ".join(f"{lora.stem}: {lora.sha256[:12]}" for lora in self.loras)
            or None,
            "Version": self.version,
        }
        text = ", ".join(
            f"{key}: {quote(value)}" for key, value in pairs.items() if value is not None
        )
        negative = f"\nNegative prompt: {p.negative_prompt}" if p.negative_prompt else ""
        return f"{self.prompt}{negative}\n{text}".strip()

    def info(self) -> dict[str, Any]:
        """A1111's `Processed.js()` fields (the `info` of its txt2img reply)."""
        p = self.params
        count = len(self.all_seeds)
        infotexts = [self.infotext(index) for index in range(count)]
        return {
            "prompt": self.prompt,
            "all_prompts": [self.prompt] * count,
            "negative_prompt": p.negative_prompt,
            "all_negative_prompts": [p.negative_prompt] * count,
            "seed": self.all_seeds[0],
            "all_seeds": self.all_seeds,
            "subseed": self.all_subseeds[0],
            "all_subseeds": self.all_subseeds,
            "subseed_strength": 0,
            "width": p.width,
            "height": p.height,
            "sampler_name": p.scheduler.sampler,
            "cfg_scale": p.cfg_scale,
            "steps": p.steps,
            "batch_size": p.batch_size,
            "restore_faces": False,
            "face_restoration_model": None,
            "sd_model_name": self.checkpoint.stem,
            "sd_model_hash": self.checkpoint.short_hash,
            "sd_vae_name": self.vae.name if self.vae else None,
            "sd_vae_hash": self.vae.short_hash if self.vae else None,
            "seed_resize_from_w": -1,
            "seed_resize_from_h": -1,
            "denoising_strength": None,
            "extra_generation_params": {"Schedule type": p.scheduler.schedule_label},
            "index_of_first_image": 0,
            "infotexts": infotexts,
            "styles": [],
            "job_timestamp": datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S"),
            "clip_skip": p.clip_skip,
            "is_using_inpainting_conditioning": False,
            "version": self.version,
        }
