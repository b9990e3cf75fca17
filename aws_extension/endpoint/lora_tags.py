"""A1111's extra-network prompt tags (`<lora:name:0.8>`), shared by both engines.

A job names its LoRAs in `models.Lora` (with a weight each). A1111 applies a LoRA only when
the prompt carries its tag, so the webui engine appends the tags; the diffusers engine strips
every tag before encoding the prompt (as A1111 does) and writes the tags into the infotext,
so the image's parameters paste back into any A1111 unchanged. A LoRA the prompt already
tags keeps the prompt's weight, whichever engine runs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aws_extension.endpoint.invocation import ModelRef

#: A1111's extra-network syntax: `<kind:name[:multiplier[:...]]>`.
_TAG = re.compile(r"<(\w+):([^>]+)>")


def tagged_lora_weights(prompt: str) -> dict[str, float]:
    """LoRA name -> weight for each `<lora:...>` tag of the prompt (1.0 when not a number)."""
    weights: dict[str, float] = {}
    for kind, args in _TAG.findall(prompt):
        if kind != "lora":
            continue
        name, *rest = args.split(":")
        try:
            weights[name] = float(rest[0]) if rest else 1.0
        except ValueError:
            weights[name] = 1.0
    return weights


def strip_tags(prompt: str) -> str:
    """The prompt without any extra-network tag: the text the text encoder should see."""
    return _TAG.sub("", prompt)


def with_lora_tags(prompt: str, loras: Iterable[ModelRef]) -> str:
    """The prompt with a `<lora:stem:weight>` tag for each LoRA it does not tag yet."""
    tagged = tagged_lora_weights(prompt)
    tags = [f"<lora:{lora.stem}:{lora.weight:g}>" for lora in loras if lora.stem not in tagged]
    if not tags:
        return prompt
    return f"{prompt} {' '.join(tags)}" if prompt else " ".join(tags)


def effective_weights(prompt: str, loras: Iterable[ModelRef]) -> dict[str, float]:
    """Weight to apply per LoRA stem: the prompt's tag wins over the job's weight."""
    tagged = tagged_lora_weights(prompt)
    return {lora.stem: tagged.get(lora.stem, lora.weight) for lora in loras}
