from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from aws_extension.contract import NAME_PATTERN, PERMISSION_ROLE, PERMISSION_USER
from aws_extension.middleware.dependencies import PageQuery, ServicesDep, require
from aws_extension.middleware.schemas.common import Page, problems
from aws_extension.middleware.schemas.roles import RoleCreate, RoleOut, RoleUpdate
from aws_extension.middleware.services.entities import Listing, Principal, Role

router = APIRouter(prefix="/roles", tags=["roles"])

RoleName = Annotated[str, Path(pattern=NAME_PATTERN)]
#: Reading roles is open to user managers too: assigning roles needs their names.
Reader = Annotated[Principal, Depends(require(PERMISSION_ROLE, PERMISSION_USER))]
Manager = Annotated[Principal, Depends(require(PERMISSION_ROLE))]


@router.get("", response_model=Page[RoleOut], responses=problems(400, 401, 403, 422))
def list_roles(
    caller: Reader, services: ServicesDep, page: Annotated[PageQuery, Depends()]
) -> Listing[Role]:
    """Roles in name order."""
    return services.roles.list(limit=page.limit, cursor=page.cursor)


@router.post(
    "",
    response_model=RoleOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
)
def create_role(body: RoleCreate, caller: Manager, services: ServicesDep) -> Role:
    """Create a role; it may hold only permissions the caller holds."""
    return services.roles.create(caller, body.name, list(body.permissions))


@router.get("/{name}", response_model=RoleOut, responses=problems(401, 403, 404, 422))
def get_role(name: RoleName, caller: Reader, services: ServicesDep) -> Role:
    return services.roles.get(name)


@router.put("/{name}", response_model=RoleOut, responses=problems(401, 403, 404, 409, 422))
def update_role(name: RoleName, body: RoleUpdate, caller: Manager, services: ServicesDep) -> Role:
    """Replace the role's permissions; takes effect on its holders' next request."""
    return services.roles.update(caller, name, list(body.permissions))


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404, 409, 422),
)
def delete_role(name: RoleName, caller: Manager, services: ServicesDep) -> None:
    """Delete a role nobody holds any more."""
    services.roles.delete(caller, name)
