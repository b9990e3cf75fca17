"""The Amazon SageMaker tab: one gradio Blocks, built the same for the WebUI and standalone."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from aws_extension.ui.connection_panel import ConnectionPanel
from aws_extension.ui.context import UiContext
from aws_extension.ui.roles_panel import RolesPanel
from aws_extension.ui.sessions import UserSessions
from aws_extension.ui.users_panel import UsersPanel


def build_tab(context: UiContext) -> gr.Blocks:
    """The tab's content; the host renders it (A1111 inside its own tab strip).

    A1111 gives the tab the DOM id `tab_sagemaker_interface` and the Blocks none, so the
    content sits in a column with the id `sagemaker_interface` that style.css scopes to.
    """
    sessions = UserSessions(context)
    with (
        gr.Blocks(analytics_enabled=False) as blocks,
        gr.Column(elem_id="sagemaker_interface"),
        gr.Tabs(elem_id="sagemaker_tabs"),
        gr.Tab("API and User Settings", elem_id="sagemaker_settings_tab"),
    ):
        build_settings(context, sessions, blocks)
    return blocks


@dataclass(frozen=True)
class SettingsPanels:
    """The parts of the "API and User Settings" sub-tab, for whoever wires more to them."""

    connection: ConnectionPanel
    roles: RolesPanel
    users: UsersPanel


def build_settings(context: UiContext, sessions: UserSessions, blocks: gr.Blocks) -> SettingsPanels:
    """The "API and User Settings" sub-tab: connection, Role Management, User Management."""
    roles = RolesPanel(context, sessions)
    users = UsersPanel(context, sessions)
    connection = ConnectionPanel(context, sessions, [roles, users])
    connection.build()
    roles.build()
    users.build()
    connection.wire(blocks)
    for change in roles.changes:
        change.then(users.on_roles_changed, inputs=None, outputs=[users.roles])
    return SettingsPanels(connection, roles, users)
