"""FastAPI dependencies: the services, the signed-in caller, and permission checks.

The API key is not checked here but by `api_key.ApiKeyGate`, before routing, so that it
also guards unknown routes and requests whose body does not even parse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Query, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aws_extension.middleware.errors import NotAuthenticated, PermissionDenied
from aws_extension.middleware.services import Services
from aws_extension.middleware.services.entities import Principal

_bearer = HTTPBearer(
    auto_error=False,
    description="The access token from POST /auth/login or POST /auth/refresh.",
)


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def current_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    if credentials is None:
        raise NotAuthenticated("Sign in first and send 'Authorization: Bearer <access token>'.")
    return services.auth.authenticate(credentials.credentials)


Caller = Annotated[Principal, Depends(current_principal)]


def require(*permissions: str) -> Callable[[Principal], Principal]:
    """A dependency admitting callers that hold at least one of `permissions`."""

    def holder(caller: Caller) -> Principal:
        if not any(caller.holds(permission) for permission in permissions):
            wanted = " or ".join(repr(permission) for permission in permissions)
            raise PermissionDenied(f"This needs the {wanted} permission.")
        return caller

    return holder


class PageQuery:
    """`limit` and `cursor` of every list route."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=200, description="Items per page.")] = 50,
        cursor: Annotated[
            str | None,
            Query(max_length=2048, description="`next_cursor` of the previous page."),
        ] = None,
    ) -> None:
        self.limit = limit
        self.cursor = cursor


def no_store(response: Response) -> None:
    """Responses carrying tokens must not be cached on the way (RFC 6749 section 5.1)."""
    response.headers["Cache-Control"] = "no-store"
