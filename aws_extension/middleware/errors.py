"""Domain errors and the one place where they become HTTP responses.

Services and records raise the exceptions below and know nothing of HTTP; the handlers
installed by `install_error_handlers` turn them, request-validation failures, unknown routes
and unexpected crashes into RFC 9457 problem details (`application/problem+json`). Every body
carries a machine-readable `code` from `aws_extension.contract`, so the client can tell a
wrong API token from a missing permission without parsing English.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aws_extension.contract import (
    ERROR_CONFLICT,
    ERROR_DUPLICATE_CONTENT,
    ERROR_INTERNAL,
    ERROR_INVALID,
    ERROR_INVALID_API_KEY,
    ERROR_INVALID_TOKEN,
    ERROR_NO_ENDPOINT,
    ERROR_NOT_AUTHENTICATED,
    ERROR_NOT_FOUND,
    ERROR_PERMISSION_DENIED,
    ERROR_TOO_LARGE,
    ERROR_TOO_MANY_ATTEMPTS,
    ERROR_UNAVAILABLE,
    ERROR_VALIDATION,
    ERROR_WRONG_CREDENTIALS,
    NAME_PATTERN,
)

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

#: What to tell a caller whose role or user name does not match `NAME_PATTERN`; pydantic's
#: own message only repeats the regular expression.
NAME_HINT = "use 1-64 letters, digits or _ . @ -, starting with a letter or digit"


class DomainError(Exception):
    """An expected failure the caller can act on; `detail` is shown to the caller as is.

    Subclasses fix the HTTP status and the contract `code`. The detail must never contain a
    secret (password, token, hash): it travels to the client and into logs.
    """

    status: ClassVar[int] = HTTPStatus.BAD_REQUEST
    code: ClassVar[str] = ERROR_INVALID

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def headers(self) -> dict[str, str]:
        """Extra response headers the status requires (RFC 9110)."""
        return {}

    def extra(self) -> dict[str, Any]:
        """Extra members of the problem body, for errors the client can act on by data."""
        return {}


class Invalid(DomainError):
    """The request is well-formed but makes no sense (unknown role, wrong current password)."""


class NotFound(DomainError):
    status = HTTPStatus.NOT_FOUND
    code = ERROR_NOT_FOUND


class Conflict(DomainError):
    """The request clashes with the current state: a duplicate name, a role still in use."""

    status = HTTPStatus.CONFLICT
    code = ERROR_CONFLICT


class DuplicateContent(Conflict):
    """A model of that type with the same SHA-256 is already `Active`: the client may skip
    its upload. The body names the existing model in `existing_id`."""

    code = ERROR_DUPLICATE_CONTENT

    def __init__(self, detail: str, *, existing_id: str) -> None:
        super().__init__(detail)
        self.existing_id = existing_id

    def extra(self) -> dict[str, Any]:
        return {"existing_id": self.existing_id}


class NoEndpoint(Conflict):
    """No endpoint the caller may use can take a job now (`no_endpoint`, 409)."""

    code = ERROR_NO_ENDPOINT


class TooLarge(DomainError):
    """More bytes than the deployment allows (a model over the size limit)."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = ERROR_TOO_LARGE


class Unavailable(DomainError):
    """The deployment lacks what the route needs; not the caller's fault."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = ERROR_UNAVAILABLE


class PermissionDenied(DomainError):
    status = HTTPStatus.FORBIDDEN
    code = ERROR_PERMISSION_DENIED


class InvalidApiKey(DomainError):
    status = HTTPStatus.FORBIDDEN
    code = ERROR_INVALID_API_KEY


class _Unauthorized(DomainError):
    """A 401 must say which scheme would work (RFC 9110 section 15.5.2)."""

    status = HTTPStatus.UNAUTHORIZED

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class NotAuthenticated(_Unauthorized):
    code = ERROR_NOT_AUTHENTICATED


class InvalidToken(_Unauthorized):
    code = ERROR_INVALID_TOKEN


class WrongCredentials(_Unauthorized):
    code = ERROR_WRONG_CREDENTIALS


class TooManyAttempts(DomainError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    code = ERROR_TOO_MANY_ATTEMPTS

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem details response; `type` stays `about:blank`, `code` says what."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **(extra or {}),
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def domain_error_response(error: DomainError) -> JSONResponse:
    return problem_response(
        error.status, error.code, error.detail, headers=error.headers(), extra=error.extra()
    )


def _field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """pydantic's error list as `{field, message}` pairs, without the rejected input.

    The input is left out on purpose: it may be a password.
    """
    result = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        message = str(error.get("msg", "is invalid"))
        kind = error.get("type")
        ctx = error.get("ctx") or {}
        if kind == "json_invalid":
            # loc is ("body", <character offset>): name the body, keep the offset in words.
            position = loc[1] if len(loc) > 1 else "?"
            loc = loc[:1]
            message = f"is not valid JSON ({ctx.get('error', 'decode error')} at {position})"
        elif kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
            message = NAME_HINT
        result.append({"field": ".".join(loc) or "request", "message": message})
    return result


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return domain_error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem_response(
        HTTPStatus.UNPROCESSABLE_ENTITY, ERROR_VALIDATION, detail, extra={"errors": errors}
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors: unknown route (404), wrong method (405), unreadable body (400)."""
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == HTTPStatus.NOT_FOUND:
        code, detail = ERROR_NOT_FOUND, f"No route {request.url.path}."
    elif status == HTTPStatus.METHOD_NOT_ALLOWED:
        code, detail = ERROR_INVALID, f"{request.method} is not allowed on {request.url.path}."
    else:
        code, detail = ERROR_INVALID, str(exc.detail)
    return problem_response(status, code, detail, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Method and path only: headers and bodies may hold tokens and passwords.
    logger.error("Unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        ERROR_INTERNAL,
        "The server failed unexpectedly; the error has been logged.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
