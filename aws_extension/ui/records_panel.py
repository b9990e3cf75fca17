"""What Role Management, User Management and the Cloud Models table have in common.

Each shows one kind of record as a paged table, changes records through a form, deletes in
two steps (Delete, then Confirm delete) and reports in a status line. What a user may not do
is hidden, as a courtesy: the server enforces permissions either way. Roles and users are
seen only by those who manage them; models are listed to everyone signed in, while only
model managers get the form.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import gradio as gr

from aws_extension.client.api import ApiClient
from aws_extension.client.errors import ApiError
from aws_extension.ui import paging
from aws_extension.ui.context import UiContext
from aws_extension.ui.feedback import UiError, escape, failure, success
from aws_extension.ui.paging import PageState
from aws_extension.ui.sessions import UserSessions
from aws_extension.ui.tables import table
from aws_extension.ui.views import Updates


class RecordsPanel(ABC):
    """A panel of one record kind; subclasses supply the form and the API calls."""

    noun: str  # "role": in messages, and in the form's elem_ids unless `form_id` says other
    plural: str  # "roles": sagemaker_roles_table, sagemaker_roles_panel, ...
    title: str
    permission: str
    headers: list[str]

    def __init__(self, context: UiContext, sessions: UserSessions) -> None:
        self._context = context
        self._sessions = sessions

    # -- supplied by each panel --------------------------------------------------------------

    @abstractmethod
    def list_page(self, client: ApiClient) -> paging.ListPage:
        """The client method that lists this kind of record."""

    @abstractmethod
    def rows(self, items: list[dict]) -> list[list[str]]:
        """Table rows of one page of records."""

    @abstractmethod
    def build_form(self) -> None:
        """Create the form; it must call `delete_button()` where Delete belongs."""

    @abstractmethod
    def wire_form(self) -> None:
        """Hook the form's buttons to their handlers."""

    @abstractmethod
    def fill_form(self, item: dict) -> Updates:
        """Put a record picked in the table into the form, ready to change it."""

    @abstractmethod
    def delete(self, client: ApiClient, key: str) -> None:
        """Delete the record `key` names (the value of `key_field`)."""

    # -- what panels may change --------------------------------------------------------------

    @property
    def form_id(self) -> str:
        """Prefix of the form's elem_ids (`sagemaker_role` -> sagemaker_role_delete)."""
        return f"sagemaker_{self.noun}"

    @property
    def key_field(self) -> Any:
        """The form field naming the record to delete; the name field unless overridden."""
        return self.name

    def can_view(self, client: ApiClient) -> bool:
        return self.permission in client.permissions

    def can_edit(self, client: ApiClient) -> bool:
        return self.can_view(client)

    def build_filters(self) -> None:  # noqa: B027 - an optional hook, empty on purpose
        """Filters above the table; most panels have none."""

    def describe(self, key: str, items: list[dict]) -> str:
        """The record `key` names, as HTML for the delete question and its answer."""
        return escape(key)

    # -- building ----------------------------------------------------------------------------

    def build(self) -> None:
        prefix = f"sagemaker_{self.plural}"
        with gr.Column(visible=False, elem_id=f"{prefix}_panel") as self.panel:
            gr.Markdown(f"### {self.title}")
            self.build_filters()
            self.table = gr.Dataframe(
                value=table(self.headers, []),
                headers=self.headers,
                interactive=False,
                wrap=True,
                elem_id=f"{prefix}_table",
            )
            with gr.Row(elem_classes="sagemaker-pager"):
                pager = {"size": "sm", "scale": 0, "min_width": 130}
                self.previous = gr.Button(
                    "Previous Page", interactive=False, elem_id=f"{prefix}_previous", **pager
                )
                self.next = gr.Button(
                    "Next Page", interactive=False, elem_id=f"{prefix}_next", **pager
                )
                self.refresh = gr.Button("Refresh", elem_id=f"{prefix}_refresh", **pager)
                self.page_label = gr.HTML("Page 1", elem_id=f"{prefix}_page")
            self.state = gr.State(PageState())
            self.items = gr.State([])
            with gr.Column(elem_id=f"{prefix}_editor") as self.editor:
                gr.Markdown(
                    f"Click a row to load the {self.noun} into the form below.",
                    elem_classes="sagemaker-hint",
                )
                self.build_form()
                with gr.Row(visible=False, elem_id=f"{self.form_id}_delete_confirm_row") as (
                    self.confirm_row
                ):
                    self.confirm_text = gr.HTML(elem_id=f"{self.form_id}_delete_question")
                    self.confirm = gr.Button(
                        "Confirm delete", variant="stop", elem_id=f"{self.form_id}_delete_confirm"
                    )
                    self.cancel = gr.Button("Cancel", elem_id=f"{self.form_id}_delete_cancel")
            self.pending = gr.State("")
            self.status = gr.HTML(elem_id=f"{prefix}_status")
        self._wire()
        self.wire_form()

    def delete_button(self) -> None:
        """The first of the two delete steps; the form places it among its buttons."""
        self.delete_start = gr.Button(
            f"Delete {self.noun}", variant="stop", elem_id=f"{self.form_id}_delete"
        )

    def _wire(self) -> None:
        listing = self.listing_outputs
        self.previous.click(self.on_previous, inputs=[self.state], outputs=listing)
        self.next.click(self.on_next, inputs=[self.state], outputs=listing)
        self.refresh.click(self.on_refresh, inputs=[self.state], outputs=listing)
        self.table.select(self.on_select, inputs=[self.items], outputs=self.form_outputs)
        confirm_outputs = [self.pending, self.confirm_row, self.confirm_text, self.status]
        self.delete_start.click(
            self.on_delete, inputs=[self.key_field, self.items], outputs=confirm_outputs
        )
        self.cancel.click(self.on_cancel, inputs=None, outputs=confirm_outputs)
        self.deleted = self.confirm.click(
            self.on_confirm_delete,
            inputs=[self.pending, self.state, self.items],
            outputs=[*listing, self.pending, self.confirm_row],
        )

    # -- what the connection panel drives ----------------------------------------------------

    @property
    def listing_outputs(self) -> list[Any]:
        return [
            self.table,
            self.state,
            self.items,
            self.previous,
            self.next,
            self.page_label,
            self.status,
        ]

    @property
    def form_outputs(self) -> list[Any]:
        """Components `fill_form` may change."""
        return [self.name]

    @property
    def view_outputs(self) -> list[Any]:
        return [self.panel, self.editor, self.confirm_row, self.pending, *self.listing_outputs]

    def show(self, client: ApiClient) -> Updates:
        """The panel for a freshly signed-in user: hidden without the permission."""
        if not self.can_view(client):
            return self.hide()
        updates: Updates = {
            self.panel: gr.update(visible=True),
            self.editor: gr.update(visible=self.can_edit(client)),
            self.status: "",
        }
        try:
            updates.update(self._load(client, PageState()))
        except ApiError as exc:
            updates[self.status] = failure(exc)
        return updates

    def hide(self) -> Updates:
        """Hidden and emptied, so a signed-out page keeps no records on screen."""
        empty = PageState()
        return {
            self.panel: gr.update(visible=False),
            self.confirm_row: gr.update(visible=False),
            self.pending: "",
            self.table: table(self.headers, []),
            self.state: empty,
            self.items: [],
            self.previous: gr.update(interactive=False),
            self.next: gr.update(interactive=False),
            self.page_label: "Page 1",
            self.status: "",
        }

    # -- handlers ----------------------------------------------------------------------------

    def on_previous(self, state: PageState, request: gr.Request) -> Updates:
        return self.show_page(request, state.back())

    def on_next(self, state: PageState, request: gr.Request) -> Updates:
        return self.show_page(request, state.forward())

    def on_refresh(self, state: PageState, request: gr.Request) -> Updates:
        return self.show_page(request, state)

    def on_select(self, items: list[dict], evt: gr.SelectData) -> Updates:
        index = evt.index
        row = index[0] if isinstance(index, (list, tuple)) else index
        if not isinstance(row, int) or not 0 <= row < len(items):
            return {}
        return self.fill_form(items[row])

    def on_delete(self, key: str, items: list[dict]) -> Updates:
        key = (key or "").strip()
        if not key:
            return {self.status: failure(UiError(f"Enter or pick the {self.noun} to delete."))}
        return {
            self.pending: key,
            self.confirm_row: gr.update(visible=True),
            self.confirm_text: (
                f"Delete {self.noun} <b>{self.describe(key, items)}</b>? This cannot be undone."
            ),
            self.status: "",
        }

    def on_cancel(self) -> Updates:
        return {self.pending: "", self.confirm_row: gr.update(visible=False), self.status: ""}

    def on_confirm_delete(
        self, key: str, state: PageState, items: list[dict], request: gr.Request
    ) -> Updates:
        def delete(client: ApiClient) -> str:
            self.delete(client, key)
            return f"Deleted {self.noun} {self.describe(key, items)}."

        updates = self.act(request, state, delete)
        updates.update({self.pending: "", self.confirm_row: gr.update(visible=False)})
        return updates

    # -- plumbing for the panels' handlers ---------------------------------------------------

    def act(
        self, request: gr.Request, state: PageState, change: Callable[[ApiClient], str]
    ) -> Updates:
        """Run one change for the request's user, then show the current page again.

        `change` returns what to report on success (HTML, names escaped). Failures of the API or
        of the input become the status line; nothing is raised to gradio.
        """
        user = self._context.webui_user(request)
        try:
            client = self._sessions.client(user)
            message = change(client)
        except (ApiError, UiError) as exc:
            return {self.status: self._failure(user, exc)}
        try:
            updates = self._load(client, state)
        except ApiError as exc:
            return {self.status: f"{success(message)} {self._failure(user, exc)}"}
        updates[self.status] = success(message)
        return updates

    def required(self, value: str, what: str) -> str:
        value = (value or "").strip()
        if not value:
            raise UiError(f"Enter the {what}.")
        return value

    def show_page(self, request: gr.Request, state: PageState) -> Updates:
        """The page `state` points at, for the request's user; failures in the status line."""
        user = self._context.webui_user(request)
        try:
            updates = self._load(self._sessions.client(user), state)
        except (ApiError, UiError) as exc:
            return {self.status: self._failure(user, exc)}
        updates[self.status] = ""
        return updates

    def _load(self, client: ApiClient, state: PageState) -> Updates:
        page, state = paging.load(self.list_page(client), state)
        return {
            self.table: table(self.headers, self.rows(page.items)),
            self.state: state,
            self.items: page.items,
            self.previous: gr.update(interactive=state.has_previous),
            self.next: gr.update(interactive=state.has_next),
            self.page_label: f"Page {state.number}",
        }

    def _failure(self, user: str, exc: Exception) -> str:
        self._sessions.note_failure(user, exc)
        return failure(exc)
