"""The txt2img body made from A1111's processing object, checked against A1111 v1.10.1's own
API schema (tests/data/a1111), with `p` built by the faked `modules.processing` as A1111's
txt2img tab builds it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from aws_extension.webui.txt2img_body import UnsupportedSetting, txt2img_body

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "data" / "a1111" / "sdapi-v1-openapi.json"
TXT2IMG = json.loads(SCHEMA_FILE.read_text())["components"]["schemas"][
    "StableDiffusionProcessingTxt2Img"
]["properties"]


def assert_fits_the_schema(body: dict) -> None:
    """Every field is one of A1111's txt2img fields, with the JSON type A1111 declares."""
    for key, value in body.items():
        assert key in TXT2IMG, f"{key} is not a field of A1111's txt2img body"
        declared = TXT2IMG[key].get("type")
        if declared == "integer":
            assert isinstance(value, int) and not isinstance(value, bool), key
        elif declared == "number":
            assert isinstance(value, (int, float)) and not isinstance(value, bool), key
            assert math.isfinite(value), key
        elif declared == "string":
            assert isinstance(value, str), key
        elif declared == "boolean":
            assert isinstance(value, bool), key
        elif declared == "object":
            assert isinstance(value, dict), key
    json.dumps(body, allow_nan=False)


@pytest.fixture
def processing(a1111_launcher):
    """`modules.processing` of an A1111 whose styles.csv holds two styles."""
    (a1111_launcher.data_dir / "styles.csv").write_text(
        "name,prompt,negative_prompt\n"
        'Cinematic,"cinematic still of {prompt}, film grain","cartoon"\n'
        'Sharp,"highly detailed",""\n'
    )
    a1111_launcher.start()
    from modules import processing

    return processing


def tab_p(processing, **fields):
    """`p` as the txt2img tab hands it to a script: built by txt2img_create_processing, then
    completed by the always-on Seed and Sampler scripts' setup."""
    p = processing.StableDiffusionProcessingTxt2Img(
        prompt=fields.pop("prompt", "a red fox"),
        negative_prompt=fields.pop("negative_prompt", "blurry"),
        styles=fields.pop("styles", []),
        batch_size=2,
        n_iter=1,
        cfg_scale=6.5,
        width=512,
        height=768,
        enable_hr=fields.pop("enable_hr", False),
        denoising_strength=0.55,
        hr_scale=2.0,
        hr_upscaler="Latent",
        hr_second_pass_steps=0,
        hr_resize_x=0,
        hr_resize_y=0,
        hr_checkpoint_name=fields.pop("hr_checkpoint_name", None),
        hr_sampler_name=None,
        hr_scheduler=None,
        hr_prompt=fields.pop("hr_prompt", ""),
        hr_negative_prompt="",
        override_settings=fields.pop("override_settings", {}),
    )
    p.seed, p.subseed, p.subseed_strength = 1234, -1, 0
    p.seed_resize_from_w, p.seed_resize_from_h = 0, 0
    p.steps, p.sampler_name, p.scheduler = 20, "DPM++ 2M", "Karras"
    for name, value in fields.items():
        setattr(p, name, value)
    p.setup_prompts()
    return p


def test_the_tabs_settings_become_a1111s_txt2img_body(processing):
    body = txt2img_body(tab_p(processing), clip_skip=2)

    assert_fits_the_schema(body)
    assert body == {
        "prompt": "a red fox",
        "negative_prompt": "blurry",
        "seed": 1234,
        "subseed": -1,
        "subseed_strength": 0,
        "seed_resize_from_h": 0,
        "seed_resize_from_w": 0,
        "sampler_name": "DPM++ 2M",
        "scheduler": "Karras",
        "batch_size": 2,
        "n_iter": 1,
        "steps": 20,
        "cfg_scale": 6.5,
        "width": 512,
        "height": 768,
        "disable_extra_networks": False,
        "override_settings": {"CLIP_stop_at_last_layers": 2},
        "enable_hr": False,
    }


def test_prompt_styles_are_applied_here_since_the_endpoint_has_not_got_them(processing):
    p = tab_p(processing, styles=["Cinematic", "Sharp"])

    body = txt2img_body(p)

    assert body["prompt"] == "cinematic still of a red fox, film grain, highly detailed"
    assert body["negative_prompt"] == "blurry, cartoon"
    assert "styles" not in body
    assert_fits_the_schema(body)


def test_the_first_prompt_stands_for_a_list_of_prompts(processing):
    p = tab_p(processing, prompt=["a red fox", "a grey wolf"], negative_prompt="")

    assert txt2img_body(p)["prompt"] == "a red fox"


def test_overrides_travel_except_the_local_model_files(processing):
    p = tab_p(
        processing,
        override_settings={
            "sd_model_checkpoint": "v1-5-pruned-emaonly.safetensors [6ce0161689]",
            "sd_vae": "vae-ft-mse.safetensors",
            "CLIP_stop_at_last_layers": 3,
            "eta_noise_seed_delta": 31337,
        },
    )

    body = txt2img_body(p, clip_skip=1)

    assert body["override_settings"] == {
        "CLIP_stop_at_last_layers": 3,
        "eta_noise_seed_delta": 31337,
    }


def test_without_overrides_or_clip_skip_none_are_sent(processing):
    assert "override_settings" not in txt2img_body(tab_p(processing))


def test_hires_fix_sends_its_fields_with_the_styled_hires_prompt(processing):
    p = tab_p(processing, enable_hr=True, styles=["Sharp"], hr_prompt="a red fox, close-up")

    body = txt2img_body(p)

    assert_fits_the_schema(body)
    assert body["enable_hr"] is True
    assert body["denoising_strength"] == 0.55
    assert (body["hr_scale"], body["hr_upscaler"], body["hr_second_pass_steps"]) == (
        2.0,
        "Latent",
        0,
    )
    assert body["hr_prompt"] == "a red fox, close-up, highly detailed"
    assert body["hr_negative_prompt"] == "blurry"
    assert "hr_sampler_name" not in body  # "use same sampler"
    assert "hr_checkpoint_name" not in body


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"refiner_checkpoint": "sdxl_refiner.safetensors"}, "turn the Refiner off"),
        (
            {"enable_hr": True, "hr_checkpoint_name": "other.safetensors"},
            "'Use same checkpoint'",
        ),
        ({"firstpass_image": object()}, "Upscaling an image of the gallery"),
    ],
)
def test_settings_that_need_this_machines_files_are_refused_with_a_sentence(
    processing, fields, words
):
    p = tab_p(processing, **fields)

    with pytest.raises(UnsupportedSetting, match=words):
        txt2img_body(p)


def test_a_disabled_refiner_or_hires_checkpoint_is_no_obstacle(processing):
    p = tab_p(processing, refiner_checkpoint="None", hr_checkpoint_name="unused.safetensors")

    assert txt2img_body(p)["enable_hr"] is False
