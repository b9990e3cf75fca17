"""What the Cloud Models table and Inference Endpoint Management have in common: records
shared with roles.

Everyone signed in lists them, and the server shows each only the ones the user may use;
holders of the panel's permission get the form, whose allowed-roles field offers the roles
to pick when the user may list them (`GET /roles`), else a box to type their names.
"""

from __future__ import annotations

import gradio as gr

from aws_extension.client.api import ApiClient
from aws_extension.client.errors import ApiError
from aws_extension.ui.feedback import UiError
from aws_extension.ui.records_panel import RecordsPanel
from aws_extension.ui.role_choices import can_list_roles, role_choices, role_names_typed
from aws_extension.ui.tables import EVERYONE
from aws_extension.ui.views import Updates


class SharedRecordsPanel(RecordsPanel):
    """A records panel whose records name the roles allowed to use them."""

    def can_view(self, client: ApiClient) -> bool:
        return True

    def can_edit(self, client: ApiClient) -> bool:
        return self.permission in client.permissions

    def build_roles(self) -> None:
        """The allowed-roles field: `roles` to pick from, or `roles_text` to type into."""
        self.roles = gr.Dropdown(
            choices=[],
            value=[],
            multiselect=True,
            label=f"Allowed roles (none: {EVERYONE})",
            elem_id=f"{self.form_id}_roles",
        )
        self.roles_text = gr.Textbox(
            label=f"Allowed role names (none: {EVERYONE})",
            max_lines=1,
            placeholder="role names, separated by commas",
            visible=False,
            elem_id=f"{self.form_id}_roles_text",
        )

    def roles_shown(self, client: ApiClient) -> Updates:
        """The allowed-roles field emptied, as a list of the roles or as a box to type in."""
        listable = can_list_roles(client)
        return {
            self.roles_text: gr.update(value="", visible=not listable),
            self.roles: (
                role_choices(client, value=[], visible=True)
                if listable
                else gr.update(choices=[], value=[], visible=False)
            ),
        }

    @staticmethod
    def roles_wanted(client: ApiClient, roles: list[str], roles_text: str) -> list[str]:
        """The roles the field holds, from whichever of its two parts the user saw."""
        return list(roles or []) if can_list_roles(client) else role_names_typed(roles_text)

    def on_roles_changed(self, request: gr.Request) -> Updates:
        """Offer the roles as they are now, after Role Management changed them."""
        user = self._context.webui_user(request)
        try:
            client = self._sessions.client(user)
        except (ApiError, UiError):
            return {}  # no session: the form is hidden, there is nothing to offer
        if not (self.can_edit(client) and can_list_roles(client)):
            return {}
        return {self.roles: role_choices(client)}
