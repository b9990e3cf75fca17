"""The sampler and schedule-type names the txt2img panel offers: A1111 v1.10.1's own.

A job's payload is an A1111 txt2img body, so the names are A1111's, in its order: a webui
endpoint runs every one of them, the diffusers engine those it has an equivalent for (it
refuses the others in words, naming the ones it offers). The WebUI process cannot ask an
endpoint, and must not import the endpoint runtime, so the names are data here; a test keeps
them equal to A1111's (`tests/data/a1111`) and to what the diffusers engine accepts.
"""

from __future__ import annotations

SAMPLERS: tuple[str, ...] = (
    "DPM++ 2M",
    "DPM++ SDE",
    "DPM++ 2M SDE",
    "DPM++ 2M SDE Heun",
    "DPM++ 2S a",
    "DPM++ 3M SDE",
    "Euler a",
    "Euler",
    "LMS",
    "Heun",
    "DPM2",
    "DPM2 a",
    "DPM fast",
    "DPM adaptive",
    "Restart",
    "DDIM",
    "DDIM CFG++",
    "PLMS",
    "UniPC",
    "LCM",
)

#: Schedule types by their labels, which A1111's `scheduler` field takes.
SCHEDULERS: tuple[str, ...] = (
    "Automatic",
    "Uniform",
    "Karras",
    "Exponential",
    "Polyexponential",
    "SGM Uniform",
    "KL Optimal",
    "Align Your Steps",
    "Simple",
    "Normal",
    "DDIM",
    "Beta",
)

#: What only webui endpoints run: the diffusers engine has no equivalent.
WEBUI_ONLY_SAMPLERS: tuple[str, ...] = (
    "DPM++ 2S a",
    "DPM fast",
    "DPM adaptive",
    "Restart",
    "DDIM CFG++",
)
WEBUI_ONLY_SCHEDULERS: tuple[str, ...] = (
    "Polyexponential",
    "KL Optimal",
    "Align Your Steps",
    "Normal",
    "DDIM",
)

#: A1111 v1.10's defaults in its txt2img tab.
DEFAULT_SAMPLER = "DPM++ 2M"
DEFAULT_SCHEDULER = "Automatic"
