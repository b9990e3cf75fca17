"""The Amazon SageMaker tab: one gradio Blocks, built the same for the WebUI and standalone."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from aws_extension.ui.connection_panel import ConnectionPanel
from aws_extension.ui.context import UiContext
from aws_extension.ui.endpoints_panel import EndpointsPanel
from aws_extension.ui.history_panel import HistoryPanel
from aws_extension.ui.model_uploads import ModelUploads
from aws_extension.ui.models_panel import ModelsPanel
from aws_extension.ui.password_panel import PasswordPanel
from aws_extension.ui.roles_panel import RolesPanel
from aws_extension.ui.sessions import UserSessions
from aws_extension.ui.txt2img_panel import Txt2ImgPanel
from aws_extension.ui.users_panel import UsersPanel
from aws_extension.ui.views import SignInHint


def build_tab(context: UiContext) -> gr.Blocks:
    """The tab's content; the host renders it (A1111 inside its own tab strip).

    A1111 gives the tab the DOM id `tab_sagemaker_interface` and the Blocks none, so the
    content sits in a column with the id `sagemaker_interface` that style.css scopes to.
    """
    sessions = UserSessions(context)
    with gr.Blocks(analytics_enabled=False) as blocks, gr.Column(elem_id="sagemaker_interface"):
        build_panels(context, sessions, blocks)
    return blocks


@dataclass(frozen=True)
class TabPanels:
    """The parts of the tab, for whoever wires more to them (and for tests): the connection,
    then the views it shows and hides, in the order `build_panels` lists them."""

    connection: ConnectionPanel
    password: PasswordPanel
    roles: RolesPanel
    users: UsersPanel
    hint: SignInHint
    uploads: ModelUploads
    models: ModelsPanel
    endpoints_hint: SignInHint
    endpoints: EndpointsPanel
    txt2img: Txt2ImgPanel
    history: HistoryPanel


def build_panels(context: UiContext, sessions: UserSessions, blocks: gr.Blocks) -> TabPanels:
    """The sub-tabs "API and User Settings", "Cloud Models Management", "Inference Endpoint
    Management" and "txt2img on SageMaker", wired together.

    Every part follows the sign-in of the first sub-tab, so the connection is wired once
    all parts exist: gradio needs every component an event changes when it is wired.
    """
    password = PasswordPanel(context, sessions)
    roles = RolesPanel(context, sessions)
    users = UsersPanel(context, sessions)
    hint = SignInHint(
        "sagemaker_models_sign_in",
        "Sign in on the API and User Settings tab to see and upload models.",
    )
    uploads = ModelUploads(context, sessions)
    models = ModelsPanel(context, sessions)
    endpoints_hint = SignInHint(
        "sagemaker_endpoints_sign_in",
        "Sign in on the API and User Settings tab to see and deploy endpoints.",
    )
    endpoints = EndpointsPanel(context, sessions)
    txt2img = Txt2ImgPanel(context, sessions)
    history = HistoryPanel(context, sessions)
    views = [
        password,
        roles,
        users,
        hint,
        uploads,
        models,
        endpoints_hint,
        endpoints,
        txt2img,
        history,
    ]
    connection = ConnectionPanel(context, sessions, views)
    with gr.Tabs(elem_id="sagemaker_tabs"):
        with gr.Tab("API and User Settings", elem_id="sagemaker_settings_tab"):
            connection.build()
            password.build()
            roles.build()
            users.build()
        with gr.Tab("Cloud Models Management", elem_id="sagemaker_models_tab"):
            hint.build()
            uploads.build()
            models.build()
        with gr.Tab("Inference Endpoint Management", elem_id="sagemaker_endpoints_tab"):
            endpoints_hint.build()
            endpoints.build()
        with gr.Tab("txt2img on SageMaker", elem_id="sagemaker_txt2img_tab"):
            txt2img.build()
            history.build()
    connection.wire(blocks)
    for change in roles.changes:
        change.then(users.on_roles_changed, inputs=None, outputs=[users.roles]).then(
            models.on_roles_changed, inputs=None, outputs=[models.roles]
        ).then(endpoints.on_roles_changed, inputs=None, outputs=[endpoints.roles])
    picks = txt2img.list_inputs
    for change in uploads.changes:
        change.then(models.on_refresh, inputs=[models.state], outputs=models.listing_outputs).then(
            txt2img.on_models_changed, inputs=picks, outputs=txt2img.list_outputs
        )
    models.deleted.then(txt2img.on_models_changed, inputs=picks, outputs=txt2img.list_outputs)
    for change in endpoints.changes:
        change.then(
            txt2img.on_endpoints_changed, inputs=[txt2img.endpoint], outputs=[txt2img.endpoint]
        )
    txt2img.generated.then(
        history.on_refresh, inputs=[history.state], outputs=history.listing_outputs
    )
    return TabPanels(connection, *views)
