from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from aws_extension.contract import NAME_PATTERN, PERMISSION_USER
from aws_extension.middleware.dependencies import PageQuery, ServicesDep, require
from aws_extension.middleware.schemas.common import Page, problems
from aws_extension.middleware.schemas.users import UserCreate, UserOut, UserUpdate
from aws_extension.middleware.services.entities import Listing, Principal, User

router = APIRouter(prefix="/users", tags=["users"])

Username = Annotated[str, Path(pattern=NAME_PATTERN)]
Manager = Annotated[Principal, Depends(require(PERMISSION_USER))]


@router.get("", response_model=Page[UserOut], responses=problems(400, 401, 403, 422))
def list_users(
    caller: Manager, services: ServicesDep, page: Annotated[PageQuery, Depends()]
) -> Listing[User]:
    """Users in name order, with their roles and effective permissions."""
    return services.users.list(limit=page.limit, cursor=page.cursor)


@router.post(
    "",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 409, 422),
)
def create_user(body: UserCreate, caller: Manager, services: ServicesDep) -> User:
    """Create a user; it may get only roles whose permissions the caller holds."""
    return services.users.create(caller, body.username, body.password, body.roles)


@router.get("/{username}", response_model=UserOut, responses=problems(401, 403, 404, 422))
def get_user(username: Username, caller: Manager, services: ServicesDep) -> User:
    return services.users.get(username)


@router.put("/{username}", response_model=UserOut, responses=problems(400, 401, 403, 404, 409, 422))
def update_user(
    username: Username, body: UserUpdate, caller: Manager, services: ServicesDep
) -> User:
    """Change roles and/or password; a new password revokes the user's tokens."""
    return services.users.update(caller, username, roles=body.roles, password=body.password)


@router.delete(
    "/{username}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404, 409, 422),
)
def delete_user(username: Username, caller: Manager, services: ServicesDep) -> None:
    """Delete a user (not yourself); their tokens stop working at once."""
    services.users.delete(caller, username)
