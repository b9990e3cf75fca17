from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status

from aws_extension.contract import NAME_PATTERN, PERMISSION_ENDPOINT
from aws_extension.middleware.dependencies import Caller, PageQuery, ServicesDep, require
from aws_extension.middleware.errors import Unavailable
from aws_extension.middleware.schemas.common import Page, Problem, problems
from aws_extension.middleware.schemas.endpoints import (
    EndpointCreate,
    EndpointOut,
    InstanceTypesOut,
)
from aws_extension.middleware.services.endpoint_store import Endpoint
from aws_extension.middleware.services.endpoints import EndpointService
from aws_extension.middleware.services.entities import Listing, Principal

router = APIRouter(prefix="/endpoints", tags=["endpoints"])

EndpointName = Annotated[str, Path(pattern=NAME_PATTERN, description="The endpoint's name.")]
Manager = Annotated[Principal, Depends(require(PERMISSION_ENDPOINT))]


def endpoint_service(services: ServicesDep) -> EndpointService:
    if services.endpoints is None:
        raise Unavailable("This deployment has no compute configured for endpoints.")
    return services.endpoints


# Declared after the caller in every route, so 401/403 come before 503.
Endpoints = Annotated[EndpointService, Depends(endpoint_service)]

_NO_COMPUTE: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "No compute configured (`unavailable`)."}
}


@router.get(
    "", response_model=Page[EndpointOut], responses={**problems(400, 401, 403, 422), **_NO_COMPUTE}
)
def list_endpoints(
    caller: Caller, endpoints: Endpoints, page: Annotated[PageQuery, Depends()]
) -> Listing[Endpoint]:
    """Endpoints the caller may use, in name order. A page may hold fewer than `limit`
    items and still have a `next_cursor`: follow it until it is null."""
    return endpoints.list(caller, limit=page.limit, cursor=page.cursor)


@router.get(
    "/instance-types",
    response_model=InstanceTypesOut,
    responses={**problems(401, 403), **_NO_COMPUTE},
)
def instance_types(caller: Caller, endpoints: Endpoints) -> dict[str, list[str]]:
    """What `instance_type` may be: the deployment's choice (`local` on the local stack)."""
    return {"items": endpoints.instance_types()}


@router.post(
    "",
    response_model=EndpointOut,
    status_code=status.HTTP_201_CREATED,
    responses={**problems(400, 401, 403, 409, 422), **_NO_COMPUTE},
)
def create_endpoint(body: EndpointCreate, caller: Manager, endpoints: Endpoints) -> Endpoint:
    """Deploy an endpoint; it is `Creating` until it can take jobs (`InService`)."""
    scaling = body.autoscaling
    return endpoints.create(
        caller,
        name=body.name,
        type=body.type,
        instance_type=body.instance_type,
        initial_instance_count=body.initial_instance_count,
        autoscaling=(scaling.min, scaling.max) if scaling is not None else None,
        concurrency_per_instance=body.concurrency_per_instance,
        allowed_roles=body.allowed_roles,
        engine=body.engine,
        webui_url=body.webui_url,
        webui_models_dir=body.webui_models_dir,
    )


@router.get(
    "/{name}", response_model=EndpointOut, responses={**problems(401, 403, 404, 422), **_NO_COMPUTE}
)
def get_endpoint(name: EndpointName, caller: Caller, endpoints: Endpoints) -> Endpoint:
    return endpoints.get(caller, name)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**problems(401, 403, 404, 409, 422), **_NO_COMPUTE},
)
def delete_endpoint(name: EndpointName, caller: Manager, endpoints: Endpoints) -> None:
    """Remove the endpoint and everything made for it; jobs waiting for it fail."""
    endpoints.delete(caller, name)
