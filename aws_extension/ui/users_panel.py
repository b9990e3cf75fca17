"""User Management: middleware users, their roles and passwords."""

from __future__ import annotations

from typing import Any

import gradio as gr

from aws_extension.client.api import ApiClient
from aws_extension.client.errors import ApiError
from aws_extension.contract import PERMISSION_USER
from aws_extension.ui import paging
from aws_extension.ui.feedback import UiError, escape
from aws_extension.ui.paging import PageState
from aws_extension.ui.records_panel import RecordsPanel
from aws_extension.ui.role_choices import role_choices
from aws_extension.ui.tables import USER_HEADERS, user_rows
from aws_extension.ui.views import Updates


class UsersPanel(RecordsPanel):
    noun = "user"
    plural = "users"
    title = "User Management"
    permission = PERMISSION_USER
    headers = USER_HEADERS

    def list_page(self, client: ApiClient) -> paging.ListPage:
        return client.list_users

    def rows(self, items: list[dict]) -> list[list[str]]:
        return user_rows(items)

    def build_form(self) -> None:
        with gr.Row():
            self.name = gr.Textbox(label="Username", max_lines=1, elem_id="sagemaker_user_name")
            self.password = gr.Textbox(
                label="Password",
                type="password",
                max_lines=1,
                placeholder="for a new user, or to set a new password",
                elem_id="sagemaker_user_password",
            )
        self.roles = gr.Dropdown(
            choices=[],
            value=[],
            multiselect=True,
            label="Roles",
            elem_id="sagemaker_user_roles",
        )
        with gr.Row():
            self.create = gr.Button(
                "Create user", variant="primary", elem_id="sagemaker_user_create"
            )
            self.update_roles = gr.Button("Update roles", elem_id="sagemaker_user_update_roles")
            self.set_password = gr.Button("Set password", elem_id="sagemaker_user_set_password")
            self.delete_button()

    def wire_form(self) -> None:
        listing = self.listing_outputs
        self.create.click(
            self.on_create,
            inputs=[self.name, self.password, self.roles, self.state],
            outputs=[*listing, self.password],
        )
        self.update_roles.click(
            self.on_update_roles, inputs=[self.name, self.roles, self.state], outputs=listing
        )
        self.set_password.click(
            self.on_set_password,
            inputs=[self.name, self.password, self.state],
            outputs=[*listing, self.password],
        )

    @property
    def form_outputs(self) -> list[Any]:
        return [self.name, self.password, self.roles]

    @property
    def view_outputs(self) -> list[Any]:
        return [*super().view_outputs, self.roles]

    def fill_form(self, item: dict) -> Updates:
        return {
            self.name: str(item.get("username", "")),
            self.password: "",
            self.roles: list(item.get("roles") or []),
        }

    def delete(self, client: ApiClient, name: str) -> None:
        client.delete_user(name)

    def show(self, client: ApiClient) -> Updates:
        updates = super().show(client)
        if self.permission in client.permissions:
            updates[self.roles] = role_choices(client)
        return updates

    def hide(self) -> Updates:
        return {**super().hide(), self.roles: gr.update(choices=[], value=[])}

    def on_roles_changed(self, request: gr.Request) -> Updates:
        """Offer the roles as they are now, after Role Management changed them."""
        user = self._context.webui_user(request)
        try:
            client = self._sessions.client(user)
        except (ApiError, UiError):
            return {}  # no session: the panel is hidden, there is nothing to offer
        if self.permission not in client.permissions:
            return {}
        return {self.roles: role_choices(client)}

    def on_create(
        self, name: str, password: str, roles: list[str], state: PageState, request: gr.Request
    ) -> Updates:
        def create(client: ApiClient) -> str:
            username = self.required(name, "username")
            if not password:
                raise UiError("Enter the password of the new user.")
            user = client.create_user(username, password, roles or [])
            return f"Created user {escape(user.get('username', username))}."

        # The password field is emptied whatever happened: a secret does not stay on the page.
        return {**self.act(request, state, create), self.password: ""}

    def on_update_roles(
        self, name: str, roles: list[str], state: PageState, request: gr.Request
    ) -> Updates:
        def update(client: ApiClient) -> str:
            user = client.update_user(self.required(name, "username"), roles=roles or [])
            return f"Updated the roles of user {escape(user.get('username', name))}."

        return self.act(request, state, update)

    def on_set_password(
        self, name: str, password: str, state: PageState, request: gr.Request
    ) -> Updates:
        def set_password(client: ApiClient) -> str:
            username = self.required(name, "username")
            if not password:
                raise UiError("Enter the new password.")
            user = client.update_user(username, password=password)
            return f"Set a new password for user {escape(user.get('username', username))}."

        return {**self.act(request, state, set_password), self.password: ""}
