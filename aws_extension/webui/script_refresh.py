"""The refresh button of the txt2img script: the user's cloud models and endpoints as
dropdown choices.

A module of its own because gradio finds the `gr.Request` parameter of a handler through
its type hints, which it evaluates in the handler's module: this one imports gradio at the
top, which the script's module must not (A1111 loads it at every start).
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from aws_extension.client.cloud_models import CloudChoices, list_choices
from aws_extension.client.errors import ApiError
from aws_extension.ui.context import request_user
from aws_extension.ui.feedback import UiError, escape, failure, success
from aws_extension.webui.cloud_txt2img import AUTOMATIC
from aws_extension.webui.script_sessions import ScriptSessions


class ChoicesRefresh:
    """`on_refresh` for one script's controls; `sessions` is asked for at each click, so
    the script creates its clients only when first used."""

    def __init__(self, sessions: Callable[[], ScriptSessions]) -> None:
        self._sessions = sessions

    def on_refresh(
        self,
        checkpoint: str | None,
        vae: str | None,
        loras: list[str] | None,
        endpoint: str | None,
        request: gr.Request,
    ) -> tuple:
        """New choices; what is chosen stays chosen, even when no longer listed, so a typed
        or pasted name is not lost (a job then says what is missing)."""
        user = request_user(request)
        sessions = self._sessions()
        try:
            choices = list_choices(sessions.client(user))
        except (ApiError, UiError) as exc:
            sessions.note_failure(user, exc)
            unchanged = gr.update()
            return unchanged, unchanged, unchanged, unchanged, failure(exc)
        if not checkpoint and len(choices.checkpoints) == 1:
            checkpoint = choices.checkpoints[0]
        return (
            gr.update(choices=_keep(choices.checkpoints, checkpoint), value=checkpoint),
            gr.update(choices=[AUTOMATIC, *_keep(choices.vaes, vae, AUTOMATIC)], value=vae),
            gr.update(choices=_keep(choices.loras, *(loras or [])), value=loras or []),
            gr.update(
                choices=[AUTOMATIC, *_keep(choices.endpoints, endpoint, AUTOMATIC)],
                value=endpoint,
            ),
            success(_summary(choices)),
        )


def _keep(names: list[str], *chosen: str | None) -> list[str]:
    """`names` plus the chosen values it lacks (but not `AUTOMATIC`, listed apart)."""
    extra = [c for c in chosen if c and c != AUTOMATIC and c not in names]
    return [*names, *dict.fromkeys(extra)]


def _summary(choices: CloudChoices) -> str:
    def count(n: int, what: str) -> str:
        return f"{n} {what}{'' if n == 1 else 's'}"

    serving = len(choices.in_service)
    endpoints = count(len(choices.endpoints), "endpoint")
    if choices.endpoints:
        endpoints += f" ({serving} in service)"
    return escape(
        f"{count(len(choices.checkpoints), 'checkpoint')}, {count(len(choices.loras), 'LoRA')}, "
        f"{count(len(choices.vaes), 'VAE')}, {endpoints}."
    )
