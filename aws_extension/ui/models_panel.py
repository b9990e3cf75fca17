"""The Cloud Models table: every model the user may see, and for model managers the form
that renames one, changes who may use it, or deletes it."""

from __future__ import annotations

from typing import Any

import gradio as gr

from aws_extension.client.api import ApiClient
from aws_extension.contract import (
    CHECKPOINT_STATUSES,
    MODEL_TYPES,
    PERMISSION_CHECKPOINT,
    model_name_problem,
)
from aws_extension.ui import paging
from aws_extension.ui.feedback import UiError, escape
from aws_extension.ui.paging import PageState
from aws_extension.ui.shared_records_panel import SharedRecordsPanel
from aws_extension.ui.tables import EVERYONE, MODEL_HEADERS, model_rows
from aws_extension.ui.views import Updates

#: First choice of the filters: gradio 3.41's dropdowns hold strings only, not None.
ALL_TYPES = "All types"
ANY_STATUS = "Any status"


class ModelsPanel(SharedRecordsPanel):
    noun = "model"
    plural = "models"
    title = "Models in the cloud"
    permission = PERMISSION_CHECKPOINT
    headers = MODEL_HEADERS

    @property
    def form_id(self) -> str:
        return "sagemaker_models"

    @property
    def key_field(self) -> Any:
        return self.model_id

    def list_page(self, client: ApiClient) -> paging.ListPage:
        return client.list_checkpoints

    def rows(self, items: list[dict]) -> list[list[str]]:
        return model_rows(items)

    def build_filters(self) -> None:
        with gr.Row():
            self.type_filter = gr.Dropdown(
                choices=[ALL_TYPES, *MODEL_TYPES],
                value=ALL_TYPES,
                # Labels apart from the upload forms' "Type": A1111 keeps defaults by label.
                label="Type filter",
                elem_id="sagemaker_models_filter_type",
            )
            self.status_filter = gr.Dropdown(
                choices=[ANY_STATUS, *CHECKPOINT_STATUSES],
                value=ANY_STATUS,
                label="Status filter",
                elem_id="sagemaker_models_filter_status",
            )
            self.name_filter = gr.Textbox(
                label="Name contains",
                max_lines=1,
                placeholder="press Enter to filter",
                elem_id="sagemaker_models_filter_name",
            )

    def build_form(self) -> None:
        with gr.Row():
            self.model_id = gr.Textbox(
                label="Model id", interactive=False, max_lines=1, elem_id="sagemaker_models_id"
            )
            self.name = gr.Textbox(
                label="Name",
                max_lines=1,
                placeholder="type a new name and click Rename",
                elem_id="sagemaker_models_name",
            )
        self.build_roles()
        with gr.Row():
            self.rename = gr.Button("Rename", variant="primary", elem_id="sagemaker_models_rename")
            self.update_roles = gr.Button(
                "Update allowed roles", elem_id="sagemaker_models_update_roles"
            )
            self.delete_button()

    def wire_form(self) -> None:
        listing = self.listing_outputs
        self.rename.click(
            self.on_rename, inputs=[self.model_id, self.name, self.state], outputs=listing
        )
        self.update_roles.click(
            self.on_update_roles,
            inputs=[self.model_id, self.roles, self.roles_text, self.state],
            outputs=listing,
        )
        filters = [self.type_filter, self.status_filter, self.name_filter]
        # `input`, not `change`: a filter reset by signing out must not list anything.
        self.type_filter.input(self.on_filter, inputs=filters, outputs=listing)
        self.status_filter.input(self.on_filter, inputs=filters, outputs=listing)
        self.name_filter.submit(self.on_filter, inputs=filters, outputs=listing)

    @property
    def form_outputs(self) -> list[Any]:
        return [self.model_id, self.name, self.roles, self.roles_text]

    @property
    def view_outputs(self) -> list[Any]:
        filters = [self.type_filter, self.status_filter, self.name_filter]
        return [*super().view_outputs, *filters, *self.form_outputs]

    def fill_form(self, item: dict) -> Updates:
        roles = [str(role) for role in item.get("allowed_roles") or []]
        return {
            self.model_id: str(item.get("id", "")),
            self.name: str(item.get("name", "")),
            self.roles: roles,
            self.roles_text: ", ".join(roles),
        }

    def describe(self, key: str, items: list[dict]) -> str:
        item = next((i for i in items if i.get("id") == key), None)
        if item is None:
            return escape(key)
        return f"{escape(item.get('name', key))} ({escape(item.get('type', ''))})"

    def delete(self, client: ApiClient, key: str) -> None:
        client.delete_checkpoint(key)

    def show(self, client: ApiClient) -> Updates:
        """Unfiltered, like the first page `show` loads; the form offers roles to pick when
        the user may list them, else a field to type them."""
        updates = {**super().show(client), **self._cleared()}
        if self.can_edit(client):
            updates.update(self.roles_shown(client))
        return updates

    def hide(self) -> Updates:
        return {**super().hide(), **self._cleared()}

    def _cleared(self) -> Updates:
        return {
            self.type_filter: ALL_TYPES,
            self.status_filter: ANY_STATUS,
            self.name_filter: "",
            self.model_id: "",
            self.name: "",
            self.roles: gr.update(value=[]),
            self.roles_text: "",
        }

    # -- handlers ----------------------------------------------------------------------------

    def on_filter(self, model_type: str, status: str, name: str, request: gr.Request) -> Updates:
        """The first page under the new filters (cursors of the old ones are void)."""
        filters = {}
        if model_type and model_type != ALL_TYPES:
            filters["type"] = model_type
        if status and status != ANY_STATUS:
            filters["status"] = status
        if name and name.strip():
            filters["name"] = name.strip()
        return self.show_page(request, PageState(filters=filters))

    def on_rename(self, model_id: str, name: str, state: PageState, request: gr.Request) -> Updates:
        def rename(client: ApiClient) -> str:
            key = self._picked(model_id)
            new_name = self.required(name, "new name")
            problem = model_name_problem(new_name)
            if problem is not None:
                raise UiError(f"{new_name!r} cannot name a model: {problem}.")
            model = client.update_checkpoint(key, name=new_name)
            return f"Renamed model {escape(key)} to {escape(model.get('name', new_name))}."

        return self.act(request, state, rename)

    def on_update_roles(
        self,
        model_id: str,
        roles: list[str],
        roles_text: str,
        state: PageState,
        request: gr.Request,
    ) -> Updates:
        def update(client: ApiClient) -> str:
            key = self._picked(model_id)
            wanted = self.roles_wanted(client, roles, roles_text)
            model = client.update_checkpoint(key, allowed_roles=wanted)
            allowed = ", ".join(model.get("allowed_roles") or []) or EVERYONE
            return f"Model {escape(model.get('name', key))} may now be used by: {escape(allowed)}."

        return self.act(request, state, update)

    @staticmethod
    def _picked(model_id: str) -> str:
        key = (model_id or "").strip()
        if not key:
            raise UiError("Pick a model in the table first.")
        return key
