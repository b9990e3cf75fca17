"""Change my password: every signed-in user changes their own.

The local stack prints the admin's first password once and says to change it here. The
server ends every other session of the user and answers with a new one, whose refresh token
the client hands to the session store (`UserSessions`), so this WebUI stays signed in.
The three fields are emptied after every try: a password never stays on the page.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aws_extension.client.api import ApiClient
from aws_extension.client.errors import ApiError
from aws_extension.contract import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from aws_extension.ui.context import UiContext
from aws_extension.ui.feedback import UiError, failure, success
from aws_extension.ui.sessions import UserSessions
from aws_extension.ui.views import Updates


class PasswordPanel:
    def __init__(self, context: UiContext, sessions: UserSessions) -> None:
        self._context = context
        self._sessions = sessions

    def build(self) -> None:
        with gr.Column(visible=False, elem_id="sagemaker_own_password_panel") as self.panel:
            gr.Markdown("### Change my password")
            secret = {"type": "password", "max_lines": 1}
            with gr.Row():
                self.current = gr.Textbox(
                    label="Current password", elem_id="sagemaker_own_password_current", **secret
                )
                self.new = gr.Textbox(
                    label="New password",
                    placeholder=f"{PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters",
                    elem_id="sagemaker_own_password_new",
                    **secret,
                )
                self.repeat = gr.Textbox(
                    label="New password again", elem_id="sagemaker_own_password_repeat", **secret
                )
            self.change = gr.Button("Change my password", elem_id="sagemaker_own_password_change")
            self.status = gr.HTML(elem_id="sagemaker_own_password_status")
        self.change.click(
            self.on_change,
            inputs=[self.current, self.new, self.repeat],
            outputs=[self.current, self.new, self.repeat, self.status],
        )

    @property
    def view_outputs(self) -> list[Any]:
        return [self.panel, self.current, self.new, self.repeat, self.status]

    def show(self, client: ApiClient) -> Updates:
        return {self.panel: gr.update(visible=True), self.status: ""}

    def hide(self) -> Updates:
        return {self.panel: gr.update(visible=False), **self._emptied(), self.status: ""}

    def on_change(self, current: str, new: str, repeat: str, request: gr.Request) -> Updates:
        user = self._context.webui_user(request)
        try:
            _check(current, new, repeat)
            client = self._sessions.client(user)
            client.change_password(current, new)
        except (ApiError, UiError) as exc:
            self._sessions.note_failure(user, exc)
            return {**self._emptied(), self.status: failure(exc)}
        return {
            **self._emptied(),
            self.status: success(
                "Your password was changed. This WebUI stays signed in; your other sign-ins "
                "were ended."
            ),
        }

    def _emptied(self) -> Updates:
        return {self.current: "", self.new: "", self.repeat: ""}


def _check(current: str, new: str, repeat: str) -> None:
    """What the tab can tell before asking the server, in words."""
    if not current:
        raise UiError("Enter your current password.")
    if not new:
        raise UiError("Enter the new password.")
    if new != repeat:
        raise UiError("The new password and its repetition differ: type the same one twice.")
    if not PASSWORD_MIN_LENGTH <= len(new) <= PASSWORD_MAX_LENGTH:
        raise UiError(
            f"The new password must have {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters."
        )
