from __future__ import annotations

from fastapi import APIRouter, Depends

from aws_extension.middleware.dependencies import Caller, ServicesDep, no_store
from aws_extension.middleware.schemas.auth import PasswordChange, SessionOut
from aws_extension.middleware.schemas.common import problems
from aws_extension.middleware.schemas.users import UserOut
from aws_extension.middleware.services.entities import Session, User

router = APIRouter(prefix="/me", tags=["me"])


@router.get("", response_model=UserOut, responses=problems(401, 403))
def me(caller: Caller, services: ServicesDep) -> User:
    """The signed-in user's own profile and effective permissions."""
    return services.auth.me(caller)


@router.put(
    "/password",
    response_model=SessionOut,
    responses=problems(400, 401, 403, 422, 429),
    dependencies=[Depends(no_store)],
)
def change_password(body: PasswordChange, caller: Caller, services: ServicesDep) -> Session:
    """Change the caller's password: all old tokens are revoked and new ones returned."""
    return services.auth.change_password(caller, body.current_password, body.new_password)
