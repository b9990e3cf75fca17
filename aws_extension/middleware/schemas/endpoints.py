"""Bodies of the /endpoints routes.

Each field's own range is checked here (422 `validation_error`); the rules that relate
fields or depend on the deployment (instance types offered, min <= initial <= max, scale to
zero only for async, the local `webui` fields) are the service's (400 `invalid`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from aws_extension.contract import ENDPOINT_ENGINES, ENDPOINT_STATUSES, ENDPOINT_TYPES
from aws_extension.middleware.schemas.common import Name, RequestBody

#: Most instances one endpoint may ask for; SageMaker's account quotas are far lower.
MAX_INSTANCES = 100
#: SageMaker's MaxConcurrentInvocationsPerInstance is 1-1000; a GPU runs a few jobs at most.
MAX_CONCURRENCY = 16
#: Enough roles to share an endpoint with; bounds the work per request.
MAX_ALLOWED_ROLES = 50

EndpointType = Literal[ENDPOINT_TYPES]  # type: ignore[valid-type]
Engine = Literal[ENDPOINT_ENGINES]  # type: ignore[valid-type]
Status = Literal[ENDPOINT_STATUSES]  # type: ignore[valid-type]


class AutoscalingIn(RequestBody):
    min: int = Field(ge=0, le=MAX_INSTANCES, description="0 lets an async endpoint scale to zero.")
    max: int = Field(ge=1, le=MAX_INSTANCES)


class EndpointCreate(RequestBody):
    name: Name | None = Field(
        default=None, description="Unique; default `sd-<type>-<6 hex>`.", examples=["sd-async-1"]
    )
    type: EndpointType = Field(
        default="async",
        description="`async`: queued jobs, may scale to zero; `realtime`: one call per job.",
    )
    instance_type: str = Field(
        min_length=1,
        max_length=64,
        description="One of GET /endpoints/instance-types.",
        examples=["ml.g5.xlarge"],
    )
    initial_instance_count: int = Field(default=1, ge=1, le=MAX_INSTANCES)
    autoscaling: AutoscalingIn | None = Field(
        default=None,
        description="Instance count bounds; min <= initial_instance_count <= max. Null: fixed.",
    )
    concurrency_per_instance: int = Field(
        default=1, ge=1, le=MAX_CONCURRENCY, description="Jobs one instance runs at once."
    )
    allowed_roles: list[Name] = Field(
        default_factory=list,
        max_length=MAX_ALLOWED_ROLES,
        description="Roles whose holders may use the endpoint; empty: every signed-in user.",
    )
    engine: Engine = Field(
        default="diffusers",
        description="`diffusers` (SD 1.x/SDXL single files) or `webui` (an AUTOMATIC1111).",
    )
    webui_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Instance type `local` with engine `webui` only: an A1111 started with --api.",
        examples=["http://127.0.0.1:7860"],
    )
    webui_models_dir: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="With webui_url: that A1111's models folder on the server's machine.",
    )


class AutoscalingOut(BaseModel):
    min: int
    max: int


class EndpointOut(BaseModel):
    name: str
    type: EndpointType
    instance_type: str
    initial_instance_count: int
    autoscaling: AutoscalingOut | None
    concurrency_per_instance: int
    engine: Engine
    webui_url: str | None = Field(description="Local `webui` endpoints only.")
    allowed_roles: list[str]
    status: Status
    current_instance_count: int | None = Field(description="Instances running now.")
    desired_instance_count: int | None = Field(description="Instances asked for now.")
    failure_reason: str | None = Field(description="Why it failed, when it did.")
    created_by: str
    created_at: datetime
    updated_at: datetime


class InstanceTypesOut(BaseModel):
    items: list[str] = Field(description="The instance types this deployment offers, in order.")
