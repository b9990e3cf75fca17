"""The Inference Endpoint Management sub-tab: the endpoints the user may use, and for
endpoint managers (`sagemaker_endpoint:all`) the form that deploys one and the two-step
delete.

Deploying returns at once with the endpoint `Creating`: SageMaker takes minutes to start an
instance (the local stack seconds), so the table's Refresh follows it to `InService`.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aws_extension.client.api import ApiClient
from aws_extension.client.errors import ApiError
from aws_extension.contract import (
    ENDPOINT_ENGINES,
    ENDPOINT_FAILED,
    ENDPOINT_TYPES,
    NAME_RE,
    PERMISSION_ENDPOINT,
)
from aws_extension.ui import paging
from aws_extension.ui.feedback import UiError, escape, failure
from aws_extension.ui.form_values import whole_number
from aws_extension.ui.shared_records_panel import SharedRecordsPanel
from aws_extension.ui.tables import EVERYONE, when
from aws_extension.ui.views import Updates

ENDPOINT_HEADERS = [
    "Name",
    "Type",
    "Instance type",
    "Engine",
    "Status",
    "Instances (current / desired)",
    "Autoscaling",
    "Allowed roles",
    "Created by",
    "Created at",
]
#: What the form starts with: SageMaker's defaults, as the server applies them.
DEFAULT_TYPE = ENDPOINT_TYPES[0]
DEFAULT_ENGINE = ENDPOINT_ENGINES[0]
MAX_CONCURRENCY = 16


def endpoint_rows(items: list[dict]) -> list[list[str]]:
    return [
        [
            str(item.get("name", "")),
            str(item.get("type", "")),
            str(item.get("instance_type", "")),
            str(item.get("engine", "")),
            endpoint_status(item),
            f"{_count(item.get('current_instance_count'))} / "
            f"{_count(item.get('desired_instance_count'))}",
            autoscaling_words(item.get("autoscaling")),
            ", ".join(str(r) for r in item.get("allowed_roles") or []) or EVERYONE,
            str(item.get("created_by") or ""),
            when(item.get("created_at")),
        ]
        for item in items
    ]


def endpoint_status(item: dict) -> str:
    status = str(item.get("status", ""))
    reason = item.get("failure_reason")
    return f"{status}: {reason}" if status == ENDPOINT_FAILED and reason else status


def autoscaling_words(autoscaling: object) -> str:
    if not isinstance(autoscaling, dict):
        return "off"
    return f"{_count(autoscaling.get('min'))} to {_count(autoscaling.get('max'))}"


def _count(value: object) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "-"


class EndpointsPanel(SharedRecordsPanel):
    noun = "endpoint"
    plural = "endpoints"
    title = "Inference endpoints"
    permission = PERMISSION_ENDPOINT
    headers = ENDPOINT_HEADERS

    @property
    def form_id(self) -> str:
        return "sagemaker_endpoints"

    def list_page(self, client: ApiClient) -> paging.ListPage:
        return client.list_endpoints

    def rows(self, items: list[dict]) -> list[list[str]]:
        return endpoint_rows(items)

    def build_form(self) -> None:
        with gr.Row(elem_classes="sagemaker-pager"):
            # `name` is what Delete deletes: the row picked in the table.
            self.name = gr.Textbox(
                label="Picked endpoint",
                interactive=False,
                max_lines=1,
                elem_id="sagemaker_endpoints_picked",
            )
            self.delete_button()
        gr.Markdown("#### Deploy a new endpoint")
        with gr.Row():
            self.new_name = gr.Textbox(
                label="Name (optional)",
                max_lines=1,
                placeholder="empty: sd-<type>-<6 hex digits>",
                elem_id="sagemaker_endpoints_name",
            )
            self.endpoint_type = gr.Radio(
                choices=list(ENDPOINT_TYPES),
                value=DEFAULT_TYPE,
                label="Type (async queues jobs and may scale to zero)",
                elem_id="sagemaker_endpoints_type",
            )
            self.engine = gr.Radio(
                choices=list(ENDPOINT_ENGINES),
                value=DEFAULT_ENGINE,
                label="Engine",
                elem_id="sagemaker_endpoints_engine",
            )
        with gr.Row():
            self.instance_type = gr.Dropdown(
                choices=[], label="Instance type", elem_id="sagemaker_endpoints_instance_type"
            )
            self.count = gr.Number(
                value=1,
                precision=0,
                label="Initial instance count",
                elem_id="sagemaker_endpoints_count",
            )
            self.concurrency = gr.Slider(
                minimum=1,
                maximum=MAX_CONCURRENCY,
                value=1,
                step=1,
                label="Concurrent jobs per instance",
                elem_id="sagemaker_endpoints_concurrency",
            )
        with gr.Row():
            self.autoscaling = gr.Checkbox(
                value=False, label="Autoscaling", elem_id="sagemaker_endpoints_autoscaling"
            )
            self.min_count = gr.Number(
                value=0,
                precision=0,
                label="Min instances (async: 0 scales to zero)",
                elem_id="sagemaker_endpoints_min",
            )
            self.max_count = gr.Number(
                value=1, precision=0, label="Max instances", elem_id="sagemaker_endpoints_max"
            )
        self.build_roles()
        with (
            gr.Accordion(
                "This machine as an endpoint (instance type local, engine webui)", open=False
            ),
            gr.Row(),
        ):
            self.webui_url = gr.Textbox(
                label="URL of an A1111 started with --api",
                max_lines=1,
                placeholder="http://127.0.0.1:7860",
                elem_id="sagemaker_endpoints_webui_url",
            )
            self.webui_models_dir = gr.Textbox(
                label="Its models folder",
                max_lines=1,
                placeholder="/path/to/stable-diffusion-webui/models",
                elem_id="sagemaker_endpoints_webui_models_dir",
            )
        self.deploy = gr.Button(
            "Deploy endpoint", variant="primary", elem_id="sagemaker_endpoints_deploy"
        )

    @property
    def deploy_inputs(self) -> list[Any]:
        return [
            self.new_name,
            self.endpoint_type,
            self.engine,
            self.instance_type,
            self.count,
            self.concurrency,
            self.autoscaling,
            self.min_count,
            self.max_count,
            self.roles,
            self.roles_text,
            self.webui_url,
            self.webui_models_dir,
        ]

    def wire_form(self) -> None:
        self.deployed = self.deploy.click(
            self.on_deploy,
            inputs=[*self.deploy_inputs, self.state],
            outputs=[*self.listing_outputs, self.new_name],
        )
        #: Events after which the endpoints differ (the txt2img panel lists them again).
        self.changes = [self.deployed, self.deleted]

    @property
    def form_outputs(self) -> list[Any]:
        return [self.name]

    @property
    def view_outputs(self) -> list[Any]:
        return [*super().view_outputs, *self.deploy_inputs, self.name]

    def fill_form(self, item: dict) -> Updates:
        return {self.name: str(item.get("name", ""))}

    def describe(self, key: str, items: list[dict]) -> str:
        item = next((i for i in items if i.get("name") == key), None)
        if item is None:
            return escape(key)
        kind, instance = item.get("type", ""), item.get("instance_type", "")
        return f"{escape(key)} ({escape(kind)}, {escape(instance)})"

    def delete(self, client: ApiClient, key: str) -> None:
        client.delete_endpoint(key)

    def show(self, client: ApiClient) -> Updates:
        """The table for everyone; for endpoint managers the form, with the instance types
        the deployment offers and the roles to pick (or a field to type them)."""
        updates = {**super().show(client), **self._cleared()}
        if not self.can_edit(client):
            return updates
        try:
            types = client.instance_types()
        except ApiError as exc:
            types = []
            updates[self.status] = failure(exc)
        updates[self.instance_type] = gr.update(choices=types, value=types[0] if types else None)
        updates.update(self.roles_shown(client))
        return updates

    def hide(self) -> Updates:
        return {
            **super().hide(),
            **self._cleared(),
            self.instance_type: gr.update(choices=[], value=None),
        }

    def _cleared(self) -> Updates:
        return {
            self.name: "",
            self.new_name: "",
            self.endpoint_type: DEFAULT_TYPE,
            self.engine: DEFAULT_ENGINE,
            self.count: 1,
            self.concurrency: 1,
            self.autoscaling: False,
            self.min_count: 0,
            self.max_count: 1,
            self.roles: gr.update(value=[]),
            self.roles_text: "",
            self.webui_url: "",
            self.webui_models_dir: "",
        }

    # -- handlers ----------------------------------------------------------------------------

    def on_deploy(
        self,
        name: str,
        endpoint_type: str,
        engine: str,
        instance_type: str,
        count: float | None,
        concurrency: float | None,
        autoscaling: bool,
        min_count: float | None,
        max_count: float | None,
        roles: list[str],
        roles_text: str,
        webui_url: str,
        webui_models_dir: str,
        state: paging.PageState,
        request: gr.Request,
    ) -> Updates:
        """Deploy from the form; the name field is emptied once the server took it."""
        deployed: list[dict] = []

        def deploy(client: ApiClient) -> str:
            spec: dict[str, Any] = {
                "name": _endpoint_name(name),
                "type": endpoint_type or DEFAULT_TYPE,
                "engine": engine or DEFAULT_ENGINE,
                "instance_type": self.required(instance_type, "instance type"),
                "initial_instance_count": whole_number(count, "initial instance count"),
                "concurrency_per_instance": whole_number(concurrency, "concurrent jobs"),
                "allowed_roles": self.roles_wanted(client, roles, roles_text),
                "webui_url": (webui_url or "").strip() or None,
                "webui_models_dir": (webui_models_dir or "").strip() or None,
            }
            if autoscaling:
                spec["autoscaling"] = {
                    "min": whole_number(min_count, "minimum instance count"),
                    "max": whole_number(max_count, "maximum instance count"),
                }
            endpoint = client.create_endpoint(**spec)
            deployed.append(endpoint)
            return (
                f"Deploying endpoint <b>{escape(endpoint.get('name', ''))}</b> "
                f"({escape(endpoint.get('status', ''))}): click Refresh to follow it."
            )

        updates = self.act(request, state, deploy)
        if deployed:
            updates[self.new_name] = ""
        return updates


def _endpoint_name(typed: str) -> str | None:
    """The name typed, checked; None lets the server make one up."""
    name = (typed or "").strip()
    if not name:
        return None
    if not NAME_RE.match(name):
        raise UiError(
            f"{name!r} cannot name an endpoint: use up to 64 letters, digits and . _ @ -, "
            "starting with a letter or digit."
        )
    return name
