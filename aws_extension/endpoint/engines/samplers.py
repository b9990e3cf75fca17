"""A1111 sampler and schedule-type names -> a diffusers scheduler class and its settings.

The names are A1111 v1.10's (`/sdapi/v1/samplers` and `/sdapi/v1/schedulers`), so a body
built for A1111 runs here unchanged, and the infotext written back names them the same way.
A1111 falls back to its first sampler on an unknown name; here an unknown or unmappable name
is a 400 naming the choices, because a silently different sampler makes a different image.

How A1111 resolves a name, which this follows: `sampler_name` (or the deprecated
`sampler_index`, default "Euler") may end in a schedule type ("DPM++ 2M Karras"); aliases
("k_euler_a") are accepted; schedule type "Automatic" means the sampler's own default (Karras
for DPM++ 2M, Exponential for the SDE samplers, otherwise the model's discretisation).

The samplers of k-diffusion step through the model's timesteps uniformly from the noisiest
(`timestep_spacing="linspace"` in diffusers); DDIM, PLMS and UniPC use A1111's DDIM
discretisation (every n-th timestep plus one: "leading" with `steps_offset=1`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_extension.endpoint.errors import InvalidRequest

DEFAULT_SAMPLER = "Euler"
AUTOMATIC = "Automatic"

_KDIFF = {"timestep_spacing": "linspace"}
_DDIM = {"timestep_spacing": "leading", "steps_offset": 1}
_DPMPP = {"algorithm_type": "dpmsolver++", "solver_order": 2, **_KDIFF}
_SDE = {**_DPMPP, "algorithm_type": "sde-dpmsolver++"}


@dataclass(frozen=True)
class Sampler:
    name: str
    aliases: tuple[str, ...]
    #: diffusers scheduler class, or None where diffusers has no equivalent
    scheduler_class: str | None
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: A1111's default schedule type for "Automatic" (a schedule name), if any
    default_schedule: str | None = None


SAMPLERS: tuple[Sampler, ...] = (
    Sampler("DPM++ 2M", ("k_dpmpp_2m",), "DPMSolverMultistepScheduler", _DPMPP, "karras"),
    Sampler("DPM++ SDE", ("k_dpmpp_sde",), "DPMSolverSDEScheduler", _KDIFF, "karras"),
    Sampler(
        "DPM++ 2M SDE", ("k_dpmpp_2m_sde",), "DPMSolverMultistepScheduler", _SDE, "exponential"
    ),
    Sampler(
        "DPM++ 2M SDE Heun",
        ("k_dpmpp_2m_sde_heun",),
        "DPMSolverMultistepScheduler",
        {**_SDE, "solver_type": "heun"},
        "exponential",
    ),
    Sampler("DPM++ 2S a", ("k_dpmpp_2s_a",), None, default_schedule="karras"),
    Sampler(
        "DPM++ 3M SDE",
        ("k_dpmpp_3m_sde",),
        "DPMSolverMultistepScheduler",
        {**_SDE, "solver_order": 3},
        "exponential",
    ),
    Sampler(
        "Euler a", ("k_euler_a", "k_euler_ancestral"), "EulerAncestralDiscreteScheduler", _KDIFF
    ),
    Sampler("Euler", ("k_euler",), "EulerDiscreteScheduler", _KDIFF),
    Sampler("LMS", ("k_lms",), "LMSDiscreteScheduler", _KDIFF),
    Sampler("Heun", ("k_heun",), "HeunDiscreteScheduler", _KDIFF),
    Sampler("DPM2", ("k_dpm_2",), "KDPM2DiscreteScheduler", _KDIFF, "karras"),
    Sampler("DPM2 a", ("k_dpm_2_a",), "KDPM2AncestralDiscreteScheduler", _KDIFF, "karras"),
    Sampler("DPM fast", ("k_dpm_fast",), None),
    Sampler("DPM adaptive", ("k_dpm_ad",), None),
    Sampler("Restart", ("restart",), None, default_schedule="karras"),
    Sampler("DDIM", ("ddim",), "DDIMScheduler", _DDIM),
    Sampler("DDIM CFG++", ("ddim_cfgpp",), None),
    Sampler("PLMS", ("plms",), "PNDMScheduler", {**_DDIM, "skip_prk_steps": True}),
    Sampler("UniPC", ("unipc",), "UniPCMultistepScheduler", _DDIM),
    Sampler("LCM", ("k_lcm",), "LCMScheduler", _KDIFF),
)


@dataclass(frozen=True)
class Schedule:
    name: str
    label: str
    aliases: tuple[str, ...] = ()
    #: scheduler init settings that give this schedule; None: diffusers has no equivalent
    settings: Mapping[str, Any] | None = None


SCHEDULES: tuple[Schedule, ...] = (
    Schedule("automatic", AUTOMATIC, settings={}),
    Schedule("uniform", "Uniform", settings={"timestep_spacing": "linspace"}),
    Schedule("karras", "Karras", settings={"use_karras_sigmas": True}),
    Schedule("exponential", "Exponential", settings={"use_exponential_sigmas": True}),
    Schedule("polyexponential", "Polyexponential"),
    Schedule("sgm_uniform", "SGM Uniform", ("SGMUniform",), {"timestep_spacing": "trailing"}),
    Schedule("kl_optimal", "KL Optimal"),
    Schedule("align_your_steps", "Align Your Steps"),
    Schedule("simple", "Simple", settings={"timestep_spacing": "trailing"}),
    Schedule("normal", "Normal"),
    Schedule("ddim", "DDIM"),
    Schedule("beta", "Beta", settings={"use_beta_sigmas": True}),
)


@dataclass(frozen=True)
class SchedulerChoice:
    """What to build, and the A1111 names to write into the infotext."""

    sampler: str
    schedule_label: str
    scheduler_class: str
    settings: Mapping[str, Any]


def _find_schedule(name: str) -> Schedule | None:
    for schedule in SCHEDULES:
        if name in (schedule.name, schedule.label, *schedule.aliases):
            return schedule
    return None


def _find_sampler(name: str) -> Sampler | None:
    for sampler in SAMPLERS:
        if name == sampler.name or name.lower() in sampler.aliases:
            return sampler
    return None


def supported_samplers() -> list[str]:
    return [sampler.name for sampler in SAMPLERS if sampler.scheduler_class]


def resolve(sampler_name: str | None, schedule_name: str | None) -> SchedulerChoice:
    """The diffusers scheduler for A1111's sampler and schedule names, or a clear 400."""
    name = sampler_name or DEFAULT_SAMPLER
    schedule = _find_schedule(schedule_name) if schedule_name else _find_schedule(AUTOMATIC)
    if schedule is None:
        labels = ", ".join(s.label for s in SCHEDULES if s.settings is not None)
        raise InvalidRequest(f"Unknown schedule type {schedule_name!r}; use one of: {labels}.")
    sampler = _find_sampler(name)
    if sampler is None:  # A1111's legacy names carry the schedule: "DPM++ 2M Karras"
        for candidate in SCHEDULES:
            for suffix in (candidate.label, candidate.name, *candidate.aliases):
                if name.endswith(" " + suffix) and (
                    found := _find_sampler(name[: -len(suffix) - 1])
                ):
                    sampler, schedule = found, candidate
                    break
            if sampler:
                break
    if sampler is None:
        raise InvalidRequest(
            f"Unknown sampler {name!r}; the diffusers engine offers: "
            f"{', '.join(supported_samplers())}."
        )
    if sampler.scheduler_class is None:
        raise InvalidRequest(
            f"Sampler {sampler.name!r} has no diffusers equivalent; use one of: "
            f"{', '.join(supported_samplers())} (or an endpoint with the webui engine)."
        )
    if schedule.name == "automatic" and sampler.default_schedule:
        schedule = _find_schedule(sampler.default_schedule) or schedule
    if schedule.settings is None:
        raise InvalidRequest(
            f"Schedule type {schedule.label!r} has no diffusers equivalent; use Automatic, "
            "Uniform, Karras, Exponential, Beta, SGM Uniform or Simple."
        )
    return SchedulerChoice(
        sampler.name,
        schedule.label,
        sampler.scheduler_class,
        {**sampler.settings, **schedule.settings},
    )
