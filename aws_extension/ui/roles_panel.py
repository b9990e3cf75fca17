"""Role Management: roles and the permissions each one grants."""

from __future__ import annotations

from typing import Any

import gradio as gr

from aws_extension.client.api import ApiClient
from aws_extension.contract import PERMISSION_LABELS, PERMISSION_ROLE, PERMISSIONS
from aws_extension.ui import paging
from aws_extension.ui.feedback import escape
from aws_extension.ui.paging import PageState
from aws_extension.ui.records_panel import RecordsPanel
from aws_extension.ui.tables import ROLE_HEADERS, role_rows
from aws_extension.ui.views import Updates


class RolesPanel(RecordsPanel):
    noun = "role"
    plural = "roles"
    title = "Role Management"
    permission = PERMISSION_ROLE
    headers = ROLE_HEADERS

    def list_page(self, client: ApiClient) -> paging.ListPage:
        return client.list_roles

    def rows(self, items: list[dict]) -> list[list[str]]:
        return role_rows(items)

    def build_form(self) -> None:
        self.name = gr.Textbox(
            label="Role name",
            max_lines=1,
            placeholder="letters, digits and _ . @ - (for example: artists)",
            elem_id="sagemaker_role_name",
        )
        self.permissions = gr.CheckboxGroup(
            choices=[(f"{PERMISSION_LABELS[p]} ({p})", p) for p in PERMISSIONS],
            label="Permissions",
            elem_id="sagemaker_role_permissions",
        )
        with gr.Row():
            self.create = gr.Button(
                "Create role", variant="primary", elem_id="sagemaker_role_create"
            )
            self.update = gr.Button("Update permissions", elem_id="sagemaker_role_update")
            self.delete_button()

    def wire_form(self) -> None:
        inputs = [self.name, self.permissions, self.state]
        self.created = self.create.click(
            self.on_create, inputs=inputs, outputs=self.listing_outputs
        )
        self.updated = self.update.click(
            self.on_update, inputs=inputs, outputs=self.listing_outputs
        )

    @property
    def changes(self) -> list[Any]:
        """Events after which the set of roles may differ (users' role choices follow)."""
        return [self.created, self.updated, self.deleted]

    @property
    def form_outputs(self) -> list[Any]:
        return [self.name, self.permissions]

    def fill_form(self, item: dict) -> Updates:
        return {
            self.name: str(item.get("name", "")),
            self.permissions: [p for p in item.get("permissions") or [] if p in PERMISSIONS],
        }

    def delete(self, client: ApiClient, name: str) -> None:
        client.delete_role(name)

    def on_create(
        self, name: str, permissions: list[str], state: PageState, request: gr.Request
    ) -> Updates:
        def create(client: ApiClient) -> str:
            role = client.create_role(self.required(name, "role name"), permissions or [])
            return f"Created role {escape(role.get('name', name))}."

        return self.act(request, state, create)

    def on_update(
        self, name: str, permissions: list[str], state: PageState, request: gr.Request
    ) -> Updates:
        def update(client: ApiClient) -> str:
            role = client.update_role(self.required(name, "role name"), permissions or [])
            return f"Updated the permissions of role {escape(role.get('name', name))}."

        return self.act(request, state, update)
