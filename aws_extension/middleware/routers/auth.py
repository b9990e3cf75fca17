from __future__ import annotations

from fastapi import APIRouter, Response, status

from aws_extension.middleware.dependencies import Caller, ServicesDep
from aws_extension.middleware.schemas.auth import LoginRequest, RefreshRequest, SessionOut
from aws_extension.middleware.schemas.common import problems
from aws_extension.middleware.services.entities import Session

router = APIRouter(prefix="/auth", tags=["auth"])


def _no_store(response: Response) -> None:
    """Token responses must not be cached by anything in between (RFC 6749 section 5.1)."""
    response.headers["Cache-Control"] = "no-store"


@router.post("/login", response_model=SessionOut, responses=problems(401, 403, 422, 429))
def login(body: LoginRequest, services: ServicesDep, response: Response) -> Session:
    """Exchange a username and password for an access token and a refresh token."""
    _no_store(response)
    return services.auth.login(body.username, body.password)


@router.post("/refresh", response_model=SessionOut, responses=problems(401, 403, 422))
def refresh(body: RefreshRequest, services: ServicesDep, response: Response) -> Session:
    """A new access token for a valid refresh token (which is returned unchanged)."""
    _no_store(response)
    return services.auth.refresh(body.refresh_token)


@router.post(
    "/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problems(401, 403)
)
def logout(caller: Caller, services: ServicesDep) -> None:
    """Revoke every access and refresh token of the caller, on every device."""
    services.auth.logout(caller)
