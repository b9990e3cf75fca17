"""The API connection: URL, token and sign-in, and who the WebUI user is signed in as.

The API token goes from the page to the server once, when typed; it is never sent back.
After saving, the field is emptied and says so, and an empty field means "keep the saved
token", so a user can sign in as someone else without pasting the token again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr

from aws_extension.client.api import ApiClient
from aws_extension.client.errors import ApiError
from aws_extension.ui.context import UiContext
from aws_extension.ui.feedback import UiError, escape, failure, notice, permission_words, success
from aws_extension.ui.sessions import SignedOut, UserSessions
from aws_extension.ui.views import SessionView, Updates

TOKEN_PLACEHOLDER = "the API token from the stack's outputs"  # noqa: S105 - words, not a secret
SAVED_TOKEN_PLACEHOLDER = "saved — leave empty to keep"  # noqa: S105 - words


class ConnectionPanel:
    """The connection form; signing in or out also shows or hides every other part."""

    def __init__(
        self, context: UiContext, sessions: UserSessions, views: Sequence[SessionView]
    ) -> None:
        self._context = context
        self._sessions = sessions
        self._views = list(views)

    def build(self) -> None:
        with gr.Column(elem_id="sagemaker_connection"):
            gr.Markdown("### API connection")
            with gr.Row():
                self.api_url = gr.Textbox(
                    label="API URL",
                    max_lines=1,
                    placeholder="https://<id>.execute-api.<region>.amazonaws.com/prod",
                    elem_id="sagemaker_api_url",
                )
                self.api_token = gr.Textbox(
                    label="API Token",
                    type="password",
                    max_lines=1,
                    placeholder=TOKEN_PLACEHOLDER,
                    elem_id="sagemaker_api_token",
                )
            with gr.Row():
                self.username = gr.Textbox(
                    label="Username", max_lines=1, elem_id="sagemaker_username"
                )
                self.password = gr.Textbox(
                    label="Password", type="password", max_lines=1, elem_id="sagemaker_password"
                )
            with gr.Row():
                self.connect = gr.Button(
                    "Test Connection & Update Setting",
                    variant="primary",
                    elem_id="sagemaker_connect",
                )
                self.sign_out = gr.Button("Sign out", visible=False, elem_id="sagemaker_signout")
            self.status = gr.HTML(elem_id="sagemaker_connection_status")

    def wire(self, blocks: gr.Blocks) -> None:
        """Hook the buttons, and the page load that shows who is signed in."""
        outputs = self.outputs
        self.connect.click(
            self.on_connect,
            inputs=[self.api_url, self.api_token, self.username, self.password],
            outputs=outputs,
        )
        self.sign_out.click(self.on_sign_out, inputs=None, outputs=outputs)
        blocks.load(fn=self.on_load, inputs=None, outputs=outputs)

    @property
    def outputs(self) -> list[Any]:
        own = [self.status, self.api_url, self.api_token, self.username, self.password]
        return [*own, self.sign_out, *(c for view in self._views for c in view.view_outputs)]

    # -- handlers ----------------------------------------------------------------------------

    def on_load(self, request: gr.Request) -> Updates:
        """Fill in what is saved (never the token) and resume the user's session silently.

        Only saved values are sent: the answer may arrive after the user started typing, and
        an update of a field's value would wipe what was typed (the token and password
        fields start empty anyway; their placeholder tells whether a token is saved).
        """
        user = self._context.webui_user(request)
        store = self._context.store
        connection = store.connection()
        saved = store.user_session(user)
        updates: Updates = {}
        if connection is not None:
            updates[self.api_url] = connection.api_url
            updates[self.api_token] = gr.update(placeholder=SAVED_TOKEN_PLACEHOLDER)
        if saved is not None:
            updates[self.username] = saved.username
        try:
            client = self._sessions.check(user)
        except SignedOut as exc:
            return {**updates, **self._signed_out(escape(exc))}
        except ApiError as exc:
            return {**updates, **self._signed_out(f"Signed out: {escape(exc)}")}
        return {**updates, **self._signed_in(client)}

    def on_connect(
        self, api_url: str, api_token: str, username: str, password: str, request: gr.Request
    ) -> Updates:
        user = self._context.webui_user(request)
        try:
            client = self._sessions.connect(user, api_url, api_token, username, password)
        except (ApiError, UiError) as exc:
            return {self.status: failure(exc)}
        return {
            self.api_url: client.api_url,
            self.api_token: gr.update(value="", placeholder=SAVED_TOKEN_PLACEHOLDER),
            self.password: "",
            **self._signed_in(client),
        }

    def on_sign_out(self, request: gr.Request) -> Updates:
        user = self._context.webui_user(request)
        try:
            self._sessions.sign_out(user)
        except ApiError as exc:
            return self._signed_out(
                f"Signed out on this WebUI, but the server could not be told: {escape(exc)}"
            )
        return self._signed_out("Signed out.")

    # -- views -------------------------------------------------------------------------------

    def _signed_in(self, client: ApiClient) -> Updates:
        text = success(
            f"Signed in as <b>{escape(client.username or '')}</b> — "
            f"permissions: {escape(permission_words(client.permissions))}"
        )
        updates: Updates = {self.status: text, self.sign_out: gr.update(visible=True)}
        for view in self._views:
            updates.update(view.show(client))
        return updates

    def _signed_out(self, text: str) -> Updates:
        updates: Updates = {self.status: notice(text), self.sign_out: gr.update(visible=False)}
        for view in self._views:
            updates.update(view.hide())
        return updates
