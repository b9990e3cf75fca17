from __future__ import annotations

from fastapi import APIRouter, Depends, status

from aws_extension.middleware.dependencies import Caller, ServicesDep, no_store
from aws_extension.middleware.schemas.auth import LoginRequest, RefreshRequest, SessionOut
from aws_extension.middleware.schemas.common import problems
from aws_extension.middleware.services.entities import Session

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=SessionOut,
    responses=problems(401, 403, 422, 429),
    dependencies=[Depends(no_store)],
)
def login(body: LoginRequest, services: ServicesDep) -> Session:
    """Exchange a username and password for an access token and a refresh token."""
    return services.auth.login(body.username, body.password)


@router.post(
    "/refresh",
    response_model=SessionOut,
    responses=problems(401, 403, 422),
    dependencies=[Depends(no_store)],
)
def refresh(body: RefreshRequest, services: ServicesDep) -> Session:
    """A new access token for a valid refresh token (which is returned unchanged)."""
    return services.auth.refresh(body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problems(401, 403))
def logout(caller: Caller, services: ServicesDep) -> None:
    """Revoke every access and refresh token of the caller, on every device."""
    services.auth.logout(caller)
