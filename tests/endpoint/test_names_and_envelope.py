"""Sampler/schedule names against A1111's own lists, and the invocation envelope."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aws_extension.endpoint.engines.samplers import SAMPLERS, SCHEDULES, resolve
from aws_extension.endpoint.errors import InvalidRequest
from aws_extension.endpoint.invocation import parse_invocation
from aws_extension.endpoint.lora_tags import effective_weights, strip_tags, with_lora_tags


def test_every_a1111_sampler_and_schedule_is_known(a1111_reference: Path) -> None:
    samplers = json.loads((a1111_reference / "samplers.json").read_text())
    schedules = json.loads((a1111_reference / "schedulers.json").read_text())
    ours = {sampler.name: sampler for sampler in SAMPLERS}
    assert [s["name"] for s in samplers] == list(ours)
    for sampler in samplers:
        assert tuple(sampler["aliases"]) == ours[sampler["name"]].aliases
        assert sampler["options"].get("scheduler") == ours[sampler["name"]].default_schedule
    assert [(s["name"], s["label"]) for s in schedules] == [(s.name, s.label) for s in SCHEDULES]


def test_a1111_ways_of_naming_a_sampler() -> None:
    assert resolve(None, None).sampler == "Euler"  # A1111's sampler_index default
    karras = resolve("DPM++ 2M Karras", None)  # legacy name with the schedule in it
    assert (karras.sampler, karras.schedule_label) == ("DPM++ 2M", "Karras")
    assert karras.settings["use_karras_sigmas"] is True
    assert resolve("k_euler_a", "karras").sampler == "Euler a"
    assert resolve("DPM++ 2M", "Automatic").schedule_label == "Karras"
    assert resolve("DPM++ 2M SDE", None).settings["algorithm_type"] == "sde-dpmsolver++"
    assert resolve("Euler", "Uniform").settings["timestep_spacing"] == "linspace"
    with pytest.raises(InvalidRequest, match=r"Restart.*no diffusers equivalent"):
        resolve("Restart", None)
    with pytest.raises(InvalidRequest, match="Align Your Steps"):
        resolve("Euler", "Align Your Steps")


def test_lora_tags_follow_a1111() -> None:
    lora = parse_invocation(
        {
            "task": "txt2img",
            "payload": {},
            "models": {
                "Stable-diffusion": {
                    "sha256": "a" * 64,
                    "url": "https://s3/x",
                    "name": "m.safetensors",
                },
                "Lora": [
                    {
                        "sha256": "b" * 64,
                        "url": "https://s3/y",
                        "name": "ink.safetensors",
                        "weight": 0.7,
                    },
                    {"sha256": "c" * 64, "url": "https://s3/z", "name": "sun.safetensors"},
                ],
            },
        }
    ).loras
    prompt = "a cat <lora:sun:0.3>, <hypernet:old:1>"
    assert with_lora_tags(prompt, lora) == prompt + " <lora:ink:0.7>"
    assert effective_weights(prompt, lora) == {"ink": 0.7, "sun": 0.3}
    assert strip_tags(prompt) == "a cat , "


def envelope(**models: object) -> dict:
    checkpoint = {
        "id": "c1",
        "sha256": "A" * 64,
        "url": "https://bucket/x?sig",
        "name": "m.safetensors",
    }
    return {"task": "txt2img", "payload": {}, "models": {"Stable-diffusion": checkpoint, **models}}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "must be a JSON object"),
        ({"task": "txt2img", "models": {}, "payload": []}, "payload must be a JSON object"),
        (envelope(ControlNet={}), "ControlNet are not supported"),
        (envelope(Lora={}), "models.Lora must be a list"),
        (
            envelope(Lora=[{"sha256": "b" * 64, "url": "ftp://x", "name": "l.safetensors"}]),
            "http(s)",
        ),
        (envelope(VAE={"sha256": "b" * 64, "url": "http://x", "name": "../v.pt"}), "file name"),
        (
            envelope(VAE={"sha256": "b" * 64, "url": "http://x", "name": "v.pt", "weight": 1}),
            "LoRA",
        ),
    ],
)
def test_malformed_envelopes_are_refused(body: object, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_invocation(body)
    assert fragment in refused.value.detail


def test_a_valid_envelope_parses() -> None:
    invocation = parse_invocation(envelope())
    assert invocation.checkpoint.sha256 == "a" * 64  # normalised to lower case
    assert invocation.checkpoint.stem == "m" and invocation.checkpoint.short_hash == "a" * 10
    assert invocation.models() == [invocation.checkpoint]
