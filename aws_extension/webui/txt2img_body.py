"""The A1111 `/sdapi/v1/txt2img` body of what the WebUI's txt2img tab set up in `p`.

The selectable script receives A1111's `StableDiffusionProcessingTxt2Img` after the always-on
scripts' `setup` filled the seed, sampler, scheduler and steps, but before `process_images`
would apply the prompt styles. This module turns it into the body an endpoint runs
(`StableDiffusionProcessingTxt2Img` of A1111 v1.10's API, see tests/data/a1111), reading `p`
only, so it is a pure function that tests check against the schema.

What it decides, and why:

- Prompts are the styled ones (`p.main_prompt`, set by A1111's own `p.setup_prompts()`,
  which the script calls first) and no `styles` go out: the endpoint's WebUI does not have
  this WebUI's styles file.
- `override_settings` travel, except the ones that name local files (`sd_model_checkpoint`,
  `sd_vae`): the job's cloud models replace them. Clip skip is a WebUI setting rather than a
  field of `p`, so the caller passes it and it joins the overrides.
- Hires fix fields go only when hires fix is on, with the prompts it would use.
- Settings that would need files of this machine are refused with a sentence rather than
  dropped, since a silently different image is worse than a clear message: the refiner, a
  hires checkpoint of its own, and the gallery's upscale button (`firstpass_image`).
- The sampler's fine-tuning (`eta`, `s_churn`...) stays with the endpoint's defaults: `p`
  holds this WebUI's settings there, which need not suit the endpoint's engine.
"""

from __future__ import annotations

import math
from typing import Any

#: Fields of `p` sent as they are when set (names and meaning as in A1111's API schema).
_INTEGERS = (
    "seed",
    "subseed",
    "seed_resize_from_h",
    "seed_resize_from_w",
    "batch_size",
    "n_iter",
    "steps",
    "width",
    "height",
)
_NUMBERS = ("subseed_strength", "cfg_scale")
_TEXTS = ("sampler_name", "scheduler")
_FLAGS = ("restore_faces", "tiling", "disable_extra_networks")
#: Hires fix fields, sent only with `enable_hr` on.
_HIRES_INTEGERS = ("hr_second_pass_steps", "hr_resize_x", "hr_resize_y")
_HIRES_NUMBERS = ("denoising_strength", "hr_scale")
_HIRES_TEXTS = ("hr_upscaler", "hr_sampler_name", "hr_scheduler")
#: `override_settings` that name files of this WebUI; the job's models stand for them.
LOCAL_MODEL_SETTINGS = frozenset({"sd_model_checkpoint", "sd_vae"})
CLIP_SKIP_SETTING = "CLIP_stop_at_last_layers"


class UnsupportedSetting(ValueError):
    """`p` asks for something a cloud endpoint cannot do; the message says what to change."""


def txt2img_body(p: Any, *, clip_skip: int | None = None) -> dict[str, Any]:
    """The txt2img body for `p`; `clip_skip` is the WebUI's "Clip skip" setting, if known.

    Raises `UnsupportedSetting` for settings that need this machine's files.
    """
    _refuse_local_files(p)
    body: dict[str, Any] = {
        "prompt": _first_text(getattr(p, "main_prompt", None), p.prompt),
        "negative_prompt": _first_text(getattr(p, "main_negative_prompt", None), p.negative_prompt),
    }
    _copy(body, p, _INTEGERS, _as_int)
    _copy(body, p, _NUMBERS, _as_number)
    _copy(body, p, _TEXTS, _as_text)
    _copy(body, p, _FLAGS, _as_flag)
    overrides = _overrides(getattr(p, "override_settings", None), clip_skip)
    if overrides:
        body["override_settings"] = overrides
    body["enable_hr"] = bool(getattr(p, "enable_hr", False))
    if body["enable_hr"]:
        _copy(body, p, _HIRES_INTEGERS, _as_int)
        _copy(body, p, _HIRES_NUMBERS, _as_number)
        _copy(body, p, _HIRES_TEXTS, _as_text)
        body["hr_prompt"] = _first_text(_first(getattr(p, "all_hr_prompts", None)), p.hr_prompt)
        body["hr_negative_prompt"] = _first_text(
            _first(getattr(p, "all_hr_negative_prompts", None)), p.hr_negative_prompt
        )
    return body


def _refuse_local_files(p: Any) -> None:
    if getattr(p, "firstpass_image", None) is not None:
        raise UnsupportedSetting(
            "Upscaling an image of the gallery works on this WebUI's own model only: select "
            "the script None to upscale it here, or turn on Hires. fix and generate again on "
            "Amazon SageMaker."
        )
    refiner = getattr(p, "refiner_checkpoint", None)
    if refiner not in (None, "", "None"):
        raise UnsupportedSetting(
            f"The refiner uses {refiner!r}, a checkpoint of this WebUI, which a SageMaker "
            "endpoint does not have: turn the Refiner off to generate on Amazon SageMaker."
        )
    hires_checkpoint = getattr(p, "hr_checkpoint_name", None)
    if getattr(p, "enable_hr", False) and hires_checkpoint not in (None, ""):
        raise UnsupportedSetting(
            f"Hires. fix uses {hires_checkpoint!r}, a checkpoint of this WebUI, which a "
            "SageMaker endpoint does not have: choose 'Use same checkpoint' for the hires pass."
        )


def _copy(body: dict[str, Any], p: Any, names: tuple[str, ...], convert: Any) -> None:
    for name in names:
        value = convert(getattr(p, name, None))
        if value is not None:
            body[name] = value


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value == int(value) else None
    return value if isinstance(value, int) else None


def _as_number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _as_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _as_flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _first(values: Any) -> Any:
    return values[0] if isinstance(values, list) and values else None


def _first_text(preferred: Any, fallback: Any) -> str:
    """A prompt as one string: A1111 allows a list (one per image), the body one text."""
    for value in (preferred, fallback):
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str):
            return value
    return ""


def _overrides(settings: Any, clip_skip: Any) -> dict[str, Any]:
    """The overrides that make sense on an endpoint, plus clip skip when given."""
    overrides = {
        key: value
        for key, value in (settings or {}).items()
        if isinstance(key, str) and key not in LOCAL_MODEL_SETTINGS and _plain(value)
    }
    clip_skip = _as_int(clip_skip)
    if clip_skip is not None and CLIP_SKIP_SETTING not in overrides:
        overrides[CLIP_SKIP_SETTING] = clip_skip
    return overrides


def _plain(value: Any) -> bool:
    """Whether JSON carries `value` unchanged (A1111's overrides are such values)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))
