"""The A1111 txt2img fields the diffusers engine honours, checked, with A1111's defaults.

Fields the engine cannot honour are refused when they would change the picture (hires fix,
face restoration, tiling, variation seeds, scripts, styles): a job asking for them belongs
on a webui endpoint, and a silently different image is worse than a clear 400. Their neutral
values (false, 0, empty) pass, so a full A1111 body is accepted. Of `override_settings`
only `CLIP_stop_at_last_layers` (clip skip) is used; the models come from the job's
`models`, never from `sd_model_checkpoint`/`sd_vae`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_extension.endpoint.engines.samplers import SchedulerChoice, resolve
from aws_extension.endpoint.errors import InvalidRequest

MAX_SIDE = 2048
MAX_STEPS = 150
MAX_BATCH_SIZE = 8
MAX_N_ITER = 16
MAX_SEED = 2**32 - 1
MAX_CLIP_SKIP = 12

#: A1111 v1.10's defaults (StableDiffusionProcessingTxt2Img) for the fields used here.
DEFAULTS: dict[str, Any] = {
    "prompt": "",
    "negative_prompt": "",
    "seed": -1,
    "subseed": -1,
    "steps": 50,
    "cfg_scale": 7.0,
    "width": 512,
    "height": 512,
    "batch_size": 1,
    "n_iter": 1,
    "sampler_name": None,
    "scheduler": None,
}

#: Fields whose non-neutral values ask for features this engine does not have.
_UNSUPPORTED = {
    "enable_hr": "hires fix",
    "restore_faces": "face restoration",
    "tiling": "tiling",
    "subseed_strength": "variation seeds",
    "seed_resize_from_w": "seed resize",
    "seed_resize_from_h": "seed resize",
    "script_name": "scripts",
    "alwayson_scripts": "always-on scripts (ControlNet and the like)",
    "styles": "prompt styles",
    "refiner_checkpoint": "the refiner",
    "firstpass_image": "a first-pass image",
}


@dataclass(frozen=True)
class Txt2ImgParams:
    prompt: str
    negative_prompt: str
    steps: int
    #: as sent (int or float), so the infotext writes "7" for 7 like A1111
    cfg_scale: float
    width: int
    height: int
    #: -1 for a random seed
    seed: int
    subseed: int
    batch_size: int
    n_iter: int
    scheduler: SchedulerChoice
    #: A1111's "Clip skip" (1 = use the last layer)
    clip_skip: int


def _neutral(value: Any) -> bool:
    return value in (None, False, 0, "", "None", [], {}) or (
        isinstance(value, int | float) and not isinstance(value, bool) and value <= 0
    )


def _int(payload: dict[str, Any], key: str, low: int, high: int) -> int:
    value = payload.get(key, DEFAULTS.get(key))
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"payload.{key} must be an integer.")
    if not low <= value <= high:
        raise InvalidRequest(f"payload.{key} must be between {low} and {high}, not {value}.")
    return value


def _text(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key, DEFAULTS[key])
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"payload.{key} must be a string.")
    return value


def parse_params(payload: dict[str, Any]) -> Txt2ImgParams:
    asked = sorted({label for key, label in _UNSUPPORTED.items() if not _neutral(payload.get(key))})
    if asked:
        raise InvalidRequest(
            f"The diffusers engine does not do {', '.join(asked)}; "
            "use an endpoint with the webui engine for them."
        )
    sizes = {key: _int(payload, key, 64, MAX_SIDE) for key in ("width", "height")}
    for key, value in sizes.items():
        if value % 8:
            raise InvalidRequest(f"payload.{key} must be a multiple of 8, not {value}.")
    cfg_scale = payload.get("cfg_scale", DEFAULTS["cfg_scale"])
    if isinstance(cfg_scale, bool) or not isinstance(cfg_scale, int | float):
        raise InvalidRequest("payload.cfg_scale must be a number.")
    if not 0 <= cfg_scale <= 30:
        raise InvalidRequest("payload.cfg_scale must be between 0 and 30.")
    overrides = payload.get("override_settings") or {}
    if not isinstance(overrides, dict):
        raise InvalidRequest("payload.override_settings must be an object.")
    clip_skip = overrides.get("CLIP_stop_at_last_layers", 1)
    if isinstance(clip_skip, bool) or not isinstance(clip_skip, int):
        raise InvalidRequest("override_settings.CLIP_stop_at_last_layers must be an integer.")
    if not 1 <= clip_skip <= MAX_CLIP_SKIP:
        raise InvalidRequest(f"Clip skip must be between 1 and {MAX_CLIP_SKIP}.")
    sampler_name = payload.get("sampler_name") or payload.get("sampler_index")
    schedule = payload.get("scheduler")
    if sampler_name is not None and not isinstance(sampler_name, str):
        raise InvalidRequest("payload.sampler_name must be a string.")
    if schedule is not None and not isinstance(schedule, str):
        raise InvalidRequest("payload.scheduler must be a string.")
    return Txt2ImgParams(
        prompt=_text(payload, "prompt"),
        negative_prompt=_text(payload, "negative_prompt"),
        steps=_int(payload, "steps", 1, MAX_STEPS),
        cfg_scale=cfg_scale,
        width=sizes["width"],
        height=sizes["height"],
        seed=_int(payload, "seed", -1, MAX_SEED),
        subseed=_int(payload, "subseed", -1, MAX_SEED),
        batch_size=_int(payload, "batch_size", 1, MAX_BATCH_SIZE),
        n_iter=_int(payload, "n_iter", 1, MAX_N_ITER),
        scheduler=resolve(sampler_name, schedule),
        clip_skip=clip_skip,
    )
